"""fastvision.data: DataLoader batching / shuffling, and the batch transforms (identities,
rot90, flips, whole-pixel shifts, seeded determinism; torch grid_sample as an oracle)."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from fastvision.data import DataLoader, functional as FN, transforms as T

SIZES = [1, 7, 8, 9, 15, 16, 17, 31, 33, 65]
SMALL = [1, 2, 7, 8, 9, 15, 16, 17]


# ---------------------------------------------------------------- DataLoader

def epoch_batches(loader):
    return [(xb.copy(), None if yb is None else yb.copy()) for xb, yb in loader]


@given(n=st.sampled_from(SIZES), bs=st.sampled_from([1, 7, 8, 9, 16, 64, 100]),
       shuffle=st.booleans(), drop_last=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_loader_covers_each_sample_once(n, bs, shuffle, drop_last, seed):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 1, 3)
    y = np.arange(n)
    loader = DataLoader(x, y, batch_size=bs, shuffle=shuffle, drop_last=drop_last, seed=seed)
    for _ in range(2):
        batches = epoch_batches(loader)
        assert len(batches) == len(loader)
        sizes = [len(yb) for _, yb in batches]
        if drop_last:
            assert len(loader) == n // bs and all(s == bs for s in sizes)
        else:
            assert len(loader) == -(-n // bs) and all(s == bs for s in sizes[:-1])
        seen = np.concatenate([yb for _, yb in batches]) if batches else np.array([], int)
        if drop_last:
            assert len(np.unique(seen)) == len(seen) == (n // bs) * bs
        else:
            assert np.array_equal(np.sort(seen), y)
        if not shuffle:
            assert np.array_equal(seen, y[:len(seen)])
        for xb, yb in batches:        # x and y stay aligned
            np.testing.assert_array_equal(xb, x[yb])
            assert xb.dtype == np.float32 and yb.dtype == y.dtype


def test_loader_seeded_reproducible_and_new_each_epoch():
    x = np.arange(100).reshape(100, 1)
    a = DataLoader(x, x[:, 0], batch_size=10, shuffle=True, seed=7)
    b = DataLoader(x, x[:, 0], batch_size=10, shuffle=True, seed=7)
    c = DataLoader(x, x[:, 0], batch_size=10, shuffle=True, seed=8)
    ea = [np.concatenate([yb for _, yb in a]) for _ in range(3)]
    eb = [np.concatenate([yb for _, yb in b]) for _ in range(3)]
    ec = np.concatenate([yb for _, yb in c])
    for u, v in zip(ea, eb):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(ea[0], ea[1]) and not np.array_equal(ea[1], ea[2])
    assert not np.array_equal(ea[0], ec)
    a.set_epoch(1)                                     # replay epoch 1
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in a]), ea[1])
    np.testing.assert_array_equal(a.permutation(2), ea[2])
    # seed=None: fresh entropy, still a permutation, still reproducible within the loader
    d = DataLoader(x, x[:, 0], batch_size=10, shuffle=True)
    assert np.array_equal(np.sort(np.concatenate([yb for _, yb in d])), np.arange(100))
    np.testing.assert_array_equal(d.permutation(5), d.permutation(5))


def test_loader_no_labels_copies_and_transform():
    x = np.zeros((10, 1, 2, 2), dtype=np.float32)
    loader = DataLoader(x, batch_size=4)
    for xb, yb in loader:
        assert yb is None
        xb += 1                                        # batches are copies
    assert (x == 0).all()
    calls = []
    loader = DataLoader(x, np.arange(10), batch_size=4,
                        transform=lambda b: calls.append(len(b)) or b + 2)
    out = [xb for xb, _ in loader]
    assert calls == [4, 4, 2] and all((b == 2).all() for b in out)
    assert "batch_size=4" in repr(loader)


def test_loader_with_transform_is_deterministic():
    x = np.random.default_rng(0).random((20, 1, 9, 9)).astype(np.float32)
    y = np.arange(20)

    def run():
        aug = T.Compose([T.RandomRotation(30, seed=1), T.RandomHorizontalFlip(seed=2)])
        ld = DataLoader(x, y, batch_size=6, shuffle=True, seed=3, transform=aug)
        return [xb for _ in range(2) for xb, _ in ld]

    for u, v in zip(run(), run()):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("kwargs, exc, msg", [
    (dict(batch_size=0), ValueError, "DataLoader: batch_size must be >= 1, got 0"),
    (dict(batch_size=True), TypeError, "DataLoader: batch_size must be an int, got bool"),
    (dict(batch_size=2.0), TypeError, "DataLoader: batch_size must be an int, got float"),
    (dict(y=np.arange(3)), ValueError, "DataLoader: x and y must have the same length, got 4 "
                                       "and 3"),
    (dict(transform=3), TypeError, "DataLoader: transform must be callable"),
    (dict(seed=-1), ValueError, "DataLoader: seed must be >= 0"),
])
def test_loader_errors(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        DataLoader(np.zeros((4, 2)), **kwargs)


def test_loader_error_scalar():
    with pytest.raises(ValueError, match="leading sample axis"):
        DataLoader(np.float32(1))


# ---------------------------------------------------------------- transforms: exact cases

def images(n, c, h, w, seed=0):
    return np.random.default_rng(seed).standard_normal((n, c, h, w)).astype(np.float32)


@given(n=st.sampled_from([1, 3]), c=st.sampled_from([1, 3]), h=st.sampled_from(SMALL),
       w=st.sampled_from(SMALL))
def test_identity_parameters(n, c, h, w):
    x = images(n, c, h, w)
    for t in [T.RandomRotation(0, seed=0), T.RandomAffine(0, seed=0),
              T.RandomAffine((0, 0), translate=(0, 0), scale=(1, 1), shear=0, seed=0),
              T.RandomHorizontalFlip(0.0, seed=0), T.RandomVerticalFlip(0.0, seed=0),
              T.RandomRotation(0, interpolation="nearest", seed=0), T.Compose([])]:
        out = t(x)
        assert out.dtype == np.float32 and out.shape == x.shape
        np.testing.assert_array_equal(out, x)
    np.testing.assert_array_equal(FN.rotate(x, 360.0), x)
    np.testing.assert_array_equal(FN.affine(x, 0, scale=1.0, fill=7.0), x)


@given(n=st.sampled_from([1, 2]), s=st.sampled_from([1, 2, 7, 8, 9, 16, 17, 28]),
       k=st.sampled_from([-3, -2, -1, 1, 2, 3, 4]))
def test_rotate_multiples_of_90_equal_rot90(n, s, k):
    """Positive angle = counter-clockwise, as torchvision's rotate and np.rot90."""
    x = images(n, 2, s, s, seed=s)
    np.testing.assert_array_equal(FN.rotate(x, 90.0 * k), np.rot90(x, k, axes=(2, 3)))
    np.testing.assert_array_equal(FN.rotate(x, 90.0 * k, interpolation="nearest"),
                                  np.rot90(x, k, axes=(2, 3)))
    # torchvision's affine() turns the other way
    np.testing.assert_array_equal(FN.affine(x, 90.0 * k), np.rot90(x, -k, axes=(2, 3)))
    out = T.RandomRotation((90.0 * k, 90.0 * k), seed=0)(x)
    np.testing.assert_array_equal(out, np.rot90(x, k, axes=(2, 3)))


def test_rotate_180_non_square_and_single_image():
    x = images(2, 3, 5, 8)
    np.testing.assert_array_equal(FN.rotate(x, 180), x[:, :, ::-1, ::-1])
    np.testing.assert_array_equal(FN.rotate(x[0], 90 * np.ones(1))[None][:, :, 0, 0].shape,
                                  (1, 3))
    np.testing.assert_array_equal(T.RandomRotation((180, 180), seed=0)(x[1]),
                                  x[1, :, ::-1, ::-1])


def test_rotate_small_angle_moves_content_counter_clockwise():
    x = np.zeros((1, 1, 21, 21), np.float32)
    x[0, 0, 10, 18] = 1.0                     # a dot right of the centre
    out = FN.rotate(x, 10.0)[0, 0]
    i, j = np.unravel_index(np.argmax(out), out.shape)
    assert i < 10 and j > 15                  # moved up: counter-clockwise on screen


def shift(x, tx, ty):
    """Content moved right by tx, down by ty, zero fill."""
    h, w = x.shape[-2:]
    p = max(abs(tx), abs(ty))
    padded = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(p, p), (p, p)])
    return padded[..., p - ty:p - ty + h, p - tx:p - tx + w]      # out[i, j] = x[i - ty, j - tx]


@given(h=st.sampled_from(SMALL), w=st.sampled_from(SMALL), tx=st.integers(-20, 20),
       ty=st.integers(-20, 20))
def test_translate_whole_pixels_is_a_shift(h, w, tx, ty):
    x = images(2, 2, h, w)
    np.testing.assert_array_equal(FN.affine(x, 0, translate=(tx, ty)), shift(x, tx, ty))
    np.testing.assert_array_equal(FN.affine(x, 0, translate=(tx, ty), interpolation="nearest"),
                                  shift(x, tx, ty))
    # non-zero fill: the uncovered part reads the fill value
    want = shift(x, tx, ty) + (shift(np.ones_like(x), tx, ty) == 0) * np.float32(5)
    np.testing.assert_array_equal(FN.affine(x, 0, translate=(tx, ty), fill=5.0), want)


def test_random_affine_translate_only_gives_whole_pixel_shifts():
    x = images(40, 1, 9, 11)
    t = T.RandomAffine(0, translate=(0.3, 0.2), seed=5)
    out = t(x)
    for i in range(len(x)):
        matches = [(tx, ty) for tx in range(-4, 5) for ty in range(-2, 3)
                   if np.array_equal(out[i], shift(x[i], tx, ty))]
        assert matches, f"sample {i} is not a whole-pixel shift within the limits"
    assert len({out[i].tobytes() for i in range(len(x))}) > 10   # per-sample parameters


def test_scale_keeps_the_centre_pixel():
    x = images(3, 1, 9, 9)
    out = FN.affine(x, 0, scale=np.array([0.5, 2.0, 3.0]))
    np.testing.assert_array_equal(out[:, :, 4, 4], x[:, :, 4, 4])
    # scale 2 about the centre: output pixel (4 + 2k) reads input pixel (4 + k)
    np.testing.assert_array_equal(out[1, 0, 4, [2, 6]], x[1, 0, 4, [3, 5]])


@pytest.mark.parametrize("cls, axis", [(T.RandomHorizontalFlip, 3), (T.RandomVerticalFlip, 2)])
def test_flips(cls, axis):
    x = images(64, 2, 5, 7)
    np.testing.assert_array_equal(cls(1.0, seed=0)(x), np.flip(x, axis))
    out = cls(0.5, seed=3)(x)
    flipped = [np.array_equal(out[i], np.flip(x[i], axis - 1)) for i in range(len(x))]
    kept = [np.array_equal(out[i], x[i]) for i in range(len(x))]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 10 < sum(flipped) < 54
    np.testing.assert_array_equal(out, cls(0.5, seed=3)(x))
    u8 = (np.arange(2 * 1 * 2 * 3) % 256).astype(np.uint8).reshape(2, 1, 2, 3)
    assert cls(1.0)(u8).dtype == np.uint8                 # flips keep the dtype


def test_determinism_under_seed_and_shared_rng():
    x = images(16, 1, 12, 12)
    mk = lambda **kw: T.RandomAffine(15, translate=(0.1, 0.1), scale=(0.8, 1.2),  # noqa: E731
                                     shear=(-5, 5, -3, 3), **kw)
    a, b = mk(seed=11), mk(seed=11)
    for _ in range(2):
        np.testing.assert_array_equal(a(x), b(x))
    assert not np.array_equal(mk(seed=11)(x), mk(seed=12)(x))
    r1, r2 = np.random.default_rng(4), np.random.default_rng(4)
    np.testing.assert_array_equal(mk(rng=r1)(x), mk(rng=r2)(x))
    p1 = mk(seed=0).get_params(1000, 12, 12)
    assert p1[0].min() >= -15 and p1[0].max() <= 15 and np.ptp(p1[0]) > 25
    assert set(np.unique(p1[1])) <= set(range(-1, 2))    # round(U(-1.2, 1.2))
    assert p1[2].min() >= 0.8 and p1[2].max() <= 1.2
    assert np.abs(p1[3][:, 1]).max() <= 3 and np.abs(p1[3][:, 1]).max() > 2


def test_normalize_and_compose():
    x = images(2, 3, 4, 4)
    out = T.Normalize([0.1, 0.2, 0.3], [2.0, 4.0, 8.0])(x)
    want = (x - np.float32([0.1, 0.2, 0.3])[:, None, None]) / np.float32([2, 4, 8])[:, None,
                                                                                      None]
    np.testing.assert_array_equal(out, want)
    c = T.Compose([T.RandomHorizontalFlip(1.0), T.RandomVerticalFlip(1.0)])
    np.testing.assert_array_equal(c(x), x[:, :, ::-1, ::-1])
    assert "RandomHorizontalFlip(p=1.0)" in repr(c)


@pytest.mark.parametrize("make, exc, msg", [
    (lambda: T.RandomRotation(-1), ValueError, "RandomRotation: degrees must be >= 0"),
    (lambda: T.RandomRotation((5, 1)), ValueError, r"degrees must have min <= max"),
    (lambda: T.RandomRotation("a"), TypeError, "degrees must be a number or a sequence"),
    (lambda: T.RandomHorizontalFlip(1.5), ValueError,
     r"RandomHorizontalFlip: p must be a number in \[0, 1\], got 1.5"),
    (lambda: T.RandomAffine(0, translate=(0.5, 2)), ValueError, r"translate must be 2 numbers"),
    (lambda: T.RandomAffine(0, scale=(0, 1)), ValueError, r"scale must be 2 numbers 0 < min"),
    (lambda: T.RandomAffine(0, scale=1.0), ValueError, r"scale must be 2 numbers"),
    (lambda: T.RandomAffine(0, seed=1, rng=np.random.default_rng()), ValueError,
     "pass seed or rng, not both"),
    (lambda: T.RandomAffine(0, rng=3), TypeError, "rng must be a numpy.random.Generator"),
    (lambda: T.RandomRotation(3, seed=1.5), TypeError, "seed must be an int"),
    (lambda: T.RandomRotation(3)(np.zeros((2, 2))), ValueError,
     r"RandomRotation: x must be \(N, C, H, W\) or \(C, H, W\), got shape \(2, 2\)"),
    (lambda: FN.affine(np.zeros((1, 1, 2, 2)), 0, interpolation="bicubic"), ValueError,
     "interpolation must be 'bilinear' or 'nearest'"),
    (lambda: T.Normalize([0.0], [0.0]), ValueError, "std must be non-zero"),
    (lambda: T.Normalize([0.0, 0.0], [1.0, 1.0])(np.zeros((1, 3, 2, 2))), ValueError,
     "mean/std need 1 or 3 values"),
    (lambda: T.Compose([1]), TypeError, "is not callable"),
])
def test_transform_errors(make, exc, msg):
    with pytest.raises(exc, match=msg):
        make()


# ---------------------------------------------------------------- torch as an oracle

def torch_sample(x, theta, mode):
    """grid_sample with the same centred-pixel matrices, normalised for align_corners=False."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    n, c, h, w = x.shape
    s, si = np.diag([2.0 / w, 2.0 / h]), np.diag([w / 2.0, h / 2.0])
    tt = np.zeros((n, 2, 3))
    tt[:, :, :2] = s @ theta[:, :, :2] @ si
    tt[:, :, 2] = (s @ theta[:, :, 2:])[..., 0]
    grid = F.affine_grid(torch.tensor(tt), (n, c, h, w), align_corners=False)
    return F.grid_sample(torch.tensor(x, dtype=torch.float64), grid, mode=mode,
                         padding_mode="zeros", align_corners=False).numpy()


@given(h=st.sampled_from(SMALL + [28]), w=st.sampled_from(SMALL + [28]),
       seed=st.integers(0, 2**31))
def test_against_torch_grid_sample(h, w, seed):
    r = np.random.default_rng(seed)
    n = 4
    x = r.standard_normal((n, 2, h, w)).astype(np.float32)
    angle, scale = r.uniform(-180, 180, n), r.uniform(0.5, 1.5, n)
    translate, shear = r.uniform(-3, 3, (n, 2)), r.uniform(-20, 20, (n, 2))
    theta = FN.inverse_affine_matrices(angle, translate, scale, shear)
    out = FN.affine(x, angle, translate=translate, scale=scale, shear=shear)
    np.testing.assert_allclose(out, torch_sample(x, theta, "bilinear"), rtol=0, atol=2e-6)
    # nearest: compare away from exact .5 ties (rounding conventions may differ there)
    near = FN.affine(x, angle, translate=np.round(translate), scale=scale,
                    interpolation="nearest")
    want = torch_sample(x, FN.inverse_affine_matrices(angle, np.round(translate), scale,
                                                     np.zeros((n, 2))), "nearest")
    assert np.mean(near == want) > 0.98


def test_inverse_matrix_inverts_the_forward_map():
    """theta maps output to input: composing it with the forward RSS gives the identity."""
    angle, shear = np.array([30.0]), np.array([[10.0, -5.0]])
    theta = FN.inverse_affine_matrices(angle, np.array([[2.0, -1.0]]), np.array([1.5]), shear)
    a, sx, sy = np.radians(30.0), np.radians(10.0), np.radians(-5.0)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    shx = np.array([[1, -np.tan(sx)], [0, 1]])
    shy = np.array([[1, 0], [-np.tan(sy), 1]])
    fwd = 1.5 * rot @ shy @ shx
    np.testing.assert_allclose(theta[0, :, :2] @ fwd, np.eye(2), atol=1e-12)
    # the forward map sends input point p to fwd @ p + t; theta sends it back
    p = np.array([1.0, 2.0])
    q = fwd @ p + np.array([2.0, -1.0])
    np.testing.assert_allclose(theta[0, :, :2] @ q + theta[0, :, 2], p, atol=1e-12)
