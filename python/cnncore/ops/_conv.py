"""Convolution ops (NumPy in, NumPy out); see docs/conv2d.md and docs/ops.md.

conv1d/2d/3d share one implementation: the C++ core serves 1-3 spatial axes
from one geometry, so each public function only fixes the rank.
"""
import numpy as np

from .. import _core
from ._common import (_ALGORITHMS, _array, _conv_params, _int, _layout, _padding, _per_axis,
                      _same_dtype, _shape_arg, _weight_layout, _word)

__all__ = [
    "conv1d", "conv2d", "conv3d",
    "conv1d_backward", "conv2d_backward", "conv3d_backward",
    "conv1d_output_shape", "conv2d_output_shape", "conv3d_output_shape",
    "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "conv_transpose1d_backward", "conv_transpose2d_backward", "conv_transpose3d_backward",
    "conv_transpose1d_output_shape", "conv_transpose2d_output_shape",
    "conv_transpose3d_output_shape",
]


def _forward(nd, x, weight, bias, stride, padding, dilation, groups, padding_mode, flip, algorithm):
    op = f"conv{nd}d"
    params = _conv_params(op, nd, stride, padding, dilation, groups, padding_mode, flip, algorithm)
    x = _array(x, op, "x", nd + 2, _layout(nd))
    weight = _array(weight, op, "weight", nd + 2, _weight_layout(nd))
    if bias is not None:
        bias = _array(bias, op, "bias")
    _same_dtype(op, "x", x, weight=weight, bias=bias)
    return _core.conv_forward(x, weight, bias, **params)


def _backward(nd, grad_out, x, weight, stride, padding, dilation, groups, padding_mode, flip, bias,
              algorithm):
    op = f"conv{nd}d"
    params = _conv_params(op, nd, stride, padding, dilation, groups, padding_mode, flip, algorithm)
    x = _array(x, op, "x", nd + 2, _layout(nd))
    weight = _array(weight, op, "weight", nd + 2, _weight_layout(nd))
    grad_out = _array(grad_out, op, "grad_out", nd + 2, _layout(nd, "C_out"))
    _same_dtype(op, "x", x, weight=weight, grad_out=grad_out)
    if not isinstance(bias, (bool, np.bool_)):
        raise TypeError(f"{op}: bias must be a bool (whether to return grad_bias), "
                        f"got {type(bias).__name__}")
    return _core.conv_backward(grad_out, x, weight, bool(bias), **params)


def _output_shape(nd, input_shape, weight_shape, stride, padding, dilation, groups, padding_mode):
    op = f"conv{nd}d"
    params = _conv_params(op, nd, stride, padding, dilation, groups, padding_mode, False, "auto")
    src = _shape_arg(input_shape, op, "input_shape", nd + 2, _layout(nd))
    w = _shape_arg(weight_shape, op, "weight_shape", nd + 2, _weight_layout(nd))
    return tuple(_core.conv_output_shape(src, w, **params))


_FORWARD_DOC = """{nd}-D convolution of ``x`` {layout} with ``weight`` {wlayout}.

    ``flip=False`` is cross-correlation (the deep-learning convention);
    ``flip=True`` is true convolution (kernel rotated 180 degrees).
    ``padding`` is an int, one int per axis, before/after per axis, or one of
    ``"valid"``, ``"same"`` (output ``ceil(in/stride)``, any stride), ``"full"``.
    ``padding_mode`` fills the border: ``"zeros"``, ``"reflect"``, ``"replicate"``,
    ``"circular"``, ``"symmetric"``. ``algorithm``: ``"auto"``, ``"reference"``,
    ``"im2col"``, ``"direct"`` (depthwise only), ``"fft"``. Returns
    {olayout} in the dtype of ``x``.
    """

_BACKWARD_DOC = """Gradients of :func:`conv{nd}d` given ``grad_out`` = dL/d(output).

    Returns ``(grad_x, grad_weight, grad_bias)``; ``grad_bias`` is None when
    ``bias=False``. The keywords must be those of the forward call.
    """


def conv1d(x, weight, bias=None, *, stride=1, padding=0, dilation=1, groups=1,
           padding_mode="zeros", flip=False, algorithm="auto"):
    return _forward(1, x, weight, bias, stride, padding, dilation, groups, padding_mode, flip,
                    algorithm)


def conv2d(x, weight, bias=None, *, stride=1, padding=0, dilation=1, groups=1,
           padding_mode="zeros", flip=False, algorithm="auto"):
    return _forward(2, x, weight, bias, stride, padding, dilation, groups, padding_mode, flip,
                    algorithm)


def conv3d(x, weight, bias=None, *, stride=1, padding=0, dilation=1, groups=1,
           padding_mode="zeros", flip=False, algorithm="auto"):
    return _forward(3, x, weight, bias, stride, padding, dilation, groups, padding_mode, flip,
                    algorithm)


def conv1d_backward(grad_out, x, weight, *, stride=1, padding=0, dilation=1, groups=1,
                    padding_mode="zeros", flip=False, bias=True, algorithm="auto"):
    return _backward(1, grad_out, x, weight, stride, padding, dilation, groups, padding_mode, flip,
                     bias, algorithm)


def conv2d_backward(grad_out, x, weight, *, stride=1, padding=0, dilation=1, groups=1,
                    padding_mode="zeros", flip=False, bias=True, algorithm="auto"):
    return _backward(2, grad_out, x, weight, stride, padding, dilation, groups, padding_mode, flip,
                     bias, algorithm)


def conv3d_backward(grad_out, x, weight, *, stride=1, padding=0, dilation=1, groups=1,
                    padding_mode="zeros", flip=False, bias=True, algorithm="auto"):
    return _backward(3, grad_out, x, weight, stride, padding, dilation, groups, padding_mode, flip,
                     bias, algorithm)


def conv1d_output_shape(input_shape, weight_shape, *, stride=1, padding=0, dilation=1, groups=1,
                        padding_mode="zeros"):
    """Output shape (N, C_out, L_out) of :func:`conv1d`, validating everything."""
    return _output_shape(1, input_shape, weight_shape, stride, padding, dilation, groups,
                         padding_mode)


def conv2d_output_shape(input_shape, weight_shape, *, stride=1, padding=0, dilation=1, groups=1,
                        padding_mode="zeros"):
    """Output shape (N, C_out, H_out, W_out) of :func:`conv2d`, validating everything."""
    return _output_shape(2, input_shape, weight_shape, stride, padding, dilation, groups,
                         padding_mode)


def conv3d_output_shape(input_shape, weight_shape, *, stride=1, padding=0, dilation=1, groups=1,
                        padding_mode="zeros"):
    """Output shape (N, C_out, D_out, H_out, W_out) of :func:`conv3d`, validating everything."""
    return _output_shape(3, input_shape, weight_shape, stride, padding, dilation, groups,
                         padding_mode)


# ---------------------------------------------------------------------------
# Transposed convolution: the adjoint of convolution with the same weights.

_TWEIGHT = "C_in", "C_out/groups"


def _transpose_params(op, nd, stride, padding, output_padding, groups, dilation, algorithm):
    if isinstance(padding, str):
        raise ValueError(f"{op}: padding must be an integer or a tuple of integers "
                         f"(the amount cropped from the full output), got {padding!r}")
    pad, _ = _padding(padding, nd, op)
    return dict(
        stride=_per_axis(stride, nd, op, "stride"),
        dilation=_per_axis(dilation, nd, op, "dilation"),
        padding=pad,
        output_padding=_per_axis(output_padding, nd, op, "output_padding"),
        groups=_int(groups, op, "groups"),
        algorithm=_word(algorithm, _ALGORITHMS, op, "algorithm"),
        op=op,
        spatial_dims=nd,
    )


def _transpose_forward(nd, x, weight, bias, stride, padding, output_padding, groups, dilation,
                       algorithm):
    op = f"conv_transpose{nd}d"
    params = _transpose_params(op, nd, stride, padding, output_padding, groups, dilation, algorithm)
    x = _array(x, op, "x", nd + 2, _layout(nd))
    weight = _array(weight, op, "weight", nd + 2, _weight_layout(nd, *_TWEIGHT))
    if bias is not None:
        bias = _array(bias, op, "bias")
    _same_dtype(op, "x", x, weight=weight, bias=bias)
    return _core.conv_transpose_forward(x, weight, bias, **params)


def _transpose_backward(nd, grad_out, x, weight, stride, padding, output_padding, groups, dilation,
                        bias, algorithm):
    op = f"conv_transpose{nd}d"
    params = _transpose_params(op, nd, stride, padding, output_padding, groups, dilation, algorithm)
    x = _array(x, op, "x", nd + 2, _layout(nd))
    weight = _array(weight, op, "weight", nd + 2, _weight_layout(nd, *_TWEIGHT))
    grad_out = _array(grad_out, op, "grad_out", nd + 2, _layout(nd, "C_out"))
    _same_dtype(op, "x", x, weight=weight, grad_out=grad_out)
    if not isinstance(bias, (bool, np.bool_)):
        raise TypeError(f"{op}: bias must be a bool (whether to return grad_bias), "
                        f"got {type(bias).__name__}")
    return _core.conv_transpose_backward(grad_out, x, weight, bool(bias), **params)


def _transpose_output_shape(nd, input_shape, weight_shape, stride, padding, output_padding, groups,
                            dilation):
    op = f"conv_transpose{nd}d"
    params = _transpose_params(op, nd, stride, padding, output_padding, groups, dilation, "auto")
    src = _shape_arg(input_shape, op, "input_shape", nd + 2, _layout(nd))
    w = _shape_arg(weight_shape, op, "weight_shape", nd + 2, _weight_layout(nd, *_TWEIGHT))
    return tuple(_core.conv_transpose_output_shape(src, w, **params))


def conv_transpose1d(x, weight, bias=None, *, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, algorithm="auto"):
    return _transpose_forward(1, x, weight, bias, stride, padding, output_padding, groups,
                              dilation, algorithm)


def conv_transpose2d(x, weight, bias=None, *, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, algorithm="auto"):
    return _transpose_forward(2, x, weight, bias, stride, padding, output_padding, groups,
                              dilation, algorithm)


def conv_transpose3d(x, weight, bias=None, *, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, algorithm="auto"):
    return _transpose_forward(3, x, weight, bias, stride, padding, output_padding, groups,
                              dilation, algorithm)


def conv_transpose1d_backward(grad_out, x, weight, *, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1, bias=True, algorithm="auto"):
    return _transpose_backward(1, grad_out, x, weight, stride, padding, output_padding, groups,
                               dilation, bias, algorithm)


def conv_transpose2d_backward(grad_out, x, weight, *, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1, bias=True, algorithm="auto"):
    return _transpose_backward(2, grad_out, x, weight, stride, padding, output_padding, groups,
                               dilation, bias, algorithm)


def conv_transpose3d_backward(grad_out, x, weight, *, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1, bias=True, algorithm="auto"):
    return _transpose_backward(3, grad_out, x, weight, stride, padding, output_padding, groups,
                               dilation, bias, algorithm)


def conv_transpose1d_output_shape(input_shape, weight_shape, *, stride=1, padding=0,
                                  output_padding=0, groups=1, dilation=1):
    return _transpose_output_shape(1, input_shape, weight_shape, stride, padding, output_padding,
                                   groups, dilation)


def conv_transpose2d_output_shape(input_shape, weight_shape, *, stride=1, padding=0,
                                  output_padding=0, groups=1, dilation=1):
    return _transpose_output_shape(2, input_shape, weight_shape, stride, padding, output_padding,
                                   groups, dilation)


def conv_transpose3d_output_shape(input_shape, weight_shape, *, stride=1, padding=0,
                                  output_padding=0, groups=1, dilation=1):
    return _transpose_output_shape(3, input_shape, weight_shape, stride, padding, output_padding,
                                   groups, dilation)


_TRANSPOSE_DOC = """{nd}-D transposed convolution of ``x`` {layout} with ``weight`` {wlayout}.

    The adjoint of :func:`conv{nd}d` with the same weights (PyTorch's
    convention): output size per axis
    ``(in-1)*stride - pad_before - pad_after + dilation*(k-1) + output_padding + 1``.
    ``padding`` crops the full result (int, one per axis, or before/after per
    axis); ``output_padding`` (smaller than stride or dilation) adds positions
    at the end of each axis.
    """

for _nd, _f, _b in ((1, conv_transpose1d, conv_transpose1d_backward),
                    (2, conv_transpose2d, conv_transpose2d_backward),
                    (3, conv_transpose3d, conv_transpose3d_backward)):
    _f.__doc__ = _TRANSPOSE_DOC.format(nd=_nd, layout=_layout(_nd),
                                       wlayout=_weight_layout(_nd, *_TWEIGHT))
    _b.__doc__ = (f"Gradients of :func:`conv_transpose{_nd}d`: ``(grad_x, grad_weight, "
                  "grad_bias)``; ``grad_bias`` is None when ``bias=False``.")

for _nd, _f, _b in ((1, conv1d, conv1d_backward), (2, conv2d, conv2d_backward),
                    (3, conv3d, conv3d_backward)):
    _f.__doc__ = _FORWARD_DOC.format(nd=_nd, layout=_layout(_nd), wlayout=_weight_layout(_nd),
                                     olayout=_layout(_nd, "C_out"))
    _b.__doc__ = _BACKWARD_DOC.format(nd=_nd)
del _nd, _f, _b
