"""Optimisers: ``SGD`` (momentum, Nesterov, weight decay), ``Adam``, ``AdamW``, ``RMSprop``.

Like torch: ``Optimizer(params, lr=..., ...)`` where ``params`` is an iterable
of Parameters or of dicts (parameter groups with their own hyper-parameters);
``zero_grad()``, ``step()``, ``state_dict()`` / ``load_state_dict()``. Updates
run in place on each parameter's array, in the parameter's dtype: one fused pass in
the core (``_core.sgd_update`` / ``_core.adam_update``) when the parameter, its
gradient and its state are contiguous float arrays of one dtype and shape, else the
same formulas in NumPy (``_update_numpy``, which the tests compare the core with).
"""
import copy
import math

import numpy as np

from .. import _core
from ..tensor import Tensor

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop"]


class Optimizer:
    defaults = {}

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not isinstance(params[0], dict):
            params = [{"params": params}]
        self.param_groups = []
        self.state = {}
        for g in params:
            self.add_param_group(g)

    def add_param_group(self, group):
        group = dict(group)
        ps = group["params"]
        ps = [ps] if isinstance(ps, Tensor) else list(ps)
        for p in ps:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: parameters must be Tensors, got "
                                f"{type(p).__name__}")
            if not p.requires_grad:
                raise ValueError(f"{type(self).__name__}: a parameter does not require grad")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in ps):
            raise ValueError(f"{type(self).__name__}: a parameter appears in more than one group")
        group["params"] = ps
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        self._check(group)
        self.param_groups.append(group)

    def _check(self, group):
        if group["lr"] < 0:
            raise ValueError(f"{type(self).__name__}: invalid learning rate {group['lr']}")

    def zero_grad(self, set_to_none=True):
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad = Tensor(np.zeros_like(p.data))

    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    st = self.state.get(id(p))
                    if st is None:
                        st = self.state[id(p)] = {}
                    self._update(p.data, p.grad.data, st, group)
        return loss

    def _update(self, w, g, state, group):
        if _fusable(w, g, state):
            self._update_core(w, g, state, group)
        else:
            self._update_numpy(w, g, state, group)

    def _update_core(self, w, g, state, group):  # pragma: no cover - interface
        raise NotImplementedError

    def _update_numpy(self, w, g, state, group):  # pragma: no cover - interface
        raise NotImplementedError

    # --- state ---
    def state_dict(self):
        """``{"state": {index: {name: array or number}}, "param_groups": [...]}``;
        parameters are numbered in group order (as torch does)."""
        index, groups = {}, []
        for g in self.param_groups:
            entry = {k: v for k, v in g.items() if k != "params"}
            entry["params"] = []
            for p in g["params"]:
                index.setdefault(id(p), len(index))
                entry["params"].append(index[id(p)])
            groups.append(entry)
        state = {}
        for g in self.param_groups:
            for p in g["params"]:
                if id(p) in self.state:
                    # arrays are copied (a device array to the host: a state dict saves)
                    state[index[id(p)]] = {k: (v.copy() if isinstance(v, np.ndarray) else
                                               v.get() if isinstance(v, _core.DeviceTensor) else v)
                                           for k, v in self.state[id(p)].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"{type(self).__name__}.load_state_dict: the saved state has "
                             f"{len(groups)} parameter groups, this optimiser has "
                             f"{len(self.param_groups)}")
        params = {}
        for saved, own in zip(groups, self.param_groups):
            if len(saved["params"]) != len(own["params"]):
                raise ValueError(f"{type(self).__name__}.load_state_dict: a saved group has "
                                 f"{len(saved['params'])} parameters, this optimiser's has "
                                 f"{len(own['params'])}")
            for i, p in zip(saved["params"], own["params"]):
                params[int(i)] = p
        new_state = {}
        for key, st in state_dict["state"].items():
            p = params.get(int(key))
            if p is None:
                raise ValueError(f"{type(self).__name__}.load_state_dict: state for unknown "
                                 f"parameter index {key}")
            entry = {}
            for k, v in st.items():
                if isinstance(v, Tensor):
                    v = v.data
                if isinstance(v, _core.DeviceTensor):
                    v = v.get()
                if isinstance(v, np.ndarray) and v.ndim > 0:
                    if v.shape != p.data.shape:
                        raise ValueError(f"{type(self).__name__}.load_state_dict: {k} of "
                                         f"parameter {key} has shape {v.shape}, the parameter "
                                         f"has {p.data.shape}")
                    v = v.astype(p.data.dtype, copy=True)
                    if isinstance(p.data, _core.DeviceTensor):     # the state follows its parameter
                        v = _core.to_device(np.ascontiguousarray(v), "cuda")
                elif isinstance(v, np.ndarray):
                    v = v.item()
                entry[k] = v
            new_state[id(p)] = entry
        self.state = new_state
        for saved, own in zip(groups, self.param_groups):
            for k, v in saved.items():
                if k != "params":
                    own[k] = copy.deepcopy(v)

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(g):
                if k != "params":
                    lines.append(f"    {k}: {g[k]}")
        return "\n".join(lines) + "\n)"


class SGD(Optimizer):
    """``v = momentum * v + (1 - dampening) * (g + weight_decay * w)``;
    ``w -= lr * v`` (or, with ``nesterov=True``, ``w -= lr * (g + momentum * v)``)."""

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _check(self, group):
        super()._check(group)
        if group["momentum"] < 0:
            raise ValueError(f"SGD: invalid momentum {group['momentum']}")
        if group["weight_decay"] < 0:
            raise ValueError(f"SGD: invalid weight_decay {group['weight_decay']}")

    def _update_core(self, w, g, state, group):
        mom = group["momentum"]
        buf = state.get("momentum_buffer")
        init = bool(mom) and buf is None
        if init:
            buf = state["momentum_buffer"] = np.empty_like(w)
        _core.sgd_update(w, g, buf if mom else None, group["lr"], mom, group["dampening"],
                         group["weight_decay"], group["nesterov"], init)

    def _update_numpy(self, w, g, state, group):
        lr, mom, wd = group["lr"], group["momentum"], group["weight_decay"]
        if wd:
            g = g + wd * w
        if mom:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(g, dtype=w.dtype, copy=True)
            else:
                buf *= mom
                buf += (1 - group["dampening"]) * g
            g = g + mom * buf if group["nesterov"] else buf
        w -= lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba): bias-corrected first and second moment estimates;
    ``weight_decay`` adds ``weight_decay * w`` to the gradient (L2), and
    ``amsgrad=True`` keeps the running maximum of the second moment."""

    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad))

    def _check(self, group):
        super()._check(group)
        b1, b2 = group["betas"]
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"{type(self).__name__}: betas must be in [0, 1), got "
                             f"{group['betas']}")
        if group["eps"] < 0:
            raise ValueError(f"{type(self).__name__}: invalid eps {group['eps']}")

    def _init_state(self, w, state, group):
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(w)
            state["exp_avg_sq"] = np.zeros_like(w)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(w)

    def _update_core(self, w, g, state, group):
        self._init_state(w, state, group)
        state["step"] += 1
        (b1, b2) = group["betas"]
        _core.adam_update(w, g, state["exp_avg"], state["exp_avg_sq"],
                          state["max_exp_avg_sq"] if group["amsgrad"] else None, group["lr"], b1, b2,
                          group["eps"], group["weight_decay"], self._decoupled, group["amsgrad"],
                          state["step"])

    def _update_numpy(self, w, g, state, group):
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        if wd:
            if self._decoupled:
                w *= 1 - lr * wd
            else:
                g = g + wd * w
        self._init_state(w, state, group)
        state["step"] += 1
        t = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * (g * g)
        if group["amsgrad"]:
            np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        bc1 = 1 - b1 ** t
        bc2 = 1 - b2 ** t
        denom = np.sqrt(v)
        denom /= math.sqrt(bc2)
        denom += eps
        w -= (lr / bc1) * (m / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): ``w *= 1 - lr * wd``
    before the Adam step; default ``weight_decay=0.01``."""

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)


class RMSprop(Optimizer):
    """RMSprop (Hinton): ``v = alpha v + (1 - alpha) g^2``; ``w -= lr g / (sqrt(v) + eps)``,
    with ``centered`` subtracting the squared running mean of ``g`` from ``v``,
    ``momentum`` accumulating the scaled step, and L2 ``weight_decay`` (torch's
    formulas). Runs in NumPy (no fused core pass)."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def _check(self, group):
        super()._check(group)
        for name, lo, hi in (("alpha", 0, 1), ("momentum", 0, math.inf),
                             ("weight_decay", 0, math.inf), ("eps", 0, math.inf)):
            if not lo <= group[name] <= hi:
                raise ValueError(f"RMSprop: invalid {name} {group[name]}")

    def _update(self, w, g, state, group):
        self._update_numpy(w, g, state, group)

    def _update_numpy(self, w, g, state, group):
        lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
        if group["weight_decay"]:
            g = g + group["weight_decay"] * w
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(w)
            if group["momentum"]:
                state["momentum_buffer"] = np.zeros_like(w)
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(w)
        state["step"] += 1
        v = state["square_avg"]
        v *= alpha
        v += (1 - alpha) * (g * g)
        if group["centered"]:
            ga = state["grad_avg"]
            ga *= alpha
            ga += (1 - alpha) * g
            avg = np.sqrt(v - ga * ga) + eps
        else:
            avg = np.sqrt(v) + eps
        if group["momentum"]:
            buf = state["momentum_buffer"]
            buf *= group["momentum"]
            buf += g / avg
            w -= lr * buf
        else:
            w -= lr * (g / avg)


def _fusable(w, g, state):
    """Whether the core's in-place pass can serve: float32/float64 arrays of one dtype and
    shape, the parameter and every state array C-contiguous, aligned and writable."""
    if w.dtype not in (np.float32, np.float64) or g.dtype != w.dtype or g.shape != w.shape:
        return False
    if isinstance(w, _core.DeviceTensor):  # device arrays are contiguous, aligned and writable
        return all(isinstance(a, _core.DeviceTensor) and a.dtype == w.dtype and a.shape == w.shape
                   for a in [g] + [v for v in state.values() if hasattr(v, "shape") and v.ndim > 0])
    arrays = [w] + [v for v in state.values() if isinstance(v, np.ndarray)]
    return all(a.dtype == w.dtype and a.shape == w.shape and a.flags.c_contiguous and a.flags.aligned
               and a.flags.writeable for a in arrays)
