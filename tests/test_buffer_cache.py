"""The output buffer cache (csrc/core/buffer_cache.h): large outputs are recycled, and every
kernel writes every element of a recycled (stale) buffer."""

import gc

import numpy as np
import pytest

import fastvision as fv

RNG = np.random.default_rng(7)
X = RNG.standard_normal((8, 16, 24, 24)).astype(np.float32)      # 295 KB: cached sizes
W = RNG.standard_normal((32, 16, 3, 3)).astype(np.float32)
B = RNG.standard_normal(32).astype(np.float32)
GY = RNG.standard_normal((8, 32, 22, 22)).astype(np.float32)
XL = RNG.standard_normal((512, 300)).astype(np.float32)
WL = RNG.standard_normal((200, 300)).astype(np.float32)
GL = RNG.standard_normal((512, 200)).astype(np.float32)

CASES = {
    "relu": lambda: fv.ops.relu(X),
    "relu_backward": lambda: fv.ops.relu_backward(X, X),
    "conv2d_relu": lambda: fv.ops.conv2d_relu(X, W, B),
    "conv2d_backward": lambda: fv.ops.conv2d_backward(GY, X, W),
    "max_pool2d": lambda: fv.ops.max_pool2d(X, 2, return_indices=True),
    "max_pool2d_backward": lambda: fv.ops.max_pool2d_backward(
        X[:, :, ::2, ::2].copy(), fv.ops.max_pool2d(X, 2, return_indices=True)[1], X.shape),
    "avg_pool2d_backward": lambda: fv.ops.avg_pool2d_backward(X[:, :, 1:, 1:].copy(), X.shape, 2, 1),
    "linear": lambda: fv.ops.linear(XL, WL),
    "linear_backward": lambda: fv.ops.linear_backward(GL, XL, WL),
    "matmul": lambda: fv.ops.matmul(XL, WL, trans_b=True),
}


def as_tuple(r):
    return tuple(a for a in (r if isinstance(r, tuple) else (r,)) if isinstance(a, np.ndarray))


@pytest.mark.parametrize("name", sorted(CASES))
def test_recycled_stale_buffers_are_fully_overwritten(isa, name):
    first = as_tuple(CASES[name]())
    want = [a.copy() for a in first]
    for a in first:  # poison, then free: the next call gets these very blocks back
        a.fill(np.nan if a.dtype.kind == "f" else -7)
    del first, a
    gc.collect()
    again = as_tuple(CASES[name]())
    for got, ref in zip(again, want):
        np.testing.assert_array_equal(got, ref)


def test_freed_outputs_are_reused_and_can_be_released():
    fv._C.empty_cache()
    assert fv._C.cached_free_bytes() == 0
    y = fv.ops.relu(X)
    addr = y.ctypes.data
    assert addr % 64 == 0 and y.flags.c_contiguous and y.flags.writeable
    del y
    held = fv._C.cached_free_bytes()
    assert held >= X.nbytes
    y2 = fv.ops.relu(X)
    assert y2.ctypes.data == addr                  # the same block, no new pages
    assert fv._C.cached_free_bytes() < held        # taken out of the free list
    del y2
    fv._C.empty_cache()
    assert fv._C.cached_free_bytes() == 0


def test_small_outputs_bypass_the_cache():
    fv._C.empty_cache()
    y = fv.ops.relu(np.ones(100, np.float32))
    del y
    assert fv._C.cached_free_bytes() == 0


def test_public_empty_cache():
    y = fv.ops.relu(X)
    del y
    assert fv._C.cached_free_bytes() > 0
    fv.empty_cache()
    assert fv._C.cached_free_bytes() == 0
