"""Softmax cross-entropy of logits and the negative log-likelihood of
log-probabilities (NumPy in, NumPy out), as ``torch.nn.functional``; one C++
validation of input / target / weight serves both.

Shapes and values are validated in C++ (``cnncore/layers.hpp``); this module
turns Python argument forms into what the core takes.
"""
import numbers

import numpy as np

from .. import _core
from ._common import _array, _int, _real, _word

__all__ = ["cross_entropy", "cross_entropy_backward", "nll_loss", "nll_loss_backward"]


_REDUCTIONS = ("none", "mean", "sum")


def _targets(target, op):
    arr = target if isinstance(target, np.ndarray) else np.asarray(target)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{op}: target must be an integer array of class indices, got dtype {arr.dtype}")
    # C order and aligned: the core reads int64 directly (an unaligned target was a
    # misaligned load, found by the fuzz harness under UBSan).
    return np.require(arr, dtype=np.int64, requirements=["C", "A"])


def _loss_grad(grad_out, input, op):
    """grad_out as an array; a Python number is taken in the dtype of ``input``."""
    if isinstance(grad_out, numbers.Real) and not isinstance(grad_out, (bool, np.bool_, np.ndarray)):
        grad_out = np.asarray(grad_out, dtype=input.dtype)
    return _array(grad_out, op, "grad_out")


def _ce_args(op, input, target, weight, ignore_index, reduction, label_smoothing):
    input = _array(input, op, "input")
    target = _targets(target, op)
    if weight is not None:
        weight = _array(weight, op, "weight")
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
    return _core.cross_entropy_backward(_loss_grad(grad_out, input, op), input, target, weight,
                                        **kw)


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
    return _core.nll_loss_backward(_loss_grad(grad_out, input, op), input, target, weight, **kw)
