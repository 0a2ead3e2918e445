"""NumPy-level kernels: float32 arrays in, float32 arrays out.

Names, arguments, defaults and semantics follow torch.nn.functional. Layouts: activations
NCHW, conv weights OIHW, linear weights (out, in). Read-only inputs that are not float32
C-contiguous are converted (a copy); in-place arguments of the wrong dtype or layout raise
TypeError. Bad shapes or values raise ValueError (OverflowError past index limits) before
anything is written.
"""

from fastvision.ops._activation import relu, relu_backward
from fastvision.ops._gemm import linear, linear_backward, linear_relu, matmul

__all__ = ["relu", "relu_backward", "matmul", "linear", "linear_relu", "linear_backward"]
