"""Dropout with a counter-based mask (NumPy in, NumPy out): the mask is a pure
function of (seed, index), so the backward regenerates it.

Shapes and values are validated in C++ (``cnncore/layers.hpp``); this module
turns Python argument forms into what the core takes.
"""
from .. import _core
from ._common import _array, _bool, _grad_pair, _int, _real, _same_dtype

__all__ = ["dropout", "dropout_backward"]


def _dropout_args(op, p, training, seed):
    seed = _int(seed, op, "seed", 0, 2**64 - 1)
    return _real(p, op, "p"), _bool(training, op, "training"), seed


def dropout(x, p=0.5, training=True, *, seed):
    """Zero each element with probability ``p`` and scale the rest by 1 / (1 - p).

    The mask is a pure function of (``seed``, flat element index): the same seed gives
    the same mask for any thread count, and :func:`dropout_backward` recomputes it.
    ``training=False`` returns a copy of ``x``; ``p=1`` gives zeros.
    """
    op = "dropout"
    p, training, seed = _dropout_args(op, p, training, seed)
    return _core.dropout_forward(_array(x, op, "x"), p, training, seed)


def dropout_backward(grad_out, x, p=0.5, training=True, *, seed):
    op = "dropout"
    p, training, seed = _dropout_args(op, p, training, seed)
    grad_out, x = _grad_pair(op, grad_out, x)
    # The core's dropout_backward takes grad_out alone: x's dtype and shape are checked here.
    _same_dtype(op, "x", x, grad_out=grad_out)
    if grad_out.shape != x.shape:
        raise ValueError(f"{op}: grad_out must have the shape of x {x.shape}, got {grad_out.shape}")
    return _core.dropout_backward(grad_out, p, training, seed)
