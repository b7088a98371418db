"""cnncore — convolutional networks on a small C++ core.

The numeric work happens in the compiled module ``cnncore._core`` (OpenMP
threads, SIMD kernels chosen at run time); this package gives it a Pythonic
face:

* ``cnncore.ops`` — the NumPy-in, NumPy-out operations (each with a backward twin);
* ``cnncore.Tensor`` / ``cnncore.tensor`` — arrays with reverse-mode autograd, ``no_grad``;
* ``cnncore.functional`` — differentiable ops named like ``torch.nn.functional``;
* ``cnncore.nn`` — modules, layers, losses, initialisation;
* ``cnncore.models`` — LeNet-5, AlexNet, ZFNet, VGG, GoogLeNet, ResNet;
* ``cnncore.optim`` — SGD, Adam, AdamW and learning-rate schedulers;
* ``cnncore.data`` — bundled digits, IDX / npz / image-folder loaders, DataLoader, transforms;
* ``cnncore.save`` / ``cnncore.load`` — checkpoints in the safetensors layout.
"""
from . import _threads  # noqa: F401  (before _core: OpenMP's wait policy, docs/threads.md)
from . import _core, ops
from ._random import manual_seed
from ._runtime import (
    are_deterministic_algorithms_enabled,
    are_exact_algorithms_enabled,
    empty_host_cache,
    get_host_cache_limit,
    get_isa,
    get_memory_limit,
    get_num_threads,
    host_cache_bytes,
    set_host_cache_limit,
    set_isa,
    set_memory_limit,
    set_num_threads,
    use_deterministic_algorithms,
    use_exact_algorithms,
    set_winograd_cache_limit,
    get_winograd_cache_limit,
    winograd_cache_bytes,
)
from .tensor import (
    Device as device,
    Tensor,
    arange,
    cat,
    enable_grad,
    from_dlpack,
    from_numpy,
    full,
    gradcheck,
    is_grad_enabled,
    linspace,
    matmul,
    no_grad,
    ones,
    ones_like,
    rand,
    randn,
    set_grad_enabled,
    stack,
    tensor,
    where,
    zeros,
    zeros_like,
)
from . import cuda, functional, nn, optim, models, data  # noqa: E402,I001
from .io import CheckpointError, UnverifiedCheckpointWarning, load, save
from .weights import UnsafeCheckpointError, load_torch

from ._version import __version__  # noqa: E402

__all__ = [
    "ops",
    "get_isa",
    "set_isa",
    "get_memory_limit",
    "set_memory_limit",
    "set_host_cache_limit",
    "get_host_cache_limit",
    "host_cache_bytes",
    "empty_host_cache",
    "get_num_threads",
    "set_num_threads",
    "use_deterministic_algorithms",
    "are_deterministic_algorithms_enabled",
    "use_exact_algorithms",
    "are_exact_algorithms_enabled",
    "set_winograd_cache_limit",
    "get_winograd_cache_limit",
    "winograd_cache_bytes",
    "__version__",
    "Tensor",
    "tensor",
    "from_numpy",
    "from_dlpack",
    "no_grad",
    "enable_grad",
    "set_grad_enabled",
    "is_grad_enabled",
    "cat",
    "stack",
    "device",
    "zeros",
    "ones",
    "full",
    "zeros_like",
    "ones_like",
    "rand",
    "randn",
    "arange",
    "linspace",
    "where",
    "matmul",
    "gradcheck",
    "manual_seed",
    "save",
    "CheckpointError",
    "UnverifiedCheckpointWarning",
    "load",
    "load_torch",
    "UnsafeCheckpointError",
    "functional",
    "nn",
    "optim",
    "models",
    "data",
]
