"""Argument checks and resolution for compile / fit (fastvision.training.model)."""

import numbers

import numpy as np

_ACCURACY_NAMES = ("accuracy", "acc", "sparse_categorical_accuracy")


def resolve_optimizer(spec, params):
    from fastvision import optim
    if isinstance(spec, optim.Optimizer):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"compile: optimizer must be a str or an Optimizer, got "
                        f"{type(spec).__name__}")
    name = spec.lower()
    if name == "adam":
        return optim.Adam(params, lr=1e-3, eps=1e-7, eps_convention="keras")
    if name == "adamw":
        return optim.AdamW(params, lr=1e-3, eps=1e-7, weight_decay=0.004,
                           eps_convention="keras")
    if name == "sgd":
        return optim.SGD(params, lr=0.01)
    if name == "rmsprop":
        return optim.RMSprop(params, lr=1e-3, alpha=0.9, eps=1e-7)
    raise ValueError(f"compile: optimizer must be 'adam', 'adamw', 'sgd', 'rmsprop' or an "
                     f"Optimizer, got {spec!r}")


def resolve_loss(spec):
    from fastvision.nn import functional as F
    if isinstance(spec, str):
        if spec in ("sparse_categorical_crossentropy", "cross_entropy"):
            return F.cross_entropy
        raise ValueError(f"compile: loss must be 'sparse_categorical_crossentropy' or a "
                         f"callable, got {spec!r}")
    if callable(spec):
        return spec
    raise TypeError(f"compile: loss must be a str or a callable, got {type(spec).__name__}")


def resolve_metrics(metrics):
    if metrics is None:
        return []
    if isinstance(metrics, str) or callable(metrics):
        metrics = [metrics]
    out = []
    for m in metrics:
        if isinstance(m, str):
            if m not in _ACCURACY_NAMES:
                raise ValueError(f"compile: unknown metric {m!r}, expected one of "
                                 f"{list(_ACCURACY_NAMES)} or a callable")
            out.append((m, None))
        elif callable(m):
            out.append((getattr(m, "__name__", type(m).__name__), m))
        else:
            raise TypeError(f"compile: a metric must be a str or a callable, got "
                            f"{type(m).__name__}")
    return out


def as_x(fn, x):
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{fn}: x must be an array, got {type(x).__name__}")
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"{fn}: x must have a sample axis and feature axes, got shape {x.shape}")
    if x.dtype == np.uint8:
        return x
    if x.dtype.kind not in "fiu" or x.dtype == np.bool_:
        raise TypeError(f"{fn}: x must be float32 or uint8, got dtype {x.dtype}")
    return np.ascontiguousarray(x, dtype=np.float32)


def as_y(fn, y, n):
    y = np.asarray(y)
    if y.dtype.kind not in "iu":
        raise TypeError(f"{fn}: y must hold integer class labels, got dtype {y.dtype}")
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"{fn}: y must have shape ({n},) to match x, got {y.shape}")
    return y.astype(np.int64, copy=False)


def positive_int(fn, name, v):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
        raise ValueError(f"{fn}: {name} must be an int >= 1, got {v!r}")
    return int(v)


class Batcher:
    """Gathers batches of (x, y) rows into buffers allocated once."""

    def __init__(self, x, y, batch_size):
        self.x, self.y = x, y
        shape = (min(batch_size, len(x)),) + x.shape[1:]
        self.xf = np.empty(shape, np.float32)
        self.xu = np.empty(shape, np.uint8) if x.dtype == np.uint8 else None
        self.yb = np.empty(shape[0], np.int64) if y is not None else None

    def take(self, idx):
        n = len(idx)
        xf = self.xf[:n]
        if self.xu is not None:
            np.take(self.x, idx, axis=0, out=self.xu[:n], mode="clip")
            np.copyto(xf, self.xu[:n], casting="unsafe")
        else:
            np.take(self.x, idx, axis=0, out=xf, mode="clip")  # mode clip: no buffering
        yb = None
        if self.y is not None:
            yb = self.yb[:n]
            np.take(self.y, idx, out=yb, mode="clip")
        return xf, yb

    def slice(self, start, stop):
        if self.xu is None:  # a float32 contiguous source: a view needs no copy
            return self.x[start:stop], None if self.y is None else self.y[start:stop]
        return self.take(np.arange(start, stop))
