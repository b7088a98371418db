"""Unshared (locally connected) and tiled 2-D convolution (NumPy in, NumPy out).

Both give every output position its own kernel from a small set::

    y[n, o, i, j] = bias[o, i % tH, j % tW]
                  + sum_{c,a,b} weight[i % tH, j % tW, o, c, a', b'] * xpad[n, c, i*sH + a*dH, j*sW + b*dW]

with ``a' = a`` (cross-correlation) or ``kH-1-a`` (``flip=True``). ``tiled_conv2d``
(Ngiam et al., 2010) takes the tile ``(tH, tW)`` as an argument; ``local_conv2d`` is the
tiled convolution whose tile is the output size, one kernel per output position. Padding,
stride, dilation, ``padding_mode`` and ``flip`` mean what they mean for ``conv2d``
(docs/conv2d.md); ``conv2d_output_shape`` gives ``H_out, W_out`` for building weights.
"""
import numpy as np

from .. import _core
from ._common import _PADDING_MODES, _array, _padding, _per_axis, _want_bias, _word

__all__ = ["local_conv2d", "local_conv2d_backward", "tiled_conv2d", "tiled_conv2d_backward"]

_ALGORITHMS = ("auto", "reference", "im2col")


def _tile(tile, op):
    """(tH, tW) of a tiled convolution (positivity is checked in C++)."""
    if tile is None:
        raise TypeError(f"{op}: tile must be an integer or a tuple of 2 integers (tH, tW), got None")
    return _per_axis(tile, 2, op, "tile")


def _params(op, tile, stride, padding, dilation, padding_mode, flip, algorithm):
    """Keyword arguments of the _core functions; tile=[] selects local_conv2d."""
    pad, preset = _padding(padding, 2, op)
    if not isinstance(flip, (bool, np.bool_)):
        raise TypeError(f"{op}: flip must be a bool, got {type(flip).__name__}")
    return dict(
        tile=tile,
        stride=_per_axis(stride, 2, op, "stride"),
        dilation=_per_axis(dilation, 2, op, "dilation"),
        padding=pad,
        preset=preset,
        padding_mode=_word(padding_mode, _PADDING_MODES, op, "padding_mode"),
        flip=bool(flip),
        algorithm=_word(algorithm, _ALGORITHMS, op, "algorithm"),
    )


def _forward(op, x, weight, bias, params):
    x = _array(x, op, "x")
    weight = _array(weight, op, "weight")
    if bias is not None:
        bias = _array(bias, op, "bias")
    return _core.local_conv_forward(x, weight, bias, **params)


def _backward(op, grad_out, x, weight, bias, params):
    x = _array(x, op, "x")
    weight = _array(weight, op, "weight")
    grad_out = _array(grad_out, op, "grad_out")
    return _core.local_conv_backward(grad_out, x, weight, _want_bias(bias, op), **params)


# ---------------------------------------------------------------------------
# local_conv2d


def local_conv2d(x, weight, bias=None, *, stride=1, padding=0, dilation=1,
                 padding_mode="zeros", flip=False, algorithm="auto"):
    """Locally connected (unshared) convolution of ``x`` (N, C_in, H, W).

    ``weight`` is (H_out, W_out, C_out, C_in, kH, kW): one kernel per output position;
    ``bias`` (optional) is (C_out, H_out, W_out). Returns (N, C_out, H_out, W_out).
    ``algorithm``: ``"auto"``, ``"reference"`` (the naive loop nest) or ``"im2col"``.
    """
    op = "local_conv2d"
    params = _params(op, [], stride, padding, dilation, padding_mode, flip, algorithm)
    return _forward(op, x, weight, bias, params)


def local_conv2d_backward(grad_out, x, weight, *, stride=1, padding=0, dilation=1,
                          padding_mode="zeros", flip=False, bias=True, algorithm="auto"):
    """Gradients of :func:`local_conv2d` given ``grad_out`` = dL/d(output).

    Returns ``(grad_x, grad_weight, grad_bias)``; ``grad_bias`` (C_out, H_out, W_out) is
    None when ``bias=False``. The keywords must be those of the forward call.
    """
    op = "local_conv2d"
    params = _params(op, [], stride, padding, dilation, padding_mode, flip, algorithm)
    return _backward(op, grad_out, x, weight, bias, params)


# ---------------------------------------------------------------------------
# tiled_conv2d


def tiled_conv2d(x, weight, bias=None, *, tile, stride=1, padding=0, dilation=1,
                 padding_mode="zeros", flip=False, algorithm="auto"):
    """Tiled convolution (Ngiam et al., 2010) of ``x`` (N, C_in, H, W).

    ``tile`` is an int or ``(tH, tW)``; ``weight`` is (tH, tW, C_out, C_in, kH, kW) and
    output position (i, j) uses kernel ``weight[i % tH, j % tW]``; ``bias`` (optional) is
    (C_out, tH, tW), entry ``bias[o, i % tH, j % tW]`` likewise. Tile (1, 1) is
    ``conv2d``; tile (H_out, W_out) is ``local_conv2d``. A tile larger than the output
    is allowed (the kernels it never reaches get zero gradient).
    """
    op = "tiled_conv2d"
    params = _params(op, _tile(tile, op), stride, padding, dilation, padding_mode, flip, algorithm)
    return _forward(op, x, weight, bias, params)


def tiled_conv2d_backward(grad_out, x, weight, *, tile, stride=1, padding=0, dilation=1,
                          padding_mode="zeros", flip=False, bias=True, algorithm="auto"):
    """Gradients of :func:`tiled_conv2d` given ``grad_out`` = dL/d(output).

    Returns ``(grad_x, grad_weight, grad_bias)``; ``grad_bias`` (C_out, tH, tW) is None
    when ``bias=False``. The keywords must be those of the forward call.
    """
    op = "tiled_conv2d"
    params = _params(op, _tile(tile, op), stride, padding, dilation, padding_mode, flip, algorithm)
    return _backward(op, grad_out, x, weight, bias, params)
