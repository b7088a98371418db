"""The fully connected layer (NumPy in, NumPy out): ``x @ weight.T + bias``.

Shapes and values are validated in C++ (``cnncore/layers.hpp``); this module
turns Python argument forms into what the core takes.
"""
from .. import _core
from ._common import _array

__all__ = ["linear", "linear_backward"]


def linear(x, weight, bias=None):
    """``x @ weight.T + bias`` for ``x`` (..., in), ``weight`` (out, in), ``bias`` (out)."""
    op = "linear"
    x = _array(x, op, "x")
    weight = _array(weight, op, "weight")
    if bias is not None:
        bias = _array(bias, op, "bias")
    return _core.linear_forward(x, weight, bias)


def linear_backward(grad_out, x, weight, bias=None):
    """``(grad_x, grad_weight, grad_bias)`` of :func:`linear`; ``grad_bias`` is None when
    ``bias`` is None (its values are not used)."""
    op = "linear"
    x = _array(x, op, "x")
    weight = _array(weight, op, "weight")
    grad_out = _array(grad_out, op, "grad_out")
    if bias is not None:
        bias = _array(bias, op, "bias")
        if weight.ndim == 2 and bias.shape != (weight.shape[0],):
            raise ValueError(f"{op}: bias must have shape ({weight.shape[0]},) (out_features, "
                             f"weight.shape[0]), got {bias.shape}")
    return _core.linear_backward(grad_out, x, weight, bias is not None)
