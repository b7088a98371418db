"""cnncore.data: bundled digits, IDX / npz / image-folder loaders on fixtures
built here, DataLoader, transforms."""
import gzip
import struct

import numpy as np
import pytest

import cnncore as cc
from cnncore import data
from cnncore.data import transforms as T


def write_idx(path, array, code=0x08, compress=False):
    head = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    dt = {0x08: ">u1", 0x0D: ">f4", 0x0C: ">i4"}[code]
    body = head + array.astype(dt).tobytes()
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(body)


@pytest.fixture
def mnist_dir(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n, gz in (("train", 12, True), ("t10k", 5, False)):
        imgs = rng.integers(0, 256, (n, 6, 5), dtype=np.uint8)
        labs = rng.integers(0, 10, n, dtype=np.uint8)
        suffix = ".gz" if gz else ""
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte{suffix}", imgs, compress=gz)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte{suffix}", labs, compress=gz)
    return tmp_path


def test_bundled_digits():
    tr = data.load_digits("train")
    te = data.load_digits("test")
    assert len(tr) + len(te) == 1797 and len(te) == pytest.approx(0.2 * 1797, abs=6)
    assert tr.images.shape[1:] == (1, 32, 32) and tr.images.dtype == np.float32
    assert 0.0 <= tr.images.min() and tr.images.max() <= 1.0
    assert np.all(tr.images[:, :, :2] == 0)                      # the 2-pixel frame
    assert sorted(np.unique(te.labels)) == list(range(10))       # stratified
    # deterministic split, disjoint from the training set
    again = data.load_digits("test")
    np.testing.assert_array_equal(again.images, te.images)
    small = data.load_digits("all", size=8, pad=0)
    assert small.images.shape == (1797, 1, 8, 8)


def test_idx_plain_and_gzip(mnist_dir):
    tr = data.load_mnist(mnist_dir, "train")
    te = data.load_mnist(mnist_dir, "test")
    assert tr.images.shape == (12, 1, 6, 5) and te.images.shape == (5, 1, 6, 5)
    raw = data.read_idx(mnist_dir / "t10k-images-idx3-ubyte")
    np.testing.assert_allclose(te.images[:, 0], raw / 255.0)
    assert tr.labels.dtype == np.int64
    f = np.arange(6, dtype=np.float32).reshape(2, 3) / 7
    write_idx(mnist_dir / "f.idx", f, code=0x0D)
    np.testing.assert_array_equal(data.read_idx(mnist_dir / "f.idx"), f)


def test_idx_errors(tmp_path):
    arr = np.zeros((3, 4, 4), np.uint8)
    write_idx(tmp_path / "a", arr)
    raw = (tmp_path / "a").read_bytes()
    (tmp_path / "short").write_bytes(raw[:-5])
    with pytest.raises(data.DataError, match="truncated"):
        data.read_idx(tmp_path / "short")
    (tmp_path / "magic").write_bytes(b"\x01\x02" + raw[2:])
    with pytest.raises(data.DataError, match="not an IDX file"):
        data.read_idx(tmp_path / "magic")
    (tmp_path / "bad.gz").write_bytes(b"\x1f\x8b" + b"garbage")
    with pytest.raises(data.DataError, match="decompress"):
        data.read_idx(tmp_path / "bad.gz")
    with pytest.raises(data.DataError, match="no train-images"):
        data.load_mnist(tmp_path, "train")


def test_npz_layouts(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (10, 8, 8, 3), dtype=np.uint8)      # NHWC uint8
    y = rng.integers(0, 4, 10)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x[:3], y_test=y[:3])
    tr = data.load_npz(tmp_path / "d.npz", "train")
    te = data.load_npz(tmp_path / "d.npz", "test")
    assert tr.images.shape == (10, 3, 8, 8) and te.images.shape == (3, 3, 8, 8)
    np.testing.assert_allclose(tr.images[2, 1], x[2, :, :, 1] / 255.0)
    np.savez(tmp_path / "e.npz", images=rng.random((4, 1, 5, 5)), labels=np.arange(4))
    assert data.load_npz(tmp_path / "e.npz").images.shape == (4, 1, 5, 5)
    np.savez(tmp_path / "f.npz", foo=np.zeros(3))
    with pytest.raises(data.DataError, match="no image/label arrays"):
        data.load_npz(tmp_path / "f.npz")
    np.savez(tmp_path / "g.npz", x=np.zeros((2, 4, 4)), y=np.array([0.5, 1.0]))
    with pytest.raises(data.DataError, match="must be integers"):
        data.load_npz(tmp_path / "g.npz")


def test_image_folder(tmp_path):
    from PIL import Image  # a runtime dependency of cnncore
    rng = np.random.default_rng(2)
    for cls, n in (("cat", 2), ("dog", 3)):
        (tmp_path / cls).mkdir()
        for i in range(n):
            arr = rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)
            Image.fromarray(arr).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    ds = data.load_image_folder(tmp_path, channels=3)
    assert ds.classes == ["cat", "dog"] and ds.images.shape == (5, 3, 6, 7)
    assert ds.labels.tolist() == [0, 0, 1, 1, 1]
    first = np.asarray(Image.open(tmp_path / "cat" / "0.png"), np.float32) / 255
    np.testing.assert_allclose(ds.images[0], first.transpose(2, 0, 1))
    gray = data.load_image_folder(tmp_path, size=4, channels=1)
    assert gray.images.shape == (5, 1, 4, 4)
    with pytest.raises(data.DataError, match="no class sub-folders"):
        data.load_image_folder(tmp_path / "cat")


def test_dataloader_batches_shuffle_and_drop_last():
    ds = data.ArrayDataset(np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1), np.arange(10))
    batches = list(data.DataLoader(ds, batch_size=4))
    assert [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert isinstance(batches[0][0], cc.Tensor) and batches[0][0].shape == (4, 1, 1, 1)
    assert len(data.DataLoader(ds, 4, drop_last=True)) == 2
    assert [len(b[1]) for b in data.DataLoader(ds, 4, drop_last=True)] == [4, 4]
    a = [b[1].tolist() for b in data.DataLoader(ds, 3, shuffle=True, seed=5)]
    loader = data.DataLoader(ds, 3, shuffle=True, seed=5)
    b = [x[1].tolist() for x in loader]
    c = [x[1].tolist() for x in loader]                     # next epoch: new order
    assert a == b and a != c
    assert sorted(sum(a, [])) == list(range(10))
    for x, y in data.DataLoader(ds, 3, shuffle=True, seed=1):
        np.testing.assert_array_equal(x.numpy().reshape(-1), y.numpy())   # pairs kept
    with pytest.raises(ValueError, match="batch_size"):
        data.DataLoader(ds, 0)


def test_dataloader_over_a_plain_dataset():
    class Squares(data.Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return np.full((1, 2, 2), i * i, np.float32), i

    xs = [x.numpy()[:, 0, 0, 0].tolist() for x, _ in data.DataLoader(Squares(), 2)]
    assert xs == [[0, 1], [4, 9], [16]]


def test_transforms():
    rng = np.random.default_rng(0)
    x = rng.random((4, 3, 8, 8)).astype(np.float32)
    n = T.Normalize([0.5, 0.4, 0.3], [0.2, 0.2, 0.1])(x)
    np.testing.assert_allclose(n[:, 2], (x[:, 2] - 0.3) / 0.1, rtol=1e-6)
    f = T.RandomHorizontalFlip(p=1.0, generator=0)(x)
    np.testing.assert_array_equal(f, x[..., ::-1])
    c = T.RandomCrop(6, generator=0)(x)
    assert c.shape == (4, 3, 6, 6)
    assert any(np.array_equal(c[0], x[0, :, i:i + 6, j:j + 6]) for i in range(3)
               for j in range(3))
    p = T.RandomCrop(8, padding=2, generator=1)(x)
    assert p.shape == x.shape
    t = T.RandomTranslate(2, generator=3)(x)
    assert t.shape == x.shape
    for i in range(4):                        # each image is a shifted copy of its original
        assert any(np.array_equal(t[i][:, max(dy, 0):8 + min(dy, 0), max(dx, 0):8 + min(dx, 0)],
                                  x[i][:, max(-dy, 0):8 - max(dy, 0), max(-dx, 0):8 - max(dx, 0)])
                   for dy in range(-2, 3) for dx in range(-2, 3))
    j = T.RGBIntensityJitter(0.1, generator=4)(x)
    shift = (j - x).reshape(4, 3, -1)
    np.testing.assert_allclose(shift, shift[..., :1] * np.ones_like(shift), atol=1e-6)
    assert np.abs(shift).max() > 0
    fitted = T.RGBIntensityJitter.fit(x)
    assert fitted.eigval[0] >= fitted.eigval[1] >= fitted.eigval[2] >= 0
    single = T.Compose([T.Pad(1), T.CenterCrop(8)])(x[0])
    np.testing.assert_array_equal(single, x[0])
    r = T.resize(np.ones((1, 1, 3, 3)), 7)
    np.testing.assert_allclose(r, 1.0)


def test_dataset_transform_applies_per_batch():
    ds = data.ArrayDataset(np.ones((6, 1, 2, 2), np.float32), np.zeros(6, np.int64),
                           transform=T.Normalize([1.0], [2.0]))
    x, _ = next(iter(data.DataLoader(ds, 6)))
    np.testing.assert_array_equal(x.numpy(), 0.0)
    with pytest.raises(data.DataError, match="labels must be"):
        data.ArrayDataset(np.ones((3, 1, 2, 2)), np.zeros(4, np.int64))


# --- the transforms on non-constant images, and their randomness ---


def _ramp_image(n=1, c=2, h=8, w=8):
    """Distinct values everywhere, so any shift, crop or flip is visible."""
    return (np.arange(n * c * h * w, dtype=np.float32).reshape(n, c, h, w) + 1) / (n * c * h * w)


def test_digits_splits_are_disjoint_and_cover_everything():
    tr, te, full = data.load_digits("train"), data.load_digits("test"), data.load_digits("all")
    rows = lambda ds: {r.tobytes() for r in ds.images.reshape(len(ds), -1)}  # noqa: E731
    assert len(rows(full)) == len(full)                  # every digit image is distinct
    assert not rows(tr) & rows(te)
    assert rows(tr) | rows(te) == rows(full)


def test_resize_uses_half_pixel_centres():
    ramp = np.arange(4, dtype=np.float64).reshape(1, 1, 1, 4).repeat(2, axis=2)
    # align_corners=False: output i samples input (i + 0.5) * in/out - 0.5, clamped
    up = T.resize(ramp, (2, 8))[0, 0, 0]
    np.testing.assert_allclose(up, [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3])
    down = T.resize(ramp, (2, 2))[0, 0, 0]
    np.testing.assert_allclose(down, [0.5, 2.5])


def test_random_translate_shifts_and_is_seeded():
    x = _ramp_image(n=16)
    t = T.RandomTranslate(2, generator=5)(x)
    moved = [not np.array_equal(t[i], x[i]) for i in range(16)]
    assert sum(moved) >= 12                # 1 in 25 draws is (0, 0)
    np.testing.assert_array_equal(T.RandomTranslate(2, generator=5)(x), t)
    assert not np.array_equal(T.RandomTranslate(2, generator=6)(x), t)
    # every shift in [-2, 2]^2 turns up over many draws
    big = _ramp_image(n=400, c=1)
    out = T.RandomTranslate(2, generator=7)(big)
    seen = set()
    for i in range(400):
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                ys, xs = slice(max(dy, 0), 8 + min(dy, 0)), slice(max(dx, 0), 8 + min(dx, 0))
                yo, xo = slice(max(-dy, 0), 8 - max(dy, 0)), slice(max(-dx, 0), 8 - max(dx, 0))
                if np.array_equal(out[i][:, ys, xs], big[i][:, yo, xo]):
                    seen.add((dy, dx))
    assert seen == {(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)}


def test_random_crop_pads_every_side():
    x = _ramp_image(n=300, c=1)
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    out = T.RandomCrop(8, padding=2, generator=3)(x)
    offsets = set()
    for i in range(300):
        hits = [(a, b) for a in range(5) for b in range(5)
                if np.array_equal(out[i], padded[i, :, a:a + 8, b:b + 8])]
        assert len(hits) == 1
        offsets.add(hits[0])
    # offsets 0 and 4 on each axis: zeros can come in on the top/left and on the bottom/right
    assert {a for a, _ in offsets} == set(range(5)) and {b for _, b in offsets} == set(range(5))
    np.testing.assert_array_equal(T.RandomCrop(8, padding=2, generator=3)(x), out)


def test_horizontal_flip_is_random_with_p():
    x = _ramp_image(n=200, c=1)
    f = T.RandomHorizontalFlip(p=0.5, generator=2)(x)
    flipped = [np.array_equal(f[i], x[i, :, :, ::-1]) for i in range(200)]
    kept = [np.array_equal(f[i], x[i]) for i in range(200)]
    assert all(a != b for a, b in zip(flipped, kept))
    assert 60 < sum(flipped) < 140


def test_digits_values_against_scikit_learn():
    from sklearn.datasets import load_digits as sk_digits
    sk = sk_digits()
    raw = data.load_digits("all", size=8, pad=0)
    np.testing.assert_array_equal(raw.images[:, 0], (sk.images / 16.0).astype(np.float32))
    np.testing.assert_array_equal(raw.labels, sk.target)
    assert raw.classes == [str(i) for i in range(10)] and raw.images.dtype == np.float32
    framed = data.load_digits("all", size=12, pad=2)               # 8 inside, 2-pixel frame
    np.testing.assert_array_equal(framed.images[:, :, 2:10, 2:10], raw.images)
    assert not framed.images[:, :, :2].any() and not framed.images[:, :, 10:].any()
    assert not framed.images[..., :2].any() and not framed.images[..., 10:].any()
    big = data.load_digits("all", size=20, pad=0)                  # resized, kept in [0, 1]
    assert big.images.min() >= 0.0 and big.images.max() <= 1.0 and big.images.max() > 0.9
    np.testing.assert_allclose(big.images[5, 0], T.resize(raw.images[5], 20)[0].clip(0, 1),
                               rtol=1e-6)
    tr = data.load_digits("train", transform=T.Normalize([0.5], [0.5]))
    assert tr.transform is not None and tr.classes == raw.classes
    with pytest.raises(ValueError, match="split_name must be"):
        data.load_digits("validation")
    with pytest.raises(ValueError, match="leaves no room"):
        data.load_digits(size=4, pad=2)


def test_npz_keys_classes_and_transform(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.random((5, 1, 4, 4)).astype(np.float32)
    np.savez(tmp_path / "a.npz", X=x, y=np.arange(5).reshape(5, 1),
             classes=np.array(["zero", "one", "two", "three", "four"]))
    ds = data.load_npz(tmp_path / "a.npz", transform=T.Normalize([0.0], [2.0]))
    np.testing.assert_array_equal(ds.images, x)
    np.testing.assert_array_equal(ds.labels, np.arange(5))           # (N, 1) labels flattened
    assert ds.classes == ["zero", "one", "two", "three", "four"] and ds.transform is not None
    np.savez(tmp_path / "b.npz", pics=x, tags=np.arange(5))
    named = data.load_npz(tmp_path / "b.npz", x_key="pics", y_key="tags")
    np.testing.assert_array_equal(named.images, x)
    assert named.classes == ["0", "1", "2", "3", "4"]                  # named after the labels
    with pytest.raises(data.DataError, match=r"no array named 'nope' \(the file has \['pics', "
                                             r"'tags'\]\)"):
        data.load_npz(tmp_path / "b.npz", x_key="pics", y_key="nope")
    np.savez(tmp_path / "c.npz", x=x)                                   # images without labels
    with pytest.raises(data.DataError, match=r"no image/label arrays found .* the file has \['x'\]"):
        data.load_npz(tmp_path / "c.npz")
    (tmp_path / "d.npz").write_bytes(b"not a zip")
    with pytest.raises(data.DataError, match="cannot read as .npz"):
        data.load_npz(tmp_path / "d.npz")


# --- sizes from users are bounded (each failed before the audit's fixes) ---


def test_resize_refuses_sizes_beyond_the_memory_limit_before_allocating():
    x = np.zeros((2, 1, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"^resize: size 1000000 for 2 images of 1x3x3 needs "
                                         r"[\d,]+ bytes, more than the memory limit of [\d,]+ "
                                         r"bytes \(cnncore.set_memory_limit\)$"):
        T.resize(x, 10**6)                     # 2 x 10**12 pixels: was a MemoryError
    old = cc.get_memory_limit()
    try:
        # 2 images x (4*4 + 4*3) float64 intermediates + 2 x 4*4 float32 results
        cc.set_memory_limit(2 * (16 + 12) * 8 + 2 * 16 * 4)
        assert T.resize(x, 4).shape == (2, 1, 4, 4)
        cc.set_memory_limit(2 * (16 + 12) * 8 + 2 * 16 * 4 - 1)
        with pytest.raises(ValueError, match=r"^resize: size 4 for 2 images"):
            T.resize(x, 4)
    finally:
        cc.set_memory_limit(old)


@pytest.mark.parametrize("size", [0, -2, (3, 0), (2,), 1.5, True, "4", None])
def test_resize_sizes_must_be_positive_integers(size):
    with pytest.raises(ValueError, match=r"^resize: size must be a positive int or \(h, w\), "
                                         r"got "):
        T.resize(np.zeros((1, 3, 3)), size)


def test_random_translate_by_the_whole_image_or_more_leaves_the_fill():
    x = _ramp_image(n=30, c=1, h=3, w=5)
    out = T.RandomTranslate(6, fill=-1.0, generator=0)(x)      # was a broadcasting ValueError
    shifts = np.random.default_rng(0).integers(-6, 7, size=(30, 2))
    for i, (dy, dx) in enumerate(shifts):
        if abs(dy) >= 3 or abs(dx) >= 5:
            assert np.all(out[i] == -1.0)
        else:
            kept = out[i][:, max(dy, 0):3 + min(dy, 0), max(dx, 0):5 + min(dx, 0)]
            np.testing.assert_array_equal(
                kept, x[i][:, max(-dy, 0):3 - max(dy, 0), max(-dx, 0):5 - max(dx, 0)])
    assert any(abs(dy) >= 3 or abs(dx) >= 5 for dy, dx in shifts)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match=r"^RandomTranslate: max_shift must be an integer "
                                             r">= 0, got "):
            T.RandomTranslate(bad)
