"""cnncore.data.transforms value by value: each random transform replayed from its seed by
hand (which crop, which shift, which alpha), fills, dtypes, single images and batches,
non-square and boundary sizes, the reprs and every error message."""
import re

import numpy as np
import pytest

import cnncore as cc
from cnncore.data import transforms as T


def ramp(n=2, c=3, h=5, w=7, dtype=np.float32):
    return (np.arange(n * c * h * w).reshape(n, c, h, w) + 1).astype(dtype)


def test_reprs():
    assert repr(T.Compose([T.Resize(3), T.Pad(1), T.Normalize([0.5], [2])])) == \
        "Compose(Resize(3), Pad((1, 1, 1, 1)), Normalize(mean=[0.5], std=[2.0]))"
    assert repr(T.Compose([])) == "Compose()"
    assert repr(T.RandomCrop(3, padding=1)) == "RandomCrop((3, 3), padding=1)"
    assert repr(T.RandomCrop((2, 3))) == "RandomCrop((2, 3), padding=0)"
    assert repr(T.RandomTranslate(2)) == "RandomTranslate(2)"
    assert repr(T.RandomHorizontalFlip()) == "RandomHorizontalFlip(p=0.5)"
    assert repr(T.RGBIntensityJitter()) == "RGBIntensityJitter(alphastd=0.1)"
    assert repr(T.Pad((1, 2, 3, 4))) == "Pad((1, 2, 3, 4))" and repr(T.Resize((2, 3))) == \
        "Resize((2, 3))"


def test_batch_shape_errors():
    for t in (T.Normalize([0], [1]), T.Resize(2), T.Pad(1), T.CenterCrop(1), T.RandomCrop(1),
              T.RandomTranslate(1), T.RandomHorizontalFlip(), T.RGBIntensityJitter()):
        with pytest.raises(ValueError, match=re.escape("transforms expect an image (C, H, W) or a "
                                                       "batch (N, C, H, W), got shape (4, 4)")):
            t(np.zeros((4, 4)))


# --------------------------------------------------------------------------- Normalize


def test_normalize_dtypes_broadcasting_and_single_images():
    x = ramp()
    n = T.Normalize([1.0, 2.0, 3.0], 2.0)(x)                   # one std for every channel
    np.testing.assert_allclose(n, (x - np.array([1, 2, 3.0])[None, :, None, None]) / 2, rtol=1e-6)
    assert n.dtype == np.float32
    m = T.Normalize(0.5, [[1.0], [2.0], [4.0]])(x.astype(np.float64))   # nested lists flatten
    assert m.dtype == np.float64
    np.testing.assert_allclose(m, (x - 0.5) / np.array([1, 2, 4.0])[None, :, None, None])
    assert T.Normalize(0, 1)(np.ones((1, 2, 2), np.float16)).dtype == np.float16
    ints = T.Normalize([1], [2])(np.arange(4, dtype=np.uint8).reshape(1, 2, 2))
    assert ints.dtype == np.float32 and ints.shape == (1, 2, 2)
    np.testing.assert_array_equal(ints, (np.arange(4).reshape(1, 2, 2) - 1) / 2)
    with pytest.raises(ValueError, match=r"^Normalize: 2 means for 3 channels$"):
        T.Normalize([0, 0], [1])(x)
    with pytest.raises(ValueError, match=r"^Normalize: 1 means for 3 channels$"):
        T.Normalize([0], [1, 1])(x)
    for std in ([1, 0], -1):
        with pytest.raises(ValueError, match=re.escape(f"Normalize: std must be positive, got "
                                                       f"{std}")):
            T.Normalize(0, std)


# --------------------------------------------------------------------------- resize


def test_resize_dtypes_sizes_and_single_images():
    img = np.arange(12, dtype=np.uint8).reshape(1, 3, 4)
    up = T.Resize((6, 2))(img)
    assert up.shape == (1, 6, 2) and up.dtype == np.float32
    # rows: 3 -> 6 at (i + 0.5) / 2 - 0.5 = -0.25 (clamped 0), 0.25, 0.75, 1.25, 1.75, 2.25
    # columns: 4 -> 2 at (j + 0.5) * 2 - 0.5 = 0.5, 2.5
    rows = np.array([0, 0.25, 0.75, 1.25, 1.75, 2.0])
    cols = np.array([0.5, 2.5])
    want = 4 * rows[:, None] + cols[None, :]                   # the image is 4*r + c
    np.testing.assert_allclose(up[0], want, rtol=1e-6)
    f64 = T.resize(np.ones((2, 1, 3, 3)), 2)
    assert f64.dtype == np.float64 and f64.shape == (2, 1, 2, 2)
    assert T.resize(np.ones((1, 3, 3), np.float32), 5).dtype == np.float32
    assert T.resize(np.ones((1, 3, 3), np.float16), 5).dtype == np.float16


# --------------------------------------------------------------------------- Pad, CenterCrop


def test_pad_sides_and_value():
    x = ramp(n=1, c=2, h=2, w=3)
    p = T.Pad((0, 1, 3, 2), value=-1.0)(x)          # (left, top, right, bottom), torchvision's
    assert p.shape == (1, 2, 5, 6)
    np.testing.assert_array_equal(p[:, :, 1:3, 0:3], x)
    mask = np.ones(p.shape, bool)
    mask[:, :, 1:3, 0:3] = False
    assert np.all(p[mask] == -1.0)
    z = T.Pad(1)(x[0])
    assert z.shape == (2, 4, 5) and z[:, 0].max() == 0 and z[:, :, -1].max() == 0
    assert T.Pad((2, 1))(x).shape == (1, 2, 4, 7)
    with pytest.raises(ValueError, match=r"\(left, top, right, bottom\)"):
        T.Pad((1, 2, 3))


def test_center_crop_non_square_and_boundaries():
    x = ramp(n=1, c=1, h=5, w=8)
    c = T.CenterCrop((3, 4))(x)
    np.testing.assert_array_equal(c, x[:, :, 1:4, 2:6])
    np.testing.assert_array_equal(T.CenterCrop((5, 8))(x), x)        # the whole image
    np.testing.assert_array_equal(T.CenterCrop(5)(x[0]), x[0, :, :, 1:6])
    for size in ((6, 4), (3, 9), (6, 9)):
        with pytest.raises(ValueError, match=re.escape(f"CenterCrop: crop {size} is larger than "
                                                       f"the image (5, 8)")):
            T.CenterCrop(size)(x)


# --------------------------------------------------------------------------- random crops


def test_random_crop_replays_its_draws():
    x = ramp(n=6, c=2, h=5, w=7)
    out = T.RandomCrop((3, 4), padding=1, generator=11)(x)
    rng = np.random.default_rng(11)
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    tops, lefts = rng.integers(0, 7 - 3 + 1, 6), rng.integers(0, 9 - 4 + 1, 6)
    for i in range(6):
        np.testing.assert_array_equal(out[i], padded[i, :, tops[i]:tops[i] + 3,
                                                     lefts[i]:lefts[i] + 4])
    assert out.dtype == np.float32 and out.shape == (6, 2, 3, 4)
    whole = T.RandomCrop((7, 9), padding=1, generator=0)(x)          # crop = padded image
    np.testing.assert_array_equal(whole, padded)
    one = T.RandomCrop(2, generator=np.random.default_rng(4))(x[0])
    assert one.shape == (2, 2, 2)
    for size in ((8, 9), (7, 10)):
        with pytest.raises(ValueError, match=re.escape(f"RandomCrop: crop {size} is larger than "
                                                       f"the (padded) image (7, 9)")):
            T.RandomCrop(size, padding=1)(x)


def test_random_transforms_use_the_package_generator_by_default():
    x = ramp(n=8, c=3, h=6, w=6)
    for t in (T.RandomCrop(3), T.RandomTranslate(2), T.RandomHorizontalFlip(),
              T.RGBIntensityJitter(0.5)):
        cc.manual_seed(21)                     # read at each call, not when constructed
        a = t(x)
        cc.manual_seed(21)
        b = t(x)
        c = t(x)
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(b, c), t


# --------------------------------------------------------------------------- RandomTranslate


def translated(x, shifts, fill):
    out = np.full_like(x, fill)
    h, w = x.shape[2:]
    for i, (dy, dx) in enumerate(shifts):
        src = x[i, :, max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
        out[i, :, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = src
    return out


def test_random_translate_replays_its_shifts_and_fills():
    x = ramp(n=10, c=2, h=5, w=6)
    out = T.RandomTranslate(2, fill=0.5, generator=8)(x)
    shifts = np.random.default_rng(8).integers(-2, 3, size=(10, 2))
    np.testing.assert_array_equal(out, translated(x, shifts, 0.5))
    zero = T.RandomTranslate(3, generator=1)(x)                       # default fill 0
    shifts = np.random.default_rng(1).integers(-3, 4, size=(10, 2))
    np.testing.assert_array_equal(zero, translated(x, shifts, 0.0))
    ones = T.RandomTranslate(1, generator=2)(x[0])                    # max_shift 1 moves too
    assert ones.shape == x[0].shape
    moved = [not np.array_equal(T.RandomTranslate(1, generator=s)(x[0]), x[0]) for s in range(8)]
    assert any(moved)
    same = T.RandomTranslate(0)(x[0])
    np.testing.assert_array_equal(same, x[0])
    assert same.shape == x[0].shape


# --------------------------------------------------------------------------- flips


def test_flip_replays_its_coins_and_keeps_single_images():
    x = ramp(n=12, c=1, h=2, w=5)
    out = T.RandomHorizontalFlip(0.3, generator=5)(x)
    flip = np.random.default_rng(5).random(12) < 0.3
    np.testing.assert_array_equal(out[flip], x[flip][..., ::-1])
    np.testing.assert_array_equal(out[~flip], x[~flip])
    one = T.RandomHorizontalFlip(1.0)(x[0])
    np.testing.assert_array_equal(one, x[0][..., ::-1])
    half = [T.RandomHorizontalFlip(generator=s)(x[:1]) for s in range(40)]
    assert 8 < sum(np.array_equal(h, x[:1][..., ::-1]) for h in half) < 32   # p = 0.5


# --------------------------------------------------------------------------- colour jitter


def test_rgb_jitter_replays_alpha_and_fit_finds_the_components():
    rng = np.random.default_rng(0)
    x = rng.random((4, 3, 3, 2)).astype(np.float32)
    val = np.array([0.5, 0.2, 0.1])
    vec = np.linalg.qr(rng.standard_normal((3, 3)))[0]
    out = T.RGBIntensityJitter(0.3, val, vec, generator=6)(x)
    alpha = np.random.default_rng(6).normal(0.0, 0.3, size=(4, 3))
    shift = (alpha * val) @ vec.T
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, x + shift[:, :, None, None].astype(np.float32), rtol=1e-6)
    single = T.RGBIntensityJitter(0.3, val, vec, generator=6)(x[0])
    np.testing.assert_allclose(single, out[0], rtol=1e-6)
    default = T.RGBIntensityJitter(generator=6)(x)                   # ImageNet's components
    ref = (np.random.default_rng(6).normal(0.0, 0.1, (4, 3)) * [0.2175, 0.0188, 0.0045]) @ \
        np.array([[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140],
                  [-0.5836, -0.6948, 0.4203]]).T
    np.testing.assert_allclose(default - x, np.broadcast_to(ref[:, :, None, None], x.shape),
                               atol=1e-6)

    pixels = rng.standard_normal((3, 500)) * np.array([[3.0], [1.0], [0.3]])
    images = pixels.reshape(3, 5, 10, 10).transpose(1, 0, 2, 3)
    fitted = T.RGBIntensityJitter.fit(images, alphastd=0.2, generator=7)
    w, v = np.linalg.eigh(np.cov(pixels))
    np.testing.assert_allclose(fitted.eigval, w[::-1])
    np.testing.assert_allclose(np.abs(fitted.eigvec), np.abs(v[:, ::-1]))
    np.testing.assert_allclose(fitted.eigvec @ np.diag(fitted.eigval) @ fitted.eigvec.T,
                               np.cov(pixels), atol=1e-10)
    assert fitted.alphastd == 0.2 and T.RGBIntensityJitter.fit(images).alphastd == 0.1
    again = T.RGBIntensityJitter(0.2, w[::-1], v[:, ::-1], generator=7)
    np.testing.assert_allclose(fitted(images[:2]), again(images[:2]))
    for bad in (np.zeros((2, 1, 3, 3)), np.zeros((3, 3, 3))):
        with pytest.raises(ValueError, match=re.escape(f"RGBIntensityJitter.fit: expected (N, 3, "
                                                       f"H, W), got {bad.shape}")):
            T.RGBIntensityJitter.fit(bad)
    with pytest.raises(ValueError, match=r"^RGBIntensityJitter: needs 3 channels, got 2$"):
        T.RGBIntensityJitter()(np.zeros((1, 2, 4, 4)))
