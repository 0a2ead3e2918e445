"""Float64 NumPy references and the closeness check the benchmark validates with.

Every implementation (fastvision, NumPy, PyTorch in each layout) is checked against these
before it is timed. Layouts: activations NCHW, conv weights OIHW, linear weights (out, in).
The references are vectorised over the batch and loop only over kernel taps, so the batch-64
reference CNN validates in a fraction of a second. Bounds follow tests/tolerances.py:
|got - want| <= factor * (k + 1) * eps32 * abs_ref, where abs_ref is the reference evaluated
on |inputs| (the sum of the magnitudes of the k terms) — rigorous for any summation order.
"""

import numpy as np

EPS32 = float(np.finfo(np.float32).eps)


def f64(a):
    return np.asarray(a, dtype=np.float64)


def check_close(what, got, want, abs_ref, k, factor=2.0):
    """(ok, message): every element within factor*(k+1)*eps32*abs_ref of the reference."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return False, f"{what}: shape {got.shape} != expected {want.shape}"
    if not np.isfinite(got).all():
        return False, f"{what}: non-finite values"
    bound = factor * (k + 1) * EPS32 * np.broadcast_to(f64(abs_ref), want.shape)
    err = np.abs(got - want)
    bad = err > bound
    if bad.any():
        i = np.unravel_index(np.argmax(err - bound), err.shape)
        return False, (f"{what}: {int(bad.sum())} of {err.size} elements out of bound; worst at "
                       f"{i}: got {got[i]!r}, want {want[i]!r}, bound {bound[i]:.3g}")
    return True, ""


def check_equal(what, got, want):
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return False, f"{what}: shape {got.shape} != expected {want.shape}"
    if not np.array_equal(got, want):
        n = int((got != want).sum())
        return False, f"{what}: {n} of {want.size} elements differ"
    return True, ""


def all_ok(*results):
    """Combine (ok, message) pairs: the first failure wins."""
    for ok, msg in results:
        if not ok:
            return False, msg
    return True, ""


# ---- matmul / linear ------------------------------------------------------------------

def matmul(a, b):
    return f64(a) @ f64(b)


def linear(x, w, b=None):
    y = f64(x) @ f64(w).T
    return y if b is None else y + f64(b)


def linear_backward(gy, x, w):
    gy, x, w = f64(gy), f64(x), f64(w)
    return gy @ w, gy.T @ x, gy.sum(0)


# ---- conv2d (groups = 1) --------------------------------------------------------------

def _out_size(h, k, s, p, d):
    return (h + 2 * p - d * (k - 1) - 1) // s + 1


def _tap(xp, i, j, oh, ow, s, d):
    """The input pixels tap (i, j) of every output position reads: (N, C, OH, OW)."""
    return xp[:, :, i * d:i * d + s * (oh - 1) + 1:s, j * d:j * d + s * (ow - 1) + 1:s]


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1):
    x, w = f64(x), f64(w)
    n, _, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh, ow = _out_size(h, kh, stride, padding, dilation), _out_size(wd, kw, stride, padding, dilation)
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    y = np.zeros((n, o, oh, ow))
    for i in range(kh):
        for j in range(kw):
            y += np.einsum("nchw,oc->nohw", _tap(xp, i, j, oh, ow, stride, dilation), w[:, :, i, j])
    if b is not None:
        y += f64(b)[None, :, None, None]
    return y


def conv2d_backward(gy, x, w, stride=1, padding=0, dilation=1):
    """(grad_x, grad_w, grad_b) of conv2d with bias."""
    gy, x, w = f64(gy), f64(x), f64(w)
    _, _, oh, ow = gy.shape
    _, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    gxp = np.zeros_like(xp)
    gw = np.zeros_like(w)
    for i in range(kh):
        for j in range(kw):
            _tap(gxp, i, j, oh, ow, stride, dilation)[...] += np.einsum("nohw,oc->nchw", gy, w[:, :, i, j])
            gw[:, :, i, j] = np.einsum("nohw,nchw->oc", gy, _tap(xp, i, j, oh, ow, stride, dilation))
    h, wd = x.shape[2:]
    return gxp[:, :, padding:padding + h, padding:padding + wd], gw, gy.sum((0, 2, 3))


# ---- max-pool (no padding) ------------------------------------------------------------

def max_pool2d(x, k, s):
    """(y, indices): indices flat in each H*W plane; ties keep the first (row-major) index."""
    x = f64(x)
    h, wd = x.shape[2:]
    oh, ow = (h - k) // s + 1, (wd - k) // s + 1
    y = np.full(x.shape[:2] + (oh, ow), -np.inf)
    idx = np.zeros(y.shape, dtype=np.int64)
    rows = np.arange(oh)[:, None] * s
    cols = np.arange(ow)[None, :] * s
    for i in range(k):
        for j in range(k):
            v = _tap(x, i, j, oh, ow, s, 1)
            take = v > y  # strict: an equal later value does not replace the first
            y = np.where(take, v, y)
            idx = np.where(take, (rows + i) * wd + (cols + j), idx)
    return y, idx


def max_pool2d_backward(gy, idx, input_shape):
    n, c, h, w = input_shape
    gx = np.zeros((n * c, h * w))
    flat = idx.reshape(n * c, -1)
    np.add.at(gx, (np.arange(n * c)[:, None], flat), f64(gy).reshape(n * c, -1))
    return gx.reshape(input_shape)


# ---- relu, softmax cross-entropy ------------------------------------------------------

def relu(x):
    return np.maximum(f64(x), 0.0)


def relu_backward(gy, y):
    return np.where(f64(y) > 0, f64(gy), 0.0)


def softmax_cross_entropy(logits, labels):
    """(mean loss, grad_logits, abs_loss, abs_grad): the last two scale the error bounds."""
    z = f64(logits)
    n, _ = z.shape
    m = z.max(1, keepdims=True)
    e = np.exp(z - m)
    s = e.sum(1, keepdims=True)
    lse = m[:, 0] + np.log(s[:, 0])
    rows = np.arange(n)
    loss = float(np.mean(lse - z[rows, labels]))
    p = e / s
    t = np.zeros_like(p)
    t[rows, labels] = 1.0
    grad = (p - t) / n
    # exp/log carry a relative error of a few ulps times (1 + |z - max|): scale by that
    abs_loss = float(np.mean(np.abs(lse) + np.abs(z[rows, labels]) + np.abs(m[:, 0])))
    abs_grad = (p + t) / n * (1.0 + np.abs(z - m))
    return loss, grad, abs_loss, abs_grad
