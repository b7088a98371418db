"""softmax and log_softmax along ``dim`` (NumPy in, NumPy out), with their backward.

Shapes and values are validated in C++ (``cnncore/layers.hpp``); this module
turns Python argument forms into what the core takes.
"""
from .. import _core
from ._common import _array, _grad_pair, _int

__all__ = ["softmax", "softmax_backward", "log_softmax", "log_softmax_backward"]


def softmax(x, dim=-1):
    """exp(x) / sum(exp(x)) along ``dim`` (computed stably, shifting by the maximum)."""
    x = _array(x, "softmax", "x")
    return _core.softmax_forward(x, _int(dim, "softmax", "dim"), False)


def softmax_backward(grad_out, x, dim=-1):
    grad_out, x = _grad_pair("softmax", grad_out, x)
    return _core.softmax_backward(grad_out, x, _int(dim, "softmax", "dim"), False)


def log_softmax(x, dim=-1):
    """log(softmax(x, dim)) computed as x - max - log(sum(exp(x - max)))."""
    x = _array(x, "log_softmax", "x")
    return _core.softmax_forward(x, _int(dim, "log_softmax", "dim"), True)


def log_softmax_backward(grad_out, x, dim=-1):
    grad_out, x = _grad_pair("log_softmax", grad_out, x)
    return _core.softmax_backward(grad_out, x, _int(dim, "log_softmax", "dim"), True)
