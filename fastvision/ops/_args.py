"""Argument normalisation shared by the fastvision.ops wrappers.

Read-only array arguments are converted (a copy only when needed) to float32 C-contiguous;
in-place arguments are checked, never converted. Int-or-pair hyper-parameters become
(int, int). Shape and value rules are checked in C++ (csrc/*/..._bind.cpp), so the compiled
module is safe to call directly too.
"""

import numbers

import numpy as np

_F32 = np.dtype(np.float32)


def as_f32(op: str, name: str, x) -> np.ndarray:
    """A float32 C-contiguous view or copy of `x`; TypeError for non-numeric input."""
    if type(x) is np.ndarray and x.dtype is _F32 and x.flags.c_contiguous:
        return x  # the common case (every kernel output and parameter), checked cheaply
    if isinstance(x, np.ndarray):
        arr = x
    elif isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{op}: {name} must be an array of numbers, got {type(x).__name__}")
    else:
        try:
            arr = np.asarray(x)
        except Exception as e:  # ragged lists and the like
            raise TypeError(f"{op}: {name} must be an array of numbers ({e})") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{op}: {name} must have a real numeric dtype, got {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def as_codes(codes):
    """2x2 max-pool window codes: a uint8 array made C-contiguous (a copy only when needed);
    anything else passes unchanged, for the binding's TypeError naming the op."""
    if isinstance(codes, np.ndarray) and codes.dtype == np.uint8:
        return np.ascontiguousarray(codes)
    return codes


def check_inplace_f32(op: str, name: str, x) -> np.ndarray:
    """In-place arguments must already be float32, C-contiguous and writeable."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{op}: {name} is updated in place and must be a numpy.ndarray, "
                        f"got {type(x).__name__}")
    if x.dtype != np.float32:
        raise TypeError(f"{op}: {name} is updated in place and must have dtype float32, "
                        f"got {x.dtype}")
    if not x.flags.c_contiguous:
        raise TypeError(f"{op}: {name} is updated in place and must be C-contiguous")
    if not x.flags.writeable:
        raise TypeError(f"{op}: {name} is updated in place and must be writeable")
    return x


def as_int(op: str, name: str, v) -> int:
    if type(v) is int and -2**31 < v < 2**31:  # the common case, without the ABC check below
        return v
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{op}: {name} must be an int, got {type(v).__name__}")
    v = int(v)
    if abs(v) > 2**31 - 1:
        raise OverflowError(f"{op}: {name} = {v} exceeds the limit {2**31 - 1}")
    return v


def pair(op: str, name: str, v) -> tuple:
    """An int, or a sequence of two ints, as (int, int), like torch's _pair."""
    if type(v) is tuple and len(v) == 2 and type(v[0]) is int and type(v[1]) is int \
            and -2**31 < v[0] < 2**31 and -2**31 < v[1] < 2**31:
        return v  # the layers' own (int, int) tuples: the common case, checked cheaply
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {v!r}")
        return (as_int(op, f"{name}[0]", v[0]), as_int(op, f"{name}[1]", v[1]))
    v = as_int(op, name, v)
    return (v, v)


def as_float(op: str, name: str, v) -> float:
    if type(v) is float:  # the common case, without the ABC check below
        return v
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{op}: {name} must be a real number, got {type(v).__name__}")
    return float(v)
