"""Differentiable layers as functions over Tensors (torch.nn.functional names and defaults).

Each is an autograd Function whose forward and backward call the fp32 kernels in
fastvision.ops. Inputs may be Tensors or arrays (arrays are constants: no gradient).
cross_entropy uses the fused softmax_cross_entropy kernel, which returns the gradient with
the loss; its backward only scales that gradient by the upstream one. conv2d_relu and
linear_relu are the fused forms nn.Sequential uses for a Conv2d/Linear followed by a ReLU,
conv2d_relu_max_pool2d the one for Conv2d, ReLU, MaxPool2d.
"""

import functools
import numbers

import numpy as np

from fastvision import ops
from fastvision._random import get_generator
from fastvision.autograd import Function
from fastvision.tensor import Tensor


def _t(x):
    return x if isinstance(x, Tensor) else Tensor(x)


class _Conv2d(Function):
    fresh_grads = True  # the kernel's new arrays (autograd: they become parameters' .grad)

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, dilation, groups, fuse_relu):
        ctx.args = (stride, padding, dilation, groups)
        y = (ops.conv2d_relu if fuse_relu else ops.conv2d)(x, w, b, *ctx.args)
        ctx.save_for_backward(x, w, y if fuse_relu else None)
        return y

    @staticmethod
    def backward(ctx, g):
        x, w, y = ctx.saved_tensors
        if y is not None:
            g = ops.relu_backward(g, y)
        need = ctx.needs_input_grad
        gx, gw, gb = ops.conv2d_backward(g, x, w, *ctx.args, need_input_grad=need[0],
                                         need_weight_grad=need[1], need_bias_grad=need[2])
        return gx, gw, gb, None, None, None, None, None


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return _Conv2d.apply(_t(input), weight, bias, stride, padding, dilation, groups, False)


def conv2d_relu(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """relu(conv2d(...)) with the relu fused into the convolution's store."""
    return _Conv2d.apply(_t(input), weight, bias, stride, padding, dilation, groups, True)


class _Conv2dReLUMaxPool2d(Function):
    """max_pool2d(relu(conv2d(x))) as one node. The relu's output has no other consumer, so
    its mask can be applied to the pooled gradient before the pool's scatter instead of to the
    full-size gradient after it: the pool picks y[idx[k]] = pooled[k], so y > 0 at every
    position a gradient lands on exactly when pooled[k] > 0. Same gradient, bit for bit (each
    position receives the same terms), one pass over a 4x smaller tensor instead of the full
    activation, and the full-size relu output is not kept for the backward pass.
    A 2x2 stride-2 pool keeps uint8 window codes instead of int64 indices
    (ops.max_pool2d_2x2), and its backward applies the mask and writes the 2x2 blocks in one
    pass: the reference conv1's pool, forward + backward, 0.29 -> 0.21 ms. With codes, forward
    and backward each run as one op (ops.conv2d_relu_max_pool2d_2x2,
    ops.conv2d_max_pool2d_2x2_backward), and the forward pools in the conv's registers where
    its path can: the direct kernel (the reference conv1, AVX-512) and Winograd F(4x4)'s output
    transform (the reference conv2): the conv's output is never written. On the direct path
    without an input gradient, the conv's gradient is made a few planes at a time in cache,
    never whole. Where the conv cannot pool itself, codes measured as fast as indices (rows of
    4 and 5: 2 threads, AVX-512 and AVX2)."""

    fresh_grads = True  # the kernels' new arrays

    @staticmethod
    def forward(ctx, x, w, b, conv_args, pool_args):
        ctx.conv_args = conv_args
        ctx.codes = _takes_codes(x.shape, w.shape, conv_args, pool_args)
        if ctx.codes:  # ctx.argmax: uint8 window codes, or int64 indices
            pooled, ctx.argmax = ops.conv2d_relu_max_pool2d_2x2(x, w, b, *conv_args)
        else:
            y = ops.conv2d_relu(x, w, b, *conv_args)
            ctx.y_shape = y.shape
            pooled, ctx.argmax = ops.max_pool2d(y, *pool_args, return_indices=True)
        ctx.save_for_backward(x, w, pooled)
        return pooled

    @staticmethod
    def backward(ctx, g):
        x, w, pooled = ctx.saved_tensors
        need = ctx.needs_input_grad
        if ctx.codes:  # the pool's and the conv's backward in one op (conv1: gy made per image)
            gx, gw, gb = ops.conv2d_max_pool2d_2x2_backward(
                g, ctx.argmax, x, w, *ctx.conv_args, relu_y=pooled, need_input_grad=need[0],
                need_weight_grad=need[1], need_bias_grad=need[2])
            return gx, gw, gb, None, None
        gy = ops.max_pool2d_backward(ops.relu_backward(g, pooled), ctx.argmax, ctx.y_shape)
        gx, gw, gb = ops.conv2d_backward(gy, x, w, *ctx.conv_args, need_input_grad=need[0],
                                         need_weight_grad=need[1], need_bias_grad=need[2])
        return gx, gw, gb, None, None


def _as_pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _is_2x2(pool_args):
    """Whether (kernel_size, stride, padding, dilation, ceil_mode) is a plain 2x2 stride-2
    pool (stride None: the kernel size)."""
    k, s, p, d, ceil_mode = pool_args
    return (_as_pair(k) == (2, 2) and (s is None or _as_pair(s) == (2, 2))
            and _as_pair(p) == (0, 0) and _as_pair(d) == (1, 1) and not ceil_mode)


def _decide_codes(x_shape, w_shape, conv_args, pool_args):
    """Whether the fused node pools with uint8 codes: a 2x2 stride-2 pool over a conv output
    of at least 2x2 (see _Conv2dReLUMaxPool2d; a smaller one takes max_pool2d, which raises
    its error)."""
    hw = _is_2x2(pool_args) and ops.conv2d_output_hw(x_shape, w_shape, *conv_args[:3])
    return bool(hw) and min(hw) >= 2


_remembered_codes = functools.lru_cache(maxsize=256)(_decide_codes)  # the same every step


def _takes_codes(x_shape, w_shape, conv_args, pool_args):
    """_decide_codes, remembered per shapes and arguments (unhashable ones, lists: decided
    each time)."""
    try:
        return _remembered_codes(x_shape, w_shape, conv_args, pool_args)
    except TypeError:
        return _decide_codes(x_shape, w_shape, conv_args, pool_args)


def conv2d_relu_max_pool2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                           *, kernel_size, pool_stride=None, pool_padding=0, pool_dilation=1,
                           ceil_mode=False):
    """max_pool2d(relu(conv2d(...)), kernel_size, pool_stride, ...) as one autograd node: the
    values and gradients of the three layers, with less memory traffic in backward."""
    return _Conv2dReLUMaxPool2d.apply(
        _t(input), weight, bias, (stride, padding, dilation, groups),
        (kernel_size, pool_stride, pool_padding, pool_dilation, ceil_mode))


class _Linear(Function):
    fresh_grads = True  # the kernel's new arrays

    @staticmethod
    def forward(ctx, x, w, b, fuse_relu):
        y = (ops.linear_relu if fuse_relu else ops.linear)(x, w, b)
        ctx.save_for_backward(x, w, y if fuse_relu else None)
        return y

    @staticmethod
    def backward(ctx, g):
        x, w, y = ctx.saved_tensors
        if y is not None:
            g = ops.relu_backward(g, y)
        gx, gw, gb = ops.linear_backward(g, x, w, need_input_grad=ctx.needs_input_grad[0])
        return gx, gw, gb, None


def linear(input, weight, bias=None):
    return _Linear.apply(_t(input), weight, bias, False)


def linear_relu(input, weight, bias=None):
    """relu(linear(...)) with the relu fused into the matrix product's store."""
    return _Linear.apply(_t(input), weight, bias, True)


class _ReLU(Function):
    @staticmethod
    def forward(ctx, x):
        y = ops.relu(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        return ops.relu_backward(g, ctx.saved_tensors[0])


def relu(input, inplace=False):
    """max(input, 0). inplace is accepted for torch compatibility; a new tensor is returned."""
    return _ReLU.apply(_t(input))


class _MaxPool2d(Function):
    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, dilation, ceil_mode):
        y, idx = ops.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode,
                                return_indices=True)
        ctx.shape, ctx.indices = x.shape, idx
        return y, idx

    @staticmethod
    def backward(ctx, g):
        return (ops.max_pool2d_backward(g, ctx.indices, ctx.shape),) + (None,) * 5


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max pooling; with return_indices also the int64 indices (a NumPy array)."""
    y, idx = _MaxPool2d.apply(_t(input), kernel_size, stride, padding, dilation, ceil_mode)
    return (y, idx) if return_indices else y


class _AvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, *args):
        ctx.shape, ctx.args = x.shape, args
        return ops.avg_pool2d(x, *args)

    @staticmethod
    def backward(ctx, g):
        return (ops.avg_pool2d_backward(g, ctx.shape, *ctx.args),) + (None,) * len(ctx.args)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    return _AvgPool2d.apply(_t(input), kernel_size, stride, padding, ceil_mode,
                            count_include_pad)


def flatten(input, start_dim=1, end_dim=-1):
    """As torch.flatten (note torch.nn.functional has no flatten; nn.Flatten's default
    start_dim=1 is used here, keeping the batch dimension)."""
    return _t(input).flatten(start_dim, end_dim)


class _Dropout(Function):
    @staticmethod
    def forward(ctx, x, mask):
        ctx.mask = mask
        return x * mask

    @staticmethod
    def backward(ctx, g):
        return g * ctx.mask, None


def dropout(input, p=0.5, training=True, inplace=False, generator=None):
    """Zero each element with probability p and scale the rest by 1/(1-p) when training;
    the identity otherwise. The mask comes from the fastvision.manual_seed generator (or
    generator=: an int seed or a numpy.random.Generator)."""
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be a probability in [0, 1], got {p!r}")
    x = _t(input)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        mask = np.zeros(x.shape, dtype=np.float32)
    else:
        keep = get_generator(generator).random(x.shape, dtype=np.float32) >= np.float32(p)
        mask = keep.astype(np.float32) * np.float32(1.0 / (1.0 - p))
    return _Dropout.apply(x, mask)


class _LogSoftmax(Function):
    @staticmethod
    def forward(ctx, x, dim):
        y = ops.log_softmax(x, dim)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        return ops.log_softmax_backward(g, ctx.saved_tensors[0]), None


def log_softmax(input, dim=None):
    """log(softmax(input)) over dim of 2-D (N, C) input (dim None means 1, torch's choice for
    2-D input)."""
    return _LogSoftmax.apply(_t(input), 1 if dim is None else dim)


class _CrossEntropy(Function):
    @staticmethod
    def forward(ctx, logits, target, reduction, label_smoothing):
        loss, grad = ops.softmax_cross_entropy(logits, target, reduction, label_smoothing)
        ctx.grad, ctx.reduction = grad, reduction
        return np.asarray(loss, dtype=np.float32)

    @staticmethod
    def backward(ctx, g):
        if ctx.reduction == "none":
            return ctx.grad * g[:, None], None, None, None
        return ctx.grad * g, None, None, None


def cross_entropy(input, target, *, reduction="mean", label_smoothing=0.0):
    """Cross-entropy of softmax(input) (N, C) against int class labels target (N,) in [0, C)
    (an integer array; a Tensor is float32 and is rejected like a float label), with torch's
    label smoothing; reduction 'mean' | 'sum' | 'none'."""
    if isinstance(target, Tensor):
        target = target.data
    return _CrossEntropy.apply(_t(input), target, reduction, label_smoothing)


class _MSELoss(Function):
    @staticmethod
    def forward(ctx, x, t, reduction):
        if np.shape(x) != np.shape(t):
            raise ValueError(f"mse_loss: input and target must have the same shape, got "
                             f"{np.shape(x)} and {np.shape(t)}")
        d = np.subtract(x, t, dtype=np.float32)
        ctx.diff, ctx.reduction = d, reduction
        sq = d * d
        if reduction == "none":
            return sq
        # summed in float64: a long fp32 sum would lose digits the loss curve shows
        s = sq.sum(dtype=np.float64)
        return np.asarray(s / d.size if reduction == "mean" else s, dtype=np.float32)

    @staticmethod
    def backward(ctx, g):
        scale = np.float32(2.0 / ctx.diff.size if ctx.reduction == "mean" else 2.0)
        gx = (scale * g) * ctx.diff
        return gx, -gx, None


def mse_loss(input, target, reduction="mean"):
    """Mean (or sum, or elementwise) squared error, as torch.nn.functional.mse_loss."""
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"mse_loss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return _MSELoss.apply(_t(input), target if isinstance(target, Tensor) else
                          np.asarray(target, dtype=np.float32), reduction)
