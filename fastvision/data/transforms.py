"""Random augmentations on NCHW image batches, vectorised over the batch.

    aug = Compose([RandomAffine(10, translate=(0.1, 0.1), scale=(0.9, 1.1), seed=0),
                   RandomHorizontalFlip(0.5, seed=1)])
    xb = aug(xb)                     # (N, C, H, W) -> (N, C, H, W), a new array

Names, arguments and parameter sampling follow torchvision.transforms (RandomRotation,
RandomAffine, RandomHorizontalFlip, RandomVerticalFlip, Compose, Normalize), except that
each SAMPLE of a batch draws its own parameters (torchvision draws one set per call), and
rotation / affine interpolate bilinearly by default (interpolation="nearest" is available).
A (C, H, W) array is treated as one image. Each random transform owns a np.random.Generator:
pass `seed` (int) for a reproducible stream or `rng` to share a Generator.

Geometry (fastvision.data.functional): as in torchvision, RandomRotation turns the content
COUNTER-clockwise for a positive angle while RandomAffine, built on affine(), turns it
CLOCKWISE (its random angles are normally symmetric, so this rarely matters); translations
are whole pixels; points outside the image read `fill` (default 0).
"""

import numbers

import numpy as np

from fastvision.data.functional import (_images, affine, inverse_affine_matrices,  # noqa: F401
                                        rotate, sample)


def _rng(seed, rng):
    if rng is not None:
        if seed is not None:
            raise ValueError("transforms: pass seed or rng, not both")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"transforms: rng must be a numpy.random.Generator, "
                            f"got {type(rng).__name__}")
        return rng
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise TypeError(f"transforms: seed must be an int, got {type(seed).__name__}")
    return np.random.default_rng(seed)


def _pair_range(fn, name, value, center=0.0, minimum=None):
    """A number v means (center - v, center + v) (v >= 0); a 2-sequence is (lo, hi)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"{fn}: {name} must be >= 0 when a single number, got {value}")
        lo, hi = center - float(value), center + float(value)
    elif isinstance(value, (tuple, list, np.ndarray)) and len(value) == 2:
        lo, hi = float(value[0]), float(value[1])
    else:
        raise TypeError(f"{fn}: {name} must be a number or a sequence of 2 numbers, "
                        f"got {value!r}")
    if not lo <= hi:
        raise ValueError(f"{fn}: {name} must have min <= max, got ({lo}, {hi})")
    if minimum is not None and lo < minimum:
        raise ValueError(f"{fn}: {name} values must be >= {minimum}, got ({lo}, {hi})")
    return lo, hi


class RandomRotation:
    """Rotate each sample counter-clockwise by an angle drawn uniformly from
    (-degrees, degrees) or degrees=(min, max)."""

    def __init__(self, degrees, interpolation="bilinear", center=None, fill=0.0, seed=None,
                 rng=None):
        self.degrees = _pair_range("RandomRotation", "degrees", degrees)
        self.interpolation, self.center, self.fill = interpolation, center, fill
        self.rng = _rng(seed, rng)

    def __call__(self, x):
        xs, was_3d = _images("RandomRotation", x)
        angle = self.rng.uniform(self.degrees[0], self.degrees[1], len(xs))
        out = rotate(xs, angle, interpolation=self.interpolation, fill=self.fill,
                     center=self.center)
        return out[0] if was_3d else out

    def __repr__(self):
        return f"RandomRotation(degrees={self.degrees}, interpolation={self.interpolation!r})"


class RandomAffine:
    """Per-sample random rotation, whole-pixel translation, scale and shear (torchvision's
    RandomAffine.get_params, drawn in that order for the whole batch)."""

    def __init__(self, degrees, translate=None, scale=None, shear=None,
                 interpolation="bilinear", fill=0.0, center=None, seed=None, rng=None):
        fn = "RandomAffine"
        self.degrees = _pair_range(fn, "degrees", degrees)
        if translate is not None:
            if len(translate) != 2 or not all(0.0 <= float(t) <= 1.0 for t in translate):
                raise ValueError(f"{fn}: translate must be 2 numbers in [0, 1], got {translate!r}")
            translate = (float(translate[0]), float(translate[1]))
        if scale is not None:
            if (isinstance(scale, (str, bytes)) or not hasattr(scale, "__len__")
                    or len(scale) != 2 or not 0 < float(scale[0]) <= float(scale[1])):
                raise ValueError(f"{fn}: scale must be 2 numbers 0 < min <= max, got {scale!r}")
            scale = (float(scale[0]), float(scale[1]))
        self._shear_y = False
        if shear is not None:
            if isinstance(shear, (tuple, list)) and len(shear) == 4:
                shear = _pair_range(fn, "shear", shear[:2]) + _pair_range(fn, "shear", shear[2:])
                self._shear_y = True
            else:
                shear = _pair_range(fn, "shear", shear)
        self.translate, self.scale, self.shear = translate, scale, shear
        self.interpolation, self.fill, self.center = interpolation, fill, center
        self.rng = _rng(seed, rng)

    def get_params(self, n, height, width):
        """(angle (n,), translate (n, 2), scale (n,), shear (n, 2)) for n samples."""
        r = self.rng
        angle = r.uniform(self.degrees[0], self.degrees[1], n)
        translate = np.zeros((n, 2))
        if self.translate is not None:
            max_dx, max_dy = self.translate[0] * width, self.translate[1] * height
            translate[:, 0] = np.round(r.uniform(-max_dx, max_dx, n))
            translate[:, 1] = np.round(r.uniform(-max_dy, max_dy, n))
        scale = np.ones(n) if self.scale is None else r.uniform(self.scale[0], self.scale[1], n)
        shear = np.zeros((n, 2))
        if self.shear is not None:
            shear[:, 0] = r.uniform(self.shear[0], self.shear[1], n)
            if self._shear_y:
                shear[:, 1] = r.uniform(self.shear[2], self.shear[3], n)
        return angle, translate, scale, shear

    def __call__(self, x):
        xs, was_3d = _images("RandomAffine", x)
        n, _, h, w = xs.shape
        out = affine(xs, *self.get_params(n, h, w), interpolation=self.interpolation,
                     fill=self.fill, center=self.center)
        return out[0] if was_3d else out

    def __repr__(self):
        return (f"RandomAffine(degrees={self.degrees}, translate={self.translate}, "
                f"scale={self.scale}, shear={self.shear})")


class _RandomFlip:
    axis = -1

    def __init__(self, p=0.5, seed=None, rng=None):
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: p must be a number in [0, 1], got {p!r}")
        self.p = float(p)
        self.rng = _rng(seed, rng)

    def __call__(self, x):
        xs, was_3d = _images(type(self).__name__, x, floating=False)
        flip = self.rng.random(len(xs)) < self.p
        out = xs.copy()
        out[flip] = np.flip(xs[flip], axis=self.axis)
        return out[0] if was_3d else out

    def __repr__(self):
        return f"{type(self).__name__}(p={self.p})"


class RandomHorizontalFlip(_RandomFlip):
    """Mirror each sample left-right with probability p."""
    axis = -1


class RandomVerticalFlip(_RandomFlip):
    """Mirror each sample top-bottom with probability p."""
    axis = -2


class Normalize:
    """(x - mean[c]) / std[c] per channel; returns float32 (or the float dtype given)."""

    def __init__(self, mean, std):
        self.mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
        self.std = np.atleast_1d(np.asarray(std, dtype=np.float64))
        if (self.std == 0).any():
            raise ValueError(f"Normalize: std must be non-zero, got {self.std.tolist()}")

    def __call__(self, x):
        xs, was_3d = _images("Normalize", x)
        c = xs.shape[1]
        if self.mean.size not in (1, c) or self.std.size not in (1, c):
            raise ValueError(f"Normalize: mean/std need 1 or {c} values, got "
                             f"{self.mean.size} and {self.std.size}")
        m = self.mean.astype(xs.dtype).reshape(1, -1, 1, 1)
        s = self.std.astype(xs.dtype).reshape(1, -1, 1, 1)
        out = (xs - m) / s
        return out[0] if was_3d else out

    def __repr__(self):
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms):
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise TypeError(f"Compose: {t!r} is not callable")

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self):
        return "Compose([" + ", ".join(repr(t) for t in self.transforms) + "])"
