"""matmul / linear references in float64 (plain NumPy; the spec of fastvision.ops._gemm)."""

import numpy as np


def _f64(x):
    return np.asarray(x, dtype=np.float64)


def matmul(a, b, trans_a=False, trans_b=False):
    a, b = _f64(a), _f64(b)
    return (a.T if trans_a else a) @ (b.T if trans_b else b)


def linear(x, w, b=None):
    """x (..., in) @ w.T (in, out) + b (out,)."""
    y = _f64(x) @ _f64(w).T
    return y if b is None else y + _f64(b)


def linear_relu(x, w, b=None):
    y = linear(x, w, b)
    return np.where(y < 0, 0.0, y)


def linear_backward(grad_y, x, w):
    """(grad_x, grad_w, grad_b) of y = x @ w.T + b; leading dimensions of x are batch."""
    gy, x, w = _f64(grad_y), _f64(x), _f64(w)
    gy2 = gy.reshape(-1, w.shape[0])
    x2 = x.reshape(-1, w.shape[1])
    return gy @ w, gy2.T @ x2, gy2.sum(axis=0)
