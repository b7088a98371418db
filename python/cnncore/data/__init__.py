"""Data: the bundled digits, IDX / npz / image-folder loaders, DataLoader, transforms."""
from . import transforms
from .datasets import (
    MAX_CLASSES,
    ArrayDataset,
    DataError,
    Dataset,
    load_digits,
    load_idx,
    load_image,
    load_image_folder,
    load_mnist,
    load_npz,
    read_idx,
    split,
)
from .loader import DataLoader

__all__ = ["Dataset", "ArrayDataset", "DataError", "MAX_CLASSES", "DataLoader", "transforms", "load_digits",
           "load_idx", "read_idx", "load_mnist", "load_npz", "load_image", "load_image_folder",
           "split"]
