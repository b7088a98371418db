"""Low-level operations: NumPy arrays in, NumPy arrays out.

Every array result has the dtype of the inputs (float32 or float64); every
op ``name`` has a twin ``name_backward`` returning the gradients of its array
inputs. Layout is NCHW (see ``docs/conv2d.md``).
"""
from ._conv import *  # noqa: F401,F403
from ._conv import __all__ as _conv_all
from ._layers import *  # noqa: F401,F403
from ._layers import __all__ as _layers_all
from ._local import *  # noqa: F401,F403
from ._local import __all__ as _local_all
from ._pad import pad, pad_backward
from ._pool import *  # noqa: F401,F403
from ._pool import __all__ as _pool_all

__all__ = [*_conv_all, *_local_all, "pad", "pad_backward", *_pool_all, *_layers_all]
