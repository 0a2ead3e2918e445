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

import numpy as np

import bench_ref as ref
from bench_case import CL, NCHW, Case, bind2, randn, tensor
from bench_cases_dense import linear_bwd_case, linear_fwd_case, loss_case, relu_cases


# ---- sgemm ------------------------------------------------------------------------------

def sgemm_case(n):
    def make(rng):
        return dict(a=randn(rng, (n, n)), b=randn(rng, (n, n)))

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
                torch=lambda T, d, lay: bind2(T.mm, tensor(T, d["a"], lay), tensor(T, d["b"], lay)))


# ---- conv2d -------------------------------------------------------------------------------

def _conv_dims(batch, spec):
    name, c, o, h, w, k, s, p = spec
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    return name, c, o, h, w, k, s, p, oh, ow, 2.0 * batch * o * oh * ow * c * k * k


def conv_fwd_case(batch, spec):
    name, c, o, h, w, k, s, p, oh, ow, flops = _conv_dims(batch, spec)

    def make(rng):
        return dict(x=randn(rng, (batch, c, h, w)), w=randn(rng, (o, c, k, k), (c * k * k) ** -0.5),
                    b=randn(rng, (o,), 0.1))

    def reference(d):
        return (ref.relu(ref.conv2d(d["x"], d["w"], d["b"], s, p)),
                ref.conv2d(np.abs(d["x"]), np.abs(d["w"]), np.abs(d["b"]), s, p))

    def check(d, r, out):
        return ref.check_close("conv2d_relu", out[0], r[0], r[1], k=c * k * k + 1)

    def torch_fn(T, d, lay):
        x, wt, b = tensor(T, d["x"], lay), tensor(T, d["w"], lay), tensor(T, d["b"], lay)
        F = T.nn.functional
        return lambda: T.relu_(F.conv2d(x, wt, b, s, p))

    return Case(f"{name} fwd", "conv", name, f"{batch}x{c}x{h}x{w} -> {o}, {k}x{k}+bias+relu",
                flops, "GFLOP/s", ("conv2d_relu",), make, reference, check,
                fastvision=lambda ops, d: (lambda: ops.conv2d_relu(d["x"], d["w"], d["b"], s, p)),
                torch=torch_fn, layouts=(NCHW, CL))


def conv_bwd_case(batch, spec):
    name, c, o, h, w, k, s, p, oh, ow, flops = _conv_dims(batch, spec)

    def make(rng):
        return dict(x=randn(rng, (batch, c, h, w)), w=randn(rng, (o, c, k, k), (c * k * k) ** -0.5),
                    gy=randn(rng, (batch, o, oh, ow), 0.1))

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
        gy, x, wt = tensor(T, d["gy"], lay), tensor(T, d["x"], lay), tensor(T, d["w"], lay)
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
        return dict(x=randn(rng, (batch, c, h, w)))

    def check(d, r, out):
        if len(out) != 2:
            return False, "expected (y, indices)"
        return ref.all_ok(ref.check_equal("y", out[0], r[0].astype(np.float32)),
                          ref.check_equal("indices", out[1], r[1]))

    def torch_fn(T, d, lay):
        x, F = tensor(T, d["x"], lay), T.nn.functional
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
        x = randn(rng, (batch, c, h, w))
        return dict(x=x, gy=randn(rng, (batch, c, oh, ow)), idx=ref.max_pool2d(x, k, s)[1])

    def reference(d):
        return (ref.max_pool2d_backward(d["gy"], d["idx"], d["x"].shape),
                ref.max_pool2d_backward(np.abs(d["gy"]), d["idx"], d["x"].shape))

    def check(d, r, out):
        # overlapping windows (k > s) add up to ceil(k/s)^2 gradients per input; else exact
        return ref.check_close("grad_x", out[0], r[0], r[1], k=((k + s - 1) // s) ** 2)

    def torch_fn(T, d, lay):
        x, gy, F = tensor(T, d["x"], lay), tensor(T, d["gy"], lay), T.nn.functional
        idx = F.max_pool2d(x, k, s, return_indices=True)[1]  # torch's own indices, its layout
        bw = T.ops.aten.max_pool2d_with_indices_backward
        return lambda: bw(gy, x, [k, k], [s, s], [0, 0], [1, 1], False, idx)

    return Case(f"{name} bwd", "pool", name, f"{batch}x{c}x{h}x{w}, {k}x{k}/{s}",
                12.0 * nout + 4.0 * nin, "GB/s", ("max_pool2d_backward",), make, reference, check,
                fastvision=lambda ops, d: (
                    lambda: ops.max_pool2d_backward(d["gy"], d["idx"], d["x"].shape)),
                torch=torch_fn, layouts=(NCHW, CL))


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
