"""The Winograd conv paths, F(2x2, 3x3) and F(4x4, 3x3) (csrc/ops/conv2d/winograd*): forward,
data and weight gradients against the float64 reference at every ISA level, exactness on
small integers, thread-count independence, NaN placement, and which layers
fv.set_conv_algorithm("auto") sends to which."""

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st

import fastvision as fv
from fastvision import _C
from reference import conv as ref
from tolerances import WINOGRAD_EXTRA_K as EXTRA, assert_close

# Channel counts around the vector widths; sizes give odd and even outputs (overhanging
# tiles), tile rows shorter and longer than a vector (TW = 1 .. 17 tiles per row), padding
# 0..2 on each side independently.
CHANNELS = [1, 2, 7, 8, 9, 16, 17, 33]


# A test that takes `algo` runs with each tile size forced: "winograd" is F(2x2, 3x3),
# "winograd4" F(4x4, 3x3).
@pytest.fixture(params=["winograd", "winograd4"])
def algo(request, conv_algorithm):
    conv_algorithm(request.param)
    return request.param


ONE = (1, 1)


# Padding as (top, bottom, left, right) goes through the compiled module (the Python API takes
# an int, a pair or "same").
def conv(x, w, b, pad4):
    return _C.conv2d(x, w, b, ONE, pad4, ONE, 1)


def conv_relu(x, w, b, pad4):
    return _C.conv2d_relu(x, w, b, ONE, pad4, ONE, 1)


def conv_backward(gy, x, w, pad4):
    return _C.conv2d_backward(gy, x, w, ONE, pad4, ONE, 1, True, True, True)


def _normwise(abs_sum):
    """Winograd is normwise, not componentwise, stable: its transforms mix the inputs of a
    whole 4x4 patch, so an output whose own terms are all 0 can still carry a rounding of its
    neighbours'. The bound scales with the largest magnitude sum in the tensor."""
    return np.full_like(abs_sum, abs_sum.max())


def _check(x, w, b, pad4, rng, algo):
    op = "conv2d_" + algo  # the tolerance row of the tile size
    y = conv(x, w, b, pad4)
    want = ref.conv2d(x, w, b, ONE, pad4, ONE, 1)
    bound = _normwise(ref.conv2d(np.abs(x), np.abs(w), None if b is None else np.abs(b), ONE,
                                 pad4, ONE, 1))
    C, O = x.shape[1], w.shape[0]
    assert_close(y, want, op=op, k=C * 9 + 1 + EXTRA, abs_sum=bound)
    yr = conv_relu(x, w, b, pad4)
    assert_close(yr, np.maximum(want, 0), op=op, k=C * 9 + 1 + EXTRA, abs_sum=bound)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    gx, gw, gb = conv_backward(gy, x, w, pad4)
    rx, rw, rb = ref.conv2d_backward(gy, x, w, ONE, pad4, ONE, 1)
    ax, aw, ab = ref.conv2d_backward(np.abs(gy), np.abs(x), np.abs(w), ONE, pad4, ONE, 1)
    N, _, OH, OW = y.shape
    assert_close(gx, rx, op=op, k=O * 9 + EXTRA, abs_sum=_normwise(ax))
    assert_close(gw, rw, op=op, k=N * OH * OW + EXTRA, abs_sum=_normwise(aw))
    assert_close(gb, rb, op="conv2d_backward", k=N * OH * OW, abs_sum=ab)


@st.composite
def winograd_cases(draw):
    C, O = draw(st.sampled_from(CHANNELS)), draw(st.sampled_from(CHANNELS))
    pad4 = tuple(draw(st.integers(0, 2)) for _ in range(4))
    H = draw(st.integers(max(1, 3 - pad4[0] - pad4[1]), 20))
    W = draw(st.integers(max(1, 3 - pad4[2] - pad4[3]), 36))
    return draw(st.integers(1, 3)), C, O, H, W, pad4, draw(st.booleans())


@given(winograd_cases())
def test_matches_reference(isa, algo, case):
    N, C, O, H, W, pad4, bias = case
    rng = np.random.default_rng(N * 1000 + C * 10 + O + H * W)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((O, C, 3, 3)).astype(np.float32)
    b = rng.standard_normal(O).astype(np.float32) if bias else None
    _check(x, w, b, pad4, rng, algo)


# The reference CNN's 3x3 layers, a multi-block / multi-chunk batch, wide rows (more than one
# vector of tiles per tile row), a 1x1 output, padding on one side only, more channels than a
# K block.
CASES = [
    # N, C, O, H, W, (top, bottom, left, right)
    (5, 32, 64, 13, 13, (0, 0, 0, 0)),
    (3, 64, 64, 5, 5, (0, 0, 0, 0)),
    (21, 16, 17, 9, 8, (1, 1, 1, 1)),
    (2, 9, 7, 6, 70, (1, 1, 2, 0)),
    (3, 17, 8, 3, 3, (0, 0, 0, 0)),
    (2, 8, 33, 7, 34, (2, 0, 0, 2)),
    # more input channels than one GEMM K block (kc: 512, scalar 256): V row-major, packed
    # per K block (the forward's other branch), and a data gradient with O = 520 rows
    (1, 520, 16, 6, 7, (1, 1, 1, 1)),
    # F(4x4)'s data gradient as the forward's adjoint (the first two cases too: fewer forward
    # tiles than gx tiles) with more output channels than one K block (its GEMM depth)
    (2, 16, 520, 9, 9, (0, 0, 0, 0)),
    # F(4x4)'s transformed weights past kLocalWeightFloats (36 x 180 x 182 > 2^20 floats):
    # one copy shared by the threads instead of one per thread (forward and data gradient)
    (3, 180, 180, 6, 6, (1, 0, 0, 1)),
    # one F(4x4) tile per image (4x3 outputs): the weight gradient's chunks hold 32 images
    # (kMinChunkTiles), not 8: chunks of 32, 32 and 6 images
    (70, 16, 16, 6, 5, (0, 0, 0, 0)),
]


@pytest.mark.parametrize("case", CASES)
def test_cases(isa, rng, algo, case):
    N, C, O, H, W, pad4 = case
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((O, C, 3, 3)).astype(np.float32)
    _check(x, w, rng.standard_normal(O).astype(np.float32), pad4, rng, algo)


@pytest.mark.parametrize("case", CASES)
def test_small_integers_exact_on_every_isa(rng, algo, case):
    """F(2x2)'s transforms are adds and exact halvings, F(4x4)'s integer matrices with one
    scaling by 1/576 last: on small integers every step is exact, so every ISA gives the
    exact (reference) result."""
    N, C, O, H, W, pad4 = case
    x = rng.integers(-3, 4, (N, C, H, W)).astype(np.float32)
    w = rng.integers(-3, 4, (O, C, 3, 3)).astype(np.float32)
    b = rng.integers(-3, 4, O).astype(np.float32)
    want = ref.conv2d(x, w, b, ONE, pad4, ONE, 1)
    gy = rng.integers(-3, 4, want.shape).astype(np.float32)
    wants = (want, np.maximum(want, 0)) + ref.conv2d_backward(gy, x, w, ONE, pad4, ONE, 1)
    before = fv.isa()
    try:
        for level in fv.available_isas():
            fv.set_isa(level)
            got = (conv(x, w, b, pad4), conv_relu(x, w, b, pad4)) + conv_backward(gy, x, w, pad4)
            for g, e in zip(got, wants):
                np.testing.assert_array_equal(g, e.astype(np.float32), err_msg=level)
    finally:
        fv.set_isa(before)


@pytest.mark.parametrize("case", [CASES[0], CASES[2], CASES[3], CASES[8], CASES[9]])
def test_one_vs_two_threads_bitwise(isa, threads, rng, algo, case):
    N, C, O, H, W, pad4 = case
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((O, C, 3, 3)).astype(np.float32)
    b = rng.standard_normal(O).astype(np.float32)
    results = []
    for n in (1, 2):
        threads(n)
        y = conv_relu(x, w, b, pad4)
        gy = np.random.default_rng(7).standard_normal(y.shape).astype(np.float32)
        results.append((y,) + conv_backward(gy, x, w, pad4))
    for a, c in zip(*results):
        np.testing.assert_array_equal(a.view(np.uint32), c.view(np.uint32))


@pytest.mark.parametrize("case", [
    (13, 32, 64, 13, 13, 0),  # the reference conv2: 9 tiles per image, chunks of 8 + 5 images
    (20, 16, 16, 14, 14, 0),  # blocks of 8 images = 72 tiles: three GEMM column panels
    (3, 8, 24, 9, 7, 0),
    (70, 16, 24, 5, 5, 0),  # 1 tile per image: chunks of 32 + 32 + 6 images
])
def test_both_gradients_in_one_pass_match_each_alone(isa, rng, algo, case):
    """Where both gradients take F(4x4) (the data gradient as the forward's adjoint), they run
    as one pass that transforms gy once (winograd.cpp, conv2d_backward_winograd): gx and gw
    must have the bits each gets when asked for alone."""
    N, C, O, H, W, p = case
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((O, C, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((N, O, H + 2 * p - 2, W + 2 * p - 2)).astype(np.float32)
    gx, gw, _ = fv.ops.conv2d_backward(gy, x, w, padding=p, need_bias_grad=False)
    gx1, _, _ = fv.ops.conv2d_backward(gy, x, w, padding=p, need_weight_grad=False,
                                       need_bias_grad=False)
    _, gw1, _ = fv.ops.conv2d_backward(gy, x, w, padding=p, need_input_grad=False,
                                       need_bias_grad=False)
    np.testing.assert_array_equal(gx.view(np.uint32), gx1.view(np.uint32))
    np.testing.assert_array_equal(gw.view(np.uint32), gw1.view(np.uint32))
    rx, rw, _ = ref.conv2d_backward(gy, x, w, ONE, (p,) * 4, ONE, 1)
    ax, aw, _ = ref.conv2d_backward(np.abs(gy), np.abs(x), np.abs(w), ONE, (p,) * 4, ONE, 1)
    op = "conv2d_" + algo
    assert_close(gx, rx, op=op, k=O * 9 + EXTRA, abs_sum=_normwise(ax))
    assert_close(gw, rw, op=op, k=gy[0, 0].size * N + EXTRA, abs_sum=_normwise(aw))


def test_nan_lands_where_the_reference_puts_it(isa, algo):
    """F(2x2): a NaN input reaches exactly the outputs whose 3x3 window covers it (the
    transforms never multiply by a structural zero), not the whole 2x2 tile. F(4x4): it
    reaches those and may spread over the rest of the 4x4 output tiles whose 6x6 input patch
    covers it (its transforms mix all of a patch), never further."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 16, 9, 9)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    for (i, j) in [(0, 0), (3, 4), (8, 8), (5, 0)]:
        xn = x.copy()
        xn[0, 3, i, j] = np.nan
        y = fv.ops.conv2d(xn, w, None, 1, 1)
        want = np.isnan(ref.conv2d(xn, w, None, ONE, (1, 1, 1, 1), ONE, 1))
        if algo == "winograd":
            np.testing.assert_array_equal(np.isnan(y), want)
            continue
        # output tile (tr, tc) reads input rows 4 tr - 1 .. 4 tr + 4 (padding 1), columns alike
        rows = np.array([4 * (r // 4) - 1 <= i <= 4 * (r // 4) + 4 for r in range(9)])
        cols = np.array([4 * (c // 4) - 1 <= j <= 4 * (c // 4) + 4 for c in range(9)])
        reach = np.broadcast_to(rows[:, None] & cols[None, :], y.shape)
        assert np.isnan(y)[want].all(), (i, j)
        assert not np.isnan(y)[~reach].any(), (i, j)


def test_auto_picks_per_pass_and_tile_size(conv_algorithm, rng):
    """"auto" takes F(4x4) for the reference CNN's 32->64 layer on 13x13 in all three passes
    and for the 64->64 layer on 5x5 (3x3 outputs) forward and data gradient; that layer's
    weight gradient takes F(4x4) too at the reference batch of 64 without AVX-512 (chunks of
    32 one-tile images), im2col with 2 images (less than a chunk) or with AVX-512 (its
    measured rule keeps outputs of at least 8x8); a first layer (1 input channel)
    keeps its im2col / direct paths; a 64 -> 64 layer on 16x16 takes F(4x4) throughout, a 16 -> 32 layer on 28x28
    too except its weight gradient without AVX-512; a 128 -> 128 layer's weight gradient takes
    F(2x2) (F(4x4)'s 36 planes of sums would not stay in L2). Checked by bits: for random
    inputs no two algorithms agree on every element."""
    w2, w4, gemm = "winograd", "winograd4", "gemm"
    weight16 = w4 if fv.isa() == "avx512" else gemm
    weight_small = gemm if fv.isa() == "avx512" else w4
    for (N, C, O, H), expect in [((2, 32, 64, 13), (w4, w4, w4)),
                                 ((2, 64, 64, 5), (w4, w4, gemm)),
                                 ((64, 64, 64, 5), (w4, w4, weight_small)),
                                 ((2, 1, 32, 28), (gemm, gemm, gemm)),
                                 ((2, 64, 64, 16), (w4, w4, w4)),
                                 ((2, 16, 32, 28), (w4, w4, weight16)),
                                 ((2, 128, 128, 10), (w4, w4, w2))]:
        x = rng.standard_normal((N, C, H, H)).astype(np.float32)
        w = rng.standard_normal((O, C, 3, 3)).astype(np.float32)
        gy = rng.standard_normal((N, O, H - 2, H - 2)).astype(np.float32)
        runs = {}
        for a in ("auto", gemm, w2, w4):
            conv_algorithm(a)
            gx, gw, _ = fv.ops.conv2d_backward(gy, x, w, need_bias_grad=False)
            runs[a] = (fv.ops.conv2d(x, w), gx, gw)
        for i, want in enumerate(expect):
            got = runs["auto"][i].view(np.uint32)
            np.testing.assert_array_equal(got, runs[want][i].view(np.uint32),
                                          err_msg=f"{N, C, O, H, i}")
            for other in {gemm, w2, w4} - {want}:
                assert not np.array_equal(got, runs[other][i].view(np.uint32)), \
                    (N, C, O, H, i, other)


def test_shapes_winograd_does_not_cover_use_gemm(rng, algo):
    """Forced "winograd" / "winograd4" still computes stride 2, dilation 2, groups 2, 5x5 and padding 3
    (outside F(m x m, 3x3)) correctly, on the other paths."""
    x = rng.standard_normal((2, 8, 11, 11)).astype(np.float32)
    for w_shape, kw in [((8, 8, 3, 3), dict(stride=2)), ((8, 8, 3, 3), dict(dilation=2)),
                        ((8, 4, 3, 3), dict(groups=2)), ((8, 8, 5, 5), {}),
                        ((8, 8, 3, 3), dict(padding=3))]:
        w = rng.standard_normal(w_shape).astype(np.float32)
        y = fv.ops.conv2d(x, w, **kw)
        p, s, d = kw.get("padding", 0), kw.get("stride", 1), kw.get("dilation", 1)
        args = ((s, s), (p, p, p, p), (d, d), kw.get("groups", 1))
        want = ref.conv2d(x, w, None, *args)
        bound = ref.conv2d(np.abs(x), np.abs(w), None, *args)
        assert_close(y, want, op="conv2d", k=w[0].size, abs_sum=bound)


def test_setting_errors_and_round_trip():
    fv.set_conv_algorithm("auto")
    for name in ("gemm", "winograd", "winograd4", "auto"):
        fv.set_conv_algorithm(name)
        assert fv.get_conv_algorithm() == name
    with pytest.raises(ValueError, match=r"set_conv_algorithm: algorithm must be one of auto, "
                                         r"gemm, winograd, winograd4, got 'fft'"):
        fv.set_conv_algorithm("fft")
    with pytest.raises(TypeError, match="set_conv_algorithm: algorithm must be a str, got int"):
        fv.set_conv_algorithm(1)
    assert fv.get_conv_algorithm() == "auto"  # a failed call changes nothing


@pytest.mark.parametrize("value,ok", [("gemm", True), ("winograd", True), ("winograd4", True),
                                      ("direct", False)])
def test_environment_variable(value, ok):
    env = dict(os.environ, SKBUILD_EDITABLE_SKIP="1", FASTVISION_CONV_ALGO=value)
    r = subprocess.run([sys.executable, "-c", "import fastvision as fv; print(fv.get_conv_algorithm())"],
                       env=env, capture_output=True, text=True, timeout=120)
    if ok:
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == value
    else:
        assert r.returncode != 0
        assert ("ValueError: FASTVISION_CONV_ALGO must be one of auto, gemm, winograd, "
                "winograd4, got 'direct'") in r.stderr


def test_call_buffers_go_back_to_the_cache(rng, algo):
    """The weight gradient's chunk sums (16 or 36 x O x C floats per 8 images) come from the
    caching allocator: after the call they sit in the cache, and fv.empty_cache() returns them."""
    fv.empty_cache()
    x = rng.standard_normal((16, 64, 10, 10)).astype(np.float32)
    w = rng.standard_normal((64, 64, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((16, 64, 8, 8)).astype(np.float32)
    fv.ops.conv2d_backward(gy, x, w, need_input_grad=False, need_bias_grad=False)
    assert _C.cached_free_bytes() >= 2 * 16 * 64 * 64 * 4  # two chunks of dU
    fv.empty_cache()
    assert _C.cached_free_bytes() == 0
