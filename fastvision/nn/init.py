"""Parameter initialisation, in place (torch.nn.init names), and whole-model schemes.

Two schemes for Conv2d / Linear (choose with the layer's `init=` argument, or re-initialise
a built model with `torch_(model)` / `keras_(model)`):

  "torch" (default): weight kaiming_uniform_(a=sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in));
                     bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as torch.nn.Conv2d / Linear.
  "keras":           weight glorot (xavier) uniform, U(+-sqrt(6 / (fan_in + fan_out))); bias 0,
                     as Keras's Dense / Conv2D defaults.

fan_in = in_features (in_channels/groups * kh * kw), fan_out = out_features (out_channels *
kh * kw). Random numbers come from the fastvision.manual_seed generator unless generator= (an
int seed or numpy.random.Generator) is given.
"""

import math

import numpy as np

from fastvision._random import get_generator

SCHEMES = ("torch", "keras")


def _fill(tensor, values):
    tensor.data[...] = np.asarray(values, dtype=np.float32)
    return tensor


def calculate_gain(nonlinearity, param=None):
    if nonlinearity in ("linear", "conv1d", "conv2d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        a = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + a * a))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(tensor):
    shape = tensor.shape
    if len(shape) < 2:
        raise ValueError(f"init: fan in and fan out need a tensor with >= 2 dimensions, "
                         f"got shape {shape}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    return _fill(tensor, get_generator(generator).uniform(a, b, tensor.shape))


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    return _fill(tensor, get_generator(generator).normal(mean, std, tensor.shape))


def constant_(tensor, val):
    tensor.data.fill(val)
    return tensor


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming_uniform_: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    fan = fan_in if mode == "fan_in" else fan_out
    if fan == 0:
        return tensor  # torch warns and leaves a zero-element tensor alone
    bound = math.sqrt(3.0) * calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return uniform_(tensor, -bound, bound, generator)


def xavier_uniform_(tensor, gain=1.0, generator=None):
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


glorot_uniform_ = xavier_uniform_


def init_layer_(weight, bias, scheme="torch", generator=None):
    """Initialise one Conv2d / Linear weight (and bias, or None) with a named scheme."""
    if scheme == "torch":
        kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
        if bias is not None:
            fan_in, _ = _calculate_fan_in_and_fan_out(weight)
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            uniform_(bias, -bound, bound, generator)
    elif scheme == "keras":
        xavier_uniform_(weight, generator=generator)
        if bias is not None:
            zeros_(bias)
    else:
        raise ValueError(f"init must be one of {SCHEMES}, got {scheme!r}")


def _reinit(model, scheme, generator):
    for m in model.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters(scheme, generator=generator)
    return model


def keras_(model, generator=None):
    """Re-initialise every Conv2d / Linear in model Keras-style (glorot uniform, zero bias)."""
    return _reinit(model, "keras", generator)


def torch_(model, generator=None):
    """Re-initialise every Conv2d / Linear in model with PyTorch's defaults."""
    return _reinit(model, "torch", generator)
