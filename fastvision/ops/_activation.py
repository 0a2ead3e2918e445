"""relu and its backward."""

from fastvision import _C
from fastvision.ops._args import as_f32


def relu(x):
    """max(x, 0) elementwise; NaN propagates, as torch.relu."""
    return _C.relu(as_f32("relu", "x", x))


def relu_backward(grad_y, y):
    """grad_x = grad_y where y > 0, else 0 (y is relu's output)."""
    return _C.relu_backward(as_f32("relu_backward", "grad_y", grad_y),
                            as_f32("relu_backward", "y", y))
