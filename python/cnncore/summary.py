"""Per-layer summary of a model: output shape, parameters, MACs and receptive field.

``summary(model, input_shape)`` runs one forward pass (eval mode) with a hook on
every leaf module, then walks the autograd graph from the input to each
layer's output to get its receptive field: for a window op with kernel k,
dilation d and stride s, ``r_out = r_in + (k - 1) * d * j_in`` and
``j_out = j_in * s`` (r: receptive field size in input pixels, j: jump, the
input distance between adjacent outputs); ops that merge branches (add, cat)
take the largest field. MACs count the multiply-accumulates of convolutions and
fully connected layers for the given batch.

The batch size is never allocated: the forward runs on one sample (and, for a
batch N > 1, once more on two), and each figure that depends on the batch is
extrapolated to N from those two runs (``f(N) = f(1) + (f(2) - f(1)) * (N - 1)``).
That is exact for every figure that grows linearly with the batch, which is all
of them for per-sample layers: convolutions (plain, transposed, depthwise
separable, locally connected, tiled), fully connected layers, pooling,
activations, dropout, local response normalisation and batch normalisation (the
summary runs in eval mode, where BatchNorm uses its running statistics and does
not mix samples); an output that does not depend on the input keeps its shape.
``summary((N, C, H, W))`` with N = 10**6 costs what N = 2 costs.
"""
import math
import operator

import numpy as np

from . import functional as F
from .nn import module as _module
from .tensor import Tensor

__all__ = ["summary", "LayerInfo", "format_summary"]


class LayerInfo:
    __slots__ = ("name", "kind", "output_shape", "params", "macs", "rf", "jump")

    def __init__(self, name, kind, output_shape, params, macs, rf, jump):
        self.name, self.kind, self.output_shape = name, kind, output_shape
        self.params, self.macs, self.rf, self.jump = params, macs, rf, jump

    def as_dict(self):
        return {k: getattr(self, k) for k in self.__slots__}


def _macs(module, inputs, out):
    from . import nn
    if not isinstance(out, Tensor):
        return 0
    n_out = out.data.size
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        w = module.weight.data.shape
        return n_out * int(np.prod(w[1:]))
    if isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        x = inputs[0]
        w = module.weight.data.shape
        return x.data.size * int(np.prod(w[1:]))
    if isinstance(module, nn.Linear):
        return n_out * module.in_features
    if isinstance(module, (nn.LocallyConnected2d, nn.TiledConv2d)):
        w = module.weight.data.shape
        return n_out * int(np.prod(w[-3:]))
    if isinstance(module, nn.DepthwiseSeparableConv2d):
        dw = module.depthwise_weight.data.shape
        mid = dw[0]
        per_pos = mid * int(np.prod(dw[2:])) + mid * module.out_channels
        return out.data.shape[0] * int(np.prod(out.data.shape[2:])) * per_pos
    return 0


def _window(ctx, in_sizes):
    """(kernel extents, strides) per spatial axis of a window op, or None."""
    kw = getattr(ctx, "kw", None)
    name = getattr(getattr(ctx, "op", None), "__name__", "")   # e.g. "conv_transpose2d"
    if isinstance(ctx, F.Convolution):
        nd = ctx.x.ndim - 2
        w = ctx.weights[0].shape
        k = list(w[-nd:])
        if name == "separable_conv2d":
            k = list(ctx.weights[0].shape[-2:])
        stride = _per_axis(kw.get("stride", 1), nd)
        dil = _per_axis(kw.get("dilation", 1), nd)
        if name.startswith("conv_transpose"):
            return [(kk - 1) * d + 1 for kk, d in zip(k, dil)], [1.0 / s for s in stride]
        return [(kk - 1) * d + 1 for kk, d in zip(k, dil)], stride
    if isinstance(ctx, (F.Pool, F.MaxPool)):
        nd = ctx.x.ndim - 2
        if "kernel_size" in kw:
            k = _per_axis(kw["kernel_size"], nd)
            stride = _per_axis(kw.get("stride") or kw["kernel_size"], nd)
            dil = _per_axis(kw.get("dilation", 1), nd)
            return [(kk - 1) * d + 1 for kk, d in zip(k, dil)], stride
        if "output_size" in kw:
            out = _per_axis(kw["output_size"], nd)
            out = [n if o is None else o for o, n in zip(out, in_sizes)]
            k = [math.ceil(n / o) for n, o in zip(in_sizes, out)]
            s = [max(n // o, 1) for n, o in zip(in_sizes, out)]
            return k, s
    return None


def _per_axis(v, nd):
    if isinstance(v, (tuple, list)):
        v = list(v)
        return v if len(v) == nd else v[:nd]
    return [v] * nd


def _receptive_fields(x, outputs, nd):
    """Map id(tensor) -> (rf per axis, jump per axis) for every tensor between
    the input ``x`` and ``outputs`` (None where the input does not reach)."""
    fields = {id(x): ([1] * nd, [1] * nd)}
    visited = set()

    def compute(t):
        ctx = t._ctx
        best = None
        if ctx is not None:
            for p in ctx.parents:
                f = fields.get(id(p)) if p is not None else None
                if f is None:
                    continue
                if best is None:
                    best = f
                else:
                    best = ([max(a, b) for a, b in zip(best[0], f[0])],
                            [max(a, b) for a, b in zip(best[1], f[1])])
        if best is not None:
            src = getattr(ctx, "x", None)
            win = _window(ctx, list(src.shape[2:]) if src is not None else [])
            if win is not None and len(win[0]) == nd:
                k, s = win
                best = ([r + (kk - 1) * j for r, kk, j in zip(best[0], k, best[1])],
                        [j * ss for j, ss in zip(best[1], s)])
        fields[id(t)] = best

    for root in outputs:
        stack = [(root, False)]
        while stack:
            t, done = stack.pop()
            if done:
                if id(t) not in fields:
                    compute(t)
                continue
            if id(t) in visited:
                continue
            visited.add(id(t))
            stack.append((t, True))
            if t._ctx is not None:
                for p in t._ctx.parents:
                    if p is not None and p.requires_grad and id(p) not in visited:
                        stack.append((p, False))
    return fields


def _input_shape(input_shape, dtype):
    """``input_shape`` as a tuple of ints, or a ValueError naming it."""
    try:
        dims = tuple(input_shape)
    except TypeError:
        raise ValueError(f"summary: input_shape must be a sequence of sizes such as "
                         f"(1, 3, 224, 224), got {input_shape!r}") from None
    out = []
    for d in dims:
        try:
            if isinstance(d, bool):
                raise TypeError
            out.append(operator.index(d))
        except TypeError:
            raise ValueError(f"summary: input_shape must hold integers, got {dims!r}") from None
    out = tuple(out)
    if len(out) < 2:
        raise ValueError(f"summary: input_shape must have a batch size and at least one more "
                         f"size, (N, C, ...), got {out}")
    if min(out) <= 0:
        raise ValueError(f"summary: input_shape sizes must be positive, got {out}")
    from ._runtime import get_memory_limit
    sample = math.prod(out[1:]) * np.dtype(dtype).itemsize
    limit = get_memory_limit()
    if sample > limit:
        raise ValueError(f"summary: input_shape {out}: one sample needs {sample:,} bytes, more "
                         f"than the memory limit of {limit:,} bytes (cnncore.set_memory_limit)")
    return out


def _run(model, shape, dtype):
    """One forward pass on zeros of ``shape``: (input, output, [(module, inputs, out)])."""
    records = []

    def hook(module, inputs, out):
        if next(module.children(), None) is None:
            records.append((module, inputs, out))

    x = Tensor(np.zeros(shape, dtype=dtype), requires_grad=True)
    _module._forward_hooks.append(hook)
    try:
        out = model(x)
    finally:
        _module._forward_hooks.remove(hook)
    return x, out, records


def _shape_of(o):
    if isinstance(o, Tensor):
        return tuple(o.shape)
    return tuple(tuple(t.shape) for t in o if isinstance(t, Tensor))


def _figures(records):
    """(module, output shape, MACs) per record: what changes with the batch."""
    return [(m, _shape_of(o), _macs(m, inputs, o)) for m, inputs, o in records]


def _extrapolate(one, two, n):
    """The value at batch n of a figure that is ``one`` at batch 1 and ``two`` at 2."""
    if isinstance(one, tuple):
        return tuple(_extrapolate(a, b, n) for a, b in zip(one, two))
    return one + (two - one) * (n - 1)


def _same_structure(a, b):
    if isinstance(a, tuple) != isinstance(b, tuple):
        return False
    if not isinstance(a, tuple):
        return True
    return len(a) == len(b) and all(_same_structure(x, y) for x, y in zip(a, b))


def summary(model, input_shape, dtype=np.float32):
    """Describe each leaf layer of ``model`` on an input of ``input_shape``.

    Returns ``(layers, totals)``: a list of :class:`LayerInfo` in call order
    and a dict with ``params``, ``trainable_params``, ``macs``, ``input_shape``
    and ``output_shape``. Shapes and MACs are those of the full batch
    ``input_shape[0]``, computed from forward passes on one and two samples (see
    the module docstring); ``input_shape`` must be positive integers, at least
    (N, C), and one sample must fit in :func:`cnncore.get_memory_limit`, else
    ``ValueError``.
    """
    input_shape = _input_shape(input_shape, dtype)
    n = input_shape[0]
    names = {id(m): n_ for n_, m in model.named_modules()}
    was_training = model.training
    model.eval()
    try:
        x, out, records = _run(model, (1,) + input_shape[1:], dtype)
        figures = _figures(records)
        main_out = out[0] if isinstance(out, tuple) else out
        out_shape = tuple(main_out.shape)
        if n > 1:
            _, out2, records2 = _run(model, (2,) + input_shape[1:], dtype)
            figures2 = _figures(records2)
            main2 = out2[0] if isinstance(out2, tuple) else out2
            out_shape2 = tuple(main2.shape)
            del out2, records2, main2
            if len(figures2) != len(figures) or len(out_shape2) != len(out_shape) or any(
                    type(a[0]) is not type(b[0])
                    or names.get(id(a[0])) != names.get(id(b[0]))
                    or not _same_structure(a[1], b[1])
                    or len(a[1]) != len(b[1]) for a, b in zip(figures, figures2)):
                raise ValueError("summary: the model runs different layers (or gives outputs "
                                 "of different ranks) for batches of 1 and 2, so its figures "
                                 "cannot be scaled to a batch of " + str(n))
            figures = [(m, _extrapolate(s1, s2, n), _extrapolate(m1, m2, n))
                       for (m, s1, m1), (_, s2, m2) in zip(figures, figures2)]
            out_shape = _extrapolate(out_shape, out_shape2, n)
    finally:
        model.train(was_training)
    nd = len(input_shape) - 2
    outs = [o for _, _, o in records if isinstance(o, Tensor) and o.requires_grad]
    fields = _receptive_fields(x, outs, nd)
    layers = []
    for (module, _, o), (_, shape, macs) in zip(records, figures):
        params = sum(p.data.size for p in module.parameters(recurse=False))
        f = fields.get(id(o)) if isinstance(o, Tensor) else None
        layers.append(LayerInfo(names.get(id(module), "?"), type(module).__name__, shape,
                                params, macs,
                                None if f is None else f[0], None if f is None else f[1]))
    totals = dict(params=model.num_parameters(),
                  trainable_params=model.num_parameters(trainable_only=True),
                  macs=sum(layer.macs for layer in layers), input_shape=input_shape,
                  output_shape=out_shape)
    return layers, totals


def _fmt_axes(v):
    if v is None:
        return "-"
    v = [int(a) if float(a).is_integer() else round(a, 3) for a in v]
    return str(v[0]) if all(a == v[0] for a in v) else "x".join(map(str, v))


def format_summary(layers, totals, title=""):
    """The summary as a text table."""
    head = ("layer", "type", "output shape", "params", "MACs", "RF", "jump")
    rows = [(lay.name, lay.kind, str(lay.output_shape).replace(" ", ""), f"{lay.params:,}",
             f"{lay.macs:,}", _fmt_axes(lay.rf), _fmt_axes(lay.jump)) for lay in layers]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(head)]
    right = {3, 4, 5, 6}

    def line(cells):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))

    out = []
    if title:
        out.append(title)
    out.append(line(head))
    out.append("  ".join("-" * w for w in widths))
    out.extend(line(r) for r in rows)
    out.append("  ".join("-" * w for w in widths))
    out.append(f"input {totals['input_shape']} -> output {totals['output_shape']}")
    out.append(f"total parameters: {totals['params']:,} (trainable "
               f"{totals['trainable_params']:,})")
    out.append(f"total MACs: {totals['macs']:,} ({totals['macs'] / 1e9:.3f} G)")
    return "\n".join(out)
