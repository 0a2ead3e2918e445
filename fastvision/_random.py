"""The module-level random generator behind dropout, parameter init and randn.

`fastvision.manual_seed(s)` replaces it with np.random.default_rng(s), so everything drawn
afterwards (init, dropout masks, randn without an explicit generator) is reproducible.
"""

import numbers

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the default generator (like torch.manual_seed); returns it."""
    global _generator
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"manual_seed: seed must be an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"manual_seed: seed must be >= 0, got {seed}")
    _generator = np.random.default_rng(int(seed))
    return _generator


def default_generator() -> np.random.Generator:
    return _generator


def get_generator(generator=None) -> np.random.Generator:
    """None -> the default generator; an int -> a fresh generator seeded with it; a Generator
    as is."""
    if generator is None:
        return _generator
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, numbers.Integral) and not isinstance(generator, bool):
        return np.random.default_rng(int(generator))
    raise TypeError("generator must be None, an int seed or a numpy.random.Generator, "
                    f"got {type(generator).__name__}")
