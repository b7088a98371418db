"""cnncore — convolutional networks on a small C++ core.

The numeric work happens in the compiled module ``cnncore._core`` (OpenMP
threads, SIMD kernels chosen at run time); this package gives it a Pythonic
face. ``cnncore.ops`` holds the NumPy-in, NumPy-out operations.
"""
from . import _core, ops
from ._runtime import (
    get_isa,
    get_memory_limit,
    get_num_threads,
    set_isa,
    set_memory_limit,
    set_num_threads,
)

__version__ = "0.1.0"

__all__ = [
    "ops",
    "get_isa",
    "set_isa",
    "get_memory_limit",
    "set_memory_limit",
    "get_num_threads",
    "set_num_threads",
    "__version__",
]
