"""The optional CUDA backend: device state and the device array.

``cnncore.cuda.is_available()`` is true when cnncore was built with
``-DCNNCORE_CUDA=ON`` and the CUDA runtime finds a GPU. Tensors then move with
``t.to("cuda")`` / ``t.cuda()`` and modules with ``model.to("cuda")``; every op
whose inputs are CUDA tensors runs on the GPU and returns CUDA tensors, and an
op given tensors on two devices raises ``ValueError`` naming the argument.
:func:`supported_ops` lists the C++ ops with CUDA kernels; the others raise
a clear error for CUDA inputs (``docs/cuda.md``).

A CUDA tensor's ``data`` is a :class:`CudaArray`: a small NumPy-like array in
device memory (shape, dtype, arithmetic with broadcasting, reductions, basic
indexing, reshape/transpose) that NumPy functions dispatch to (NEP 13 / 18),
so the autograd rules written against NumPy run unchanged. It never turns
into host memory silently: ``numpy.asarray`` of it raises; ``.get()`` copies
it to the host.

Without a GPU, :func:`use_emulator` (or ``CNNCORE_CUDA_EMULATOR=1`` in the environment
before import) lets the host emulator of the backend
(the same kernel bodies run on the CPU, device memory on the host heap)
stand in for ``"cuda"``; the test suite uses it to run the device code paths
on any machine. It is never picked silently and is far slower than the CPU
kernels.
"""

import numbers
import operator
import os

import numpy as np

from . import _core

__all__ = ["is_available", "is_built", "is_emulated", "device_count", "get_device_name", "synchronize",
           "memory_allocated", "memory_reserved", "max_memory_allocated", "memory_stats", "empty_cache",
           "reset_peak_memory_stats", "supported_ops", "use_emulator", "CudaArray"]


def _info():
    return _core.cuda_info()


def is_built():
    """True when this cnncore was compiled with the CUDA backend."""
    return bool(_info()["built"])


def is_available():
    """True when a real CUDA device can run cnncore's kernels (the emulator does not count)."""
    return bool(_info()["available"])


def is_emulated():
    """True while the host emulator serves ``"cuda"`` (see :func:`use_emulator`)."""
    return bool(_info()["emulated"])


def device_count():
    """Number of CUDA devices cnncore uses (0 or 1: device 0 only)."""
    return int(_info()["device_count"])


def get_device_name(device=None):
    """The name of the device serving ``"cuda"``; RuntimeError when there is none."""
    info = _info()
    if not info["device_name"]:
        raise RuntimeError(f"CUDA is not available: {info['why_unavailable']}")
    return info["device_name"]


def why_unavailable():
    """Why :func:`is_available` is false ("" when it is true)."""
    return _info()["why_unavailable"]


def synchronize():
    """Wait for every queued CUDA operation to finish."""
    _core.cuda_synchronize()


def memory_stats():
    """The caching allocator's figures in bytes: allocated (held by live arrays),
    reserved (allocated + cached free blocks), peak_allocated, device_allocs (calls
    to the device allocator) and cache_hits."""
    return dict(_core.cuda_memory_stats())


def memory_allocated(device=None):
    return memory_stats()["allocated"]


def memory_reserved(device=None):
    return memory_stats()["reserved"]


def max_memory_allocated(device=None):
    return memory_stats()["peak_allocated"]


def empty_cache():
    """Return the cached free blocks to the device."""
    _core.cuda_empty_cache()


def reset_peak_memory_stats(device=None):
    _core.cuda_reset_peak_memory()


def supported_ops():
    """The C++ op entry points (``conv_forward``, ...) that have CUDA kernels."""
    return list(_core.cuda_supported_ops())


def use_emulator(on=True):
    """Let the host emulator serve ``"cuda"`` (``on=True``) where no GPU is present,
    for testing the device code paths; ValueError when a real GPU is present.
    Returns the previous setting."""
    return bool(_core.cuda_use_emulator(bool(on)))


# ---------------------------------------------------------------------------
# CudaArray


def _is_scalar(x):
    return isinstance(x, numbers.Number) or (isinstance(x, (np.ndarray, np.generic)) and np.ndim(x) == 0)


def _wrong_device(what, arg):
    return ValueError(f"{what}: expected arrays on cuda, got a {type(arg).__name__} on the CPU; "
                      f"move it with .to('cuda') (or the other operand with .cpu())")


def _norm_axes(axis, ndim):
    if axis is None:
        return list(range(ndim))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for a in axes:
        a = operator.index(a)
        if not -ndim <= a < ndim:
            raise np.exceptions.AxisError(a, ndim) if hasattr(np, "exceptions") else IndexError(
                f"axis {a} is out of bounds for array of dimension {ndim}")
        out.append(a % ndim)
    return out


def _contiguous_strides(shape):
    strides, acc = [], 1
    for n in reversed(shape):
        strides.append(acc)
        acc *= n
    return list(reversed(strides))


class CudaArray(_core.DeviceTensor):
    """An array in device memory (float32 or float64, C order). See the module doc."""

    __array_priority__ = 2000

    # --- construction / conversion
    @staticmethod
    def from_numpy(a):
        a = np.asarray(a)
        if a.dtype not in (np.float32, np.float64):
            a = a.astype(np.float32 if np.issubdtype(a.dtype, np.floating) and a.itemsize < 8 else np.float64)
        return _core.to_device(np.ascontiguousarray(a), "cuda")

    def get(self):
        """A NumPy copy in host memory."""
        return _core.to_device(self, "cpu")

    def __array__(self, dtype=None, copy=None):
        raise TypeError("a CudaArray lives in device memory; copy it to the host with .get() "
                        "(or Tensor.cpu()) instead of converting it implicitly")

    @property
    def device(self):
        return "cuda"

    @property
    def T(self):
        return self.transpose()

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    def __repr__(self):
        return f"CudaArray({np.array2string(self.get())}, dtype={self.dtype})"

    def __bool__(self):
        return bool(self.item())

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def item(self):
        if self.size != 1:
            raise ValueError("can only convert an array of size 1 to a Python scalar")
        return self.get().reshape(()).item()

    def tolist(self):
        return self.get().tolist()

    def copy(self):
        return _core.array_gather(self, list(self.shape), _contiguous_strides(self.shape), 0)

    def astype(self, dtype, copy=True):
        dtype = np.dtype(dtype)
        if dtype == self.dtype:
            return self.copy() if copy else self
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"CUDA arrays hold float32 or float64, not {dtype}")
        return _core.array_cast(self, dtype)

    def reshape(self, *shape, order="C"):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        shape = list(shape)
        if -1 in shape:
            known = int(np.prod([n for n in shape if n != -1]))
            shape[shape.index(-1)] = self.size // known if known else 0
        return _core.array_reshape(self, shape)

    def ravel(self):
        return self.reshape(-1)

    def flatten(self):
        return self.reshape(-1).copy()

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list, np.ndarray)):
            axes = tuple(int(a) for a in axes[0])
        if not axes:
            axes = tuple(reversed(range(self.ndim)))
        axes = _norm_axes(list(axes), self.ndim)
        st = _contiguous_strides(self.shape)
        return _core.array_gather(self, [self.shape[a] for a in axes], [st[a] for a in axes], 0)

    def swapaxes(self, a, b):
        axes = list(range(self.ndim))
        a, b = _norm_axes([a, b], self.ndim)
        axes[a], axes[b] = axes[b], axes[a]
        return self.transpose(axes)

    def _broadcast_to(self, shape):
        shape = tuple(int(n) for n in shape)
        if shape == self.shape:
            return self
        extra = len(shape) - self.ndim
        if extra < 0:
            raise ValueError(f"cannot broadcast shape {self.shape} to {shape}")
        st = _contiguous_strides(self.shape)
        strides = [0] * extra
        for i, n in enumerate(self.shape):
            if n == shape[extra + i]:
                strides.append(st[i])
            elif n == 1:
                strides.append(0)
            else:
                raise ValueError(f"operands could not be broadcast together: {self.shape} to {shape}")
        return _core.array_gather(self, list(shape), strides, 0)

    # --- indexing (basic: ints, slices, None, Ellipsis)
    def _view(self, index):
        if not isinstance(index, tuple):
            index = (index,)
        if any(isinstance(i, (np.ndarray, list, CudaArray)) or isinstance(i, bool) for i in index):
            raise IndexError("CUDA arrays take basic indices only (integers, slices, None, ...); "
                             "index on the CPU for arrays of indices or masks")
        n_real = sum(1 for i in index if i is not None and i is not Ellipsis)
        if Ellipsis in index:
            k = index.index(Ellipsis)
            index = index[:k] + (slice(None),) * (self.ndim - n_real) + index[k + 1:]
        index = index + (slice(None),) * (self.ndim - sum(1 for i in index if i is not None))
        st = _contiguous_strides(self.shape)
        shape, strides, offset, d = [], [], 0, 0
        for i in index:
            if i is None:
                shape.append(1)
                strides.append(0)
                continue
            if d >= self.ndim:
                raise IndexError(f"too many indices for an array of dimension {self.ndim}")
            n = self.shape[d]
            if isinstance(i, slice):
                start, stop, step = i.indices(n)
                count = len(range(start, stop, step))
                shape.append(count)
                strides.append(st[d] * step)
                offset += st[d] * start if count else 0
            else:
                k = operator.index(i)
                if not -n <= k < n:
                    raise IndexError(f"index {k} is out of bounds for axis {d} with size {n}")
                offset += st[d] * (k % n)
            d += 1
        return shape, strides, offset

    def __getitem__(self, index):
        shape, strides, offset = self._view(index)
        return _core.array_gather(self, shape, strides, offset)

    def __setitem__(self, index, value):
        """Assignment; a NumPy array value is copied from the host (an explicit upload)."""
        shape, strides, offset = self._view(index)
        if isinstance(value, np.ndarray) and value.ndim > 0:
            value = CudaArray.from_numpy(value.astype(self.dtype, copy=False))
        value = _as_cuda(value, self.dtype, "__setitem__")
        _core.array_scatter(self, shape, strides, offset, value)

    # --- reductions
    def _reduce(self, op, axis=None, keepdims=False, dtype=None, out=None, **kw):
        if out is not None:
            raise TypeError("CUDA arrays do not take out=")
        axes = _norm_axes(axis, self.ndim)
        r = _core.array_reduce(self, axes, op, bool(keepdims))
        return r if dtype is None else r.astype(dtype, copy=False)

    def sum(self, axis=None, dtype=None, out=None, keepdims=False, **kw):
        return self._reduce("sum", axis, keepdims, dtype, out)

    def prod(self, axis=None, dtype=None, out=None, keepdims=False, **kw):
        return self._reduce("prod", axis, keepdims, dtype, out)

    def mean(self, axis=None, dtype=None, out=None, keepdims=False, **kw):
        axes = _norm_axes(axis, self.ndim)
        count = int(np.prod([self.shape[a] for a in axes])) if axes else 1
        return self._reduce("sum", axis, keepdims, dtype, out) / count

    def var(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kw):
        axes = _norm_axes(axis, self.ndim)
        count = int(np.prod([self.shape[a] for a in axes])) if axes else 1
        d = self - self.mean(axis=axis, keepdims=True)
        return (d * d)._reduce("sum", axis, keepdims, dtype, out) / (count - ddof)

    def std(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kw):
        return np.sqrt(self.var(axis=axis, ddof=ddof, keepdims=keepdims))

    def max(self, axis=None, out=None, keepdims=False, **kw):
        return self._reduce("max", axis, keepdims, None, out)

    def min(self, axis=None, out=None, keepdims=False, **kw):
        return self._reduce("min", axis, keepdims, None, out)

    def argmax(self, axis=None, out=None, keepdims=False):
        return self._arg("argmax", axis, keepdims)

    def argmin(self, axis=None, out=None, keepdims=False):
        return self._arg("argmin", axis, keepdims)

    def _arg(self, op, axis, keepdims):
        x = self.reshape(-1) if axis is None else self
        axes = [0] if axis is None else _norm_axes(axis, self.ndim)
        return _core.array_reduce(x, axes, op, bool(keepdims and axis is not None))

    def all(self, axis=None, keepdims=False, **kw):
        return (self != 0)._reduce("min", axis, keepdims) != 0

    def any(self, axis=None, keepdims=False, **kw):
        return (self != 0)._reduce("max", axis, keepdims) != 0

    def fill(self, value):
        self[...] = value

    # --- operators
    def _binary(self, other, op, reflected=False):
        return _binary(op, other, self) if reflected else _binary(op, self, other)

    __add__ = lambda self, o: self._binary(o, "add")
    __radd__ = lambda self, o: self._binary(o, "add", True)
    __sub__ = lambda self, o: self._binary(o, "sub")
    __rsub__ = lambda self, o: self._binary(o, "sub", True)
    __mul__ = lambda self, o: self._binary(o, "mul")
    __rmul__ = lambda self, o: self._binary(o, "mul", True)
    __truediv__ = lambda self, o: self._binary(o, "div")
    __rtruediv__ = lambda self, o: self._binary(o, "div", True)
    __pow__ = lambda self, o: self._binary(o, "pow")
    __rpow__ = lambda self, o: self._binary(o, "pow", True)
    __eq__ = lambda self, o: self._binary(o, "eq")
    __ne__ = lambda self, o: self._binary(o, "ne")
    __lt__ = lambda self, o: self._binary(o, "lt")
    __le__ = lambda self, o: self._binary(o, "le")
    __gt__ = lambda self, o: self._binary(o, "gt")
    __ge__ = lambda self, o: self._binary(o, "ge")
    __hash__ = None

    def __iadd__(self, o):
        self[...] = self + o
        return self

    def __isub__(self, o):
        self[...] = self - o
        return self

    def __imul__(self, o):
        self[...] = self * o
        return self

    def __itruediv__(self, o):
        self[...] = self / o
        return self

    def __neg__(self):
        return _core.array_unary(self, "neg")

    def __pos__(self):
        return self

    def __abs__(self):
        return _core.array_unary(self, "abs")

    def __matmul__(self, other):
        return _matmul(self, other)

    def __rmatmul__(self, other):
        return _matmul(other, self)

    # --- NumPy dispatch
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method != "__call__":
            raise TypeError(f"numpy.{ufunc.__name__}.{method} is not available for CUDA arrays")
        out = kwargs.pop("out", None)
        kwargs.pop("casting", None)
        dtype = kwargs.pop("dtype", None)
        where = kwargs.pop("where", True)
        if kwargs or where is not True:
            raise TypeError(f"numpy.{ufunc.__name__}: keywords {sorted(kwargs)} are not available on CUDA")
        name = ufunc.__name__
        if name in _UNARY:
            result = _core.array_unary(_as_cuda(inputs[0], None, name), _UNARY[name])
        elif name in _BINARY:
            result = _binary(_BINARY[name], inputs[0], inputs[1])
        elif name == "square":
            result = _core.array_unary(_as_cuda(inputs[0], None, name), "square")
        elif name == "isfinite":
            x = _as_cuda(inputs[0], None, name)
            result = (x - x) == 0
        elif name == "isinf":
            x = _as_cuda(inputs[0], None, name)
            result = ((x - x) != 0) * (_core.array_unary(x, "isnan") == 0)
        elif name == "matmul":
            result = _matmul(inputs[0], inputs[1])
        else:
            raise TypeError(f"numpy.{name} is not available for CUDA arrays")
        if dtype is not None:
            result = result.astype(dtype, copy=False)
        if out is not None:
            target = out[0] if isinstance(out, tuple) else out
            target[...] = result
            return target
        return result

    def __array_function__(self, func, types, args, kwargs):
        impl = _FUNCTIONS.get(func)
        if impl is None:
            raise TypeError(f"numpy.{func.__name__} is not available for CUDA arrays; "
                            f"copy to the host with .get() / Tensor.cpu() first")
        return impl(*args, **kwargs)


_core._set_device_array_type(CudaArray)

# CNNCORE_CUDA_EMULATOR=1 turns the emulator on at import where there is no GPU (for tests
# that run cnncore in a child process, e.g. `cnncore train --device cuda`).
if os.environ.get("CNNCORE_CUDA_EMULATOR") == "1" and not _core.cuda_info()["available"]:
    _core.cuda_use_emulator(True)

_UNARY = {"negative": "neg", "exp": "exp", "log": "log", "sqrt": "sqrt", "absolute": "abs", "fabs": "abs",
          "sign": "sign", "reciprocal": "reciprocal", "tanh": "tanh", "floor": "floor", "ceil": "ceil",
          "isnan": "isnan"}
_BINARY = {"add": "add", "subtract": "sub", "multiply": "mul", "true_divide": "div", "divide": "div",
           "power": "pow", "float_power": "pow", "maximum": "maximum", "minimum": "minimum", "fmax": "fmax",
           "fmin": "fmin", "equal": "eq", "not_equal": "ne", "less": "lt", "less_equal": "le", "greater": "gt",
           "greater_equal": "ge"}


def _as_cuda(x, dtype, what):
    """x as a CudaArray (a scalar becomes a 0-d device array of `dtype`)."""
    if isinstance(x, CudaArray):
        return x if dtype is None or x.dtype == dtype else x.astype(dtype)
    if isinstance(x, _core.DeviceTensor):
        return CudaArray(x)
    if _is_scalar(x):
        return _core.device_full([], np.dtype(dtype or np.float32), float(x))
    raise _wrong_device(what, x)


def _binary(op, a, b):
    if isinstance(a, CudaArray) and _is_scalar(b):
        return _core.array_binary_scalar(a, float(b), op, False)
    if isinstance(b, CudaArray) and _is_scalar(a):
        return _core.array_binary_scalar(b, float(a), op, True)
    if not isinstance(a, CudaArray):
        raise _wrong_device(op, a)
    if not isinstance(b, CudaArray):
        raise _wrong_device(op, b)
    if a.dtype != b.dtype:  # NumPy promotes float32 with float64 to float64
        a, b = a.astype(np.float64, copy=False), b.astype(np.float64, copy=False)
    return _core.array_binary(a, b, op)


def _matmul(a, b):
    if not isinstance(a, CudaArray):
        raise _wrong_device("matmul", a)
    if not isinstance(b, CudaArray):
        raise _wrong_device("matmul", b)
    a1, b1 = a.ndim == 1, b.ndim == 1
    if a1:
        a = a.reshape(1, -1)
    if b1:
        b = b.reshape(-1, 1)
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = a._broadcast_to(batch + a.shape[-2:])
    b = b._broadcast_to(batch + b.shape[-2:])
    if a.dtype != b.dtype:
        a, b = a.astype(np.float64, copy=False), b.astype(np.float64, copy=False)
    out = _core.array_matmul(a, b)
    if a1:
        out = out.reshape(out.shape[:-2] + out.shape[-1:])
    if b1:
        out = out.reshape(out.shape[:-1])
    return out


def _shape_like(a, dtype, value, shape):
    if shape is None:
        shape = a.shape
    elif isinstance(shape, numbers.Integral):
        shape = (shape,)
    return _core.device_full([int(n) for n in shape], np.dtype(dtype or a.dtype), float(value))


def _concatenate(arrays, axis=0, out=None, dtype=None, **kw):
    arrays = [_as_cuda(a, None, "concatenate") for a in arrays]
    if axis is None:
        arrays, axis = [a.reshape(-1) for a in arrays], 0
    ref = arrays[0]
    axis = _norm_axes(axis, ref.ndim)[0]
    dt = np.result_type(*[a.dtype for a in arrays]) if dtype is None else np.dtype(dtype)
    shape = list(ref.shape)
    shape[axis] = sum(a.shape[axis] for a in arrays)
    result = _core.device_empty(shape, dt)
    start = 0
    for a in arrays:
        index = (slice(None),) * axis + (slice(start, start + a.shape[axis]),)
        result[index] = a.astype(dt, copy=False)
        start += a.shape[axis]
    return result


def _stack(arrays, axis=0, out=None, **kw):
    arrays = [_as_cuda(a, None, "stack") for a in arrays]
    axis = _norm_axes(axis, arrays[0].ndim + 1)[0]
    return _concatenate([np.expand_dims(a, axis) for a in arrays], axis=axis)


def _expand_dims(a, axis):
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    ndim = a.ndim + len(axes)
    axes = sorted(_norm_axes(list(axes), ndim))
    shape = list(a.shape)
    for ax in axes:
        shape.insert(ax, 1)
    return a.reshape(shape)


def _squeeze(a, axis=None):
    if axis is None:
        return a.reshape([n for n in a.shape if n != 1])
    axes = _norm_axes(axis, a.ndim)
    for ax in axes:
        if a.shape[ax] != 1:
            raise ValueError("cannot select an axis to squeeze out which has size not equal to one")
    return a.reshape([n for i, n in enumerate(a.shape) if i not in axes])


def _split(a, indices_or_sections, axis=0):
    axis = _norm_axes(axis, a.ndim)[0]
    n = a.shape[axis]
    if isinstance(indices_or_sections, numbers.Integral):
        k = int(indices_or_sections)
        if n % k:
            raise ValueError("array split does not result in an equal division")
        bounds = [n // k * i for i in range(1, k)]
    else:
        bounds = [int(b) for b in indices_or_sections]
    edges = [0] + bounds + [n]
    return [a[(slice(None),) * axis + (slice(lo, hi),)] for lo, hi in zip(edges[:-1], edges[1:])]


def _take(a, indices, axis=None):
    if not isinstance(indices, numbers.Integral):
        raise TypeError("numpy.take on a CUDA array takes one integer index")
    if axis is None:
        return a.reshape(-1)[int(indices)]
    axis = _norm_axes(axis, a.ndim)[0]
    return a[(slice(None),) * axis + (int(indices),)]


def _where(cond, x=None, y=None):
    if x is None or y is None:
        raise TypeError("numpy.where(condition) (the indices form) is not available for CUDA arrays")
    ref = next(v for v in (x, y, cond) if isinstance(v, CudaArray))
    dt = np.result_type(*[v.dtype for v in (x, y) if isinstance(v, CudaArray)]) if any(
        isinstance(v, CudaArray) for v in (x, y)) else ref.dtype
    c, a, b = (_as_cuda(v, dt, "where") for v in (cond, x, y))
    return _core.array_where(c.astype(dt, copy=False), a, b)


def _clip(a, a_min=None, a_max=None, out=None, **kw):
    lo = np.nan if a_min is None else float(a_min)
    hi = np.nan if a_max is None else float(a_max)
    r = _core.array_clip(a, lo, hi)
    if out is not None:
        out[...] = r
        return out
    return r


def _dispatch_method(name):
    return lambda a, *args, **kw: getattr(_as_cuda(a, None, name), name)(*args, **kw)


_FUNCTIONS = {
    np.sum: _dispatch_method("sum"), np.mean: _dispatch_method("mean"), np.prod: _dispatch_method("prod"),
    np.max: _dispatch_method("max"), np.min: _dispatch_method("min"), np.amax: _dispatch_method("max"),
    np.amin: _dispatch_method("min"), np.argmax: _dispatch_method("argmax"), np.argmin: _dispatch_method("argmin"),
    np.var: _dispatch_method("var"), np.std: _dispatch_method("std"), np.all: _dispatch_method("all"),
    np.any: _dispatch_method("any"),
    np.reshape: lambda a, shape, order="C": a.reshape(shape),
    np.transpose: lambda a, axes=None: a.transpose(axes) if axes is not None else a.transpose(),
    np.swapaxes: lambda a, x, y: a.swapaxes(x, y),
    np.broadcast_to: lambda a, shape, subok=False: a._broadcast_to(shape),
    np.copy: lambda a, order="K", subok=False: a.copy(),
    np.ascontiguousarray: lambda a, dtype=None, like=None: a if dtype is None else a.astype(dtype, copy=False),
    np.expand_dims: _expand_dims, np.squeeze: _squeeze, np.concatenate: _concatenate, np.stack: _stack,
    np.split: _split, np.take: _take, np.where: _where, np.clip: _clip, np.ravel: lambda a, order="C": a.ravel(),
    np.zeros_like: lambda a, dtype=None, order="K", subok=True, shape=None: _shape_like(a, dtype, 0.0, shape),
    np.ones_like: lambda a, dtype=None, order="K", subok=True, shape=None: _shape_like(a, dtype, 1.0, shape),
    np.empty_like: lambda a, dtype=None, order="K", subok=True, shape=None: _shape_like(a, dtype, 0.0, shape),
    np.full_like: lambda a, fill_value, dtype=None, order="K", subok=True, shape=None: _shape_like(
        a, dtype, fill_value, shape),
    np.ndim: lambda a: a.ndim, np.shape: lambda a: a.shape, np.size: lambda a, axis=None: (
        a.size if axis is None else a.shape[axis]),
    np.matmul: lambda a, b, **kw: _matmul(a, b), np.dot: lambda a, b, out=None: _matmul(a, b),
    np.square: lambda a, **kw: a * a,
    np.isclose: lambda a, b, rtol=1e-05, atol=1e-08, equal_nan=False: abs(a - b) <= atol + rtol * abs(b),
}
