"""Data sets: the bundled handwritten digits, and loaders for users' own data
(MNIST-style IDX files, ``.npz`` arrays, a folder of images per class).

Every loader returns an :class:`ArrayDataset`: images as float32
(N, C, H, W), labels as int64 (N,), plus ``classes`` (names).
"""
import gzip
import os
import struct

import numpy as np

from .transforms import resize

__all__ = ["Dataset", "ArrayDataset", "load_digits", "read_idx", "load_idx", "load_mnist",
           "load_npz", "load_image_folder", "load_image", "split", "DataError"]


class DataError(ValueError):
    """A data file or folder that cannot be read as promised."""


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
        images = np.asarray(images)
        labels = np.asarray(labels)
        if images.ndim != 4:
            raise DataError(f"images must be (N, C, H, W), got shape {images.shape}")
        if labels.shape != (images.shape[0],):
            raise DataError(f"labels must be ({images.shape[0]},) to match the images, got "
                            f"shape {labels.shape}")
        if not np.issubdtype(labels.dtype, np.integer):
            raise DataError(f"labels must be integers, got dtype {labels.dtype}")
        self.images = images if images.dtype in (np.float32, np.float64) else \
            images.astype(np.float32)
        self.labels = labels.astype(np.int64, copy=False)
        self.transform = transform
        n_cls = int(self.labels.max()) + 1 if self.labels.size else 0
        self.classes = list(classes) if classes is not None else [str(i) for i in range(n_cls)]

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
        return ArrayDataset(self.images[idx], self.labels[idx],
                            self.transform if transform == "same" else transform, self.classes)

    def __repr__(self):
        return (f"ArrayDataset({len(self)} images of shape {self.image_shape}, "
                f"{self.num_classes} classes)")


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


def read_idx(path):
    """Read one IDX file (plain or gzip-compressed) as an ndarray, checking the
    magic number, the dimensions and the data length."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        head = f.read(2)
    opener = gzip.open if head == b"\x1f\x8b" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot decompress ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: not an IDX file (the magic number must start with two zero "
                        f"bytes)")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_TYPES:
        raise DataError(f"{path}: unknown IDX data type 0x{code:02x}")
    if ndim == 0 or len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path}: truncated IDX header ({ndim} dimensions)")
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    dt = _IDX_TYPES[code]
    need = int(np.prod(dims, dtype=np.int64)) * dt.itemsize
    have = len(raw) - 4 - 4 * ndim
    if have != need:
        raise DataError(f"{path}: IDX dimensions {dims} need {need} data bytes, the file has "
                        f"{have} ({'truncated' if have < need else 'trailing data'})")
    arr = np.frombuffer(raw, dtype=dt, offset=4 + 4 * ndim).reshape(dims)
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
    return ArrayDataset(images.astype(np.float32), labels.astype(np.int64), transform, classes)


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
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    return np.ascontiguousarray(x, dtype=np.float32)


def load_npz(path, split_name=None, x_key=None, y_key=None, transform=None):
    """Images and labels from an ``.npz`` file.

    Keys: ``x_key``/``y_key`` if given; else ``x_train``/``y_train`` and
    ``x_test``/``y_test`` (choose with ``split_name``), else ``x``/``y``, else
    ``images``/``labels``. Images may be (N, H, W), (N, C, H, W) or (N, H, W, C);
    uint8 images are scaled to [0, 1].
    """
    path = os.fspath(path)
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read as .npz ({exc})") from None
    with z:
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
        x = _as_images(z[x_key], path, x_key)
        y = np.asarray(z[y_key])
        classes = [str(c) for c in z["classes"]] if "classes" in keys else None
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: labels {y_key!r} must be integers, got dtype {y.dtype}")
    return ArrayDataset(x, y.reshape(-1), transform, classes)


def npz_has_test_split(path):
    with np.load(os.fspath(path), allow_pickle=False) as z:
        return "x_test" in z.files and "y_test" in z.files


# ---------------------------------------------------------------------------
# image folders

_IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def load_image(path, size=None, channels=1):
    """One image file as float32 (C, H, W) in [0, 1] (Pillow), converted to
    ``channels`` (1: grayscale, 3: RGB) and resized to ``size`` (int or (h, w))."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - declared dependency
        raise ImportError("reading images needs Pillow: pip install pillow") from None
    path = os.fspath(path)
    try:
        with Image.open(path) as im:
            im = im.convert("L" if channels == 1 else "RGB")
            if size is not None:
                h, w = (size, size) if isinstance(size, int) else size
                im = im.resize((w, h), Image.BILINEAR)
            arr = np.asarray(im, dtype=np.float32) / 255.0
    except OSError as exc:
        raise DataError(f"{path}: cannot read the image ({exc})") from None
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def load_image_folder(root, size=None, channels=1, transform=None, classes=None):
    """``root/<class>/<image>``: one sub-folder per class (sorted names are the
    classes, label i = i-th name). Images are converted to ``channels`` and,
    when ``size`` is given, resized; without ``size`` all must share one size."""
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise DataError(f"{root}: not a folder")
    names = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))
                   and not d.startswith("."))
    if classes is not None:
        unknown = sorted(set(names) - set(classes))
        if unknown:
            raise DataError(f"{root}: class folders {unknown} are not among {list(classes)}")
        names = list(classes)
    if not names:
        raise DataError(f"{root}: no class sub-folders (expected root/<class>/<image files>)")
    images, labels = [], []
    for label, name in enumerate(names):
        folder = os.path.join(root, name)
        if not os.path.isdir(folder):
            continue
        for f in sorted(os.listdir(folder)):
            if f.lower().endswith(_IMAGE_EXT):
                images.append(load_image(os.path.join(folder, f), size, channels))
                labels.append(label)
    if not images:
        raise DataError(f"{root}: the class folders hold no images ({', '.join(_IMAGE_EXT)})")
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise DataError(f"{root}: images have different sizes {sorted(shapes)}; pass size= to "
                        f"resize them")
    return ArrayDataset(np.stack(images), np.asarray(labels, np.int64), transform, names)
