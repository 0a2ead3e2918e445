"""relu forward/backward against the NumPy reference, at every ISA level."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

import fastvision as fv
from reference import activation as ref
from tolerances import assert_close

SIZES = [1, 7, 8, 9, 15, 16, 17, 31, 33, 65, 16 * 1024 + 3]


@pytest.mark.parametrize("n", SIZES)
def test_relu_matches_reference(isa, rng, n):
    x = rng.standard_normal(n).astype(np.float32)
    x[:: 5] = 0.0
    y = fv.ops.relu(x)
    assert_close(y, ref.relu(x), op="elementwise")
    gy = rng.standard_normal(n).astype(np.float32)
    assert_close(fv.ops.relu_backward(gy, y), ref.relu_backward(gy, y), op="elementwise")


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=70))
def test_relu_special_values_bit_identical_across_isas(values):
    x = np.array(values, dtype=np.float32)
    outs = []
    for level in fv.available_isas():
        fv.set_isa(level)
        outs.append(fv.ops.relu(x).view(np.uint32))
    fv.set_isa(fv.detected_isa())
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])
    np.testing.assert_array_equal(np.isnan(fv.ops.relu(x)), np.isnan(x))


def test_relu_keeps_shape_and_converts_input(isa):
    x = np.arange(-6, 6, dtype=np.float64).reshape(3, 4)[:, ::2]  # float64, non-contiguous
    y = fv.ops.relu(x)
    assert y.dtype == np.float32 and y.shape == (3, 2)
    np.testing.assert_array_equal(y, np.maximum(x, 0))


def test_relu_backward_shape_mismatch_raises():
    with pytest.raises(ValueError, match=r"relu_backward: grad_y shape \(3,\) must equal y shape \(4,\)"):
        fv.ops.relu_backward(np.ones(3, np.float32), np.ones(4, np.float32))


def test_relu_rejects_non_numeric():
    with pytest.raises(TypeError, match="relu: x must be an array of numbers, got str"):
        fv.ops.relu("abc")
    with pytest.raises(TypeError, match="relu: x must have a real numeric dtype"):
        fv.ops.relu(np.array(["a"]))


def test_relu_backward_matches_finite_differences(isa, rng):
    """d/dx sum(g * relu(x)) by central differences in float64, away from the kink at 0."""
    x = rng.standard_normal(40)
    x = np.where(np.abs(x) < 0.05, 0.5, x)
    g = rng.standard_normal(40)
    h = 1e-6
    fd = (np.sum(g * ref.relu(x + h)) - np.sum(g * ref.relu(x - h))) / (2 * h)
    fd_each = np.array([(np.sum(g * ref.relu(x + h * e)) - np.sum(g * ref.relu(x - h * e))) / (2 * h)
                        for e in np.eye(40)])
    y = fv.ops.relu(x)
    got = fv.ops.relu_backward(g, y)
    np.testing.assert_allclose(got, fd_each, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.sum(dtype=np.float64), fd, rtol=1e-5, atol=1e-5)
