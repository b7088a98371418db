"""Parameter initialisation (in place), like ``torch.nn.init``.

Every function takes ``generator=`` (a ``numpy.random.Generator`` or an int
seed); without one it draws from the package-wide generator, which
``cnncore.manual_seed(seed)`` resets. Fans follow torch: for a weight of shape
(out, in, k...) ``fan_in = in * prod(k)`` and ``fan_out = out * prod(k)``; the
locally connected layers pass their own ``fan=(fan_in, fan_out)``.
"""
import math

import numpy as np

from .. import _random

__all__ = [
    "calculate_gain", "uniform_", "normal_", "trunc_normal_", "constant_", "zeros_", "ones_",
    "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "skip_init",
]


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for a nonlinearity (torch's table)."""
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "sigmoid", "identity")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _fans(shape, fan):
    if fan is not None:
        return fan
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need at least 2 dimensions, got shape {shape}")
    rf = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * rf, shape[0] * rf


def _arr(tensor):
    return tensor.data if hasattr(tensor, "data") and not isinstance(tensor, np.ndarray) \
        else tensor


_skip = [0]


class skip_init:
    """``with nn.init.skip_init(): model = ...`` leaves parameters uninitialised
    (allocated lazily, so building even VGG-16 is instant): for counting
    parameters, or before loading a checkpoint."""

    def __enter__(self):
        _skip[0] += 1
        return self

    def __exit__(self, *exc):
        _skip[0] -= 1
        return False


def _fill(tensor, values):
    a = _arr(tensor)
    a[...] = values.astype(a.dtype, copy=False)
    return tensor


def _draw(tensor, generator, kind, loc, scale):
    """In place: ``loc + scale * U[0,1)`` or ``loc + scale * N(0,1)``, drawn
    directly in the parameter's dtype (no float64 temporary for big layers)."""
    if _skip[0]:
        return tensor
    a = _arr(tensor)
    rng = _random.resolve(generator)
    if a.dtype in (np.float32, np.float64) and a.flags.c_contiguous:
        if kind == "uniform":
            rng.random(out=a, dtype=a.dtype)
        else:
            rng.standard_normal(out=a, dtype=a.dtype)
        a *= scale
        a += loc
        return tensor
    values = rng.random(a.shape) if kind == "uniform" else rng.standard_normal(a.shape)
    return _fill(tensor, loc + scale * values)


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    return _draw(tensor, generator, "uniform", a, b - a)


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    return _draw(tensor, generator, "normal", mean, std)


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """Normal(mean, std) redrawn until inside [a, b]."""
    if _skip[0]:
        return tensor
    rng = _random.resolve(generator)
    shape = _arr(tensor).shape
    out = rng.normal(mean, std, shape)
    bad = (out < a) | (out > b)
    while bad.any():
        out[bad] = rng.normal(mean, std, int(bad.sum()))
        bad = (out < a) | (out > b)
    return _fill(tensor, out)


def constant_(tensor, value):
    if _skip[0]:
        return tensor
    _arr(tensor)[...] = value
    return tensor


def zeros_(tensor):
    return constant_(tensor, 0)


def ones_(tensor):
    return constant_(tensor, 1)


def xavier_uniform_(tensor, gain=1.0, generator=None, fan=None):
    """Glorot: U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(_arr(tensor).shape, fan)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -a, a, generator)


def xavier_normal_(tensor, gain=1.0, generator=None, fan=None):
    """Glorot: N(0, std), std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(_arr(tensor).shape, fan)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def _kaiming_std(shape, a, mode, nonlinearity, fan):
    fan_in, fan_out = _fans(shape, fan)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    n = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(max(n, 1))


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None,
                     fan=None):
    """He: U(-b, b), b = gain * sqrt(3 / fan)."""
    std = _kaiming_std(_arr(tensor).shape, a, mode, nonlinearity, fan)
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None,
                    fan=None):
    """He: N(0, gain / sqrt(fan))."""
    std = _kaiming_std(_arr(tensor).shape, a, mode, nonlinearity, fan)
    return normal_(tensor, 0.0, std, generator)


def default_(weight, bias=None, generator=None, fan=None):
    """torch's default for Linear/Conv: kaiming_uniform(a=sqrt(5)) on the weight,
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)) on the bias."""
    kaiming_uniform_(weight, a=math.sqrt(5), generator=generator, fan=fan)
    if bias is not None:
        fan_in, _ = _fans(_arr(weight).shape, fan)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        uniform_(bias, -bound, bound, generator)
