"""The one tolerance table.

fp32 kernels are compared with float64 NumPy references. A sum of K products computed in
fp32 in any order satisfies |fl(s) - s| <= gamma_K * sum|terms|, gamma_K ~ K * eps (Higham,
ch. 3). So the bound grows with the reduction length K and scales with `abs_sum`, the
reference evaluated on |inputs| (the sum of the magnitudes of the terms). FACTOR[op] is the
multiple of K * eps allowed, with the reason where it is not 1.
"""

import numpy as np

EPS32 = float(np.finfo(np.float32).eps)
WINOGRAD_EXTRA_K = 10

FACTOR = {
    "elementwise": 1.0,       # K = 1: one rounding
    "matmul": 1.0,
    "linear": 1.0,
    "conv2d": 1.0,
    "conv2d_backward": 1.0,
    # Winograd F(2x2, 3x3): the input / weight / output transforms add a fixed ~10 roundings
    # whatever K (callers pass k = K + WINOGRAD_EXTRA_K) on values that are sums of up to 4
    # (inputs) or 3 (weights) terms, hence the factor (Lavin & Gray 2016; Barabasz et al.
    # 2020 bound the error by a small constant times im2col's). Normwise only: the tests
    # scale it by the largest abs_sum (test_conv_winograd._normwise).
    "conv2d_winograd": 4.0,
    # Winograd F(4x4, 3x3): the same form, but its transforms weigh a 6x6 patch with
    # coefficients up to 5 (inputs), 4 (weights) and 24 (outputs) before the one scaling by
    # 1/576, so the rounding of the transformed values is about 15x F(2x2)'s (measured: worst
    # 1.5 of this bound at factor 1 over 150 random shapes, F(2x2) 0.09; Barabasz et al.
    # 2020 find the same growth with the tile size).
    "conv2d_winograd4": 16.0,
    "pool": 1.0,              # max is exact; avg is a K-term sum then a division
    "softmax_cross_entropy": 4.0,  # exp/log add a few ulps on top of the K-term sums
    "log_softmax": 4.0,
    "optim": 8.0,             # a chain of ~8 roundings per element (moments, sqrt, division)
}


def assert_close(actual, expected, *, op, k=1, abs_sum=None, atol_floor=0.0):
    """|actual - expected| <= FACTOR[op] * (k + 1) * eps * abs_sum + atol_floor, elementwise."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{op}: shape {actual.shape} != {expected.shape}"
    scale = np.abs(expected) if abs_sum is None else np.asarray(abs_sum, dtype=np.float64)
    bound = FACTOR[op] * (k + 1) * EPS32 * scale + atol_floor
    nan_a, nan_e = np.isnan(actual), np.isnan(expected)
    assert np.array_equal(nan_a, nan_e), f"{op}: NaN positions differ"
    err = np.where(nan_e, 0.0, np.abs(actual - expected))
    bad = err > bound
    if bad.any():
        i = np.unravel_index(np.argmax(np.where(bad, err - bound, -np.inf)), err.shape)
        raise AssertionError(f"{op}: {bad.sum()} of {err.size} elements out of bound; worst at "
                             f"{i}: got {actual[i]!r}, want {expected[i]!r}, bound {bound[i]!r} "
                             f"(k={k})")
