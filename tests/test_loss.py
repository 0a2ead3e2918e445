"""softmax_cross_entropy, log_softmax and log_softmax_backward against the float64 references,
at every ISA level; torch as an oracle when importable."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

import fastvision as fv
from fastvision import _C
from reference import loss as ref
from tolerances import assert_close

CLASSES = [1, 2, 9, 10, 11, 16, 17, 33, 1000]
# exp(x - max) below 2^-126 is subnormal (or 0): absolute, not relative, error of a few 2^-149.
TINY = 8 * 2.0**-149
SIZES = [1, 7, 8, 9, 15, 16, 17, 31, 33, 65]
REDUCTIONS = ["mean", "sum", "none"]


def check_ce(x, labels, reduction, ls):
    """Kernel vs reference: per-row losses and grad elementwise (k = C terms in each sum)."""
    n, c = x.shape
    loss, grad = fv.ops.softmax_cross_entropy(x, labels, reduction=reduction, label_smoothing=ls)
    want_loss, want_grad = ref.softmax_cross_entropy(x, labels, reduction, ls)
    scale = ref.cross_entropy_scale(x, labels, ls)
    gscale = 1.0 / n if reduction == "mean" else 1.0
    assert grad.dtype == np.float32 and grad.shape == (n, c)
    p = np.exp(ref.log_softmax(x))
    # exp(fl(x - max)) carries the rounding of x - max times |x - max| (relative): p * |d|.
    d = np.abs(x - x.max(axis=1, keepdims=True).astype(np.float64))
    assert_close(grad, want_grad, op="softmax_cross_entropy", k=c,
                 abs_sum=(p * (1.0 + d) + ref.target(labels, c, ls)) * gscale, atol_floor=TINY)
    if reduction == "none":
        assert isinstance(loss, np.ndarray) and loss.dtype == np.float32 and loss.shape == (n,)
        assert_close(loss, want_loss, op="softmax_cross_entropy", k=c, abs_sum=scale)
    else:
        assert isinstance(loss, float)
        total = scale.mean() if reduction == "mean" else scale.sum()
        assert_close(loss, want_loss, op="softmax_cross_entropy", k=c, abs_sum=total)
    return loss, grad


@pytest.mark.parametrize("c", CLASSES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_ce_matches_reference(isa, rng, c, reduction, ls):
    x = (rng.standard_normal((13, c)) * 4).astype(np.float32)
    labels = rng.integers(0, c, 13)
    check_ce(x, labels, reduction, ls)


@given(n=st.sampled_from(SIZES), c=st.sampled_from(CLASSES + [65]),
       reduction=st.sampled_from(REDUCTIONS), ls=st.sampled_from([0.0, 0.05, 1.0]),
       scale=st.sampled_from([0.1, 1.0, 30.0]), seed=st.integers(0, 2**16))
def test_ce_property(n, c, reduction, ls, scale, seed):
    r = np.random.default_rng(seed)
    x = (r.standard_normal((n, c)) * scale).astype(np.float32)
    labels = r.integers(0, c, n)
    for level in fv.available_isas():
        fv.set_isa(level)
        check_ce(x, labels, reduction, ls)
    fv.set_isa(fv.detected_isa())


@pytest.mark.parametrize("c", [2, 10, 17, 1000])
@pytest.mark.parametrize("ls", [0.0, 0.2])
def test_ce_extreme_logits(isa, c, ls):
    x = np.zeros((5, c), np.float32)
    x[0, 0] = 1e30                  # one huge logit
    x[1, :] = -1e30                 # all equal (huge negative)
    x[1, -1] = -1e30
    x[2, :] = 7.0                   # all equal
    x[3, 0], x[3, -1] = 1e30, -1e30  # both extremes in one row
    x[4, :] = 1e30                  # all equal, huge
    labels = np.array([0, c - 1, 0, c - 1, 0])
    loss, grad = check_ce(x, labels, "none", ls)
    assert np.isfinite(loss).all() and np.isfinite(grad).all()
    # All-equal rows: softmax is uniform, loss = log C, whatever the magnitude.
    for i in (1, 2, 4):
        np.testing.assert_allclose(loss[i], np.log(c), rtol=4e-6, atol=1e-6)
        np.testing.assert_allclose(grad[i], 1.0 / c - ref.target(labels[i:i + 1], c, ls)[0],
                                   rtol=1e-5, atol=1e-7)


def test_ce_nan_propagates(isa):
    x = np.zeros((2, 10), np.float32)
    x[0, 3] = np.nan
    loss, grad = fv.ops.softmax_cross_entropy(x, np.array([0, 0]), reduction="none")
    assert np.isnan(loss[0]) and np.isfinite(loss[1])
    assert np.isnan(grad[0]).all() and np.isfinite(grad[1]).all()


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("ls", [0.0, 0.3])
def test_ce_grad_matches_finite_differences(isa, rng, reduction, ls):
    """The kernel's fp32 gradient vs central differences of the float64 reference loss
    (for "none": of loss.sum())."""
    n, c = 4, 11
    x = rng.standard_normal((n, c))
    labels = rng.integers(0, c, n)

    def f(z):
        loss = ref.softmax_cross_entropy(z, labels, reduction, ls)[0]
        return float(np.sum(loss))

    h = 1e-6
    fd = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        zp, zm = x.copy(), x.copy()
        zp[idx] += h
        zm[idx] -= h
        fd[idx] = (f(zp) - f(zm)) / (2 * h)
    _, grad = fv.ops.softmax_cross_entropy(x.astype(np.float32), labels, reduction, ls)
    np.testing.assert_allclose(grad, fd, rtol=1e-2, atol=1e-4)
    np.testing.assert_allclose(ref.softmax_cross_entropy(x, labels, reduction, ls)[1], fd,
                               rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("c", [10, 33, 1000])
def test_ce_simd_levels_bit_identical(rng, c):
    """AVX2 and AVX-512 share the expf and the 16-lane summation tree: identical bits. (The
    scalar uses std::exp and sequential sums, so it is only within tolerance of them; exp is
    not exact even for small-integer inputs, so no level can match it bit for bit.)"""
    levels = [lv for lv in fv.available_isas() if lv != "scalar"]
    if len(levels) < 2:
        pytest.skip("needs AVX2 and AVX-512")
    x = np.round(rng.standard_normal((37, c)) * 3).astype(np.float32)  # small integers too
    labels = rng.integers(0, c, 37)
    outs = []
    for level in levels:
        fv.set_isa(level)
        loss, grad = fv.ops.softmax_cross_entropy(x, labels, "none", 0.1)
        y = fv.ops.log_softmax(x)
        gx = fv.ops.log_softmax_backward(grad, y)
        outs.append([a.view(np.uint32) for a in (loss, grad, y, gx)])
    fv.set_isa(fv.detected_isa())
    for a, b in zip(outs[0], outs[1]):
        np.testing.assert_array_equal(a, b)


def test_ce_threads_bitwise(isa, threads, rng):
    x = (rng.standard_normal((5000, 10)) * 3).astype(np.float32)  # > 1 row chunk at C = 10
    labels = rng.integers(0, 10, 5000)
    res = []
    for t in (1, 2):
        threads(t)
        loss, grad = fv.ops.softmax_cross_entropy(x, labels)
        y = fv.ops.log_softmax(x)
        res.append((loss, grad.tobytes(), y.tobytes(), fv.ops.log_softmax_backward(grad, y).tobytes()))
    assert res[0] == res[1]


def test_ce_mean_is_row_order_float64_sum(isa, rng):
    x = (rng.standard_normal((100, 10)) * 3).astype(np.float32)
    labels = rng.integers(0, 10, 100)
    rows, _ = fv.ops.softmax_cross_entropy(x, labels, "none")
    total = 0.0
    for r in rows:
        total += float(r)
    assert fv.ops.softmax_cross_entropy(x, labels, "sum")[0] == total
    assert fv.ops.softmax_cross_entropy(x, labels, "mean")[0] == total / 100


def test_ce_label_dtypes(isa, rng):
    x = rng.standard_normal((6, 10)).astype(np.float32)
    labels = rng.integers(0, 10, 6)
    want = fv.ops.softmax_cross_entropy(x, labels)
    for lab in (labels.astype(np.int32), labels.astype(np.uint8), list(labels), labels[::-1][::-1].copy()):
        got = fv.ops.softmax_cross_entropy(x, lab)
        assert got[0] == want[0] and np.array_equal(got[1], want[1])
    # float64, non-contiguous logits are converted
    got = fv.ops.softmax_cross_entropy(np.asfortranarray(x.astype(np.float64)), labels)
    assert got[0] == want[0]


def test_ce_errors():
    x = np.zeros((4, 10), np.float32)
    op = "softmax_cross_entropy"
    with pytest.raises(ValueError, match=rf"^{op}: labels\[3\] = 10 is out of range \[0, 10\)$"):
        fv.ops.softmax_cross_entropy(x, np.array([0, 1, 2, 10]))
    with pytest.raises(ValueError, match=rf"^{op}: labels\[1\] = -1 is out of range \[0, 10\)$"):
        fv.ops.softmax_cross_entropy(x, np.array([0, -1, 12, 3], np.int32))
    with pytest.raises(TypeError, match=rf"{op}: labels must have an integer dtype .*float64"):
        fv.ops.softmax_cross_entropy(x, np.zeros(4))
    with pytest.raises(TypeError, match=rf"{op}: labels must have an integer dtype .*bool"):
        fv.ops.softmax_cross_entropy(x, np.zeros(4, bool))
    with pytest.raises(TypeError, match=rf"{op}: labels must have dtype int64, got int32"):
        _C.softmax_cross_entropy(x, np.zeros(4, np.int32))
    with pytest.raises(ValueError, match=rf"{op}: labels shape \(3,\) must be \(N,\) with N = logits.shape\[0\] = 4"):
        fv.ops.softmax_cross_entropy(x, np.zeros(3, np.int64))
    with pytest.raises(ValueError, match=rf"{op}: logits must be 2-D, got 1-D"):
        fv.ops.softmax_cross_entropy(np.zeros(10), np.zeros(1, np.int64))
    with pytest.raises(ValueError, match=rf"{op}: labels must be 1-D, got 2-D"):
        fv.ops.softmax_cross_entropy(x, np.zeros((4, 1), np.int64))
    with pytest.raises(ValueError, match=rf"{op}: logits must have at least one row and one column"):
        fv.ops.softmax_cross_entropy(np.zeros((0, 10)), np.zeros(0, np.int64))
    with pytest.raises(ValueError, match=rf"{op}: reduction must be 'mean', 'sum' or 'none', got 'avg'"):
        fv.ops.softmax_cross_entropy(x, np.zeros(4, np.int64), reduction="avg")
    with pytest.raises(TypeError, match=rf"{op}: reduction must be a str"):
        fv.ops.softmax_cross_entropy(x, np.zeros(4, np.int64), reduction=None)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=rf"{op}: label_smoothing must be in \[0, 1\], got"):
            fv.ops.softmax_cross_entropy(x, np.zeros(4, np.int64), label_smoothing=bad)


def test_log_softmax_errors():
    with pytest.raises(ValueError, match=r"log_softmax: dim must be -1 or 1 for a 2-D input, got 0"):
        fv.ops.log_softmax(np.zeros((2, 3)), dim=0)
    with pytest.raises(ValueError, match=r"log_softmax: x must be 2-D, got 3-D"):
        fv.ops.log_softmax(np.zeros((2, 3, 4)))
    with pytest.raises(TypeError, match=r"log_softmax: dim must be an int"):
        fv.ops.log_softmax(np.zeros((2, 3)), dim=1.0)
    with pytest.raises(ValueError, match=r"log_softmax_backward: grad_y shape \(2, 4\) must equal y shape \(2, 3\)"):
        fv.ops.log_softmax_backward(np.zeros((2, 4)), np.zeros((2, 3)))


@pytest.mark.parametrize("c", CLASSES)
@pytest.mark.parametrize("dim", [-1, 1])
def test_log_softmax_matches_reference(isa, rng, c, dim):
    x = (rng.standard_normal((9, c)) * 5).astype(np.float32)
    y = fv.ops.log_softmax(x, dim=dim)
    d = np.abs(x - x.max(axis=1, keepdims=True).astype(np.float64))
    lse = np.log(np.exp(-d).sum(axis=1, keepdims=True))
    assert_close(y, ref.log_softmax(x), op="log_softmax", k=c, abs_sum=1.0 + d + lse)
    gy = rng.standard_normal((9, c)).astype(np.float32)
    gx = fv.ops.log_softmax_backward(gy, y)
    e = np.exp(y.astype(np.float64))
    assert_close(gx, ref.log_softmax_backward(gy, y), op="log_softmax", k=c,
                 abs_sum=np.abs(gy) + e * np.abs(gy).sum(axis=1, keepdims=True), atol_floor=TINY)


@given(n=st.sampled_from(SIZES), c=st.sampled_from(CLASSES), seed=st.integers(0, 2**16))
def test_log_softmax_property(n, c, seed):
    r = np.random.default_rng(seed)
    x = (r.standard_normal((n, c)) * 10).astype(np.float32)
    for level in fv.available_isas():
        fv.set_isa(level)
        y = fv.ops.log_softmax(x)
        d = np.abs(x - x.max(axis=1, keepdims=True).astype(np.float64))
        lse = np.log(np.exp(-d).sum(axis=1, keepdims=True))
        assert_close(y, ref.log_softmax(x), op="log_softmax", k=c, abs_sum=1.0 + d + lse)
    fv.set_isa(fv.detected_isa())


def test_log_softmax_extremes(isa):
    x = np.array([[1e30, -1e30, 0.0], [5.0, 5.0, 5.0], [-1e30, -1e30, -1e30]], np.float32)
    y = fv.ops.log_softmax(x)
    np.testing.assert_allclose(y[0], [0.0, -2e30, -1e30], rtol=1e-6)
    np.testing.assert_allclose(y[1:], -np.log(3.0), rtol=1e-6)


def test_log_softmax_backward_matches_finite_differences(isa, rng):
    """Reference backward vs central differences of <w, log_softmax(x)>; kernel vs reference."""
    x = rng.standard_normal((3, 7))
    w = rng.standard_normal((3, 7))
    h = 1e-6
    fd = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        zp, zm = x.copy(), x.copy()
        zp[idx] += h
        zm[idx] -= h
        fd[idx] = ((w * ref.log_softmax(zp)).sum() - (w * ref.log_softmax(zm)).sum()) / (2 * h)
    np.testing.assert_allclose(ref.log_softmax_backward(w, ref.log_softmax(x)), fd, rtol=1e-6, atol=1e-8)
    y = fv.ops.log_softmax(x)
    np.testing.assert_allclose(fv.ops.log_softmax_backward(w, y), fd, rtol=1e-2, atol=1e-4)


@pytest.mark.parametrize("c", [1, 10, 17, 1000])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_ce_matches_torch(isa, rng, c, reduction, ls):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = (rng.standard_normal((64, c)) * 3).astype(np.float32)
    labels = rng.integers(0, c, 64)
    xt = torch.tensor(x, requires_grad=True)
    lt = F.cross_entropy(xt, torch.tensor(labels), reduction=reduction, label_smoothing=ls)
    lt.sum().backward()
    loss, grad = fv.ops.softmax_cross_entropy(x, labels, reduction, ls)
    np.testing.assert_allclose(loss, lt.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-4, atol=1e-7)
    y = fv.ops.log_softmax(x)
    np.testing.assert_allclose(y, F.log_softmax(torch.tensor(x), dim=1).numpy(), rtol=1e-5, atol=1e-5)


def test_vectorised_exp_within_2_ulp(isa):
    """log_softmax_backward with grad_y = e_0 (row sum 1) returns -exp(y_j) exactly for j >= 1,
    which exposes each level's expf: within 2 ulp of the correctly rounded value over the
    normal range, overflow to inf, subnormal results within 2 subnormal ulps, exp(-inf) = 0,
    NaN kept."""
    x = np.linspace(-104, 89, 200_001).astype(np.float32)
    x = np.concatenate([x, np.float32(np.random.default_rng(0).uniform(-1, 1, 50_000)),
                        np.array([-np.inf, np.nan, 88.72, 88.73, -87.3, -103.0], np.float32)])
    c = 1001
    y = np.zeros(((x.size + c - 2) // (c - 1), c), np.float32)
    y[:, 1:].flat[: x.size] = x
    gy = np.zeros_like(y)
    gy[:, 0] = 1
    got = 0.0 - fv.ops.log_softmax_backward(gy, y)[:, 1:]  # 0 - (-0) = +0, not -0
    with np.errstate(over="ignore"):
        want = np.exp(y[:, 1:].astype(np.float64)).astype(np.float32)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    fin = np.isfinite(want)
    ulps = np.abs(got[fin].view(np.int32).astype(np.int64) - want[fin].view(np.int32).astype(np.int64))
    assert ulps.max() <= 2
