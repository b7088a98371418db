"""``cnncore.nn.utils``: gradient clipping, as ``torch.nn.utils``."""
import math

import numpy as np

from ..tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _with_grads(parameters, what):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    params = list(parameters)
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"{what}: expected Tensors (e.g. model.parameters()), got "
                            f"{type(p).__name__}")
    return [p for p in params if p.grad is not None]


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale the gradients of ``parameters`` in place so that their joint ``norm_type``
    norm (all gradients as one vector) is at most ``max_norm``; return the norm before
    clipping. ``norm_type`` may be ``inf``. With ``error_if_nonfinite`` a NaN or infinite
    norm raises instead of spreading into every gradient."""
    params = _with_grads(parameters, "clip_grad_norm_")
    max_norm, norm_type = float(max_norm), float(norm_type)
    if not max_norm >= 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be >= 0, got {max_norm}")
    if not norm_type > 0:
        raise ValueError(f"clip_grad_norm_: norm_type must be > 0 or inf, got {norm_type}")
    if not params:
        return Tensor(np.asarray(0.0, np.float32))
    grads = [p.grad.data for p in params]
    if math.isinf(norm_type):
        total = max(float(np.abs(g).max()) if g.size else 0.0 for g in grads)
    else:
        total = sum(float(np.sum(np.abs(g.astype(np.float64)) ** norm_type)) for g in grads)
        total = total ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of the gradients is {total}; "
                           f"set error_if_nonfinite=False to clip anyway")
    scale = max_norm / (total + 1e-6)
    if scale < 1:
        for p in params:
            p.grad = Tensor((p.grad.data * scale).astype(p.grad.data.dtype, copy=False))
    return Tensor(np.asarray(total, grads[0].dtype))


def clip_grad_value_(parameters, clip_value):
    """Clamp every gradient element of ``parameters`` to ``[-clip_value, clip_value]``,
    in place."""
    params = _with_grads(parameters, "clip_grad_value_")
    clip_value = float(clip_value)
    if not clip_value >= 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    for p in params:
        p.grad = Tensor(np.clip(p.grad.data, -clip_value, clip_value))
