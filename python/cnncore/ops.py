"""Low-level operations: NumPy arrays in, NumPy arrays out.

Every array result has the dtype of the inputs (float32 or float64). See
``docs/conv2d.md`` for the conventions (NCHW layout, padding forms, flip).
"""
import operator

import numpy as np

from . import _core

__all__ = ["conv2d", "conv2d_backward", "conv2d_output_shape"]

_PADDING_WORDS = ("valid", "same", "full")
_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
_ALGORITHMS = ("auto", "reference", "im2col")


# ---------------------------------------------------------------------------
# Argument normalisation shared by the convolution family.


def _int(value, op, name):
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be an integer, got bool")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{op}: {name} must be an integer or a tuple of integers, "
                        f"got {type(value).__name__} {value!r}") from None


def _per_axis(value, nd, op, name):
    """An int or an nd-tuple of ints -> list of nd ints (range checked in C++)."""
    if isinstance(value, (tuple, list)):
        if len(value) != nd:
            raise ValueError(f"{op}: {name} must be an integer or a tuple of {nd} integers, "
                             f"got {len(value)} values {tuple(value)!r}")
        return [_int(v, op, name) for v in value]
    return [_int(value, op, name)] * nd


def _padding(value, nd, op):
    """Padding forms -> (explicit [before, after] * nd list, preset word)."""
    if isinstance(value, str):
        if value not in _PADDING_WORDS:
            raise ValueError(f"{op}: padding must be an integer, a tuple, or one of "
                             f"{', '.join(map(repr, _PADDING_WORDS))}, got {value!r}")
        return [], value
    if isinstance(value, (tuple, list)):
        vals = [_int(v, op, "padding") for v in value]
        if len(vals) == nd:
            return [p for v in vals for p in (v, v)], ""
        if len(vals) == 2 * nd:
            return vals, ""
        raise ValueError(f"{op}: padding must be an integer, a tuple of {nd} (per axis) or "
                         f"{2 * nd} (before/after per axis) integers, or a word; got "
                         f"{len(vals)} values {tuple(value)!r}")
    v = _int(value, op, "padding")
    return [v] * (2 * nd), ""


def _word(value, choices, op, name):
    if not isinstance(value, str):
        raise TypeError(f"{op}: {name} must be a string, got {type(value).__name__}")
    if value not in choices:
        raise ValueError(f"{op}: {name} must be one of {', '.join(map(repr, choices))}, "
                         f"got {value!r}")
    return value


def _conv_params(op, nd, stride, padding, dilation, groups, padding_mode, flip, algorithm):
    pad, preset = _padding(padding, nd, op)
    if not isinstance(flip, (bool, np.bool_)):
        raise TypeError(f"{op}: flip must be a bool, got {type(flip).__name__}")
    return dict(
        stride=_per_axis(stride, nd, op, "stride"),
        dilation=_per_axis(dilation, nd, op, "dilation"),
        padding=pad,
        preset=preset,
        padding_mode=_word(padding_mode, _PADDING_MODES, op, "padding_mode"),
        groups=_int(groups, op, "groups"),
        flip=bool(flip),
        algorithm=_word(algorithm, _ALGORITHMS, op, "algorithm"),
        op=op,
        spatial_dims=nd,
    )


def _array(value, op, name, ndim=None, layout=""):
    """A float32/float64 ndarray (C order), or TypeError/ValueError naming `name`."""
    arr = value if isinstance(value, np.ndarray) else np.asarray(value)
    if arr.dtype not in (np.float32, np.float64):
        raise TypeError(f"{op}: {name} must be a float32 or float64 array, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{op}: {name} must have {ndim} dimensions {layout}, got {arr.ndim} "
                         f"with shape {arr.shape}")
    return np.ascontiguousarray(arr)


def _same_dtype(op, ref_name, ref, **others):
    for name, arr in others.items():
        if arr is not None and arr.dtype != ref.dtype:
            raise TypeError(f"{op}: {name} has dtype {arr.dtype} but {ref_name} has {ref.dtype}; "
                            f"convert one of them so both match")


_LAYOUT_2D = "(N, C_in, H, W)"
_WEIGHT_2D = "(C_out, C_in/groups, kH, kW)"


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
