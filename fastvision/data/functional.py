"""Geometry on NCHW batches, vectorised over the batch (torchvision.transforms.functional
names): per-sample affine maps sampled in one gather.

    affine(x, angle, translate=(0, 0), scale=1.0, shear=(0, 0), interpolation="bilinear",
           fill=0.0, center=None)       # angle CLOCKWISE, as torchvision's F.affine
    rotate(x, angle, ...)                # angle COUNTER-clockwise, as torchvision's F.rotate
    inverse_affine_matrices(angle, translate, scale, shear)   -> (N, 2, 3)
    sample(x, theta, fill, interpolation)                     # the gather itself

Parameters are scalars (the whole batch) or per-sample arrays ((N,), (N, 2)). Coordinates are
relative to the image centre ((W-1)/2, (H-1)/2), x to the right, y down (torchvision's tensor
convention, the same as torch affine_grid with align_corners=False); translate (tx, ty) moves
the content right / down; shear is in degrees (x: parallel to the x axis).

For every output pixel the INVERSE map gives the input point; bilinear interpolation reads its
4 neighbours, a neighbour outside the image counting as `fill`. With fill=0 this is exactly
torch grid_sample(padding_mode="zeros", align_corners=False). (torchvision instead multiplies
by the interpolated in-image mask once more, which darkens border pixels slightly.) "nearest"
rounds half to even, as grid_sample does. Angles that are multiples of 90 degrees use exact
cos/sin, so rotate(x, 90) equals np.rot90 bit for bit.
"""

import numpy as np


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
