"""Tensor: a float32 NumPy array with reverse-mode autograd (fastvision/autograd.py).

    x = fv.tensor([[1., 2.], [3., 4.]], requires_grad=True)
    y = (x * x + 1).sum()
    y.backward()            # x.grad is a Tensor: 2 * x

A Tensor wraps its array without copying (`Tensor(arr)` for a float32 ndarray; `.data` is
the array, `np.asarray(t)` returns it). `fv.tensor(data)` copies, as torch.tensor. Arithmetic
(+, -, *, / with NumPy broadcasting, unary -, ** by a scalar, @ on 2-D, sum, mean, reshape,
flatten, indexing) records Functions when grad is enabled and an input requires grad;
gradients over broadcast dimensions are summed back to the input's shape.
"""

import math
import numbers

import numpy as np

from fastvision import autograd, ops
from fastvision._random import get_generator
from fastvision.autograd import Function


def _unbroadcast(g, shape):
    """Sum g down to `shape` (the inverse of NumPy broadcasting)."""
    if g.shape == shape:
        return g
    g = g.sum(axis=tuple(range(g.ndim - len(shape)))) if g.ndim > len(shape) else g
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


class _Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (np.shape(a), np.shape(b))
        return np.add(a, b, dtype=np.float32)

    @staticmethod
    def backward(ctx, g):
        return _unbroadcast(g, ctx.shapes[0]), _unbroadcast(g, ctx.shapes[1])


class _Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (np.shape(a), np.shape(b))
        return np.subtract(a, b, dtype=np.float32)

    @staticmethod
    def backward(ctx, g):
        return _unbroadcast(g, ctx.shapes[0]), _unbroadcast(-g, ctx.shapes[1])


class _Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.multiply(a, b, dtype=np.float32)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return (_unbroadcast(g * b, np.shape(a)) if ctx.needs_input_grad[0] else None,
                _unbroadcast(g * a, np.shape(b)) if ctx.needs_input_grad[1] else None)


class _Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.divide(a, b, dtype=np.float32)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        ga = _unbroadcast(g / b, np.shape(a)) if ctx.needs_input_grad[0] else None
        gb = _unbroadcast(-g * a / (b * b), np.shape(b)) if ctx.needs_input_grad[1] else None
        return ga, gb


class _Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, g):
        return -g


class _Pow(Function):
    @staticmethod
    def forward(ctx, a, exponent):
        ctx.save_for_backward(a)
        ctx.exponent = exponent
        return np.power(a, np.float32(exponent), dtype=np.float32)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        e = np.float32(ctx.exponent)
        return g * e * np.power(a, e - np.float32(1), dtype=np.float32), None


class _Sum(Function):
    @staticmethod
    def forward(ctx, a, dim, keepdim):
        ctx.shape, ctx.dim, ctx.keepdim = a.shape, dim, keepdim
        return np.asarray(a.sum(axis=dim, keepdims=keepdim, dtype=np.float32))

    @staticmethod
    def backward(ctx, g):
        if ctx.dim is not None and not ctx.keepdim:
            g = np.expand_dims(g, ctx.dim)
        return np.broadcast_to(g, ctx.shape), None, None


class _Reshape(Function):
    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        return a.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape), None


class _Index(Function):
    @staticmethod
    def forward(ctx, a, index):
        ctx.shape, ctx.index = a.shape, index
        return np.asarray(a[index])

    @staticmethod
    def backward(ctx, g):
        out = np.zeros(ctx.shape, dtype=np.float32)
        np.add.at(out, ctx.index, g)  # repeated indices accumulate
        return out, None


class _MatMul(Function):
    @staticmethod
    def forward(ctx, a, b):
        if a.ndim != 2 or b.ndim != 2:
            raise ValueError(f"matmul: both operands must be 2-D, got shapes {a.shape} and "
                             f"{b.shape}")
        ctx.save_for_backward(a, b)
        return ops.matmul(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return (ops.matmul(g, b, trans_b=True) if ctx.needs_input_grad[0] else None,
                ops.matmul(a, g, trans_a=True) if ctx.needs_input_grad[1] else None)


def _dims(op, dims):
    """(2, 3), ((2, 3),) or ([2, 3],) -> (2, 3)."""
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    if all(type(d) is int for d in dims):  # the common case, without the ABC checks below
        return tuple(dims)
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, numbers.Integral):
            raise TypeError(f"{op}: sizes must be ints, got {type(d).__name__}")
    return tuple(int(d) for d in dims)


def _operand(v):
    return v if isinstance(v, Tensor) else np.asarray(v, dtype=np.float32)


class Tensor:
    __array_ufunc__ = None  # ndarray (op) Tensor defers to Tensor's reflected operators

    def __init__(self, data, requires_grad=False):
        if isinstance(data, Tensor):
            data = data.data
        if not (isinstance(data, np.ndarray) and data.dtype == np.float32):
            data = np.asarray(data, dtype=np.float32)
        self.data = data
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._node = None

    # --- NumPy interop and metadata ---
    def __array__(self, dtype=None, copy=None):
        if copy:
            return np.array(self.data, dtype=dtype, copy=True)
        if copy is False and dtype is not None and np.dtype(dtype) != self.data.dtype:
            raise ValueError(f"Tensor.__array__: cannot convert float32 to {np.dtype(dtype)} "
                             "without a copy")
        return self.data if dtype is None else self.data.astype(dtype, copy=False)

    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    is_leaf = property(lambda self: self._node is None)
    grad_fn = property(lambda self: self._node)

    def size(self, dim=None):
        return self.data.shape if dim is None else self.data.shape[dim]

    def numel(self):
        return int(self.data.size)

    def __len__(self):
        return len(self.data)

    def numpy(self):
        """The underlying array (shared, not a copy)."""
        return self.data

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item: only one-element tensors can be converted to a Python "
                             f"scalar, got shape {self.shape}")
        return float(self.data.reshape(-1)[0])

    def detach(self):
        """A new leaf sharing this tensor's data, outside the graph."""
        return Tensor(self.data)

    def requires_grad_(self, requires_grad=True):
        self.requires_grad = bool(requires_grad)
        return self

    def backward(self, grad=None):
        autograd.backward(self, grad)

    def __repr__(self):
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        if self._node is not None:
            return f"tensor({body}, grad_fn={self._node!r})"
        return f"tensor({body}, requires_grad=True)" if self.requires_grad else f"tensor({body})"

    # --- differentiable operations ---
    def __add__(self, o): return _Add.apply(self, _operand(o))
    def __radd__(self, o): return _Add.apply(_operand(o), self)
    def __sub__(self, o): return _Sub.apply(self, _operand(o))
    def __rsub__(self, o): return _Sub.apply(_operand(o), self)
    def __mul__(self, o): return _Mul.apply(self, _operand(o))
    def __rmul__(self, o): return _Mul.apply(_operand(o), self)
    def __truediv__(self, o): return _Div.apply(self, _operand(o))
    def __rtruediv__(self, o): return _Div.apply(_operand(o), self)
    def __neg__(self): return _Neg.apply(self)
    def __matmul__(self, o): return _MatMul.apply(self, _operand(o))
    def __rmatmul__(self, o): return _MatMul.apply(_operand(o), self)
    def __getitem__(self, index): return _Index.apply(self, index)

    def __pow__(self, exponent):
        if isinstance(exponent, bool) or not isinstance(exponent, numbers.Real):
            raise TypeError(f"pow: exponent must be a real number, got {type(exponent).__name__}")
        return _Pow.apply(self, float(exponent))

    def sum(self, dim=None, keepdim=False):
        return _Sum.apply(self, dim, bool(keepdim))

    def mean(self, dim=None, keepdim=False):
        n = self.data.size if dim is None else np.prod([self.shape[d] for d in np.atleast_1d(dim)])
        return self.sum(dim, keepdim) / float(n)

    def reshape(self, *shape):
        return _Reshape.apply(self, _dims("reshape", shape))

    view = reshape

    def flatten(self, start_dim=0, end_dim=-1):
        nd = max(self.ndim, 1)
        s, e = start_dim % nd, end_dim % nd
        if s > e:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
        shape = self.shape[:s] + (math.prod(self.shape[s:e + 1]),) + self.shape[e + 1:]
        return self.reshape(shape)

    def relu(self):
        from fastvision.nn.functional import relu
        return relu(self)

    def zero_(self):
        self.data.fill(0)
        return self


def tensor(data, requires_grad=False):
    """A new float32 Tensor holding a copy of data (as torch.tensor)."""
    if isinstance(data, Tensor):
        data = data.data
    return Tensor(np.array(data, dtype=np.float32, order="C"), requires_grad=requires_grad)


def zeros(*size, requires_grad=False):
    return Tensor(np.zeros(_dims("zeros", size), dtype=np.float32), requires_grad)


def ones(*size, requires_grad=False):
    return Tensor(np.ones(_dims("ones", size), dtype=np.float32), requires_grad)


def randn(*size, generator=None, requires_grad=False):
    """Standard normal samples; generator: None (the fastvision.manual_seed generator), an int
    seed, or a numpy.random.Generator."""
    g = get_generator(generator)
    return Tensor(g.standard_normal(_dims("randn", size), dtype=np.float32), requires_grad)
