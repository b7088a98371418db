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
    with pytest.raises(data.DataError, match="allow_pickle"):
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


# --------------------------------------------------------------------------- bounds, bad input
# Each of these failed on the code before the audit: a label of 10**12 built a class name per
# possible label (24 GB, killed), negative labels and NaN images were accepted (and trained to a
# NaN loss), object/garbage/.npy files escaped as raw numpy or zipfile exceptions, a declared
# array size was allocated before it was checked, a decompression bomb escaped from Pillow.


@pytest.fixture
def memory_limit():
    """Set cnncore's memory limit for one test; the old value comes back afterwards."""
    old = cc.get_memory_limit()
    yield cc.set_memory_limit
    cc.set_memory_limit(old)


def test_labels_must_be_bounded_non_negative_class_indices():
    imgs = np.zeros((3, 1, 2, 2), np.float32)
    top = data.MAX_CLASSES - 1
    assert data.ArrayDataset(imgs, [0, top, 1]).num_classes == data.MAX_CLASSES  # the bound
    raises_data_error(lambda: data.ArrayDataset(imgs, [0, data.MAX_CLASSES, 1]),
                      "labels must be class indices below cnncore.data.MAX_CLASSES = 1,000,000, "
                      "got 1000000 (label of image 1)")
    raises_data_error(lambda: data.ArrayDataset(imgs, np.array([0, 1, 2**64 - 1], np.uint64)),
                      f"labels must be class indices below cnncore.data.MAX_CLASSES = 1,000,000, "
                      f"got {2**64 - 1} (label of image 2)")          # not wrapped to -1
    raises_data_error(lambda: data.ArrayDataset(imgs, [0, -1, -3]),
                      "labels must be class indices >= 0, got -3 (label of image 1)")
    raises_data_error(lambda: data.ArrayDataset(imgs, [0, 1, 3], classes=["a", "b", "c"]),
                      "labels must be below the 3 class names given, got 3 (label of image 2)")
    for bad in (np.array([0.0, 1.0, 2.0]), np.array([True, False, True]),
                np.array([0, 1, 2], object), np.array([0j, 1j, 2j])):
        raises_data_error(lambda: data.ArrayDataset(imgs, bad),
                          f"labels must be integers, got dtype {bad.dtype}")


def test_a_huge_label_is_refused_without_allocating(tmp_path):
    """The audit's case, in a process capped at 2 GB of address space: the old code
    died of MemoryError there (and used 24 GB without the cap)."""
    script = tmp_path / "huge_label.py"
    script.write_text(
        "import resource\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
        "import numpy as np\n"
        "from cnncore import data\n"
        "try:\n"
        "    data.ArrayDataset(np.zeros((2, 1, 2, 2), np.float32), [0, 10**12])\n"
        "except data.DataError as exc:\n"
        "    print(exc)\n")
    import os
    import subprocess
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                       env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == ("labels must be class indices below cnncore.data.MAX_CLASSES = "
                                "1,000,000, got 1000000000000 (label of image 1)")


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_images_must_be_finite(dtype, value):
    imgs = np.zeros((5, 2, 3, 3), dtype)
    imgs[3, 1, 2, 0] = value
    imgs[4, 0, 0, 0] = value
    raises_data_error(lambda: data.ArrayDataset(imgs, np.zeros(5, int)),
                      f"images must be finite numbers, but image 3 (of 5) holds {dtype(value)} "
                      f"(a NaN or infinite input trains to a NaN loss)")
    assert len(data.ArrayDataset(imgs[:3], np.zeros(3, int))) == 3


def test_images_must_be_real_numbers_with_every_size_positive():
    lab = np.zeros(2, int)
    for bad in (np.full((2, 1, 2, 2), "a"), np.zeros((2, 1, 2, 2), complex),
                np.zeros((2, 1, 2, 2), object)):
        raises_data_error(lambda: data.ArrayDataset(bad, lab),
                          f"images must hold real numbers, got dtype {bad.dtype}")
    for shape in ((2, 0, 2, 2), (2, 1, 0, 2), (2, 1, 2, 0)):
        raises_data_error(lambda: data.ArrayDataset(np.zeros(shape), lab),
                          f"images must have at least one channel, row and column, got shape "
                          f"{shape}")
    assert data.ArrayDataset(np.zeros((2, 1, 1, 1), bool), lab).images.dtype == np.float32
    with pytest.raises(data.DataError, match=r"^images and labels must be arrays \("):
        data.ArrayDataset([np.zeros((1, 2, 2)), np.zeros((1, 3, 3))], lab)


def test_split_of_no_labels_is_empty():
    tr, te = data.split(np.zeros(0, np.int64))
    assert tr.shape == te.shape == (0,) and tr.dtype == te.dtype == np.int64


def test_npz_labels_shapes_and_their_file(tmp_path):
    p = tmp_path / "d.npz"
    x = np.zeros((4, 1, 2, 2))
    np.savez(p, x=x, y=np.zeros((4, 2), int))                    # (N, 2) is not (N, 1)
    raises_data_error(lambda: data.load_npz(p),
                      f"{p}: labels must be (4,) to match the images, got shape (4, 2)")
    np.savez(p, x=x, y=np.array([0, 1, -1, 0]))
    raises_data_error(lambda: data.load_npz(p),
                      f"{p}: labels must be class indices >= 0, got -1 (label of image 2)")
    x[2, 0, 1, 1] = np.nan
    np.savez(p, x=x, y=np.arange(4))
    raises_data_error(lambda: data.load_npz(p),
                      f"{p}: images must be finite numbers, but image 2 (of 4) holds nan (a NaN "
                      f"or infinite input trains to a NaN loss)")
    np.savez(p, x=np.zeros((3, 2, 2)), y=np.arange(3), classes=np.array(["a", "b"]))
    raises_data_error(lambda: data.load_npz(p),
                      f"{p}: labels must be below the 2 class names given, got 2 (label of "
                      f"image 2)")
    np.savez(p, x=np.zeros((3, 2, 2)), y=np.arange(3), classes=np.array([["a", "b", "c"]]))
    raises_data_error(lambda: data.load_npz(p),
                      f"{p}: 'classes' must be a 1-D array of names, got shape (1, 3) and dtype "
                      f"<U1")
    np.savez(p, x=np.zeros((3, 2, 2)), y=np.arange(3), classes=np.array([b"a", b"b", b"c"]))
    assert data.load_npz(p).classes == ["a", "b", "c"]
    np.savez(p, x=np.full((3, 2, 2), "s"), y=np.arange(3))
    raises_data_error(lambda: data.load_npz(p),
                      f"{p}: 'x' must hold real numbers (integers or floats), got dtype <U1")


def test_npz_files_that_are_not_archives(tmp_path):
    p = tmp_path / "d.npz"
    p.write_bytes(b"")
    raises_data_error(lambda: data.load_npz(p), f"{p}: cannot read as .npz (the file is empty)")
    np.save(tmp_path / "a.npy", np.zeros(3))
    (tmp_path / "a.npy").rename(p)
    raises_data_error(lambda: data.load_npz(p),
                      f"{p}: cannot read as .npz (it is a single .npy array, not an archive of "
                      f"named arrays such as x and y; save with numpy.savez)")
    np.savez(p, x=np.zeros((40, 1, 4, 4)), y=np.arange(40))
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 2])                            # a cut download
    with pytest.raises(data.DataError, match=re.escape(f"{p}: cannot read as .npz (")):
        data.load_npz(p)
    with pytest.raises(data.DataError, match=re.escape(f"{p}: cannot read as .npz (")):
        D.npz_has_test_split(p)
    raises_data_error(lambda: data.load_npz(tmp_path), f"{tmp_path}: is a folder, not an .npz file")
    np.savez_compressed(p, x=np.zeros((40, 1, 4, 4)), y=np.arange(40))
    raw = bytearray(p.read_bytes())
    at = raw.index(b"x.npy") + 5 + 30                               # inside x's deflate stream
    raw[at:at + 8] = b"\xff" * 8
    p.write_bytes(bytes(raw))
    with pytest.raises(data.DataError, match=re.escape(f"{p}: cannot read array 'x' (")):
        data.load_npz(p)


def _npz_with_header(path, shape, descr="<f4", payload=b""):
    """An .npz whose member 'x.npy' declares ``shape`` but holds ``payload``."""
    import io
    import zipfile
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": descr, "fortran_order": False,
                                                "shape": shape})
    y = io.BytesIO()
    np.save(y, np.arange(2))
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.npy", head.getvalue() + payload)
        z.writestr("y.npy", y.getvalue())


def test_npz_declared_sizes_are_checked_before_allocating(tmp_path, memory_limit):
    p = tmp_path / "bomb.npz"
    _npz_with_header(p, (10**12, 1, 2, 2))           # 16 TB declared, a few bytes held
    raises_data_error(lambda: data.load_npz(p),
                      f"{p}: array 'x' declares shape (1000000000000, 1, 2, 2) "
                      f"(16,000,000,000,000 bytes) but the archive holds 128 bytes for it "
                      f"(truncated or corrupted)")
    _npz_with_header(p, (2, 1, 2, 2), "|O")
    raises_data_error(lambda: data.load_npz(p),
                      f"{p}: array 'x' holds Python objects (dtype object), which are never "
                      f"unpickled (allow_pickle=False); store numbers or strings")
    np.savez(p, x=np.zeros((8, 1, 16, 16), np.uint8), y=np.arange(8))
    memory_limit(8 * 16 * 16 * 4 - 1)                 # uint8 becomes float32: 4 bytes each
    raises_data_error(lambda: data.load_npz(p),
                      f"{p}: array 'x' of shape (8, 1, 16, 16) needs 8,192 bytes, more than the "
                      f"memory limit of 8,191 bytes (cnncore.set_memory_limit)")
    memory_limit(8 * 16 * 16 * 4)
    assert len(data.load_npz(p)) == 8


def test_idx_sizes_are_checked_before_reading(tmp_path, memory_limit):
    p = tmp_path / "big-idx3-ubyte.gz"
    head = bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 1000, 1000, 1000)
    p.write_bytes(gzip.compress(head + b"\0" * 16))    # 1 GB declared
    memory_limit(10**6)
    raises_data_error(lambda: data.read_idx(p),
                      f"{p}: IDX dimensions (1000, 1000, 1000) needs 1,000,000,000 bytes, more "
                      f"than the memory limit of 1,000,000 bytes (cnncore.set_memory_limit)")
    memory_limit(2 * 10**9)
    raises_data_error(lambda: data.read_idx(p),
                      f"{p}: IDX dimensions (1000, 1000, 1000) need 1000000000 data bytes, the "
                      f"file has 16 (truncated)")
    raw = idx_bytes(np.arange(6).reshape(2, 3))
    p.write_bytes(gzip.compress(raw + b"\0" * 5))
    raises_data_error(lambda: data.read_idx(p), f"{p}: IDX dimensions (2, 3) need 6 data bytes, "
                                                f"the file has 11 (trailing data)")
    raises_data_error(lambda: data.read_idx(tmp_path), f"{tmp_path}: is a folder, not an IDX file")
    raises_data_error(lambda: data.read_idx(tmp_path / "none"),
                      f"{tmp_path / 'none'}: cannot read (No such file or directory)")


def test_idx_labels_and_images_are_checked_naming_their_file(tmp_path):
    (tmp_path / "i").write_bytes(idx_bytes(np.full((2, 2, 2), 0.5, np.float32), 0x0D))
    (tmp_path / "l").write_bytes(idx_bytes(np.array([0.0, 1.0], np.float32), 0x0D))
    raises_data_error(lambda: data.load_idx(tmp_path / "i", tmp_path / "l"),
                      f"{tmp_path / 'l'}: labels must be integers, got dtype float32")
    (tmp_path / "l").write_bytes(idx_bytes(np.array([0, 1], np.uint8)))
    (tmp_path / "i").write_bytes(idx_bytes(np.array([[[0.5, np.inf], [0, 0]]] * 2, np.float32),
                                           0x0D))
    raises_data_error(lambda: data.load_idx(tmp_path / "i", tmp_path / "l"),
                      f"{tmp_path / 'i'}: images must be finite numbers, but image 0 (of 2) "
                      f"holds inf (a NaN or infinite input trains to a NaN loss)")


def png_header(width, height):
    """A PNG that declares width x height gray pixels and holds none: what a
    decompression bomb looks like to Image.open."""
    import zlib

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body +
                struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_decompression_bombs_are_data_errors_naming_the_file(tmp_path, monkeypatch):
    p = tmp_path / "bomb.png"
    p.write_bytes(png_header(100_000, 100_000))         # 10**10 pixels
    with pytest.raises(data.DataError, match=re.escape(f"{p}: refused as a possible "
                                                       f"decompression bomb (Image size "
                                                       f"(10000000000 pixels) exceeds limit")):
        data.load_image(p)
    (tmp_path / "c" / "a").mkdir(parents=True)
    p.rename(tmp_path / "c" / "a" / "0.png")
    with pytest.raises(data.DataError, match=re.escape(f"{tmp_path / 'c' / 'a' / '0.png'}: "
                                                       f"refused as a possible decompression")):
        data.load_image_folder(tmp_path / "c")
    # above MAX_IMAGE_PIXELS but below twice that, Pillow only warns: refused as well
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)
    _save(tmp_path / "w.png", np.zeros((4, 4), np.uint8))   # 16 pixels
    with pytest.raises(data.DataError, match=re.escape(f"{tmp_path / 'w.png'}: refused as a "
                                                       f"possible decompression bomb (Image "
                                                       f"size (16 pixels) exceeds limit of 10")):
        data.load_image(tmp_path / "w.png")


def test_image_files_folders_and_sizes(tmp_path, memory_limit):
    raises_data_error(lambda: data.load_image(tmp_path), f"{tmp_path}: is a folder, not an image "
                                                         f"file")
    raises_data_error(lambda: data.load_image(tmp_path / "no.png"),
                      f"{tmp_path / 'no.png'}: no such image file")
    _save(tmp_path / "a" / "0.png", np.zeros((3, 3), np.uint8))
    for bad in (0, -1, (2, 0), 2.5, True):
        with pytest.raises(ValueError, match=r"^load_image: size must be a positive int or "
                                             r"\(h, w\), got "):
            data.load_image(tmp_path / "a" / "0.png", bad)
    memory_limit(100 * 100 * 4 - 1)
    raises_data_error(lambda: data.load_image(tmp_path / "a" / "0.png", 100),
                      f"{tmp_path / 'a' / '0.png'}: resizing to 100x100 needs 40,000 bytes, more "
                      f"than the memory limit of 39,999 bytes (cnncore.set_memory_limit)")
    _save(tmp_path / "a" / "1.png", np.zeros((3, 3), np.uint8))
    memory_limit(3 * 3 * 4 * 4 - 1)                 # two images, and a copy to stack them
    raises_data_error(lambda: data.load_image_folder(tmp_path),
                      f"{tmp_path}: the images (with one copy to stack them) needs 144 bytes, "
                      f"more than the memory limit of 143 bytes (cnncore.set_memory_limit)")
    memory_limit(3 * 3 * 4 * 4)
    assert len(data.load_image_folder(tmp_path)) == 2
