"""Argument checks shared by the layers (errors name the layer)."""

import numbers


def positive_int(layer, name, v):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{layer}: {name} must be an int, got {type(v).__name__}")
    if v < 1:
        raise ValueError(f"{layer}: {name} must be >= 1, got {v}")
    return int(v)


def pair(layer, name, v, minimum):
    t = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    if len(t) != 2:
        raise ValueError(f"{layer}: {name} must be an int or a pair of ints, got {v!r}")
    for i, x in enumerate(t):
        if isinstance(x, bool) or not isinstance(x, numbers.Integral):
            raise TypeError(f"{layer}: {name}[{i}] must be an int, got {type(x).__name__}")
        if x < minimum:
            raise ValueError(f"{layer}: {name}[{i}] must be >= {minimum}, got {x}")
    return (int(t[0]), int(t[1]))


def check_input(layer, x, ndim, dim=None, size=None, what=""):
    """ValueError naming the layer and the shapes when x is not ndim-D with shape[dim]==size.
    `what` describes the expected shape; "{size}" in it stands for size (formatted only when
    raising: layers call this every forward)."""
    shape = x.shape
    if len(shape) != ndim or (dim is not None and shape[dim] != size):
        raise ValueError(f"{layer!r}: expected input of shape {what.format(size=size)}, "
                         f"got shape {tuple(shape)}")
