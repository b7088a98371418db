"""Data sets: the bundled handwritten digits, and loaders for users' own data
(MNIST-style IDX files, ``.npz`` arrays, a folder of images per class).

Every loader returns an :class:`ArrayDataset`: images as float32
(N, C, H, W), labels as int64 (N,), plus ``classes`` (names).

Nothing here allocates from a number a file declares without a bound: labels
must be class indices below :data:`MAX_CLASSES`, and an array a file declares
(an IDX header, an ``.npz`` member, an image's pixel count) is checked against
the data the file really holds and against :func:`cnncore.get_memory_limit`
before it is read. Images must be finite (no NaN or infinity): a data set that
would train to a NaN loss is refused when it is loaded.
"""
import contextlib
import gzip
import os
import struct
import warnings
import zipfile
import zlib

import numpy as np

from .transforms import resize

__all__ = ["Dataset", "ArrayDataset", "load_digits", "read_idx", "load_idx", "load_mnist",
           "load_npz", "load_image_folder", "load_image", "split", "DataError", "MAX_CLASSES"]

MAX_CLASSES = 1_000_000
"""Labels are class indices in ``[0, MAX_CLASSES)``: a model's output layer and the
list of class names are sized from the largest label, so a stray huge label
(``10**12``) is refused instead of allocating a class per possible value."""


class DataError(ValueError):
    """A data file or folder that cannot be read as promised."""


def _memory_limit():
    from .._runtime import get_memory_limit
    return get_memory_limit()


def _check_bytes(nbytes, what):
    """DataError when ``what`` would need more than the memory limit."""
    limit = _memory_limit()
    if nbytes > limit:
        raise DataError(f"{what} needs {nbytes:,} bytes, more than the memory limit of "
                        f"{limit:,} bytes (cnncore.set_memory_limit)")


class Dataset:
    """Anything with ``__len__`` and ``__getitem__(i) -> (image, label)``."""

    def __len__(self):  # pragma: no cover - interface
        raise NotImplementedError

    def __getitem__(self, i):  # pragma: no cover - interface
        raise NotImplementedError


class ArrayDataset(Dataset):
    """Images (N, C, H, W) and integer labels (N,) held in memory.

    ``transform`` (see :mod:`cnncore.data.transforms`) is applied to each
    image on access, or to a whole batch in :meth:`get_batch` (which
    :class:`~cnncore.data.DataLoader` uses).
    """

    def __init__(self, images, labels, transform=None, classes=None):
        try:
            images = np.asarray(images)
            labels = np.asarray(labels)
        except ValueError as exc:                 # ragged nested lists
            raise DataError(f"images and labels must be arrays ({exc})") from None
        if images.ndim != 4:
            raise DataError(f"images must be (N, C, H, W), got shape {images.shape}")
        if images.dtype.kind not in "biuf":
            raise DataError(f"images must hold real numbers, got dtype {images.dtype}")
        if 0 in images.shape[1:]:
            raise DataError(f"images must have at least one channel, row and column, got "
                            f"shape {images.shape}")
        if labels.shape != (images.shape[0],):
            raise DataError(f"labels must be ({images.shape[0]},) to match the images, got "
                            f"shape {labels.shape}")
        if not np.issubdtype(labels.dtype, np.integer):
            raise DataError(f"labels must be integers, got dtype {labels.dtype}")
        if classes is not None:
            classes = list(classes)
        top = _check_labels(labels, classes)
        _check_finite(images)
        self.images = images if images.dtype in (np.float32, np.float64) else \
            images.astype(np.float32)
        self.labels = labels.astype(np.int64, copy=False)
        self.transform = transform
        self.classes = classes if classes is not None else [str(i) for i in range(top + 1)]

    @classmethod
    def _checked(cls, images, labels, transform, classes):
        """A data set from arrays already validated (slices of one): no second pass."""
        ds = cls.__new__(cls)
        ds.images, ds.labels, ds.transform, ds.classes = images, labels, transform, list(classes)
        return ds

    @property
    def num_classes(self):
        return len(self.classes)

    @property
    def image_shape(self):
        return tuple(self.images.shape[1:])

    def __len__(self):
        return self.images.shape[0]

    def __getitem__(self, i):
        x = self.images[i]
        if self.transform is not None:
            x = self.transform(x)
        return x, self.labels[i]

    def get_batch(self, idx):
        x = self.images[idx]
        if self.transform is not None:
            x = self.transform(x)
        return x, self.labels[idx]

    def subset(self, idx, transform="same"):
        return ArrayDataset._checked(self.images[idx], self.labels[idx],
                                     self.transform if transform == "same" else transform,
                                     self.classes)

    def __repr__(self):
        return (f"ArrayDataset({len(self)} images of shape {self.image_shape}, "
                f"{self.num_classes} classes)")


def _check_labels(labels, classes):
    """The largest label (-1 for none); DataError for a negative label, one at or above
    MAX_CLASSES, or one without a name in ``classes``."""
    if not labels.size:
        return -1
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0:
        i = int(np.argmax(labels < 0))
        raise DataError(f"labels must be class indices >= 0, got {lo} (label of image {i})")
    if hi >= MAX_CLASSES:
        i = int(np.argmax(labels >= MAX_CLASSES))
        raise DataError(f"labels must be class indices below cnncore.data.MAX_CLASSES = "
                        f"{MAX_CLASSES:,}, got {hi} (label of image {i})")
    if classes is not None and hi >= len(classes):
        i = int(np.argmax(labels >= len(classes)))
        raise DataError(f"labels must be below the {len(classes)} class names given, got {hi} "
                        f"(label of image {i})")
    return hi


def _check_finite(images):
    """DataError naming the first image that holds NaN or infinity."""
    if images.dtype.kind != "f" or not images.size:
        return
    if np.isfinite(images.min()) and np.isfinite(images.max()):   # no temporary array
        return
    n = images.shape[0]
    for start in range(0, n, 1024):
        bad = ~np.isfinite(images[start:start + 1024].reshape(min(1024, n - start), -1))
        rows = np.flatnonzero(bad.any(axis=1))
        if rows.size:
            i = start + int(rows[0])
            v = images[i][~np.isfinite(images[i])].flat[0]
            raise DataError(f"images must be finite numbers, but image {i} (of {n}) holds {v} "
                            f"(a NaN or infinite input trains to a NaN loss)")


def split(labels, test_fraction=0.2, seed=0):
    """Stratified split: ``(train_idx, test_idx)``, the same for the same seed."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(idx.size)]
        k = int(round(test_fraction * idx.size))
        test.append(idx[:k])
        train.append(idx[k:])
    if not train:                                   # no labels at all
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def load_digits(split_name="train", size=32, pad=2, test_fraction=0.2, seed=0, transform=None):
    """The 1,797 handwritten digits (8 x 8, 0-16) that scikit-learn ships, scaled
    to [0, 1], resized bilinearly to ``size - 2*pad`` and centred in a ``size`` x
    ``size`` frame (the default, 28 in 32, places them as MNIST digits sit in
    LeNet-5's input).

    ``split_name``: ``"train"``, ``"test"`` (a stratified ``test_fraction``,
    fixed by ``seed``) or ``"all"``. No download.
    """
    try:
        from sklearn.datasets import load_digits as _sk_digits
    except ImportError:  # pragma: no cover - declared dependency
        raise ImportError("the bundled digits need scikit-learn: pip install scikit-learn") \
            from None
    inner = size - 2 * pad
    if inner < 1:
        raise ValueError(f"load_digits: size {size} leaves no room inside padding {pad}")
    d = _sk_digits()
    images = (d.images / 16.0).astype(np.float32)[:, None]
    if inner != 8:
        images = np.clip(resize(images, inner), 0.0, 1.0).astype(np.float32)
    if pad:
        images = np.pad(images, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    labels = d.target.astype(np.int64)
    classes = [str(i) for i in range(10)]
    if split_name == "all":
        return ArrayDataset(images, labels, transform, classes)
    tr, te = split(labels, test_fraction, seed)
    if split_name == "train":
        idx = tr
    elif split_name == "test":
        idx = te
    else:
        raise ValueError(f"load_digits: split_name must be 'train', 'test' or 'all', got "
                         f"{split_name!r}")
    return ArrayDataset(images[idx], labels[idx], transform, classes)


# ---------------------------------------------------------------------------
# IDX (MNIST, Fashion-MNIST)

_IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def _count_rest(f, chunk=1 << 20):
    n = 0
    while True:
        block = f.read(chunk)
        if not block:
            return n
        n += len(block)


def read_idx(path):
    """Read one IDX file (plain or gzip-compressed) as an ndarray, checking the
    magic number, the dimensions and the data length. The dimensions are checked
    against the data the file holds (and, for a compressed file, against the
    memory limit) before anything is read, so no header can make it allocate
    more than the file holds."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise DataError(f"{path}: is a folder, not an IDX file")
    try:
        with open(path, "rb") as f:
            head = f.read(2)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    compressed = head == b"\x1f\x8b"
    opener = gzip.open if compressed else open
    try:
        with opener(path, "rb") as f:
            magic = f.read(4)
            if len(magic) < 4 or magic[0] != 0 or magic[1] != 0:
                raise DataError(f"{path}: not an IDX file (the magic number must start with two "
                                f"zero bytes)")
            code, ndim = magic[2], magic[3]
            if code not in _IDX_TYPES:
                raise DataError(f"{path}: unknown IDX data type 0x{code:02x}")
            raw_dims = f.read(4 * ndim)
            if ndim == 0 or len(raw_dims) < 4 * ndim:
                raise DataError(f"{path}: truncated IDX header ({ndim} dimensions)")
            dims = struct.unpack(f">{ndim}I", raw_dims)
            dt = _IDX_TYPES[code]
            need = int(np.prod(dims, dtype=object)) * dt.itemsize      # exact, no overflow
            if compressed:
                _check_bytes(need, f"{path}: IDX dimensions {dims}")
                raw = f.read(need)
                have = len(raw) + (_count_rest(f) if len(raw) == need else 0)
            else:
                have = os.fstat(f.fileno()).st_size - 4 - 4 * ndim
                raw = f.read(need) if have == need else b""
    except DataError:
        raise
    except (OSError, EOFError, zlib.error) as exc:
        verb = "decompress" if compressed else "read"
        raise DataError(f"{path}: cannot {verb} ({exc})") from None
    if have != need:
        raise DataError(f"{path}: IDX dimensions {dims} need {need} data bytes, the file has "
                        f"{have} ({'truncated' if have < need else 'trailing data'})")
    arr = np.frombuffer(raw, dtype=dt).reshape(dims)
    return arr.astype(dt.newbyteorder("="))


def load_idx(images_path, labels_path, transform=None, classes=None):
    """An image IDX file (N, H, W) or (N, C, H, W) and a label IDX file (N,)."""
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4:
        raise DataError(f"{images_path}: expected images (N, H, W), got shape {images.shape}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise DataError(f"{labels_path}: {labels.shape} labels for {images.shape[0]} images")
    if images.dtype == np.uint8:
        images = images.astype(np.float32) / 255.0
    try:
        return ArrayDataset(images.astype(np.float32), labels, transform, classes)
    except DataError as exc:
        where = labels_path if str(exc).startswith("labels") else images_path
        raise DataError(f"{os.fspath(where)}: {exc}") from None


_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _find(root, stem):
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"),
                 stem.replace("-idx", ".idx") + ".gz"):
        p = os.path.join(root, name)
        if os.path.isfile(p):
            return p
    return None


def load_mnist(root, split_name="train", transform=None):
    """MNIST or Fashion-MNIST from the four standard IDX files in ``root``
    (``train-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``, ...)."""
    if split_name not in _MNIST_FILES:
        raise ValueError(f"load_mnist: split_name must be 'train' or 'test', got {split_name!r}")
    img_stem, lab_stem = _MNIST_FILES[split_name]
    img, lab = _find(root, img_stem), _find(root, lab_stem)
    if img is None or lab is None:
        raise DataError(f"{root}: no {img_stem}[.gz] / {lab_stem}[.gz] found")
    return load_idx(img, lab, transform)


def is_mnist_folder(root):
    return os.path.isdir(root) and _find(root, _MNIST_FILES["train"][0]) is not None


# ---------------------------------------------------------------------------
# .npz


def _as_images(x, path, key):
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.transpose(0, 3, 1, 2)        # NHWC -> NCHW
    if x.ndim != 4:
        raise DataError(f"{path}: {key!r} must be images (N, H, W), (N, C, H, W) or "
                        f"(N, H, W, C), got shape {x.shape}")
    if x.dtype.kind not in "biuf":
        raise DataError(f"{path}: {key!r} must hold real numbers (integers or floats), got "
                        f"dtype {x.dtype}")
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    return np.ascontiguousarray(x, dtype=np.float32)


_NPZ_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)


@contextlib.contextmanager
def _open_npz(path):
    """``with _open_npz(path) as z``: the archive of a ``.npz`` file
    (``numpy.lib.npyio.NpzFile``), or a DataError; the file is closed either way."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise DataError(f"{path}: is a folder, not an .npz file")
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise DataError(f"{path}: cannot read as .npz ({exc.strerror or exc})") from None
    with f:
        head = f.read(6)
        if head == b"\x93NUMPY":
            raise DataError(f"{path}: cannot read as .npz (it is a single .npy array, not an "
                            f"archive of named arrays such as x and y; save with numpy.savez)")
        if not head.startswith(b"PK"):
            raise DataError(f"{path}: cannot read as .npz ("
                            f"{'the file is empty' if not head else 'not a zip archive'})")
        f.seek(0)
        try:
            z = np.load(f, allow_pickle=False)
        except _NPZ_ERRORS as exc:
            raise DataError(f"{path}: cannot read as .npz ({exc})") from None
        with z:
            yield z


def _member(z, key):
    name = key if key in z.zip.namelist() else key + ".npy"
    return z.zip.getinfo(name)


def _read_array(z, key, path, as_float32=False):
    """One array of an open ``.npz``: its header is read first, and an array larger
    than the bytes the archive holds for it, or than the memory limit, is refused
    before numpy allocates it; objects are never unpickled."""
    fmt = np.lib.format
    try:
        info = _member(z, key)
        with z.zip.open(info) as f:
            version = fmt.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = fmt.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = fmt.read_array_header_2_0(f)
            else:
                raise DataError(f"{path}: array {key!r} uses .npy format version "
                                f"{version[0]}.{version[1]}, which cnncore does not read")
    except DataError:
        raise
    except _NPZ_ERRORS as exc:
        raise DataError(f"{path}: cannot read array {key!r} ({exc})") from None
    if dtype.hasobject:
        raise DataError(f"{path}: array {key!r} holds Python objects (dtype {dtype}), which "
                        f"are never unpickled (allow_pickle=False); store numbers or strings")
    count = int(np.prod(shape, dtype=object))
    nbytes = count * dtype.itemsize
    if nbytes > info.file_size:
        raise DataError(f"{path}: array {key!r} declares shape {shape} ({nbytes:,} bytes) but "
                        f"the archive holds {info.file_size:,} bytes for it (truncated or "
                        f"corrupted)")
    _check_bytes(max(nbytes, count * 4 if as_float32 else 0),
                 f"{path}: array {key!r} of shape {shape}")
    try:
        return z[key]
    except _NPZ_ERRORS as exc:
        raise DataError(f"{path}: cannot read array {key!r} ({exc})") from None


def _class_names(arr, path):
    if arr.ndim != 1 or arr.dtype.kind not in "USiub":
        raise DataError(f"{path}: 'classes' must be a 1-D array of names, got shape {arr.shape} "
                        f"and dtype {arr.dtype}")
    if arr.dtype.kind == "S":
        return [c.decode("utf-8", "replace") for c in arr]
    return [str(c) for c in arr]


def load_npz(path, split_name=None, x_key=None, y_key=None, transform=None):
    """Images and labels from an ``.npz`` file.

    Keys: ``x_key``/``y_key`` if given; else ``x_train``/``y_train`` and
    ``x_test``/``y_test`` (choose with ``split_name``), else ``x``/``y``, else
    ``images``/``labels``. Images may be (N, H, W), (N, C, H, W) or (N, H, W, C);
    uint8 images are scaled to [0, 1]. Labels are (N,) or (N, 1) integers; an
    optional ``classes`` array names them. Anything else is a :class:`DataError`
    naming the file.
    """
    path = os.fspath(path)
    with _open_npz(path) as z:
        keys = set(z.files)
        if x_key is None:
            candidates = []
            if split_name in (None, "train"):
                candidates.append(("x_train", "y_train"))
            if split_name in (None, "test"):
                candidates.append(("x_test", "y_test"))
            candidates += [("x", "y"), ("images", "labels"), ("X", "y")]
            for xk, yk in candidates:
                if xk in keys and yk in keys:
                    x_key, y_key = xk, yk
                    break
            else:
                raise DataError(f"{path}: no image/label arrays found (looked for x_train/"
                                f"y_train, x_test/y_test, x/y, images/labels; the file has "
                                f"{sorted(keys)})")
        for k in (x_key, y_key):
            if k not in keys:
                raise DataError(f"{path}: no array named {k!r} (the file has {sorted(keys)})")
        x = _as_images(_read_array(z, x_key, path, as_float32=True), path, x_key)
        y = np.asarray(_read_array(z, y_key, path))
        classes = _class_names(_read_array(z, "classes", path), path) if "classes" in keys \
            else None
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: labels {y_key!r} must be integers, got dtype {y.dtype}")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]                          # (N, 1) labels
    try:
        return ArrayDataset(x, y, transform, classes)
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None


def npz_has_test_split(path):
    """Whether an ``.npz`` file holds both ``x_test`` and ``y_test`` (DataError if it
    cannot be read as one)."""
    with _open_npz(path) as z:
        return "x_test" in z.files and "y_test" in z.files


# ---------------------------------------------------------------------------
# image folders

_IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def _image_size(size):
    if size is None:
        return None
    try:
        h, w = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    except (TypeError, ValueError):
        raise ValueError(f"load_image: size must be a positive int or (h, w), got {size!r}") \
            from None
    for v in (h, w):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"load_image: size must be a positive int or (h, w), got {size!r}")
    return int(h), int(w)


_PIL_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, zlib.error)


def load_image(path, size=None, channels=1):
    """One image file as float32 (C, H, W) in [0, 1] (Pillow), converted to
    ``channels`` (1: grayscale, 3: RGB) and resized to ``size`` (int or (h, w)).

    A file whose declared pixel count exceeds Pillow's ``Image.MAX_IMAGE_PIXELS``
    (a possible decompression bomb: a small file that decodes to gigabytes) is a
    :class:`DataError` naming the file, as is an unreadable or damaged image."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - declared dependency
        raise ImportError("reading images needs Pillow: pip install pillow") from None
    path = os.fspath(path)
    hw = _image_size(size)
    if os.path.isdir(path):
        raise DataError(f"{path}: is a folder, not an image file")
    if not os.path.exists(path):
        raise DataError(f"{path}: no such image file")
    if hw is not None:
        _check_bytes(hw[0] * hw[1] * (1 if channels == 1 else 3) * 4,
                     f"{path}: resizing to {hw[0]}x{hw[1]}")
    try:
        with warnings.catch_warnings():
            # Pillow warns above MAX_IMAGE_PIXELS and raises above twice that: refuse both.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im = im.convert("L" if channels == 1 else "RGB")
                if hw is not None:
                    im = im.resize((hw[1], hw[0]), Image.BILINEAR)
                arr = np.asarray(im, dtype=np.float32) / 255.0
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DataError(f"{path}: refused as a possible decompression bomb ({exc}; the limit is "
                        f"PIL.Image.MAX_IMAGE_PIXELS)") from None
    except _PIL_ERRORS as exc:
        raise DataError(f"{path}: cannot read the image ({exc})") from None
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def load_image_folder(root, size=None, channels=1, transform=None, classes=None):
    """``root/<class>/<image>``: one sub-folder per class (sorted names are the
    classes, label i = i-th name). Images are converted to ``channels`` and,
    when ``size`` is given, resized; without ``size`` all must share one size.
    The images together must fit in the memory limit."""
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise DataError(f"{root}: not a folder")
    try:
        names = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))
                       and not d.startswith("."))
    except OSError as exc:
        raise DataError(f"{root}: cannot list the folder ({exc.strerror or exc})") from None
    if classes is not None:
        unknown = sorted(set(names) - set(classes))
        if unknown:
            raise DataError(f"{root}: class folders {unknown} are not among {list(classes)}")
        names = list(classes)
    if not names:
        raise DataError(f"{root}: no class sub-folders (expected root/<class>/<image files>)")
    images, labels, total = [], [], 0
    for label, name in enumerate(names):
        folder = os.path.join(root, name)
        if not os.path.isdir(folder):
            continue
        try:
            files = sorted(os.listdir(folder))
        except OSError as exc:
            raise DataError(f"{folder}: cannot list the folder ({exc.strerror or exc})") \
                from None
        for f in files:
            if f.lower().endswith(_IMAGE_EXT):
                im = load_image(os.path.join(folder, f), size, channels)
                total += im.nbytes
                _check_bytes(2 * total, f"{root}: the images (with one copy to stack them)")
                images.append(im)
                labels.append(label)
    if not images:
        raise DataError(f"{root}: the class folders hold no images ({', '.join(_IMAGE_EXT)})")
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise DataError(f"{root}: images have different sizes {sorted(shapes)}; pass size= to "
                        f"resize them")
    return ArrayDataset(np.stack(images), np.asarray(labels, np.int64), transform, names)
