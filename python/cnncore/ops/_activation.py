"""Activations (NumPy in, NumPy out): relu, leaky_relu, sigmoid, tanh, silu, gelu, as in
``torch.nn.functional``; ``name_backward(grad_out, x, <same keywords>)`` returns ``grad_x``.

Shapes and values are validated in C++ (``cnncore/layers.hpp``); this module
turns Python argument forms into what the core takes.
"""
from .. import _core
from ._common import _array, _grad_pair, _real

__all__ = ["relu", "relu_backward", "leaky_relu", "leaky_relu_backward", "sigmoid",
           "sigmoid_backward", "tanh", "tanh_backward", "silu", "silu_backward", "gelu",
           "gelu_backward"]


def _act_forward(op, x, slope=0.0):
    x = _array(x, op, "x")
    return _core.activation_forward(x, op, slope)


def _act_backward(op, grad_out, x, slope=0.0):
    grad_out, x = _grad_pair(op, grad_out, x)
    return _core.activation_backward(grad_out, x, op, slope)


def relu(x):
    """max(x, 0) elementwise."""
    return _act_forward("relu", x)


def relu_backward(grad_out, x):
    """grad_out where x > 0, else 0 (0 at x == 0)."""
    return _act_backward("relu", grad_out, x)


def leaky_relu(x, negative_slope=0.01):
    """x where x > 0, else negative_slope * x."""
    return _act_forward("leaky_relu", x, _real(negative_slope, "leaky_relu", "negative_slope"))


def leaky_relu_backward(grad_out, x, negative_slope=0.01):
    return _act_backward("leaky_relu", grad_out, x, _real(negative_slope, "leaky_relu", "negative_slope"))


def sigmoid(x):
    """1 / (1 + exp(-x)) elementwise."""
    return _act_forward("sigmoid", x)


def sigmoid_backward(grad_out, x):
    return _act_backward("sigmoid", grad_out, x)


def tanh(x):
    """tanh(x) elementwise."""
    return _act_forward("tanh", x)


def tanh_backward(grad_out, x):
    return _act_backward("tanh", grad_out, x)


def silu(x):
    """x * sigmoid(x) elementwise (also called swish)."""
    return _act_forward("silu", x)


def silu_backward(grad_out, x):
    return _act_backward("silu", grad_out, x)


def _gelu_kind(approximate):
    if approximate == "none":
        return "gelu"
    if approximate == "tanh":
        return "gelu_tanh"
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def gelu(x, approximate="none"):
    """x * Phi(x), Phi the standard normal CDF (``approximate="none"``, with erf), or its
    tanh approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (``"tanh"``)."""
    return _act_forward(_gelu_kind(approximate), x)


def gelu_backward(grad_out, x, approximate="none"):
    return _act_backward(_gelu_kind(approximate), grad_out, x)
