"""cnncore.data loaders in detail: every IDX header check at its boundary, the file names
MNIST is found under, the .npz key search and layouts, image folders (hidden, listed and
missing classes, sizes), the bundled digits' defaults, ArrayDataset and DataLoader (seeds
and generators, plain data sets, lengths), and each error message in full."""
import gzip
import re
import struct
import sys

import numpy as np
import pytest
from PIL import Image

import cnncore as cc
from cnncore import data
from cnncore.data import datasets as D


def idx_bytes(array, code=0x08):
    dt = {0x08: ">u1", 0x0D: ">f4"}[code]
    head = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return head + array.astype(dt).tobytes()


def raises_data_error(call, message):
    with pytest.raises(data.DataError) as info:
        call()
    assert str(info.value) == message
    return info.value


# --------------------------------------------------------------------------- IDX


def test_read_idx_header_boundaries(tmp_path):
    p = tmp_path / "f"

    def read(raw):
        p.write_bytes(raw)
        return data.read_idx(p)

    not_idx = f"{p}: not an IDX file (the magic number must start with two zero bytes)"
    for raw in (b"\0\0\x08", b"\0\x01\x08\x01" + b"\0" * 8, b"\x01\0\x08\x01" + b"\0" * 8):
        raises_data_error(lambda: read(raw), not_idx)
    raises_data_error(lambda: read(b"\0\0\x08\0"), f"{p}: truncated IDX header (0 dimensions)")
    raises_data_error(lambda: read(b"\0\0\x08\x01"), f"{p}: truncated IDX header (1 dimensions)")
    raises_data_error(lambda: read(b"\0\0\x08\x02" + b"\0\0\0\x01"),
                      f"{p}: truncated IDX header (2 dimensions)")
    raises_data_error(lambda: read(b"\0\0\x07\x01" + b"\0" * 4), f"{p}: unknown IDX data type 0x07")
    empty = read(b"\0\0\x08\x01" + b"\0" * 4)          # dims (0,): a complete header, no data
    assert empty.shape == (0,) and empty.dtype == np.uint8
    raw = idx_bytes(np.arange(6).reshape(2, 3))
    raises_data_error(lambda: read(raw + b"\0\0"), f"{p}: IDX dimensions (2, 3) need 6 data bytes, "
                                                   f"the file has 8 (trailing data)")
    raises_data_error(lambda: read(raw[:-1]), f"{p}: IDX dimensions (2, 3) need 6 data bytes, "
                                              f"the file has 5 (truncated)")
    f = np.array([[0.5, -1.0]], np.float32)
    got = read(idx_bytes(f, 0x0D))
    assert got.dtype == np.float32 and got.dtype.isnative
    np.testing.assert_array_equal(got, f)


@pytest.mark.parametrize("img_name, lab_name", [
    ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    ("train-images.idx3-ubyte", "train-labels.idx1-ubyte"),
    ("train-images.idx3-ubyte.gz", "train-labels.idx1-ubyte.gz"),
])
def test_mnist_file_names(tmp_path, img_name, lab_name):
    imgs = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4) * 10
    for name, arr in ((img_name, imgs), (lab_name, np.array([3, 1], np.uint8))):
        raw = idx_bytes(arr)
        (tmp_path / name).write_bytes(gzip.compress(raw) if name.endswith(".gz") else raw)
    assert D.is_mnist_folder(str(tmp_path))
    ds = data.load_mnist(tmp_path)                          # split "train" by default
    np.testing.assert_allclose(ds.images[:, 0], imgs / 255.0, rtol=1e-6)
    assert ds.labels.tolist() == [3, 1] and ds.classes == [str(i) for i in range(4)]
    tf = data.load_mnist(tmp_path, "train", transform=lambda x: x * 0)
    assert tf[0][0].max() == 0 and tf.transform is not None
    (tmp_path / lab_name).unlink()
    assert D.is_mnist_folder(str(tmp_path))                 # the images decide
    raises_data_error(lambda: data.load_mnist(tmp_path), f"{tmp_path}: no train-images-idx3-ubyte"
                                                         f"[.gz] / train-labels-idx1-ubyte[.gz] "
                                                         f"found")


def test_mnist_folder_detection_and_split_names(tmp_path):
    assert not D.is_mnist_folder(str(tmp_path))
    assert not D.is_mnist_folder(str(tmp_path / "missing"))
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((1, 2, 2))))
    assert not D.is_mnist_folder(str(tmp_path))              # a test split alone is not one
    with pytest.raises(ValueError, match=r"^load_mnist: split_name must be 'train' or 'test', "
                                         r"got 'val'$"):
        data.load_mnist(tmp_path, "val")


def test_load_idx_layouts_and_errors(tmp_path):
    four = np.arange(2 * 3 * 2 * 2, dtype=np.uint8).reshape(2, 3, 2, 2)
    (tmp_path / "i4").write_bytes(idx_bytes(four))
    (tmp_path / "l").write_bytes(idx_bytes(np.array([0, 1], np.uint8)))
    ds = data.load_idx(tmp_path / "i4", tmp_path / "l", classes=["a", "b"])
    assert ds.images.shape == (2, 3, 2, 2) and ds.images.dtype == np.float32
    assert ds.classes == ["a", "b"]
    np.testing.assert_allclose(ds.images, four / 255.0, rtol=1e-6)
    (tmp_path / "f").write_bytes(idx_bytes(np.full((2, 2, 2), 0.5, np.float32), 0x0D))
    assert data.load_idx(tmp_path / "f", tmp_path / "l").images.max() == 0.5   # not scaled
    assert data.load_idx(tmp_path / "f", tmp_path / "l", transform=abs).transform is abs
    (tmp_path / "i2").write_bytes(idx_bytes(np.zeros((2, 3), np.uint8)))
    raises_data_error(lambda: data.load_idx(tmp_path / "i2", tmp_path / "l"),
                      f"{tmp_path / 'i2'}: expected images (N, H, W), got shape (2, 3)")
    (tmp_path / "l3").write_bytes(idx_bytes(np.zeros(3, np.uint8)))
    raises_data_error(lambda: data.load_idx(tmp_path / "i4", tmp_path / "l3"),
                      f"{tmp_path / 'l3'}: (3,) labels for 2 images")
    (tmp_path / "l2d").write_bytes(idx_bytes(np.zeros((2, 1), np.uint8)))
    raises_data_error(lambda: data.load_idx(tmp_path / "i4", tmp_path / "l2d"),
                      f"{tmp_path / 'l2d'}: (2, 1) labels for 2 images")


# --------------------------------------------------------------------------- .npz


@pytest.mark.parametrize("shape, expect", [
    ((2, 5, 6, 1), (2, 1, 5, 6)),      # NHWC, one channel
    ((2, 5, 6, 3), (2, 3, 5, 6)),      # NHWC, RGB
    ((2, 5, 3, 3), (2, 3, 5, 3)),      # NHWC whose width is 3
    ((2, 3, 5, 3), (2, 3, 5, 3)),      # NCHW RGB whose width is 3
    ((2, 1, 5, 1), (2, 1, 5, 1)),      # NCHW grey whose width is 1
    ((2, 5, 6, 7), (2, 5, 6, 7)),      # NCHW with 5 channels
    ((2, 5, 6), (2, 1, 5, 6)),         # NHW
])
def test_npz_image_layouts(tmp_path, shape, expect):
    x = np.random.default_rng(0).random(shape)                  # float64 in the file
    np.savez(tmp_path / "d.npz", x=x, y=np.zeros(2, int))
    ds = data.load_npz(tmp_path / "d.npz")
    assert ds.images.shape == expect and ds.images.dtype == np.float32


def test_npz_keys_labels_and_classes(tmp_path):
    p = tmp_path / "d.npz"
    x = np.zeros((4, 1, 2, 2))
    np.savez(p, X=x, y=np.array([[0], [1], [2], [1]]))          # (N, 1) labels
    ds = data.load_npz(p)
    assert ds.labels.tolist() == [0, 1, 2, 1] and ds.classes == ["0", "1", "2"]
    np.savez(p, x_train=x, x=x, y=np.arange(4))                 # x_train without y_train
    assert data.load_npz(p).labels.tolist() == [0, 1, 2, 3]
    np.savez(p, a=x, b=np.arange(4), classes=np.array(["w", "x", "y", "z"]))
    ds = data.load_npz(p, x_key="a", y_key="b", transform=abs)
    assert ds.classes == ["w", "x", "y", "z"] and ds.transform is abs
    raises_data_error(lambda: data.load_npz(p, x_key="a", y_key="c"),
                      f"{p}: no array named 'c' (the file has ['a', 'b', 'classes'])")
    raises_data_error(lambda: data.load_npz(p, x_key="b", y_key="a"),
                      f"{p}: 'b' must be images (N, H, W), (N, C, H, W) or (N, H, W, C), got "
                      f"shape (4,)")
    np.savez(p, x_train=x, y_train=np.arange(4), x_test=x[:1], y_test=np.arange(1))
    assert D.npz_has_test_split(p) and len(data.load_npz(p)) == 4
    np.savez(p, x_train=x, y_train=np.arange(4), x_test=x[:1])
    assert not D.npz_has_test_split(p)
    np.savez(p, x_train=x, y_train=np.arange(4), y_test=np.arange(1))
    assert not D.npz_has_test_split(p)


def test_npz_never_unpickles(tmp_path):
    p = tmp_path / "o.npz"
    np.savez(p, x=np.array([object(), object()], dtype=object), y=np.arange(2))
    with pytest.raises(ValueError, match="allow_pickle"):
        data.load_npz(p)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(data.DataError, match=re.escape(f"{tmp_path / 'bad.npz'}: cannot read as "
                                                       ".npz (")):
        data.load_npz(tmp_path / "bad.npz")


# --------------------------------------------------------------------------- images


def _save(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def test_load_image_sizes_channels_and_resampling(tmp_path):
    rng = np.random.default_rng(3)
    arr = rng.integers(0, 256, (6, 9, 3), dtype=np.uint8)
    _save(tmp_path / "a.png", arr)
    grey = data.load_image(tmp_path / "a.png")                  # one channel by default
    assert grey.shape == (1, 6, 9) and grey.dtype == np.float32
    rgb = data.load_image(tmp_path / "a.png", size=(4, 5), channels=3)
    want = np.asarray(Image.fromarray(arr).resize((5, 4), Image.BILINEAR), np.float32) / 255
    assert rgb.shape == (3, 4, 5) and rgb.dtype == np.float32
    np.testing.assert_array_equal(rgb, want.transpose(2, 0, 1))
    assert data.load_image(tmp_path / "a.png", size=4).shape == (1, 4, 4)
    (tmp_path / "b.png").write_bytes(b"not a png")
    with pytest.raises(data.DataError, match=re.escape(f"{tmp_path / 'b.png'}: cannot read the "
                                                       "image (")):
        data.load_image(tmp_path / "b.png")


def test_image_folder_classes_hidden_and_missing(tmp_path):
    px = np.full((3, 3), 200, np.uint8)
    for cls in ("b", "a", ".hidden"):
        _save(tmp_path / cls / "0.png", px)
    _save(tmp_path / "a" / "1.png", px // 2)
    ds = data.load_image_folder(tmp_path, transform=abs)
    assert ds.classes == ["a", "b"] and ds.labels.tolist() == [0, 0, 1]
    assert ds.labels.dtype == np.int64 and ds.images.shape == (3, 1, 3, 3)
    assert ds.transform is abs
    listed = data.load_image_folder(tmp_path, classes=["b", "missing", "a"])
    assert listed.classes == ["b", "missing", "a"] and listed.labels.tolist() == [0, 2, 2]
    raises_data_error(lambda: data.load_image_folder(tmp_path, classes=["a"]),
                      f"{tmp_path}: class folders ['b'] are not among ['a']")
    raises_data_error(lambda: data.load_image_folder(tmp_path / "nowhere"),
                      f"{tmp_path / 'nowhere'}: not a folder")
    (tmp_path / "empty" / "c").mkdir(parents=True)
    raises_data_error(lambda: data.load_image_folder(tmp_path / "empty"),
                      f"{tmp_path / 'empty'}: the class folders hold no images (.png, .jpg, "
                      f".jpeg, .bmp, .gif, .tif, .tiff, .webp, .ppm, .pgm)")
    _save(tmp_path / "a" / "2.png", np.zeros((4, 3), np.uint8))
    raises_data_error(lambda: data.load_image_folder(tmp_path),
                      f"{tmp_path}: images have different sizes [(1, 3, 3), (1, 4, 3)]; pass "
                      f"size= to resize them")
    assert data.load_image_folder(tmp_path, size=2).images.shape == (4, 1, 2, 2)


def test_missing_optional_imports_say_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"^the bundled digits need scikit-learn: pip install "
                                          r"scikit-learn$"):
        data.load_digits()
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match=r"^reading images needs Pillow: pip install pillow$"):
        data.load_image(tmp_path / "x.png")


# --------------------------------------------------------------------------- digits


def test_digits_defaults():
    tr = data.load_digits()                                      # "train", 32, pad 2, seed 0
    np.testing.assert_array_equal(tr.images, data.load_digits("train", 32, 2, 0.2, 0).images)
    assert tr.images.shape[1:] == (1, 32, 32)
    assert np.any(tr.images[:, :, 2] > 0) and np.all(tr.images[:, :, :2] == 0)   # pad 2
    assert tr.classes == [str(i) for i in range(10)]
    te0, te1 = data.load_digits("test"), data.load_digits("test", seed=1)
    assert not np.array_equal(te0.labels, te1.labels) or not np.array_equal(te0.images,
                                                                            te1.images)
    full = data.load_digits("all", size=8, pad=0, transform=abs)
    assert full.images.dtype == np.float32 and full.images.max() == 1.0   # 16 -> 1
    assert full.classes == [str(i) for i in range(10)] and full.transform is abs
    assert data.load_digits("test", transform=abs).transform is abs
    assert data.load_digits("test").classes == [str(i) for i in range(10)]
    for size in (5, 13, 20):
        im = data.load_digits("all", size=size, pad=2).images
        assert im.shape[2:] == (size, size) and 0 <= im.min() and im.max() <= 1.0
    # a split so small that it is empty still names the ten classes
    tiny = data.load_digits("test", test_fraction=0.002)
    assert len(tiny) == 0 and tiny.classes == [str(i) for i in range(10)]
    assert data.load_digits("train", test_fraction=1.0).classes == [str(i) for i in range(10)]
    with pytest.raises(ValueError, match=r"^load_digits: size 4 leaves no room inside padding 2$"):
        data.load_digits(size=4, pad=2)
    with pytest.raises(ValueError, match=r"^load_digits: split_name must be 'train', 'test' or "
                                         r"'all', got 'dev'$"):
        data.load_digits("dev")


def test_split_defaults_and_rounding():
    labels = np.repeat(np.arange(3), 10)
    tr, te = data.split(labels)
    assert (tr.tolist(), te.tolist()) == tuple(x.tolist() for x in data.split(labels, 0.2, 0))
    assert len(te) == 6 and not set(tr) & set(te) and len(tr) + len(te) == 30
    assert not np.array_equal(te, data.split(labels, 0.2, 1)[1])


# --------------------------------------------------------------------------- ArrayDataset


def test_array_dataset_items_subsets_and_classes():
    imgs = np.arange(4 * 1 * 2 * 2, dtype=np.uint8).reshape(4, 1, 2, 2)
    labels = np.array([0, 2, 1, 2])
    ds = data.ArrayDataset(imgs, labels, transform=lambda x: x + 100)
    assert ds.images.dtype == np.float32 and ds.classes == ["0", "1", "2"]
    assert ds.num_classes == 3 and ds.image_shape == (1, 2, 2) and len(ds) == 4
    x, y = ds[1]
    np.testing.assert_array_equal(x, imgs[1] + 100) and y == 2
    assert repr(ds) == "ArrayDataset(4 images of shape (1, 2, 2), 3 classes)"
    same = ds.subset([3, 1])
    assert same.transform is ds.transform and same.classes == ds.classes
    np.testing.assert_array_equal(same.images, imgs[[3, 1]])
    assert same.labels.tolist() == [2, 2]
    plain = ds.subset([0], transform=None)
    assert plain.transform is None and plain[0][0].max() == 3
    other = ds.subset([0], transform=abs)
    assert other.transform is abs
    named = data.ArrayDataset(imgs, labels, classes=("u", "v", "w"))
    assert named.subset([2]).classes == ["u", "v", "w"]             # not recounted from labels
    assert named.subset([2], transform=None).classes == ["u", "v", "w"]
    f64 = np.zeros((2, 1, 1, 1))
    lab = np.array([1, 0], np.int64)
    kept = data.ArrayDataset(f64, lab)
    assert kept.images is f64 and np.shares_memory(kept.labels, lab)   # no copies
    empty = data.ArrayDataset(np.zeros((0, 1, 2, 2)), np.zeros(0, np.int64))
    assert empty.classes == [] and empty.num_classes == 0
    assert data.ArrayDataset(imgs, labels, classes=("u", "v", "w", "x")).classes == \
        ["u", "v", "w", "x"]


def test_array_dataset_errors():
    raises_data_error(lambda: data.ArrayDataset(np.zeros((2, 3)), np.zeros(2, int)),
                      "images must be (N, C, H, W), got shape (2, 3)")
    raises_data_error(lambda: data.ArrayDataset(np.zeros((2, 3, 4, 5)), np.zeros(3, int)),
                      "labels must be (2,) to match the images, got shape (3,)")
    raises_data_error(lambda: data.ArrayDataset(np.zeros((2, 3, 4, 5)), np.zeros(2)),
                      "labels must be integers, got dtype float64")


# --------------------------------------------------------------------------- DataLoader


def test_loader_batch_size_checks():
    ds = data.ArrayDataset(np.zeros((3, 1, 1, 1)), np.arange(3))
    assert [len(y) for _, y in data.DataLoader(ds)] == [1, 1, 1]            # default 1
    for bad in (0, -1, 2.0, True, "2"):
        with pytest.raises(ValueError, match=re.escape(f"DataLoader: batch_size must be a positive "
                                                       f"integer, got {bad!r}")):
            data.DataLoader(ds, bad)
    assert len(data.DataLoader(ds, np.int64(2))) == 2


def test_loader_lengths():
    ds = data.ArrayDataset(np.zeros((10, 1, 1, 1)), np.arange(10))
    assert len(data.DataLoader(ds, 4)) == 3 and len(data.DataLoader(ds, 4, drop_last=True)) == 2
    assert len(data.DataLoader(ds, 5)) == 2 and len(data.DataLoader(ds, 5, drop_last=True)) == 2
    assert len(data.DataLoader(ds, 11)) == 1 and len(data.DataLoader(ds, 11, drop_last=True)) == 0


def test_loader_generators_and_seeds():
    ds = data.ArrayDataset(np.zeros((12, 1, 1, 1)), np.arange(12))

    def order(loader):
        return [int(v) for _, y in loader for v in y.numpy()]

    want = np.random.default_rng(3).permutation(12).tolist()
    assert order(data.DataLoader(ds, 5, shuffle=True, generator=np.random.default_rng(3))) == want
    assert order(data.DataLoader(ds, 5, shuffle=True, generator=3)) == want
    assert order(data.DataLoader(ds, 5, shuffle=True, seed=3)) == want
    loader = data.DataLoader(ds, 5, shuffle=True)           # the package-wide generator,
    cc.manual_seed(9)                                        # read when iterating
    a = order(loader)
    cc.manual_seed(9)
    assert order(loader) == a and order(data.DataLoader(ds, 5, shuffle=True)) != a
    assert order(data.DataLoader(ds, 5)) == list(range(12))


def test_loader_slices_whole_batches_or_stacks_items():
    shapes = []

    def record(x):
        shapes.append(x.shape)
        return x

    ds = data.ArrayDataset(np.arange(5, dtype=np.float32).reshape(5, 1, 1, 1), np.arange(5) * 2,
                           transform=record)
    batches = list(data.DataLoader(ds, 2))
    assert shapes == [(2, 1, 1, 1), (2, 1, 1, 1), (1, 1, 1, 1)]     # one call per batch
    assert [y.numpy().tolist() for _, y in batches] == [[0, 2], [4, 6], [8]]

    class Items(data.Dataset):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return np.full((1, 1, 1), i, np.float32), 10 + i

    got = [(x.numpy().reshape(-1).tolist(), y.numpy().tolist())
           for x, y in data.DataLoader(Items(), 2, drop_last=True)]
    assert got == [([0.0, 1.0], [10, 11])]
