"""Differentiable ops written in NumPy, with no C++ kernel yet: layer and group
normalisation, channel dropout, interpolation, unfold/fold, max unpooling and
probability targets for cross-entropy. :mod:`cnncore.functional` re-exports them
under torch's names; each rule's forward and backward sit side by side, stating
what they save. Arguments are checked here, with torch's messages' content.
"""
import math

import numpy as np

from . import _random, ops
from .tensor import Function, Tensor

__all__ = ["layer_norm", "group_norm", "dropout2d", "interpolate", "unfold", "fold",
           "max_unpool2d", "soft_cross_entropy"]


def _t(x):
    return x if isinstance(x, Tensor) else Tensor(x)


def _int_pair(value, name, op, minimum=0):
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (int(value), int(value))
    if not (isinstance(value, (tuple, list)) and len(value) == 2 and
            all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if min(value) < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {tuple(value)}")
    return int(value[0]), int(value[1])


# ---------------------------------------------------------------------------
# normalisation over groups of axes: layer_norm, group_norm


class _LayerNormalize(Function):
    # Normalise x over its last axes (mean 0, biased variance 1), then scale and shift by
    # parameters of those axes' shape (NumPy broadcasting aligns them).
    # saves: x-hat, 1/std, the normalised axes and the weight
    def forward(self, x, weight, bias, axes, eps):
        mean = x.mean(axis=axes, keepdims=True)
        centred = x - mean
        var = np.mean(centred * centred, axis=axes, keepdims=True)
        self.rstd = 1.0 / np.sqrt(var + eps)
        self.xhat = centred * self.rstd
        self.axes, self.weight = axes, weight
        y = self.xhat
        if weight is not None:
            y = y * weight
        if bias is not None:
            y = y + bias
        return y.astype(x.dtype, copy=False)

    def backward(self, grad):
        axes, xhat = self.axes, self.xhat
        nx, nw, nb = self.needs_input_grad
        lead = tuple(range(grad.ndim - len(axes)))
        gw = (grad * xhat).sum(axis=lead) if nw else None
        gb = grad.sum(axis=lead) if nb else None
        gx = None
        if nx:
            g = grad * self.weight if self.weight is not None else grad
            gx = self.rstd * (g - g.mean(axis=axes, keepdims=True)
                              - xhat * (g * xhat).mean(axis=axes, keepdims=True))
        return gx, gw, gb


def _check_affine(op, t, shape, name):
    if t is None:
        return None
    t = _t(t)
    if tuple(t.shape) != tuple(shape):
        raise ValueError(f"{op}: {name} must have shape {tuple(shape)}, got {tuple(t.shape)}")
    return t


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalise over the last ``len(normalized_shape)`` axes, which must equal
    ``normalized_shape``; ``weight`` and ``bias`` have that shape."""
    x = _t(input)
    if isinstance(normalized_shape, (int, np.integer)):
        normalized_shape = (int(normalized_shape),)
    normalized_shape = tuple(int(n) for n in normalized_shape)
    k = len(normalized_shape)
    if k == 0 or x.ndim < k or tuple(x.shape[x.ndim - k:]) != normalized_shape:
        raise ValueError(f"layer_norm: expected an input whose last {k} dimensions are "
                         f"{normalized_shape}, got shape {tuple(x.shape)}")
    weight = _check_affine("layer_norm", weight, normalized_shape, "weight")
    bias = _check_affine("layer_norm", bias, normalized_shape, "bias")
    axes = tuple(range(x.ndim - k, x.ndim))
    return _LayerNormalize.apply(x, weight, bias, axes=axes, eps=float(eps))


class _GroupNormalize(Function):
    # saves: x-hat, 1/std per (image, group), the weight
    def forward(self, x, weight, bias, groups, eps):
        n, c = x.shape[:2]
        g = x.reshape(n, groups, -1)
        mean = g.mean(axis=2, keepdims=True)
        centred = g - mean
        var = np.mean(centred * centred, axis=2, keepdims=True)
        self.rstd = 1.0 / np.sqrt(var + eps)
        self.xhat = (centred * self.rstd).reshape(x.shape)
        self.groups, self.weight = groups, weight
        self.cshape = (1, c) + (1,) * (x.ndim - 2)
        y = self.xhat
        if weight is not None:
            y = y * weight.reshape(self.cshape)
        if bias is not None:
            y = y + bias.reshape(self.cshape)
        return y.astype(x.dtype, copy=False)

    def backward(self, grad):
        nx, nw, nb = self.needs_input_grad
        axes = (0,) + tuple(range(2, grad.ndim))
        gw = (grad * self.xhat).sum(axis=axes) if nw else None
        gb = grad.sum(axis=axes) if nb else None
        gx = None
        if nx:
            g = grad * self.weight.reshape(self.cshape) if self.weight is not None else grad
            n = grad.shape[0]
            gg = g.reshape(n, self.groups, -1)
            xh = self.xhat.reshape(n, self.groups, -1)
            gx = self.rstd * (gg - gg.mean(axis=2, keepdims=True)
                              - xh * (gg * xh).mean(axis=2, keepdims=True))
            gx = gx.reshape(grad.shape)
        return gx, gw, gb


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalise each image's channels in ``num_groups`` groups (over the group's channels
    and all positions); ``weight``/``bias`` per channel. Input (N, C, ...)."""
    x = _t(input)
    if x.ndim < 2:
        raise ValueError(f"group_norm: expected an input of shape (N, C, ...), got "
                         f"{tuple(x.shape)}")
    c = x.shape[1]
    if isinstance(num_groups, bool) or not isinstance(num_groups, (int, np.integer)) or \
            num_groups < 1 or c % num_groups:
        raise ValueError(f"group_norm: num_groups must be a positive divisor of the {c} "
                         f"channels, got {num_groups!r}")
    weight = _check_affine("group_norm", weight, (c,), "weight")
    bias = _check_affine("group_norm", bias, (c,), "bias")
    return _GroupNormalize.apply(x, weight, bias, groups=int(num_groups), eps=float(eps))


# ---------------------------------------------------------------------------
# dropout2d: whole channels


def dropout2d(input, p=0.5, training=True, *, seed=None, generator=None):
    """Zero whole channels (each (image, channel) plane with probability ``p``) and scale
    the rest by 1/(1-p): input (N, C, H, W) or unbatched (C, H, W). The channel mask comes
    from the same counter-based generator as :func:`cnncore.functional.dropout`."""
    x = _t(input)
    if not 0 <= p <= 1:
        raise ValueError(f"dropout2d: p must be in [0, 1], got {p}")
    if x.ndim not in (3, 4):
        raise ValueError(f"dropout2d: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got "
                         f"shape {tuple(x.shape)}")
    if not training or p == 0:
        return x
    if seed is None:
        seed = int(_random.resolve(generator).integers(0, 2**63 - 1))
    planes = x.shape[:x.ndim - 2] + (1, 1)
    mask = ops.dropout(np.ones(planes, x.dtype), p=p, training=True, seed=seed)
    return x * Tensor(mask)


# ---------------------------------------------------------------------------
# interpolate: nearest and (bi)linear resizing


def _source_index(out_size, in_size, scale, align_corners, mode):
    """Continuous source coordinate of each output position (torch's convention)."""
    i = np.arange(out_size, dtype=np.float64)
    if mode == "nearest":
        step = (1.0 / scale) if scale is not None else in_size / out_size
        return np.minimum(np.floor(i * step).astype(np.int64), in_size - 1)
    if align_corners:
        return i * ((in_size - 1) / (out_size - 1)) if out_size > 1 else np.zeros(out_size)
    step = (1.0 / scale) if scale is not None else in_size / out_size
    return np.maximum((i + 0.5) * step - 0.5, 0.0)


def _linear_matrix(out_size, in_size, scale, align_corners, dtype):
    """(out, in) matrix of linear-interpolation weights along one axis."""
    src = _source_index(out_size, in_size, scale, align_corners, "linear")
    lo = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    hi = np.minimum(lo + 1, in_size - 1)
    frac = src - lo
    m = np.zeros((out_size, in_size))
    rows = np.arange(out_size)
    np.add.at(m, (rows, lo), 1.0 - frac)
    np.add.at(m, (rows, hi), frac)
    return m.astype(dtype)


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Resize the spatial axes of (N, C, L), (N, C, H, W) or (N, C, D, H, W) inputs, as
    ``torch.nn.functional.interpolate``: ``mode`` "nearest", or "linear" / "bilinear" /
    "trilinear" (one mode word per rank, or any of them: the interpolation is linear along
    every spatial axis). Give ``size`` or ``scale_factor``."""
    x = _t(input)
    if x.ndim not in (3, 4, 5):
        raise ValueError(f"interpolate: expected a 3-, 4- or 5-D input (N, C, spatial...), got "
                         f"shape {tuple(x.shape)}")
    k = x.ndim - 2
    linear = {"linear": 3, "bilinear": 4, "trilinear": 5}
    if mode != "nearest" and mode not in linear:
        raise ValueError(f"interpolate: mode must be 'nearest', 'linear', 'bilinear' or "
                         f"'trilinear', got {mode!r}")
    if mode in linear and linear[mode] != x.ndim:
        raise ValueError(f"interpolate: mode {mode!r} needs a {linear[mode]}-D input, got "
                         f"shape {tuple(x.shape)}")
    if mode == "nearest" and align_corners is not None:
        raise ValueError("interpolate: align_corners applies to the linear modes only")
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    in_sizes = x.shape[2:]
    if size is not None:
        sizes = (size,) * k if isinstance(size, (int, np.integer)) else tuple(size)
        if len(sizes) != k or not all(isinstance(s, (int, np.integer)) and s > 0 for s in sizes):
            raise ValueError(f"interpolate: size must be {k} positive integers, got {size!r}")
        scales = (None,) * k
    else:
        scales = (scale_factor,) * k if isinstance(scale_factor, (int, float)) else \
            tuple(scale_factor)
        if len(scales) != k or not all(isinstance(s, (int, float)) and s > 0 and
                                       math.isfinite(s) for s in scales):
            raise ValueError(f"interpolate: scale_factor must be {k} positive numbers, got "
                             f"{scale_factor!r}")
        sizes = tuple(int(math.floor(n * s)) for n, s in zip(in_sizes, scales))
        if min(sizes) < 1:
            raise ValueError(f"interpolate: scale_factor {scale_factor!r} leaves an empty "
                             f"output for input size {tuple(in_sizes)}")
    out = x
    for axis, (n_out, n_in, s) in enumerate(zip(sizes, in_sizes, scales)):
        dim = 2 + axis
        if mode == "nearest":
            idx = _source_index(n_out, n_in, s, False, "nearest")
            index = (slice(None),) * dim + (idx,)
            out = out[index]
        else:
            m = Tensor(_linear_matrix(n_out, n_in, s, bool(align_corners), x.dtype))
            # move the axis last, multiply by the weights, move it back
            perm = list(range(out.ndim))
            perm[dim], perm[-1] = perm[-1], perm[dim]
            out = (out.permute(*perm) @ m.t()).permute(*perm)
    return out


# ---------------------------------------------------------------------------
# unfold / fold (im2col and its adjoint)


def _unfold_geometry(op, spatial, kernel_size, dilation, padding, stride):
    kh, kw = _int_pair(kernel_size, "kernel_size", op, 1)
    dh, dw = _int_pair(dilation, "dilation", op, 1)
    ph, pw = _int_pair(padding, "padding", op, 0)
    sh, sw = _int_pair(stride, "stride", op, 1)
    h, w = spatial
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if oh < 1 or ow < 1:
        raise ValueError(f"{op}: the {kh}x{kw} kernel (dilation {(dh, dw)}) does not fit the "
                         f"padded {h + 2 * ph}x{w + 2 * pw} input")
    rows = (np.arange(oh) * sh)[None, :, None, None] + (np.arange(kh) * dh)[:, None, None, None]
    cols = (np.arange(ow) * sw)[None, None, None, :] + (np.arange(kw) * dw)[None, None, :, None]
    # index arrays of shape (kh, oh, kw, ow) -> reordered to (kh, kw, oh, ow)
    rows = np.broadcast_to(rows, (kh, oh, kw, ow)).transpose(0, 2, 1, 3)
    cols = np.broadcast_to(cols, (kh, oh, kw, ow)).transpose(0, 2, 1, 3)
    return (kh, kw), (ph, pw), (oh, ow), rows.reshape(kh * kw, oh * ow), \
        cols.reshape(kh * kw, oh * ow)


class _Unfold(Function):
    # saves: the padded input shape, the padding and the index arrays
    def forward(self, x, rows, cols, pad):
        ph, pw = pad
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        self.shape, self.pad, self.rows, self.cols = xp.shape, pad, rows, cols
        n, c = x.shape[:2]
        return xp[:, :, rows, cols].reshape(n, c * rows.shape[0], rows.shape[1])

    def backward(self, grad):
        n, c, hp, wp = self.shape
        out = np.zeros(self.shape, grad.dtype)
        g = grad.reshape(n, c, self.rows.shape[0], self.rows.shape[1])
        np.add.at(out, (slice(None), slice(None), self.rows, self.cols), g)
        ph, pw = self.pad
        return (out[:, :, ph:hp - ph, pw:wp - pw],)


class _Fold(Function):
    # the adjoint of _Unfold. saves: the index arrays and the padding
    def forward(self, cols_in, rows, cols, pad, out_hw, channels):
        n = cols_in.shape[0]
        ph, pw = pad
        h, w = out_hw
        out = np.zeros((n, channels, h + 2 * ph, w + 2 * pw), cols_in.dtype)
        np.add.at(out, (slice(None), slice(None), rows, cols),
                  cols_in.reshape(n, channels, rows.shape[0], rows.shape[1]))
        self.rows, self.cols, self.pad = rows, cols, pad
        return out[:, :, ph:ph + h, pw:pw + w]

    def backward(self, grad):
        ph, pw = self.pad
        gp = np.pad(grad, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        n, c = grad.shape[:2]
        return (gp[:, :, self.rows, self.cols].reshape(n, c * self.rows.shape[0],
                                                       self.rows.shape[1]),)


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """Sliding blocks of a (N, C, H, W) input as columns: (N, C*kh*kw, L), L the number of
    block positions (im2col), as ``torch.nn.functional.unfold``; zero padding."""
    x = _t(input)
    if x.ndim != 4:
        raise ValueError(f"unfold: expected a 4-D input (N, C, H, W), got shape "
                         f"{tuple(x.shape)}")
    _, pad, _, rows, cols = _unfold_geometry("unfold", x.shape[2:], kernel_size, dilation,
                                             padding, stride)
    return _Unfold.apply(x, rows=rows, cols=cols, pad=pad)


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """Sum columns (N, C*kh*kw, L) back into a (N, C, H, W) image (the adjoint of
    :func:`unfold`; overlapping blocks add), ``output_size`` = (H, W)."""
    x = _t(input)
    h, w = _int_pair(output_size, "output_size", "fold", 1)
    (kh, kw), pad, (oh, ow), rows, cols = _unfold_geometry("fold", (h, w), kernel_size,
                                                           dilation, padding, stride)
    if x.ndim != 3 or x.shape[1] % (kh * kw) or x.shape[2] != oh * ow:
        raise ValueError(f"fold: expected an input (N, C*{kh * kw}, {oh * ow}) for a "
                         f"{kh}x{kw} kernel over {h}x{w}, got shape {tuple(x.shape)}")
    return _Fold.apply(x, rows=rows, cols=cols, pad=pad, out_hw=(h, w),
                       channels=x.shape[1] // (kh * kw))


# ---------------------------------------------------------------------------
# max_unpool2d


class _MaxUnpool(Function):
    # saves: the flat indices into each output plane
    def forward(self, x, flat, out_hw):
        n, c = x.shape[:2]
        plane = out_hw[0] * out_hw[1]
        out = np.zeros((n, c, plane), x.dtype)
        np.put_along_axis(out, flat.reshape(n, c, -1), x.reshape(n, c, -1), axis=2)
        self.flat, self.in_shape = flat.reshape(n, c, -1), x.shape
        return out.reshape(n, c, *out_hw)

    def backward(self, grad):
        n, c = grad.shape[:2]
        g = np.take_along_axis(grad.reshape(n, c, -1), self.flat, axis=2)
        return (g.reshape(self.in_shape),)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """The partial inverse of ``max_pool2d(..., return_indices=True)``: each value goes back
    to the position its index names (flat in its H x W plane), zeros elsewhere."""
    x = _t(input)
    idx = indices.data if isinstance(indices, Tensor) else np.asarray(indices)
    squeeze = x.ndim == 3
    if squeeze:
        x, idx = x.unsqueeze(0), idx[None]
    if x.ndim != 4 or idx.shape != tuple(x.shape):
        raise ValueError(f"max_unpool2d: expected a (N, C, H, W) input and indices of the "
                         f"same shape, got {tuple(x.shape)} and {idx.shape}")
    if not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"max_unpool2d: indices must be integers, got {idx.dtype}")
    kh, kw = _int_pair(kernel_size, "kernel_size", "max_unpool2d", 1)
    sh, sw = _int_pair(kernel_size if stride is None else stride, "stride", "max_unpool2d", 1)
    ph, pw = _int_pair(padding, "padding", "max_unpool2d", 0)
    h, w = x.shape[2:]
    default = ((h - 1) * sh - 2 * ph + kh, (w - 1) * sw - 2 * pw + kw)
    if output_size is None:
        out_hw = default
    else:
        out_hw = tuple(int(v) for v in tuple(output_size)[-2:])
        if len(out_hw) != 2 or any(abs(o - d) >= s for o, d, s in zip(out_hw, default,
                                                                       (sh, sw))):
            raise ValueError(f"max_unpool2d: output_size {tuple(output_size)} must be within a "
                             f"stride of the default {default}")
    plane = out_hw[0] * out_hw[1]
    if idx.size and (idx.min() < 0 or idx.max() >= plane):
        raise IndexError(f"max_unpool2d: an index is outside the {out_hw[0]}x{out_hw[1]} "
                         f"output plane (found {int(idx.min())}..{int(idx.max())})")
    out = _MaxUnpool.apply(x, flat=idx.astype(np.int64), out_hw=out_hw)
    return out.squeeze(0) if squeeze else out


# ---------------------------------------------------------------------------
# cross-entropy against probabilities


def soft_cross_entropy(logits, target, weight=None, reduction="mean", label_smoothing=0.0):
    """Cross-entropy of logits (N, C, ...) against class probabilities of the same shape:
    ``-sum_c w_c t_c log softmax(x)_c`` per sample, the mean over samples for "mean"
    (torch's rule for probability targets), with ``label_smoothing`` mixing ``t`` with
    the uniform distribution."""
    from . import functional as F
    x = _t(logits)
    t = target.data if isinstance(target, Tensor) else np.asarray(target)
    if t.shape != tuple(x.shape):
        raise ValueError(f"cross_entropy: probability targets must have the logits' shape "
                         f"{tuple(x.shape)}, got {t.shape}")
    if x.ndim < 1 or x.shape[1 if x.ndim > 1 else 0] == 0:
        raise ValueError(f"cross_entropy: no classes in logits of shape {tuple(x.shape)}")
    c = x.shape[1] if x.ndim > 1 else x.shape[0]
    t = t.astype(x.dtype, copy=False)
    if label_smoothing:
        t = t * (1 - label_smoothing) + label_smoothing / c
    cls_axis = 1 if x.ndim > 1 else 0
    logp = F.log_softmax(x, cls_axis)
    tt = Tensor(t)
    if weight is not None:
        w = np.asarray(weight.data if isinstance(weight, Tensor) else weight, x.dtype)
        if w.shape != (c,):
            raise ValueError(f"cross_entropy: weight must have one value per class ({c}), "
                             f"got shape {w.shape}")
        tt = tt * Tensor(w.reshape((1, c) + (1,) * (x.ndim - 2)) if x.ndim > 1 else w)
    return F._reduce(-(tt * logp).sum(cls_axis), reduction)
