"""Pooling ops (NumPy in, NumPy out); see docs/ops.md, section "Pooling".

Max, average, Lp and Gaussian-weighted average pooling over 1, 2 or 3 spatial
axes, adaptive average/max pooling and global pooling. Every op ``name`` has a
twin ``name_backward(grad_out, x, <same keywords>)`` returning ``grad_x``.
All of them run on one C++ implementation (``PoolParams``) for every rank.
"""
import numpy as np

from .. import _core
from ._common import (_array, _bool, _int, _padding, _per_axis, _real,
                      _word)

_ALGORITHMS = ("auto", "reference", "direct")
_NAMES = ("max_pool", "avg_pool", "lp_pool", "weighted_avg_pool", "adaptive_avg_pool",
          "adaptive_max_pool", "global_avg_pool", "global_max_pool")

__all__ = [f"{name}{nd}d{suffix}" for name in _NAMES for nd in (1, 2, 3)
           for suffix in ("", "_backward")]
__all__ += ["pool_output_shape"]


# ---------------------------------------------------------------------------
# argument normalisation


def _params(op, nd, kind, kernel_size=None, stride=None, padding=0, dilation=1, ceil_mode=False,
            output_size=None, count_include_pad=True, divisor_override=None, norm_type=2.0,
            sigma=None, algorithm="auto"):
    """Keyword arguments of _core.pool_* for one call: windowed unless output_size (a
    list of ints) is given."""
    windowed = output_size is None
    if windowed:
        if isinstance(padding, str):
            raise ValueError(f"{op}: padding must be an integer or a tuple of integers (pooling "
                             f"takes no named padding), got {padding!r}")
        pad, _ = _padding(padding, nd, op)
    else:
        pad = []
    if divisor_override is None:
        divisor = 0
    else:
        divisor = _int(divisor_override, op, "divisor_override")
        if divisor < 1:
            raise ValueError(f"{op}: divisor_override must be a positive integer or None, "
                             f"got {divisor}")
    if sigma is None:
        sig = []
    elif isinstance(sigma, (tuple, list)):
        if len(sigma) != nd:
            raise ValueError(f"{op}: sigma must be a number or a tuple of {nd} numbers, "
                             f"got {len(sigma)} values {tuple(sigma)!r}")
        sig = [_real(s, op, "sigma") for s in sigma]
    else:
        sig = [_real(sigma, op, "sigma")]
    return dict(
        kind=kind,
        kernel_size=_per_axis(kernel_size, nd, op, "kernel_size") if windowed else [],
        stride=[] if stride is None or not windowed else _per_axis(stride, nd, op, "stride"),
        padding=pad,
        dilation=_per_axis(dilation, nd, op, "dilation") if windowed else [],
        ceil_mode=_bool(ceil_mode, op, "ceil_mode"),
        output_size=[] if windowed else list(output_size),
        count_include_pad=_bool(count_include_pad, op, "count_include_pad"),
        divisor_override=divisor,
        norm_type=_real(norm_type, op, "norm_type"),
        sigma=sig,
        algorithm=_word(algorithm, _ALGORITHMS, op, "algorithm"),
        op=op,
        spatial_dims=nd,
    )


def _x(x, op, nd):
    return _array(x, op, "x")


def _grad_out(grad_out, x, op, nd):
    grad_out = _array(grad_out, op, "grad_out")
    return grad_out


def _output_size(output_size, x_shape, nd, op):
    """An int or a tuple (entries may be None: keep that input size) -> nd ints."""
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != nd:
            raise ValueError(f"{op}: output_size must be an integer or a tuple of {nd} integers "
                             f"(None keeps the input size), got {len(output_size)} values "
                             f"{tuple(output_size)!r}")
        return [int(x_shape[2 + a]) if v is None else _int(v, op, "output_size")
                for a, v in enumerate(output_size)]
    if output_size is None:
        raise TypeError(f"{op}: output_size must be an integer or a tuple of integers, got None")
    return [_int(output_size, op, "output_size")] * nd


def _indices(indices, op):
    if indices is None:
        return None
    if not isinstance(indices, np.ndarray) or indices.dtype != np.int64:
        kind = (f"dtype {indices.dtype}" if isinstance(indices, np.ndarray)
                else type(indices).__name__)
        raise TypeError(f"{op}: indices must be an int64 array (as returned with "
                        f"return_indices=True), got {kind}")
    return np.require(indices, requirements=["C", "A"])  # the core reads int64 directly


# ---------------------------------------------------------------------------
# the ops, one definition for every rank


def _make_max_pool(nd):
    op = f"max_pool{nd}d"

    def max_pool(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                 return_indices=False, *, algorithm="auto"):
        p = _params(op, nd, "max", kernel_size, stride, padding, dilation, ceil_mode,
                    algorithm=algorithm)
        return _core.pool_forward(_x(x, op, nd), _bool(return_indices, op, "return_indices"), **p)

    def max_pool_backward(grad_out, x, kernel_size, stride=None, padding=0, dilation=1,
                          ceil_mode=False, return_indices=False, *, indices=None,
                          algorithm="auto"):
        p = _params(op, nd, "max", kernel_size, stride, padding, dilation, ceil_mode,
                    algorithm=algorithm)
        _bool(return_indices, op, "return_indices")
        x = _x(x, op, nd)
        return _core.pool_backward(_grad_out(grad_out, x, op, nd), x, _indices(indices, op), **p)

    return max_pool, max_pool_backward


def _make_avg_pool(nd):
    op = f"avg_pool{nd}d"

    def avg_pool(x, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None, *, algorithm="auto"):
        p = _params(op, nd, "avg", kernel_size, stride, padding, 1, ceil_mode,
                    count_include_pad=count_include_pad, divisor_override=divisor_override,
                    algorithm=algorithm)
        return _core.pool_forward(_x(x, op, nd), False, **p)

    def avg_pool_backward(grad_out, x, kernel_size, stride=None, padding=0, ceil_mode=False,
                          count_include_pad=True, divisor_override=None, *, algorithm="auto"):
        p = _params(op, nd, "avg", kernel_size, stride, padding, 1, ceil_mode,
                    count_include_pad=count_include_pad, divisor_override=divisor_override,
                    algorithm=algorithm)
        x = _x(x, op, nd)
        return _core.pool_backward(_grad_out(grad_out, x, op, nd), x, None, **p)

    return avg_pool, avg_pool_backward


def _make_lp_pool(nd):
    op = f"lp_pool{nd}d"

    def lp_pool(x, norm_type, kernel_size, stride=None, padding=0, ceil_mode=False, *,
                algorithm="auto"):
        p = _params(op, nd, "lp", kernel_size, stride, padding, 1, ceil_mode,
                    norm_type=norm_type, algorithm=algorithm)
        return _core.pool_forward(_x(x, op, nd), False, **p)

    def lp_pool_backward(grad_out, x, norm_type, kernel_size, stride=None, padding=0,
                         ceil_mode=False, *, algorithm="auto"):
        p = _params(op, nd, "lp", kernel_size, stride, padding, 1, ceil_mode,
                    norm_type=norm_type, algorithm=algorithm)
        x = _x(x, op, nd)
        return _core.pool_backward(_grad_out(grad_out, x, op, nd), x, None, **p)

    return lp_pool, lp_pool_backward


def _make_weighted_avg_pool(nd):
    op = f"weighted_avg_pool{nd}d"

    def weighted_avg_pool(x, kernel_size, stride=None, padding=0, ceil_mode=False, sigma=None,
                          *, algorithm="auto"):
        p = _params(op, nd, "weighted_avg", kernel_size, stride, padding, 1, ceil_mode,
                    sigma=sigma, algorithm=algorithm)
        return _core.pool_forward(_x(x, op, nd), False, **p)

    def weighted_avg_pool_backward(grad_out, x, kernel_size, stride=None, padding=0,
                                   ceil_mode=False, sigma=None, *, algorithm="auto"):
        p = _params(op, nd, "weighted_avg", kernel_size, stride, padding, 1, ceil_mode,
                    sigma=sigma, algorithm=algorithm)
        x = _x(x, op, nd)
        return _core.pool_backward(_grad_out(grad_out, x, op, nd), x, None, **p)

    return weighted_avg_pool, weighted_avg_pool_backward


def _make_adaptive(nd, kind):
    op = f"adaptive_{kind}_pool{nd}d"

    def params(x, output_size, algorithm):
        x = _x(x, op, nd)
        p = _params(op, nd, kind, output_size=_output_size(output_size, x.shape, nd, op),
                    algorithm=algorithm)
        return x, p

    if kind == "max":
        def adaptive(x, output_size, return_indices=False, *, algorithm="auto"):
            x, p = params(x, output_size, algorithm)
            return _core.pool_forward(x, _bool(return_indices, op, "return_indices"), **p)

        def adaptive_backward(grad_out, x, output_size, return_indices=False, *, indices=None,
                              algorithm="auto"):
            _bool(return_indices, op, "return_indices")
            x, p = params(x, output_size, algorithm)
            return _core.pool_backward(_grad_out(grad_out, x, op, nd), x,
                                       _indices(indices, op), **p)
    else:
        def adaptive(x, output_size, *, algorithm="auto"):
            x, p = params(x, output_size, algorithm)
            return _core.pool_forward(x, False, **p)

        def adaptive_backward(grad_out, x, output_size, *, algorithm="auto"):
            x, p = params(x, output_size, algorithm)
            return _core.pool_backward(_grad_out(grad_out, x, op, nd), x, None, **p)

    return adaptive, adaptive_backward


def _make_global(nd, kind):
    op = f"global_{kind}_pool{nd}d"

    def params(x):
        return _x(x, op, nd), _params(op, nd, kind, output_size=[1] * nd)

    def forward(x):
        x, p = params(x)
        return _core.pool_forward(x, False, **p)

    def backward(grad_out, x):
        # (a grad_out of None once fell through to the forward pass)
        x, p = params(x)
        return _core.pool_backward(_grad_out(grad_out, x, op, nd), x, None, **p)

    return forward, backward


# ---------------------------------------------------------------------------
# the public ops: plain definitions over the rank-generic implementations above


_IMPL = {nd: {"max_pool": _make_max_pool(nd), "avg_pool": _make_avg_pool(nd),
              "lp_pool": _make_lp_pool(nd), "weighted_avg_pool": _make_weighted_avg_pool(nd),
              "adaptive_avg_pool": _make_adaptive(nd, "avg"),
              "adaptive_max_pool": _make_adaptive(nd, "max"),
              "global_avg_pool": _make_global(nd, "avg"),
              "global_max_pool": _make_global(nd, "max")}
         for nd in (1, 2, 3)}


def max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False, *, algorithm="auto"):
    """1-D max pooling of ``x`` (N, C, L): the maximum of each window (contract in the 2-D
    docstring and docs/ops.md)."""
    return _IMPL[1]["max_pool"][0](x, kernel_size, stride, padding, dilation, ceil_mode,
                                   return_indices, algorithm=algorithm)


def max_pool1d_backward(grad_out, x, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode=False, return_indices=False, *, indices=None, algorithm="auto"):
    """Gradient of :func:`max_pool1d`; returns ``grad_x``."""
    return _IMPL[1]["max_pool"][1](grad_out, x, kernel_size, stride, padding, dilation, ceil_mode,
                                   return_indices, indices=indices, algorithm=algorithm)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False, *, algorithm="auto"):
    """2-D max pooling of ``x`` (N, C, H, W).

    ``stride=None`` means ``stride = kernel_size``; ``padding`` (implicit -inf) is an int, one
    per axis or before/after per axis, each at most half the dilated kernel. ``ceil_mode``
    rounds the output size up (the last window must start inside the input or the left
    padding). With ``return_indices=True`` returns ``(y, indices)``: int64 flat positions of
    each maximum within its (n, c) input plane. The first maximum in scan order wins; NaN
    beats every number.
    """
    return _IMPL[2]["max_pool"][0](x, kernel_size, stride, padding, dilation, ceil_mode,
                                   return_indices, algorithm=algorithm)


def max_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode=False, return_indices=False, *, indices=None, algorithm="auto"):
    """Gradient of :func:`max_pool2d`: ``grad_out`` goes to the
    position of each window's maximum (recomputed from ``x``, or taken from ``indices`` as
    returned with ``return_indices=True``). Returns ``grad_x``.
    """
    return _IMPL[2]["max_pool"][1](grad_out, x, kernel_size, stride, padding, dilation, ceil_mode,
                                   return_indices, indices=indices, algorithm=algorithm)


def max_pool3d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False, *, algorithm="auto"):
    """3-D max pooling of ``x`` (N, C, D, H, W): the maximum of each window (contract in the 2-D
    docstring and docs/ops.md)."""
    return _IMPL[3]["max_pool"][0](x, kernel_size, stride, padding, dilation, ceil_mode,
                                   return_indices, algorithm=algorithm)


def max_pool3d_backward(grad_out, x, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode=False, return_indices=False, *, indices=None, algorithm="auto"):
    """Gradient of :func:`max_pool3d`; returns ``grad_x``."""
    return _IMPL[3]["max_pool"][1](grad_out, x, kernel_size, stride, padding, dilation, ceil_mode,
                                   return_indices, indices=indices, algorithm=algorithm)


def avg_pool1d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None, *, algorithm="auto"):
    """1-D average pooling of ``x`` (N, C, L), as torch."""
    return _IMPL[1]["avg_pool"][0](x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                                   divisor_override, algorithm=algorithm)


def avg_pool1d_backward(grad_out, x, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True, divisor_override=None, *, algorithm="auto"):
    """Gradient of :func:`avg_pool1d`; returns ``grad_x``."""
    return _IMPL[1]["avg_pool"][1](grad_out, x, kernel_size, stride, padding, ceil_mode,
                                   count_include_pad, divisor_override, algorithm=algorithm)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None, *, algorithm="auto"):
    """2-D average pooling of ``x`` (N, C, H, W) (as torch).

    The divisor is the window clipped to the padded input (``count_include_pad=True``), the
    number of taps inside the input (``False``), or ``divisor_override``.
    """
    return _IMPL[2]["avg_pool"][0](x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                                   divisor_override, algorithm=algorithm)


def avg_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True, divisor_override=None, *, algorithm="auto"):
    """Gradient of :func:`avg_pool2d`; returns ``grad_x``."""
    return _IMPL[2]["avg_pool"][1](grad_out, x, kernel_size, stride, padding, ceil_mode,
                                   count_include_pad, divisor_override, algorithm=algorithm)


def avg_pool3d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None, *, algorithm="auto"):
    """3-D average pooling of ``x`` (N, C, D, H, W), as torch."""
    return _IMPL[3]["avg_pool"][0](x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                                   divisor_override, algorithm=algorithm)


def avg_pool3d_backward(grad_out, x, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True, divisor_override=None, *, algorithm="auto"):
    """Gradient of :func:`avg_pool3d`; returns ``grad_x``."""
    return _IMPL[3]["avg_pool"][1](grad_out, x, kernel_size, stride, padding, ceil_mode,
                                   count_include_pad, divisor_override, algorithm=algorithm)


def lp_pool1d(x, norm_type, kernel_size, stride=None, padding=0, ceil_mode=False, *,
              algorithm="auto"):
    """1-D Lp pooling of ``x`` (N, C, L): ``(sum |x|^p)^(1/p)`` over each window (p =
    ``norm_type``)."""
    return _IMPL[1]["lp_pool"][0](x, norm_type, kernel_size, stride, padding, ceil_mode,
                                  algorithm=algorithm)


def lp_pool1d_backward(grad_out, x, norm_type, kernel_size, stride=None, padding=0,
                       ceil_mode=False, *, algorithm="auto"):
    """Gradient of :func:`lp_pool1d`; returns ``grad_x``."""
    return _IMPL[1]["lp_pool"][1](grad_out, x, norm_type, kernel_size, stride, padding, ceil_mode,
                                  algorithm=algorithm)


def lp_pool2d(x, norm_type, kernel_size, stride=None, padding=0, ceil_mode=False, *,
              algorithm="auto"):
    """2-D Lp pooling: ``(sum |x|^p)^(1/p)`` over each window (p = norm_type).

    ``norm_type`` >= 1 or ``inf`` (max of ``|x|``); 2 is L2 pooling. Padding (and the part
    of a ceil-mode window past the input) adds zeros. Unlike torch, ``|x|`` is used for every
    p and partial windows are not rescaled.
    """
    return _IMPL[2]["lp_pool"][0](x, norm_type, kernel_size, stride, padding, ceil_mode,
                                  algorithm=algorithm)


def lp_pool2d_backward(grad_out, x, norm_type, kernel_size, stride=None, padding=0,
                       ceil_mode=False, *, algorithm="auto"):
    """Gradient of :func:`lp_pool2d`: ``sign(x) (|x|/y)^(p-1)``
    per tap, and 0 for a window of zeros (y = 0), where torch gives NaN. Returns ``grad_x``.
    """
    return _IMPL[2]["lp_pool"][1](grad_out, x, norm_type, kernel_size, stride, padding, ceil_mode,
                                  algorithm=algorithm)


def lp_pool3d(x, norm_type, kernel_size, stride=None, padding=0, ceil_mode=False, *,
              algorithm="auto"):
    """3-D Lp pooling of ``x`` (N, C, D, H, W): ``(sum |x|^p)^(1/p)`` over each window (p =
    ``norm_type``)."""
    return _IMPL[3]["lp_pool"][0](x, norm_type, kernel_size, stride, padding, ceil_mode,
                                  algorithm=algorithm)


def lp_pool3d_backward(grad_out, x, norm_type, kernel_size, stride=None, padding=0,
                       ceil_mode=False, *, algorithm="auto"):
    """Gradient of :func:`lp_pool3d`; returns ``grad_x``."""
    return _IMPL[3]["lp_pool"][1](grad_out, x, norm_type, kernel_size, stride, padding, ceil_mode,
                                  algorithm=algorithm)


def weighted_avg_pool1d(x, kernel_size, stride=None, padding=0, ceil_mode=False, sigma=None, *,
                        algorithm="auto"):
    """1-D distance-weighted (Gaussian) average pooling of ``x`` (N, C, L)."""
    return _IMPL[1]["weighted_avg_pool"][0](x, kernel_size, stride, padding, ceil_mode, sigma,
                                            algorithm=algorithm)


def weighted_avg_pool1d_backward(grad_out, x, kernel_size, stride=None, padding=0,
                                 ceil_mode=False, sigma=None, *, algorithm="auto"):
    """Gradient of :func:`weighted_avg_pool1d`; returns ``grad_x``."""
    return _IMPL[1]["weighted_avg_pool"][1](grad_out, x, kernel_size, stride, padding, ceil_mode,
                                            sigma, algorithm=algorithm)


def weighted_avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, sigma=None, *,
                        algorithm="auto"):
    """2-D distance-weighted average pooling.

    Tap t of a window gets weight ``exp(-sum_a (t_a - (k_a-1)/2)^2 / (2 sigma_a^2))``, the
    weights normalised to sum to 1 over all taps of the kernel. ``sigma``: a number or one
    per axis, > 0; ``None`` means ``kernel_size / 4`` per axis. Padding taps (and taps of a
    ceil-mode window past the input) read zeros and keep their weight: the op is a fixed
    linear filter, a depthwise convolution with the normalised Gaussian.
    """
    return _IMPL[2]["weighted_avg_pool"][0](x, kernel_size, stride, padding, ceil_mode, sigma,
                                            algorithm=algorithm)


def weighted_avg_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0,
                                 ceil_mode=False, sigma=None, *, algorithm="auto"):
    """Gradient of :func:`weighted_avg_pool2d`; returns ``grad_x``."""
    return _IMPL[2]["weighted_avg_pool"][1](grad_out, x, kernel_size, stride, padding, ceil_mode,
                                            sigma, algorithm=algorithm)


def weighted_avg_pool3d(x, kernel_size, stride=None, padding=0, ceil_mode=False, sigma=None, *,
                        algorithm="auto"):
    """3-D distance-weighted (Gaussian) average pooling of ``x`` (N, C, D, H, W)."""
    return _IMPL[3]["weighted_avg_pool"][0](x, kernel_size, stride, padding, ceil_mode, sigma,
                                            algorithm=algorithm)


def weighted_avg_pool3d_backward(grad_out, x, kernel_size, stride=None, padding=0,
                                 ceil_mode=False, sigma=None, *, algorithm="auto"):
    """Gradient of :func:`weighted_avg_pool3d`; returns ``grad_x``."""
    return _IMPL[3]["weighted_avg_pool"][1](grad_out, x, kernel_size, stride, padding, ceil_mode,
                                            sigma, algorithm=algorithm)


def adaptive_avg_pool1d(x, output_size, *, algorithm="auto"):
    """1-D adaptive average pooling of ``x`` (N, C, L) to ``output_size``."""
    return _IMPL[1]["adaptive_avg_pool"][0](x, output_size, algorithm=algorithm)


def adaptive_avg_pool1d_backward(grad_out, x, output_size, *, algorithm="auto"):
    """Gradient of :func:`adaptive_avg_pool1d`; returns ``grad_x``."""
    return _IMPL[1]["adaptive_avg_pool"][1](grad_out, x, output_size, algorithm=algorithm)


def adaptive_avg_pool2d(x, output_size, *, algorithm="auto"):
    """2-D adaptive avg pooling of ``x`` (N, C, H, W).

    ``output_size``: an int or one per axis (``None`` keeps that input size). Output i on an
    axis of n inputs and m outputs pools ``[floor(i*n/m), ceil((i+1)*n/m))``, as torch.
    """
    return _IMPL[2]["adaptive_avg_pool"][0](x, output_size, algorithm=algorithm)


def adaptive_avg_pool2d_backward(grad_out, x, output_size, *, algorithm="auto"):
    """Gradient of :func:`adaptive_avg_pool2d`; returns ``grad_x``."""
    return _IMPL[2]["adaptive_avg_pool"][1](grad_out, x, output_size, algorithm=algorithm)


def adaptive_avg_pool3d(x, output_size, *, algorithm="auto"):
    """3-D adaptive average pooling of ``x`` (N, C, D, H, W) to ``output_size``."""
    return _IMPL[3]["adaptive_avg_pool"][0](x, output_size, algorithm=algorithm)


def adaptive_avg_pool3d_backward(grad_out, x, output_size, *, algorithm="auto"):
    """Gradient of :func:`adaptive_avg_pool3d`; returns ``grad_x``."""
    return _IMPL[3]["adaptive_avg_pool"][1](grad_out, x, output_size, algorithm=algorithm)


def adaptive_max_pool1d(x, output_size, return_indices=False, *, algorithm="auto"):
    """1-D adaptive max pooling of ``x`` (N, C, L) to ``output_size``."""
    return _IMPL[1]["adaptive_max_pool"][0](x, output_size, return_indices, algorithm=algorithm)


def adaptive_max_pool1d_backward(grad_out, x, output_size, return_indices=False, *, indices=None,
                                 algorithm="auto"):
    """Gradient of :func:`adaptive_max_pool1d`; returns ``grad_x``."""
    return _IMPL[1]["adaptive_max_pool"][1](grad_out, x, output_size, return_indices,
                                            indices=indices, algorithm=algorithm)


def adaptive_max_pool2d(x, output_size, return_indices=False, *, algorithm="auto"):
    """2-D adaptive max pooling of ``x`` (N, C, H, W).

    ``output_size``: an int or one per axis (``None`` keeps that input size). Output i on an
    axis of n inputs and m outputs pools ``[floor(i*n/m), ceil((i+1)*n/m))``, as torch.
    """
    return _IMPL[2]["adaptive_max_pool"][0](x, output_size, return_indices, algorithm=algorithm)


def adaptive_max_pool2d_backward(grad_out, x, output_size, return_indices=False, *, indices=None,
                                 algorithm="auto"):
    """Gradient of :func:`adaptive_max_pool2d`; returns ``grad_x``."""
    return _IMPL[2]["adaptive_max_pool"][1](grad_out, x, output_size, return_indices,
                                            indices=indices, algorithm=algorithm)


def adaptive_max_pool3d(x, output_size, return_indices=False, *, algorithm="auto"):
    """3-D adaptive max pooling of ``x`` (N, C, D, H, W) to ``output_size``."""
    return _IMPL[3]["adaptive_max_pool"][0](x, output_size, return_indices, algorithm=algorithm)


def adaptive_max_pool3d_backward(grad_out, x, output_size, return_indices=False, *, indices=None,
                                 algorithm="auto"):
    """Gradient of :func:`adaptive_max_pool3d`; returns ``grad_x``."""
    return _IMPL[3]["adaptive_max_pool"][1](grad_out, x, output_size, return_indices,
                                            indices=indices, algorithm=algorithm)


def global_avg_pool1d(x):
    """Mean over every spatial axis of ``x`` (N, C, L) -> (N, C, 1...); ``adaptive_avg_pool1d(x,
    1)``."""
    return _IMPL[1]["global_avg_pool"][0](x)


def global_avg_pool1d_backward(grad_out, x):
    """Gradient of :func:`global_avg_pool1d`; returns ``grad_x``."""
    return _IMPL[1]["global_avg_pool"][1](grad_out, x)


def global_avg_pool2d(x):
    """Mean over every spatial axis of ``x`` (N, C, H, W) -> (N, C, 1...);
    ``adaptive_avg_pool2d(x, 1)``."""
    return _IMPL[2]["global_avg_pool"][0](x)


def global_avg_pool2d_backward(grad_out, x):
    """Gradient of :func:`global_avg_pool2d`; returns ``grad_x``."""
    return _IMPL[2]["global_avg_pool"][1](grad_out, x)


def global_avg_pool3d(x):
    """Mean over every spatial axis of ``x`` (N, C, D, H, W) -> (N, C, 1...);
    ``adaptive_avg_pool3d(x, 1)``."""
    return _IMPL[3]["global_avg_pool"][0](x)


def global_avg_pool3d_backward(grad_out, x):
    """Gradient of :func:`global_avg_pool3d`; returns ``grad_x``."""
    return _IMPL[3]["global_avg_pool"][1](grad_out, x)


def global_max_pool1d(x):
    """Maximum over every spatial axis of ``x`` (N, C, L) -> (N, C, 1...);
    ``adaptive_max_pool1d(x, 1)``."""
    return _IMPL[1]["global_max_pool"][0](x)


def global_max_pool1d_backward(grad_out, x):
    """Gradient of :func:`global_max_pool1d` (to the first maximum); returns ``grad_x``."""
    return _IMPL[1]["global_max_pool"][1](grad_out, x)


def global_max_pool2d(x):
    """Maximum over every spatial axis of ``x`` (N, C, H, W) -> (N, C, 1...);
    ``adaptive_max_pool2d(x, 1)``."""
    return _IMPL[2]["global_max_pool"][0](x)


def global_max_pool2d_backward(grad_out, x):
    """Gradient of :func:`global_max_pool2d` (to the first maximum); returns ``grad_x``."""
    return _IMPL[2]["global_max_pool"][1](grad_out, x)


def global_max_pool3d(x):
    """Maximum over every spatial axis of ``x`` (N, C, D, H, W) -> (N, C, 1...);
    ``adaptive_max_pool3d(x, 1)``."""
    return _IMPL[3]["global_max_pool"][0](x)


def global_max_pool3d_backward(grad_out, x):
    """Gradient of :func:`global_max_pool3d` (to the first maximum); returns ``grad_x``."""
    return _IMPL[3]["global_max_pool"][1](grad_out, x)


_KINDS = {"max": "max", "avg": "avg", "lp": "lp", "weighted_avg": "weighted_avg"}


def pool_output_shape(input_shape, kind, kernel_size=None, stride=None, padding=0, dilation=1,
                      ceil_mode=False, *, output_size=None):
    """Output shape (N, C, out...) of a pooling of an array of shape ``input_shape``.

    ``kind``: ``"max"``, ``"avg"``, ``"lp"`` or ``"weighted_avg"``; give ``kernel_size``
    (windowed) or ``output_size`` (adaptive max/avg). Validates like the ops do.
    """
    op = "pool_output_shape"
    try:
        shape = tuple(_int(s, op, "input_shape") for s in input_shape)
    except TypeError:
        raise TypeError(f"{op}: input_shape must be a sequence of integers, "
                        f"got {input_shape!r}") from None
    if not 3 <= len(shape) <= 5:
        raise ValueError(f"{op}: input_shape must have 3, 4 or 5 entries (N, C, spatial...), "
                         f"got {len(shape)}")
    nd = len(shape) - 2
    kind = _word(kind, tuple(_KINDS), op, "kind")
    if (kernel_size is None) == (output_size is None):
        raise ValueError(f"{op}: give exactly one of kernel_size (windowed) and output_size "
                         f"(adaptive)")
    if output_size is not None:
        p = _params(op, nd, kind, output_size=_output_size(output_size, shape, nd, op))
    else:
        p = _params(op, nd, kind, kernel_size, stride, padding, dilation, ceil_mode)
    return tuple(_core.pool_output_shape(list(shape), **p))
