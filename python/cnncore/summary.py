"""Per-layer summary of a model: output shape, parameters, MACs and receptive field.

``summary(model, input_shape)`` runs one forward pass (eval mode) with a hook on
every leaf module, then walks the autograd graph from the input to each
layer's output to get its receptive field: for a window op with kernel k,
dilation d and stride s, ``r_out = r_in + (k - 1) * d * j_in`` and
``j_out = j_in * s`` (r: receptive field size in input pixels, j: jump, the
input distance between adjacent outputs); ops that merge branches (add, cat)
take the largest field. MACs count the multiply-accumulates of convolutions and
fully connected layers for the given batch.
"""
import math

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


def summary(model, input_shape, dtype=np.float32):
    """Run ``model`` on zeros of ``input_shape`` and describe each leaf layer.

    Returns ``(layers, totals)``: a list of :class:`LayerInfo` in call order
    and a dict with ``params``, ``trainable_params``, ``macs``, ``input_shape``
    and ``output_shape``.
    """
    input_shape = tuple(int(s) for s in input_shape)
    names = {id(m): n for n, m in model.named_modules()}
    records = []

    def hook(module, inputs, out):
        if next(module.children(), None) is None:
            records.append((module, inputs, out))

    was_training = model.training
    model.eval()
    x = Tensor(np.zeros(input_shape, dtype=dtype), requires_grad=True)
    _module._forward_hooks.append(hook)
    try:
        out = model(x)
    finally:
        _module._forward_hooks.remove(hook)
        model.train(was_training)
    nd = len(input_shape) - 2
    outs = [o for _, _, o in records if isinstance(o, Tensor) and o.requires_grad]
    fields = _receptive_fields(x, outs, nd)
    layers = []
    for module, inputs, o in records:
        params = sum(p.data.size for p in module.parameters(recurse=False))
        f = fields.get(id(o)) if isinstance(o, Tensor) else None
        shape = tuple(o.shape) if isinstance(o, Tensor) else tuple(
            tuple(t.shape) for t in o if isinstance(t, Tensor))
        layers.append(LayerInfo(names.get(id(module), "?"), type(module).__name__, shape,
                                params, _macs(module, inputs, o),
                                None if f is None else f[0], None if f is None else f[1]))
    main_out = out[0] if isinstance(out, tuple) else out
    totals = dict(params=model.num_parameters(),
                  trainable_params=model.num_parameters(trainable_only=True),
                  macs=sum(layer.macs for layer in layers), input_shape=input_shape,
                  output_shape=tuple(main_out.shape))
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
