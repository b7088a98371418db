"""Checkpoints: ``save(obj, path)`` / ``load(path)`` in the safetensors layout.

File layout (https://github.com/huggingface/safetensors): an 8-byte
little-endian header length N, N bytes of JSON ``{name: {"dtype", "shape",
"data_offsets": [begin, end]}, "__metadata__": {str: str}}``, then the raw
little-endian tensor bytes. cnncore writes the JSON compact and ASCII-only,
padded with spaces to a multiple of 8 bytes so the data area starts aligned,
and orders the tensors widest dtype first. A flat ``{name: array}`` (a model's
``state_dict()``) is stored exactly like that, so the ``safetensors`` package
and torch read it; nested objects (an optimiser's state dict, ``{"model": ...,
"optimizer": ..., "epoch": 3}``) keep their structure and non-array values as
JSON in the metadata key ``cnncore.tree``. Never pickle.

Metadata cnncore writes (format version 2): ``"format": "cnncore"`` (the
caller may override this one, e.g. with ``"pt"``), ``"cnncore.format_version":
"2"``, ``cnncore.tree`` for nested objects, the caller's own keys, and
``"cnncore.sha256"``: 64 lowercase hex digits, the SHA-256 of the *whole
file* (length field, header and data) as it reads with those 64 digits
replaced by ``0``. The writer puts 64 ``0`` as a placeholder, hashes the file
it is about to write and writes the digest over the placeholder: the same
length, so N and every offset stay as hashed. The reader finds the byte
sequence ``"cnncore.sha256":"<64 hex>"`` in the raw header (it must occur
exactly once and agree with the parsed value), hashes the file with the
placeholder put back and compares. Every byte is covered, so one changed
digit of a metadata value, a tensor's shape or the padding is detected, and a
file that names any ``cnncore.*`` key (or ``"format": "cnncore"``) but has no
``cnncore.sha256`` is refused: deleting or renaming the checksum key does not
switch verification off. The four keys ``cnncore.format_version``,
``cnncore.tree``, ``cnncore.sha256`` and ``cnncore.crc32`` are reserved: a
caller's metadata may not set them.

Files without the checksum:

* a plain safetensors file from another writer (no ``cnncore.*`` key and no
  ``"format": "cnncore"``) loads, but with an :class:`UnverifiedCheckpointWarning`:
  only its structure can be checked;
* a format-1 file (cnncore before the SHA-256: ``cnncore.format_version`` ``"1"``
  and a CRC-32 of the data area in ``cnncore.crc32``) is refused by default: its
  header (names, shapes, metadata such as the data mean a model was trained with)
  is not covered, and a format-2 file could be turned into one to dodge the
  SHA-256. ``load(path, allow_format1=True)`` (or ``load_metadata``) reads it
  after checking the data's CRC-32, with an :class:`UnverifiedCheckpointWarning`;
  saving the result again upgrades it. The opt-in keeps old work recoverable
  without letting an edited header pass silently;
* any other file with cnncore metadata and no valid checksum, or a format
  version this code does not know, is a :class:`CheckpointError`.

Reads validate everything before building arrays: header length against the
file size, UTF-8, JSON syntax (no NaN/Infinity literals, no duplicate names at
any level, bounded nesting), known dtypes, integer shapes and offsets,
dtype x shape = byte count (computed without allocating, so an astronomically
large shape is an error, not a MemoryError), offsets that tile the data area
exactly (no overlaps, gaps or trailing bytes), then the checksum (also by
:func:`load_metadata`, which therefore reads the data area too), then the
structure tree (well-formed nodes, every tensor referenced exactly once;
rebuilt without recursion, so any depth the JSON parser accepts loads).
Every violation raises :class:`CheckpointError` (a ``ValueError``) naming the
file and the problem; a zip archive (``torch.save``), a pickle or a ``.npy``
file is named as such.

Writes are atomic: a temporary file beside the target,
``.<name>.<pid>.<host>.<random>.tmp`` (``<host>`` 8 hex digits identifying the
machine and PID namespace, ``<random>`` 16 hex digits; a name longer than 180
bytes is replaced by ``h`` and 16 hex digits of its SHA-256 so the temporary's
name stays short enough), fsync, rename, fsync of the folder, so a crash
mid-save leaves any previous file intact. A save first removes the temporary
files of earlier saves *to the same target* whose writer process is dead (same
host tag, PID not alive); it never touches a live process's temporary, another
target's, one from another machine, or any file not named in exactly that
pattern (such as the mkstemp names of format-1 writers, which are left alone).
"""
import hashlib
import json
import os
import re
import secrets
import socket
import stat
import struct
import warnings
import zlib

import numpy as np

from . import _core
from .tensor import Tensor

__all__ = ["save", "load", "load_metadata", "CheckpointError", "UnverifiedCheckpointWarning",
           "FORMAT_VERSION"]

FORMAT_VERSION = "2"
_LEGACY_VERSION = "1"                  # CRC-32 of the data area only
_MAX_HEADER = 100 * 1024 * 1024
_MAX_BYTES = 2 ** 62                   # a tensor larger than this cannot be an array
_SHA_KEY = "cnncore.sha256"
_CRC_KEY = "cnncore.crc32"
_TREE_KEY = "cnncore.tree"
_VERSION_KEY = "cnncore.format_version"
_RESERVED = (_VERSION_KEY, _TREE_KEY, _SHA_KEY, _CRC_KEY)
_PLACEHOLDER = b"0" * 64
_SHA_FIELD = re.compile(rb'"cnncore\.sha256":"([0-9a-f]{64})"')
_CHUNK = 1 << 20

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


class UnverifiedCheckpointWarning(UserWarning):
    """A file loaded without a full integrity check: a safetensors file from another
    writer (no cnncore checksum at all) or a format-1 cnncore file (data CRC only)."""


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
        return value.data.get() if value.is_cuda else value.data   # a CUDA tensor is saved from the host
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, _core.DeviceTensor):
        return value.get()
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

def _is_flat(obj):
    return isinstance(obj, dict) and all(
        isinstance(k, str) and _leaf_array(v) is not None for k, v in obj.items())


# ---------------------------------------------------------------------------
# rebuilding the object from the JSON tree (iteratively: any depth JSON accepts)

_NON_FINITE = {"inf": float("inf"), "-inf": float("-inf"), "nan": float("nan")}
_NODE_KINDS = ("__tensor__", "__dict__", "__list__", "__float__")


def _short(value, limit=80):
    try:
        text = repr(value)
    except ValueError:                     # an int too long to print
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _node(node, tensors, used, todo, where):
    """One node of the structure tree as a value; containers come back empty-slotted and
    their children go on ``todo``."""
    if node is None or isinstance(node, (bool, int, str)):
        return node
    if isinstance(node, float):
        if node != node or node in (float("inf"), float("-inf")):
            raise CheckpointError(f"{where}: corrupted structure metadata: a non-finite number "
                                  f"outside a __float__ node")
        return node
    if not (isinstance(node, dict) and len(node) == 1 and next(iter(node)) in _NODE_KINDS):
        raise CheckpointError(f"{where}: unrecognised entry in the structure metadata")
    ((kind, value),) = node.items()

    def bad(why):
        return CheckpointError(f"{where}: corrupted structure metadata: a {kind} node {why} "
                               f"({_short(node)})")

    if kind == "__tensor__":
        if not isinstance(value, str):
            raise bad("must name a tensor by a string")
        if value not in tensors:
            raise CheckpointError(f"{where}: the structure refers to a missing tensor "
                                  f"{value!r}")
        if value in used:
            raise CheckpointError(f"{where}: the structure refers to the tensor {value!r} "
                                  f"twice")
        used.add(value)
        return Tensor(tensors[value])
    if kind == "__float__":
        if not isinstance(value, str) or value not in _NON_FINITE:
            raise bad("must hold 'inf', '-inf' or 'nan'")
        return _NON_FINITE[value]
    if not isinstance(value, list):
        raise bad("must hold a list")
    if kind == "__list__":
        out = [None] * len(value)
        todo.extend((child, out, i) for i, child in enumerate(value))
        return out
    out = {}
    for item in value:
        if not (isinstance(item, list) and len(item) == 2):
            raise bad("must hold [key, value] pairs")
        key = item[0]
        if isinstance(key, bool) or not isinstance(key, (str, int)):
            raise bad(f"has the key {_short(key)}, not a string or an integer")
        if key in out:
            raise bad(f"has the key {_short(key)} twice")
        out[key] = None                    # keeps the saved order; filled from todo
    todo.extend((child, out, key) for key, child in value)
    return out


def _unflatten(tree, tensors, where):
    used = set()
    root = [None]
    todo = [(tree, root, 0)]
    while todo:
        node, parent, slot = todo.pop()
        parent[slot] = _node(node, tensors, used, todo, where)
    for name in tensors:
        if name not in used:
            raise CheckpointError(f"{where}: the file holds the tensor {name!r} but the "
                                  f"structure never refers to it")
    return root[0]


# ---------------------------------------------------------------------------
# save


def _file_mode(path):
    """The permissions a plain ``open(path, "w")`` would give (a fresh temporary is 0600)."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _host_tag():
    """8 hex digits naming this machine and PID namespace: a PID means something only
    where this tag is the same."""
    ident = socket.gethostname()
    try:
        ident += f"/{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        pass
    return hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def _temp_stem(base):
    """The target's name as used in its temporaries (hashed when long, so that the
    temporary's name stays within the file system's limit)."""
    if len(os.fsencode(base)) <= 180:
        return base
    return "h" + hashlib.sha256(os.fsencode(base)).hexdigest()[:16]


def _temp_pattern(base, host):
    return re.compile(re.escape(f".{_temp_stem(base)}.") + r"([1-9][0-9]{0,9})\."
                      + re.escape(host) + r"\.[0-9a-f]{16}\.tmp")


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):       # another user's process, or no way to tell: keep
        return True
    return True


def _remove_stale_temps(folder, base, host):
    """Delete the temporaries of earlier saves to this target whose writer is dead."""
    if os.name != "posix":                 # os.kill(pid, 0) is no liveness test elsewhere
        return
    pattern, me = _temp_pattern(base, host), os.getpid()
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        m = pattern.fullmatch(name)
        if m is None:
            continue
        pid = int(m.group(1))
        if pid == me or _pid_alive(pid):
            continue
        full = os.path.join(folder, name)
        try:
            if stat.S_ISREG(os.lstat(full).st_mode):
                os.unlink(full)
        except OSError:
            pass


def _create_temp(folder, base, host):
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = os.path.join(folder, f".{_temp_stem(base)}.{os.getpid()}.{host}."
                                   f"{secrets.token_hex(8)}.tmp")
        try:
            return os.open(tmp, flags, 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"save: could not create a temporary file in {folder!r}")


def _bytes_of(arr):
    return memoryview(arr).cast("B")       # (refuses shapes with a zero: callers skip those)


def save(obj, path, metadata=None):
    """Write ``obj`` (a state dict, or a nested dict/list of arrays and plain
    values) to ``path`` atomically. ``metadata`` (str -> str) is stored in the
    header; read it back with :func:`load_metadata`. The keys
    ``cnncore.format_version``, ``cnncore.tree``, ``cnncore.sha256`` and
    ``cnncore.crc32`` are reserved."""
    path = os.fspath(path)
    tensors = {}
    meta = {"format": "cnncore", _VERSION_KEY: FORMAT_VERSION}
    if _is_flat(obj):
        for k, v in obj.items():
            tensors[k] = _leaf_array(v)
    else:
        tree = _flatten(obj, [], tensors)
        meta[_TREE_KEY] = json.dumps(tree, separators=(",", ":"))
    for k, v in (metadata or {}).items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"save: metadata must map str to str, got {k!r}: {v!r}")
        if k in _RESERVED:
            raise ValueError(f"save: the metadata key {k!r} is reserved for cnncore's own use")
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
        if arr.nbytes:
            arrays.append(arr)
    meta[_SHA_KEY] = _PLACEHOLDER.decode("ascii")
    header["__metadata__"] = meta
    blob = json.dumps(header, separators=(",", ":"), allow_nan=False).encode("ascii")
    blob += b" " * (-len(blob) % 8)
    fields = list(_SHA_FIELD.finditer(blob))
    if len(fields) != 1:                   # (every other string is escaped JSON: cannot happen)
        raise RuntimeError(f"save: the checksum field appears {len(fields)} times in the header")
    at = fields[0].start(1)
    prefix = struct.pack("<Q", len(blob))
    digest = hashlib.sha256(prefix)
    digest.update(blob)
    for arr in arrays:
        digest.update(_bytes_of(arr))
    blob = blob[:at] + digest.hexdigest().encode("ascii") + blob[at + len(_PLACEHOLDER):]

    folder = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    host = _host_tag()
    _remove_stale_temps(folder, base, host)
    fd, tmp = _create_temp(folder, base, host)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(prefix)
            f.write(blob)
            for arr in arrays:
                f.write(_bytes_of(arr))
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
# load: the header


def _no_duplicates(pairs, where, what):
    out = {}
    for k, v in pairs:
        if k in out:
            raise CheckpointError(f"{where}: corrupted {what}: the name {k!r} appears twice")
        out[k] = v
    return out


def _no_constants(name):
    raise ValueError(f"the non-standard literal {name} is not JSON")


def _parse_json(text, where, what):
    """``json.loads`` with every failure as a CheckpointError; returns (value, None) or
    (None, the reason it is not valid JSON)."""
    try:
        return json.loads(text, object_pairs_hook=lambda p: _no_duplicates(p, where, what),
                          parse_constant=_no_constants), None
    except RecursionError:
        raise CheckpointError(f"{where}: corrupted {what}: it is nested too deeply") from None
    except MemoryError:
        raise CheckpointError(f"{where}: corrupted {what}: too large to parse") from None
    except ValueError as exc:              # JSONDecodeError, too many digits, NaN literals
        if isinstance(exc, CheckpointError):
            raise
        return None, str(exc)


_FOREIGN = (
    (lambda b: b[:4] in (b"PK\x03\x04", b"PK\x05\x06"),
     "a zip archive (torch.save writes one, so does numpy.savez)"),
    (lambda b: len(b) > 1 and b[0] == 0x80 and 2 <= b[1] <= 5,
     "a Python pickle (pickle.dump, or torch.save in its legacy format)"),
    (lambda b: b[:6] == b"\x93NUMPY", "a NumPy .npy file"),
    (lambda b: b[:8] == b"\x89HDF\r\n\x1a\n", "an HDF5 file (Keras .h5?)"),
)


def _foreign(start, where):
    for test, kind in _FOREIGN:
        if test(start):
            return CheckpointError(
                f"{where} is not a safetensors checkpoint: it is {kind}. cnncore reads only the "
                f"safetensors layout and never unpickles (unpickling runs arbitrary code): load "
                f"it with the library that wrote it and save its arrays with cnncore.save")
    return None


def _read_header(f, path, size):
    """(first 8 bytes, raw header bytes, {name: entry}, metadata) of an open file."""
    where = f"checkpoint {path!r}"
    start = f.read(min(size, 8))
    try:
        return _parse_header(f, start, size, where)
    except CheckpointError:
        foreign = _foreign(start, where)
        if foreign is not None:
            raise foreign from None
        raise


def _parse_header(f, start, size, where):
    if size < 8 or len(start) < 8:
        raise CheckpointError(f"{where} is truncated or not a checkpoint: {size} bytes, fewer "
                              f"than the 8-byte header length")
    (n,) = struct.unpack("<Q", start)
    if n > size - 8:
        raise CheckpointError(f"{where} is truncated or corrupted: its header claims {n} bytes "
                              f"but only {size - 8} follow")
    if n > _MAX_HEADER:
        raise CheckpointError(f"{where}: header length {n} is implausibly large (corrupted?)")
    raw = f.read(n)
    if len(raw) != n:
        raise CheckpointError(f"{where} is truncated: read {len(raw)} of {n} header bytes")
    bad = f"{where} is corrupted or not a safetensors file: its header is"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CheckpointError(f"{bad} not valid UTF-8 ({exc})") from None
    if not text.lstrip().startswith("{"):
        raise CheckpointError(f"{bad} not valid JSON (not a JSON object)")
    header, why = _parse_json(text, where, "header")
    if why is not None:
        raise CheckpointError(f"{bad} not valid JSON ({why})")
    if not isinstance(header, dict):
        raise CheckpointError(f"{where}: the header must be a JSON object")
    meta = header.pop("__metadata__", None)
    if meta is None:
        meta = {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                             for k, v in meta.items()):
        raise CheckpointError(f"{where}: __metadata__ must map strings to strings")
    return start, raw, header, meta


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _validate(header, data_size, where):
    spans = []
    for name, e in header.items():
        if not isinstance(e, dict) or set(e) != {"dtype", "shape", "data_offsets"}:
            raise CheckpointError(f"{where}: entry {name!r} must have exactly dtype, shape and "
                                  f"data_offsets")
        dtype, shape, offs = e["dtype"], e["shape"], e["data_offsets"]
        if not isinstance(dtype, str) or dtype not in _DTYPES:
            raise CheckpointError(f"{where}: entry {name!r} has unsupported dtype "
                                  f"{_short(dtype)}")
        if not isinstance(shape, list) or not all(_is_int(s) and s >= 0 for s in shape):
            raise CheckpointError(f"{where}: entry {name!r} has an invalid shape "
                                  f"{_short(shape)}")
        if len(shape) > 64:
            raise CheckpointError(f"{where}: entry {name!r} has {len(shape)} dimensions, more "
                                  f"than an array can have")
        itemsize = _DTYPES[dtype].itemsize
        count, extent = 1, itemsize
        for s in shape:
            count *= s
            extent *= max(s, 1)
        if extent > _MAX_BYTES:
            raise CheckpointError(f"{where}: entry {name!r} has an invalid shape "
                                  f"{_short(shape)}: far too large for an array")
        if not (isinstance(offs, list) and len(offs) == 2 and all(_is_int(o) for o in offs)
                and 0 <= offs[0] <= offs[1]):
            raise CheckpointError(f"{where}: entry {name!r} has invalid data_offsets "
                                  f"{_short(offs)}")
        nbytes = count * itemsize
        if offs[1] - offs[0] != nbytes:
            raise CheckpointError(f"{where}: entry {name!r} is {dtype} {shape} = {nbytes} "
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


# ---------------------------------------------------------------------------
# load: integrity


def _integrity_mode(meta, where):
    """'sha256', 'crc32' (a format-1 file) or 'none' (another writer's file)."""
    if _SHA_KEY in meta:
        return "sha256"
    if _CRC_KEY in meta and meta.get(_VERSION_KEY) == _LEGACY_VERSION:
        return "crc32"
    if meta.get("format") == "cnncore" or any(k.startswith("cnncore.") for k in meta):
        raise CheckpointError(f"{where} is corrupted or was edited: it has cnncore metadata but "
                              f"no {_SHA_KEY} checksum (cnncore always writes one)")
    return "none"


def _verify(mode, start, raw, meta, chunks, where, allow_format1=False):
    """Check the checksum over the file's bytes (``chunks``: the data area, in pieces);
    returns the text of a warning to give, or None."""
    if mode == "none":
        return (f"{where} has no cnncore checksum (a safetensors file from another writer?): "
                f"its structure was checked but its contents are unverified")
    if mode == "crc32":
        if not allow_format1:
            raise CheckpointError(
                f"{where} was written in cnncore checkpoint format {_LEGACY_VERSION}, whose "
                f"checksum does not cover the header (names, shapes, metadata), so an edited "
                f"header cannot be detected; if you trust the file, read it with "
                f"cnncore.load(path, allow_format1=True) and save it again to upgrade it to "
                f"format {FORMAT_VERSION}")
        recorded = meta[_CRC_KEY]
        if not re.fullmatch(r"[0-9a-f]{8}", recorded):
            raise CheckpointError(f"{where} is corrupted: its {_CRC_KEY} {_short(recorded)} is "
                                  f"not 8 hex digits")
        crc = 0
        for chunk in chunks:
            crc = zlib.crc32(chunk, crc)
        if f"{crc:08x}" != recorded:
            raise CheckpointError(f"{where} is corrupted: the data checksum is {crc:08x}, the "
                                  f"file recorded {recorded}")
        return (f"{where} was written in cnncore checkpoint format {_LEGACY_VERSION}: its data "
                f"passed the CRC-32 check but its header (names, shapes, metadata) is "
                f"unverified; save it again to upgrade it to format {FORMAT_VERSION}")
    fields = list(_SHA_FIELD.finditer(raw))
    if len(fields) != 1:
        raise CheckpointError(f"{where} is corrupted: the header must hold "
                              f"\"{_SHA_KEY}\":\"<64 hex digits>\" exactly once, it holds it "
                              f"{len(fields)} times")
    recorded = fields[0].group(1).decode("ascii")
    if recorded != meta[_SHA_KEY]:
        raise CheckpointError(f"{where} is corrupted: its {_SHA_KEY} field and its parsed "
                              f"metadata disagree")
    at = fields[0].start(1)
    digest = hashlib.sha256(start)
    digest.update(raw[:at])
    digest.update(_PLACEHOLDER)
    digest.update(raw[at + len(_PLACEHOLDER):])
    for chunk in chunks:
        digest.update(chunk)
    if digest.hexdigest() != recorded:
        raise CheckpointError(f"{where} is corrupted: the SHA-256 checksum of its contents is "
                              f"{digest.hexdigest()}, the file recorded {recorded}")
    version = meta.get(_VERSION_KEY)
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{where} has cnncore format version {_short(version)}, which "
                              f"this cnncore cannot read (it reads {FORMAT_VERSION} and "
                              f"{_LEGACY_VERSION}): written by a newer cnncore?")
    return None


def _read_data(f, data_size, where):
    buf = bytearray(data_size)
    view, got = memoryview(buf), 0
    while got < data_size:
        k = f.readinto(view[got:])
        if not k:
            break
        got += k
    if got != data_size:
        raise CheckpointError(f"{where} is truncated: read {got} of {data_size} data bytes")
    return buf


def _stream_data(f, data_size, where):
    left = data_size
    while left:
        chunk = f.read(min(left, _CHUNK))
        if not chunk:
            raise CheckpointError(f"{where} is truncated: read {data_size - left} of "
                                  f"{data_size} data bytes")
        left -= len(chunk)
        yield chunk


def _open_checked(f, path, with_data, allow_format1=False):
    """Header, metadata, data (a bytearray, or None) and the warning to give, all checked."""
    where = f"checkpoint {path!r}"
    size = os.path.getsize(path)
    start, raw, header, meta = _read_header(f, path, size)
    data_size = size - 8 - len(raw)
    _validate(header, data_size, where)
    mode = _integrity_mode(meta, where)
    data = _read_data(f, data_size, where) if with_data else None
    if with_data:
        chunks = [data]
    elif mode == "none":
        chunks = []
    else:
        chunks = _stream_data(f, data_size, where)
    note = _verify(mode, start, raw, meta, chunks, where, allow_format1)
    return header, meta, data, note


def _arrays(header, buf, where):
    tensors = {}
    for name, e in header.items():
        dt = _DTYPES[e["dtype"]]
        b, end = e["data_offsets"]
        try:
            arr = np.frombuffer(buf, dtype=dt, count=(end - b) // dt.itemsize, offset=b)
            arr = arr.reshape(e["shape"])
        except (ValueError, TypeError, OverflowError, MemoryError) as exc:
            raise CheckpointError(f"{where}: entry {name!r} of shape {_short(e['shape'])} "
                                  f"cannot be made into an array ({exc})") from None
        if not arr.flags.aligned or dt.byteorder == ">":
            arr = arr.astype(dt.newbyteorder("="))
        elif dt.byteorder == "<":
            arr = arr.view(dt.newbyteorder("="))
        tensors[name] = arr
    return tensors


def load_metadata(path, *, allow_format1=False):
    """The header metadata (str -> str) of a checkpoint. The whole file is checked as by
    :func:`load` (checksum included, so this reads the data area too), without building
    arrays."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        _, meta, _, note = _open_checked(f, path, with_data=False, allow_format1=allow_format1)
    if note is not None:
        warnings.warn(note, UnverifiedCheckpointWarning, stacklevel=2)
    return dict(meta)


def load(path, with_metadata=False, *, allow_format1=False):
    """Read a checkpoint written by :func:`save` (or any safetensors file).

    Returns the saved object with arrays as :class:`~cnncore.Tensor`; a plain
    safetensors file gives ``{name: Tensor}`` (and an
    :class:`UnverifiedCheckpointWarning`: it has no cnncore checksum).
    ``with_metadata=True`` returns ``(obj, metadata)``. A file written in cnncore's
    format 1 (data CRC only, header unverified) is refused unless ``allow_format1=True``.
    """
    path = os.fspath(path)
    where = f"checkpoint {path!r}"
    with open(path, "rb") as f:
        header, meta, buf, note = _open_checked(f, path, with_data=True, allow_format1=allow_format1)
    tensors = _arrays(header, buf, where)
    if _TREE_KEY in meta:
        tree, why = _parse_json(meta[_TREE_KEY], where, "structure metadata")
        if why is not None:
            raise CheckpointError(f"{where}: corrupted structure metadata ({why})")
        obj = _unflatten(tree, tensors, where)
    else:
        obj = {k: Tensor(tensors[k]) for k in sorted(header, key=lambda k: header[k]
                                                      ["data_offsets"][0])}
    if note is not None:
        warnings.warn(note, UnverifiedCheckpointWarning, stacklevel=2)
    return (obj, meta) if with_metadata else obj
