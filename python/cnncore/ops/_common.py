"""Argument normalisation shared by every op: the one place where Python
argument forms (ints, tuples, words) become what the C++ core takes, and
where dtype and rank problems become TypeError / ValueError."""
import numbers
import operator

import numpy as np

from .. import _core

_PADDING_WORDS = ("valid", "same", "full")
_PADDING_MODES = ("zeros", "reflect", "replicate", "circular", "symmetric")
_ALGORITHMS = ("auto", "reference", "im2col", "direct", "fft", "winograd", "winograd2", "winograd4",
               "winograd6")


_INT64_MIN, _INT64_MAX = -(2 ** 63), 2 ** 63 - 1


def _int(value, op, name, lo=_INT64_MIN, hi=_INT64_MAX):
    """An integer argument (not bool) in [lo, hi]; by default anything int64 holds."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be an integer, got bool")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{op}: {name} must be an integer or a tuple of integers, "
                        f"got {type(value).__name__} {value!r}") from None
    if not lo <= v <= hi:
        if (lo, hi) == (_INT64_MIN, _INT64_MAX):
            raise ValueError(f"{op}: {name} must fit in a 64-bit signed integer, got {v}")
        raise ValueError(f"{op}: {name} must be in [{lo}, {hi}], got {v}")
    return v


def _bool(value, op, name):
    """A bool argument (numpy bools too), or TypeError naming `name`."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be a bool, got {type(value).__name__}")
    return bool(value)


def _want_bias(bias, op):
    """A backward's ``bias`` flag (whether to return grad_bias), or TypeError."""
    if not isinstance(bias, (bool, np.bool_)):
        raise TypeError(f"{op}: bias must be a bool (whether to return grad_bias), "
                        f"got {type(bias).__name__}")
    return bool(bias)


def _real(value, op, name):
    """A real-number argument (not bool) as float, or TypeError naming `name`."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{op}: {name} must be a real number, got {type(value).__name__} {value!r}")
    return float(value)


def _per_axis(value, nd, op, name):
    """An int or an nd-tuple of ints -> list of nd ints (range checked in C++)."""
    if isinstance(value, (tuple, list)):
        if len(value) != nd:
            raise ValueError(f"{op}: {name} must be an integer or a tuple of {nd} integers, "
                             f"got {len(value)} values {tuple(value)!r}")
        return [_int(v, op, name) for v in value]
    return [_int(value, op, name)] * nd


def _torch_pad_order(vals):
    """Before/after pairs listed last axis first (``torch.nn.functional.pad``'s order:
    ``(left, right, top, bottom)`` in 2-D) -> the core's first-axis-first list."""
    pairs = [vals[i:i + 2] for i in range(0, len(vals), 2)][::-1]
    return [p for pair in pairs for p in pair]


def _padding(value, nd, op):
    """Padding forms -> (explicit [before, after] * nd list, first axis first, preset word).
    A tuple of nd ints pads each axis on both sides (first axis first, as torch's conv and
    pooling); a tuple of 2*nd ints gives before/after per axis, last axis first, as
    ``torch.nn.functional.pad`` lists them: ``(left, right, top, bottom)`` in 2-D."""
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
            return _torch_pad_order(vals), ""
        raise ValueError(f"{op}: padding must be an integer, a tuple of {nd} (per axis) or "
                         f"{2 * nd} (before/after per axis, last axis first as in F.pad) "
                         f"integers, or a word; got {len(vals)} values {tuple(value)!r}")
    v = _int(value, op, "padding")
    return [v] * (2 * nd), ""


def _word(value, choices, op, name):
    if not isinstance(value, str):
        raise TypeError(f"{op}: {name} must be a string, got {type(value).__name__}")
    if value not in choices:
        raise ValueError(f"{op}: {name} must be one of {', '.join(map(repr, choices))}, "
                         f"got {value!r}")
    return value


# Checked convolution keywords by their arguments: a network's layers pass the same ones on
# every call, and checking them anew was a tenth of a batch-1 forward's Python time. Only
# arguments of exact types are keys (ints, bools, strings, tuples of ints), so that a value
# equal to a valid one but of a rejected type (2.0, a tuple holding a float) is still checked
# and refused.
_CONV_PARAMS_CACHE = {}
_CONV_PARAMS_CACHE_SIZE = 1024


def _cache_key(args):
    key = []
    for a in args:
        t = type(a)
        if t is tuple:
            if not all(type(e) is int for e in a):
                return None
        elif t not in (int, bool, str):
            return None
        key.append((t, a))
    return tuple(key)


def _conv_params(op, nd, stride, padding, dilation, groups, padding_mode, flip, algorithm):
    args = (op, nd, stride, padding, dilation, groups, padding_mode, flip, algorithm)
    key = _cache_key(args)
    if key is not None:
        hit = _CONV_PARAMS_CACHE.get(key)
        if hit is not None:
            # (the per-axis lists copied too: a caller may change what it is given)
            return {k: list(v) if type(v) is list else v for k, v in hit.items()}
    params = _checked_conv_params(*args)
    if key is not None:
        if len(_CONV_PARAMS_CACHE) >= _CONV_PARAMS_CACHE_SIZE:
            _CONV_PARAMS_CACHE.clear()
        _CONV_PARAMS_CACHE[key] = {k: list(v) if type(v) is list else v for k, v in params.items()}
    return params


def _checked_conv_params(op, nd, stride, padding, dilation, groups, padding_mode, flip, algorithm):
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


def _array(value, op, name):
    """`value` as an ndarray for the core, which checks its dtype and shape (naming
    `op` and `name`) and makes the C-order copy of a non-contiguous or unaligned array
    within the call's memory budget."""
    return value if isinstance(value, (np.ndarray, _core.DeviceTensor)) else np.asarray(value)


_AXES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def _layout(nd, channels="C_in"):
    """"(N, C_in, H, W)" and friends, for messages."""
    return "(N, " + channels + ", " + ", ".join(_AXES[nd]) + ")"


def _weight_layout(nd, first="C_out", second="C_in/groups"):
    return f"({first}, {second}, " + ", ".join("k" + a for a in _AXES[nd]) + ")"


def _shape_arg(shape, op, name, n, layout):
    """A sequence of n ints (an array shape given by the user)."""
    try:
        shape = tuple(_int(s, op, name) for s in shape)
    except TypeError:
        raise TypeError(f"{op}: {name} must be a sequence of integers {layout}, "
                        f"got {shape!r}") from None
    if len(shape) != n:
        raise ValueError(f"{op}: {name} must have {n} entries {layout}, got {len(shape)}")
    return shape


def _float_array(value, op, name):
    """`value` as a float32/float64 ndarray, for the few ops that look at an array in
    Python before the core does (same message as the core's)."""
    arr = _array(value, op, name)
    if arr.dtype not in (np.float32, np.float64):
        raise TypeError(f"{op}: {name} must be a float32 or float64 array, got dtype {arr.dtype}")
    return arr


def _same_dtype(op, ref_name, ref, **others):
    """For the arguments only Python sees (the C++ op layer checks the rest)."""
    _float_array(ref, op, ref_name)
    for name, arr in others.items():
        if arr is not None:
            _float_array(arr, op, name)
        if arr is not None and arr.dtype != ref.dtype:
            raise TypeError(f"{op}: {name} has dtype {arr.dtype} but {ref_name} has {ref.dtype}; "
                            f"convert one of them so both match")


def _grad_pair(op, grad_out, x, x_name="x"):
    """(grad_out, x) as float arrays (their dtype agreement is checked in C++)."""
    return _array(grad_out, op, "grad_out"), _array(x, op, x_name)
