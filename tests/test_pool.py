"""max_pool2d / avg_pool2d forward and backward against the float64 references (and torch when
installed), at every ISA level."""

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import fastvision as fv
from fastvision import _C
from reference import pool as ref
from tolerances import assert_close

SIZES = [1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 33]


@st.composite
def pool_cases(draw, dilation=True):
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if dilation else (1, 1)
    ceil_mode = draw(st.booleans())
    shape = (draw(st.sampled_from([1, 2])), draw(st.sampled_from([1, 3])),
             draw(st.sampled_from(SIZES)), draw(st.sampled_from(SIZES)))
    oh = ref.out_size(shape[2], k[0], s[0], p[0], d[0], ceil_mode)
    ow = ref.out_size(shape[3], k[1], s[1], p[1], d[1], ceil_mode)
    assume(oh >= 1 and ow >= 1)
    return shape, k, s, p, d, ceil_mode


def small_ints(rng, shape, hi=3):
    return rng.integers(-hi, hi + 1, size=shape).astype(np.float32)


# ---------------------------------------------------------------- max pooling

@given(case=pool_cases(), seed=st.integers(0, 2**16), ties=st.booleans())
def test_max_pool_matches_reference(isa, case, seed, ties):
    shape, k, s, p, d, cm = case
    rng = np.random.default_rng(seed)
    x = small_ints(rng, shape, 1) if ties else rng.standard_normal(shape).astype(np.float32)
    y, idx = fv.ops.max_pool2d(x, k, s, p, d, cm, return_indices=True)
    y_ref, idx_ref = ref.max_pool2d(x, k, s, p, d, cm)
    np.testing.assert_array_equal(y, y_ref)       # max is exact
    np.testing.assert_array_equal(idx, idx_ref)   # first index on ties
    assert idx.dtype == np.int64
    np.testing.assert_array_equal(fv.ops.max_pool2d(x, k, s, p, d, cm), y)

    if not ((idx >= 0) & (idx < shape[2] * shape[3])).all():
        return  # an all-padding window (dilation on a tiny plane): torch's out-of-plane index
    gy = rng.standard_normal(y.shape).astype(np.float32)
    gx = fv.ops.max_pool2d_backward(gy, idx, shape)
    # each input sums at most k0*k1 overlapping terms
    assert_close(gx, ref.max_pool2d_backward(gy, idx, shape), op="pool", k=k[0] * k[1],
                 abs_sum=ref.max_pool2d_backward(np.abs(gy), idx, shape))


@pytest.mark.parametrize("shape", [(2, 32, 26, 26), (2, 64, 11, 11), (1, 3, 27, 34), (1, 2, 2, 2),
                                   (3, 7, 9, 10), (1, 17, 4, 5), (5, 5, 16, 17), (2, 9, 6, 3), (1, 16, 2, 2),
                                   (1, 33, 3, 7)])
def test_max_pool_k2s2_fast_path(isa, rng, shape):
    # row path, the multi-plane path for small planes (>= 8 / 16 planes) and their tails
    x = rng.standard_normal(shape).astype(np.float32)
    x[rng.random(shape) < 0.03] = np.nan
    x[rng.random(shape) < 0.2] = 0.25  # ties
    for cm in (False, True):
        y, idx = fv.ops.max_pool2d(x, 2, return_indices=True, ceil_mode=cm)
        y_ref, idx_ref = ref.max_pool2d(x, (2, 2), (2, 2), (0, 0), (1, 1), cm)
        np.testing.assert_array_equal(y, y_ref)
        np.testing.assert_array_equal(idx, idx_ref)
        gy = rng.standard_normal(y.shape).astype(np.float32)
        gx = fv.ops.max_pool2d_backward(gy, idx, shape)
        np.testing.assert_array_equal(gx, ref.max_pool2d_backward(gy, idx, shape))  # one term each
        np.testing.assert_array_equal(fv.ops.max_pool2d(x, 2, ceil_mode=cm), y)


def test_max_pool_ties_pick_first_index(isa):
    x = np.zeros((1, 1, 5, 6), np.float32)
    _, idx = fv.ops.max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(idx[0, 0], [[0, 2, 4], [12, 14, 16]])
    x = np.array([[[[1, 3, 3], [3, 0, 3], [3, 3, 3]]]], np.float32)
    _, idx = fv.ops.max_pool2d(x, 2, stride=1, return_indices=True)
    np.testing.assert_array_equal(idx[0, 0], [[1, 1], [3, 5]])
    # -inf everywhere: -inf and the window's first in-plane position, as torch
    x = np.full((1, 1, 4, 5), -np.inf, np.float32)
    y, idx = fv.ops.max_pool2d(x, 3, stride=2, padding=1, return_indices=True)
    assert (y == -np.inf).all()
    np.testing.assert_array_equal(idx[0, 0], [[0, 1, 3], [5, 6, 8]])


@pytest.mark.parametrize("k,s,p,d", [(2, 2, 0, 1), (3, 1, 1, 1), (3, 2, 1, 2), (4, 3, 2, 1)])
def test_max_pool_nan_propagates_like_torch_cpu(isa, rng, k, s, p, d):
    x = rng.standard_normal((2, 3, 17, 19)).astype(np.float32)
    x[rng.random(x.shape) < 0.08] = np.nan
    x[rng.random(x.shape) < 0.05] = np.inf
    x[rng.random(x.shape) < 0.05] = -np.inf
    y, idx = fv.ops.max_pool2d(x, k, s, p, d, return_indices=True)
    y_ref, idx_ref = ref.max_pool2d(x, (k, k), (s, s), (p, p), (d, d))
    np.testing.assert_array_equal(y, y_ref)   # NaN == NaN for assert_array_equal
    np.testing.assert_array_equal(idx, idx_ref)
    assert np.isnan(y).any()


def test_max_pool_backward_overlapping_and_foreign_indices(isa, rng):
    # overlapping windows accumulate
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    y, idx = fv.ops.max_pool2d(x, 3, stride=1, padding=1, return_indices=True)
    gy = small_ints(rng, y.shape)
    np.testing.assert_array_equal(fv.ops.max_pool2d_backward(gy, idx, x.shape),
                                  ref.max_pool2d_backward(gy, idx, x.shape))  # small ints: exact
    # k2s2-shaped grad_y whose indices leave their 2x2 block (or repeat): still a scatter-add
    for shape in ((2, 2, 8, 10), (1, 3, 6, 34)):
        n, c, h, w = shape
        _, real = fv.ops.max_pool2d(rng.standard_normal(shape), 2, return_indices=True)
        one_off = real.copy()
        one_off[0, -1, -1, -1] = 0  # the last output of a plane leaves its block
        for idx in (rng.integers(0, h * w, size=real.shape), np.zeros(real.shape, np.int64), one_off):
            gy = small_ints(rng, idx.shape)
            np.testing.assert_array_equal(fv.ops.max_pool2d_backward(gy, idx, shape),
                                          ref.max_pool2d_backward(gy, idx, shape))


@pytest.mark.parametrize("shape", [(3, 70, 11, 11), (1, 40, 10, 12), (2, 33, 7, 5), (1, 5, 26, 26),
                                   (1, 9, 33, 34)])
def test_max_pool_backward_own_blocks_store_and_fallback(isa, rng, shape):
    # Indices each in its own 2x2 block (as the forward makes them) take the store path
    # (zeros + plain stores, in groups of planes); one index elsewhere anywhere in the call
    # (another block of its plane, a duplicate, the uncovered last row / column) must fall
    # back to the scatter-add, bit for bit. Planes of > 256 outputs (33x34) have no store path.
    n, c, h, w = shape
    _, real = fv.ops.max_pool2d(rng.standard_normal(shape).astype(np.float32), 2, return_indices=True)
    gy = small_ints(rng, real.shape)
    gy.flat[::7] = -0.0
    variants = [real]
    for plane in (0, n * c // 2, n * c - 1):
        for new in (0, real.reshape(n * c, -1)[plane, 0], h * w - 1):
            v = real.copy()
            v.reshape(n * c, -1)[plane, -1] = new  # last output: another block, a duplicate, or the corner
            variants.append(v)
    for idx in variants:
        gx = fv.ops.max_pool2d_backward(gy, idx, shape)
        want = ref.max_pool2d_backward(gy, idx, shape).astype(np.float32)
        np.testing.assert_array_equal(gx.view(np.uint32), want.view(np.uint32))  # signed zeros too


def test_max_pool_backward_own_blocks_threads(threads, rng):
    # per-thread checks disagree (a foreign, colliding index in the second half only): every
    # ISA and thread count gives the scatter's bits
    shape = (4, 64, 11, 11)
    _, idx = fv.ops.max_pool2d(rng.standard_normal(shape).astype(np.float32), 2, return_indices=True)
    idx[-1, -1, 0, 0] = idx[-1, -1, 1, 1]  # output (0, 0) sharing output (1, 1)'s input
    gy = rng.standard_normal(idx.shape).astype(np.float32)
    outs = []
    for level in fv.available_isas():
        fv.set_isa(level)
        for n in (1, 2):
            threads(n)
            outs.append(fv.ops.max_pool2d_backward(gy, idx, shape).view(np.uint32))
    fv.set_isa(fv.detected_isa())
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])


def test_max_pool_backward_signed_zero_like_scatter(isa):
    # the direct-write path must give 0 + g like the scatter-add (-0 becomes +0)
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    _, idx = fv.ops.max_pool2d(x, 2, return_indices=True)
    gx = fv.ops.max_pool2d_backward(np.full((1, 1, 2, 2), -0.0, np.float32), idx, x.shape)
    assert not np.signbit(gx).any()


def test_max_pool_finite_differences_without_ties(rng):
    # distinct values 0.01 apart: a 1e-6 step never changes an argmax
    shape = (1, 2, 7, 8)
    x = (rng.permutation(np.prod(shape)).reshape(shape) * 0.01).astype(np.float64)
    y, idx = fv.ops.max_pool2d(x, 3, stride=2, padding=1, return_indices=True)
    w = rng.standard_normal(y.shape)
    gx = fv.ops.max_pool2d_backward(w, idx, shape)
    h = 1e-6
    for flat in rng.choice(x.size, 20, replace=False):
        e = np.zeros(x.size)
        e[flat] = h
        e = e.reshape(shape)
        f = lambda z: (w * ref.max_pool2d(z, (3, 3), (2, 2), (1, 1))[0]).sum()
        fd = (f(x + e) - f(x - e)) / (2 * h)
        np.testing.assert_allclose(gx.reshape(-1)[flat], fd, rtol=1e-2, atol=1e-5)


# ---------------------------------------------------------------- average pooling

@given(case=pool_cases(dilation=False), seed=st.integers(0, 2**16), cip=st.booleans())
def test_avg_pool_matches_reference(isa, case, seed, cip):
    shape, k, s, p, _, cm = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    y = fv.ops.avg_pool2d(x, k, s, p, cm, cip)
    # a K-term sum then one division: K + 1 roundings
    assert_close(y, ref.avg_pool2d(x, k, s, p, cm, cip), op="pool", k=k[0] * k[1] + 1,
                 abs_sum=ref.avg_pool2d(np.abs(x), k, s, p, cm, cip))
    gy = rng.standard_normal(y.shape).astype(np.float32)
    gx = fv.ops.avg_pool2d_backward(gy, shape, k, s, p, cm, cip)
    assert_close(gx, ref.avg_pool2d_backward(gy, shape, k, s, p, cm, cip), op="pool",
                 k=k[0] * k[1] + 1, abs_sum=ref.avg_pool2d_backward(np.abs(gy), shape, k, s, p, cm, cip))


@pytest.mark.parametrize("shape", [(2, 32, 26, 26), (1, 3, 11, 12), (2, 16, 11, 11), (1, 17, 6, 7)])
@pytest.mark.parametrize("cm", [False, True])
def test_avg_pool_k2s2(isa, rng, shape, cm):
    x = rng.standard_normal(shape).astype(np.float32)
    y = fv.ops.avg_pool2d(x, 2, ceil_mode=cm, count_include_pad=False)
    assert_close(y, ref.avg_pool2d(x, (2, 2), (2, 2), (0, 0), cm, False), op="pool", k=5,
                 abs_sum=ref.avg_pool2d(np.abs(x), (2, 2), (2, 2), (0, 0), cm, False))
    gy = rng.standard_normal(y.shape).astype(np.float32)
    gx = fv.ops.avg_pool2d_backward(gy, shape, 2, ceil_mode=cm, count_include_pad=False)
    assert_close(gx, ref.avg_pool2d_backward(gy, shape, (2, 2), (2, 2), (0, 0), cm, False),
                 op="pool", k=1)


def test_avg_pool_ceil_mode_border_divisors(isa):
    x = np.ones((1, 1, 5, 5), np.float32)
    # ceil_mode: 3 windows; the last one covers rows 4..5 of which row 5 is past input+padding
    y = fv.ops.avg_pool2d(x, 2, ceil_mode=True)
    np.testing.assert_array_equal(y[0, 0], np.ones((3, 3)))
    y = fv.ops.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=True)
    np.testing.assert_allclose(y[0, 0], [[4 / 9, 6 / 9, 4 / 9], [6 / 9, 1, 6 / 9], [4 / 9, 6 / 9, 4 / 9]], rtol=1e-6)
    y = fv.ops.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
    np.testing.assert_array_equal(y, np.ones_like(y))


@pytest.mark.parametrize("k,s,p,cm,cip", [(3, 2, 1, True, True), (2, 1, 1, False, False), (3, 3, 1, True, False)])
def test_avg_pool_finite_differences(rng, k, s, p, cm, cip):
    shape = (1, 2, 7, 6)
    x = rng.standard_normal(shape)
    y = fv.ops.avg_pool2d(x, k, s, p, cm, cip)
    w = rng.standard_normal(y.shape)
    gx = fv.ops.avg_pool2d_backward(w, shape, k, s, p, cm, cip)
    f = lambda z: (w * ref.avg_pool2d(z, (k, k), (s, s), (p, p), cm, cip)).sum()
    h = 1e-6
    fd = np.empty(x.size)
    for i in range(x.size):
        e = np.zeros(x.size)
        e[i] = h
        e = e.reshape(shape)
        fd[i] = (f(x + e) - f(x - e)) / (2 * h)
    np.testing.assert_allclose(gx.reshape(-1), fd, rtol=1e-2, atol=1e-5)


# ---------------------------------------------------------------- ISAs, threads, layouts

@given(case=pool_cases(), seed=st.integers(0, 2**16))
def test_small_integers_bit_identical_across_isas(case, seed):
    shape, k, s, p, d, cm = case
    rng = np.random.default_rng(seed)
    x = small_ints(rng, shape)
    outs = []
    for level in fv.available_isas():
        fv.set_isa(level)
        y, idx = fv.ops.max_pool2d(x, k, s, p, d, cm, return_indices=True)
        ya = fv.ops.avg_pool2d(x, k, s, p, cm, False)
        gxa = fv.ops.avg_pool2d_backward(np.ones_like(ya), shape, k, s, p, cm, True)
        outs.append([y.view(np.uint32), idx, ya.view(np.uint32), gxa.view(np.uint32)])
        if ((idx >= 0) & (idx < shape[2] * shape[3])).all():
            outs[-1].append(fv.ops.max_pool2d_backward(y, idx, shape).view(np.uint32))
    fv.set_isa(fv.detected_isa())
    for o in outs[1:]:
        for a, b in zip(o, outs[0]):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape", [(2, 16, 11, 11), (1, 19, 26, 26), (1, 17, 7, 9)])
def test_k2s2_paths_bitwise_across_isas(rng, shape):
    # row, multi-plane and scalar paths do the same float operations in the same order
    x = rng.standard_normal(shape).astype(np.float32)
    x[rng.random(shape) < 0.02] = np.nan
    outs = []
    for level in fv.available_isas():
        fv.set_isa(level)
        y, idx = fv.ops.max_pool2d(x, 2, return_indices=True)
        outs.append([y.view(np.uint32), idx, fv.ops.avg_pool2d(x, 2).view(np.uint32),
                     fv.ops.max_pool2d_backward(y, idx, shape).view(np.uint32)])
    fv.set_isa(fv.detected_isa())
    for o in outs[1:]:
        for a, b in zip(o, outs[0]):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape,k,s,p,d", [((4, 16, 26, 27), 2, 2, 0, 1), ((4, 16, 26, 27), 3, 2, 1, 2),
                                           ((4, 16, 26, 27), 3, 1, 1, 1), ((3, 91, 11, 11), 2, 2, 0, 1)])
def test_one_vs_two_threads_bitwise(isa, threads, rng, shape, k, s, p, d):
    # (3, 91, 11, 11): 273 small planes, split unevenly against the 8/16-plane groups
    x = rng.standard_normal(shape).astype(np.float32)
    res = []
    for n in (1, 2):
        threads(n)
        y, idx = fv.ops.max_pool2d(x, k, s, p, d, return_indices=True)
        gx = fv.ops.max_pool2d_backward(y, idx, x.shape)
        ya = fv.ops.avg_pool2d(x, k, s, p)
        gxa = fv.ops.avg_pool2d_backward(ya, x.shape, k, s, p)
        res.append([a.view(np.uint8) for a in (y, idx, gx, ya, gxa)])
    for a, b in zip(*res):
        np.testing.assert_array_equal(a, b)


def test_chw_input_and_empty_batch(isa, rng):
    x = rng.standard_normal((3, 9, 8)).astype(np.float32)
    y, idx = fv.ops.max_pool2d(x, 3, 2, 1, return_indices=True)
    y4, idx4 = fv.ops.max_pool2d(x[None], 3, 2, 1, return_indices=True)
    assert y.shape == (3, 5, 4)
    np.testing.assert_array_equal(y, y4[0])
    np.testing.assert_array_equal(idx, idx4[0])
    np.testing.assert_array_equal(fv.ops.max_pool2d_backward(y, idx, x.shape),
                                  fv.ops.max_pool2d_backward(y4, idx4, (1,) + x.shape)[0])
    ya = fv.ops.avg_pool2d(x, 2)
    np.testing.assert_array_equal(ya, fv.ops.avg_pool2d(x[None], 2)[0])
    assert fv.ops.avg_pool2d_backward(ya, x.shape, 2).shape == x.shape
    y, idx = fv.ops.max_pool2d(np.zeros((0, 2, 4, 4)), 2, return_indices=True)
    assert y.shape == idx.shape == (0, 2, 2, 2)
    assert fv.ops.max_pool2d_backward(y, idx, (0, 2, 4, 4)).shape == (0, 2, 4, 4)


def test_input_conversion_and_stride_default(isa):
    x = np.arange(2 * 8 * 8, dtype=np.float64).reshape(2, 8, 8)[:, ::2, :]  # float64, strided
    y = fv.ops.max_pool2d(x, (2, 2))
    assert y.dtype == np.float32 and y.shape == (2, 2, 4)
    np.testing.assert_array_equal(y, fv.ops.max_pool2d(x, 2, stride=[]))
    np.testing.assert_array_equal(y, x.reshape(2, 2, 2, 4, 2).max(axis=(2, 4)).astype(np.float32))


# ---------------------------------------------------------------- torch as an oracle

@pytest.mark.parametrize("shape,k,s,p,d,cm", [
    ((2, 3, 26, 26), 2, 2, 0, 1, False), ((2, 3, 11, 11), 2, 2, 0, 1, True),
    ((1, 2, 17, 15), 3, 2, 1, 1, True), ((1, 2, 16, 9), (3, 2), (1, 3), (1, 0), (2, 1), False),
    ((1, 1, 1, 1), 2, 1, 1, 2, False)])
def test_matches_torch(isa, rng, shape, k, s, p, d, cm):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = rng.standard_normal(shape).astype(np.float32)
    x[rng.random(shape) < 0.05] = np.nan
    x[rng.random(shape) < 0.2] = 0.5  # ties
    tx = torch.from_numpy(x.copy()).requires_grad_()
    ty, ti = F.max_pool2d(tx, k, s, p, d, cm, return_indices=True)
    y, idx = fv.ops.max_pool2d(x, k, s, p, d, cm, return_indices=True)
    np.testing.assert_array_equal(y, ty.detach().numpy())
    np.testing.assert_array_equal(idx, ti.numpy())
    gy = rng.standard_normal(y.shape).astype(np.float32)
    if ((idx >= 0) & (idx < shape[2] * shape[3])).all():
        ty.backward(torch.from_numpy(gy))
        np.testing.assert_allclose(fv.ops.max_pool2d_backward(gy, idx, shape),
                                   tx.grad.numpy(), rtol=1e-6, atol=1e-6)
    if d != 1:
        return
    x = np.nan_to_num(x)
    for cip in (True, False):
        tx = torch.from_numpy(x.copy()).requires_grad_()
        ty = F.avg_pool2d(tx, k, s, p, cm, cip)
        y = fv.ops.avg_pool2d(x, k, s, p, cm, cip)
        np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-5, atol=1e-6)
        gy = rng.standard_normal(y.shape).astype(np.float32)
        ty.backward(torch.from_numpy(gy))
        np.testing.assert_allclose(fv.ops.avg_pool2d_backward(gy, shape, k, s, p, cm, cip),
                                   tx.grad.numpy(), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- errors

X = np.zeros((1, 2, 4, 4), np.float32)


@pytest.mark.parametrize("kwargs,msg", [
    (dict(kernel_size=0), r"max_pool2d: kernel_size\[0\] must be >= 1, got 0"),
    (dict(kernel_size=2, stride=(1, 0)), r"max_pool2d: stride\[1\] must be >= 1, got 0"),
    (dict(kernel_size=2, padding=-1), r"max_pool2d: padding\[0\] must be >= 0, got -1"),
    (dict(kernel_size=3, padding=(1, 2)), r"max_pool2d: padding\[1\] must be <= kernel_size\[1\] / 2 = 1, got 2"),
    (dict(kernel_size=2, dilation=(0, 1)), r"max_pool2d: dilation\[0\] must be >= 1, got 0"),
    (dict(kernel_size=5), r"max_pool2d: output size must be >= 1, got \(0, 0\) from input size \(4, 4\)"),
    (dict(kernel_size=(1, 2, 3)), r"max_pool2d: kernel_size must be an int or a pair of ints"),
])
def test_max_pool_value_errors(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        fv.ops.max_pool2d(X, **kwargs)


def test_shape_and_type_errors():
    with pytest.raises(ValueError, match=r"max_pool2d: x must be 4-D \(N, C, H, W\) or 3-D \(C, H, W\), got 2-D shape \(4, 4\)"):
        fv.ops.max_pool2d(np.zeros((4, 4)), 2)
    with pytest.raises(ValueError, match=r"avg_pool2d: x must have C, H, W >= 1, got shape \(1, 0, 4, 4\)"):
        fv.ops.avg_pool2d(np.zeros((1, 0, 4, 4)), 2)
    with pytest.raises(ValueError, match=r"avg_pool2d: padding\[0\] must be <= kernel_size\[0\] / 2 = 1, got 2"):
        fv.ops.avg_pool2d(X, 2, padding=2)
    with pytest.raises(OverflowError, match=r"max_pool2d: kernel_size = 2147483648 exceeds the limit"):
        fv.ops.max_pool2d(X, 2**31)
    with pytest.raises(OverflowError, match=r"max_pool2d: stride\[1\] = 2147483648 exceeds the limit"):
        _C.max_pool2d(X, [2, 2], [1, 2**31], [0, 0], [1, 1], False, False)
    with pytest.raises(TypeError, match="max_pool2d: x must have dtype float32, got float64"):
        _C.max_pool2d(X.astype(np.float64), [2, 2], [2, 2], [0, 0], [1, 1], False, False)
    with pytest.raises(TypeError, match="max_pool2d_backward: indices must have dtype int64, got int32"):
        _C.max_pool2d_backward(np.zeros((1, 2, 2, 2), np.float32), np.zeros((1, 2, 2, 2), np.int32), [1, 2, 4, 4])
    with pytest.raises(TypeError, match="max_pool2d_backward: indices must have an integer dtype, got float32"):
        fv.ops.max_pool2d_backward(np.zeros((1, 2, 2, 2)), np.zeros((1, 2, 2, 2), np.float32), X.shape)
    with pytest.raises(TypeError, match="max_pool2d: kernel_size must be an int, got float"):
        fv.ops.max_pool2d(X, 2.0)


def test_backward_errors():
    gy = np.zeros((1, 2, 2, 2), np.float32)
    idx = np.zeros((1, 2, 2, 2), np.int64)
    for bad, val in ((5, 16), (2, -1)):
        i = idx.copy()
        i.reshape(-1)[bad] = val
        with pytest.raises(ValueError, match=rf"max_pool2d_backward: indices\[{bad}\] must be in \[0, H\*W = 16\), got {val}"):
            fv.ops.max_pool2d_backward(gy, i, (1, 2, 4, 4))
    with pytest.raises(ValueError, match=r"max_pool2d_backward: indices shape \(1, 2, 2, 1\) must equal grad_y shape \(1, 2, 2, 2\)"):
        fv.ops.max_pool2d_backward(gy, idx[..., :1], (1, 2, 4, 4))
    with pytest.raises(ValueError, match=r"max_pool2d_backward: grad_y shape \(1, 2, 2, 2\) must be input_shape \(1, 3, 4, 4\)"):
        fv.ops.max_pool2d_backward(gy, idx, (1, 3, 4, 4))
    with pytest.raises(ValueError, match=r"max_pool2d_backward: input_shape must be 4-D"):
        fv.ops.max_pool2d_backward(gy, idx, (4, 4))
    with pytest.raises(ValueError, match=r"avg_pool2d_backward: grad_y shape \(1, 2, 2, 2\) must equal the output shape \(1, 2, 3, 3\)"):
        fv.ops.avg_pool2d_backward(gy, (1, 2, 4, 4), 2, stride=1)
    with pytest.raises(ValueError, match=r"avg_pool2d_backward: stride\[0\] must be >= 1, got 0"):
        fv.ops.avg_pool2d_backward(gy, (1, 2, 4, 4), 2, stride=0)
    with pytest.raises(OverflowError, match=r"max_pool2d_backward: input_shape\[2\] = 4294967296 exceeds"):
        fv.ops.max_pool2d_backward(gy, idx, (1, 2, 2**32, 4))


# max_pool2d_2x2: window codes instead of int64 indices (the fused conv + relu + pool node's
# form), checked against max_pool2d's values and indices and against the composite backward.
@pytest.mark.parametrize("shape", [(2, 32, 26, 26), (2, 64, 11, 11), (1, 3, 7, 9), (2, 1, 2, 2),
                                   (1, 2, 3, 40), (2, 5, 33, 34)])
def test_max_pool_2x2_codes_match_indices(isa, rng, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    x[x > 1.6] = np.nan
    x[(x > 0.4) & (x < 0.8)] = 0.5  # ties
    x[x < -1.8] = -np.inf
    y, codes = fv.ops.max_pool2d_2x2(x)
    want, idx = fv.ops.max_pool2d(x, 2, return_indices=True)
    assert codes.dtype == np.uint8 and codes.shape == want.shape
    np.testing.assert_array_equal(y.view(np.uint32), want.view(np.uint32))
    W = shape[3]
    top_left = (2 * np.arange(want.shape[2])[:, None] * W + 2 * np.arange(want.shape[3]))
    off = idx - top_left
    np.testing.assert_array_equal(codes, (off >= W) * 2 + off % W)


@pytest.mark.parametrize("shape", [(2, 32, 26, 26), (3, 4, 11, 11), (1, 3, 7, 9), (1, 2, 3, 40),
                                   (2, 3, 9, 16), (1, 2, 5, 15), (2, 2, 4, 17)])
@pytest.mark.parametrize("relu", [False, True])
def test_max_pool_2x2_backward_equals_scatter(isa, rng, shape, relu):
    """The same bits as max_pool2d_backward at the indices (with relu_y: of relu_backward on
    the pooled side first), odd last rows / columns zero, -0 gradients stored as +0."""
    x = rng.standard_normal(shape).astype(np.float32)
    if relu:
        x = np.maximum(x, 0)
    y, codes = fv.ops.max_pool2d_2x2(x)
    _, idx = fv.ops.max_pool2d(x, 2, return_indices=True)
    g = rng.standard_normal(y.shape).astype(np.float32)
    g.reshape(-1)[:7] = -0.0
    got = fv.ops.max_pool2d_2x2_backward(g, codes, shape, relu_y=y if relu else None)
    want = fv.ops.max_pool2d_backward(fv.ops.relu_backward(g, y) if relu else g, idx, shape)
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))


def test_max_pool_2x2_bitwise_across_isas_and_threads(threads, rng):
    x = rng.standard_normal((3, 19, 26, 27)).astype(np.float32)
    g = rng.standard_normal((3, 19, 13, 13)).astype(np.float32)
    runs = []
    before = fv.isa()
    try:
        for level in fv.available_isas():
            for n in (1, 2):
                fv.set_isa(level)
                threads(n)
                y, codes = fv.ops.max_pool2d_2x2(x)
                runs.append((y, codes, fv.ops.max_pool2d_2x2_backward(g, codes, x.shape, relu_y=y)))
    finally:
        fv.set_isa(before)
    for run in runs[1:]:
        for a, b in zip(runs[0], run):
            np.testing.assert_array_equal(a, b)


def test_max_pool_2x2_errors():
    g = np.zeros((1, 2, 2, 2), np.float32)
    codes = np.zeros((1, 2, 2, 2), np.uint8)
    bad = codes.copy()
    bad.reshape(-1)[5] = 4
    with pytest.raises(ValueError, match=r"max_pool2d_2x2_backward: codes\[5\] must be in \[0, 4\), got 4"):
        fv.ops.max_pool2d_2x2_backward(g, bad, (1, 2, 4, 4))
    with pytest.raises(TypeError, match=r"max_pool2d_2x2_backward: codes must have dtype uint8, got int64"):
        fv.ops.max_pool2d_2x2_backward(g, codes.astype(np.int64), (1, 2, 4, 4))
    with pytest.raises(ValueError, match=r"max_pool2d_2x2_backward: grad_y shape \(1, 2, 2, 2\) must equal the pooled shape \(1, 2, 3, 3\) of input_shape \(1, 2, 6, 7\)"):
        fv.ops.max_pool2d_2x2_backward(g, codes, (1, 2, 6, 7))
    with pytest.raises(ValueError, match=r"max_pool2d_2x2_backward: codes shape \(1, 2, 2, 1\) must equal grad_y shape"):
        fv.ops.max_pool2d_2x2_backward(g, codes[..., :1], (1, 2, 4, 4))
    with pytest.raises(ValueError, match=r"max_pool2d_2x2_backward: relu_y shape \(2, 2\) must equal grad_y shape"):
        fv.ops.max_pool2d_2x2_backward(g, codes, (1, 2, 4, 4), relu_y=np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match=r"max_pool2d_2x2: output size must be >= 1, got \(0, 2\)"):
        fv.ops.max_pool2d_2x2(np.zeros((1, 1, 1, 4), np.float32))
