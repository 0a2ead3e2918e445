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

Geometry (torchvision's, for tensors): coordinates are taken relative to the image centre
((W-1)/2, (H-1)/2) with x to the right and y down. As in torchvision, rotate() /
RandomRotation turn the content COUNTER-clockwise for a positive angle, while affine() /
RandomAffine turn it CLOCKWISE (torchvision.transforms.functional.affine's convention; its
random angles are symmetric in the usual use); translate (tx, ty) moves the content right /
down by whole pixels; shear is in degrees (x: parallel to the x axis). affine() builds, per sample, the INVERSE matrix (output pixel -> input point) and
samples the whole batch in one gather: bilinear over the 4 neighbours, each neighbour
outside the image counting as `fill` (0: the same as torch grid_sample, zeros padding,
align_corners=False). Angles that are multiples of 90 degrees use exact cos/sin so that
rotate(x, 90) equals np.rot90 bit for bit.
"""

import numbers

import numpy as np


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


def _images(fn, x, floating=True):
    """(4-D array, was_3d). floating: non-float input becomes float32 (interpolation)."""
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{fn}: x must be an array, got {type(x).__name__}")
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{fn}: x must have a real numeric dtype, got {arr.dtype}")
    if arr.ndim not in (3, 4):
        raise ValueError(f"{fn}: x must be (N, C, H, W) or (C, H, W), got shape {arr.shape}")
    if floating and arr.dtype.kind != "f":
        arr = arr.astype(np.float32)
    return (arr[None], True) if arr.ndim == 3 else (arr, False)


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


def _cos_sin_deg(deg):
    """cos and sin of angles in degrees, exact (0, +-1) at multiples of 90."""
    deg = np.asarray(deg, dtype=np.float64)
    rad = np.radians(deg)
    c, s = np.cos(rad), np.sin(rad)
    quarter = np.mod(deg, 360.0) / 90.0
    exact = quarter == np.round(quarter)
    q = np.round(quarter).astype(np.int64) % 4
    c = np.where(exact, np.array([1.0, 0.0, -1.0, 0.0])[q], c)
    s = np.where(exact, np.array([0.0, 1.0, 0.0, -1.0])[q], s)
    return c, s


def inverse_affine_matrices(angle, translate, scale, shear, center=(0.0, 0.0)):
    """(N, 2, 3) output->input maps in centred coordinates: torchvision's
    _get_inverse_affine_matrix (angle clockwise in the y-down frame), vectorised.

    angle, scale: (N,); translate, shear: (N, 2); center: offset from the image centre."""
    angle = np.asarray(angle, dtype=np.float64)
    tx, ty = np.asarray(translate, dtype=np.float64).T
    shx, shy = np.asarray(shear, dtype=np.float64).T
    scale = np.asarray(scale, dtype=np.float64)
    cx, cy = center
    # RSS = R(a) S(s) SHy(sy) SHx(sx) with a = angle, sx = shear_x, sy = shear_y
    cos_rs, sin_rs = _cos_sin_deg(angle - shy)       # cos(a - sy), sin(a - sy)
    cos_r, sin_r = _cos_sin_deg(angle)
    cos_sy, _ = _cos_sin_deg(shy)
    tan_sx = np.tan(np.radians(shx))
    a = cos_rs / cos_sy
    b = -cos_rs * tan_sx / cos_sy - sin_r
    c = sin_rs / cos_sy
    d = -sin_rs * tan_sx / cos_sy + cos_r
    m = np.empty(angle.shape + (2, 3))
    m[..., 0, 0], m[..., 0, 1] = d / scale, -b / scale     # RSS^-1 (det(RSS) = scale^2)
    m[..., 1, 0], m[..., 1, 1] = -c / scale, a / scale
    m[..., 0, 2] = m[..., 0, 0] * (-cx - tx) + m[..., 0, 1] * (-cy - ty) + cx
    m[..., 1, 2] = m[..., 1, 0] * (-cx - tx) + m[..., 1, 1] * (-cy - ty) + cy
    return m


def sample(x, theta, fill=0.0, interpolation="bilinear"):
    """out[n, c, i, j] = x[n, c] at point theta[n] @ (j - cx, i - cy, 1) + (cx, cy), where
    (cx, cy) = ((W-1)/2, (H-1)/2); points outside the image read `fill`. x: (N, C, H, W)."""
    n, ch, h, w = x.shape
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    xo = np.arange(w, dtype=np.float64) - cx
    yo = np.arange(h, dtype=np.float64)[:, None] - cy
    t = np.asarray(theta, dtype=np.float64)[:, :, :, None, None]     # (N, 2, 3, 1, 1)
    px = (t[:, 0, 0] * xo + t[:, 0, 1] * yo + t[:, 0, 2] + cx).reshape(n, h * w)
    py = (t[:, 1, 0] * xo + t[:, 1, 1] * yo + t[:, 1, 2] + cy).reshape(n, h * w)
    flat = x.reshape(n, ch, h * w)
    fill = float(fill)

    def corner(xi, yi):
        ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        idx = np.where(ok, yi * w + xi, 0)
        return ok, np.take_along_axis(flat, idx[:, None, :], axis=2)

    if interpolation == "nearest":   # half-to-even, as grid_sample's nearbyint
        ok, v = corner(np.rint(px).astype(np.int64), np.rint(py).astype(np.int64))
        out = np.where(ok[:, None, :], v, fill)
    else:
        x0f, y0f = np.floor(px), np.floor(py)
        fx, fy = px - x0f, py - y0f
        x0, y0 = x0f.astype(np.int64), y0f.astype(np.int64)
        out = np.zeros((n, ch, h * w), dtype=np.float64)
        inside = np.zeros((n, h * w), dtype=np.float64)
        for dx, dy, wgt in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)),
                            (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
            ok, v = corner(x0 + dx, y0 + dy)
            wk = np.where(ok, wgt, 0.0)
            out += wk[:, None, :] * v
            inside += wk
        if fill != 0.0:
            out += (1.0 - inside)[:, None, :] * fill
    return out.reshape(n, ch, h, w).astype(x.dtype, copy=False)


def affine(x, angle, translate=(0, 0), scale=1.0, shear=(0.0, 0.0), interpolation="bilinear",
           fill=0.0, center=None):
    """Apply per-sample affine maps (parameters broadcast over the batch: scalars, (N,) or
    (N, 2) for translate / shear; a scalar shear is (shear, 0)) with the semantics of
    torchvision.transforms.functional.affine: angle CLOCKWISE, center in pixel coordinates
    (default: the image centre)."""
    xs, was_3d = _images("affine", x)
    n, _, h, w = xs.shape
    if interpolation not in ("bilinear", "nearest"):
        raise ValueError(f"affine: interpolation must be 'bilinear' or 'nearest', "
                         f"got {interpolation!r}")
    if np.ndim(shear) == 0 or np.shape(shear) == (n,):
        shear = np.stack(np.broadcast_arrays(np.asarray(shear, np.float64), 0.0), axis=-1)
    ctr = (0.0, 0.0) if center is None else (center[0] - w * 0.5, center[1] - h * 0.5)
    theta = inverse_affine_matrices(np.broadcast_to(np.asarray(angle, np.float64), (n,)),
                                    np.broadcast_to(np.asarray(translate, np.float64), (n, 2)),
                                    np.broadcast_to(np.asarray(scale, np.float64), (n,)),
                                    np.broadcast_to(np.asarray(shear, np.float64), (n, 2)), ctr)
    out = sample(xs, theta, fill, interpolation)
    return out[0] if was_3d else out


def rotate(x, angle, interpolation="bilinear", fill=0.0, center=None):
    """Rotate counter-clockwise by `angle` degrees (scalar or per-sample (N,)), as
    torchvision.transforms.functional.rotate (which passes -angle to the affine map)."""
    return affine(x, -np.asarray(angle, np.float64), interpolation=interpolation, fill=fill,
                  center=center)


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
