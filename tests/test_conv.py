"""conv2d / conv2d_relu / conv2d_backward against the float64 reference, at every ISA level.

These tests pin the im2col / direct paths (fv.set_conv_algorithm("gemm")); the Winograd path
that "auto" takes for some 3x3 layers has its own file, test_conv_winograd.py.
"""

import time

import numpy as np
import pytest
from hypothesis import given, strategies as st

import fastvision as fv
from fastvision import _C
from reference import conv as ref
from tolerances import assert_close

CHANNELS = [1, 2, 3, 7, 8, 9, 16, 17, 33]


@pytest.fixture(autouse=True)
def _gemm_paths(conv_algorithm):
    conv_algorithm("gemm")


def _pad4(p):
    return (p[0], p[0], p[1], p[1])


def _check_all(x, w, b, stride, padding, dilation, groups, rng):
    """Forward, fused relu and all three gradients against the reference, with the K*eps bound."""
    p4 = _pad4(padding)
    O, Cg, kh, kw = w.shape
    y = fv.ops.conv2d(x, w, b, stride, padding, dilation, groups)
    want = ref.conv2d(x, w, b, stride, p4, dilation, groups)
    bound = ref.conv2d(np.abs(x), np.abs(w), None if b is None else np.abs(b), stride, p4,
                       dilation, groups)
    k = Cg * kh * kw + (b is not None)
    assert_close(y, want, op="conv2d", k=k, abs_sum=bound)
    yr = fv.ops.conv2d_relu(x, w, b, stride, padding, dilation, groups)
    assert_close(yr, np.maximum(want, 0), op="conv2d", k=k, abs_sum=bound)

    gy = rng.standard_normal(y.shape).astype(np.float32)
    gx, gw, gb = fv.ops.conv2d_backward(gy, x, w, stride, padding, dilation, groups)
    rx, rw, rb = ref.conv2d_backward(gy, x, w, stride, p4, dilation, groups)
    ax, aw, ab = ref.conv2d_backward(np.abs(gy), np.abs(x), np.abs(w), stride, p4, dilation, groups)
    N, _, OH, OW = y.shape
    assert_close(gx, rx, op="conv2d_backward", k=(O // groups) * kh * kw, abs_sum=ax)
    assert_close(gw, rw, op="conv2d_backward", k=N * OH * OW, abs_sum=aw)
    assert_close(gb, rb, op="conv2d_backward", k=N * OH * OW, abs_sum=ab)


@st.composite
def conv_cases(draw):
    C = draw(st.sampled_from(CHANNELS))
    kind = draw(st.sampled_from(["dense", "two", "depthwise"]))
    if kind == "two" and C % 2 == 0:
        groups = 2
        O = draw(st.sampled_from([c for c in CHANNELS if c % 2 == 0]))
    elif kind == "depthwise":
        groups = C
        O = C * draw(st.sampled_from([1, 2]))
    else:
        groups = 1
        O = draw(st.sampled_from(CHANNELS))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    # Input at least as large as the dilated kernel minus the padding (a valid output).
    H = draw(st.integers(max(1, dilation[0] * (kh - 1) + 1 - 2 * padding[0]), 13))
    W = draw(st.integers(max(1, dilation[1] * (kw - 1) + 1 - 2 * padding[1]), 13))
    N = draw(st.integers(1, 3))
    bias = draw(st.booleans())
    return N, C, O, H, W, kh, kw, stride, padding, dilation, groups, bias


@given(conv_cases())
def test_conv2d_matches_reference(isa, case):
    N, C, O, H, W, kh, kw, stride, padding, dilation, groups, bias = case
    rng = np.random.default_rng(N * 1000 + C * 10 + O)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((O, C // groups, kh, kw)).astype(np.float32)
    b = rng.standard_normal(O).astype(np.float32) if bias else None
    _check_all(x, w, b, stride, padding, dilation, groups, rng)


# Shapes that reach each driver path: direct single-channel (first layer, depthwise, with and
# without padding), pointwise 1x1, im2col with stride/dilation, and widths around the vector
# widths (7, 8, 9, 15, 16, 17, 31, 33, 65 output columns).
PATH_CASES = [
    # N, C, O, H, W, kh, kw, stride, padding, dilation, groups
    (2, 1, 32, 28, 28, 3, 3, (1, 1), (0, 0), (1, 1), 1),
    (1, 1, 7, 9, 35, 3, 3, (1, 1), (1, 1), (1, 1), 1),
    (3, 1, 9, 5, 67, 3, 3, (1, 1), (0, 0), (1, 1), 1),
    # padding 2 on an image shorter than the data gradient kernel's 4-row block
    (2, 1, 5, 3, 7, 3, 3, (1, 1), (2, 2), (1, 1), 1),
    (2, 1, 13, 6, 17, 2, 1, (1, 1), (0, 0), (1, 1), 1),
    (1, 1, 3, 4, 16, 1, 1, (1, 1), (0, 0), (1, 1), 1),
    (2, 8, 16, 7, 9, 3, 3, (1, 1), (1, 1), (1, 1), 8),
    (2, 17, 17, 9, 33, 5, 5, (1, 1), (2, 2), (1, 1), 17),
    (2, 16, 9, 8, 8, 1, 1, (1, 1), (0, 0), (1, 1), 1),
    (5, 32, 64, 13, 13, 3, 3, (1, 1), (0, 0), (1, 1), 1),
    (2, 9, 8, 15, 17, 3, 2, (2, 3), (1, 2), (2, 1), 1),
    (2, 5, 6, 11, 35, 3, 4, (2, 1), (1, 2), (2, 2), 1),
    # several side-by-side image batches, the last one short (forward 16 + 4, backward 8+8+4)
    (20, 2, 3, 4, 4, 3, 3, (1, 1), (0, 0), (1, 1), 1),
    (11, 4, 6, 5, 5, 3, 3, (1, 1), (1, 1), (1, 1), 2),
    # packed-GEMM paths (conv2d_packed.cpp): small images with K = 576 > KC (two K blocks;
    # backward data transposed; weight gradient over two ranges of panels), per-image weight
    # gradient blocks (P >= 64; P = 576 > KC: two blocks per image; two chunks of images),
    # padding / stride / dilation / groups through the gathers
    (3, 64, 16, 5, 5, 3, 3, (1, 1), (0, 0), (1, 1), 1),
    (3, 33, 10, 12, 12, 3, 3, (1, 1), (0, 0), (1, 1), 1),
    (2, 8, 5, 26, 26, 3, 3, (1, 1), (0, 0), (1, 1), 1),
    (12, 8, 6, 12, 12, 3, 3, (1, 1), (0, 0), (1, 1), 1),
    (3, 16, 6, 4, 5, 3, 3, (1, 1), (1, 1), (1, 1), 2),
    (2, 9, 4, 9, 11, 3, 2, (2, 2), (0, 1), (1, 2), 1),
]


@pytest.mark.parametrize("case", PATH_CASES)
def test_conv2d_paths(isa, rng, case):
    N, C, O, H, W, kh, kw, stride, padding, dilation, groups = case
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((O, C // groups, kh, kw)).astype(np.float32)
    b = rng.standard_normal(O).astype(np.float32)
    _check_all(x, w, b, stride, padding, dilation, groups, rng)
    _check_all(x, w, None, stride, padding, dilation, groups, rng)


@pytest.mark.parametrize("case", PATH_CASES)
def test_small_integers_bit_identical_across_isas(rng, case):
    N, C, O, H, W, kh, kw, stride, padding, dilation, groups = case
    x = rng.integers(-3, 4, (N, C, H, W)).astype(np.float32)
    w = rng.integers(-3, 4, (O, C // groups, kh, kw)).astype(np.float32)
    b = rng.integers(-3, 4, O).astype(np.float32)
    gy = None
    outs = []
    before = fv.isa()
    try:
        for level in fv.available_isas():
            fv.set_isa(level)
            y = fv.ops.conv2d(x, w, b, stride, padding, dilation, groups)
            yr = fv.ops.conv2d_relu(x, w, b, stride, padding, dilation, groups)
            if gy is None:
                gy = rng.integers(-3, 4, y.shape).astype(np.float32)
            grads = fv.ops.conv2d_backward(gy, x, w, stride, padding, dilation, groups)
            outs.append((y, yr) + tuple(grads))
    finally:
        fv.set_isa(before)
    p4 = _pad4(padding)
    want = ref.conv2d(x, w, b, stride, p4, dilation, groups)
    wants = ((want, np.maximum(want, 0))
             + ref.conv2d_backward(gy, x, w, stride, p4, dilation, groups))
    for out in outs:
        for got, exp in zip(out, wants):
            np.testing.assert_array_equal(got, exp.astype(np.float32))


@pytest.mark.parametrize("case", [PATH_CASES[0], PATH_CASES[5], PATH_CASES[8], PATH_CASES[9],
                                  PATH_CASES[11], PATH_CASES[12], PATH_CASES[13],
                                  PATH_CASES[14], PATH_CASES[16], PATH_CASES[17],
                                  (9, 3, 5, 6, 7, 3, 3, (1, 1), (1, 1), (1, 1), 1)])
def test_one_vs_two_threads_bitwise(isa, threads, rng, case):
    N, C, O, H, W, kh, kw, stride, padding, dilation, groups = case
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((O, C // groups, kh, kw)).astype(np.float32)
    b = rng.standard_normal(O).astype(np.float32)
    results = []
    for n in (1, 2):
        threads(n)
        y = fv.ops.conv2d_relu(x, w, b, stride, padding, dilation, groups)
        gy = np.random.default_rng(7).standard_normal(y.shape).astype(np.float32)
        results.append((y,) + fv.ops.conv2d_backward(gy, x, w, stride, padding, dilation, groups))
    for a, c in zip(*results):
        np.testing.assert_array_equal(a.view(np.uint32), c.view(np.uint32))


def _im2col(x, kh, kw):
    """[C*kh*kw, N*OH*OW] for stride 1, no padding (images side by side, as the packed path)."""
    N, C, H, W = x.shape
    OH, OW = H - kh + 1, W - kw + 1
    col = np.empty((C, kh, kw, N, OH, OW), np.float32)
    for i in range(kh):
        for j in range(kw):
            col[:, i, j] = x[:, :, i:i + OH, j:j + OW].transpose(1, 0, 2, 3)
    return col.reshape(C * kh * kw, N * OH * OW)


@pytest.mark.parametrize("shape", [(3, 32, 64, 13, 13), (2, 64, 64, 5, 5), (2, 9, 17, 8, 20)])
def test_packed_forward_is_bitwise_sgemm(isa, rng, shape):
    """The packed path (im2col straight into packed panels, sgemm_packed_block) gives exactly
    the bits of one sgemm W x col: the GEMM's per-element chain does not depend on packing."""
    N, C, O, H, W = shape
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((O, C, 3, 3)).astype(np.float32)
    y = fv.ops.conv2d(x, w)
    want = fv.ops.matmul(w.reshape(O, -1), _im2col(x, 3, 3))
    want = want.reshape(O, N, H - 2, W - 2).transpose(1, 0, 2, 3)
    np.testing.assert_array_equal(y.view(np.uint32), want.view(np.uint32))


def test_finite_difference_gradients(isa, rng):
    """Kernel gradients (fp32) vs central differences of the float64 reference forward."""
    stride, padding, dilation, groups = (2, 1), (1, 2), (1, 2), 2
    x = rng.standard_normal((2, 4, 7, 8))
    w = rng.standard_normal((6, 2, 3, 2))
    b = rng.standard_normal(6)
    p4 = _pad4(padding)
    gy = rng.standard_normal(ref.conv2d(x, w, b, stride, p4, dilation, groups).shape)
    gx, gw, gb = fv.ops.conv2d_backward(gy, x, w, stride, padding, dilation, groups)

    def loss(x_, w_, b_):
        return float(np.sum(gy * ref.conv2d(x_, w_, b_, stride, p4, dilation, groups)))

    h = 1e-6
    for arr, grad, name in ((x, gx, "x"), (w, gw, "w"), (b, gb, "b")):
        flat = arr.reshape(-1)
        for idx in rng.choice(flat.size, size=min(12, flat.size), replace=False):
            old = flat[idx]
            flat[idx] = old + h
            up = loss(x, w, b)
            flat[idx] = old - h
            down = loss(x, w, b)
            flat[idx] = old
            fd = (up - down) / (2 * h)
            np.testing.assert_allclose(grad.reshape(-1)[idx], fd, rtol=1e-2, atol=1e-3,
                                       err_msg=f"d loss / d {name}[{idx}]")


REFERENCE_CNN = [(1, 32, 28), (32, 64, 13), (64, 64, 5)]


@pytest.mark.parametrize("cin,cout,hw", REFERENCE_CNN)
def test_reference_cnn_shapes(isa, rng, cin, cout, hw):
    x = rng.standard_normal((64, cin, hw, hw)).astype(np.float32)
    w = (rng.standard_normal((cout, cin, 3, 3)) / np.sqrt(cin * 9)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    y = fv.ops.conv2d_relu(x, w, b)
    p4 = (0, 0, 0, 0)
    want = ref.conv2d(x, w, b, (1, 1), p4)
    bound = ref.conv2d(np.abs(x), np.abs(w), np.abs(b), (1, 1), p4)
    assert_close(y, np.maximum(want, 0), op="conv2d", k=cin * 9 + 1, abs_sum=bound)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    gx, gw, gb = fv.ops.conv2d_backward(gy, x, w, need_input_grad=cin > 1)
    rx, rw, rb = ref.conv2d_backward(gy, x, w, (1, 1), p4)
    ax, aw, ab = ref.conv2d_backward(np.abs(gy), np.abs(x), np.abs(w), (1, 1), p4)
    if cin > 1:
        assert_close(gx, rx, op="conv2d_backward", k=cout * 9, abs_sum=ax)
    else:
        assert gx is None
    k = 64 * y.shape[2] * y.shape[3]
    assert_close(gw, rw, op="conv2d_backward", k=k, abs_sum=aw)
    assert_close(gb, rb, op="conv2d_backward", k=k, abs_sum=ab)


@pytest.mark.parametrize("k,dil", [(3, 1), (4, 1), (2, 3), (5, 2)])
def test_padding_strings(isa, rng, k, dil):
    x = rng.standard_normal((2, 3, 11, 10)).astype(np.float32)
    w = rng.standard_normal((4, 3, k, k)).astype(np.float32)
    p4 = ref.same_padding(w.shape, (dil, dil))
    y = fv.ops.conv2d(x, w, padding="same", dilation=dil)
    assert y.shape[2:] == x.shape[2:]
    bound = ref.conv2d(np.abs(x), np.abs(w), None, (1, 1), p4, (dil, dil))
    assert_close(y, ref.conv2d(x, w, None, (1, 1), p4, (dil, dil)), op="conv2d", k=3 * k * k,
                 abs_sum=bound)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    gx, gw, _ = fv.ops.conv2d_backward(gy, x, w, padding="same", dilation=dil)
    rx, rw, _ = ref.conv2d_backward(gy, x, w, (1, 1), p4, (dil, dil))
    ax, aw, _ = ref.conv2d_backward(np.abs(gy), np.abs(x), np.abs(w), (1, 1), p4, (dil, dil))
    assert_close(gx, rx, op="conv2d_backward", k=4 * k * k, abs_sum=ax)
    assert_close(gw, rw, op="conv2d_backward", k=2 * 11 * 10, abs_sum=aw)
    np.testing.assert_array_equal(fv.ops.conv2d(x, w, padding="valid", dilation=dil),
                                  fv.ops.conv2d(x, w, padding=0, dilation=dil))


def test_converts_inputs_and_selective_grads(rng):
    x = rng.standard_normal((1, 2, 6, 10))[:, :, :, ::2]  # float64, non-contiguous
    w = rng.standard_normal((3, 2, 3, 3)).tolist()
    y = fv.ops.conv2d(x, w, [1.0, 2.0, 3.0], padding=[1, 1])
    assert y.dtype == np.float32 and y.shape == (1, 3, 6, 5)
    gy = np.ones(y.shape)
    gx, gw, gb = fv.ops.conv2d_backward(gy, x, w, padding=1, need_input_grad=False,
                                        need_bias_grad=False)
    assert gx is None and gb is None and gw.shape == (3, 2, 3, 3)
    gx, gw, gb = fv.ops.conv2d_backward(gy, x, w, padding=1, need_weight_grad=False)
    assert gw is None and gx.shape == x.shape and gb.shape == (3,)


def test_nan_propagates_through_relu(isa):
    x = np.ones((1, 1, 5, 5), np.float32)
    x[0, 0, 2, 2] = np.nan
    for cin_w in (np.ones((2, 1, 3, 3), np.float32),):
        y = fv.ops.conv2d_relu(x, -cin_w)
        assert np.isnan(y).all()  # every 3x3 window of a 5x5 input covers the centre
    y = fv.ops.conv2d_relu(np.repeat(x, 2, axis=1), -np.ones((2, 2, 3, 3), np.float32))
    assert np.isnan(y).all()


# ---- torch as an oracle ----------------------------------------------------------------

TORCH_CASES = [
    # N, C, O, H, W, k, stride, padding, dilation, groups
    (2, 3, 8, 11, 10, 3, 1, 1, 1, 1),
    (3, 6, 9, 12, 9, 3, (2, 1), (0, 2), (1, 2), 3),
    (2, 8, 8, 9, 9, 5, 1, "same", 1, 8),
    (1, 1, 32, 28, 28, 3, 1, 0, 1, 1),
    (2, 4, 5, 8, 7, 4, 1, "same", 2, 1),
]


@pytest.mark.parametrize("case", TORCH_CASES)
def test_against_torch(isa, rng, case):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    N, C, O, H, W, k, stride, padding, dilation, groups = case
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((O, C // groups, k, k)).astype(np.float32)
    b = rng.standard_normal(O).astype(np.float32)
    xt, wt, bt = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (x, w, b))
    yt = F.conv2d(xt, wt, bt, stride, padding, dilation, groups)
    gy = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
    yt.backward(torch.tensor(gy, dtype=torch.float64))
    y = fv.ops.conv2d(x, w, b, stride, padding, dilation, groups)
    gx, gw, gb = fv.ops.conv2d_backward(gy, x, w, stride, padding, dilation, groups)
    for got, want in ((y, yt), (gx, xt.grad), (gw, wt.grad), (gb, bt.grad)):
        want = want.detach().numpy()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


# ---- errors ------------------------------------------------------------------------------

def _xw(N=2, C=4, H=6, W=6, O=4, Cg=4, k=3):
    return np.ones((N, C, H, W), np.float32), np.ones((O, Cg, k, k), np.float32)


@pytest.mark.parametrize("kwargs,exc,msg", [
    (dict(stride=0), ValueError, r"conv2d: stride\[0\] must be >= 1, got 0"),
    (dict(stride=(1, 0)), ValueError, r"conv2d: stride\[1\] must be >= 1, got 0"),
    (dict(padding=(0, -1)), ValueError, r"conv2d: padding\[1\] must be >= 0, got -1"),
    (dict(dilation=(0, 1)), ValueError, r"conv2d: dilation\[0\] must be >= 1, got 0"),
    (dict(groups=0), ValueError, r"conv2d: groups must be >= 1, got 0"),
    (dict(groups=3), ValueError,
     r"conv2d: w.shape\[0\] \(out channels\) must be divisible by groups = 3, got 4"),
    (dict(stride=2, padding="same"), ValueError, r"conv2d: padding='same' requires stride 1"),
    (dict(padding="full"), ValueError, r"conv2d: padding must be 'valid', 'same'"),
    (dict(padding=(1, 2, 3)), ValueError, r"conv2d: padding must be an int or a pair of ints"),
    (dict(stride=(2**31, 1)), OverflowError, r"conv2d: stride\[0\] = 2147483648 exceeds the limit"),
    (dict(stride=1.5), TypeError, r"conv2d: stride must be an int, got float"),
])
def test_bad_hyper_parameters(kwargs, exc, msg):
    x, w = _xw()
    with pytest.raises(exc, match=msg):
        fv.ops.conv2d(x, w, **kwargs)


def test_shape_errors():
    x, w = _xw()
    with pytest.raises(ValueError,
                       match=r"conv2d: x must be 4-D, got 3-D array of shape \(4, 6, 6\)"):
        fv.ops.conv2d(x[0], w)
    with pytest.raises(ValueError, match=r"conv2d: w must be 4-D, got 2-D"):
        fv.ops.conv2d(x, w[0, 0])
    with pytest.raises(ValueError, match=(r"conv2d: x.shape\[1\] \(channels\) must equal "
                                          r"w.shape\[1\] \* groups = 2 \* 1 = 2, got 4")):
        fv.ops.conv2d(x, w[:, :2])
    with pytest.raises(ValueError, match=(r"conv2d_relu: x.shape\[1\] \(channels\) must equal "
                                          r"w.shape\[1\] \* groups = 4 \* 2 = 8, got 4")):
        fv.ops.conv2d_relu(x, w, groups=2)
    with pytest.raises(ValueError, match=r"conv2d: x.shape\[0\] must be >= 1, got 0"):
        fv.ops.conv2d(x[:0], w)
    with pytest.raises(ValueError, match=(r"conv2d: bias must have shape \(4,\) = "
                                          r"\(w.shape\[0\],\), got \(3,\)")):
        fv.ops.conv2d(x, w, np.ones(3, np.float32))
    with pytest.raises(ValueError, match=r"conv2d: bias must be 1-D, got 2-D"):
        fv.ops.conv2d(x, w, np.ones((4, 1), np.float32))


def test_empty_output_message():
    x = np.ones((1, 1, 5, 5), np.float32)
    w = np.ones((1, 1, 7, 7), np.float32)
    msg = (r"conv2d: output size \(H_out, W_out\) = \(0, -1\) must be positive; input \(5, 5\) "
           r"is smaller than the dilated kernel \(7, 7\)")
    with pytest.raises(ValueError, match=msg):
        fv.ops.conv2d(x, w, stride=(2, 1))
    with pytest.raises(ValueError, match=r"dilated kernel \(9, 5\)"):
        fv.ops.conv2d(np.ones((1, 1, 5, 4), np.float32), np.ones((1, 1, 3, 3), np.float32),
                      dilation=(4, 2))


def test_backward_errors():
    x, w = _xw()
    gy = np.ones((2, 4, 4, 4), np.float32)
    with pytest.raises(ValueError, match=(r"conv2d_backward: grad_y shape \(2, 4, 4, 4\) must "
                                          r"equal the forward output shape \(2, 4, 6, 6\)")):
        fv.ops.conv2d_backward(gy, x, w, padding=1)
    with pytest.raises(ValueError, match=r"conv2d_backward: stride\[1\] must be >= 1, got 0"):
        fv.ops.conv2d_backward(gy, x, w, stride=(1, 0))


def test_compiled_module_checks_directly():
    x, w = _xw()
    with pytest.raises(TypeError, match="conv2d: x must have dtype float32, got float64"):
        _C.conv2d(x.astype(np.float64), w)
    with pytest.raises(TypeError, match="conv2d: w must be C-contiguous"):
        _C.conv2d(x, np.asfortranarray(w))
    with pytest.raises(TypeError, match="conv2d: bias must be a numpy.ndarray"):
        _C.conv2d(x, w, [1.0, 2.0, 3.0, 4.0])
    with pytest.raises(OverflowError, match=r"conv2d: padding\[2\] = 2147483648 exceeds the limit"):
        _C.conv2d(x, w, None, [1, 1], [0, 0, 2**31, 0])
    with pytest.raises(ValueError, match=r"conv2d: padding must have 2 or 4 values, got 3"):
        _C.conv2d(x, w, None, [1, 1], [0, 0, 0])
    with pytest.raises(ValueError, match=r"conv2d: stride must have 2 values, got 1"):
        _C.conv2d(x, w, None, [1])
    with pytest.raises(ValueError, match=r"conv2d: groups must be >= 1, got -2"):
        _C.conv2d(x, w, None, groups=-2)
    y = _C.conv2d(x, w, None, [1, 1], [1, 2, 0, 1])  # asymmetric padding is accepted here
    assert y.shape == (2, 4, 7, 5)


def test_thread_pool_resize_between_calls(threads, rng):
    """Regression: workers restarted by a resize once took the previous (finished) job."""
    x = rng.standard_normal((8, 3, 9, 9)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    want = fv.ops.conv2d(x, w)
    for i in range(40):
        threads(1 + i % 2)
        time.sleep(0.002)  # let a restarted worker wake before the next job is published
        np.testing.assert_array_equal(fv.ops.conv2d(x, w), want)
