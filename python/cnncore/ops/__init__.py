"""Low-level operations: NumPy arrays in, NumPy arrays out.

Every array result has the dtype of the inputs (float32 or float64); every
op ``name`` has a twin ``name_backward`` returning the gradients of its array
inputs. Layout is NCHW (see ``docs/conv2d.md``). One module per op family,
named as the family's C++ op file and binding (``_pool.py`` ↔
``cpp/src/ops/pool.cpp`` ↔ ``cpp/src/bindings/register_pool.cpp``).
"""
from . import (_activation, _conv, _conv_transpose, _cross_entropy, _dropout, _linear,
               _local_conv, _norm, _pad, _pool, _softmax)
from ._activation import *  # noqa: F401,F403
from ._conv import *  # noqa: F401,F403
from ._conv_transpose import *  # noqa: F401,F403
from ._cross_entropy import *  # noqa: F401,F403
from ._dropout import *  # noqa: F401,F403
from ._linear import *  # noqa: F401,F403
from ._local_conv import *  # noqa: F401,F403
from ._norm import *  # noqa: F401,F403
from ._pad import *  # noqa: F401,F403
from ._pool import *  # noqa: F401,F403
from ._softmax import *  # noqa: F401,F403

__all__ = [name for family in (_conv, _conv_transpose, _local_conv, _pad, _pool, _activation,
                               _softmax, _cross_entropy, _dropout, _norm, _linear)
           for name in family.__all__]
