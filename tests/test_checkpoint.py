"""Checkpoints: save/load in the safetensors layout, validation of damaged files,
atomic writes."""
import json
import os
import struct

import numpy as np
import pytest

import cnncore as cc
from cnncore import io, models, nn, optim


def small_model():
    cc.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))


def test_model_state_dict_round_trip(tmp_path):
    m = small_model()
    m(cc.tensor(np.random.default_rng(0).random((2, 1, 4, 4)).astype(np.float32)))
    path = tmp_path / "m.safetensors"
    cc.save(m.state_dict(), path)
    loaded = cc.load(path)
    assert set(loaded) == set(m.state_dict())
    for k, v in m.state_dict().items():
        assert isinstance(loaded[k], cc.Tensor)
        assert loaded[k].dtype == v.dtype and loaded[k].shape == v.shape
        np.testing.assert_array_equal(loaded[k].numpy(), v.numpy())
    assert loaded["1.num_batches_tracked"].dtype == np.int64
    m2 = small_model()
    m2[0].weight.data[...] = 0
    m2.load_state_dict(loaded)
    np.testing.assert_array_equal(m2[0].weight.numpy(), m[0].weight.numpy())
    loaded["3.weight"].numpy()[0, 0] = 42.0                # loaded arrays are writable


def test_the_file_is_plain_safetensors(tmp_path):
    # byte layout: u64 header length, JSON header, data; offsets tile the data
    path = tmp_path / "x.safetensors"
    cc.save({"b": np.arange(3, dtype=np.float32), "a": np.ones((2, 2), np.float64)}, path,
            metadata={"note": "hi"})
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    assert header["a"] == {"dtype": "F64", "shape": [2, 2], "data_offsets": [0, 32]}
    assert header["b"] == {"dtype": "F32", "shape": [3], "data_offsets": [32, 44]}
    assert header["__metadata__"]["note"] == "hi"
    assert header["__metadata__"]["cnncore.format_version"] == io.FORMAT_VERSION
    assert len(raw) == 8 + n + 44 and (8 + n) % 8 == 0
    np.testing.assert_array_equal(np.frombuffer(raw[8 + n + 32:], "<f4"), [0, 1, 2])
    assert io.load_metadata(path)["note"] == "hi"


def test_safetensors_package_reads_our_files(tmp_path):
    import safetensors.numpy as st  # a test dependency (pyproject: the test extra)
    path = tmp_path / "m.safetensors"
    m = small_model()
    cc.save(m.state_dict(), path)
    back = st.load_file(str(path))
    np.testing.assert_array_equal(back["3.weight"], m[3].weight.numpy())
    # and we read theirs
    st.save_file({"w": np.arange(6, dtype=np.float64).reshape(2, 3), "i": np.arange(3)},
                 str(tmp_path / "theirs.safetensors"))
    with pytest.warns(io.UnverifiedCheckpointWarning, match="no cnncore checksum"):
        got = cc.load(tmp_path / "theirs.safetensors")     # no checksum: loads, with a warning
    np.testing.assert_array_equal(got["w"].numpy(), np.arange(6).reshape(2, 3))
    assert got["i"].dtype == np.int64


def test_torch_state_dict_saves_and_loads(tmp_path):
    torch = pytest.importorskip("torch")
    tl = torch.nn.Linear(3, 2)
    cc.save(tl.state_dict(), tmp_path / "t.safetensors")
    lin = nn.Linear(3, 2)
    lin.load_state_dict(cc.load(tmp_path / "t.safetensors"))
    np.testing.assert_array_equal(lin.weight.numpy(), tl.weight.detach().numpy())


def test_nested_training_state_round_trip(tmp_path):
    m = small_model()
    opt = optim.Adam(m.parameters(), lr=0.01, betas=(0.8, 0.9))
    x = cc.tensor(np.random.default_rng(0).random((2, 1, 4, 4)).astype(np.float32))
    m(x).sum().backward()
    opt.step()
    obj = {"model": m.state_dict(), "optimizer": opt.state_dict(), "epoch": 3,
           "history": [0.5, float("nan")], "name": "tiny", "done": True, "extra": None}
    cc.save(obj, tmp_path / "ckpt.safetensors")
    back = cc.load(tmp_path / "ckpt.safetensors")
    assert back["epoch"] == 3 and back["name"] == "tiny" and back["done"] is True
    assert back["extra"] is None and np.isnan(back["history"][1])
    assert set(back["model"]) == set(m.state_dict())
    opt2 = optim.Adam(small_model().parameters(), lr=0.5)
    opt2.load_state_dict(back["optimizer"])
    assert opt2.param_groups[0]["lr"] == 0.01 and list(opt2.param_groups[0]["betas"]) == [0.8,
                                                                                            0.9]
    st = opt2.state_dict()["state"]
    assert st[0]["step"] == 1
    np.testing.assert_array_equal(st[0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])


def test_no_pickle_for_arbitrary_objects(tmp_path):
    with pytest.raises(TypeError, match="no pickle"):
        cc.save({"f": object()}, tmp_path / "x.safetensors")
    assert not os.path.exists(tmp_path / "x.safetensors")


def _saved(tmp_path):
    path = tmp_path / "m.safetensors"
    cc.save(small_model().state_dict(), path)
    return path, path.read_bytes()


def _rewrite_header(path, raw, edit):
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    text = edit(header)
    body = text.encode() if isinstance(text, str) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(body)) + body + raw[8 + n:])


def test_truncated_files_raise_clearly(tmp_path):
    path, raw = _saved(tmp_path)
    for cut in (len(raw) - 3, len(raw) // 2, 20, 5, 0):
        path.write_bytes(raw[:cut])
        with pytest.raises(io.CheckpointError, match="truncated"):
            cc.load(path)


@pytest.mark.parametrize("edit, message", [
    (lambda h: h["0.weight"].update(dtype="F17"), "unsupported dtype"),
    (lambda h: h["0.weight"].update(shape=[2, 1, 3, 4]), "bytes but its data_offsets span"),
    (lambda h: h["0.weight"].update(data_offsets=[0, 72]) or
     h["0.bias"].update(data_offsets=[64, 72]), "overlaps|bytes but"),
    (lambda h: h["0.bias"].update(data_offsets=[10**6, 10**6 + 8]), "truncated|gap"),
    (lambda h: h["0.bias"].update(shape=[-2]), "invalid shape"),
    (lambda h: '{"a": 1, "a": 2}', "appears twice"),
    (lambda h: '{"0.weight": {"dtype": "F32"', "not valid JSON"),
    (lambda h: h.update(__metadata__={"x": 1}), "strings to strings"),
])
def test_corrupted_headers_raise_clearly(tmp_path, edit, message):
    path, raw = _saved(tmp_path)
    _rewrite_header(path, raw, edit)
    with pytest.raises(io.CheckpointError, match=message):
        cc.load(path)


def test_trailing_bytes_and_flipped_data_bits_are_detected(tmp_path):
    path, raw = _saved(tmp_path)
    path.write_bytes(raw + b"\0" * 4)
    with pytest.raises(io.CheckpointError, match="unexpected bytes"):
        cc.load(path)
    damaged = bytearray(raw)
    damaged[-7] ^= 0x10
    path.write_bytes(bytes(damaged))
    with pytest.raises(io.CheckpointError, match="checksum"):
        cc.load(path)
    path.write_bytes(struct.pack("<Q", 2**40) + raw[8:])
    with pytest.raises(io.CheckpointError, match="header claims"):
        cc.load(path)


def test_atomic_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path, raw = _saved(tmp_path)

    def crash(src, dst):
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated"):
        cc.save({"w": np.zeros(1000)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == raw                       # the old checkpoint survives
    assert sorted(os.listdir(tmp_path)) == ["m.safetensors"]   # no temporary left behind
    cc.load(path)


def test_checkpoint_for_another_architecture(tmp_path):
    cc.save(models.lenet5().state_dict(), tmp_path / "lenet.safetensors")
    with nn.init.skip_init():
        alex = models.alexnet(num_classes=10)
    with pytest.raises(KeyError, match="Missing key"):
        alex.load_state_dict(cc.load(tmp_path / "lenet.safetensors"))
    modern = models.lenet5(num_classes=4)
    with pytest.raises(ValueError, match="size mismatch for classifier.4.weight"):
        modern.load_state_dict(cc.load(tmp_path / "lenet.safetensors"))


def _header(path):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def test_layout_puts_wide_dtypes_first_and_names_the_format(tmp_path):
    # alphabetical order would put the float32 "a" first; alignment puts the float64 first
    path = tmp_path / "order.safetensors"
    cc.save({"a": np.arange(3, dtype=np.float32), "z": np.ones(2, np.float64),
             "m": np.arange(2, dtype=np.int64)}, path)
    header, data = _header(path)
    assert header["m"]["data_offsets"] == [0, 16] and header["z"]["data_offsets"] == [16, 32]
    assert header["a"]["data_offsets"] == [32, 44] and len(data) == 44
    assert header["__metadata__"]["format"] == "cnncore"


def test_non_contiguous_and_big_endian_arrays_round_trip(tmp_path):
    path = tmp_path / "views.safetensors"
    base = np.arange(12, dtype=np.float64).reshape(3, 4)
    big = np.arange(5, dtype=">f4")
    cc.save({"t": base.T, "s": base[:, ::2], "big": big}, path)
    back = cc.load(path)
    np.testing.assert_array_equal(back["t"], base.T)
    np.testing.assert_array_equal(back["s"], base[:, ::2])
    np.testing.assert_array_equal(back["big"], big)
    assert back["big"].dtype == np.float32 and back["big"].dtype.byteorder in "=<"
    header, data = _header(path)
    lo, hi = header["big"]["data_offsets"]
    np.testing.assert_array_equal(np.frombuffer(data[lo:hi], "<f4"), big)   # stored little-endian


def test_metadata_must_map_str_to_str(tmp_path):
    for bad in ({"a": 1}, {1: "a"}):
        with pytest.raises(TypeError, match="save: metadata must map str to str"):
            cc.save({"w": np.ones(2)}, tmp_path / "m.safetensors", metadata=bad)
    assert not list(tmp_path.iterdir())            # nothing written, no temporary left behind


# --------------------------------------------------------------------------- kill -9 mid-save

SAVER = r"""
import os, sys, time
import numpy as np
import cnncore as cc
path, mode = sys.argv[1], sys.argv[2]
big = {"w": np.arange(8_000_000, dtype=np.float64), "epoch": 9}       # 64 MB
if mode == "hang":                     # stop after the data is written, before the rename
    def hang(fd):
        print("written", flush=True)
        time.sleep(120)
    os.fsync = hang
    cc.save(big, path)
else:                                  # save over and over until killed
    print("saving", flush=True)
    while True:
        cc.save(big, path)
"""


def start_saver(path, mode):
    import subprocess
    import sys
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(cc.__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (package_root, os.environ.get("PYTHONPATH")) if p))
    return subprocess.Popen([sys.executable, "-c", SAVER, str(path), mode],
                            stdout=subprocess.PIPE, env=env)


def kill_9(child):
    import signal
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(timeout=60) == -signal.SIGKILL          # (reaped: no zombie left)


def test_a_save_killed_mid_write_keeps_the_previous_file_and_the_next_save_cleans_up(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    cc.save({"w": np.ones(3), "epoch": 1}, path)
    before = path.read_bytes()
    with start_saver(path, "hang") as child:
        try:
            assert child.stdout.readline() == b"written\n"
            (temp,) = [n for n in os.listdir(tmp_path) if n != path.name]
            assert f".{child.pid}." in temp and os.path.getsize(tmp_path / temp) > 64_000_000
            kill_9(child)
        finally:
            child.kill()
    assert path.read_bytes() == before                         # the previous file, intact
    assert cc.load(path)["epoch"] == 1
    assert (tmp_path / temp).exists()                          # the killed save's leftover...
    cc.save({"w": np.zeros(2), "epoch": 2}, path)
    assert sorted(os.listdir(tmp_path)) == [path.name]         # ...goes with the next save
    assert cc.load(path)["epoch"] == 2


def test_a_save_killed_at_any_moment_leaves_a_whole_checkpoint(tmp_path):
    import time
    path = tmp_path / "ckpt.safetensors"
    cc.save({"w": np.ones(3), "epoch": 1}, path)
    with start_saver(path, "loop") as child:
        try:
            assert child.stdout.readline() == b"saving\n"
            deadline = time.monotonic() + 60
            while len(os.listdir(tmp_path)) < 2 and time.monotonic() < deadline:
                time.sleep(0.001)                              # until a temporary exists
            time.sleep(0.05)
            kill_9(child)
        finally:
            child.kill()                                       # (a no-op once it is reaped)
    got = cc.load(path)                                        # the old or a new one, verified
    assert got["epoch"] in (1, 9)
    if got["epoch"] == 9:
        assert got["w"].shape == (8_000_000,) and got["w"].numpy()[-1] == 7_999_999
    cc.save({"w": np.zeros(2), "epoch": 2}, path)
    assert sorted(os.listdir(tmp_path)) == [path.name]
