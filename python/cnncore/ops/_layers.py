"""Layer ops (NumPy in, NumPy out): activations, softmax, cross-entropy,
dropout, local response normalisation, batch normalisation, linear.

Definitions follow ``torch.nn.functional``; see docs/ops.md, section "Layers".
Every op ``name`` has ``name_backward(grad_out, <array inputs>, <same keywords>)``.
This module checks argument types and forms; shapes and values are validated
in C++ (``cnncore/layers.hpp``).
"""
import numbers

import numpy as np

from .. import _core
from ._common import _array as _common_array
from ._common import _int, _same_dtype, _word

__all__ = [
    "relu", "relu_backward",
    "leaky_relu", "leaky_relu_backward",
    "sigmoid", "sigmoid_backward",
    "tanh", "tanh_backward",
    "softmax", "softmax_backward",
    "log_softmax", "log_softmax_backward",
    "cross_entropy", "cross_entropy_backward",
    "nll_loss", "nll_loss_backward",
    "dropout", "dropout_backward",
    "local_response_norm", "local_response_norm_backward",
    "batch_norm", "batch_norm_backward",
    "linear", "linear_backward",
]

_REDUCTIONS = ("none", "mean", "sum")

# ---------------------------------------------------------------------------
# argument helpers


def _array(value, op, name):
    """_common._array, keeping 0-d arrays 0-d (np.ascontiguousarray makes them 1-d)."""
    arr = _common_array(value, op, name)
    return arr.reshape(()) if arr.ndim and np.ndim(value) == 0 else arr


def _real(value, op, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{op}: {name} must be a real number, got {type(value).__name__} {value!r}")
    return float(value)


def _flag(value, op, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be a bool, got {type(value).__name__}")
    return bool(value)


def _grad_pair(op, grad_out, x, x_name="x"):
    """(grad_out, x) as float arrays of one dtype."""
    x = _array(x, op, x_name)
    grad_out = _array(grad_out, op, "grad_out")
    _same_dtype(op, x_name, x, grad_out=grad_out)
    return grad_out, x


# ---------------------------------------------------------------------------
# activations


def _act_forward(op, x, slope=0.0):
    x = _array(x, op, "x")
    return _core.activation_forward(x, op, slope)


def _act_backward(op, grad_out, x, slope=0.0):
    grad_out, x = _grad_pair(op, grad_out, x)
    return _core.activation_backward(grad_out, x, op, slope)


def relu(x):
    """max(x, 0) elementwise."""
    return _act_forward("relu", x)


def relu_backward(grad_out, x):
    """grad_out where x > 0, else 0 (0 at x == 0)."""
    return _act_backward("relu", grad_out, x)


def leaky_relu(x, negative_slope=0.01):
    """x where x > 0, else negative_slope * x."""
    return _act_forward("leaky_relu", x, _real(negative_slope, "leaky_relu", "negative_slope"))


def leaky_relu_backward(grad_out, x, negative_slope=0.01):
    return _act_backward("leaky_relu", grad_out, x, _real(negative_slope, "leaky_relu", "negative_slope"))


def sigmoid(x):
    """1 / (1 + exp(-x)) elementwise."""
    return _act_forward("sigmoid", x)


def sigmoid_backward(grad_out, x):
    return _act_backward("sigmoid", grad_out, x)


def tanh(x):
    """tanh(x) elementwise."""
    return _act_forward("tanh", x)


def tanh_backward(grad_out, x):
    return _act_backward("tanh", grad_out, x)


# ---------------------------------------------------------------------------
# softmax


def softmax(x, dim=-1):
    """exp(x) / sum(exp(x)) along ``dim`` (computed stably, shifting by the maximum)."""
    x = _array(x, "softmax", "x")
    return _core.softmax_forward(x, _int(dim, "softmax", "dim"), False)


def softmax_backward(grad_out, x, dim=-1):
    grad_out, x = _grad_pair("softmax", grad_out, x)
    return _core.softmax_backward(grad_out, x, _int(dim, "softmax", "dim"), False)


def log_softmax(x, dim=-1):
    """log(softmax(x, dim)) computed as x - max - log(sum(exp(x - max)))."""
    x = _array(x, "log_softmax", "x")
    return _core.softmax_forward(x, _int(dim, "log_softmax", "dim"), True)


def log_softmax_backward(grad_out, x, dim=-1):
    grad_out, x = _grad_pair("log_softmax", grad_out, x)
    return _core.softmax_backward(grad_out, x, _int(dim, "log_softmax", "dim"), True)


# ---------------------------------------------------------------------------
# cross-entropy


def _targets(target, op):
    arr = target if isinstance(target, np.ndarray) else np.asarray(target)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{op}: target must be an integer array of class indices, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def _ce_args(op, input, target, weight, ignore_index, reduction, label_smoothing):
    input = _array(input, op, "input")
    target = _targets(target, op)
    if weight is not None:
        weight = _array(weight, op, "weight")
    _same_dtype(op, "input", input, weight=weight)
    return input, target, weight, dict(
        ignore_index=_int(ignore_index, op, "ignore_index"),
        reduction=_word(reduction, _REDUCTIONS, op, "reduction"),
        label_smoothing=_real(label_smoothing, op, "label_smoothing"),
    )


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0):
    """Cross-entropy between logits ``input`` (N, C) or (N, C, d...) and class indices
    ``target`` (N) or (N, d...), like ``torch.nn.functional.cross_entropy``.

    ``reduction="mean"`` divides by the total ``weight`` of the non-ignored targets (their
    count without ``weight``); "sum" and "mean" return a 0-d array, "none" the per-position
    losses.
    """
    op = "cross_entropy"
    input, target, weight, kw = _ce_args(op, input, target, weight, ignore_index, reduction,
                                         label_smoothing)
    return _core.cross_entropy_forward(input, target, weight, **kw)


def cross_entropy_backward(grad_out, input, target, weight=None, ignore_index=-100,
                           reduction="mean", label_smoothing=0.0):
    """Gradient of :func:`cross_entropy` with respect to ``input``.

    ``grad_out`` has the shape of the loss (0-d for "mean"/"sum"; a Python number is
    taken in the dtype of ``input``).
    """
    op = "cross_entropy"
    input, target, weight, kw = _ce_args(op, input, target, weight, ignore_index, reduction,
                                         label_smoothing)
    if isinstance(grad_out, numbers.Real) and not isinstance(grad_out, (bool, np.bool_, np.ndarray)):
        grad_out = np.asarray(grad_out, dtype=input.dtype)
    grad_out = _array(grad_out, op, "grad_out")
    _same_dtype(op, "input", input, grad_out=grad_out)
    return _core.cross_entropy_backward(grad_out, input, target, weight, **kw)


def _nll_args(op, input, target, weight, ignore_index, reduction):
    input = _array(input, op, "input")
    target = _targets(target, op)
    if weight is not None:
        weight = _array(weight, op, "weight")
    return input, target, weight, dict(ignore_index=_int(ignore_index, op, "ignore_index"),
                                       reduction=_word(reduction, _REDUCTIONS, op, "reduction"))


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood of log-probabilities ``input`` (N, C) or (N, C, d...) at class
    indices ``target`` (N) or (N, d...), like ``torch.nn.functional.nll_loss``: position n
    contributes ``-weight[t_n] * input[n, t_n]`` (0 where ``t_n == ignore_index``); "mean"
    divides by the total ``weight`` of the non-ignored targets."""
    input, target, weight, kw = _nll_args("nll_loss", input, target, weight, ignore_index,
                                          reduction)
    return _core.nll_loss_forward(input, target, weight, **kw)


def nll_loss_backward(grad_out, input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Gradient of :func:`nll_loss` with respect to ``input`` (``grad_out`` has the loss's
    shape; a Python number is taken in the dtype of ``input``)."""
    op = "nll_loss"
    input, target, weight, kw = _nll_args(op, input, target, weight, ignore_index, reduction)
    if isinstance(grad_out, numbers.Real) and not isinstance(grad_out, (bool, np.bool_, np.ndarray)):
        grad_out = np.asarray(grad_out, dtype=input.dtype)
    return _core.nll_loss_backward(_array(grad_out, op, "grad_out"), input, target, weight, **kw)


# ---------------------------------------------------------------------------
# dropout


def _dropout_args(op, p, training, seed):
    seed = _int(seed, op, "seed", 0, 2**64 - 1)
    return _real(p, op, "p"), _flag(training, op, "training"), seed


def dropout(x, p=0.5, training=True, *, seed):
    """Zero each element with probability ``p`` and scale the rest by 1 / (1 - p).

    The mask is a pure function of (``seed``, flat element index): the same seed gives
    the same mask for any thread count, and :func:`dropout_backward` recomputes it.
    ``training=False`` returns a copy of ``x``; ``p=1`` gives zeros.
    """
    op = "dropout"
    p, training, seed = _dropout_args(op, p, training, seed)
    return _core.dropout_forward(_array(x, op, "x"), p, training, seed)


def dropout_backward(grad_out, x, p=0.5, training=True, *, seed):
    op = "dropout"
    p, training, seed = _dropout_args(op, p, training, seed)
    grad_out, x = _grad_pair(op, grad_out, x)
    if grad_out.shape != x.shape:
        raise ValueError(f"{op}: grad_out must have the shape of x {x.shape}, got {grad_out.shape}")
    return _core.dropout_backward(grad_out, p, training, seed)


# ---------------------------------------------------------------------------
# local response normalisation


def _lrn_args(op, size, alpha, beta, k):
    return dict(size=_int(size, op, "size"), alpha=_real(alpha, op, "alpha"),
                beta=_real(beta, op, "beta"), k=_real(k, op, "k"))


def local_response_norm(x, size, alpha=1e-4, beta=0.75, k=1.0):
    """AlexNet's normalisation across channels, as ``torch.nn.functional.local_response_norm``:
    ``x[c] / (k + alpha/size * sum of x[c']**2 over c' in [c - size//2, c + (size-1)//2])**beta``.
    ``x`` is (N, C, spatial...) with at least one spatial axis.
    """
    op = "local_response_norm"
    kw = _lrn_args(op, size, alpha, beta, k)
    return _core.lrn_forward(_array(x, op, "x"), **kw)


def local_response_norm_backward(grad_out, x, size, alpha=1e-4, beta=0.75, k=1.0):
    op = "local_response_norm"
    kw = _lrn_args(op, size, alpha, beta, k)
    grad_out, x = _grad_pair(op, grad_out, x)
    return _core.lrn_backward(grad_out, x, **kw)


# ---------------------------------------------------------------------------
# batch normalisation


def _running_stat(value, op, name, training):
    """A running statistic; when it will be updated in place it must be a writeable,
    C-contiguous ndarray (a converted copy would be updated instead)."""
    if value is None:
        return None
    if training:
        if not isinstance(value, np.ndarray):
            raise TypeError(f"{op}: {name} must be a NumPy array (it is updated in place when "
                            f"training), got {type(value).__name__}")
        if value.dtype not in (np.float32, np.float64):
            raise TypeError(f"{op}: {name} must be a float32 or float64 array, got dtype {value.dtype}")
        if not value.flags.c_contiguous or not value.flags.writeable:
            raise ValueError(f"{op}: {name} must be a writeable C-contiguous array to be updated "
                             f"in place when training")
        return value
    return _array(value, op, name)


def _bn_args(op, x, running_mean, running_var, weight, bias, training, momentum, eps):
    training = _flag(training, op, "training")
    x = _array(x, op, "x")
    running_mean = _running_stat(running_mean, op, "running_mean", training)
    running_var = _running_stat(running_var, op, "running_var", training)
    weight = None if weight is None else _array(weight, op, "weight")
    bias = None if bias is None else _array(bias, op, "bias")
    _same_dtype(op, "x", x, running_mean=running_mean, running_var=running_var, weight=weight,
                bias=bias)
    return x, running_mean, running_var, weight, bias, dict(
        training=training, momentum=_real(momentum, op, "momentum"), eps=_real(eps, op, "eps"))


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalisation of ``x`` (N, C) or (N, C, spatial...) per channel, as
    ``torch.nn.functional.batch_norm``.

    ``training=True`` normalises with the batch mean and (biased) variance and updates
    ``running_mean`` / ``running_var`` in place (``r = (1 - momentum) * r + momentum *
    batch``, the variance unbiased); they may then be None (no update). ``training=False``
    uses the running statistics.
    """
    op = "batch_norm"
    x, rm, rv, w, b, kw = _bn_args(op, x, running_mean, running_var, weight, bias, training,
                                   momentum, eps)
    return _core.batch_norm_forward(x, rm, rv, w, b, **kw)


def batch_norm_backward(grad_out, x, running_mean, running_var, weight=None, bias=None,
                        training=False, momentum=0.1, eps=1e-5):
    """Gradients of :func:`batch_norm`: ``(grad_x, grad_weight, grad_bias)``, None for a
    ``weight`` / ``bias`` given as None. Uses the statistics the forward call used (the
    batch's, recomputed from ``x``, when training) and updates nothing."""
    op = "batch_norm"
    x, rm, rv, w, b, kw = _bn_args(op, x, running_mean, running_var, weight, bias, False,
                                   momentum, eps)
    kw["training"] = _flag(training, op, "training")
    grad_out = _array(grad_out, op, "grad_out")
    _same_dtype(op, "x", x, grad_out=grad_out)
    return _core.batch_norm_backward(grad_out, x, rm, rv, w, b, **kw)


# ---------------------------------------------------------------------------
# linear


def linear(x, weight, bias=None):
    """``x @ weight.T + bias`` for ``x`` (..., in), ``weight`` (out, in), ``bias`` (out)."""
    op = "linear"
    x = _array(x, op, "x")
    weight = _array(weight, op, "weight")
    if bias is not None:
        bias = _array(bias, op, "bias")
    _same_dtype(op, "x", x, weight=weight, bias=bias)
    return _core.linear_forward(x, weight, bias)


def linear_backward(grad_out, x, weight, bias=None):
    """``(grad_x, grad_weight, grad_bias)`` of :func:`linear`; ``grad_bias`` is None when
    ``bias`` is None (its values are not used)."""
    op = "linear"
    x = _array(x, op, "x")
    weight = _array(weight, op, "weight")
    grad_out = _array(grad_out, op, "grad_out")
    if bias is not None:
        bias = _array(bias, op, "bias")
        if weight.ndim == 2 and bias.shape != (weight.shape[0],):
            raise ValueError(f"{op}: bias must have shape ({weight.shape[0]},) (out_features, "
                             f"weight.shape[0]), got {bias.shape}")
    _same_dtype(op, "x", x, weight=weight, grad_out=grad_out, bias=bias)
    return _core.linear_backward(grad_out, x, weight, bias is not None)
