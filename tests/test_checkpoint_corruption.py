"""Damaged and hostile checkpoint files: every flipped byte and every truncation of a file
cnncore wrote is a CheckpointError (the SHA-256 covers the header and the data), every kind
of malformed header or structure tree is a CheckpointError naming the file and the problem
(never a numpy error, OverflowError, RecursionError, TypeError, ...), and pickles, torch
.pt files and other foreign formats are named as such."""
import hashlib
import json
import pickle
import re
import struct
import warnings

import numpy as np
import pytest

import cnncore as cc
from cnncore import io


def write_raw(path, header, data=b""):
    """A safetensors file with this header (a dict, JSON text or bytes) and no checksum."""
    body = header if isinstance(header, (str, bytes)) else json.dumps(header)
    body = body.encode() if isinstance(body, str) else body
    path.write_bytes(struct.pack("<Q", len(body)) + body + data)
    return path


def write_signed(path, header, data=b""):
    """As cnncore writes it: the metadata gets the format version and the SHA-256 of the whole
    file computed with 64 zeros in the digest's place (the scheme, re-implemented here). A
    header given as text must already hold the placeholder field."""
    if isinstance(header, dict):
        header = dict(header)
        meta = {"cnncore.format_version": io.FORMAT_VERSION,
                **(header.pop("__metadata__", None) or {}), "cnncore.sha256": "0" * 64}
        header = json.dumps({**header, "__metadata__": meta}, separators=(",", ":"))
    body = header.encode() if isinstance(header, str) else header
    raw = struct.pack("<Q", len(body)) + body + data
    field = b'"cnncore.sha256":"' + b"0" * 64
    at = raw.index(field) + len(field) - 64
    path.write_bytes(raw[:at] + hashlib.sha256(raw).hexdigest().encode() + raw[at + 64:])
    return path


def short_id(value):
    """Test ids that stay readable (some cases are 100 000-level nestings)."""
    text = value.decode("latin-1") if isinstance(value, bytes) else (
        value if isinstance(value, str) else json.dumps(value))
    return text if len(text) <= 40 else text[:37] + "..."


def where(path):
    return re.escape(f"checkpoint {str(path)!r}")


def fails(path, match=""):
    """load and load_metadata both raise a CheckpointError naming the file (and no warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for read in (cc.load, io.load_metadata):
            with pytest.raises(io.CheckpointError, match=f"^{where(path)}.*{match}"):
                read(path)


@pytest.fixture
def small(tmp_path):
    """A small nested checkpoint (tensors of three dtypes, a tree, user metadata)."""
    path = tmp_path / "small.safetensors"
    cc.save({"model": {"w": np.arange(6, dtype=np.float32).reshape(2, 3),
                       "b": np.array([0.5, -1.0]), "n": np.array(7, np.int64)},
             "epoch": 3, "lr": [0.1, float("inf")], "mask": np.array([True, False])},
            path, metadata={"mean": "0.1307"})
    return path, path.read_bytes()


def split(raw):
    (n,) = struct.unpack("<Q", raw[:8])
    return n, raw[8:8 + n], raw[8 + n:]


# --------------------------------------------------------------------------- byte flips


def test_every_byte_flip_of_a_small_file_is_detected(small):
    path, raw = small
    assert len(raw) < 1024 and len(split(raw)[2]) > 40      # small: every byte is tried
    for i in range(len(raw)):
        for mask in (1 << (i % 8), 0xFF):
            damaged = bytearray(raw)
            damaged[i] ^= mask
            path.write_bytes(bytes(damaged))
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                with pytest.raises(io.CheckpointError, match=f"^{where(path)}"):
                    cc.load(path)
    path.write_bytes(raw)
    cc.load(path)                                          # the undamaged file is fine


def test_flips_in_a_model_sized_file_at_sampled_positions(tmp_path):
    from cnncore import models
    path = tmp_path / "lenet.safetensors"
    cc.save(models.lenet5().state_dict(), path, metadata={"note": "x"})
    raw = path.read_bytes()
    n, _, data = split(raw)
    rng = np.random.default_rng(0)
    positions = set(rng.integers(0, 8 + n, 40).tolist())            # the header
    positions |= set((8 + n + rng.integers(0, len(data), 60)).tolist())  # the data
    positions |= {len(raw) - 1, 8 + n, 7, 0}
    for i in sorted(positions):
        damaged = bytearray(raw)
        damaged[i] ^= int(rng.integers(1, 256))
        path.write_bytes(bytes(damaged))
        with pytest.raises(io.CheckpointError, match=f"^{where(path)}"):
            cc.load(path)


def test_a_data_flip_is_named_a_checksum_mismatch(small):
    path, raw = small
    damaged = bytearray(raw)
    damaged[-3] ^= 0x04
    path.write_bytes(bytes(damaged))
    fails(path, "is corrupted: the SHA-256 checksum of its contents is [0-9a-f]{64}, the file "
                "recorded [0-9a-f]{64}$")


@pytest.mark.parametrize("old, new", [
    (b'"mean":"0.1307"', b'"mean":"0.1308"'),                  # one digit of a metadata value
    (b'"shape":[2,3]', b'"shape":[3,2]'),                      # same size, another shape
    (b'[\\"epoch\\",3]', b'[\\"epoch\\",4]'),                      # a value in the tree
    (b'"format":"cnncore"', b'"format":"cnncorf"'),
])
def test_an_edit_of_the_header_that_keeps_it_valid_is_detected(small, old, new):
    path, raw = small
    assert raw.count(old) == 1
    path.write_bytes(raw.replace(old, new))
    fails(path, "SHA-256 checksum")


def test_whitespace_changes_are_detected(tmp_path):
    for n in range(8):                                     # a header with padding at its end
        path = tmp_path / f"{n}.safetensors"
        cc.save({"w": np.ones(2)}, path, metadata={"x": "y" * n})
        raw = path.read_bytes()
        _, header, data = split(raw)
        if header.endswith(b" "):
            break
    for same in (header[:-1] + b"\t",                      # the last pad space a tab
                 b"{ " + header[1:-1]):                    # a pad space moved to the front
        assert json.loads(same) == json.loads(header) and len(same) == len(header)
        path.write_bytes(raw[:8] + same + data)
        fails(path, "SHA-256")
    body = json.dumps(json.loads(header)).encode()         # re-spaced: the field is not found
    path.write_bytes(struct.pack("<Q", len(body)) + body + data)
    fails(path, "exactly once, it holds it 0 times$")


@pytest.mark.parametrize("old, new", [
    (b'"cnncore.sha256"', b'"cnncore.sha257"'),                # renamed key
    (b'"cnncore.sha256"', b'"xnncore.sha256"'),
    (b'"cnncore.sha256"', b'"cnncore.crc32 "'),
    (b'"cnncore.format_version"', b'"cnncore.format_versioN"'),
])
def test_renaming_the_checksum_key_does_not_switch_verification_off(small, old, new):
    path, raw = small
    assert len(old) == len(new)
    path.write_bytes(raw.replace(old, new))
    fails(path)


def test_deleting_the_checksum_key_does_not_switch_verification_off(small):
    path, raw = small
    _, header, data = split(raw)
    h = json.loads(header)
    del h["__metadata__"]["cnncore.sha256"]
    write_raw(path, json.dumps(h), data)
    fails(path, r"it has cnncore metadata but no cnncore\.sha256 checksum")
    for only in ({"cnncore.tree": '{"__list__":[]}'}, {"format": "cnncore"},
                 {"cnncore.format_version": "2"}, {"cnncore.model": "{}"}):
        write_raw(path, {"__metadata__": only})
        fails(path, "no cnncore.sha256 checksum")


def test_the_checksum_field_must_be_exact_and_unique(small, tmp_path):
    path, raw = small
    digest = re.search(rb'"cnncore\.sha256":"([0-9a-f]{64})"', raw).group(1)
    path.write_bytes(raw.replace(digest, digest.upper()))     # the same value, upper case
    fails(path, "exactly once, it holds it 0 times")
    # escaped key: the same name once parsed, another byte sequence
    p = tmp_path / "esc.safetensors"
    write_signed(p, '{"__metadata__":{"cnncore.format_version":"2","cnncore\\u002esha256":'
                    '"' + "0" * 64 + '","cnncore.sha256":"' + "0" * 64 + '"}}')
    fails(p, "the name 'cnncore.sha256' appears twice$")
    write_signed(p, '{"__metadata__":{"cnncore.format_version":"2","cnncore.sha256":'
                    '"' + "0" * 64 + '"}}')
    assert cc.load(p) == {}                                # (the helper signs correctly)


# --------------------------------------------------------------------------- truncation


def test_every_truncation_of_a_small_file_is_detected(small):
    path, raw = small
    n, _, _ = split(raw)
    for cut in range(len(raw)):
        path.write_bytes(raw[:cut])
        with pytest.raises(io.CheckpointError, match=f"^{where(path)}.*truncated") as info:
            cc.load(path)
        if cut >= 8 + n:                                   # the header is whole: names sizes
            assert re.search(r"need \d+ data bytes but the file holds \d+$", str(info.value))
    path.write_bytes(raw + b"\0")
    fails(path, "1 unexpected bytes after the last tensor")


# --------------------------------------------------------------------------- crafted headers


ENTRY = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


class File(bytes):
    """A whole file's bytes (the other cases are a header, given its length field)."""


@pytest.mark.parametrize("header, message", ids=short_id, argvalues=[
    # the header length field
    (File(b""), "truncated or not a checkpoint: 0 bytes"),
    (File(b"{}"), "truncated or not a checkpoint: 2 bytes"),
    (File(struct.pack("<Q", 0)), r"not valid JSON \(not a JSON object\)"),
    (File(struct.pack("<Q", 2**64 - 1) + b"{}"), "header claims 18446744073709551615 bytes"),
    (File(struct.pack("<Q", 100) + b"{}"), "header claims 100 bytes but only 2 follow"),
    # not JSON, not an object, not UTF-8
    (b'{"w": ', "not valid JSON"),
    (b"[]", "not a JSON object"),
    (b"null", "not a JSON object"),
    (b'"text"', "not a JSON object"),
    (b"5", "not a JSON object"),
    (b'{"\xff\xfe": 1}', "not valid UTF-8"),
    (b"\xef\xbb\xbf{}", "not a JSON object"),               # a byte-order mark
    (b'{"a": 1} {"b": 2}', r"not valid JSON \(Extra data"),
    # deep nesting, huge numbers, non-standard literals, duplicates
    (b'{"w": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "header: it is nested too deeply"),
    (b'{"w": {"dtype": "F32", "shape": [' + b"9" * 5000 + b'], "data_offsets": [0, 8]}}',
     "not valid JSON"),
    (b'{"w": {"dtype": "F32", "shape": [NaN], "data_offsets": [0, 8]}}',
     "non-standard literal NaN"),
    (b'{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, Infinity]}}',
     "non-standard literal Infinity"),
    (b'{"w": {"dtype": "F32", "shape": [-Infinity], "data_offsets": [0, 8]}}',
     "non-standard literal -Infinity"),
    (b'{"w": {"dtype": "F32", "dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}',
     "the name 'dtype' appears twice"),
    (b'{"w": 1, "w": 2}', "the name 'w' appears twice"),
    # metadata
    ({"__metadata__": []}, "__metadata__ must map strings to strings"),
    ({"__metadata__": False}, "__metadata__ must map strings to strings"),
    ({"__metadata__": 0}, "__metadata__ must map strings to strings"),
    ({"__metadata__": ""}, "__metadata__ must map strings to strings"),
    ({"__metadata__": {"a": None}}, "__metadata__ must map strings to strings"),
    ({"__metadata__": {"a": ["x"]}}, "__metadata__ must map strings to strings"),
    ({"__metadata__": {"a": {"b": "c"}}}, "__metadata__ must map strings to strings"),
    # entries
    ({"w": None}, "entry 'w' must have exactly dtype, shape and data_offsets"),
    ({"w": []}, "entry 'w' must have exactly dtype, shape and data_offsets"),
    ({"w": "F32"}, "entry 'w' must have exactly dtype, shape and data_offsets"),
    ({"w": {}}, "entry 'w' must have exactly dtype, shape and data_offsets"),
    ({"w": dict(ENTRY, dtype=["F32"])}, r"entry 'w' has unsupported dtype \['F32'\]$"),
    ({"w": dict(ENTRY, dtype={"F32": 1})}, "entry 'w' has unsupported dtype"),
    ({"w": dict(ENTRY, dtype=None)}, "entry 'w' has unsupported dtype None$"),
    ({"w": dict(ENTRY, dtype=4)}, "entry 'w' has unsupported dtype 4$"),
    ({"w": dict(ENTRY, dtype="f32")}, "entry 'w' has unsupported dtype 'f32'$"),
    ({"w": dict(ENTRY, shape=2)}, "entry 'w' has an invalid shape 2$"),
    ({"w": dict(ENTRY, shape="2")}, "entry 'w' has an invalid shape '2'$"),
    ({"w": dict(ENTRY, shape=None)}, "entry 'w' has an invalid shape None$"),
    ({"w": dict(ENTRY, shape={"0": 2})}, "entry 'w' has an invalid shape"),
    ({"w": dict(ENTRY, shape=[[2]])}, r"entry 'w' has an invalid shape \[\[2\]\]$"),
    ({"w": dict(ENTRY, shape=["2"])}, "entry 'w' has an invalid shape"),
    ({"w": dict(ENTRY, shape=[2.5])}, "entry 'w' has an invalid shape"),
    (b'{"w": {"dtype": "F32", "shape": [1e400], "data_offsets": [0, 8]}}',
     r"entry 'w' has an invalid shape \[inf\]$"),
    ({"w": dict(ENTRY, shape=[None])}, "entry 'w' has an invalid shape"),
    ({"w": dict(ENTRY, shape=[False])}, "entry 'w' has an invalid shape"),
    ({"w": dict(ENTRY, shape=[2, -1])}, "entry 'w' has an invalid shape"),
    ({"w": dict(ENTRY, shape=[1] * 10_000)}, "entry 'w' has 10000 dimensions"),
    ({"w": dict(ENTRY, shape=[1] * 65)}, "entry 'w' has 65 dimensions"),
    ({"w": dict(ENTRY, shape=[10**30])}, "invalid shape .*far too large for an array$"),
    ({"w": dict(ENTRY, shape=[2**31] * 4)}, "far too large for an array$"),
    ({"w": dict(ENTRY, shape=[0, 10**30])}, "far too large for an array$"),   # even empty
    ({"w": dict(ENTRY, shape=[0, 2**61])}, "far too large for an array$"),
    ({"w": dict(ENTRY, shape=[10**4000])}, "far too large"),
    ({"w": dict(ENTRY, data_offsets=None)}, "entry 'w' has invalid data_offsets None$"),
    ({"w": dict(ENTRY, data_offsets=[8])}, r"entry 'w' has invalid data_offsets \[8\]$"),
    ({"w": dict(ENTRY, data_offsets=[])}, r"invalid data_offsets \[\]$"),
    ({"w": dict(ENTRY, data_offsets={"0": 8})}, "invalid data_offsets"),
    ({"w": dict(ENTRY, data_offsets=[0, 8.0])}, "invalid data_offsets"),
    ({"w": dict(ENTRY, data_offsets=[0, True])}, "invalid data_offsets"),
    ({"w": dict(ENTRY, data_offsets=[0, None])}, "invalid data_offsets"),
    ({"w": dict(ENTRY, data_offsets=[-1, 7])}, "invalid data_offsets"),
    ({"w": dict(ENTRY, data_offsets=[0, 2**64 + 8])}, "data_offsets span 18446744073709551624$"),
    ({"w": dict(ENTRY, data_offsets=[10**30, 10**30 + 8])},
     f"a gap of {10**30} bytes before 'w'$"),
    ({"w": dict(ENTRY, data_offsets=[0, 10**4000])}, "invalid data_offsets|data_offsets span"),
    ({"w": dict(ENTRY, shape=[2, 3], data_offsets=[0, 24])}, "need 24 data bytes but the file "
                                                             "holds 8$"),
])
def test_every_malformed_header_is_a_checkpoint_error(tmp_path, header, message):
    path = tmp_path / "bad.safetensors"
    if isinstance(header, File):
        path.write_bytes(header)                           # the whole file as given
    else:
        write_raw(path, header, b"\0" * 8)
    fails(path, message)


def test_an_empty_tensor_with_a_huge_shape_is_refused(tmp_path):
    # zero elements, so its size checks out, but no array can have this shape
    path = write_raw(tmp_path / "h.safetensors",
                     {"w": {"dtype": "F32", "shape": [0, 2**62], "data_offsets": [0, 0]}})
    fails(path, r"entry 'w' has an invalid shape \[0, 4611686018427387904\]: far too large")


def test_a_zero_element_tensor_at_the_end_of_the_data_loads(tmp_path):
    path = write_signed(tmp_path / "z.safetensors",
                        {"w": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]},
                         "z": {"dtype": "F64", "shape": [3, 0, 2], "data_offsets": [2, 2]}},
                        b"\x05\x06")
    back = cc.load(path)
    assert back["z"].shape == (3, 0, 2) and back["w"].numpy().tolist() == [5, 6]


def test_many_dimensions_of_one_load_or_fail_cleanly(tmp_path):
    path = write_signed(tmp_path / "d.safetensors",
                        {"w": {"dtype": "U8", "shape": [1] * 64, "data_offsets": [0, 1]}}, b"\x09")
    try:                                                   # numpy 2 allows 64, numpy 1 32
        assert cc.load(path)["w"].numpy().ndim == 64
    except io.CheckpointError as exc:
        assert re.match(f"^{where(path)}: entry 'w' of shape .* cannot be made into an array",
                        str(exc))


# --------------------------------------------------------------------------- the structure tree


TENSOR = {"w": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}}


def with_tree(path, tree):
    text = tree if isinstance(tree, str) else json.dumps(tree)
    return write_signed(path, {**TENSOR, "__metadata__": {"cnncore.tree": text}}, b"\1\2")


W = {"__tensor__": "w"}


@pytest.mark.parametrize("tree, message", ids=short_id, argvalues=[
    ("", r"corrupted structure metadata \(Expecting value"),
    ("{nope", r"corrupted structure metadata \(Expecting"),
    ('{"__list__": [NaN, {"__tensor__": "w"}]}', "non-standard literal NaN"),
    ('{"__list__": [Infinity, {"__tensor__": "w"}]}', "non-standard literal Infinity"),
    ('{"__list__": [1e999, {"__tensor__": "w"}]}', "a non-finite number outside a __float__"),
    ('{"__list__": [{"__tensor__": "w"}], "__list__": []}', "structure metadata: the name "
                                                           "'__list__' appears twice"),
    ('{"__list__": [' * 50_000 + ']}' * 50_000, "structure metadata: it is nested too deeply"),
    ('{"__list__": [' + "9" * 5000 + ', {"__tensor__": "w"}]}', r"corrupted structure metadata"
                                                                  r" \(Exceeds the limit"),
    ({"__tensor__": "v"}, "the structure refers to a missing tensor 'v'$"),
    ({"__list__": [W, W]}, "the structure refers to the tensor 'w' twice$"),
    ({"__list__": [1, 2]}, "the file holds the tensor 'w' but the structure never refers to it$"),
    (5, "never refers to it$"),
    ({"__tensor__": 5}, "a __tensor__ node must name a tensor by a string"),
    ({"__tensor__": ["w"]}, "a __tensor__ node must name a tensor by a string"),
    ({"__tensor__": None}, "a __tensor__ node must name a tensor by a string"),
    ({"__tensor__": "w", "__list__": []}, "unrecognised entry in the structure metadata$"),
    ({"__list__": [W, {}]}, "unrecognised entry in the structure metadata$"),
    ({"__list__": [W, {"what": 1}]}, "unrecognised entry in the structure metadata$"),
    ({"__list__": [W, [1, 2]]}, "unrecognised entry in the structure metadata$"),
    ({"__list__": {"0": W}}, "a __list__ node must hold a list"),
    ({"__list__": "w"}, "a __list__ node must hold a list"),
    ({"__dict__": {"a": W}}, "a __dict__ node must hold a list"),
    ({"__dict__": None}, "a __dict__ node must hold a list"),
    ({"__dict__": [["a"]]}, r"a __dict__ node must hold \[key, value\] pairs"),
    ({"__dict__": [["a", W, 3]]}, r"a __dict__ node must hold \[key, value\] pairs"),
    ({"__dict__": ["a"]}, r"a __dict__ node must hold \[key, value\] pairs"),
    ({"__dict__": [{"a": W}]}, r"a __dict__ node must hold \[key, value\] pairs"),
    ({"__dict__": [[True, W]]}, "a __dict__ node has the key True, not a string or an integer"),
    ({"__dict__": [[1.5, W]]}, "has the key 1.5, not a string or an integer"),
    ({"__dict__": [[None, W]]}, "has the key None, not a string or an integer"),
    ({"__dict__": [[["a"], W]]}, r"has the key \['a'\], not a string or an integer"),
    ({"__dict__": [[{"a": 1}, W]]}, "not a string or an integer"),
    ({"__dict__": [["a", W], ["a", 1]]}, "a __dict__ node has the key 'a' twice"),
    ({"__dict__": [[1, W], [1, 2]]}, "a __dict__ node has the key 1 twice"),
    ({"__list__": [W, {"__float__": "1.5"}]}, "a __float__ node must hold 'inf', '-inf' or 'nan'"),
    ({"__list__": [W, {"__float__": 1.5}]}, "a __float__ node must hold"),
    ({"__list__": [W, {"__float__": ["inf"]}]}, "a __float__ node must hold"),
    ({"__list__": [W, {"__float__": "Infinity"}]}, "a __float__ node must hold"),
])
def test_every_malformed_structure_tree_is_a_checkpoint_error(tmp_path, tree, message):
    path = with_tree(tmp_path / "tree.safetensors", tree)
    io.load_metadata(path)                                 # the header itself is sound
    with pytest.raises(io.CheckpointError, match=f"^{where(path)}: .*{message}"):
        cc.load(path)


def test_a_deep_tree_loads_without_recursion(tmp_path):
    depth = 300                                             # far below what JSON refuses
    tree = W
    for i in range(depth):
        tree = {"__list__": [tree]} if i % 2 else {"__dict__": [[i, tree]]}
    obj = cc.load(with_tree(tmp_path / "deep.safetensors", tree))
    for i in reversed(range(depth)):
        obj = obj[0] if i % 2 else obj[i]
    assert obj.numpy().tolist() == [1, 2]
    nested = node = {}
    for _ in range(200):                                    # and save writes such trees
        node["k"] = {}
        node = node["k"]
    node["w"] = np.ones(1)
    cc.save(nested, tmp_path / "saved.safetensors")
    node = cc.load(tmp_path / "saved.safetensors")
    for _ in range(200):
        node = node["k"]
    assert node["w"].numpy().tolist() == [1.0]


def test_a_tree_keeps_its_key_order_and_types(tmp_path):
    tree = {"__dict__": [["z", 1], [2, {"__list__": [W, {"__float__": "-inf"}, None, True]}],
                         ["a", {"__dict__": []}], ["s", "x"], ["f", 0.25]]}
    obj = cc.load(with_tree(tmp_path / "t.safetensors", tree))
    assert list(obj) == ["z", 2, "a", "s", "f"]
    assert obj[2][0].numpy().tolist() == [1, 2] and obj[2][1:] == [-float("inf"), None, True]
    assert obj["a"] == {} and obj["f"] == 0.25 and obj["z"] == 1


# --------------------------------------------------------------------------- foreign formats


def test_a_pickle_is_named_and_never_unpickled(tmp_path, monkeypatch):
    def trap(*args, **kwargs):
        raise AssertionError("load unpickled something")

    monkeypatch.setattr(pickle, "loads", trap)
    monkeypatch.setattr(pickle, "load", trap)
    monkeypatch.setattr(pickle, "Unpickler", trap)
    path = tmp_path / "state.pkl"
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        path.write_bytes(pickle.dumps({"w": np.ones(3).tolist()}, protocol=protocol))
        fails(path, r"is not a safetensors checkpoint: it is a Python pickle .*never "
                    r"unpickles")
    path.write_bytes(pickle.dumps([1], protocol=0))        # no magic number: still an error
    fails(path)


def test_torch_files_are_named(tmp_path):
    torch = pytest.importorskip("torch")
    state = torch.nn.Linear(3, 2).state_dict()
    pt = tmp_path / "model.pt"
    torch.save(state, pt)
    fails(pt, r"is not a safetensors checkpoint: it is a zip archive \(torch\.save writes one")
    legacy = tmp_path / "legacy.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(state, legacy, _use_new_zipfile_serialization=False)
    fails(legacy, "it is a Python pickle")


def test_numpy_and_other_files_are_named(tmp_path):
    npy, npz = tmp_path / "a.npy", tmp_path / "a.npz"
    np.save(npy, np.ones(3))
    np.savez(npz, a=np.ones(3))
    fails(npy, "it is a NumPy .npy file")
    fails(npz, "it is a zip archive")
    h5 = tmp_path / "k.h5"
    h5.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    fails(h5, "it is an HDF5 file")
    txt = tmp_path / "notes.txt"
    txt.write_bytes(b"hello world, this is not a checkpoint\n")
    fails(txt, "header claims")


def test_a_valid_file_whose_length_looks_like_a_pickle_still_loads(tmp_path):
    # the length field 0x0480 starts with the bytes of a protocol-4 pickle
    body = json.dumps({"__metadata__": {"cnncore.format_version": "2",
                                        "cnncore.sha256": "0" * 64, "pad": ""}},
                      separators=(",", ":"))
    body = body.replace('"pad":""', '"pad":"' + "x" * (0x480 - len(body)) + '"')
    assert len(body) == 0x480
    path = write_signed(tmp_path / "p.safetensors", body)
    assert path.read_bytes()[:2] == b"\x80\x04"
    assert cc.load(path) == {}
