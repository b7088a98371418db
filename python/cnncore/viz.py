"""Pictures of what a CNN sees, as the course draws them: the first layer's filters, the
feature maps of a named layer, the receptive field of one output unit on the input, and a
saliency map. Each function returns the picture as an array (so tests and notebooks can
check it) and, given ``path``, writes it as a PNG with matplotlib.
"""
import math

import numpy as np

from . import nn
from .tensor import Tensor, no_grad

__all__ = ["filters", "feature_maps", "receptive_field", "saliency"]


def _grid(tiles, pad=1, value=1.0):
    """Tiles (n, h, w) or (n, h, w, 3), each scaled to [0, 1], on a near-square grid
    with ``pad`` pixels of ``value`` between them."""
    n = len(tiles)
    cols = max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / cols))
    h, w = tiles.shape[1:3]
    shape = (rows * (h + pad) + pad, cols * (w + pad) + pad) + tiles.shape[3:]
    out = np.full(shape, value, np.float64)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        out[pad + r * (h + pad):pad + r * (h + pad) + h,
            pad + c * (w + pad):pad + c * (w + pad) + w] = t
    return out


def _unit_range(a):
    a = np.asarray(a, np.float64)
    lo, hi = a.min(), a.max()
    return np.zeros_like(a) if hi == lo else (a - lo) / (hi - lo)


def _save(image, path, title=None, box=None, cmap="gray"):
    if path is None:
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 5 * image.shape[0] / max(image.shape[1], 1) + 0.4))
    ax.imshow(image, cmap=None if image.ndim == 3 else cmap, interpolation="nearest",
              vmin=0, vmax=1)
    if box is not None:
        (r0, r1), (c0, c1) = box
        ax.add_patch(plt.Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0 + 1, r1 - r0 + 1,
                                   fill=False, edgecolor="red", linewidth=2))
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _first_conv(model):
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.LocallyConnected2d, nn.TiledConv2d)):
            return name, m
    raise ValueError(f"{type(model).__name__} has no 2-D convolution layer")


def filters(model, path=None, layer=None):
    """The kernels of the first (or the named) convolution as a grid: one tile per output
    channel, RGB when the layer sees 3 channels, else the first input channel; each tile
    scaled to [0, 1] on its own. Returns the grid (H, W) or (H, W, 3)."""
    if layer is None:
        name, conv = _first_conv(model)
    else:
        name, conv = layer, _named(model, layer)
    w = np.asarray(conv.weight.data, np.float64)
    w = w.reshape((-1,) + w.shape[-3:])             # (C_out or positions, C_in, kh, kw)
    if w.shape[1] == 3:
        tiles = np.stack([_unit_range(t.transpose(1, 2, 0)) for t in w])
    else:
        tiles = np.stack([_unit_range(t[0]) for t in w])
    grid = _grid(tiles)
    _save(grid, path, f"{name}: {len(tiles)} filters {w.shape[2]}x{w.shape[3]}")
    return grid


def _named(model, layer):
    modules = dict(model.named_modules())
    if layer not in modules:
        some = ", ".join(n for n in list(modules)[1:12])
        raise ValueError(f"no layer named {layer!r} in {type(model).__name__} (some of its "
                         f"layers: {some}; `cnncore summary` lists them all)")
    return modules[layer]


def _batch(image):
    x = image.data if isinstance(image, Tensor) else np.asarray(image)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"expected one image (C, H, W) or (1, C, H, W), got shape {x.shape}")
    return x.astype(np.float32, copy=False) if x.dtype not in (np.float32, np.float64) else x


def feature_maps(model, image, layer, path=None):
    """The output of the layer named ``layer`` (a name from ``named_modules()``, as `cnncore
    summary` prints it) for one image, in eval mode. Returns ``(maps, grid)``: maps (C, H,
    W) and the grid picture of them, each map scaled to [0, 1]."""
    module = _named(model, layer)
    captured = []
    handle = module.register_forward_hook(lambda m, args, out: captured.append(out))
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            model(Tensor(_batch(image)))
    finally:
        handle.remove()
        model.train(was_training)
    out = captured[0]
    out = out[0] if isinstance(out, tuple) else out
    maps = np.asarray(out.data[0], np.float64)
    if maps.ndim != 3:
        raise ValueError(f"layer {layer!r} gives outputs of shape {tuple(out.shape)}, not "
                         f"feature maps (N, C, H, W)")
    grid = _grid(np.stack([_unit_range(m) for m in maps]))
    _save(grid, path, f"{layer}: {maps.shape[0]} maps {maps.shape[1]}x{maps.shape[2]}")
    return maps, grid


def _dtype_of(model):
    p = next(iter(model.parameters()), None)
    return np.float32 if p is None else p.data.dtype


def _geometry(model, input_shape, layer):
    """(size, jump, start) per spatial axis of ``layer``'s output units: unit i reads input
    pixels start + i*jump .. start + i*jump + size - 1 (start may be negative: padding).
    Size and jump are `cnncore summary`'s; the start follows each window's padding."""
    from .summary import summary
    layers, _ = summary(model, input_shape, _dtype_of(model))
    info = next((li for li in layers if li.name == layer), None)
    if info is None:
        raise ValueError(f"no leaf layer named {layer!r} in {type(model).__name__}; `cnncore "
                         f"summary` lists them")
    if info.rf is None:
        raise ValueError(f"layer {layer!r} has no receptive field on the input")
    starts = _starts(model, input_shape, layer)
    return list(info.rf), list(info.jump), starts


def _starts(model, input_shape, layer):
    """The input coordinate of the first pixel that output unit 0 of ``layer`` reads, per
    axis: through every window op on the way, start -= padding_before * jump."""
    from . import functional as F
    from .onnx import _explicit_pads, _per_axis
    module = _named(model, layer)
    x = Tensor(np.zeros((1,) + tuple(input_shape[1:]), _dtype_of(model)), requires_grad=True)
    captured = []
    handle = module.register_forward_hook(lambda m, args, out: captured.append(out))
    was_training = model.training
    model.eval()
    try:
        model(x)
    finally:
        handle.remove()
        model.train(was_training)
    nd = len(input_shape) - 2
    memo = {id(x): ([0.0] * nd, [1.0] * nd)}

    def walk(t):
        if id(t) in memo:
            return memo[id(t)]
        ctx = t._ctx
        best = None
        if ctx is not None:
            for p in ctx.parents:
                if p is not None and p.requires_grad:
                    r = walk(p)
                    if r is not None:
                        best = r if best is None else ([min(a, b) for a, b in
                                                        zip(best[0], r[0])], best[1])
        if best is not None and isinstance(ctx, (F.Convolution, F.Pool, F.MaxPool)):
            kw = ctx.kw
            src = ctx.x
            start, jump = best
            if "output_size" not in kw and src is not None and src.ndim == nd + 2:
                if isinstance(ctx, F.Convolution):
                    k = list(ctx.weights[0].shape[-nd:])
                    stride = _per_axis(kw.get("stride", 1), nd, "stride")
                else:
                    k = _per_axis(kw.get("kernel_size", 1), nd, "kernel_size")
                    stride = k if kw.get("stride") is None else _per_axis(kw["stride"], nd,
                                                                         "stride")
                dil = _per_axis(kw.get("dilation", 1), nd, "dilation")
                pads = _explicit_pads(kw.get("padding", 0), src.shape[2:], k, stride, dil,
                                      bool(kw.get("flip", False)))
                start = [s - p * j for s, p, j in zip(start, pads[:nd], jump)]
                jump = [j * s for j, s in zip(jump, stride)]
            best = (start, jump)
        memo[id(t)] = best
        return best

    out = captured[0]
    r = walk(out[0] if isinstance(out, tuple) else out)
    if r is None:
        raise ValueError(f"layer {layer!r} does not depend on the input")
    return [int(round(s)) for s in r[0]]


def receptive_field(model, input_shape, layer, unit, path=None, image=None):
    """The input region that output unit ``unit`` = (i, j) of layer ``layer`` reads, for
    inputs of ``input_shape`` (N, C, H, W). Returns ``((row0, row1), (col0, col1))``,
    inclusive and clipped to the input, plus the unclipped box; draws it on ``image`` (or
    a blank input) when ``path`` is given. Its size is the receptive field `cnncore
    summary` reports."""
    size, jump, start = _geometry(model, input_shape, layer)
    if len(unit) != len(size):
        raise ValueError(f"unit must give {len(size)} coordinates, got {unit!r}")
    full = [(s + u * j, s + u * j + r - 1) for s, u, j, r in zip(start, unit, jump, size)]
    dims = input_shape[2:]
    clipped = [(max(0, a), min(n - 1, b)) for (a, b), n in zip(full, dims)]
    if path is not None:
        if image is None:
            picture = np.full(tuple(dims), 0.85)
        else:
            img = _batch(image)[0]
            picture = _unit_range(img.transpose(1, 2, 0) if img.shape[0] == 3 else img[0])
        _save(picture, path, f"{layer} unit {tuple(unit)}: receptive field "
                             f"{'x'.join(map(str, size))}", box=clipped)
    return tuple(clipped), tuple(full)


def saliency(model, image, target=None, path=None):
    """|d score_target / d input|, the largest over colour channels, scaled to [0, 1]
    (Simonyan et al., 2014), in eval mode; ``target`` defaults to the predicted class.
    Returns ``(map (H, W), target)``."""
    x = Tensor(np.array(_batch(image), copy=True), requires_grad=True)
    was_training = model.training
    model.eval()
    try:
        out = model(x)
        out = out[0] if isinstance(out, tuple) else out
        if target is None:
            target = int(out.data[0].argmax())
        if not 0 <= int(target) < out.shape[1]:
            raise ValueError(f"target class {target} is not one of the model's "
                             f"{out.shape[1]} outputs")
        grad = np.zeros(out.shape, out.data.dtype)
        grad[0, int(target)] = 1.0
        out.backward(grad)
    finally:
        model.train(was_training)
    smap = _unit_range(np.abs(x.grad.data[0]).max(axis=0))
    _save(smap, path, f"saliency for class {target}", cmap="hot")
    return smap, int(target)
