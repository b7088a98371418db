"""Padding of the spatial axes (NumPy in, NumPy out)."""
import numbers

from .. import _core
from ._common import (_PADDING_MODES, _array, _float_array, _int, _same_dtype,
                      _torch_pad_order, _word)

__all__ = ["pad", "pad_backward"]


def _pad_args(x, pad, mode, value, op="pad"):
    nd = x.ndim - 2
    if nd not in (1, 2, 3):
        raise ValueError(f"{op}: x must have 3, 4 or 5 dimensions (N, C, spatial...), "
                         f"got {x.ndim} with shape {x.shape}")
    if isinstance(pad, (tuple, list)):
        vals = [_int(v, op, "pad") for v in pad]
        if len(vals) % 2 or not 2 <= len(vals) <= 2 * nd:
            raise ValueError(f"{op}: pad must be an integer or before/after pairs for up to "
                             f"x's {nd} spatial axes, last axis first as in torch's F.pad "
                             f"((left, right, top, bottom) in 2-D), got {len(vals)} values")
        vals = [0, 0] * (nd - len(vals) // 2) + _torch_pad_order(vals)
    else:
        vals = [_int(pad, op, "pad")] * (2 * nd)
    mode = "zeros" if mode == "constant" else _word(mode, _PADDING_MODES, op, "mode")
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{op}: value must be a real number, got {type(value).__name__}")
    if value != 0 and mode != "zeros":
        raise ValueError(f"{op}: value only applies to mode='zeros' (or 'constant'), got mode={mode!r}")
    return vals, mode, float(value)


def pad(x, pad, mode="zeros", value=0.0):
    """Pad the spatial axes of ``x`` (N, C, spatial...).

    ``pad`` is an int (every side) or before/after pairs listed last axis first, as
    ``torch.nn.functional.pad``: ``(left, right)`` pads only the last axis,
    ``(left, right, top, bottom)`` the last two, and so on (every cnncore function
    that takes before/after pairs lists them this way). ``mode``: ``"zeros"`` (alias ``"constant"``,
    filled with ``value``), ``"reflect"`` (edge not repeated), ``"replicate"``,
    ``"circular"``, ``"symmetric"`` (edge repeated, numpy's ``"symmetric"``).
    """
    x = _float_array(x, "pad", "x")
    vals, mode, value = _pad_args(x, pad, mode, value)
    return _core.pad_forward(x, vals, mode, value)


def pad_backward(grad_out, x, pad, mode="zeros", value=0.0):
    """Gradient of :func:`pad` with respect to ``x``: each padded element's
    gradient is added back onto the element it copies."""
    x = _float_array(x, "pad", "x")
    grad_out = _array(grad_out, "pad", "grad_out")
    _same_dtype("pad", "x", x, grad_out=grad_out)
    vals, mode, _ = _pad_args(x, pad, mode, value)
    return _core.pad_backward(grad_out, list(x.shape), vals, mode)
