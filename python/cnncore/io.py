"""Checkpoints: ``save(obj, path)`` / ``load(path)`` in the safetensors layout.

File layout (https://github.com/huggingface/safetensors): an 8-byte
little-endian header length N, N bytes of JSON ``{name: {"dtype", "shape",
"data_offsets": [begin, end]}, "__metadata__": {str: str}}``, then the raw
little-endian tensor bytes. A flat ``{name: array}`` (a model's
``state_dict()``) is stored exactly like that, so the ``safetensors`` package
and torch read it; nested objects (an optimiser's state dict, ``{"model": ...,
"optimizer": ..., "epoch": 3}``) keep their structure and non-array values as
JSON in the metadata key ``cnncore.tree``. Never pickle.

Writes are atomic (temporary file in the same folder, fsync, rename), so a
crash mid-save leaves any previous file intact. Reads validate everything
before building arrays: header length against the file size, JSON syntax,
no duplicate names, known dtypes, dtype x shape = byte count, offsets that
tile the data area exactly (no overlaps, gaps or trailing bytes) and a CRC-32
of the data area when the writer recorded one. Any violation raises
:class:`CheckpointError` (a ``ValueError``) naming the file and the problem.
"""
import json
import os
import struct
import tempfile
import zlib

import numpy as np

from .tensor import Tensor

__all__ = ["save", "load", "load_metadata", "CheckpointError", "FORMAT_VERSION"]

FORMAT_VERSION = "1"
_MAX_HEADER = 100 * 1024 * 1024

_DTYPES = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"), "U32": np.dtype("<u4"), "U16": np.dtype("<u2"), "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_CODES = {dt.newbyteorder("=") if dt.byteorder == "<" else dt: code
          for code, dt in _DTYPES.items()}


class CheckpointError(ValueError):
    """A checkpoint file that is truncated, corrupted or not in the expected layout."""


def _code(arr, name):
    dt = arr.dtype.newbyteorder("=") if arr.dtype.byteorder in "<>" else arr.dtype
    try:
        return _CODES[dt]
    except KeyError:
        raise TypeError(f"save: {name!r} has dtype {arr.dtype}, which the safetensors layout "
                        f"cannot hold") from None


# ---------------------------------------------------------------------------
# flattening a nested object into (tensors, JSON tree)


def _leaf_array(value):
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach") and hasattr(value, "cpu") and hasattr(value, "numpy"):
        return value.detach().cpu().numpy()        # a torch tensor
    return None


def _flatten(obj, path, tensors):
    arr = _leaf_array(obj)
    if arr is not None:
        key = "/".join(path) if path else "tensor"
        if key in tensors:
            raise ValueError(f"save: two entries map to the tensor name {key!r}")
        tensors[key] = arr
        return {"__tensor__": key}
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if isinstance(k, (bool, np.bool_)) or not isinstance(k, (str, int, np.integer)):
                raise TypeError(f"save: dictionary keys must be str or int, got "
                                f"{type(k).__name__} {k!r} at {'/'.join(path) or 'top level'}")
            k = int(k) if isinstance(k, np.integer) else k
            items.append([k, _flatten(v, path + [str(k)], tensors)])
        return {"__dict__": items}
    if isinstance(obj, (list, tuple)):
        return {"__list__": [_flatten(v, path + [str(i)], tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, np.generic):
        obj = obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        if isinstance(obj, float) and not np.isfinite(obj):
            return {"__float__": repr(obj)}
        return obj
    raise TypeError(f"save: cannot store a {type(obj).__name__} at "
                    f"{'/'.join(path) or 'top level'} (arrays, Tensors, dicts, lists, numbers, "
                    f"strings, booleans and None only; no pickle)")


def _unflatten(node, tensors, where):
    if isinstance(node, dict):
        if "__tensor__" in node:
            key = node["__tensor__"]
            if key not in tensors:
                raise CheckpointError(f"{where}: the structure refers to a missing tensor "
                                      f"{key!r}")
            return Tensor(tensors[key])
        if "__dict__" in node:
            return {k: _unflatten(v, tensors, where) for k, v in node["__dict__"]}
        if "__list__" in node:
            return [_unflatten(v, tensors, where) for v in node["__list__"]]
        if "__float__" in node:
            return float(node["__float__"])
        raise CheckpointError(f"{where}: unrecognised entry in the structure metadata")
    return node


def _is_flat(obj):
    return isinstance(obj, dict) and all(
        isinstance(k, str) and _leaf_array(v) is not None for k, v in obj.items())


# ---------------------------------------------------------------------------
# save


def _file_mode(path):
    """The permissions a plain ``open(path, "w")`` would give (mkstemp uses 0600)."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def save(obj, path, metadata=None):
    """Write ``obj`` (a state dict, or a nested dict/list of arrays and plain
    values) to ``path`` atomically. ``metadata`` (str -> str) is stored in the
    header; read it back with :func:`load_metadata`."""
    path = os.fspath(path)
    tensors = {}
    meta = {"format": "cnncore", "cnncore.format_version": FORMAT_VERSION}
    if _is_flat(obj):
        for k, v in obj.items():
            tensors[k] = _leaf_array(v)
    else:
        tree = _flatten(obj, [], tensors)
        meta["cnncore.tree"] = json.dumps(tree, separators=(",", ":"))
    for k, v in (metadata or {}).items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"save: metadata must map str to str, got {k!r}: {v!r}")
        meta[k] = v

    # Largest alignment first so every tensor starts aligned (as safetensors does).
    names = sorted(tensors, key=lambda k: (-tensors[k].dtype.itemsize, k))
    header, arrays, offset = {}, [], 0
    for k in names:
        arr = tensors[k]
        if not arr.flags.c_contiguous:
            arr = arr.copy(order="C")      # (np.ascontiguousarray would make 0-d arrays 1-d)
        code = _code(arr, k)
        if arr.dtype.byteorder == ">" or (arr.dtype.byteorder == "=" and
                                          np.little_endian is False):
            arr = arr.astype(_DTYPES[code])
        header[k] = {"dtype": code, "shape": list(arr.shape),
                     "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
        arrays.append(arr)
    crc = 0
    for arr in arrays:
        if arr.nbytes:                     # memoryview.cast refuses shapes with a zero
            crc = zlib.crc32(memoryview(arr).cast("B"), crc)
    meta["cnncore.crc32"] = f"{crc:08x}"
    header["__metadata__"] = meta
    blob = json.dumps(header, separators=(",", ":")).encode("utf-8")
    blob += b" " * (-len(blob) % 8)

    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(blob)))
            f.write(blob)
            for arr in arrays:
                if arr.nbytes:
                    f.write(memoryview(arr).cast("B"))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _file_mode(path))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


# ---------------------------------------------------------------------------
# load


def _no_duplicates(pairs, where):
    out = {}
    for k, v in pairs:
        if k in out:
            raise CheckpointError(f"{where}: corrupted header: the name {k!r} appears twice")
        out[k] = v
    return out


def _read_header(f, path, size):
    where = f"checkpoint {path!r}"
    if size < 8:
        raise CheckpointError(f"{where} is truncated or not a checkpoint: {size} bytes, fewer "
                              f"than the 8-byte header length")
    (n,) = struct.unpack("<Q", f.read(8))
    if n > size - 8:
        raise CheckpointError(f"{where} is truncated or corrupted: its header claims {n} bytes "
                              f"but only {size - 8} follow")
    if n > _MAX_HEADER:
        raise CheckpointError(f"{where}: header length {n} is implausibly large (corrupted?)")
    raw = f.read(n)
    try:
        text = raw.decode("utf-8")
        if not text.lstrip().startswith("{"):
            raise ValueError("not a JSON object")
        header = json.loads(text, object_pairs_hook=lambda p: _no_duplicates(p, where))
    except CheckpointError:
        raise
    except (UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"{where} is corrupted or not a safetensors file: its header is "
                              f"not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{where}: the header must be a JSON object")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                             for k, v in meta.items()):
        raise CheckpointError(f"{where}: __metadata__ must map strings to strings")
    return n, header, meta


def _validate(header, data_size, where):
    spans = []
    for name, e in header.items():
        if not isinstance(e, dict) or set(e) != {"dtype", "shape", "data_offsets"}:
            raise CheckpointError(f"{where}: entry {name!r} must have exactly dtype, shape and "
                                  f"data_offsets")
        if e["dtype"] not in _DTYPES:
            raise CheckpointError(f"{where}: entry {name!r} has unsupported dtype "
                                  f"{e['dtype']!r}")
        shape, offs = e["shape"], e["data_offsets"]
        if not isinstance(shape, list) or not all(
                isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape):
            raise CheckpointError(f"{where}: entry {name!r} has an invalid shape {shape!r}")
        if not (isinstance(offs, list) and len(offs) == 2 and all(
                isinstance(o, int) and not isinstance(o, bool) for o in offs)
                and 0 <= offs[0] <= offs[1]):
            raise CheckpointError(f"{where}: entry {name!r} has invalid data_offsets {offs!r}")
        nbytes = int(np.prod(shape, dtype=np.int64)) * _DTYPES[e["dtype"]].itemsize
        if offs[1] - offs[0] != nbytes:
            raise CheckpointError(f"{where}: entry {name!r} is {e['dtype']} {shape} = {nbytes} "
                                  f"bytes but its data_offsets span {offs[1] - offs[0]}")
        spans.append((offs[0], offs[1], name))
    spans.sort()
    pos = 0
    for begin, end, name in spans:
        if begin < pos:
            raise CheckpointError(f"{where}: entry {name!r} overlaps the previous tensor")
        if begin > pos:
            raise CheckpointError(f"{where}: a gap of {begin - pos} bytes before {name!r}")
        pos = end
    if pos > data_size:
        raise CheckpointError(f"{where} is truncated: the tensors need {pos} data bytes but "
                              f"the file holds {data_size}")
    if pos < data_size:
        raise CheckpointError(f"{where} is corrupted: {data_size - pos} unexpected bytes after "
                              f"the last tensor")


def load_metadata(path):
    """The header metadata (str -> str) of a checkpoint, validating the header."""
    path = os.fspath(path)
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        _, _, meta = _read_header(f, path, size)
    return {k: v for k, v in meta.items()}


def load(path, with_metadata=False):
    """Read a checkpoint written by :func:`save` (or any safetensors file).

    Returns the saved object with arrays as :class:`~cnncore.Tensor`; a plain
    safetensors file gives ``{name: Tensor}``. ``with_metadata=True`` returns
    ``(obj, metadata)``.
    """
    path = os.fspath(path)
    where = f"checkpoint {path!r}"
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        n, header, meta = _read_header(f, path, size)
        data_size = size - 8 - n
        _validate(header, data_size, where)
        buf = bytearray(data_size)
        got = f.readinto(buf)
    if got != data_size:
        raise CheckpointError(f"{where} is truncated: read {got} of {data_size} data bytes")
    if "cnncore.crc32" in meta:
        crc = f"{zlib.crc32(buf):08x}"
        if crc != meta["cnncore.crc32"]:
            raise CheckpointError(f"{where} is corrupted: the data checksum is {crc}, the file "
                                  f"recorded {meta['cnncore.crc32']}")
    tensors = {}
    for name, e in header.items():
        dt = _DTYPES[e["dtype"]]
        b, end = e["data_offsets"]
        arr = np.frombuffer(buf, dtype=dt, count=(end - b) // dt.itemsize, offset=b)
        arr = arr.reshape(e["shape"])
        if not arr.flags.aligned or dt.byteorder == ">":
            arr = arr.astype(dt.newbyteorder("="))
        elif dt.byteorder == "<":
            arr = arr.view(dt.newbyteorder("="))
        tensors[name] = arr
    if "cnncore.tree" in meta:
        try:
            tree = json.loads(meta["cnncore.tree"])
        except ValueError as exc:
            raise CheckpointError(f"{where}: corrupted structure metadata ({exc})") from None
        obj = _unflatten(tree, tensors, where)
    else:
        obj = {k: Tensor(tensors[k]) for k in sorted(header, key=lambda k: header[k]
                                                      ["data_offsets"][0])}
    return (obj, meta) if with_metadata else obj
