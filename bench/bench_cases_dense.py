"""Cases for the dense layers: linear (+relu) forward/backward, relu, softmax cross-entropy.

Conventions as in bench_cases.py (zero-argument callables, conversions outside the timed part).
"""

import numpy as np

import bench_ref as ref
from bench_case import NCHW, Case, bind2, randn, tensor

# ---- linear -----------------------------------------------------------------------------

def linear_fwd_case(batch, spec):
    name, fin, fout, relu = spec

    def make(rng):
        return dict(x=randn(rng, (batch, fin)), w=randn(rng, (fout, fin), fin ** -0.5),
                    b=randn(rng, (fout,), 0.1))

    def reference(d):
        y = ref.linear(d["x"], d["w"], d["b"])
        return (ref.relu(y) if relu else y), ref.linear(*(np.abs(d[n]) for n in "xwb"))

    def check(d, r, out):
        return ref.check_close(name, out[0], r[0], r[1], k=fin + 1)

    def np_fn(d):
        x, wt, b = d["x"], d["w"], d["b"]

        def f():
            y = x @ wt.T
            y += b
            return np.maximum(y, 0, out=y) if relu else y
        return f

    def torch_fn(T, d, lay):
        x, wt, b, F = tensor(T, d["x"], lay), tensor(T, d["w"], lay), tensor(T, d["b"], lay), T.nn.functional
        return (lambda: T.relu_(F.linear(x, wt, b))) if relu else (lambda: F.linear(x, wt, b))

    op = "linear_relu" if relu else "linear"
    return Case(f"{name} fwd", "linear", name, f"{batch}x{fin} -> {fout}" + (" +relu" if relu else ""),
                2.0 * batch * fin * fout, "GFLOP/s", (op,), make, reference, check,
                fastvision=lambda ops, d: (lambda: getattr(ops, op)(d["x"], d["w"], d["b"])),
                numpy=np_fn, torch=torch_fn)


def linear_bwd_case(batch, spec):
    name, fin, fout, _ = spec

    def make(rng):
        return dict(x=randn(rng, (batch, fin)), w=randn(rng, (fout, fin), fin ** -0.5),
                    gy=randn(rng, (batch, fout), 0.1))

    def reference(d):
        return (ref.linear_backward(d["gy"], d["x"], d["w"]),
                ref.linear_backward(*(np.abs(d[n]) for n in ("gy", "x", "w"))))

    def check(d, r, out):
        (gx, gw, gb), (ax, aw, ab) = r
        return ref.all_ok(ref.check_close("grad_x", out[0], gx, ax, k=fout),
                          ref.check_close("grad_w", out[1], gw, aw, k=batch),
                          ref.check_close("grad_b", out[2], gb, ab, k=batch))

    def torch_fn(T, d, lay):
        gy, x, wt = tensor(T, d["gy"], lay), tensor(T, d["x"], lay), tensor(T, d["w"], lay)
        return lambda: (gy.mm(wt), gy.t().mm(x), gy.sum(0))

    return Case(f"{name} bwd", "linear", name, f"{batch}x{fin} -> {fout}, data+weight+bias",
                4.0 * batch * fin * fout, "GFLOP/s", ("linear_backward",), make, reference, check,
                fastvision=lambda ops, d: (lambda: ops.linear_backward(d["gy"], d["x"], d["w"])),
                numpy=lambda d: (lambda: (d["gy"] @ d["w"], d["gy"].T @ d["x"], d["gy"].sum(0))),
                torch=torch_fn)


# ---- relu, softmax cross-entropy --------------------------------------------------------

def relu_cases(batch, spec):
    name, c, h, w = spec
    n = batch * c * h * w
    shape = f"{batch}x{c}x{h}x{w}"

    def make(rng):
        x = randn(rng, (batch, c, h, w))
        return dict(x=x, y=np.maximum(x, 0), gy=randn(rng, x.shape))

    fwd = Case(f"{name} fwd", "relu", None, shape, 8.0 * n, "GB/s", ("relu",), make,
               lambda d: ref.relu(d["x"]),
               lambda d, r, out: ref.check_equal("relu", out[0], r.astype(np.float32)),
               fastvision=lambda ops, d: (lambda: ops.relu(d["x"])),
               numpy=lambda d: (lambda: np.maximum(d["x"], np.float32(0))),
               torch=lambda T, d, lay: (lambda x: lambda: T.relu(x))(tensor(T, d["x"], lay)),
               layouts=(NCHW,))
    bwd = Case(f"{name} bwd", "relu", None, shape, 12.0 * n, "GB/s", ("relu_backward",), make,
               lambda d: ref.relu_backward(d["gy"], d["y"]),
               lambda d, r, out: ref.check_equal("relu_backward", out[0], r.astype(np.float32)),
               fastvision=lambda ops, d: (lambda: ops.relu_backward(d["gy"], d["y"])),
               numpy=lambda d: (lambda: np.where(d["y"] > 0, d["gy"], np.float32(0))),
               torch=lambda T, d, lay: bind2(lambda g, y: T.ops.aten.threshold_backward(g, y, 0),
                                              tensor(T, d["gy"], lay), tensor(T, d["y"], lay)),
               layouts=(NCHW,))
    return [fwd, bwd]


def _np_softmax_ce(z, labels):
    """float32 NumPy: the plain way (a baseline, not a reference)."""
    m = z.max(1, keepdims=True)
    e = np.exp(z - m)
    s = e.sum(1, keepdims=True)
    rows = np.arange(z.shape[0])
    loss = float(np.mean(m[:, 0] + np.log(s[:, 0]) - z[rows, labels]))
    g = e / s
    g[rows, labels] -= 1
    g /= z.shape[0]
    return loss, g


def loss_case(batch, spec):
    name, classes = spec

    def make(rng):
        return dict(z=randn(rng, (batch, classes), 2.0),
                    labels=rng.integers(0, classes, batch).astype(np.int64))

    def check(d, r, out):
        loss, grad, abs_loss, abs_grad = r
        if len(out) != 2:
            return False, "expected (loss, grad_logits)"
        return ref.all_ok(ref.check_close("loss", np.float64(out[0]), loss, abs_loss,
                                          k=classes + batch, factor=4.0),
                          ref.check_close("grad_logits", out[1], grad, abs_grad, k=classes, factor=4.0))

    def torch_fn(T, d, lay):
        z, y, one = tensor(T, d["z"], lay), T.from_numpy(d["labels"]), T.ones(())
        A = T.ops.aten

        def f():
            ls = T._log_softmax(z, 1, False)
            loss, tw = A.nll_loss_forward(ls, y, None, 1, -100)
            g = A.nll_loss_backward(one, ls, y, None, 1, -100, tw)
            return loss, A._log_softmax_backward_data(g, ls, 1, T.float32)
        return f

    return Case(f"{name} fwd+bwd", "loss", name, f"{batch}x{classes}, mean",
                8.0 * batch * classes + 8.0 * batch, "GB/s", ("softmax_cross_entropy",), make,
                lambda d: ref.softmax_cross_entropy(d["z"], d["labels"]), check,
                fastvision=lambda ops, d: (lambda: ops.softmax_cross_entropy(d["z"], d["labels"])),
                numpy=lambda d: (lambda: _np_softmax_ce(d["z"], d["labels"])), torch=torch_fn)
