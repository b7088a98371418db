"""Process-wide settings: threads, memory limit, kernel level."""
import operator
import os
import warnings

from . import _core

_ISA_LEVELS = ("ref", "generic", "avx2", "avx512")


def _as_int(value, name, func):
    if isinstance(value, bool):
        raise TypeError(f"{func}: {name} must be an integer, got bool")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{func}: {name} must be an integer, got {type(value).__name__}") from None
    if not -(2 ** 63) <= v < 2 ** 63:
        raise ValueError(f"{func}: {name} must fit in a 64-bit signed integer, got {v}")
    return v


def set_num_threads(n):
    """Set how many OpenMP threads every kernel uses (n >= 1)."""
    _core.set_num_threads(_as_int(n, "n", "set_num_threads"))


def get_num_threads():
    """Number of OpenMP threads the kernels use."""
    return _core.get_num_threads()


def set_memory_limit(nbytes):
    """Largest result + workspace (bytes) one operation may allocate.

    Operations that would need more raise ``ValueError`` before allocating.
    The default is the machine's physical memory.
    """
    _core.set_memory_limit(_as_int(nbytes, "nbytes", "set_memory_limit"))


def get_memory_limit():
    """The memory limit in bytes (see :func:`set_memory_limit`)."""
    return _core.get_memory_limit()


def get_isa():
    """The kernel level in use: ``"avx512"``, ``"avx2"``, ``"generic"`` or ``"ref"``."""
    return _core.get_isa()


def set_isa(name):
    """Force a kernel level: ``"ref"`` (reference loops), ``"generic"``, ``"avx2"`` or
    ``"avx512"`` (at most what the CPU supports)."""
    if not isinstance(name, str):
        raise TypeError(f"set_isa: name must be a string, got {type(name).__name__}")
    _core.set_isa(name)


_env_isa = os.environ.get("CNNCORE_ISA")
if _env_isa:
    if _env_isa not in _ISA_LEVELS:
        warnings.warn(
            f"CNNCORE_ISA={_env_isa!r} is not one of {_ISA_LEVELS}; ignored",
            RuntimeWarning,
            stacklevel=2,
        )
    elif _env_isa != _core.get_isa():
        warnings.warn(
            f"CNNCORE_ISA={_env_isa!r} is not supported by this CPU; using {_core.get_isa()!r}",
            RuntimeWarning,
            stacklevel=2,
        )
