"""Transposed convolution ops (NumPy in, NumPy out): the adjoint of convolution
with the same weights, 1-3 spatial axes on one C++ implementation; see docs/ops.md.
"""
import numpy as np

from .. import _core
from ._common import (_ALGORITHMS, _PADDING_MODES, _array, _int, _layout, _padding, _per_axis,
                      _shape_arg, _want_bias, _weight_layout, _word)

__all__ = [
    "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "conv_transpose1d_backward", "conv_transpose2d_backward", "conv_transpose3d_backward",
    "conv_transpose1d_output_shape", "conv_transpose2d_output_shape",
    "conv_transpose3d_output_shape",
]

_WEIGHT = "C_in", "C_out/groups"


def _params(op, nd, stride, padding, output_padding, groups, dilation, algorithm):
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


def _adjoint_kw(op, nd, stride, padding, groups, dilation, padding_mode, flip, algorithm):
    """The convolution whose adjoint this transposed convolution is, when it pads with a
    mode other than zeros or flips the kernel: the core's transposed kernels know neither,
    so these run as that convolution's backward (forward) and forward (backward)."""
    if not isinstance(flip, (bool, np.bool_)):
        raise TypeError(f"{op}: flip must be a bool, got {type(flip).__name__}")
    mode = _word(padding_mode, _PADDING_MODES, op, "padding_mode")
    if mode == "zeros" and not flip:
        return None
    return dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
                padding_mode=mode, flip=bool(flip), algorithm=algorithm)


def _conv_ops(nd):
    from . import _conv
    return getattr(_conv, f"conv{nd}d"), getattr(_conv, f"conv{nd}d_backward")


def _forward(nd, x, weight, bias, stride, padding, output_padding, groups, dilation, algorithm,
             padding_mode="zeros", flip=False):
    op = f"conv_transpose{nd}d"
    params = _params(op, nd, stride, padding, output_padding, groups, dilation, algorithm)
    conv_kw = _adjoint_kw(op, nd, stride, padding, groups, dilation, padding_mode, flip,
                          algorithm)
    if conv_kw is not None:
        x = _array(x, op, "x")
        weight = _array(weight, op, "weight")
        shape = _output_shape(nd, x.shape, weight.shape, stride, padding, output_padding,
                              groups, dilation)
        # y = A^T x with A the convolution of an input of y's shape (only its shape is read)
        _, conv_backward = _conv_ops(nd)
        y, _, _ = conv_backward(x, np.zeros(shape, x.dtype), weight, bias=False,
                                weight_grad=False, **conv_kw)
        if bias is not None:
            bias = _array(bias, op, "bias")
            if bias.shape != (shape[1],):
                raise ValueError(f"{op}: bias must have shape ({shape[1]},), got {bias.shape}")
            y += bias.reshape((1, -1) + (1,) * nd).astype(y.dtype, copy=False)
        return y
    x = _array(x, op, "x")
    weight = _array(weight, op, "weight")
    if bias is not None:
        bias = _array(bias, op, "bias")
    return _core.conv_transpose_forward(x, weight, bias, **params)


def _backward(nd, grad_out, x, weight, stride, padding, output_padding, groups, dilation,
              bias, algorithm, padding_mode="zeros", flip=False):
    op = f"conv_transpose{nd}d"
    params = _params(op, nd, stride, padding, output_padding, groups, dilation, algorithm)
    conv_kw = _adjoint_kw(op, nd, stride, padding, groups, dilation, padding_mode, flip,
                          algorithm)
    if conv_kw is not None:
        x = _array(x, op, "x")
        weight = _array(weight, op, "weight")
        grad_out = _array(grad_out, op, "grad_out")
        conv, conv_backward = _conv_ops(nd)
        # y = A_w^T x: dL/dx = A_w g, and dL/dw is A's weight gradient with the roles of
        # input (g) and output gradient (x) exchanged
        gx = conv(grad_out, weight, **conv_kw)
        _, gw, _ = conv_backward(x, grad_out, weight, bias=False, input_grad=False, **conv_kw)
        gb = grad_out.sum(axis=(0,) + tuple(range(2, grad_out.ndim))) \
            if _want_bias(bias, op) else None
        return gx, gw, gb
    x = _array(x, op, "x")
    weight = _array(weight, op, "weight")
    grad_out = _array(grad_out, op, "grad_out")
    return _core.conv_transpose_backward(grad_out, x, weight, _want_bias(bias, op), **params)


def _output_shape(nd, input_shape, weight_shape, stride, padding, output_padding, groups, dilation):
    op = f"conv_transpose{nd}d"
    params = _params(op, nd, stride, padding, output_padding, groups, dilation, "auto")
    src = _shape_arg(input_shape, op, "input_shape", nd + 2, _layout(nd))
    w = _shape_arg(weight_shape, op, "weight_shape", nd + 2, _weight_layout(nd, *_WEIGHT))
    return tuple(_core.conv_transpose_output_shape(src, w, **params))


def conv_transpose1d(x, weight, bias=None, *, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, padding_mode="zeros", flip=False, algorithm="auto"):
    """1-D transposed convolution of ``x`` (N, C_in, L) with ``weight`` (C_in, C_out/groups, kL),
    the adjoint of :func:`conv1d`; the keywords as for :func:`conv_transpose2d`."""
    return _forward(1, x, weight, bias, stride, padding, output_padding, groups,
                    dilation, algorithm, padding_mode, flip)


def conv_transpose2d(x, weight, bias=None, *, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, padding_mode="zeros", flip=False, algorithm="auto"):
    """2-D transposed convolution of ``x`` (N, C_in, H, W) with ``weight`` (C_in, C_out/groups, kH,
    kW).

    The adjoint of :func:`conv2d` with the same weights (PyTorch's
    convention): output size per axis
    ``(in-1)*stride - pad_before - pad_after + dilation*(k-1) + output_padding + 1``.
    ``padding`` crops the full result (int, one per axis, or before/after per
    axis); ``output_padding`` (smaller than stride or dilation) adds positions
    at the end of each axis. ``padding_mode`` and ``flip`` make it the adjoint of
    :func:`conv2d` with that padding mode (reflect, replicate, circular, symmetric:
    contributions that conv2d would read from the padded border fold back onto the
    pixels that border copies) or true convolution; PyTorch has neither. Those run as
    conv2d's backward pass (forward) and forward pass (backward), not on the transposed
    kernels.
    """
    return _forward(2, x, weight, bias, stride, padding, output_padding, groups,
                    dilation, algorithm, padding_mode, flip)


def conv_transpose3d(x, weight, bias=None, *, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, padding_mode="zeros", flip=False, algorithm="auto"):
    """3-D transposed convolution of ``x`` (N, C_in, D, H, W) with ``weight`` (C_in, C_out/groups,
    kD, kH, kW), the adjoint of :func:`conv3d`; the keywords as for :func:`conv_transpose2d`."""
    return _forward(3, x, weight, bias, stride, padding, output_padding, groups,
                    dilation, algorithm, padding_mode, flip)


def conv_transpose1d_backward(grad_out, x, weight, *, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1, padding_mode="zeros", flip=False, bias=True,
                              algorithm="auto"):
    """Gradients of :func:`conv_transpose1d`: ``(grad_x, grad_weight, grad_bias)``;
    ``grad_bias`` is None when ``bias=False``."""
    return _backward(1, grad_out, x, weight, stride, padding, output_padding, groups,
                     dilation, bias, algorithm, padding_mode, flip)


def conv_transpose2d_backward(grad_out, x, weight, *, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1, padding_mode="zeros", flip=False, bias=True,
                              algorithm="auto"):
    """Gradients of :func:`conv_transpose2d`: ``(grad_x, grad_weight, grad_bias)``;
    ``grad_bias`` is None when ``bias=False``."""
    return _backward(2, grad_out, x, weight, stride, padding, output_padding, groups,
                     dilation, bias, algorithm, padding_mode, flip)


def conv_transpose3d_backward(grad_out, x, weight, *, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1, padding_mode="zeros", flip=False, bias=True,
                              algorithm="auto"):
    """Gradients of :func:`conv_transpose3d`: ``(grad_x, grad_weight, grad_bias)``;
    ``grad_bias`` is None when ``bias=False``."""
    return _backward(3, grad_out, x, weight, stride, padding, output_padding, groups,
                     dilation, bias, algorithm, padding_mode, flip)


def conv_transpose1d_output_shape(input_shape, weight_shape, *, stride=1, padding=0,
                                  output_padding=0, groups=1, dilation=1):
    """Output shape of :func:`conv_transpose1d`, validating everything."""
    return _output_shape(1, input_shape, weight_shape, stride, padding, output_padding,
                         groups, dilation)


def conv_transpose2d_output_shape(input_shape, weight_shape, *, stride=1, padding=0,
                                  output_padding=0, groups=1, dilation=1):
    """Output shape of :func:`conv_transpose2d`, validating everything."""
    return _output_shape(2, input_shape, weight_shape, stride, padding, output_padding,
                         groups, dilation)


def conv_transpose3d_output_shape(input_shape, weight_shape, *, stride=1, padding=0,
                                  output_padding=0, groups=1, dilation=1):
    """Output shape of :func:`conv_transpose3d`, validating everything."""
    return _output_shape(3, input_shape, weight_shape, stride, padding, output_padding,
                         groups, dilation)
