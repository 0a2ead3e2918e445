"""The fused conv + relu + 2x2 pool node's ops: ops.conv2d_relu_max_pool2d_2x2 (forward) and
ops.conv2d_max_pool2d_2x2_backward. Each must give the bits of the ops it fuses, on the paths
that pool in the conv's registers (the direct kernel: the reference conv1; Winograd F(4x4)'s
output transform: the reference conv2), on the paths that make the conv's output or gradient
a few planes at a time (the direct path: one input channel per group, stride 1; backward
without an input gradient) or a block of images at a time (backward with both gradients on
Winograd F(4x4)'s fused pass: the reference conv2), and on the fallback that makes them whole;
and each must reject bad input before computing anything."""

import numpy as np
import pytest

import fastvision as fv
from fastvision import ops


def _forward(rng, shape, out_ch, padding, groups=1):
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((out_ch, shape[1] // groups, 3, 3)).astype(np.float32)
    b = rng.standard_normal(out_ch).astype(np.float32)
    b[::3] = -4.0  # whole maps (and so pooled windows) of relu zeros: masked gradients
    y = ops.conv2d_relu(x, w, b, padding=padding, groups=groups)
    pooled, codes = ops.max_pool2d_2x2(y)
    g = rng.standard_normal(pooled.shape).astype(np.float32)
    return x, w, y, pooled, codes, g


def _bits(a):
    return None if a is None else a.view(np.uint32)


# (x shape, out channels, padding, groups, need_input_grad); the direct path works a few planes
# at a time forward, and backward without an input gradient.
CASES = [
    ((64, 1, 28, 28), 32, 0, 1, False),   # the reference conv1
    ((13, 1, 17, 23), 8, 1, 1, False),    # padded, odd conv output (last row / column dropped)
    ((3, 1, 34, 34), 7, 0, 1, False),     # rows of 32 (AVX-512: the widest fused in registers);
                                          # 7 channels: register blocks of 4, 2 and 1
    ((2, 1, 36, 37), 3, 0, 1, False),     # rows of 35: conv planes pooled after the kernel
    ((3, 1, 9, 4), 5, 0, 1, False),       # 2 columns, 7 rows: one pooled column
    ((11, 2, 10, 12), 6, 1, 2, False),    # groups of one channel: group by group
    ((5, 3, 12, 14), 8, 1, 1, False),     # 3 input channels: output / gradient made whole
    ((4, 1, 12, 12), 8, 0, 1, True),      # an input gradient: gradient made whole
    # Winograd F(4x4) forward (>= 16 channels each way): the output transform pools its tiles
    ((64, 32, 13, 13), 64, 0, 1, True),   # the reference conv2 (11x11 -> 5x5); backward
                                          # makes gy per block of images (both gradients)
    ((13, 32, 13, 13), 64, 1, 1, True),   # padded, odd; 13 images: a partial last chunk
    ((3, 16, 14, 11), 24, 1, 1, False),   # padded, odd width: the last column is dropped
    ((2, 16, 11, 11), 17, 0, 1, True),    # 9x9: the last tile row holds no whole window
]


@pytest.mark.parametrize("shape, out_ch, padding, groups, need_input_grad", CASES)
def test_forward_equals_conv_relu_then_pool(isa, threads, rng, shape, out_ch, padding, groups,
                                           need_input_grad):
    x, w, y, pooled, codes, g = _forward(rng, shape, out_ch, padding, groups)
    b = rng.standard_normal(out_ch).astype(np.float32)
    b[::3] = -4.0
    for n in (1, 2):
        threads(n)
        got, got_codes = ops.conv2d_relu_max_pool2d_2x2(x, w, b, padding=padding, groups=groups)
        want, want_codes = ops.max_pool2d_2x2(ops.conv2d_relu(x, w, b, padding=padding,
                                                              groups=groups))
        np.testing.assert_array_equal(_bits(got), _bits(want))
        np.testing.assert_array_equal(got_codes, want_codes)


@pytest.mark.parametrize("shape", [(2, 1, 28, 28), (2, 1, 40, 40)])
def test_forward_nan_and_no_bias(isa, rng, shape):
    # NaN wins its window (max_pool2d_2x2's rule) and keeps its code; no bias on either path.
    x = rng.standard_normal(shape).astype(np.float32)
    x[0, 0, 5, 7] = np.nan
    x[1, 0, 10, 3:6] = np.nan
    w = rng.standard_normal((6, 1, 3, 3)).astype(np.float32)
    got, got_codes = ops.conv2d_relu_max_pool2d_2x2(x, w)
    want, want_codes = ops.max_pool2d_2x2(ops.conv2d_relu(x, w))
    assert np.isnan(got).any()
    np.testing.assert_array_equal(_bits(got), _bits(want))
    np.testing.assert_array_equal(got_codes, want_codes)


def test_forward_bad_input():
    op = "conv2d_relu_max_pool2d_2x2"
    x = np.zeros((2, 1, 8, 8), np.float32)
    w = np.zeros((4, 1, 3, 3), np.float32)
    with pytest.raises(ValueError, match=rf"{op}: bias must have shape \(4,\)"):
        ops.conv2d_relu_max_pool2d_2x2(x, w, np.zeros(3, np.float32))
    with pytest.raises(ValueError, match=rf"{op}: output size must be >= 1"):
        ops.conv2d_relu_max_pool2d_2x2(x[:, :, :3, :3], w)  # conv output 1x1
    with pytest.raises(ValueError, match=rf"{op}: x.shape\[1\] \(channels\) must equal"):
        ops.conv2d_relu_max_pool2d_2x2(np.zeros((2, 2, 8, 8), np.float32), w)


@pytest.mark.parametrize("args", [dict(), dict(stride=2), dict(padding=1), dict(padding="same"),
                                  dict(dilation=2, padding=(1, 2)), dict(stride=(2, 3))])
def test_conv2d_output_hw_is_the_conv_output_size(rng, args):
    x = rng.standard_normal((1, 2, 11, 13)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    assert ops.conv2d_output_hw(x.shape, w.shape, **args) == ops.conv2d(x, w, **args).shape[2:]


def test_conv2d_output_hw_none_where_conv2d_raises():
    assert ops.conv2d_output_hw((1, 2, 2, 2), (3, 2, 3, 3)) is None  # kernel larger than input
    assert ops.conv2d_output_hw((1, 2, 8, 8), (3, 2, 3)) is None
    assert ops.conv2d_output_hw((1, 2, 8, 8), (3, 2, 3, 3), stride=2, padding="same") is None


@pytest.mark.parametrize("shape, out_ch, padding, groups, need_input_grad", CASES)
@pytest.mark.parametrize("with_relu", [True, False])
def test_backward_equals_pool_backward_then_conv_backward(isa, threads, rng, shape, out_ch,
                                                          padding, groups, need_input_grad,
                                                          with_relu):
    x, w, y, pooled, codes, g = _forward(rng, shape, out_ch, padding, groups)
    relu_y = pooled if with_relu else None
    for n in (1, 2):
        threads(n)
        got = ops.conv2d_max_pool2d_2x2_backward(g, codes, x, w, padding=padding, groups=groups,
                                                 relu_y=relu_y, need_input_grad=need_input_grad)
        gy = ops.max_pool2d_2x2_backward(g, codes, y.shape, relu_y=relu_y)
        want = ops.conv2d_backward(gy, x, w, padding=padding, groups=groups,
                                   need_input_grad=need_input_grad)
        assert (got[0] is None) == (not need_input_grad)
        for a, b in zip(got, want):
            np.testing.assert_array_equal(_bits(a), _bits(b))


def test_only_the_wanted_gradients(rng):
    x, w, y, pooled, codes, g = _forward(rng, (8, 1, 10, 10), 4, 0)
    gx, gw, gb = ops.conv2d_max_pool2d_2x2_backward(g, codes, x, w, relu_y=pooled,
                                                    need_input_grad=False, need_weight_grad=False)
    assert gx is None and gw is None
    gy = ops.max_pool2d_2x2_backward(g, codes, y.shape, relu_y=pooled)
    np.testing.assert_array_equal(gb, ops.conv2d_backward(gy, x, w)[2])


def test_bad_input_raises_before_anything(rng):
    op = "conv2d_max_pool2d_2x2_backward"
    x, w, y, pooled, codes, g = _forward(rng, (3, 1, 10, 10), 4, 0)
    call = ops.conv2d_max_pool2d_2x2_backward
    bad = codes.copy()
    bad[1, 2, 3, 1] = 4
    flat = np.ravel_multi_index((1, 2, 3, 1), bad.shape)
    with pytest.raises(ValueError, match=rf"{op}: codes\[{flat}\] must be in \[0, 4\), got 4"):
        call(g, bad, x, w, relu_y=pooled, need_input_grad=False)
    with pytest.raises(ValueError, match=rf"{op}: grad_y shape \(3, 4, 4, 3\) must equal the "
                                         r"pooled conv output shape \(3, 4, 4, 4\)"):
        call(g[:, :, :, :3], codes, x, w)
    with pytest.raises(ValueError, match=rf"{op}: codes shape .* must equal grad_y shape"):
        call(g, codes[:2], x, w)
    with pytest.raises(ValueError, match=rf"{op}: relu_y shape .* must equal grad_y shape"):
        call(g, codes, x, w, relu_y=pooled[:, :3])
    with pytest.raises(TypeError):
        call(g, codes.astype(np.int64), x, w)
    tiny = np.zeros((1, 1, 3, 3), np.float32)  # conv output 1x1: no 2x2 window
    with pytest.raises(ValueError, match=rf"{op}: output size must be >= 1"):
        call(np.zeros((1, 4, 0, 0), np.float32), np.zeros((1, 4, 0, 0), np.uint8), tiny, w)


def test_node_without_input_grad_equals_layer_by_layer(rng):
    """The reference model's first block: input images need no gradient, so the fused node's
    backward takes the per-image path; the parameters' gradients must be those of Conv2d,
    ReLU and MaxPool2d run one by one, bit for bit."""
    fv.manual_seed(11)
    model = fv.nn.Sequential(fv.nn.Conv2d(1, 8, 3), fv.nn.ReLU(), fv.nn.MaxPool2d(2),
                             fv.nn.Flatten())
    model[0].bias.data[:] = np.where(np.arange(8) % 3 == 0, -3.0, 0.1)
    x = rng.standard_normal((10, 1, 20, 21)).astype(np.float32)
    grads = []
    for fused in (True, False):
        model.zero_grad()
        if fused:
            y = model(x)
        else:
            y = fv.Tensor(x)
            for layer in model:
                y = layer(y)
        y.backward(np.random.default_rng(2).standard_normal(y.shape).astype(np.float32))
        grads.append([y.data] + [p.grad.data for p in model.parameters()])
    for a, b in zip(*grads):
        np.testing.assert_array_equal(_bits(a), _bits(b))
