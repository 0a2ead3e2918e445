"""sgemm (via matmul and the private _C._sgemm_test) and the linear ops, at every ISA level.

Sizes sit around the register tiles (scalar 4x8, AVX2 6x16, AVX-512 14x32) and past the
cache blocks (KC = 256 scalar, 512 SIMD; NC = 2048/3072) so edge tiles, several K and N
blocks, the small (unpacked) path and both thread splits of the blocked path (rows with a
shared B panel, columns in one region) are exercised.
"""

import numpy as np
import pytest
from hypothesis import given, strategies as st

import fastvision as fv
from fastvision import _C
from reference import gemm as ref
from tolerances import assert_close

DIMS = [1, 7, 8, 9, 13, 14, 15, 16, 17, 31, 32, 33, 47, 48, 49, 65]
BIG = [300, 520]  # > KC / MC: several K and M blocks
dims = st.sampled_from(DIMS + BIG)


def rand(rng, shape):
    return rng.standard_normal(shape).astype(np.float32)


def operands(rng, m, n, k, ta, tb):
    a = rand(rng, (k, m) if ta else (m, k))
    b = rand(rng, (n, k) if tb else (k, n))
    return a, b


def check_matmul(a, b, ta, tb):
    c = fv.ops.matmul(a, b, trans_a=ta, trans_b=tb)
    k = a.shape[0] if ta else a.shape[1]
    assert c.dtype == np.float32
    assert_close(c, ref.matmul(a, b, ta, tb), op="matmul", k=k,
                 abs_sum=ref.matmul(np.abs(a), np.abs(b), ta, tb))
    return c


@given(m=dims, n=dims, k=dims, ta=st.booleans(), tb=st.booleans(), seed=st.integers(0, 2**16))
def test_matmul_matches_reference(isa, m, n, k, ta, tb, seed):
    rng = np.random.default_rng(seed)
    check_matmul(*operands(rng, m, n, k, ta, tb), ta, tb)


@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
@pytest.mark.parametrize("mnk", [(300, 310, 600), (5, 700, 300), (700, 3, 257), (1, 1, 3000),
                                 (64, 10, 64), (64, 64, 576), (224, 3200, 64)])
def test_matmul_fixed_shapes_all_transposes(isa, rng, mnk, ta, tb):
    check_matmul(*operands(rng, *mnk, ta, tb), ta, tb)


@pytest.mark.parametrize("beta", [0.0, 1.0])
@pytest.mark.parametrize("bias_kind", ["none", "row", "col"])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("mnk", [(13, 33, 17), (65, 49, 300), (300, 40, 520)])
def test_sgemm_beta_epilogue_submatrix(isa, rng, beta, bias_kind, relu, mnk):
    """C[:m, :n] = beta*C + A B (+bias, relu) inside larger arrays (lda/ldb/ldc > widths)."""
    m, n, k = mnk
    for ta, tb in [(False, False), (True, True)]:
        a = rand(rng, (k + 3, m + 5) if ta else (m + 5, k + 3))
        b = rand(rng, (n + 2, k + 4) if tb else (k + 4, n + 2))
        c0 = rand(rng, (m + 1, n + 7))
        if beta == 0.0:
            c0[:m, :n] = np.nan  # write-only: must never leak into the result
        bias = rand(rng, m if bias_kind == "row" else n)
        c = c0.copy()
        _C._sgemm_test(a, b, c, m, n, k, ta, tb, beta, bias, bias_kind, relu)
        av = a[:k, :m] if ta else a[:m, :k]
        bv = b[:n, :k] if tb else b[:k, :n]
        want = ref.matmul(av, bv, ta, tb)
        scale = ref.matmul(np.abs(av), np.abs(bv), ta, tb)
        if beta:
            want = want + c0[:m, :n]
            scale = scale + np.abs(c0[:m, :n])
        if bias_kind != "none":
            bb = bias[:, None] if bias_kind == "row" else bias[None, :]
            want, scale = want + bb, scale + np.abs(bb)
        if relu:
            want = np.maximum(want, 0.0)
        assert_close(c[:m, :n], want, op="matmul", k=k + 2, abs_sum=scale)
        outside = np.ones(c.shape, bool)
        outside[:m, :n] = False
        np.testing.assert_array_equal(c[outside], c0[outside])


def test_sgemm_empty_k_gives_beta_c_plus_bias(isa, rng):
    a, b = np.zeros((4, 0), np.float32), np.zeros((0, 6), np.float32)
    c = np.full((4, 6), np.nan, np.float32)
    bias = rand(rng, 6)
    _C._sgemm_test(a, b, c, 4, 6, 0, False, False, 0.0, bias, "col", True)
    np.testing.assert_array_equal(c, np.broadcast_to(np.maximum(bias, 0), (4, 6)))
    assert fv.ops.matmul(np.zeros((3, 0)), np.zeros((0, 2))).tolist() == [[0, 0]] * 3
    assert fv.ops.matmul(np.zeros((0, 5)), np.zeros((5, 2))).shape == (0, 2)


@given(m=dims, n=dims, k=st.sampled_from(DIMS + [300, 700]), ta=st.booleans(), tb=st.booleans(),
       seed=st.integers(0, 2**16))
def test_small_integers_exact_on_every_isa(m, n, k, ta, tb, seed):
    """Products and sums of small integers are exact in fp32: every ISA gives the exact answer."""
    rng = np.random.default_rng(seed)
    a = rng.integers(-4, 5, (k, m) if ta else (m, k)).astype(np.float32)
    b = rng.integers(-4, 5, (n, k) if tb else (k, n)).astype(np.float32)
    bias = rng.integers(-50, 50, n).astype(np.float32)
    want = ref.matmul(a, b, ta, tb)
    want_relu = np.maximum(want + bias, 0)
    w = b if tb else b.T  # linear's (out, in) weight
    x = a.T if ta else a
    try:
        for level in fv.available_isas():
            fv.set_isa(level)
            np.testing.assert_array_equal(fv.ops.matmul(a, b, trans_a=ta, trans_b=tb), want)
            np.testing.assert_array_equal(fv.ops.linear_relu(x, w, bias), want_relu)
    finally:
        fv.set_isa(fv.detected_isa())


def test_fma_levels_bitwise_identical(rng):
    """AVX2 and AVX-512 run the same fused chain per element, so they agree to the bit."""
    if "avx512" not in fv.available_isas():
        pytest.skip("needs AVX-512")
    for mnk in [(33, 47, 300), (300, 65, 520), (7, 700, 31)]:
        for ta, tb in [(False, False), (True, True), (False, True)]:
            a, b = operands(rng, *mnk, ta, tb)
            outs = []
            for level in ["avx2", "avx512"]:
                fv.set_isa(level)
                outs.append(fv.ops.matmul(a, b, trans_a=ta, trans_b=tb))
            fv.set_isa(fv.detected_isa())
            np.testing.assert_array_equal(outs[0].view(np.uint32), outs[1].view(np.uint32))


def test_element_result_independent_of_position_and_path(isa, rng):
    """Any row/column slice of a product equals the same slice of the full product, bitwise:
    tiles, edge tiles, the small path and the blocked path all run one chain per element."""
    a, b = rand(rng, (320, 600)), rand(rng, (600, 290))
    full = fv.ops.matmul(a, b)
    for r0, r1, c0, c1 in [(0, 1, 0, 290), (5, 19, 3, 40), (13, 320, 0, 290), (100, 103, 250, 290),
                           (0, 320, 17, 18), (1, 2, 1, 2)]:
        part = fv.ops.matmul(a[r0:r1], b[:, c0:c1])
        np.testing.assert_array_equal(part.view(np.uint32), full[r0:r1, c0:c1].view(np.uint32))


@pytest.mark.parametrize("mnk", [(300, 310, 600), (20, 2000, 300), (2000, 20, 300), (64, 64, 576)])
def test_threads_bitwise_identical(isa, threads, rng, mnk):
    m, n, k = mnk
    a, b, gy = rand(rng, (m, k)), rand(rng, (n, k)), rand(rng, (m, n))
    outs = []
    for t in (1, 2, 3):  # 3 > cores: shares get descheduled, so pieces get stolen
        threads(t)
        outs.append((fv.ops.matmul(a, b, trans_b=True), fv.ops.linear_backward(gy, a, b)))
    for other in outs[1:]:
        np.testing.assert_array_equal(outs[0][0].view(np.uint32), other[0].view(np.uint32))
        for g0, g1 in zip(outs[0][1], other[1]):
            np.testing.assert_array_equal(g0.view(np.uint32), g1.view(np.uint32))


def test_concurrent_calls_from_python_threads(isa, rng):
    """The GIL is released: calls from several Python threads run at once (the pool serves
    one, the others run on their own thread with their own packing buffers)."""
    from concurrent.futures import ThreadPoolExecutor
    pairs = [(rand(rng, (150 + 7 * i, 300)), rand(rng, (300, 260 - 9 * i))) for i in range(6)]
    want = [fv.ops.matmul(a, b) for a, b in pairs]
    with ThreadPoolExecutor(4) as ex:
        got = list(ex.map(lambda ab: fv.ops.matmul(*ab), pairs * 3))
    for i, g in enumerate(got):
        np.testing.assert_array_equal(g, want[i % len(pairs)])


def test_nan_and_inf_propagate(isa):
    a = np.ones((20, 40), np.float32)
    b = np.ones((40, 35), np.float32)
    a[3, 7] = np.nan
    b[9, 30] = np.inf
    c = fv.ops.matmul(a, b)
    assert np.isnan(c[3]).all() and np.isnan(c[:, 30]).sum() == 1  # nan*... row 3; inf col 30
    assert np.isposinf(np.delete(c[:, 30], 3)).all()
    y = fv.ops.linear_relu(a, b.T)
    assert np.isnan(y[3]).all()


# ---- linear ----------------------------------------------------------------------------

linear_shapes = st.tuples(st.sampled_from([(1,), (7,), (33,), (2, 9), (3, 1, 17)]),
                          st.sampled_from([1, 7, 16, 17, 33, 65]), st.sampled_from([1, 9, 31, 48, 300]))


@given(shapes=linear_shapes, with_bias=st.booleans(), seed=st.integers(0, 2**16))
def test_linear_forward_and_backward(isa, shapes, with_bias, seed):
    lead, out_f, in_f = shapes
    rng = np.random.default_rng(seed)
    x, w = rand(rng, lead + (in_f,)), rand(rng, (out_f, in_f))
    b = rand(rng, out_f) if with_bias else None
    absb = None if b is None else np.abs(b)
    y = fv.ops.linear(x, w, b)
    scale = ref.linear(np.abs(x), np.abs(w), absb)
    assert y.shape == lead + (out_f,)
    assert_close(y, ref.linear(x, w, b), op="linear", k=in_f + 1, abs_sum=scale)
    assert_close(fv.ops.linear_relu(x, w, b), ref.linear_relu(x, w, b), op="linear",
                 k=in_f + 1, abs_sum=scale)
    gy = rand(rng, y.shape)
    gx, gw, gb = fv.ops.linear_backward(gy, x, w)
    rgx, rgw, rgb = ref.linear_backward(gy, x, w)
    ax, aw, ab = ref.linear_backward(np.abs(gy), np.abs(x), np.abs(w))
    n = int(np.prod(lead))
    assert_close(gx, rgx, op="linear", k=out_f, abs_sum=ax)
    assert_close(gw, rgw, op="linear", k=n, abs_sum=aw)
    assert_close(gb, rgb, op="linear", k=n, abs_sum=ab)
    none, gw2, gb2 = fv.ops.linear_backward(gy, x, w, need_input_grad=False)
    assert none is None
    np.testing.assert_array_equal(gw2, gw)
    np.testing.assert_array_equal(gb2, gb)


def test_linear_gradcheck_finite_differences(isa, rng):
    """Kernel gradients (fp32) vs central differences of the float64 reference forward."""
    x, w, b = rng.standard_normal((5, 11)), rng.standard_normal((7, 11)), rng.standard_normal(7)
    g = rng.standard_normal((5, 7))

    def loss(x_, w_, b_):
        return float((ref.linear(x_, w_, b_) * g).sum())

    gx, gw, gb = fv.ops.linear_backward(g, x, w)
    h = 1e-6
    for arr, grad in [(x, gx), (w, gw), (b, gb)]:
        num = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            old = arr[idx]
            arr[idx] = old + h
            up = loss(x, w, b)
            arr[idx] = old - h
            down = loss(x, w, b)
            arr[idx] = old
            num[idx] = (up - down) / (2 * h)
        np.testing.assert_allclose(grad, num, rtol=1e-2, atol=1e-3)


def test_linear_matches_torch(rng):
    torch = pytest.importorskip("torch")
    x, w, b = rand(rng, (4, 6, 37)), rand(rng, (19, 37)), rand(rng, 19)
    tx, tw, tb = (torch.tensor(v, requires_grad=True) for v in (x, w, b))
    ty = torch.nn.functional.linear(tx, tw, tb)
    gy = rand(rng, ty.shape)
    ty.backward(torch.from_numpy(gy))
    np.testing.assert_allclose(fv.ops.linear(x, w, b), ty.detach().numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(fv.ops.linear_relu(x, w, b), torch.relu(ty).detach().numpy(),
                               rtol=1e-4, atol=1e-4)
    for mine, theirs in zip(fv.ops.linear_backward(gy, x, w), (tx.grad, tw.grad, tb.grad)):
        np.testing.assert_allclose(mine, theirs.numpy(), rtol=1e-4, atol=1e-3)
    a, bm = rand(rng, (70, 33)), rand(rng, (50, 70))
    np.testing.assert_allclose(fv.ops.matmul(a, bm, trans_a=True, trans_b=True),
                               (torch.from_numpy(a).T @ torch.from_numpy(bm).T).numpy(),
                               rtol=1e-4, atol=1e-4)


def test_linear_converts_inputs():
    x = np.arange(12, dtype=np.float64).reshape(3, 4)[:, ::2]  # float64, non-contiguous
    w = [[1, 0], [0, 1], [1, 1]]
    np.testing.assert_array_equal(fv.ops.linear(x, w, [0, 0, 1]),
                                  np.array([[0, 2, 3], [4, 6, 11], [8, 10, 19]], np.float32))


# ---- errors ----------------------------------------------------------------------------

def test_matmul_errors():
    a, b = np.ones((2, 3), np.float32), np.ones((4, 5), np.float32)
    with pytest.raises(ValueError, match=r"matmul: inner dimensions must match, got a \(2, 3\) "
                                         r"and b \(4, 5\) \(trans_a=False, trans_b=False: 3 != 4\)"):
        fv.ops.matmul(a, b)
    with pytest.raises(ValueError, match=r"trans_a=True, trans_b=True: 2 != 5"):
        fv.ops.matmul(a, b, trans_a=True, trans_b=True)
    with pytest.raises(ValueError, match=r"matmul: a must be 2-D, got 3-D array of shape \(1, 2, 3\)"):
        fv.ops.matmul(np.ones((1, 2, 3)), b)
    with pytest.raises(ValueError, match=r"matmul: b must be 2-D, got 1-D"):
        fv.ops.matmul(a, np.ones(3))
    with pytest.raises(TypeError, match="matmul: trans_a must be a bool, got int"):
        fv.ops.matmul(a, b, trans_a=1)
    with pytest.raises(TypeError, match="matmul: a must be an array of numbers, got str"):
        fv.ops.matmul("x", b)
    with pytest.raises(TypeError, match="matmul: a must have dtype float32, got float64"):
        _C.matmul(np.ones((2, 3)), np.ones((3, 2), np.float32))
    with pytest.raises(TypeError, match="matmul: b must be C-contiguous"):
        _C.matmul(np.ones((2, 3), np.float32), np.ones((2, 3), np.float32).T)


def test_linear_errors():
    x, w = np.ones((4, 3), np.float32), np.ones((5, 3), np.float32)
    with pytest.raises(ValueError, match=r"linear: x shape \(4, 2\) must end in in_features = "
                                         r"w.shape\[1\] = 3 \(w shape \(5, 3\)\)"):
        fv.ops.linear(np.ones((4, 2)), w)
    with pytest.raises(ValueError, match=r"linear_relu: b shape \(4,\) must be \(5,\)"):
        fv.ops.linear_relu(x, w, np.ones(4))
    with pytest.raises(ValueError, match=r"linear: w must be 2-D, got 1-D"):
        fv.ops.linear(x, np.ones(3))
    with pytest.raises(ValueError, match=r"linear: x must be at least 1-D"):
        _C.linear(np.ones((), np.float32), w, None)
    with pytest.raises(ValueError, match=r"linear_backward: grad_y shape \(4, 4\) must be \(4, 5\)"):
        fv.ops.linear_backward(np.ones((4, 4)), x, w)
    with pytest.raises(ValueError, match=r"linear_backward: x shape \(4, 2\) must end in"):
        fv.ops.linear_backward(np.ones((4, 5)), np.ones((4, 2)), w)
    with pytest.raises(TypeError, match="linear_backward: need_input_grad must be a bool"):
        fv.ops.linear_backward(np.ones((4, 5)), x, w, need_input_grad=None)
    with pytest.raises(TypeError, match="linear: b must have dtype float32, got int64"):
        _C.linear(x, w, np.ones(5, np.int64))


def test_sgemm_test_helper_rejects_before_writing(rng):
    a, b = rand(rng, (4, 5)), rand(rng, (5, 6))
    c = rand(rng, (4, 6))
    c0 = c.copy()
    for bad in [dict(bias_kind="diag"), dict(beta=0.5), dict(m=5), dict(k=-1)]:
        args = dict(m=4, n=6, k=5, trans_a=False, trans_b=False, beta=1.0, bias=np.ones(6, np.float32),
                    bias_kind="col", relu=False)
        args.update(bad)
        with pytest.raises(ValueError, match="_sgemm_test: "):
            _C._sgemm_test(a, b, c, **args)
        np.testing.assert_array_equal(c, c0)
    with pytest.raises(TypeError, match="_sgemm_test: c is updated in place and must be writeable"):
        c.flags.writeable = False
        _C._sgemm_test(a, b, c, 4, 6, 5, False, False, 0.0, None, "none", False)
