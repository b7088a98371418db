"""Refuse a forward pass whose activations would not fit, before it starts.

:func:`cnncore.set_memory_limit` bounds what one op call may hold; a whole forward
pass holds many op results at once, so a network can run out of memory many layers
in (``vgg16`` on a 1 x 3 x 4096 x 4096 image reached 8.9 GB before failing).
:class:`MemoryCheckedModel`, the base of the classic networks in
:mod:`cnncore.models`, estimates the activation memory of the forward pass it is
about to run and raises ``ValueError`` before running anything when the estimate
is over :func:`cnncore.get_memory_limit`.

**What is counted.** Every array the forward's graph keeps alive, excluding the
input, the parameters and the buffers: each op's result (convolutions, but also the
functional ReLUs, residual additions and concatenations that no leaf module owns; a
view such as ``flatten`` shares its parent's memory and counts once) and what an op
saves beside its inputs (max pooling's argmax indices). With autograd recording
(grad mode on and the input or a parameter requires grad) all of it stays alive
until the backward, so the estimate is the sum. Under :func:`cnncore.no_grad` a
result is freed after its last consumer has run, so the estimate is the largest sum
of the arrays alive at once, walking the ops in the order they run (for a plain
chain, about the two largest consecutive results; a residual block also holds its
input until the addition).

**How, without the real forward.** Two probe passes (eval mode, so no running
statistics move and dropout draws nothing; batch 1; grad recording on, to read the
graph; other forward hooks, e.g. :func:`cnncore.summary`'s, are held back) run on
zeros with the real channels and each spatial axis cut to ``s`` and ``2 s`` (axes
already that short keep their size), for ``s`` = 32, 64, 128, 256 until both probes
run (a smaller input fails in a network that needs e.g. 63 x 63). Each array's
spatial sizes are fitted per axis as ``a + b * (input size)``, which is what
convolution and pooling arithmetic gives up to rounding (an axis that did not change
between the probes, e.g. after adaptive pooling, stays), and evaluated at the real
size; an array whose rank or channels differ from the input's is fitted as
``a + b * (input area)``. The result is per sample, times the batch size. If no
probe runs, there is no estimate and the real forward reports its own error (the
probes run under the memory limit too: one of their ops over it means the real
forward's op is over it as well).

**When.** Only when ``input bytes * TRIGGER_RATIO > memory limit``, with
``TRIGGER_RATIO`` = 1024: with autograd recording, the networks here hold 9 to 531
times their input in activations, a ratio that hardly changes with the image size
(measured at 224 x 224 and up to 4096 x 4096: AlexNet ~9x, ZFNet ~29x, VGG 130-330x,
GoogLeNet ~100x, ResNet-18 ~57x, ResNet-50 ~252x, ResNet-152 ~531x; LeNet-5 ~14x on
its 32 x 32 input), so an input under the trigger cannot reach the limit, and a
batch of a few dozen 224 x 224 images (at the default limit, the machine's memory)
never pays for a probe. The estimate is cached per sample shape and dtype on the
model (both the recording and the no_grad figure, for any batch size), so a training
loop pays once per input shape; a model whose layers are replaced after its first
large input should call :meth:`MemoryCheckedModel.clear_activation_estimates`.

**Not counted**: an op's own workspace (e.g. a convolution's unfolded input) and the
copies it makes, which :func:`cnncore.set_memory_limit` bounds per call, so the
forward's peak is at most the estimate plus the limit; under no_grad that workspace
can be the larger part (VGG-16 on 1024 x 1024: 0.54 GB of activations, 2.4 GB of
workspace in its second convolution). Nor, since the probes run in eval mode,
dropout's outputs in training mode (a few vectors after the classifier's flatten).
"""
import math

import numpy as np

from .. import nn
from .._runtime import get_memory_limit
from ..nn import module as _module
from ..tensor import Tensor, enable_grad, is_grad_enabled

__all__ = ["MemoryCheckedModel", "TRIGGER_RATIO"]

TRIGGER_RATIO = 1024
_PROBE_SIDES = (32, 64, 128, 256)


class MemoryCheckedModel(nn.Module):
    """A network whose call checks an estimate of its activation memory first
    (see the module docstring). ``_model_name`` is the name the error gives (the
    factory's, e.g. ``vgg16``; the class name otherwise)."""

    _model_name = None

    def __call__(self, *args, **kwargs):
        if args:
            _check(self, args[0])
        return super().__call__(*args, **kwargs)

    def estimate_activation_memory(self, input_shape, dtype=np.float32, grad=True):
        """Estimated bytes of activations a forward pass on ``input_shape`` (N, C,
        ...) holds: with autograd recording (``grad=True``) or under no_grad.
        ``None`` when no probe pass runs (the input is then too small or malformed
        for the model). Costs two small forward passes the first time per sample
        shape and dtype."""
        shape = tuple(int(d) for d in input_shape)
        if len(shape) < 2 or min(shape) < 0:
            raise ValueError(f"estimate_activation_memory: input_shape must be (N, C, ...) "
                             f"with sizes >= 0, got {shape}")
        per_sample = _per_sample(self, shape[1:], np.dtype(dtype))
        if per_sample is None:
            return None
        return per_sample[0 if grad else 1] * shape[0]

    def clear_activation_estimates(self):
        """Forget the cached estimates (after changing the model's layers)."""
        self.__dict__.pop("_activation_estimates", None)

    @property
    def model_name(self):
        return self._model_name or type(self).__name__


def named(model, name):
    """``model`` with ``name`` as the name its memory check reports."""
    model.__dict__["_model_name"] = name
    return model


def _check(model, x):
    data = x.data if isinstance(x, Tensor) else x
    if not isinstance(data, np.ndarray) or data.ndim < 2:
        return
    limit = get_memory_limit()
    if data.nbytes * TRIGGER_RATIO <= limit:
        return
    recording = is_grad_enabled() and (getattr(x, "requires_grad", False)
                                       or any(p.requires_grad for p in model.parameters()))
    per_sample = _per_sample(model, data.shape[1:], data.dtype)
    if per_sample is None:
        return
    grad_bytes, nograd_bytes = per_sample
    need = (grad_bytes if recording else nograd_bytes) * data.shape[0]
    if need <= limit:
        return
    if recording:
        how = (f"autograd keeps every result for the backward; under cnncore.no_grad() "
               f"about {nograd_bytes * data.shape[0]:,}")
    else:
        how = "without autograd recording"
    raise ValueError(f"{model.model_name}: a forward pass on input shape {tuple(data.shape)} "
                     f"would hold about {need:,} bytes of activations (estimated; {how}), more "
                     f"than the memory limit of {limit:,} bytes (cnncore.set_memory_limit "
                     f"changes it)")


def _per_sample(model, sample_shape, dtype):
    """(bytes with autograd recording, peak bytes under no_grad) for one sample, or
    None; cached on the model."""
    cache = model.__dict__.setdefault("_activation_estimates", {})
    key = (tuple(sample_shape), np.dtype(dtype).str)
    if key not in cache:
        cache[key] = _estimate(model, tuple(sample_shape), np.dtype(dtype))
    return cache[key]


def _estimate(model, sample_shape, dtype):
    channels, spatial = sample_shape[:1], sample_shape[1:]
    for s in _PROBE_SIDES:
        p1 = tuple(min(n, s) for n in spatial)
        p2 = tuple(min(n, 2 * s) for n in spatial)
        first = _probe(model, channels + p1, dtype)
        if first is None:
            if p1 == spatial:
                return None             # the real sample size itself does not run
            continue
        if p1 == spatial:               # the probe was the real sample: exact
            return _figures([b.nbytes for b in first], first)
        second = _probe(model, channels + p2, dtype)
        if second is None:
            return None                 # not for want of size: larger probes fail too
        return _extrapolate(first, second, p1, p2, spatial)
    return None


class _Buffer:
    """One array a forward holds: its shape and item size, and the positions (in
    run order) of the op that made it and of its last consumer."""
    __slots__ = ("shape", "itemsize", "born", "dies", "nbytes")

    def __init__(self, array, born, dies):
        self.shape, self.itemsize, self.nbytes = array.shape, array.itemsize, array.nbytes
        self.born, self.dies = born, dies


def _probe(model, sample_shape, dtype):
    """Run ``model`` on one zero sample of ``sample_shape``; the arrays its graph
    holds, in run order, or None if the forward fails."""
    modes = [(m, m.training) for m in model.modules()]
    hooks = _module._forward_hooks[:]
    _module._forward_hooks.clear()
    try:
        model.eval()
        x = Tensor(np.zeros((1,) + sample_shape, dtype=dtype), requires_grad=True)
        with enable_grad():
            out = model.forward(x)
        return _buffers(model, x, out)
    except Exception:   # noqa: BLE001 - any failure: this probe size does not run
        return None
    finally:
        _module._forward_hooks[:] = hooks
        for m, mode in modes:
            m.__dict__["training"] = mode


def _tensors(out):
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _tensors(o)]
    if isinstance(out, dict):
        return [t for o in out.values() for t in _tensors(o)]
    return []


def _root(a):
    """The array (or other object) that owns ``a``'s memory."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a, (id(a.base) if a.base is not None else id(a))


def _buffers(model, x, out):
    outputs = [t for t in _tensors(out) if t._ctx is not None]
    # post-order walk over the graph, parents in argument order: the order the
    # forward ran them in, for the networks here
    order, seen = [], set()
    stack = [(t, False) for t in reversed(outputs)]
    while stack:
        t, done = stack.pop()
        if done:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        for p in reversed(t._ctx.parents):
            if isinstance(p, Tensor) and p._ctx is not None and id(p) not in seen:
                stack.append((p, False))
    pos = {id(t): i for i, t in enumerate(order)}
    last = {id(t): i for i, t in enumerate(order)}
    for i, t in enumerate(order):
        for p in t._ctx.parents:
            if isinstance(p, Tensor) and id(p) in last:
                last[id(p)] = max(last[id(p)], i)
    end = len(order)
    for t in outputs:
        last[id(t)] = end
    held = {_root(a)[1] for a in [x.data] + [p.data for p in model.parameters()]
            + [b.data for b in model.buffers()]}
    bufs = {}
    for t in order:
        array, key = _root(t.data)
        if key in held:
            continue                     # a view of the input or of a parameter
        b = bufs.get(key)
        if b is None:
            bufs[key] = _Buffer(array, pos[id(t)], last[id(t)])
        else:
            b.born, b.dies = min(b.born, pos[id(t)]), max(b.dies, last[id(t)])
    for t in order:                      # what ops save beside their inputs
        i = pos[id(t)]
        for v in vars(t._ctx).values():
            for a in (v if isinstance(v, (tuple, list)) else (v,)):
                if isinstance(a, np.ndarray):
                    array, key = _root(a)
                    if key not in held and key not in bufs:
                        bufs[key] = _Buffer(array, i, i)
    return list(bufs.values())


def _figures(sizes, bufs):
    """(sum of ``sizes``, largest sum of the buffers alive at once)."""
    n = max((b.dies for b in bufs), default=0) + 2
    delta = [0] * n
    for size, b in zip(sizes, bufs):
        delta[b.born] += size
        delta[b.dies + 1] -= size
    peak = alive = 0
    for d in delta:
        alive += d
        peak = max(peak, alive)
    return sum(sizes), peak


def _fit(v1, v2, x1, x2, x):
    """The line through (x1, v1) and (x2, v2), at x."""
    return v1 + (v2 - v1) * (x - x1) / (x2 - x1)


def _scaled_bytes(b1, b2, p1, p2, spatial):
    s1, s2 = b1.shape, b2.shape
    if s1 == s2:
        return b1.nbytes
    nd = len(spatial)
    if len(s1) == len(s2) == nd + 2 and s1[:2] == s2[:2]:
        dims = []
        for d1, d2, a, b, n in zip(s1[2:], s2[2:], p1, p2, spatial):
            if d1 == d2:
                dims.append(d1)
            elif a == b:
                break                    # changed along an axis the input did not
            else:
                dims.append(max(1, round(_fit(d1, d2, a, b, n))))
        else:
            return math.prod(s1[:2]) * math.prod(dims) * b1.itemsize
    a1, a2 = math.prod(p1), math.prod(p2)
    n1, n2 = b1.nbytes // b1.itemsize, b2.nbytes // b2.itemsize
    return max(0, round(_fit(n1, n2, a1, a2, math.prod(spatial)))) * b1.itemsize


def _extrapolate(first, second, p1, p2, spatial):
    same = len(first) == len(second) and all(
        a.born == b.born and a.dies == b.dies and a.itemsize == b.itemsize
        and len(a.shape) == len(b.shape) for a, b in zip(first, second))
    if same:
        return _figures([_scaled_bytes(a, b, p1, p2, spatial)
                         for a, b in zip(first, second)], first)
    # the graphs differ between the probes: fit the totals instead
    f1 = _figures([b.nbytes for b in first], first)
    f2 = _figures([b.nbytes for b in second], second)
    a1, a2, a = math.prod(p1), math.prod(p2), math.prod(spatial)
    return tuple(max(0, round(_fit(u, v, a1, a2, a))) for u, v in zip(f1, f2))
