"""Matrix multiply and linear layers (fp32 sgemm underneath).

matmul(a, b, trans_a=, trans_b=) is a plain 2-D product; linear / linear_relu / linear_backward
follow torch.nn.functional.linear: x (..., in), w (out, in), b (out,) or None.
"""

from fastvision import _C
from fastvision.ops._args import as_f32


def _flag(op: str, name: str, v) -> bool:
    if not isinstance(v, bool):
        raise TypeError(f"{op}: {name} must be a bool, got {type(v).__name__}")
    return v


def matmul(a, b, *, trans_a=False, trans_b=False):
    """op(a) @ op(b) for 2-D a, b, where op transposes when trans_a / trans_b is set."""
    return _C.matmul(as_f32("matmul", "a", a), as_f32("matmul", "b", b),
                     trans_a=_flag("matmul", "trans_a", trans_a),
                     trans_b=_flag("matmul", "trans_b", trans_b))


def _bias(op, b):
    return None if b is None else as_f32(op, "b", b)


def linear(x, w, b=None):
    """x @ w.T + b, as torch.nn.functional.linear (x may have leading batch dimensions)."""
    return _C.linear(as_f32("linear", "x", x), as_f32("linear", "w", w), _bias("linear", b))


def linear_relu(x, w, b=None):
    """relu(x @ w.T + b) in one pass: bias and relu are applied as each output tile is stored."""
    return _C.linear_relu(as_f32("linear_relu", "x", x), as_f32("linear_relu", "w", w),
                          _bias("linear_relu", b))


def linear_backward(grad_y, x, w, *, need_input_grad=True):
    """Gradients of linear: (grad_x or None, grad_w, grad_b).

    grad_x = grad_y @ w, grad_w = grad_y.T @ x, grad_b = grad_y summed over all leading
    dimensions (in a fixed order, so the same bits at any thread count).
    """
    op = "linear_backward"
    return _C.linear_backward(as_f32(op, "grad_y", grad_y), as_f32(op, "x", x),
                              as_f32(op, "w", w),
                              need_input_grad=_flag(op, "need_input_grad", need_input_grad))
