"""Tensors with reverse-mode automatic differentiation.

A :class:`Tensor` wraps a NumPy array (``.data``; ``.numpy()`` returns it
without copying). Every differentiable operation is a :class:`Function`
subclass whose ``forward`` (arrays in, array out) and ``backward`` (gradient
of the output in, gradients of the inputs out) sit side by side, each stating
what it saves. ``Function.apply`` records the graph only when some input
requires a gradient and grad mode is on; :meth:`Tensor.backward` walks that
graph once in reverse topological order.

The elementwise, reduction and shape operations here are plain NumPy; the
network operations (convolution, pooling, activations, losses ...) live in
:mod:`cnncore.functional` and call the C++ kernels in :mod:`cnncore.ops`.
"""
import collections
import functools
import numbers
import weakref

import numpy as np

from . import _core

_DeviceArray = _core.DeviceTensor  # cnncore.cuda.CudaArray derives from it


def _asarray(x):
    """np.asarray, leaving a device array (cnncore.cuda.CudaArray) where it is."""
    return x if isinstance(x, _DeviceArray) else np.asarray(x)

__all__ = [
    "Tensor", "Function", "tensor", "from_numpy", "from_dlpack", "no_grad", "enable_grad",
    "is_grad_enabled", "set_grad_enabled", "cat", "stack", "zeros", "ones", "randn", "rand",
    "arange", "full", "linspace", "zeros_like", "ones_like", "where", "matmul", "Device",
    "gradcheck",
]

_grad_enabled = True


def is_grad_enabled():
    """Whether operations record the graph for :meth:`Tensor.backward`."""
    return _grad_enabled


class _GradMode:
    """A context manager and decorator that runs its block (or function) with grad mode
    ``self.mode`` and restores the previous mode afterwards."""

    mode = True

    def __enter__(self):
        global _grad_enabled
        self.prev = _grad_enabled
        _grad_enabled = self.mode
        return self

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self.prev
        return False

    def __call__(self, fn):
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with _Mode(mode):
                return fn(*args, **kwargs)
        return wrapper


class _Mode(_GradMode):
    def __init__(self, mode):
        self.mode = bool(mode)


class no_grad(_GradMode):
    """``with cnncore.no_grad(): ...`` (or ``@cnncore.no_grad()``): build no graph."""

    mode = False


class enable_grad(_GradMode):
    """Turn grad mode back on inside a :class:`no_grad` block."""

    mode = True


class set_grad_enabled(_GradMode):
    """Set grad mode, as torch does, three ways: called as a function
    (``set_grad_enabled(False)`` switches it now, until switched back), as a context
    manager (the previous mode returns when the block ends) or as a decorator."""

    def __init__(self, mode=True):
        global _grad_enabled
        if not isinstance(mode, (bool, np.bool_)):
            raise TypeError(f"set_grad_enabled: mode must be a bool, got "
                            f"{type(mode).__name__}")
        self.mode = bool(mode)
        self.prev = _grad_enabled
        _grad_enabled = self.mode           # takes effect at once, like torch's

    def __enter__(self):
        return self                         # (already switched by __init__)

    def __call__(self, fn):
        global _grad_enabled
        _grad_enabled = self.prev           # as a decorator it only wraps
        return super().__call__(fn)


# ---------------------------------------------------------------------------
# Function: one node of the graph


class Function:
    """A differentiable operation.

    Subclasses implement ``forward(self, *arrays, **kwargs) -> ndarray`` (saving
    on ``self`` what the backward needs) and ``backward(self, grad) -> tuple``
    with one gradient per tensor input (``None`` where not needed; see
    ``self.needs_input_grad``). ``apply(*tensors, **kwargs)`` runs it.
    """

    parents = ()
    needs_input_grad = ()

    def forward(self, *arrays, **kwargs):  # pragma: no cover - interface
        raise NotImplementedError

    def backward(self, grad):  # pragma: no cover - interface
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **kwargs):
        """Run the op on Tensors (or ``None`` for absent optional inputs)."""
        ctx = cls()
        needs = tuple(t is not None and t.requires_grad for t in inputs)
        ctx.parents = inputs
        ctx.needs_input_grad = needs
        out = ctx.forward(*[None if t is None else t.data for t in inputs], **kwargs)
        if type(out) is not np.ndarray and not isinstance(out, _DeviceArray):
            out = np.asarray(out)
        if _grad_enabled and True in needs:
            return Tensor._make(out, True, ctx)
        return Tensor._make(out, False, None)

    def __repr__(self):
        return f"<{type(self).__name__}>"


def _unbroadcast(grad, shape):
    """Sum ``grad`` down to ``shape`` (the inverse of NumPy broadcasting)."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


# --- elementwise arithmetic (NumPy broadcasting) ----------------------------

class Add(Function):
    # saves: the input shapes (to undo broadcasting)
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, grad):
        sa, sb = self.shapes
        na, nb = self.needs_input_grad
        return (_unbroadcast(grad, sa) if na else None,
                _unbroadcast(grad, sb) if nb else None)


class Sub(Function):
    # saves: the input shapes
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, grad):
        sa, sb = self.shapes
        na, nb = self.needs_input_grad
        return (_unbroadcast(grad, sa) if na else None,
                _unbroadcast(-grad, sb) if nb else None)


class Mul(Function):
    # saves: both inputs
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, grad):
        na, nb = self.needs_input_grad
        return (_unbroadcast(grad * self.b, self.a.shape) if na else None,
                _unbroadcast(grad * self.a, self.b.shape) if nb else None)


class Div(Function):
    # saves: both inputs
    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, grad):
        na, nb = self.needs_input_grad
        ga = _unbroadcast(grad / self.b, self.a.shape) if na else None
        gb = _unbroadcast(-grad * self.a / (self.b * self.b), self.b.shape) if nb else None
        return ga, gb


class Neg(Function):
    # saves: nothing
    def forward(self, a):
        return -a

    def backward(self, grad):
        return (-grad,)


class Pow(Function):
    # saves: the input and the (constant) exponent
    def forward(self, a, exponent):
        self.a, self.exponent = a, exponent
        return a ** exponent

    def backward(self, grad):
        p = self.exponent
        return (grad * p * self.a ** (p - 1),)


class Exp(Function):
    # saves: the output
    def forward(self, a):
        self.out = np.exp(a)
        return self.out

    def backward(self, grad):
        return (grad * self.out,)


class Log(Function):
    # saves: the input
    def forward(self, a):
        self.a = a
        return np.log(a)

    def backward(self, grad):
        return (grad / self.a,)


class Sqrt(Function):
    # saves: the output
    def forward(self, a):
        self.out = np.sqrt(a)
        return self.out

    def backward(self, grad):
        return (grad / (2 * self.out),)


class Abs(Function):
    # saves: the sign of the input
    def forward(self, a):
        self.sign = np.sign(a)
        return np.abs(a)

    def backward(self, grad):
        return (grad * self.sign,)


class Clamp(Function):
    # saves: where the input was inside [lo, hi] (the gradient passes there)
    def forward(self, a, lo=None, hi=None):
        out = np.clip(a, lo, hi)
        self.inside = out == a
        return out

    def backward(self, grad):
        return (grad * self.inside,)


class Maximum(Function):
    # saves: where a won (ties split evenly, like torch)
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        self.wa = (a > b) + 0.5 * (a == b)
        return np.maximum(a, b)

    def backward(self, grad):
        sa, sb = self.shapes
        wa = self.wa.astype(grad.dtype, copy=False)
        na, nb = self.needs_input_grad
        return (_unbroadcast(grad * wa, sa) if na else None,
                _unbroadcast(grad * (1 - wa), sb) if nb else None)


class Cast(Function):
    # saves: the input dtype
    def forward(self, a, dtype):
        self.src = a.dtype
        return a.astype(dtype)

    def backward(self, grad):
        return (grad.astype(self.src),)


# --- linear algebra --------------------------------------------------------

class MatMul(Function):
    # saves: both inputs (promoted to at least 2-D)
    def forward(self, a, b):
        self.a_shape, self.b_shape = a.shape, b.shape
        self.a = a[None, :] if a.ndim == 1 else a
        self.b = b[:, None] if b.ndim == 1 else b
        return a @ b

    def backward(self, grad):
        a, b = self.a, self.b
        g = grad
        if len(self.a_shape) == 1:
            g = np.expand_dims(g, -2)
        if len(self.b_shape) == 1:
            g = np.expand_dims(g, -1)
        na, nb = self.needs_input_grad
        ga = gb = None
        if na:
            ga = _unbroadcast(g @ np.swapaxes(b, -1, -2), self.a.shape).reshape(self.a_shape)
        if nb:
            gb = _unbroadcast(np.swapaxes(a, -1, -2) @ g, self.b.shape).reshape(self.b_shape)
        return ga, gb


# --- reductions ------------------------------------------------------------

def _axes(dim, ndim):
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, (tuple, list)):
        return tuple(d % ndim if ndim else d for d in dim)
    return ((dim % ndim) if ndim else dim,)


class Sum(Function):
    # saves: the input shape and the reduced axes
    def forward(self, a, axes, keepdim):
        self.shape, self.axes, self.keepdim = a.shape, axes, keepdim
        return _asarray(a.sum(axis=axes, keepdims=keepdim))

    def backward(self, grad):
        if not self.keepdim:
            grad = np.expand_dims(grad, self.axes)
        return (np.broadcast_to(grad, self.shape).copy(),)


class Mean(Function):
    # saves: the input shape, the reduced axes and the count
    def forward(self, a, axes, keepdim):
        self.shape, self.axes, self.keepdim = a.shape, axes, keepdim
        self.count = int(np.prod([a.shape[i] for i in axes])) if axes else 1
        return _asarray(a.mean(axis=axes, keepdims=keepdim))

    def backward(self, grad):
        if not self.keepdim:
            grad = np.expand_dims(grad, self.axes)
        return (np.broadcast_to(grad / self.count, self.shape).copy(),)


class Max(Function):
    # saves: a mask of the maxima (ties share the gradient equally)
    _extreme = staticmethod(np.max)

    def forward(self, a, axes, keepdim):
        out = self._extreme(a, axis=axes, keepdims=True)
        mask = (a == out)
        self.mask = mask / mask.sum(axis=axes, keepdims=True)
        self.axes, self.keepdim = axes, keepdim
        return out if keepdim else np.squeeze(out, axis=axes)

    def backward(self, grad):
        if not self.keepdim:
            grad = np.expand_dims(grad, self.axes)
        return ((grad * self.mask).astype(grad.dtype, copy=False),)


class Min(Max):
    # saves: a mask of the minima (ties share the gradient equally)
    _extreme = staticmethod(np.min)


class Where(Function):
    # saves: the condition (broadcast against both inputs) and the input shapes
    def forward(self, a, b, cond):
        self.cond, self.shapes = cond, (a.shape, b.shape)
        return np.where(cond, a, b)

    def backward(self, grad):
        sa, sb = self.shapes
        na, nb = self.needs_input_grad
        zero = np.zeros((), grad.dtype)
        return (_unbroadcast(np.where(self.cond, grad, zero), sa) if na else None,
                _unbroadcast(np.where(self.cond, zero, grad), sb) if nb else None)


# --- shape ------------------------------------------------------------------

class Clone(Function):
    # saves: nothing
    def forward(self, a):
        return a.copy()

    def backward(self, grad):
        return (grad,)


class Reshape(Function):
    # saves: the input shape
    def forward(self, a, shape):
        self.shape = a.shape
        return a.reshape(shape)

    def backward(self, grad):
        return (grad.reshape(self.shape),)


class Permute(Function):
    # saves: the permutation
    def forward(self, a, dims):
        self.dims = dims
        return np.transpose(a, dims)

    def backward(self, grad):
        return (np.transpose(grad, np.argsort(self.dims)),)


class Expand(Function):
    # saves: the input shape
    def forward(self, a, shape):
        self.shape = a.shape
        return np.broadcast_to(a, shape)

    def backward(self, grad):
        return (_unbroadcast(grad, self.shape),)


def _is_basic_index(idx):
    items = idx if isinstance(idx, tuple) else (idx,)
    return all(isinstance(i, (numbers.Integral, slice)) or i is None or i is Ellipsis
               for i in items if not isinstance(i, (bool, np.bool_)))


class GetItem(Function):
    # saves: the input shape and the index
    def forward(self, a, index):
        self.shape, self.dtype, self.index = a.shape, a.dtype, index
        return _asarray(a[index])

    def backward(self, grad):
        out = np.zeros_like(grad, shape=self.shape, dtype=self.dtype)
        if _is_basic_index(self.index):
            out[self.index] = grad
        else:
            np.add.at(out, self.index, grad)
        return (out,)


class Cat(Function):
    # saves: the axis and the split points
    def forward(self, *arrays, axis):
        self.axis = axis
        self.bounds = np.cumsum([a.shape[axis] for a in arrays])[:-1]
        return np.concatenate(arrays, axis=axis)

    def backward(self, grad):
        parts = np.split(grad, self.bounds, axis=self.axis)
        return tuple(p if n else None for p, n in zip(parts, self.needs_input_grad))


class Stack(Function):
    # saves: the axis
    def forward(self, *arrays, axis):
        self.axis = axis
        return np.stack(arrays, axis=axis)

    def backward(self, grad):
        return tuple(np.take(grad, i, axis=self.axis) if n else None
                     for i, n in enumerate(self.needs_input_grad))


# ---------------------------------------------------------------------------
# Tensor


def _default_dtype_of(value):
    """What a Python scalar or list becomes: float32 for reals (like torch)."""
    arr = np.asarray(value)
    if arr.dtype == np.float64:
        return arr.astype(np.float32)
    return arr


def _to_array(value, dtype=None):
    if isinstance(value, Tensor):
        arr = value.data
    elif isinstance(value, (np.ndarray, _DeviceArray)):
        arr = value
    elif isinstance(value, np.generic):
        arr = np.asarray(value)
    elif hasattr(value, "__array__") or hasattr(value, "__dlpack__"):
        arr = np.asarray(value)
    else:
        arr = _default_dtype_of(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"a Tensor holds booleans, integers or real floating-point numbers; "
                        f"got dtype {arr.dtype} ({_KIND_NAMES.get(arr.dtype.kind, 'other')})")
    if dtype is not None:
        arr = arr.astype(_dtype(dtype), copy=False)
    return arr


_KIND_NAMES = {"c": "complex numbers", "U": "strings", "S": "bytes", "O": "Python objects",
               "M": "dates", "m": "time spans", "V": "raw records"}


_DTYPE_NAMES = {
    "float32": np.float32, "float": np.float32, "float64": np.float64, "double": np.float64,
    "float16": np.float16, "half": np.float16, "int64": np.int64, "long": np.int64,
    "int32": np.int32, "int": np.int32, "int16": np.int16, "int8": np.int8, "uint8": np.uint8,
    "bool": np.bool_,
}


def _dtype(dtype):
    if isinstance(dtype, str):
        try:
            return np.dtype(_DTYPE_NAMES[dtype])
        except KeyError:
            raise TypeError(f"unknown dtype {dtype!r}") from None
    return np.dtype(dtype)


MaxResult = collections.namedtuple("MaxResult", ["values", "indices"])


class Device:
    """Where a tensor's data lives: ``cnncore.device("cpu")`` or ``cnncore.device("cuda")``
    (device 0, the only CUDA device cnncore uses; see :mod:`cnncore.cuda`)."""

    __slots__ = ("type", "index")

    def __init__(self, type="cpu", index=None):  # noqa: A002 - torch's names
        if isinstance(type, Device):
            type, index = type.type, type.index
        kind, _, idx = str(type).partition(":")
        if kind not in ("cpu", "cuda"):
            raise RuntimeError(f"unknown device {str(type)!r}: cnncore has 'cpu' and 'cuda'")
        self.type, self.index = kind, (int(idx) if idx else index)
        if kind == "cuda" and self.index not in (None, 0):
            raise RuntimeError(f"device {str(type)!r}: cnncore uses CUDA device 0 only")

    def __eq__(self, other):
        if isinstance(other, str):
            try:
                other = Device(other)
            except RuntimeError:
                return False
        return isinstance(other, Device) and other.type == self.type

    def __hash__(self):
        return hash(self.type)

    def __str__(self):
        return self.type

    def __repr__(self):
        return f"device(type={self.type!r})"


_CPU = Device("cpu")
_CUDA = Device("cuda")


def _check_device(device):
    """The Device named; RuntimeError for an unknown one, or for "cuda" when no CUDA
    device (or the emulator, cnncore.cuda.use_emulator) can serve it."""
    d = Device(device)
    if d.type == "cuda":
        info = _core.cuda_info()
        if not (info["available"] or info["emulated"]):
            raise RuntimeError(f"CUDA is not available: {info['why_unavailable']}")
    return d


class ToDevice(Function):
    # saves: the source device (the gradient goes back there)
    def forward(self, a, device):
        self.src = "cuda" if isinstance(a, _DeviceArray) else "cpu"
        return _core.to_device(a if self.src == "cuda" else np.ascontiguousarray(a), device)

    def backward(self, grad):
        return (_core.to_device(grad, self.src),)


def _is_dtype_name(value):
    if not isinstance(value, str):
        return False
    try:
        np.dtype(value)
    except TypeError:
        return False
    return True


_backward_callbacks = None     # a list while Tensor.backward runs (see queue_callback)


def queue_callback(fn):
    """Run ``fn()`` once the running :meth:`Tensor.backward` has finished (every leaf
    gradient accumulated). Only valid from inside a hook during a backward pass."""
    if _backward_callbacks is None:
        raise RuntimeError("queue_callback: no backward pass is running")
    _backward_callbacks.append(fn)


class RemovableHandle:
    """Returned by the ``register_*_hook`` methods; ``remove()`` unregisters the hook."""

    _next_id = 0

    def __init__(self, registry):
        self._registry = registry
        RemovableHandle._next_id += 1
        self.id = RemovableHandle._next_id

    def remove(self):
        self._registry.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _apply_grad_hooks(t, hooks, g):
    for kind, fn in list(hooks.values()):
        if kind != "pre":
            continue
        out = fn(Tensor._make(g, False, None))
        if out is not None:
            new = np.asarray(out.data if isinstance(out, Tensor) else out)
            if new.shape != g.shape:
                raise RuntimeError(f"a tensor hook returned a gradient of shape {new.shape} "
                                   f"for a tensor of shape {g.shape}")
            g = new.astype(g.dtype, copy=False)
    return g


class Tensor:
    """An n-dimensional array that can record how it was computed.

    ``Tensor(data, requires_grad=False)`` shares memory with an ndarray ``data``;
    :func:`tensor` copies. Gradients arrive in ``.grad`` (a Tensor) after
    :meth:`backward`, accumulating across calls until reset to ``None``.
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "_hooks", "__weakref__")
    __array_priority__ = 1000

    def __init__(self, data, requires_grad=False, dtype=None):
        self.data = _to_array(data, dtype)
        self.grad = None
        self._ctx = None
        self._hooks = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @staticmethod
    def _make(data, requires_grad, ctx):
        t = object.__new__(Tensor)
        t.data = data
        t.grad = None
        t.requires_grad = requires_grad
        t._ctx = ctx
        t._hooks = None
        return t

    # --- basic properties ---
    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def is_leaf(self):
        return self._ctx is None

    @property
    def grad_fn(self):
        return self._ctx

    @property
    def T(self):
        return self.permute(*reversed(range(self.ndim)))

    def dim(self):
        return self.data.ndim

    def size(self, dim=None):
        return self.data.shape if dim is None else self.data.shape[dim]

    def numel(self):
        return self.data.size

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def requires_grad_(self, mode=True):
        if mode and not np.issubdtype(self.data.dtype, np.floating):
            raise TypeError(f"only floating-point tensors can require gradients, "
                            f"got dtype {self.data.dtype}")
        self.requires_grad = bool(mode)
        return self

    # --- conversion ---
    def numpy(self):
        """The underlying ndarray (no copy); TypeError for a CUDA tensor (use .cpu() first)."""
        if isinstance(self.data, _DeviceArray):
            raise TypeError("can't convert a cuda tensor to NumPy: copy it to the host with .cpu() first")
        return self.data

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.reshape(()).item()

    def tolist(self):
        return self.data.tolist()

    def detach(self):
        """A tensor sharing this one's data, outside the graph."""
        return Tensor._make(self.data, False, None)

    def clone(self):
        return Clone.apply(self)

    @property
    def device(self):
        """Where the data lives: ``cnncore.device("cpu")`` or ``cnncore.device("cuda")``."""
        return _CUDA if isinstance(self.data, _DeviceArray) else _CPU

    @property
    def is_cuda(self):
        return isinstance(self.data, _DeviceArray)

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        return self.to("cuda" if device is None else device)

    def _to_device(self, device):
        """This tensor on `device` (itself when it is there), differentiable. Integer
        tensors (class labels) stay on the host: the ops that take labels accept them
        from the CPU whatever the device of their other inputs (docs/cuda.md)."""
        d = _check_device(device)
        if d.type == self.device.type or not np.issubdtype(self.data.dtype, np.floating):
            return self
        if self.data.dtype not in (np.float32, np.float64):
            raise TypeError(f"to({d.type!r}): CUDA tensors hold float32 or float64, got {self.data.dtype}")
        return ToDevice.apply(self, device=d.type)

    def to(self, *args, dtype=None, device=None, copy=False):
        """``to(dtype)``, ``to("cpu")``, ``to(device, dtype)``, ``to(other_tensor)``, as in
        torch: a Tensor of that dtype (itself when nothing changes, unless ``copy``),
        differentiable between floating dtypes."""
        for a in args:
            if isinstance(a, Tensor):
                dtype = a.dtype if dtype is None else dtype
            elif isinstance(a, (str, Device)) and not _is_dtype_name(a):
                device = a
            else:
                dtype = a if dtype is None else dtype
        src = self if device is None else self._to_device(device)
        if dtype is None:
            return src.clone() if copy and src is self else src
        out = src._cast(dtype)
        return out.clone() if copy and out is self else out

    def _cast(self, dtype):
        dtype = _dtype(dtype)
        if dtype == self.data.dtype:
            return self
        if self.requires_grad and np.issubdtype(dtype, np.floating):
            return Cast.apply(self, dtype=dtype)
        return Tensor._make(self.data.astype(dtype), False, None)

    def astype(self, dtype):
        return self._cast(dtype)

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    def long(self):
        return self.to(np.int64)

    def int(self):
        return self.to(np.int32)

    def bool(self):
        return self.to(np.bool_)

    def type_as(self, other):
        return self.to(other.dtype)

    def __array__(self, dtype=None, copy=None):
        if isinstance(self.data, _DeviceArray):
            raise TypeError("can't convert a cuda tensor to NumPy implicitly: use .cpu() first")
        if dtype is not None and np.dtype(dtype) != self.data.dtype:
            return self.data.astype(dtype)
        if copy:
            return self.data.copy()
        return self.data

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        # ndarray (op) Tensor stays in the graph for the arithmetic operators;
        # any other ufunc sees plain arrays and returns an ndarray.
        if method == "__call__" and not kwargs and len(inputs) == 2:
            a, b = inputs
            op = _UFUNC_OPS.get(ufunc)
            if op is not None:
                return op(_wrap(a, b), _wrap(b, a))
        arrays = [x.data if isinstance(x, Tensor) else x for x in inputs]
        if "out" in kwargs:
            kwargs["out"] = tuple(x.data if isinstance(x, Tensor) else x for x in kwargs["out"])
        return getattr(ufunc, method)(*arrays, **kwargs)

    def __dlpack__(self, *args, **kwargs):
        return self.data.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self.data.__dlpack_device__()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor with {self.data.size} elements is "
                             f"ambiguous")
        return bool(self.data.reshape(()))

    def __repr__(self):
        host = self.data.get() if isinstance(self.data, _DeviceArray) else self.data
        body = np.array2string(host, separator=", ", prefix="tensor(", precision=4)
        extra = ""
        if self.data.dtype not in (np.float32, np.int64, np.bool_):
            extra += f", dtype={self.data.dtype}"
        if self._ctx is not None:
            extra += f", grad_fn=<{type(self._ctx).__name__}>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    __hash__ = object.__hash__

    # --- autograd ---
    def backward(self, grad=None):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        ``grad`` (dL/d(self)) may be omitted for a one-element tensor.
        """
        if not self.requires_grad:
            raise RuntimeError("backward(): this tensor does not require grad and has no "
                               "graph (were its inputs created with requires_grad=True, "
                               "outside no_grad()?)")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward(): grad can be implied only for a one-element "
                                   f"tensor, this one has shape {self.shape}")
            grad = np.ones_like(self.data)
        else:
            grad = _to_array(grad)
            grad = grad.astype(self.data.dtype, copy=False) if isinstance(grad, _DeviceArray) else np.asarray(
                grad, dtype=self.data.dtype)
            if isinstance(grad, _DeviceArray) != isinstance(self.data, _DeviceArray):
                raise ValueError(f"backward(): grad is on {'cuda' if isinstance(grad, _DeviceArray) else 'cpu'}, "
                                 f"this tensor on {self.device}; move one of them")
            if grad.shape != self.shape:
                raise ValueError(f"backward(): grad has shape {grad.shape}, expected "
                                 f"{self.shape}")
        global _backward_callbacks
        order = self._topological_order()
        grads = {id(self): grad}
        outer, _backward_callbacks = _backward_callbacks, []
        try:
            self._run_backward(order, grads)
            callbacks = _backward_callbacks
        finally:
            _backward_callbacks = outer
        for fn in callbacks:
            fn()

    def _run_backward(self, order, grads):
        for t in order:
            g = grads.pop(id(t), None)
            if g is None:
                continue
            hooks = t._hooks
            if hooks is not None:
                g = _apply_grad_hooks(t, hooks, g)
            ctx = t._ctx
            if ctx is None:
                if t.grad is None:
                    t.grad = Tensor._make(g, False, None)
                else:
                    t.grad = Tensor._make(t.grad.data + g, False, None)
                if hooks is not None:
                    for kind, fn in list(hooks.values()):
                        if kind == "post":
                            fn(t)
                continue
            for p, pg, need in zip(ctx.parents, ctx.backward(g), ctx.needs_input_grad):
                if not need or pg is None:
                    continue
                if pg.dtype != p.data.dtype:
                    pg = pg.astype(p.data.dtype)
                if pg.shape != p.data.shape:
                    raise RuntimeError(f"{type(ctx).__name__}.backward returned a gradient of "
                                       f"shape {pg.shape} for an input of shape {p.data.shape}")
                key = id(p)
                prev = grads.get(key)
                grads[key] = pg if prev is None else prev + pg

    def register_hook(self, hook):
        """Call ``hook(grad)`` with this tensor's gradient each time backward computes it,
        before it flows on (or, for a leaf, into ``.grad``); a Tensor or array that the
        hook returns replaces the gradient. Returns a handle whose ``remove()`` undoes
        the registration."""
        if not self.requires_grad:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that does "
                               "not require grad")
        return self._add_hook("pre", hook)

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(tensor)`` on this leaf after backward has accumulated into its
        ``.grad`` (the moment its gradient for this pass is final), as torch does; used by
        :class:`cnncore.distributed.DistributedDataParallel` to start reducing gradients
        while the rest of the backward pass runs. Returns a removable handle."""
        if self._ctx is not None:
            raise RuntimeError("register_post_accumulate_grad_hook: only leaf tensors "
                               "accumulate gradients; this tensor is the result of an op")
        if not self.requires_grad:
            raise RuntimeError("register_post_accumulate_grad_hook: the tensor does not "
                               "require grad")
        return self._add_hook("post", hook)

    def _add_hook(self, kind, hook):
        if not callable(hook):
            raise TypeError(f"a hook must be callable, got {type(hook).__name__}")
        if self._hooks is None:
            self._hooks = {}
        handle = RemovableHandle(self._hooks)
        self._hooks[handle.id] = (kind, hook)
        return handle

    def _topological_order(self):
        """Tensors reachable from self that require grad, outputs before inputs."""
        order, visited = [], set()
        stack = [(self, False)]
        while stack:
            t, done = stack.pop()
            if done:
                order.append(t)
                continue
            if id(t) in visited:
                continue
            visited.add(id(t))
            stack.append((t, True))
            if t._ctx is not None:
                for p in t._ctx.parents:
                    if p is not None and p.requires_grad and id(p) not in visited:
                        stack.append((p, False))
        order.reverse()
        return order

    # --- arithmetic ---
    def __add__(self, other):
        return Add.apply(self, _wrap(other, self))

    def __radd__(self, other):
        return Add.apply(_wrap(other, self), self)

    def __sub__(self, other):
        return Sub.apply(self, _wrap(other, self))

    def __rsub__(self, other):
        return Sub.apply(_wrap(other, self), self)

    def __mul__(self, other):
        return Mul.apply(self, _wrap(other, self))

    def __rmul__(self, other):
        return Mul.apply(_wrap(other, self), self)

    def __truediv__(self, other):
        return Div.apply(self, _wrap(other, self))

    def __rtruediv__(self, other):
        return Div.apply(_wrap(other, self), self)

    def __neg__(self):
        return Neg.apply(self)

    def __pos__(self):
        return self

    def __pow__(self, exponent):
        if isinstance(exponent, Tensor):
            return (self.log() * exponent).exp()
        if not isinstance(exponent, numbers.Real):
            raise TypeError(f"exponent must be a real number or a Tensor, got "
                            f"{type(exponent).__name__}")
        return Pow.apply(self, exponent=exponent)

    def __rpow__(self, base):
        return (self * float(np.log(base))).exp()

    def __matmul__(self, other):
        return MatMul.apply(self, _wrap(other, self))

    def __rmatmul__(self, other):
        return MatMul.apply(_wrap(other, self), self)

    def exp(self):
        return Exp.apply(self)

    def log(self):
        return Log.apply(self)

    def sqrt(self):
        return Sqrt.apply(self)

    def abs(self):
        return Abs.apply(self)

    __abs__ = abs

    def clamp(self, min=None, max=None):  # noqa: A002 - torch's names
        return Clamp.apply(self, lo=min, hi=max)

    def maximum(self, other):
        return Maximum.apply(self, _wrap(other, self))

    # --- comparisons (no gradient) ---
    def _compare(self, other, fn):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor._make(_asarray(fn(self.data, other)), False, None)

    def __eq__(self, other):
        return self._compare(other, np.equal)

    def __ne__(self, other):
        return self._compare(other, np.not_equal)

    def __lt__(self, other):
        return self._compare(other, np.less)

    def __le__(self, other):
        return self._compare(other, np.less_equal)

    def __gt__(self, other):
        return self._compare(other, np.greater)

    def __ge__(self, other):
        return self._compare(other, np.greater_equal)

    # --- reductions ---
    def sum(self, dim=None, keepdim=False):
        return Sum.apply(self, axes=_axes(dim, self.ndim), keepdim=keepdim)

    def mean(self, dim=None, keepdim=False):
        return Mean.apply(self, axes=_axes(dim, self.ndim), keepdim=keepdim)

    def max(self, dim=None, keepdim=False):
        """Largest value; with ``dim``, ``(values, indices)`` along that axis (like torch)."""
        if dim is None:
            return Max.apply(self, axes=_axes(None, self.ndim), keepdim=False)
        values = Max.apply(self, axes=_axes(dim, self.ndim), keepdim=keepdim)
        return MaxResult(values, self.argmax(dim, keepdim))

    def min(self, dim=None, keepdim=False):
        """Smallest value; with ``dim``, ``(values, indices)`` along that axis (like torch)."""
        if dim is None:
            return Min.apply(self, axes=_axes(None, self.ndim), keepdim=False)
        values = Min.apply(self, axes=_axes(dim, self.ndim), keepdim=keepdim)
        return MaxResult(values, self.argmin(dim, keepdim))

    def argmin(self, dim=None, keepdim=False):
        if dim is None:
            return Tensor._make(_asarray(self.data.argmin()), False, None)
        return Tensor._make(_asarray(self.data.argmin(axis=dim, keepdims=keepdim)),
                            False, None)

    def var(self, dim=None, unbiased=True, keepdim=False, *, correction=None):
        """Variance over ``dim`` (all elements by default), dividing by ``n - correction``
        (``correction`` defaults to 1 if ``unbiased`` else 0, as torch)."""
        if correction is None:
            correction = 1 if unbiased else 0
        axes = _axes(dim, self.ndim)
        n = int(np.prod([self.shape[a] for a in axes])) if self.ndim else 1
        centred = self - self.mean(dim=axes, keepdim=True)
        return (centred * centred).sum(dim=axes, keepdim=keepdim) / max(n - correction, 0)

    def std(self, dim=None, unbiased=True, keepdim=False, *, correction=None):
        return self.var(dim, unbiased, keepdim, correction=correction).sqrt()

    def argmax(self, dim=None, keepdim=False):
        if dim is None:
            return Tensor._make(_asarray(self.data.argmax()), False, None)
        return Tensor._make(_asarray(self.data.argmax(axis=dim, keepdims=keepdim)),
                            False, None)

    # --- shape ---
    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return Reshape.apply(self, shape=shape)

    view = reshape

    def flatten(self, start_dim=0, end_dim=-1):
        nd = self.ndim
        if nd == 0:
            return self.reshape(1)
        s, e = start_dim % nd, end_dim % nd
        shape = self.shape[:s] + (-1,) + self.shape[e + 1:]
        if 0 in self.shape:
            shape = self.shape[:s] + (int(np.prod(self.shape[s:e + 1])),) + self.shape[e + 1:]
        return Reshape.apply(self, shape=shape)

    def permute(self, *dims):
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        return Permute.apply(self, dims=tuple(d % self.ndim for d in dims))

    def transpose(self, dim0, dim1):
        dims = list(range(self.ndim))
        dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
        return Permute.apply(self, dims=tuple(dims))

    def squeeze(self, dim=None):
        if dim is None:
            shape = tuple(n for n in self.shape if n != 1)
        else:
            d = dim % self.ndim
            shape = self.shape if self.shape[d] != 1 else self.shape[:d] + self.shape[d + 1:]
        return self.reshape(shape)

    def unsqueeze(self, dim):
        d = dim % (self.ndim + 1)
        return self.reshape(self.shape[:d] + (1,) + self.shape[d:])

    def expand(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        shape = tuple(self.shape[i - len(shape) + self.ndim] if n == -1 else n
                      for i, n in enumerate(shape))
        return Expand.apply(self, shape=shape)

    def __getitem__(self, index):
        if isinstance(index, Tensor):
            index = index.data
        elif isinstance(index, tuple):
            index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
        return GetItem.apply(self, index=index)

    def __setitem__(self, index, value):
        """In-place assignment ``t[i] = v`` for tensors outside the graph (no grad, or inside
        ``no_grad()``); a tensor that autograd tracks refuses, since the recorded graph would
        no longer describe it."""
        if self.requires_grad and _grad_enabled:
            raise RuntimeError("item assignment to a tensor that requires grad would bypass "
                               "autograd: assign inside `with cnncore.no_grad():`, or to "
                               "`t.detach()` / a clone outside the graph")
        if isinstance(index, Tensor):
            index = index.data
        elif isinstance(index, tuple):
            index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
        self.data[index] = value.data if isinstance(value, Tensor) else value

    def t(self):
        """The transpose of a 2-D tensor (a 0-D or 1-D tensor as it is), like torch."""
        if self.ndim > 2:
            raise ValueError(f"t() expects a tensor with at most 2 dimensions, got "
                             f"{self.ndim}; use transpose(dim0, dim1) or permute")
        return self if self.ndim < 2 else self.transpose(0, 1)

    def pow(self, exponent):
        return self ** exponent

    def retain_grad(self):
        """Keep this non-leaf tensor's gradient in ``.grad`` after backward (leaves always
        do)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad: the tensor does not require grad")
        if self._ctx is None or any(getattr(fn, "_retains_grad", False)
                                    for _, fn in (self._hooks or {}).values()):
            return
        ref = weakref.ref(self)

        def keep(g):
            t = ref()
            if t is not None:
                t.grad = g if t.grad is None else Tensor._make(t.grad.data + g.data, False,
                                                               None)
        keep._retains_grad = True
        self._add_hook("pre", keep)

    # The network-op methods (relu, sigmoid, tanh, softmax, log_softmax) are attached by
    # cnncore.functional, which defines them: this module imports nothing of it.

    # --- in-place helpers for initialisation (no graph) ---
    def zero_(self):
        self.data[...] = 0
        return self

    def fill_(self, value):
        self.data[...] = value
        return self

    def copy_(self, src):
        self.data[...] = _to_array(src)
        return self


_UFUNC_OPS = {
    np.add: Tensor.__add__,
    np.subtract: Tensor.__sub__,
    np.multiply: Tensor.__mul__,
    np.true_divide: Tensor.__truediv__,
    np.matmul: Tensor.__matmul__,
}


def _wrap(value, like):
    """``value`` as a Tensor; Python numbers take ``like``'s floating dtype."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, numbers.Number) and not isinstance(value, np.ndarray):
        dt = like.data.dtype if isinstance(like, Tensor) else None
        if dt is not None and np.issubdtype(dt, np.floating):
            return Tensor._make(np.asarray(value, dtype=dt), False, None)
        return Tensor._make(np.asarray(value), False, None)
    return Tensor._make(_to_array(value), False, None)


# ---------------------------------------------------------------------------
# constructors


def tensor(data, requires_grad=False, dtype=None):
    """A new Tensor holding a copy of ``data`` (array, list, scalar or Tensor).

    Python floats become float32 (like torch); NumPy arrays keep their dtype.
    """
    arr = np.array(_to_array(data), copy=True)
    if dtype is not None:
        arr = arr.astype(_dtype(dtype), copy=False)
    return Tensor(arr, requires_grad=requires_grad)


def from_numpy(array):
    """A Tensor sharing memory with ``array``."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    return Tensor(array)


def from_dlpack(obj):
    """A Tensor from any object with ``__dlpack__`` (zero-copy on CPU)."""
    return Tensor(np.from_dlpack(obj))


def _shape_args(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def zeros(*shape, dtype=np.float32, requires_grad=False):
    return Tensor(np.zeros(_shape_args(shape), dtype=_dtype(dtype)), requires_grad)


def ones(*shape, dtype=np.float32, requires_grad=False):
    return Tensor(np.ones(_shape_args(shape), dtype=_dtype(dtype)), requires_grad)


def randn(*shape, dtype=np.float32, requires_grad=False, generator=None):
    from . import _random
    rng = _random.resolve(generator)
    return Tensor(rng.standard_normal(_shape_args(shape)).astype(_dtype(dtype)), requires_grad)


def rand(*shape, dtype=np.float32, requires_grad=False, generator=None):
    from . import _random
    rng = _random.resolve(generator)
    return Tensor(rng.random(_shape_args(shape)).astype(_dtype(dtype)), requires_grad)


def arange(*args, dtype=None):
    return Tensor(np.arange(*args, dtype=None if dtype is None else _dtype(dtype)))


def full(shape, fill_value, dtype=None, requires_grad=False):
    """A tensor of ``shape`` filled with ``fill_value`` (float32 for a Python float)."""
    if dtype is None:
        dtype = _default_dtype_of(fill_value).dtype
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    return Tensor(np.full(shape, fill_value, dtype=_dtype(dtype)), requires_grad)


def linspace(start, end, steps, dtype=np.float32, requires_grad=False):
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"linspace: steps must be a non-negative integer, got {steps!r}")
    return Tensor(np.linspace(start, end, int(steps), dtype=_dtype(dtype)), requires_grad)


def zeros_like(t, dtype=None, requires_grad=False):
    a = t.data if isinstance(t, Tensor) else np.asarray(t)
    return Tensor(np.zeros(a.shape, _dtype(dtype) if dtype is not None else a.dtype),
                  requires_grad)


def ones_like(t, dtype=None, requires_grad=False):
    a = t.data if isinstance(t, Tensor) else np.asarray(t)
    return Tensor(np.ones(a.shape, _dtype(dtype) if dtype is not None else a.dtype),
                  requires_grad)


def where(condition, input, other):  # noqa: A002 - torch's names
    """Elements of ``input`` where ``condition`` holds, else of ``other`` (broadcast;
    differentiable in both)."""
    cond = condition.data if isinstance(condition, Tensor) else np.asarray(condition)
    if cond.dtype != np.bool_:
        raise TypeError(f"where: condition must be boolean, got dtype {cond.dtype}")
    like = input if isinstance(input, Tensor) else other
    return Where.apply(_wrap(input, like), _wrap(other, like), cond=cond)


def matmul(input, other):  # noqa: A002 - torch's names
    """``input @ other`` (NumPy's matmul rules; differentiable)."""
    return _wrap(input, other) @ _wrap(other, input)


def cat(tensors, dim=0):
    """Concatenate along ``dim`` (differentiable)."""
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("cat() needs at least one tensor")
    return Cat.apply(*tensors, axis=dim % tensors[0].ndim)


def stack(tensors, dim=0):
    """Stack along a new axis ``dim`` (differentiable)."""
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack() needs at least one tensor")
    return Stack.apply(*tensors, axis=dim % (tensors[0].ndim + 1))


# ---------------------------------------------------------------------------
# finite-difference gradient check


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0):
    """Compare autograd gradients of ``fn(*inputs)`` with central differences.

    ``inputs`` are float64 Tensors; those with ``requires_grad`` are checked.
    The scalar compared is ``sum(fn(*inputs) * r)`` for a fixed random ``r``.
    Returns True, or raises AssertionError naming the worst element.
    """
    rng = np.random.default_rng(seed)
    for t in inputs:
        if isinstance(t, Tensor) and t.requires_grad and t.dtype != np.float64:
            raise TypeError("gradcheck needs float64 inputs")
    out = fn(*inputs)
    r = rng.standard_normal(out.shape)

    def scalar():
        with no_grad():
            return float(np.sum(fn(*inputs).data * r))

    for t in inputs:
        if isinstance(t, Tensor):
            t.grad = None
    out = fn(*inputs)
    (out * Tensor(r)).sum().backward()
    for k, t in enumerate(inputs):
        if not (isinstance(t, Tensor) and t.requires_grad):
            continue
        analytic = np.zeros_like(t.data) if t.grad is None else t.grad.data
        numeric = np.zeros_like(t.data)
        if not t.data.flags.c_contiguous:
            t.data = np.ascontiguousarray(t.data)
        flat = t.data.reshape(-1)
        for i in range(flat.size):
            orig = flat[i]
            flat[i] = orig + eps
            up = scalar()
            flat[i] = orig - eps
            down = scalar()
            flat[i] = orig
            numeric.reshape(-1)[i] = (up - down) / (2 * eps)
        if not np.allclose(analytic, numeric, atol=atol, rtol=rtol):
            err = np.abs(analytic - numeric) - rtol * np.abs(numeric)
            j = np.unravel_index(np.argmax(err), t.shape)
            raise AssertionError(f"gradcheck: input {k} element {j}: autograd "
                                 f"{analytic[j]!r} vs finite differences {numeric[j]!r}")
    return True
