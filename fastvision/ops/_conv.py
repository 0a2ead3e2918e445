"""conv2d, conv2d_relu (fused conv + bias + relu), conv2d_backward, and a conv + relu with
the 2x2 max pool after it in one op, forward (conv2d_relu_max_pool2d_2x2) and backward
(conv2d_max_pool2d_2x2_backward).

Semantics of torch.nn.functional.conv2d: x (N, C, H, W), w (O, C/groups, kh, kw), optional
bias (O,); stride / padding / dilation are an int or a pair; padding may also be 'valid'
(no padding) or 'same' (output H, W = input H, W; stride must be 1; with an even dilated
kernel the extra row/column of padding goes at the bottom/right, as torch does).
Shape and value rules are checked in C++ (csrc/ops/conv2d/conv2d_bind.cpp).
"""

from fastvision import _C
from fastvision.ops._args import as_codes, as_f32, as_int, pair


def _padding(op, padding, stride, dilation, w_shape):
    """(ph, pw), or (top, bottom, left, right) for 'same' with an even dilated kernel."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(f"{op}: padding='same' requires stride 1, got {stride}")
            if len(w_shape) != 4:
                return (0, 0)  # C++ reports the shape error
            out = []
            for d, k in zip(dilation, w_shape[2:]):
                total = d * (k - 1)
                out += [total // 2, total - total // 2]
            if out[0] == out[1] and out[2] == out[3]:
                return (out[0], out[2])
            return tuple(out)
        raise ValueError(f"{op}: padding must be 'valid', 'same', an int or a pair of ints, "
                         f"got {padding!r}")
    return pair(op, "padding", padding)


def _args(op, w, stride, padding, dilation, groups):
    stride = pair(op, "stride", stride)
    dilation = pair(op, "dilation", dilation)
    padding = _padding(op, padding, stride, dilation, w.shape)
    return stride, padding, dilation, as_int(op, "groups", groups)


def conv2d(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation) as torch.nn.functional.conv2d: (N, O, H_out, W_out)."""
    x = as_f32("conv2d", "x", x)
    w = as_f32("conv2d", "w", w)
    b = None if bias is None else as_f32("conv2d", "bias", bias)
    s, p, d, g = _args("conv2d", w, stride, padding, dilation, groups)
    return _C.conv2d(x, w, b, s, p, d, g)


def conv2d_relu(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """relu(conv2d(x, w, bias, ...)) in one pass (the relu is applied as each output is stored)."""
    x = as_f32("conv2d_relu", "x", x)
    w = as_f32("conv2d_relu", "w", w)
    b = None if bias is None else as_f32("conv2d_relu", "bias", bias)
    s, p, d, g = _args("conv2d_relu", w, stride, padding, dilation, groups)
    return _C.conv2d_relu(x, w, b, s, p, d, g)


def conv2d_backward(grad_y, x, w, stride=1, padding=0, dilation=1, groups=1, *,
                    need_input_grad=True, need_weight_grad=True, need_bias_grad=True):
    """Gradients of conv2d: (grad_x, grad_w, grad_b), each None where not asked for.

    grad_y has the forward output's shape; x, w and the hyper-parameters are the forward's.
    grad_b = grad_y summed over N, H, W (valid whether or not the forward had a bias).
    """
    op = "conv2d_backward"
    gy = as_f32(op, "grad_y", grad_y)
    x = as_f32(op, "x", x)
    w = as_f32(op, "w", w)
    s, p, d, g = _args(op, w, stride, padding, dilation, groups)
    return _C.conv2d_backward(gy, x, w, s, p, d, g, bool(need_input_grad),
                              bool(need_weight_grad), bool(need_bias_grad))


def conv2d_relu_max_pool2d_2x2(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """max_pool2d_2x2(conv2d_relu(x, w, bias, ...)) -> (pooled, codes) in one op, the bits of
    the two: on the direct path (one input channel per group, stride 1, dilation 1: the
    reference conv1) the conv's output is pooled a few planes at a time in cache instead of
    written and read back whole. The conv's output must be at least 2x2."""
    op = "conv2d_relu_max_pool2d_2x2"
    x = as_f32(op, "x", x)
    w = as_f32(op, "w", w)
    b = None if bias is None else as_f32(op, "bias", bias)
    s, p, d, g = _args(op, w, stride, padding, dilation, groups)
    return _C.conv2d_relu_max_pool2d_2x2(x, w, b, s, p, d, g)


def conv2d_output_hw(x_shape, w_shape, stride=1, padding=0, dilation=1):
    """(H_out, W_out) of conv2d for these shapes and hyper-parameters (torch's formula), or None
    where they are not valid (conv2d then raises the error)."""
    op = "conv2d"
    try:
        if len(x_shape) != 4 or len(w_shape) != 4:
            return None
        s = pair(op, "stride", stride)
        d = pair(op, "dilation", dilation)
        p = _padding(op, padding, s, d, w_shape)
    except (TypeError, ValueError):
        return None
    pads = (p[0], p[0], p[1], p[1]) if len(p) == 2 else p
    hw = []
    for i in range(2):
        span = x_shape[2 + i] + pads[2 * i] + pads[2 * i + 1] - d[i] * (w_shape[2 + i] - 1) - 1
        if span < 0 or s[i] < 1:
            return None
        hw.append(span // s[i] + 1)
    return tuple(hw)


def conv2d_max_pool2d_2x2_backward(grad_y, codes, x, w, stride=1, padding=0, dilation=1,
                                   groups=1, *, relu_y=None, need_input_grad=True,
                                   need_weight_grad=True, need_bias_grad=True):
    """Gradients (grad_x, grad_w, grad_b) of max_pool2d_2x2(conv2d(x, w, ...)), optionally with
    a relu between them: grad_y and codes are the pool's (max_pool2d_2x2), relu_y the pooled
    relu output when there is a relu. The same bits as max_pool2d_2x2_backward followed by
    conv2d_backward; without a data gradient, on the direct 3x3 path (one input channel per
    group, stride 1: the reference conv1), the conv's full-size gradient is made an image at a
    time in cache instead of written and read back whole."""
    op = "conv2d_max_pool2d_2x2_backward"
    codes = as_codes(codes)
    gy = as_f32(op, "grad_y", grad_y)
    relu_y = None if relu_y is None else as_f32(op, "relu_y", relu_y)
    x = as_f32(op, "x", x)
    w = as_f32(op, "w", w)
    s, p, d, g = _args(op, w, stride, padding, dilation, groups)
    return _C.conv2d_max_pool2d_2x2_backward(gy, codes, relu_y, x, w, s, p, d, g,
                                             bool(need_input_grad), bool(need_weight_grad),
                                             bool(need_bias_grad))
