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


def use_deterministic_algorithms(mode):
    """Make every op bit-reproducible run to run (torch's name; default off).

    What the default promises: for a fixed thread count and kernel level, every op gives
    the same bits in every run, except the few loops in which threads add into private
    partial sums that are combined afterwards: convolution weight gradients when the
    batch has at least as many images as threads (Winograd's: at least two blocks of
    tiles per thread), and locally connected / tiled
    convolution gradients when there are fewer images (input gradient) or weight
    classes (weight gradient) than threads. Those hand work to whichever thread is free,
    which keeps the cores busy on a loaded machine, so the last bits of those gradients
    can differ between runs (by rounding only: ~1e-7 relative in float32).

    ``use_deterministic_algorithms(True)`` makes those loops assign work statically, so
    every op is bit-reproducible for a fixed thread count. Changing the thread count or
    the kernel level (``CNNCORE_ISA``) may still change the last bits.
    """
    if not isinstance(mode, bool):
        raise TypeError(f"use_deterministic_algorithms: mode must be a bool, got "
                        f"{type(mode).__name__}")
    _core.set_deterministic(mode)


def are_deterministic_algorithms_enabled():
    """Whether :func:`use_deterministic_algorithms` is on."""
    return _core.get_deterministic()


def use_exact_algorithms(mode):
    """Keep ``algorithm="auto"`` to exact algorithms (default off; ``CNNCORE_EXACT=1`` at
    start turns it on).

    By default ``auto`` may pick Winograd convolution (3x3 kernels at stride 1) or FFT
    convolution (large kernels) where they are faster. Their rounding differs in kind
    from the direct definition's: Winograd's transforms add a relative error of about
    1e-6 (F(2,3)) to 1e-5 (F(4,3)) in float32 (docs/conv2d.md, "Winograd"), so results
    differ from the exact engines' in their last digits. With this on, ``auto`` uses
    only the direct, im2col and reference engines, whose sums are those of the
    definition; an algorithm named explicitly (``algorithm="winograd"``) still runs.
    """
    if not isinstance(mode, bool):
        raise TypeError(f"use_exact_algorithms: mode must be a bool, got {type(mode).__name__}")
    _core.set_exact_algorithms(mode)


def are_exact_algorithms_enabled():
    """Whether :func:`use_exact_algorithms` is on."""
    return _core.get_exact_algorithms()


def set_winograd_cache_limit(nbytes):
    """Most memory (bytes) kept in Winograd-transformed weights; 0 turns the cache off.

    Winograd convolution transforms its weights on every call. Weights seen unchanged on
    two consecutive calls (inference) keep their transform, up to this many bytes in
    all (default 128 MiB, or ``CNNCORE_WINOGRAD_CACHE_MB`` at start); weights that change
    between calls (training) are never kept. Each call checks a fingerprint of the
    weights' bits, so weights changed in place are never served stale. Lowering the
    limit frees what is above it.
    """
    _core.set_winograd_cache_limit(_as_int(nbytes, "nbytes", "set_winograd_cache_limit"))


def get_winograd_cache_limit():
    """The Winograd weight cache's limit in bytes (see :func:`set_winograd_cache_limit`)."""
    return _core.get_winograd_cache_limit()


def winograd_cache_bytes():
    """Bytes the Winograd weight cache holds now."""
    return _core.winograd_cache_bytes()


def set_memory_limit(nbytes):
    """Most memory (bytes) one operation may hold at once.

    Everything one op call allocates is summed: the copies of its non-contiguous or
    unaligned inputs, its workspace and its result. A call that would need more raises
    ``ValueError`` before it writes any of it. The default is the machine's physical
    memory.
    """
    _core.set_memory_limit(_as_int(nbytes, "nbytes", "set_memory_limit"))


def get_memory_limit():
    """The memory limit in bytes (see :func:`set_memory_limit`)."""
    return _core.get_memory_limit()


def set_host_cache_limit(nbytes):
    """Most memory (bytes) kept in freed tensor buffers for reuse; 0 turns the cache off.

    Buffers of 256 KiB or more that a NumPy array or an op result no longer needs wait
    here, so that the next result of a similar size reuses them instead of faulting in
    fresh pages (a page fault per 4 KiB: about a millisecond for a 3 MB activation on a
    small virtual machine). The default is 64 MiB, or ``CNNCORE_HOST_CACHE_MB`` (MiB) when
    that is set at start. Lowering the limit frees what is above it.
    """
    _core.set_host_cache_limit(_as_int(nbytes, "nbytes", "set_host_cache_limit"))


def get_host_cache_limit():
    """The host cache's limit in bytes (see :func:`set_host_cache_limit`)."""
    return _core.get_host_cache_limit()


def host_cache_bytes():
    """Bytes of freed buffers the host cache holds now."""
    return _core.host_cache_bytes()


def empty_host_cache():
    """Frees every buffer the host cache holds (the limit stays)."""
    _core.empty_host_cache()


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
