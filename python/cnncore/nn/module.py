"""``Module``: the container of parameters, buffers and sub-modules."""
import collections
import itertools

import numpy as np

from ..tensor import Function, RemovableHandle, Tensor, _dtype, is_grad_enabled

__all__ = ["Parameter", "Module", "Sequential", "ModuleList", "ModuleDict", "IncompatibleKeys",
           "StateDictError"]


class Parameter(Tensor):
    """A Tensor that a :class:`Module` registers as learnable (``requires_grad=True``)."""

    __slots__ = ()

    def __init__(self, data, requires_grad=True):
        super().__init__(data.data if isinstance(data, Tensor) else data)
        if not np.issubdtype(self.data.dtype, np.floating):
            raise TypeError(f"Parameter needs a floating-point array, got {self.data.dtype}")
        self.requires_grad = bool(requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


IncompatibleKeys = collections.namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class StateDictError(KeyError, ValueError):
    """A state dict that does not fit the module: missing or unexpected keys
    (a ``KeyError``) or mis-shaped arrays (a ``ValueError``); the message lists
    every problem."""

    def __str__(self):
        return str(self.args[0]) if self.args else ""

_forward_hooks = []   # global hooks (used by cnncore summary); empty in normal use


class Module:
    """Base class of every layer and network.

    Assigning a :class:`Parameter`, a ``Module`` or (via :meth:`register_buffer`)
    an array to an attribute registers it, in assignment order, so that
    :meth:`parameters`, :meth:`state_dict` and friends find it; names nest with
    dots (``layer1.0.conv1.weight``), the way torchvision names them.
    """

    training = True

    def __init__(self):
        d = self.__dict__
        d["_parameters"] = {}
        d["_buffers"] = {}
        d["_modules"] = {}
        d["_non_persistent"] = set()
        d["training"] = True

    # --- registration ---
    def __setattr__(self, name, value):
        d = self.__dict__
        if "_parameters" not in d:
            if isinstance(value, (Parameter, Module)):
                raise AttributeError(f"cannot assign {type(value).__name__} before "
                                     f"Module.__init__() call")
            object.__setattr__(self, name, value)
            return
        params, modules, buffers = d["_parameters"], d["_modules"], d["_buffers"]
        if isinstance(value, Parameter):
            modules.pop(name, None)
            buffers.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            params.pop(name, None)
            buffers.pop(name, None)
            modules[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as parameter {name!r} "
                                f"(a Parameter or None is required)")
            params[name] = None
        elif name in modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as child module "
                                f"{name!r} (a Module or None is required)")
            modules[name] = None
        elif name in buffers:
            if value is not None and not isinstance(value, Tensor):
                value = Tensor(value)
            buffers[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        for reg in ("_parameters", "_buffers", "_modules"):
            self.__dict__[reg].pop(name, None)
        object.__delattr__(self, name)

    def register_buffer(self, name, value, persistent=True):
        """A non-learnable array saved in :meth:`state_dict` (e.g. BatchNorm's running mean)."""
        if value is not None and not isinstance(value, Tensor):
            value = Tensor(np.asarray(value))
        self._buffers[name] = value
        if not persistent:
            self._non_persistent.add(name)
        object.__setattr__(self, name, value)

    def register_parameter(self, name, param):
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a Parameter or None, got "
                            f"{type(param).__name__}")
        self._parameters[name] = param
        object.__setattr__(self, name, param)

    def add_module(self, name, module):
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be a Module, got {type(module).__name__}")
        self._modules[name] = module
        object.__setattr__(self, name, module)

    # --- calling ---
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        hooks = self.__dict__.get("_hooks")
        try:
            if hooks is None:
                out = self.forward(*args, **kwargs)
            else:
                out, args = _call_with_hooks(self, hooks, args, kwargs)
        except (ValueError, TypeError, IndexError) as exc:
            _name_the_module(self, exc, args)
            raise
        if _forward_hooks:
            for hook in _forward_hooks:
                hook(self, args, out)
        return out

    # --- hooks (torch's semantics) ---
    def _hook_table(self):
        d = self.__dict__
        if d.get("_hooks") is None:
            d["_hooks"] = {"pre": {}, "forward": {}, "backward": {}}
        return d["_hooks"]

    def _add_module_hook(self, kind, hook):
        if not callable(hook):
            raise TypeError(f"a hook must be callable, got {type(hook).__name__}")
        table = self._hook_table()[kind]
        handle = RemovableHandle(table)
        table[handle.id] = hook
        return handle

    def register_forward_pre_hook(self, hook):
        """``hook(module, args)`` before each forward; a non-None result replaces the
        positional arguments (a tuple, or one value). Returns a removable handle."""
        return self._add_module_hook("pre", hook)

    def register_forward_hook(self, hook):
        """``hook(module, args, output)`` after each forward; a non-None result replaces the
        output. Returns a removable handle."""
        return self._add_module_hook("forward", hook)

    def register_full_backward_hook(self, hook):
        """``hook(module, grad_input, grad_output)`` once backward has computed the
        gradients with respect to the module's tensor inputs (tuples, None for inputs that
        need no gradient). For a module with one input, a non-None result (a tuple of one)
        replaces its gradient. Returns a removable handle."""
        return self._add_module_hook("backward", hook)

    # --- traversal ---
    def named_children(self):
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix="", memo=None):
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, m in self.named_children():
            yield from m.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix="", recurse=True):
        seen = set()
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mprefix, m in mods:
            for name, p in m._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mprefix}.{name}" if mprefix else name), p

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True):
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mprefix, m in mods:
            for name, b in m._buffers.items():
                if b is not None:
                    yield (f"{mprefix}.{name}" if mprefix else name), b

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def num_parameters(self, trainable_only=False):
        """Total number of parameter elements."""
        return sum(p.data.size for p in self.parameters()
                   if p.requires_grad or not trainable_only)

    # --- modes ---
    def train(self, mode=True):
        for m in self.modules():
            m.__dict__["training"] = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad = bool(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad = Tensor(np.zeros_like(p.data))

    def apply(self, fn):
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def to(self, *args, dtype=None, device=None):
        """``to(dtype)``, ``to("cuda")``, ``to("cpu")`` or ``to(device, dtype)``: move and/or
        convert every floating parameter and buffer in place (gradients are dropped
        when a parameter moves or changes dtype)."""
        from .. import _core
        from ..tensor import _check_device, _is_dtype_name, Device
        for a in args:
            if isinstance(a, (str, Device)) and not _is_dtype_name(a):
                device = a
            else:
                dtype = a
        if device is not None:
            target = _check_device(device).type
            for m in self.modules():
                for store in (m._parameters, m._buffers):
                    for t in store.values():
                        if t is None or not np.issubdtype(t.data.dtype, np.floating):
                            continue
                        here = "cuda" if isinstance(t.data, _core.DeviceTensor) else "cpu"
                        if here != target:
                            t.data = _core.to_device(t.data if here == "cuda" else np.ascontiguousarray(t.data),
                                                     target)
                            t.grad = None
        if dtype is None:
            return self
        dt = _dtype(dtype)
        for m in self.modules():
            for p in m._parameters.values():
                if p is not None and p.data.dtype != dt:
                    p.data = p.data.astype(dt)
                    p.grad = None
            for b in m._buffers.values():
                if b is not None and np.issubdtype(b.data.dtype, np.floating):
                    b.data = b.data.astype(dt)
        return self

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    # --- state ---
    def state_dict(self, prefix=""):
        """Ordered ``name -> Tensor`` of every parameter and persistent buffer
        (sharing memory with the module; copy before mutating)."""
        out = collections.OrderedDict()
        for mprefix, m in self.named_modules(prefix.rstrip(".")):
            pre = f"{mprefix}." if mprefix else ""
            for name, p in m._parameters.items():
                if p is not None:
                    out[pre + name] = p.detach()
            for name, b in m._buffers.items():
                if b is not None and name not in m._non_persistent:
                    out[pre + name] = b.detach()
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays from ``state_dict`` (name -> array-like: Tensor, ndarray, a
        torch tensor ...) into this module's parameters and buffers.

        Mis-shaped arrays, and with ``strict=True`` missing or unexpected keys,
        raise :class:`StateDictError` (both a ``KeyError`` and a ``ValueError``)
        listing every problem; all checks run before anything is copied.
        Returns ``(missing_keys, unexpected_keys)``.
        """
        if not hasattr(state_dict, "items"):
            raise TypeError(f"load_state_dict expects a mapping of names to arrays, got "
                            f"{type(state_dict).__name__}")
        own = self.state_dict()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        problems = []
        arrays = {}
        for k, dst in own.items():
            if k not in state_dict:
                continue
            src = state_dict[k]
            try:
                arr = _as_numpy(src)
            except Exception as exc:  # noqa: BLE001 - report any conversion failure
                problems.append(f"{k}: cannot convert {type(src).__name__} to an array ({exc})")
                continue
            if arr.shape != dst.shape:
                problems.append(f"size mismatch for {k}: copying a param with shape "
                                f"{tuple(arr.shape)} from checkpoint, the shape in current "
                                f"model is {tuple(dst.shape)}")
                continue
            arrays[k] = arr
        keys = []
        if strict and missing:
            keys.append("Missing key(s) in state_dict: " +
                            ", ".join(f'"{k}"' for k in missing[:20]) +
                            (f" ... ({len(missing)} in all)" if len(missing) > 20 else ""))
        if strict and unexpected:
            keys.append("Unexpected key(s) in state_dict: " +
                            ", ".join(f'"{k}"' for k in unexpected[:20]) +
                            (f" ... ({len(unexpected)} in all)" if len(unexpected) > 20 else ""))
        problems = keys + problems
        if problems:
            raise StateDictError(f"Error(s) in loading state_dict for {type(self).__name__}:"
                                 "\n\t" + "\n\t".join(problems))
        for k, arr in arrays.items():
            dst = own[k].data
            dst[...] = arr.astype(dst.dtype, copy=False)
        return IncompatibleKeys(missing, unexpected)

    # --- printing ---
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = []
        extra = self.extra_repr()
        if extra:
            lines = extra.split("\n")
        for name, m in self._modules.items():
            text = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {text}")
        main = type(self).__name__ + "("
        if lines and (len(lines) > 1 or self._modules):
            return main + "\n  " + "\n  ".join(lines) + "\n)"
        return main + "".join(lines) + ")"

    def __dir__(self):
        return sorted(set(itertools.chain(super().__dir__(), self._parameters, self._modules,
                                          self._buffers)))


def _name_the_module(module, exc, args):
    """Prefix the message of an error raised inside a model with the path of the sub-module
    that raised it (``features.6 (MaxPool2d)``) and the shape of the input that reached it:
    each enclosing module, as the error passes through its call, adds its child's name. An
    error of the module the caller called directly keeps its message."""
    where = getattr(exc, "_cnncore_where", None)
    if where is None:
        shape = next((tuple(a.shape) for a in args if isinstance(a, Tensor)), None)
        where = {"names": [], "kind": type(module).__name__, "shape": shape,
                 "message": str(exc.args[0]) if len(exc.args) == 1 else str(exc)}
        exc._cnncore_where = where
    else:
        child = exc._cnncore_child
        name = next((n for n, m in module._modules.items() if m is child), None)
        if name is None:                    # called without being registered: stop the path
            exc._cnncore_child = module
            return
        where["names"].insert(0, name)
    exc._cnncore_child = module
    if not where["names"]:          # raised by the module the caller called: no path to add
        return
    path = ".".join(where["names"])
    head = f"{path} ({where['kind']})"
    if where["shape"] is not None:
        head += f" on input of shape {where['shape']}"
    exc.args = (f"{head}: {where['message']}",)


def _call_with_hooks(module, hooks, args, kwargs):
    for hook in list(hooks["pre"].values()):
        result = hook(module, args)
        if result is not None:
            args = result if isinstance(result, tuple) else (result,)
    backward = list(hooks["backward"].values())
    state = None
    if backward and is_grad_enabled():
        state = _BackwardHookState(module, backward, args)
        args = state.wrap_inputs(args)
    out = module.forward(*args, **kwargs)
    for hook in list(hooks["forward"].values()):
        result = hook(module, args, out)
        if result is not None:
            out = result
    if state is not None:
        out = state.wrap_output(out)
    return out, args


class _BackwardHookState:
    """Collects one forward call's gradients for its module's full backward hooks: identity
    nodes on the tensor inputs and the output record what flows through them."""

    def __init__(self, module, hooks, args):
        self.module, self.hooks = module, hooks
        self.n_inputs = len(args)
        self.grad_output = None
        self.grad_input = [None] * len(args)
        self.waiting = 0

    def wrap_inputs(self, args):
        out = list(args)
        for i, a in enumerate(args):
            if isinstance(a, Tensor) and a.requires_grad:
                out[i] = _HookIdentity.apply(a, state=self, slot=i)
                self.waiting += 1
        return tuple(out)

    def wrap_output(self, out):
        if isinstance(out, Tensor) and out.requires_grad:
            return _HookIdentity.apply(out, state=self, slot=None)
        return out

    def output_grad(self, g):
        self.grad_output = (Tensor(g),)
        if self.waiting == 0:           # no input needs a gradient: call the hooks now
            self.fire()

    def input_grad(self, slot, g):
        self.grad_input[slot] = Tensor(g)
        self.waiting -= 1
        if self.waiting == 0:
            replaced = self.fire()
            if replaced is not None and self.n_inputs == 1:
                new = replaced[0]
                return np.asarray(new.data if isinstance(new, Tensor) else new, g.dtype)
        return g

    def fire(self):
        replaced = None
        for hook in self.hooks:
            result = hook(self.module, tuple(self.grad_input), self.grad_output)
            if result is not None:
                replaced = result if isinstance(result, tuple) else (result,)
        return replaced


class _HookIdentity(Function):
    # saves: the hook state and which input (None: the output) this node stands for
    def forward(self, a, state, slot):
        self.state, self.slot = state, slot
        return a

    def backward(self, grad):
        if self.slot is None:
            self.state.output_grad(grad)
            return (grad,)
        return (self.state.input_grad(self.slot, grad),)


def _as_numpy(value):
    if isinstance(value, Tensor):
        return value.data.get() if value.is_cuda else value.data
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach") and hasattr(value, "cpu"):   # a torch tensor
        return value.detach().cpu().numpy()
    return np.asarray(value)


class Sequential(Module):
    """Modules applied in order; children are named ``0, 1, 2, ...``
    (or by the keys of an ``OrderedDict`` argument)."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], collections.OrderedDict):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)
        self.__dict__["_seq"] = None

    def add_module(self, name, module):
        super().add_module(name, module)
        self.__dict__["_seq"] = None

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self

    def _layers(self):
        seq = self.__dict__.get("_seq")
        if seq is None:
            seq = tuple(m for m in self._modules.values() if m is not None)
            self.__dict__["_seq"] = seq
        return seq

    def forward(self, x):
        for m in self._layers():
            x = m(x)
        return x

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            keys = list(self._modules)[idx]
            return Sequential(collections.OrderedDict((k, self._modules[k]) for k in keys))
        items = list(self._modules.values())
        return items[idx]


class ModuleList(Module):
    """A list of modules, registered as children ``0, 1, 2, ...``."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, idx):
        items = list(self._modules.values())
        if isinstance(idx, slice):
            return ModuleList(items[idx])
        return items[idx]


class ModuleDict(Module):
    """A dict of named child modules."""

    def __init__(self, modules=None):
        super().__init__()
        for k, m in (modules or {}).items():
            self.add_module(k, m)

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        self.add_module(key, module)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()
