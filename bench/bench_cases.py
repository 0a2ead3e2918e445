"""Benchmark cases built from the shape data at the top of bench_kernels.py.

A Case knows how to make its inputs (float32, NCHW/OIHW, seeded), how to call each
implementation — fastvision, NumPy, PyTorch in each memory layout — as a zero-argument
callable (all conversions happen while building the callable, outside the timed region),
its float64 reference and how to check an implementation's outputs against it, and its work
(FLOPs, or bytes read + written for memory-bound ops).

PyTorch calls are the cheapest form of what a torch model runs: forward through
torch.nn.functional (conv + in-place relu, as nn.ReLU(inplace=True)), backward through the
aten kernels autograd itself dispatches to (convolution_backward,
max_pool2d_with_indices_backward, threshold_backward, mm/sum for linear, log_softmax +
nll_loss and their backwards), so no autograd-graph overhead is charged to torch.
"""

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

import bench_ref as ref

NCHW, CL, CONTIG = "nchw", "channels_last", "contiguous"


@dataclass
class Case:
    name: str                      # "conv2 fwd"
    group: str                     # sgemm | conv | pool | linear | relu | loss
    layer: Optional[str]           # the reference-CNN layer it belongs to (None: not in the sum)
    shape: str                     # for the table
    work: float                    # FLOPs (metric GFLOP/s) or bytes moved (metric GB/s)
    metric: str
    fv_ops: tuple                  # fastvision.ops names it needs
    make: Callable                 # rng -> inputs dict
    reference: Callable            # inputs -> reference data (float64)
    check: Callable                # (inputs, reference, outputs tuple) -> (ok, message)
    fastvision: Callable           # (ops, inputs) -> callable
    numpy: Optional[Callable] = None   # inputs -> callable
    torch: Optional[Callable] = None   # (torch, inputs, layout) -> callable
    layouts: tuple = (CONTIG,)


def to_numpy(out):
    """Outputs as a tuple of NumPy arrays / floats (torch tensors made contiguous)."""
    if not isinstance(out, (tuple, list)):
        out = (out,)
    res = []
    for o in out:
        if hasattr(o, "detach"):
            o = o.detach().contiguous().numpy()
            o = o.item() if o.ndim == 0 else o
        res.append(o)
    return tuple(res)


def _t(T, a, layout):
    t = T.from_numpy(np.ascontiguousarray(a))
    return t.contiguous(memory_format=T.channels_last) if layout == CL and t.ndim == 4 else t


def _randn(rng, shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


# ---- sgemm ------------------------------------------------------------------------------

def sgemm_case(n):
    def make(rng):
        return dict(a=_randn(rng, (n, n)), b=_randn(rng, (n, n)))

    def reference(d):
        # a full float64 product of 4096^3 costs seconds: check a sample of rows instead
        rows = np.random.default_rng(7).choice(n, size=min(n, 48), replace=False)
        a = d["a"][rows]
        return rows, ref.matmul(a, d["b"]), ref.matmul(np.abs(a), np.abs(d["b"]))

    def check(d, r, out):
        rows, want, absr = r
        return ref.check_close("matmul", out[0][rows], want, absr, k=n)

    return Case(f"sgemm {n}^3", "sgemm", None, f"{n}x{n}x{n}", 2.0 * n ** 3, "GFLOP/s",
                ("matmul",), make, reference, check,
                fastvision=lambda ops, d: (lambda: ops.matmul(d["a"], d["b"])),
                numpy=lambda d: (lambda: d["a"] @ d["b"]),
                torch=lambda T, d, lay: _bind2(T.mm, _t(T, d["a"], lay), _t(T, d["b"], lay)))


def _bind2(f, a, b):
    return lambda: f(a, b)


# ---- conv2d -------------------------------------------------------------------------------

def _conv_dims(batch, spec):
    name, c, o, h, w, k, s, p = spec
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    return name, c, o, h, w, k, s, p, oh, ow, 2.0 * batch * o * oh * ow * c * k * k


def conv_fwd_case(batch, spec):
    name, c, o, h, w, k, s, p, oh, ow, flops = _conv_dims(batch, spec)

    def make(rng):
        return dict(x=_randn(rng, (batch, c, h, w)), w=_randn(rng, (o, c, k, k), (c * k * k) ** -0.5),
                    b=_randn(rng, (o,), 0.1))

    def reference(d):
        return (ref.relu(ref.conv2d(d["x"], d["w"], d["b"], s, p)),
                ref.conv2d(np.abs(d["x"]), np.abs(d["w"]), np.abs(d["b"]), s, p))

    def check(d, r, out):
        return ref.check_close("conv2d_relu", out[0], r[0], r[1], k=c * k * k + 1)

    def torch_fn(T, d, lay):
        x, wt, b = _t(T, d["x"], lay), _t(T, d["w"], lay), _t(T, d["b"], lay)
        F = T.nn.functional
        return lambda: T.relu_(F.conv2d(x, wt, b, s, p))

    return Case(f"{name} fwd", "conv", name, f"{batch}x{c}x{h}x{w} -> {o}, {k}x{k}+bias+relu",
                flops, "GFLOP/s", ("conv2d_relu",), make, reference, check,
                fastvision=lambda ops, d: (lambda: ops.conv2d_relu(d["x"], d["w"], d["b"], s, p)),
                torch=torch_fn, layouts=(NCHW, CL))


def conv_bwd_case(batch, spec):
    name, c, o, h, w, k, s, p, oh, ow, flops = _conv_dims(batch, spec)

    def make(rng):
        return dict(x=_randn(rng, (batch, c, h, w)), w=_randn(rng, (o, c, k, k), (c * k * k) ** -0.5),
                    gy=_randn(rng, (batch, o, oh, ow), 0.1))

    def reference(d):
        a = [np.abs(d[n]) for n in ("gy", "x", "w")]
        return (ref.conv2d_backward(d["gy"], d["x"], d["w"], s, p),
                ref.conv2d_backward(*a, s, p))

    def check(d, r, out):
        (gx, gw, gb), (ax, aw, ab) = r
        npix = batch * oh * ow
        return ref.all_ok(ref.check_close("grad_x", out[0], gx, ax, k=o * k * k),
                          ref.check_close("grad_w", out[1], gw, aw, k=npix),
                          ref.check_close("grad_b", out[2], gb, ab, k=npix))

    def torch_fn(T, d, lay):
        gy, x, wt = _t(T, d["gy"], lay), _t(T, d["x"], lay), _t(T, d["w"], lay)
        cb = T.ops.aten.convolution_backward
        return lambda: cb(gy, x, wt, [o], [s, s], [p, p], [1, 1], False, [0, 0], 1,
                          [True, True, True])

    return Case(f"{name} bwd", "conv", name, f"{batch}x{c}x{h}x{w} -> {o}, data+weight+bias",
                2 * flops, "GFLOP/s", ("conv2d_backward",), make, reference, check,
                fastvision=lambda ops, d: (lambda: ops.conv2d_backward(d["gy"], d["x"], d["w"], s, p)),
                torch=torch_fn, layouts=(NCHW, CL))


# ---- max-pool ------------------------------------------------------------------------------

def pool_fwd_case(batch, spec):
    name, c, h, w, k, s = spec
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    nin, nout = batch * c * h * w, batch * c * oh * ow

    def make(rng):
        return dict(x=_randn(rng, (batch, c, h, w)))

    def check(d, r, out):
        if len(out) != 2:
            return False, "expected (y, indices)"
        return ref.all_ok(ref.check_equal("y", out[0], r[0].astype(np.float32)),
                          ref.check_equal("indices", out[1], r[1]))

    def torch_fn(T, d, lay):
        x, F = _t(T, d["x"], lay), T.nn.functional
        return lambda: F.max_pool2d(x, k, s, return_indices=True)

    return Case(f"{name} fwd", "pool", name, f"{batch}x{c}x{h}x{w}, {k}x{k}/{s} +indices",
                4.0 * nin + 12.0 * nout, "GB/s", ("max_pool2d",), make,
                lambda d: ref.max_pool2d(d["x"], k, s), check,
                fastvision=lambda ops, d: (lambda: ops.max_pool2d(d["x"], k, s, return_indices=True)),
                torch=torch_fn, layouts=(NCHW, CL))


def pool_bwd_case(batch, spec):
    name, c, h, w, k, s = spec
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    nin, nout = batch * c * h * w, batch * c * oh * ow

    def make(rng):
        x = _randn(rng, (batch, c, h, w))
        return dict(x=x, gy=_randn(rng, (batch, c, oh, ow)), idx=ref.max_pool2d(x, k, s)[1])

    def reference(d):
        return ref.max_pool2d_backward(d["gy"], d["idx"], d["x"].shape)

    def check(d, r, out):
        # with k <= s every input gets at most one gradient: the scatter is exact
        return ref.check_close("grad_x", out[0], r, np.abs(r), k=(k + s - 1) // s)

    def torch_fn(T, d, lay):
        x, gy, F = _t(T, d["x"], lay), _t(T, d["gy"], lay), T.nn.functional
        idx = F.max_pool2d(x, k, s, return_indices=True)[1]  # torch's own indices, its layout
        bw = T.ops.aten.max_pool2d_with_indices_backward
        return lambda: bw(gy, x, [k, k], [s, s], [0, 0], [1, 1], False, idx)

    return Case(f"{name} bwd", "pool", name, f"{batch}x{c}x{h}x{w}, {k}x{k}/{s}",
                12.0 * nout + 4.0 * nin, "GB/s", ("max_pool2d_backward",), make, reference, check,
                fastvision=lambda ops, d: (
                    lambda: ops.max_pool2d_backward(d["gy"], d["idx"], d["x"].shape)),
                torch=torch_fn, layouts=(NCHW, CL))


# ---- linear -----------------------------------------------------------------------------

def linear_fwd_case(batch, spec):
    name, fin, fout, relu = spec

    def make(rng):
        return dict(x=_randn(rng, (batch, fin)), w=_randn(rng, (fout, fin), fin ** -0.5),
                    b=_randn(rng, (fout,), 0.1))

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
        x, wt, b, F = _t(T, d["x"], lay), _t(T, d["w"], lay), _t(T, d["b"], lay), T.nn.functional
        return (lambda: T.relu_(F.linear(x, wt, b))) if relu else (lambda: F.linear(x, wt, b))

    op = "linear_relu" if relu else "linear"
    return Case(f"{name} fwd", "linear", name, f"{batch}x{fin} -> {fout}" + (" +relu" if relu else ""),
                2.0 * batch * fin * fout, "GFLOP/s", (op,), make, reference, check,
                fastvision=lambda ops, d: (lambda: getattr(ops, op)(d["x"], d["w"], d["b"])),
                numpy=np_fn, torch=torch_fn)


def linear_bwd_case(batch, spec):
    name, fin, fout, _ = spec

    def make(rng):
        return dict(x=_randn(rng, (batch, fin)), w=_randn(rng, (fout, fin), fin ** -0.5),
                    gy=_randn(rng, (batch, fout), 0.1))

    def reference(d):
        return (ref.linear_backward(d["gy"], d["x"], d["w"]),
                ref.linear_backward(*(np.abs(d[n]) for n in ("gy", "x", "w"))))

    def check(d, r, out):
        (gx, gw, gb), (ax, aw, ab) = r
        return ref.all_ok(ref.check_close("grad_x", out[0], gx, ax, k=fout),
                          ref.check_close("grad_w", out[1], gw, aw, k=batch),
                          ref.check_close("grad_b", out[2], gb, ab, k=batch))

    def torch_fn(T, d, lay):
        gy, x, wt = _t(T, d["gy"], lay), _t(T, d["x"], lay), _t(T, d["w"], lay)
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
        x = _randn(rng, (batch, c, h, w))
        return dict(x=x, y=np.maximum(x, 0), gy=_randn(rng, x.shape))

    fwd = Case(f"{name} fwd", "relu", None, shape, 8.0 * n, "GB/s", ("relu",), make,
               lambda d: ref.relu(d["x"]),
               lambda d, r, out: ref.check_equal("relu", out[0], r.astype(np.float32)),
               fastvision=lambda ops, d: (lambda: ops.relu(d["x"])),
               numpy=lambda d: (lambda: np.maximum(d["x"], np.float32(0))),
               torch=lambda T, d, lay: (lambda x: lambda: T.relu(x))(_t(T, d["x"], lay)),
               layouts=(NCHW,))
    bwd = Case(f"{name} bwd", "relu", None, shape, 12.0 * n, "GB/s", ("relu_backward",), make,
               lambda d: ref.relu_backward(d["gy"], d["y"]),
               lambda d, r, out: ref.check_equal("relu_backward", out[0], r.astype(np.float32)),
               fastvision=lambda ops, d: (lambda: ops.relu_backward(d["gy"], d["y"])),
               numpy=lambda d: (lambda: np.where(d["y"] > 0, d["gy"], np.float32(0))),
               torch=lambda T, d, lay: _bind2(lambda g, y: T.ops.aten.threshold_backward(g, y, 0),
                                              _t(T, d["gy"], lay), _t(T, d["y"], lay)),
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
        return dict(z=_randn(rng, (batch, classes), 2.0),
                    labels=rng.integers(0, classes, batch).astype(np.int64))

    def check(d, r, out):
        loss, grad, abs_loss, abs_grad = r
        if len(out) != 2:
            return False, "expected (loss, grad_logits)"
        return ref.all_ok(ref.check_close("loss", np.float64(out[0]), loss, abs_loss,
                                          k=classes + batch, factor=4.0),
                          ref.check_close("grad_logits", out[1], grad, abs_grad, k=classes, factor=4.0))

    def torch_fn(T, d, lay):
        z, y, one = _t(T, d["z"], lay), T.from_numpy(d["labels"]), T.ones(())
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


def build_cases(shapes, quick=False):
    """Every case, in report order: sgemm first, then the CNN layers in model order."""
    b = shapes["batch"]
    cases = [sgemm_case(n) for n in (shapes["sgemm_quick"] if quick else shapes["sgemm"])]
    by_layer = {}
    for spec in shapes["conv"]:
        by_layer[spec[0]] = [conv_fwd_case(b, spec), conv_bwd_case(b, spec)]
    for spec in shapes["pool"]:
        by_layer[spec[0]] = [pool_fwd_case(b, spec), pool_bwd_case(b, spec)]
    for spec in shapes["linear"]:
        by_layer[spec[0]] = [linear_fwd_case(b, spec), linear_bwd_case(b, spec)]
    for spec in shapes["loss"]:
        by_layer[spec[0]] = [loss_case(b, spec)]
    for layer in shapes["cnn_order"]:
        cases += by_layer.pop(layer)
    for rest in by_layer.values():
        cases += rest
    for spec in shapes["relu"]:
        cases += relu_cases(b, spec)
    return cases
