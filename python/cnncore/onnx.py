"""ONNX export: ``cnncore.onnx.export(model, example_input, path, opset=18)``.

The model runs once, in eval mode, on ``example_input`` while every autograd rule it
applies (convolution, pooling, batch norm, an activation, an addition, a reshape ...) is
recorded; each record becomes ONNX nodes, parameters and buffers become initializers under
their state-dict names, and the batch axis stays free. Needs the ``onnx`` package
(``pip install "cnncore[onnx]"``); ``onnxruntime`` runs the result.

How cnncore's extras map: true convolution (``flip=True``) exports flipped weights;
padding words become explicit pads; padding modes other than zeros become a ``Pad`` node
(``reflect``, ``edge``; ``circular`` as ``wrap`` from opset 19) before the convolution;
distance-weighted pooling becomes a depthwise ``Conv`` with its fixed weights; adaptive
average pooling becomes ``GlobalAveragePool``, an ``AveragePool`` where the sizes divide,
else two ``MatMul`` with its exact averaging matrices; GELU and SiLU are decomposed.
Layers with no ONNX form (unshared and tiled convolution, ``symmetric`` padding, adaptive
max pooling that does not divide, Lp pooling with a non-even p) raise
:class:`ExportError`, which the model's error handling prefixes with the layer's path.
"""
import math

import numpy as np

from .tensor import Function, Tensor, no_grad

__all__ = ["export", "ExportError"]


class ExportError(ValueError):
    """Something in the model has no ONNX form (the message names the op and the layer)."""


def _onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:
        raise ExportError('cnncore.onnx needs the onnx package: pip install "cnncore[onnx]"') \
            from None
    return onnx, helper, numpy_helper


# ---------------------------------------------------------------------------
# the trace


class _Graph:
    def __init__(self, names, opset):
        self.onnx, self.helper, self.numpy_helper = _onnx()
        self.nodes, self.initializers, self.opset = [], [], opset
        self.names = {}                 # id(Tensor) -> ONNX value name
        self.param_names = names        # id(parameter or buffer) -> state-dict name
        self.keep = []                  # the traced tensors, so their ids stay unique
        self.count = 0

    def fresh(self, stem):
        self.count += 1
        return f"{stem}_{self.count}"

    def const(self, array, stem="const"):
        name = self.fresh(stem)
        self.initializers.append(self.numpy_helper.from_array(np.asarray(array), name))
        return name

    def value(self, t):
        """The ONNX name of Tensor ``t``: a node's output, or a new initializer."""
        if t is None:
            return ""
        key = id(t)
        if key not in self.names:
            name = self.param_names.get(key)
            if name is None:
                name = self.fresh("const")
            self.initializers.append(self.numpy_helper.from_array(np.asarray(t.data), name))
            self.names[key] = name
            self.keep.append(t)
        return self.names[key]

    def node(self, op, inputs, outputs=None, **attrs):
        outputs = outputs or [self.fresh(op.lower())]
        self.nodes.append(self.helper.make_node(op, inputs, outputs, **attrs))
        return outputs[0]


def _per_axis(value, nd, name):
    if isinstance(value, (tuple, list)):
        if len(value) != nd:
            raise ExportError(f"{name} {value!r} for {nd} spatial axes")
        return [int(v) for v in value]
    return [int(value)] * nd


def _explicit_pads(padding, in_sizes, kernel, stride, dilation, flip=False):
    """[before..., after...] (ONNX order) for any of cnncore's padding forms."""
    nd = len(in_sizes)
    if isinstance(padding, str):
        before, after = [], []
        for n, k, s, d in zip(in_sizes, kernel, stride, dilation):
            reach = d * (k - 1)
            if padding == "valid":
                b = a = 0
            elif padding == "full":
                b = a = reach
            else:                                   # same
                total = max((-(-n // s) - 1) * s + reach + 1 - n, 0)
                b = total - total // 2 if flip else total // 2
                a = total - b
            before.append(b)
            after.append(a)
        return before + after
    if isinstance(padding, (tuple, list)) and len(padding) == 2 * nd:
        pairs = [padding[i:i + 2] for i in range(0, 2 * nd, 2)][::-1]   # last axis first
        return [int(p[0]) for p in pairs] + [int(p[1]) for p in pairs]
    per = _per_axis(padding, nd, "padding")
    return per + per


_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge",
              "circular": "wrap"}


def _pad_node(g, x, pads, mode, value=0.0, what="padding"):
    if not any(pads):
        return x
    onnx_mode = _PAD_MODES.get(mode)
    if onnx_mode is None:
        raise ExportError(f"{what}: padding_mode={mode!r} has no ONNX Pad mode (ONNX has "
                          f"constant, reflect, edge and wrap)")
    if onnx_mode == "wrap" and g.opset < 19:
        raise ExportError(f"{what}: circular padding needs opset >= 19 (ONNX Pad 'wrap'), "
                          f"export with opset=19")
    nd = len(pads) // 2
    full = [0, 0] + pads[:nd] + [0, 0] + pads[nd:]
    inputs = [x, g.const(np.array(full, np.int64), "pads")]
    if onnx_mode == "constant" and value:
        inputs.append(g.const(np.array(value, np.float32), "pad_value"))
    return g.node("Pad", inputs, mode=onnx_mode)


def _conv(g, rec, x_name, out):
    op, kw = rec["op"].__name__, rec["kw"]
    x, weights, bias = rec["inputs"][0], rec["inputs"][1:-1], rec["inputs"][-1]
    if op not in ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                  "conv_transpose3d"):
        raise ExportError(f"{op} has no ONNX form (unshared, tiled and separable "
                          f"convolution are not exported; build the separable one from two "
                          f"Conv2d layers)")
    w = weights[0]
    nd = w.ndim - 2
    kernel = list(w.shape[2:])
    stride = _per_axis(kw.get("stride", 1), nd, "stride")
    dilation = _per_axis(kw.get("dilation", 1), nd, "dilation")
    groups = int(kw.get("groups", 1))
    flip = bool(kw.get("flip", False))
    mode = kw.get("padding_mode", "zeros")
    w_name = g.value(w)
    if flip:
        w_name = g.const(np.ascontiguousarray(w.data[(slice(None),) * 2 +
                                                     (slice(None, None, -1),) * nd]),
                         "flipped_weight")
    b_name = g.value(bias) if bias is not None else None
    inputs = [x_name, w_name] + ([b_name] if b_name else [])
    if op.startswith("conv_transpose"):
        if mode != "zeros":
            raise ExportError(f"{op}: padding_mode={mode!r} has no ONNX ConvTranspose form")
        pads = _explicit_pads(kw.get("padding", 0), x.shape[2:], kernel, stride, dilation)
        return g.node("ConvTranspose", inputs, [out], kernel_shape=kernel, strides=stride,
                      dilations=dilation, group=groups, pads=pads,
                      output_padding=_per_axis(kw.get("output_padding", 0), nd,
                                               "output_padding"))
    pads = _explicit_pads(kw.get("padding", 0), x.shape[2:], kernel, stride, dilation, flip)
    if mode != "zeros":
        inputs[0] = _pad_node(g, x_name, pads, mode, what=op)
        pads = [0] * (2 * nd)
    return g.node("Conv", inputs, [out], kernel_shape=kernel, strides=stride,
                  dilations=dilation, group=groups, pads=pads)


def _window(kw, nd):
    kernel = _per_axis(kw["kernel_size"], nd, "kernel_size")
    stride = kernel if kw.get("stride") is None else _per_axis(kw["stride"], nd, "stride")
    return kernel, stride


def _pool(g, rec, x_name, out):
    op, kw, x = rec["op"].__name__, rec["kw"], rec["inputs"][0]
    nd = x.ndim - 2
    if op.startswith("adaptive_avg_pool") or op == "global_avg_pool2d":
        return _adaptive_avg(g, x, x_name, out, rec["output"].shape[2:], op)
    if op.startswith("adaptive_max_pool"):
        in_sizes, out_sizes = x.shape[2:], rec["output"].shape[2:]
        if all(o == 1 for o in out_sizes):
            return g.node("GlobalMaxPool", [x_name], [out])
        if any(n % o for n, o in zip(in_sizes, out_sizes)):
            raise ExportError(f"{op}: adaptive max pooling from {tuple(in_sizes)} to "
                              f"{tuple(out_sizes)} has no ONNX form (the sizes do not divide)")
        k = [n // o for n, o in zip(in_sizes, out_sizes)]
        return g.node("MaxPool", [x_name], [out], kernel_shape=k, strides=k)
    kernel, stride = _window(kw, nd)
    pads = _explicit_pads(kw.get("padding", 0), x.shape[2:], kernel, stride, [1] * nd)
    ceil = int(bool(kw.get("ceil_mode", False)))
    if op.startswith("max_pool"):
        return g.node("MaxPool", [x_name], [out], kernel_shape=kernel, strides=stride,
                      pads=pads, ceil_mode=ceil,
                      dilations=_per_axis(kw.get("dilation", 1), nd, "dilation"))
    if op.startswith("avg_pool"):
        if kw.get("divisor_override") is not None:
            raise ExportError(f"{op}: divisor_override has no ONNX AveragePool form")
        return g.node("AveragePool", [x_name], [out], kernel_shape=kernel, strides=stride,
                      pads=pads, ceil_mode=ceil,
                      count_include_pad=int(bool(kw.get("count_include_pad", True))))
    if op.startswith("lp_pool"):
        p = float(kw.get("norm_type", 2))
        if not (p.is_integer() and p >= 1):
            raise ExportError(f"{op}: ONNX LpPool takes an integer p, got {p}")
        if ceil:
            raise ExportError(f"{op}: ceil_mode has no ONNX LpPool form")
        return g.node("LpPool", [x_name], [out], kernel_shape=kernel, strides=stride,
                      pads=pads, p=int(p))
    if op.startswith("weighted_avg_pool"):
        if ceil:
            raise ExportError(f"{op}: ceil_mode has no depthwise-convolution form")
        return _weighted(g, rec, x, x_name, out, kernel, stride, pads)
    raise ExportError(f"{op} has no ONNX form")


def _weighted(g, rec, x, x_name, out, kernel, stride, pads):
    """Distance-weighted pooling is a depthwise convolution with fixed weights: read them
    off the op itself, one impulse per tap."""
    nd = len(kernel)
    kw = dict(rec["kw"], stride=1, padding=0)
    w = np.zeros(kernel, np.float64)
    for idx in np.ndindex(*kernel):
        impulse = np.zeros((1, 1) + tuple(kernel))
        impulse[(0, 0) + idx] = 1.0
        w[idx] = rec["op"](impulse, **kw).reshape(-1)[0]
    c = x.shape[1]
    weight = np.broadcast_to(w, (c, 1) + tuple(kernel)).astype(x.dtype)
    return g.node("Conv", [x_name, g.const(np.ascontiguousarray(weight), "pool_weight")],
                  [out], kernel_shape=kernel, strides=stride, pads=pads, group=c,
                  dilations=[1] * nd)


def _averaging_matrix(n_in, n_out, dtype):
    """(n_out, n_in): adaptive average pooling along one axis, bin i = [floor(i n/o),
    ceil((i+1) n/o))."""
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        lo, hi = (i * n_in) // n_out, -(-((i + 1) * n_in) // n_out)
        m[i, lo:hi] = 1.0 / (hi - lo)
    return m.astype(dtype)


def _adaptive_avg(g, x, x_name, out, out_sizes, op):
    in_sizes = x.shape[2:]
    if all(o == 1 for o in out_sizes):
        return g.node("GlobalAveragePool", [x_name], [out])
    if all(n % o == 0 for n, o in zip(in_sizes, out_sizes)):
        k = [n // o for n, o in zip(in_sizes, out_sizes)]
        return g.node("AveragePool", [x_name], [out], kernel_shape=k, strides=k)
    if len(in_sizes) != 2:
        raise ExportError(f"{op}: adaptive average pooling whose sizes do not divide is "
                          f"exported for 2-D inputs only")
    (h, w), (oh, ow) = in_sizes, out_sizes
    a_w = g.const(np.ascontiguousarray(_averaging_matrix(w, ow, x.dtype).T), "pool_cols")
    a_h = g.const(_averaging_matrix(h, oh, x.dtype), "pool_rows")
    cols = g.node("MatMul", [x_name, a_w])                 # (N, C, H, OW)
    return g.node("MatMul", [a_h, cols], [out])             # (OH, H) @ (N, C, H, OW)


def _array_op(g, rec, names, out):
    op, kw = rec["op"].__name__, rec["kw"]
    x = names[0]
    simple = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh"}
    if op in simple:
        return g.node(simple[op], [x], [out])
    if op == "leaky_relu":
        return g.node("LeakyRelu", [x], [out], alpha=float(kw.get("negative_slope", 0.01)))
    if op in ("softmax", "log_softmax"):
        return g.node("Softmax" if op == "softmax" else "LogSoftmax", [x], [out],
                      axis=int(kw.get("dim", -1)))
    if op == "silu":
        return g.node("Mul", [x, g.node("Sigmoid", [x])], [out])
    if op == "gelu":
        dt = rec["inputs"][0].dtype
        if kw.get("approximate", "none") == "tanh":
            c = g.const(np.array(math.sqrt(2 / math.pi), dt))
            cube = g.node("Mul", [g.node("Mul", [x, x]), x])
            inner = g.node("Add", [x, g.node("Mul", [cube, g.const(np.array(0.044715, dt))])])
            t = g.node("Tanh", [g.node("Mul", [inner, c])])
        else:
            t = g.node("Erf", [g.node("Div", [x, g.const(np.array(math.sqrt(2), dt))])])
        one_plus = g.node("Add", [t, g.const(np.array(1, dt))])
        return g.node("Mul", [g.node("Mul", [x, one_plus]), g.const(np.array(0.5, dt))], [out])
    if op == "linear":
        w_name, b_name = names[1], names[2] if len(names) > 2 else ""
        if rec["inputs"][0].ndim == 2:
            return g.node("Gemm", [x, w_name] + ([b_name] if b_name else []), [out], transB=1)
        wt = g.node("Transpose", [w_name], perm=[1, 0])
        y = g.node("MatMul", [x, wt], None if b_name else [out])
        return g.node("Add", [y, b_name], [out]) if b_name else y
    if op == "local_response_norm":
        return g.node("LRN", [x], [out], size=int(kw["size"]), alpha=float(kw["alpha"]),
                      beta=float(kw["beta"]), bias=float(kw["k"]))
    if op == "pad":
        from .ops._common import _torch_pad_order
        nd = rec["inputs"][0].ndim - 2
        pad = kw["pad"]
        vals = [int(pad)] * (2 * nd) if isinstance(pad, int) else \
            [0, 0] * (nd - len(pad) // 2) + _torch_pad_order([int(v) for v in pad])
        mode = kw.get("mode", "zeros")
        mode = "zeros" if mode == "constant" else mode
        y = _pad_node(g, x, vals[0::2] + vals[1::2], mode, kw.get("value", 0.0), what="pad")
        return g.node("Identity", [y], [out])
    raise ExportError(f"{op} has no ONNX form in cnncore.onnx")


def _elementwise(g, kind, rec, names, out):
    binary = {"Add": "Add", "Sub": "Sub", "Mul": "Mul", "Div": "Div", "Maximum": "Max",
              "MatMul": "MatMul"}
    unary = {"Neg": "Neg", "Exp": "Exp", "Log": "Log", "Sqrt": "Sqrt", "Abs": "Abs",
             "Clone": "Identity"}
    if kind in binary:
        return g.node(binary[kind], names[:2], [out])
    if kind in unary:
        return g.node(unary[kind], names[:1], [out])
    kw = rec["kw"]
    x = rec["inputs"][0]
    if kind == "Pow":
        e = g.const(np.array(kw["exponent"], x.dtype))
        return g.node("Pow", [names[0], e], [out])
    if kind == "Clamp":
        lo = g.const(np.array(-np.inf if kw.get("lo") is None else kw["lo"], x.dtype))
        hi = g.const(np.array(np.inf if kw.get("hi") is None else kw["hi"], x.dtype))
        return g.node("Clip", [names[0], lo, hi], [out])
    if kind == "Reshape":
        shape = list(rec["output"].shape)
        if shape and x.ndim and shape[0] == x.shape[0]:
            shape[0] = 0                # keep the batch axis free: "copy the input's"
        return g.node("Reshape", [names[0], g.const(np.array(shape, np.int64), "shape")], [out])
    if kind == "Permute":
        return g.node("Transpose", [names[0]], [out], perm=list(kw["dims"]))
    if kind == "Cat":
        return g.node("Concat", names, [out], axis=int(kw["axis"]))
    if kind in ("Sum", "Mean", "Max"):
        op = {"Sum": "ReduceSum", "Mean": "ReduceMean", "Max": "ReduceMax"}[kind]
        axes = g.const(np.array(list(kw["axes"]), np.int64), "axes")
        if kind == "Sum" or g.opset >= 18:
            return g.node(op, [names[0], axes], [out], keepdims=int(bool(kw["keepdim"])))
        return g.node(op, [names[0]], [out], axes=list(kw["axes"]),
                      keepdims=int(bool(kw["keepdim"])))
    raise ExportError(f"the tensor operation {kind} has no ONNX form in cnncore.onnx")


def _emit(g, rec):
    kind = rec["kind"]
    out = g.fresh("t")
    g.names[id(rec["output"])] = out
    g.keep.append(rec["output"])
    if kind == "BatchNorm":
        x, rm, rv, w, b = rec["inputs"]
        c = x.shape[1]
        kw = rec["kw"]
        if kw.get("training"):
            raise ExportError("batch_norm in training mode: export the model in eval mode")
        scale = g.value(w) if w is not None else g.const(np.ones(c, x.dtype), "bn_scale")
        shift = g.value(b) if b is not None else g.const(np.zeros(c, x.dtype), "bn_shift")
        g.node("BatchNormalization", [g.value(x), scale, shift, g.value(rm), g.value(rv)],
               [out], epsilon=float(kw.get("eps", 1e-5)))
        return
    if kind == "Dropout":
        g.node("Identity", [g.value(rec["inputs"][0])], [out])
        return
    names = [g.value(t) for t in rec["inputs"]]
    if kind == "Convolution":
        _conv(g, rec, names[0], out)
    elif kind in ("Pool", "MaxPool"):
        _pool(g, rec, names[0], out)
    elif kind == "ArrayOp":
        _array_op(g, rec, [n for n in names if n], out)
    else:
        _elementwise(g, kind, rec, names, out)


class _Recorder:
    """Replaces Function.apply while the model runs: each application is recorded, and the
    exporter's own errors carry the op's name."""

    def __init__(self):
        self.records = []

    def __enter__(self):
        from .nn.module import Module
        self.original = Function.__dict__["apply"]
        self.original_call = Module.__dict__["__call__"]
        original, original_call, records = self.original.__func__, self.original_call, \
            self.records
        stack = []

        def apply(cls, *inputs, **kwargs):
            out = original(cls, *inputs, **kwargs)
            kw = kwargs.get("kw", {k: v for k, v in kwargs.items()
                                   if k not in ("op", "op_backward", "indices_out")})
            records.append(dict(kind=cls.__name__, inputs=list(inputs), output=out,
                                op=kwargs.get("op"), kw=kw,
                                module=stack[-1] if stack else None))
            return out

        def call(module, *args, **kwargs):       # which layer each op belongs to
            stack.append(module)
            try:
                return original_call(module, *args, **kwargs)
            finally:
                stack.pop()
        Function.apply = classmethod(apply)
        Module.__call__ = call
        return self

    def __exit__(self, *exc):
        from .nn.module import Module
        Function.apply = self.original
        Module.__call__ = self.original_call
        return False


def export(model, example_input, path, opset=18, input_name="input", output_name="output"):
    """Write ``model`` (in eval mode, on inputs shaped like ``example_input`` with any batch
    size) to the ONNX file ``path``; returns the ``onnx.ModelProto``. The model's mode is
    restored afterwards. Raises :class:`ExportError` for a layer with no ONNX form."""
    onnx, helper, _ = _onnx()
    if isinstance(opset, bool) or not isinstance(opset, int) or not 13 <= opset <= 23:
        raise ValueError(f"export: opset must be an integer in 13..23, got {opset!r}")
    x = example_input if isinstance(example_input, Tensor) else Tensor(np.asarray(example_input))
    if x.data.dtype not in (np.float32, np.float64):
        raise TypeError(f"export: example_input must be float32 or float64, got {x.dtype}")
    names = {}
    for n, p in model.named_parameters():
        names[id(p)] = n
    for n, b in model.named_buffers():
        names[id(b)] = n
    was_training = model.training
    model.eval()
    try:
        with no_grad(), _Recorder() as rec:
            out = model(x)
    finally:
        model.train(was_training)
    if isinstance(out, (tuple, list)):
        out = out[0]
    g = _Graph(names, opset)
    # state-dict arrays are wrapped in fresh Tensors by some rules (batch norm's running
    # statistics): map them by their data too
    by_data = {id(b.data): n for n, b in model.named_buffers()}
    for r in rec.records:
        for t in r["inputs"]:
            if t is not None and id(t) not in names and id(t.data) in by_data:
                names[id(t)] = by_data[id(t.data)]
    g.names[id(x)] = input_name
    layers = {id(m): n for n, m in model.named_modules()}
    for r in rec.records:
        try:
            _emit(g, r)
        except ExportError as exc:
            m = r["module"]
            if m is None:
                raise
            where = layers.get(id(m)) or type(m).__name__
            raise ExportError(f"{where} ({type(m).__name__}): {exc}") from None
    if id(out) not in g.names:
        raise ExportError("the model's output was not produced by any recorded operation")
    g.nodes.append(helper.make_node("Identity", [g.names[id(out)]], [output_name]))
    elem = onnx.TensorProto.FLOAT if x.data.dtype == np.float32 else onnx.TensorProto.DOUBLE
    graph = helper.make_graph(
        g.nodes, type(model).__name__,
        [helper.make_tensor_value_info(input_name, elem, ["N"] + list(x.shape[1:]))],
        [helper.make_tensor_value_info(output_name, elem, ["N"] + list(out.shape[1:]))],
        g.initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="cnncore")
    proto.ir_version = min(proto.ir_version, 9)
    data = proto.SerializeToString()        # once: the checker and the file share it
    onnx.checker.check_model(data, full_check=False)
    with open(path, "wb") as f:
        f.write(data)
    return proto
