"""Convolution ops (NumPy in, NumPy out); see docs/conv2d.md."""
import numpy as np

from .. import _core
from ._common import _LAYOUT_2D, _WEIGHT_2D, _array, _conv_params, _int, _same_dtype

__all__ = ["conv2d", "conv2d_backward", "conv2d_output_shape"]

# ---------------------------------------------------------------------------
# conv2d


def conv2d(x, weight, bias=None, *, stride=1, padding=0, dilation=1, groups=1,
           padding_mode="zeros", flip=False, algorithm="auto"):
    """2-D convolution of ``x`` (N, C_in, H, W) with ``weight`` (C_out, C_in/groups, kH, kW).

    ``flip=False`` is cross-correlation (the deep-learning convention);
    ``flip=True`` is true convolution (kernel rotated 180 degrees).
    ``padding`` is an int, ``(ph, pw)``, ``(top, bottom, left, right)`` or one of
    ``"valid"``, ``"same"`` (output ``ceil(in/stride)``, any stride), ``"full"``.
    ``padding_mode`` fills the border: ``"zeros"``, ``"reflect"``, ``"replicate"``,
    ``"circular"``. Returns (N, C_out, H_out, W_out) in the dtype of ``x``.
    """
    op = "conv2d"
    params = _conv_params(op, 2, stride, padding, dilation, groups, padding_mode, flip, algorithm)
    x = _array(x, op, "x", 4, _LAYOUT_2D)
    weight = _array(weight, op, "weight", 4, _WEIGHT_2D)
    if bias is not None:
        bias = _array(bias, op, "bias")
    _same_dtype(op, "x", x, weight=weight, bias=bias)
    return _core.conv_forward(x, weight, bias, **params)


def conv2d_backward(grad_out, x, weight, *, stride=1, padding=0, dilation=1, groups=1,
                    padding_mode="zeros", flip=False, bias=True, algorithm="auto"):
    """Gradients of :func:`conv2d` given ``grad_out`` = dL/d(output).

    Returns ``(grad_x, grad_weight, grad_bias)``; ``grad_bias`` is None when
    ``bias=False``. The keywords must be those of the forward call.
    """
    op = "conv2d"
    params = _conv_params(op, 2, stride, padding, dilation, groups, padding_mode, flip, algorithm)
    x = _array(x, op, "x", 4, _LAYOUT_2D)
    weight = _array(weight, op, "weight", 4, _WEIGHT_2D)
    grad_out = _array(grad_out, op, "grad_out", 4, "(N, C_out, H_out, W_out)")
    _same_dtype(op, "x", x, weight=weight, grad_out=grad_out)
    if not isinstance(bias, (bool, np.bool_)):
        raise TypeError(f"{op}: bias must be a bool (whether to return grad_bias), "
                        f"got {type(bias).__name__}")
    return _core.conv_backward(grad_out, x, weight, bool(bias), **params)


def conv2d_output_shape(input_shape, weight_shape, *, stride=1, padding=0, dilation=1,
                        groups=1, padding_mode="zeros"):
    """Output shape (N, C_out, H_out, W_out) of :func:`conv2d`, validating everything."""
    op = "conv2d"
    params = _conv_params(op, 2, stride, padding, dilation, groups, padding_mode, False, "auto")
    shapes = []
    for name, shape, layout in (("input_shape", input_shape, _LAYOUT_2D),
                                ("weight_shape", weight_shape, _WEIGHT_2D)):
        try:
            shape = tuple(_int(s, op, name) for s in shape)
        except TypeError:
            raise TypeError(f"{op}: {name} must be a sequence of integers {layout}, "
                            f"got {shape!r}") from None
        if len(shape) != 4:
            raise ValueError(f"{op}: {name} must have 4 entries {layout}, got {len(shape)}")
        shapes.append(shape)
    return tuple(_core.conv_output_shape(shapes[0], shapes[1], **params))
