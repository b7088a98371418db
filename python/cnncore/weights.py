"""Pretrained weights from PyTorch and timm files, without torch.

* :func:`load_torch` reads a ``torch.save`` zip checkpoint (``.pth`` / ``.pt``, the
  layout torchvision and most papers publish) with a *restricted* unpickler: it
  resolves only the handful of globals a tensor state dict needs (``OrderedDict``,
  torch's tensor-rebuild functions and storage types) and refuses anything else with
  :class:`UnsafeCheckpointError` before any of it runs — a pickle can name any callable
  (``os.system``...) and ``pickle.load`` would call it (the class of CVE-2025-32434).
  Tensor data is read straight from the archive's storage files into NumPy arrays.
* :func:`load_weights` reads ``.pth``/``.pt``, ``.safetensors`` (timm / Hugging Face, or
  a cnncore checkpoint) or ``.npz``, and :func:`for_model` renames timm's keys to
  torchvision's (which cnncore's models use): VGG's ``pre_logits.fc1/fc2`` and
  ``head.fc`` become ``classifier.0/3/6`` (the convolutional forms reshaped).
* ``cnncore.models.resnet18(weights=PATH)`` (any zoo model) and ``cnncore
  convert-weights IN OUT.safetensors`` use them.
"""
import collections
import io
import os
import pickle
import zipfile

import numpy as np

from .io import CheckpointError

__all__ = ["load_torch", "load_weights", "for_model", "UnsafeCheckpointError"]


class UnsafeCheckpointError(CheckpointError):
    """The file's pickle names a global outside the few a tensor state dict needs; nothing
    from it was run."""


class _Storage:
    """A storage type named by the pickle (``torch.FloatStorage``...): its NumPy dtype."""

    def __init__(self, name, dtype):
        self.name, self.dtype = name, dtype


_STORAGES = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2",
    "BFloat16Storage": "bfloat16", "LongStorage": "<i8", "IntStorage": "<i4",
    "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?",
}


def _as_array(storage, offset, size, stride, where):
    """The tensor ``storage[offset + sum(i * stride)]`` over ``size``, as its own array,
    every index checked against the storage."""
    size, stride = tuple(int(v) for v in size), tuple(int(v) for v in stride)
    if len(size) != len(stride) or min(size, default=1) < 0 or offset < 0:
        raise CheckpointError(f"{where}: a tensor has an invalid geometry (size {size}, "
                              f"stride {stride}, offset {offset})")
    if 0 in size:
        return np.zeros(size, storage.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if min(stride, default=0) < 0 or last >= storage.size:
        raise CheckpointError(f"{where}: a tensor reaches element {last} of a storage of "
                              f"{storage.size} (the file is corrupted)")
    view = np.lib.stride_tricks.as_strided(storage[offset:], size,
                                           tuple(s * storage.itemsize for s in stride),
                                           writeable=False)
    return np.array(view, copy=True)


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, archive, prefix, where):
        super().__init__(file)
        self.archive, self.prefix, self.where = archive, prefix, where
        self.storages = {}

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch" and name in _STORAGES:
            return _Storage(name, _STORAGES[name])
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return self._rebuild_tensor
        if module == "torch._utils" and name in ("_rebuild_parameter",
                                                 "_rebuild_parameter_with_state"):
            return self._rebuild_parameter
        raise UnsafeCheckpointError(
            f"{self.where}: refusing to load: its pickle names {module}.{name}, which a "
            f"tensor state dict does not need (a pickle can run any function it names; "
            f"nothing from this file was run). If you trust the file, load it with torch "
            f"and re-save its state dict (torch.save(model.state_dict(), path)) or convert "
            f"it to safetensors")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and
                isinstance(pid[1], _Storage)):
            raise CheckpointError(f"{self.where}: unexpected persistent reference {pid!r:.80}")
        _, kind, key, _location, numel = pid
        key = str(key)
        if key not in self.storages:
            member = f"{self.prefix}/data/{key}"
            try:
                raw = self.archive.read(member)
            except KeyError:
                raise CheckpointError(f"{self.where}: the archive lacks {member!r} (truncated "
                                      f"or corrupted)") from None
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise CheckpointError(f"{self.where}: cannot read {member!r} ({exc})") from None
            bf16 = kind.dtype == "bfloat16"
            itemsize = 2 if bf16 else np.dtype(kind.dtype).itemsize
            if len(raw) != int(numel) * itemsize:
                raise CheckpointError(f"{self.where}: storage {key} holds {len(raw)} bytes, "
                                      f"its header says {numel} x {itemsize}")
            if bf16:        # bfloat16 is the top half of a float32
                arr = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
            else:
                arr = np.frombuffer(raw, kind.dtype)
            self.storages[key] = arr
        return self.storages[key]

    def _rebuild_tensor(self, storage, storage_offset, size, stride, *rest):
        if not isinstance(storage, np.ndarray):
            raise CheckpointError(f"{self.where}: a tensor without storage")
        return _as_array(storage, int(storage_offset), size, stride, self.where)

    @staticmethod
    def _rebuild_parameter(data, requires_grad, backward_hooks, *state):
        return data


def load_torch(path):
    """The object a ``torch.save`` zip file holds (usually a state dict), its tensors as
    NumPy arrays (float32, float64, float16, integer or bool; bfloat16 as float32),
    without importing torch and without running anything the file names. Raises
    :class:`UnsafeCheckpointError` for a pickle that names other globals and
    :class:`~cnncore.CheckpointError` for a truncated, corrupted or legacy (pre-zip) file.
    """
    path = os.fspath(path)
    where = f"torch checkpoint {path!r}"
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:2] == b"\x80\x02" or head[:1] == b"\x80":
        raise CheckpointError(f"{where} is in torch's legacy (pre-1.6, non-zip) format, "
                              f"which cnncore does not read: re-save it with torch >= 1.6 "
                              f"(torch.save(torch.load(path), new_path))")
    if head != b"PK\x03\x04":
        raise CheckpointError(f"{where} is not a torch.save zip archive (it starts with "
                              f"{head!r})")
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise CheckpointError(f"{where}: not a readable zip archive, truncated or corrupted "
                              f"({exc})") from None
    with archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise CheckpointError(f"{where}: expected one <name>/data.pkl in the archive, "
                                  f"found {len(pickles)}")
        prefix = pickles[0][:-len("/data.pkl")]
        order = f"{prefix}/byteorder"
        if order in archive.namelist() and archive.read(order).strip() != b"little":
            raise CheckpointError(f"{where}: written on a big-endian machine, which cnncore "
                                  f"does not read")
        try:
            data = archive.read(pickles[0])
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise CheckpointError(f"{where}: cannot read its data.pkl ({exc})") from None
        unpickler = _RestrictedUnpickler(io.BytesIO(data), archive, prefix, where)
        try:
            return unpickler.load()
        except CheckpointError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError,
                AttributeError, KeyError) as exc:
            raise CheckpointError(f"{where}: its pickle is corrupted ({type(exc).__name__}: "
                                  f"{exc})") from None


def _state_dict_of(obj, where):
    """The state dict inside a loaded file: the object itself, or its ``state_dict`` /
    ``model`` / ``model_state_dict`` entry (as training scripts save them)."""
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            inner = obj.get(key)
            if isinstance(inner, dict) and inner and all(isinstance(k, str) for k in inner):
                obj = inner
                break
        arrays = {k: v for k, v in obj.items() if _is_array(v)}
        if arrays:
            return arrays
    raise CheckpointError(f"{where} holds no state dict (found a {type(obj).__name__})")


def _is_array(v):
    return isinstance(v, np.ndarray) or hasattr(v, "data") and isinstance(v.data, np.ndarray)


def load_weights(path):
    """``{name: ndarray}`` from a ``.pth``/``.pt`` (torch), ``.safetensors`` (timm, Hugging
    Face or cnncore) or ``.npz`` file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"weights file {path!r} does not exist")
    ext = os.path.splitext(path)[1].lower()
    if ext in (".pth", ".pt", ".bin", ".ckpt"):
        state = _state_dict_of(load_torch(path), f"torch checkpoint {path!r}")
    elif ext == ".safetensors":
        import warnings

        from . import io as cio
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", cio.UnverifiedCheckpointWarning)
            state = _state_dict_of(cio.load(path), f"safetensors file {path!r}")
    elif ext == ".npz":
        with np.load(path, allow_pickle=False) as z:
            state = {k: z[k] for k in z.files}
    else:
        raise CheckpointError(f"weights file {path!r}: cannot tell its format from the "
                              f"extension {ext!r} (.pth, .pt, .safetensors or .npz)")
    return {k: (v.data if hasattr(v, "data") and not isinstance(v, np.ndarray) else v)
            for k, v in state.items()}


# timm's names for the layers whose torchvision names cnncore uses
_TIMM_VGG = {"pre_logits.fc1": "classifier.0", "pre_logits.fc2": "classifier.3",
             "head.fc": "classifier.6"}


def for_model(state, model):
    """``state`` renamed and reshaped to ``model``'s names where it comes from timm (VGG's
    convolutional head; timm's ResNets already use torchvision's names), otherwise as it
    is. Keys with a ``module.`` prefix (saved from DataParallel) lose it."""
    own = model.state_dict()
    out = {}
    for key, value in state.items():
        name = key[len("module."):] if key.startswith("module.") and key not in own else key
        for timm, tv in _TIMM_VGG.items():
            if name.startswith(timm + ".") and name not in own:
                name = tv + name[len(timm):]
        target = own.get(name)
        value = np.asarray(value)
        if target is not None and value.shape != tuple(target.shape) and \
                value.size == target.data.size and value.ndim == 4 and target.ndim == 2:
            value = value.reshape(target.shape)     # timm's conv-as-linear layers
        out[name] = value
    return out


def load_into(model, path, strict=True):
    """Load the weights file ``path`` into ``model`` (renaming timm's keys); returns the
    model. Mismatches raise the model's :class:`~cnncore.nn.StateDictError`."""
    state = for_model(load_weights(path), model)
    # torchvision's BatchNorm num_batches_tracked may be absent from older files
    own = model.state_dict()
    for k in own:
        if k.endswith("num_batches_tracked") and k not in state:
            state[k] = own[k].data
    model.load_state_dict(state, strict=strict)
    return model
