"""NumPy-level kernels: float32 arrays in, float32 arrays out.

Names, arguments, defaults and semantics follow torch.nn.functional. Layouts: activations
NCHW, conv weights OIHW, linear weights (out, in). Read-only inputs that are not float32
C-contiguous are converted (a copy); in-place arguments of the wrong dtype or layout raise
TypeError. Bad shapes or values raise ValueError (OverflowError past index limits) before
anything is written.
"""

from fastvision.ops._activation import relu, relu_backward
from fastvision.ops._conv import (conv2d, conv2d_backward, conv2d_max_pool2d_2x2_backward,
                                  conv2d_output_hw, conv2d_relu, conv2d_relu_max_pool2d_2x2)
from fastvision.ops._gemm import linear, linear_backward, linear_relu, matmul
from fastvision.ops._loss import log_softmax, log_softmax_backward, softmax_cross_entropy
from fastvision.ops._optim import adam_step, adam_step_foreach, rmsprop_step, sgd_step
from fastvision.ops._pool import (avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_2x2,
                                  max_pool2d_2x2_backward, max_pool2d_backward)

__all__ = ["matmul", "linear", "linear_relu", "linear_backward",
           "relu", "relu_backward", "conv2d", "conv2d_relu", "conv2d_backward",
           "conv2d_relu_max_pool2d_2x2", "conv2d_max_pool2d_2x2_backward", "conv2d_output_hw",
           "max_pool2d", "max_pool2d_backward", "max_pool2d_2x2", "max_pool2d_2x2_backward",
           "avg_pool2d", "avg_pool2d_backward",
           "softmax_cross_entropy", "log_softmax", "log_softmax_backward",
           "sgd_step", "adam_step", "adam_step_foreach", "rmsprop_step"]
