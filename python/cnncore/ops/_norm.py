"""Normalisation (NumPy in, NumPy out): local response normalisation (AlexNet)
and batch normalisation (running statistics updated in place).

Shapes and values are validated in C++ (``cnncore/layers.hpp``); this module
turns Python argument forms into what the core takes.
"""
import numpy as np

from .. import _core
from ._common import _array, _bool, _grad_pair, _int, _real

__all__ = ["local_response_norm", "local_response_norm_backward", "batch_norm",
           "batch_norm_backward"]


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





def _running_stat(value, op, name, training):
    """A running statistic; when it will be updated in place it must be a writeable,
    C-contiguous ndarray (a converted copy would be updated instead)."""
    if value is None:
        return None
    if isinstance(value, _core.DeviceTensor):  # device arrays are contiguous and writable
        return value
    if training:
        if not isinstance(value, np.ndarray):
            raise TypeError(f"{op}: {name} must be a NumPy array (it is updated in place when "
                            f"training), got {type(value).__name__}")
        # (an unaligned array would be copied by the core and the update lost)
        if not value.flags.c_contiguous or not value.flags.writeable or not value.flags.aligned:
            raise ValueError(f"{op}: {name} must be a writeable, aligned C-contiguous array to "
                             f"be updated in place when training")
        return value
    return _array(value, op, name)


def _bn_args(op, x, running_mean, running_var, weight, bias, training, momentum, eps):
    training = _bool(training, op, "training")
    x = _array(x, op, "x")
    running_mean = _running_stat(running_mean, op, "running_mean", training)
    running_var = _running_stat(running_var, op, "running_var", training)
    weight = None if weight is None else _array(weight, op, "weight")
    bias = None if bias is None else _array(bias, op, "bias")
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
    kw["training"] = _bool(training, op, "training")
    grad_out = _array(grad_out, op, "grad_out")
    return _core.batch_norm_backward(grad_out, x, rm, rv, w, b, **kw)
