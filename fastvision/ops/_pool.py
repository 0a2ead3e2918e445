"""max_pool2d / avg_pool2d and their backward (torch.nn.functional semantics).

Inputs are NCHW float32 (or CHW for one image, as torch); outputs keep the input's rank.
max_pool2d indices are int64 flat offsets into each (n, c) plane's H*W, as torch: ties keep
the first position of the row-major window scan, and a NaN in a window gives NaN and the
position of the window's last NaN (torch's CPU kernel). Shape and value rules are checked in
C++ (csrc/ops/pool2d/pool2d_bind.cpp).
"""

import numpy as np

from fastvision import _C
from fastvision.ops._args import as_codes, as_f32, as_int, pair


def _shape(op, name, shape):
    if isinstance(shape, np.ndarray):
        shape = shape.tolist()
    if not isinstance(shape, (tuple, list)):
        raise TypeError(f"{op}: {name} must be a tuple of ints, got {type(shape).__name__}")
    return [as_int(op, f"{name}[{i}]", v) for i, v in enumerate(shape)]


def _stride(op, kernel_size, stride):
    # None (or an empty sequence, as torch) means stride = kernel_size
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        return kernel_size
    return pair(op, "stride", stride)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max over each window; with return_indices, also (y, indices)."""
    op = "max_pool2d"
    k = pair(op, "kernel_size", kernel_size)
    return _C.max_pool2d(as_f32(op, "x", x), k, _stride(op, k, stride),
                         pair(op, "padding", padding), pair(op, "dilation", dilation),
                         bool(ceil_mode), bool(return_indices))


def max_pool2d_backward(grad_y, indices, input_shape):
    """grad_x of shape input_shape: grad_y scattered (added) at the forward's indices."""
    op = "max_pool2d_backward"
    idx = np.asarray(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices must have an integer dtype, got {idx.dtype}")
    return _C.max_pool2d_backward(as_f32(op, "grad_y", grad_y),
                                  np.ascontiguousarray(idx, dtype=np.int64),
                                  _shape(op, "input_shape", input_shape))


def max_pool2d_2x2(x):
    """max_pool2d(x, 2) (stride 2, no padding, floor mode) returning (y, codes): codes (uint8,
    y's shape) name each window's winner, 0..3 row-major in its 2x2 window, the position
    max_pool2d's indices give (same rule for ties and NaN). An eighth of int64 indices' size,
    and valid by construction, so max_pool2d_2x2_backward needs no index check."""
    return _C.max_pool2d_2x2(as_f32("max_pool2d_2x2", "x", x))


def max_pool2d_2x2_backward(grad_y, codes, input_shape, relu_y=None):
    """grad_x of shape input_shape for max_pool2d_2x2: each window's input at its code gets
    grad_y, the others 0. With relu_y (the pooled values, when the pool's input is a relu's
    output), grad_y counts only where relu_y > 0: relu_backward applied on the pooled side,
    the same values as relu_backward(max_pool2d_backward(grad_y, ...), relu output)."""
    op = "max_pool2d_2x2_backward"
    return _C.max_pool2d_2x2_backward(as_f32(op, "grad_y", grad_y), as_codes(codes),
                                      _shape(op, "input_shape", input_shape),
                                      None if relu_y is None else as_f32(op, "relu_y", relu_y))


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """Mean over each window (zero padding counted when count_include_pad)."""
    op = "avg_pool2d"
    k = pair(op, "kernel_size", kernel_size)
    return _C.avg_pool2d(as_f32(op, "x", x), k, _stride(op, k, stride),
                         pair(op, "padding", padding), bool(ceil_mode), bool(count_include_pad))


def avg_pool2d_backward(grad_y, input_shape, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True):
    """grad_x of shape input_shape for avg_pool2d with the same arguments."""
    op = "avg_pool2d_backward"
    k = pair(op, "kernel_size", kernel_size)
    return _C.avg_pool2d_backward(as_f32(op, "grad_y", grad_y),
                                  _shape(op, "input_shape", input_shape), k,
                                  _stride(op, k, stride), pair(op, "padding", padding),
                                  bool(ceil_mode), bool(count_include_pad))
