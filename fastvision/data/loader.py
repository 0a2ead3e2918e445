"""DataLoader: mini-batches of NumPy arrays, optionally shuffled with a reproducible seed.

    loader = DataLoader(x, y, batch_size=64, shuffle=True, seed=0, transform=aug)
    for epoch in range(epochs):
        for xb, yb in loader:        # xb = transform(x[idx]), yb = y[idx]
            ...

Every epoch visits every sample exactly once (the last batch is smaller unless
drop_last=True drops it). With shuffle=True each epoch uses a new permutation, drawn from a
np.random.Generator seeded by (seed, epoch): the same seed gives the same sequence of epochs
in any process, and set_epoch(e) replays epoch e (e.g. when resuming). seed=None draws fresh
OS entropy once, at construction.

Batches are copies, never views of `x` / `y`, so a training step may modify them in place.
With y=None the batches are (xb, None).
"""

import numbers

import numpy as np


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"DataLoader: {name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"DataLoader: {name} must be >= {minimum}, got {value}")
    return int(value)


def _as_array(name, a):
    if isinstance(a, (str, bytes)) or a is None:
        raise TypeError(f"DataLoader: {name} must be an array, got {type(a).__name__}")
    arr = np.asarray(a)
    if arr.ndim == 0:
        raise ValueError(f"DataLoader: {name} must have a leading sample axis, got a scalar")
    return arr


class DataLoader:
    """Iterates (xb, yb) batches over the first axis of `x` (and `y`)."""

    def __init__(self, x, y=None, batch_size=64, shuffle=False, drop_last=False, seed=None,
                 transform=None):
        self.x = _as_array("x", x)
        self.y = None if y is None else _as_array("y", y)
        if self.y is not None and len(self.y) != len(self.x):
            raise ValueError(f"DataLoader: x and y must have the same length, "
                             f"got {len(self.x)} and {len(self.y)}")
        self.batch_size = _check_int("batch_size", batch_size, 1)
        if transform is not None and not callable(transform):
            raise TypeError(f"DataLoader: transform must be callable, "
                            f"got {type(transform).__name__}")
        if seed is not None:
            _check_int("seed", seed, 0)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.transform = transform
        self.seed = seed
        # entropy fixed at construction: seed=None still gives one consistent epoch sequence
        self._entropy = np.random.SeedSequence(seed).entropy
        self.epoch = 0  # the epoch the next iteration runs

    def __len__(self):
        n, b = len(self.x), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def set_epoch(self, epoch):
        """Make the next iteration run epoch `epoch` (its permutation depends on it)."""
        self.epoch = _check_int("epoch", epoch, 0)

    def permutation(self, epoch):
        """The sample order of `epoch` (arange(N) when shuffle=False)."""
        n = len(self.x)
        if not self.shuffle:
            return np.arange(n)
        ss = np.random.SeedSequence(self._entropy, spawn_key=(int(epoch),))
        return np.random.default_rng(ss).permutation(n)

    def __iter__(self):
        order = self.permutation(self.epoch)
        self.epoch += 1
        return self._batches(order)

    def _batches(self, order):
        n, b = len(order), self.batch_size
        stop = n - n % b if self.drop_last else n
        for start in range(0, stop, b):
            idx = order[start:start + b]
            if self.shuffle:
                xb = self.x[idx]                     # fancy indexing: already a copy
                yb = None if self.y is None else self.y[idx]
            else:
                xb = self.x[start:start + b].copy()
                yb = None if self.y is None else self.y[start:start + b].copy()
            if self.transform is not None:
                xb = self.transform(xb)
            yield xb, yb

    def __repr__(self):
        return (f"DataLoader(n={len(self.x)}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last}, seed={self.seed})")
