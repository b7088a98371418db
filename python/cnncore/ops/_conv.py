"""Convolution ops (NumPy in, NumPy out); see docs/conv2d.md and docs/ops.md.

conv1d/2d/3d share one implementation: the C++ core serves 1-3 spatial axes
from one geometry, so each public function only fixes the rank.
"""
import numpy as np

from .. import _core
from ._common import (_array, _bool, _conv_params, _int, _layout, _shape_arg, _want_bias,
                      _weight_layout)

__all__ = [
    "conv1d", "conv2d", "conv3d",
    "conv1d_backward", "conv2d_backward", "conv3d_backward",
    "conv1d_output_shape", "conv2d_output_shape", "conv3d_output_shape",
    "separable_conv2d", "separable_conv2d_backward", "conv_param_count",
]


def _forward(nd, x, weight, bias, stride, padding, dilation, groups, padding_mode, flip, algorithm):
    op = f"conv{nd}d"
    params = _conv_params(op, nd, stride, padding, dilation, groups, padding_mode, flip, algorithm)
    x = _array(x, op, "x")
    weight = _array(weight, op, "weight")
    if bias is not None:
        bias = _array(bias, op, "bias")
    return _core.conv_forward(x, weight, bias, **params)


def _backward(nd, grad_out, x, weight, stride, padding, dilation, groups, padding_mode, flip, bias,
              algorithm, input_grad, weight_grad):
    op = f"conv{nd}d"
    params = _conv_params(op, nd, stride, padding, dilation, groups, padding_mode, flip, algorithm)
    x = _array(x, op, "x")
    weight = _array(weight, op, "weight")
    grad_out = _array(grad_out, op, "grad_out")
    return _core.conv_backward(grad_out, x, weight, _want_bias(bias, op),
                               _bool(input_grad, op, "input_grad"),
                               _bool(weight_grad, op, "weight_grad"), **params)


def _output_shape(nd, input_shape, weight_shape, stride, padding, dilation, groups, padding_mode):
    op = f"conv{nd}d"
    params = _conv_params(op, nd, stride, padding, dilation, groups, padding_mode, False, "auto")
    src = _shape_arg(input_shape, op, "input_shape", nd + 2, _layout(nd))
    w = _shape_arg(weight_shape, op, "weight_shape", nd + 2, _weight_layout(nd))
    return tuple(_core.conv_output_shape(src, w, **params))


def conv1d(x, weight, bias=None, *, stride=1, padding=0, dilation=1, groups=1,
           padding_mode="zeros", flip=False, algorithm="auto"):
    """1-D convolution of ``x`` (N, C_in, L) with ``weight`` (C_out, C_in/groups, kL) -> (N, C_out,
    L_out); the keywords as for :func:`conv2d`."""
    return _forward(1, x, weight, bias, stride, padding, dilation, groups, padding_mode, flip,
                    algorithm)


def conv2d(x, weight, bias=None, *, stride=1, padding=0, dilation=1, groups=1,
           padding_mode="zeros", flip=False, algorithm="auto"):
    """2-D convolution of ``x`` (N, C_in, H, W) with ``weight`` (C_out, C_in/groups, kH, kW).

    ``flip=False`` is cross-correlation (the deep-learning convention);
    ``flip=True`` is true convolution (kernel rotated 180 degrees).
    ``padding`` is an int, one int per axis, before/after per axis, or one of
    ``"valid"``, ``"same"`` (output ``ceil(in/stride)``, any stride), ``"full"``.
    ``padding_mode`` fills the border: ``"zeros"``, ``"reflect"``, ``"replicate"``,
    ``"circular"``, ``"symmetric"``. ``algorithm``: ``"auto"``, ``"reference"``,
    ``"im2col"``, ``"direct"`` (depthwise, or at most 2 spatial axes), ``"fft"``. Returns
    (N, C_out, H_out, W_out) in the dtype of ``x``.
    """
    return _forward(2, x, weight, bias, stride, padding, dilation, groups, padding_mode, flip,
                    algorithm)


def conv3d(x, weight, bias=None, *, stride=1, padding=0, dilation=1, groups=1,
           padding_mode="zeros", flip=False, algorithm="auto"):
    """3-D convolution of ``x`` (N, C_in, D, H, W) with ``weight`` (C_out, C_in/groups, kD, kH, kW)
    -> (N, C_out, D_out, H_out, W_out); the keywords as for :func:`conv2d`."""
    return _forward(3, x, weight, bias, stride, padding, dilation, groups, padding_mode, flip,
                    algorithm)


def conv1d_backward(grad_out, x, weight, *, stride=1, padding=0, dilation=1, groups=1,
                    padding_mode="zeros", flip=False, bias=True, algorithm="auto", input_grad=True,
                    weight_grad=True):
    """Gradients ``(grad_x, grad_weight, grad_bias)`` of :func:`conv1d`, as for
    :func:`conv2d_backward`."""
    return _backward(1, grad_out, x, weight, stride, padding, dilation, groups, padding_mode, flip,
                     bias, algorithm, input_grad, weight_grad)


def conv2d_backward(grad_out, x, weight, *, stride=1, padding=0, dilation=1, groups=1,
                    padding_mode="zeros", flip=False, bias=True, algorithm="auto", input_grad=True,
                    weight_grad=True):
    """Gradients of :func:`conv2d` given ``grad_out`` = dL/d(output).

    Returns ``(grad_x, grad_weight, grad_bias)``; ``grad_bias`` is None when
    ``bias=False``, and ``grad_x`` / ``grad_weight`` are None (and not computed)
    when ``input_grad=False`` / ``weight_grad=False``. The other keywords must be
    those of the forward call.
    """
    return _backward(2, grad_out, x, weight, stride, padding, dilation, groups, padding_mode, flip,
                     bias, algorithm, input_grad, weight_grad)


def conv3d_backward(grad_out, x, weight, *, stride=1, padding=0, dilation=1, groups=1,
                    padding_mode="zeros", flip=False, bias=True, algorithm="auto", input_grad=True,
                    weight_grad=True):
    """Gradients ``(grad_x, grad_weight, grad_bias)`` of :func:`conv3d`, as for
    :func:`conv2d_backward`."""
    return _backward(3, grad_out, x, weight, stride, padding, dilation, groups, padding_mode, flip,
                     bias, algorithm, input_grad, weight_grad)


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
# Depthwise-separable convolution and parameter counting.


def _separable_arrays(op, x, depthwise_weight, pointwise_weight):
    x = _array(x, op, "x")
    dw = _array(depthwise_weight, op, "depthwise_weight")
    pw = _array(pointwise_weight, op, "pointwise_weight")
    return x, dw, pw


def separable_conv2d(x, depthwise_weight, pointwise_weight, bias=None, *, stride=1, padding=0,
                     dilation=1, padding_mode="zeros", flip=False, algorithm="auto"):
    """Depthwise-separable 2-D convolution: a depthwise convolution (groups =
    C_in, ``depthwise_weight`` (C_in*m, 1, kH, kW), with the given stride,
    padding, dilation and padding_mode), then a 1x1 pointwise convolution
    (``pointwise_weight`` (C_out, C_in*m, 1, 1)) plus ``bias``.
    ``algorithm`` applies to the depthwise stage."""
    op = "separable_conv2d"
    params = _conv_params(op, 2, stride, padding, dilation, 1, padding_mode, flip, algorithm)
    x, dw, pw = _separable_arrays(op, x, depthwise_weight, pointwise_weight)
    if bias is not None:
        bias = _array(bias, op, "bias")
    return _core.separable_conv_forward(x, dw, pw, bias, **params)


def separable_conv2d_backward(grad_out, x, depthwise_weight, pointwise_weight, *, stride=1,
                              padding=0, dilation=1, padding_mode="zeros", flip=False, bias=True,
                              algorithm="auto"):
    """Gradients of :func:`separable_conv2d`: ``(grad_x, grad_depthwise_weight,
    grad_pointwise_weight, grad_bias)``; ``grad_bias`` is None when ``bias=False``."""
    op = "separable_conv2d"
    params = _conv_params(op, 2, stride, padding, dilation, 1, padding_mode, flip, algorithm)
    x, dw, pw = _separable_arrays(op, x, depthwise_weight, pointwise_weight)
    grad_out = _array(grad_out, op, "grad_out")
    return _core.separable_conv_backward(grad_out, x, dw, pw, _want_bias(bias, op), **params)


def conv_param_count(in_channels, out_channels, kernel_size, *, groups=1, bias=False,
                     separable=False, depth_multiplier=1):
    """Number of learnable parameters of a convolution layer.

    * standard:  K * c_in * c_out            (K = the product of kernel_size)
    * grouped:   K * c_in * c_out / groups
    * depthwise-separable (``separable=True``): K * c_in * m + c_in * m * c_out
      (a depthwise stage with multiplier m, then a 1x1 pointwise stage)
    plus ``c_out`` when ``bias`` is true. ``kernel_size`` is an int (square
    2-D kernel) or a tuple with one entry per spatial axis.
    """
    op = "conv_param_count"
    c_in = _int(in_channels, op, "in_channels")
    c_out = _int(out_channels, op, "out_channels")
    ks = [_int(k, op, "kernel_size") for k in kernel_size] if isinstance(
        kernel_size, (tuple, list)) else [_int(kernel_size, op, "kernel_size")] * 2
    g = _int(groups, op, "groups")
    m = _int(depth_multiplier, op, "depth_multiplier")
    for name, v in (("in_channels", c_in), ("out_channels", c_out), ("groups", g),
                    ("depth_multiplier", m), *(("kernel_size", k) for k in ks)):
        if v < 1:
            raise ValueError(f"{op}: {name} must be a positive integer, got {v}")
    if not ks:
        raise ValueError(f"{op}: kernel_size must have at least one entry")
    K = int(np.prod(ks, dtype=object))
    if separable:
        if g != 1:
            raise ValueError(f"{op}: groups does not apply to a separable convolution, got {g}")
        count = K * c_in * m + c_in * m * c_out
    else:
        if c_in % g or c_out % g:
            raise ValueError(f"{op}: groups={g} must divide in_channels={c_in} and "
                             f"out_channels={c_out}")
        count = K * c_in * c_out // g
    return count + (c_out if bias else 0)
