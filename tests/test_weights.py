"""Pretrained weights without torch: load_torch's restricted unpickler, timm renames,
models(weights=PATH), `cnncore convert-weights`. torch writes the files here (it is the
oracle); loading them must not import it, and must never run what a file names."""
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import cnncore as cc
from cnncore import cli
from cnncore.weights import for_model, load_torch, load_weights

torch = pytest.importorskip("torch")

PKG_PARENT = os.path.dirname(os.path.dirname(cc.__file__))


def _torch_state(model):
    return {k: torch.tensor(v.data) for k, v in model.state_dict().items()}


@pytest.fixture(autouse=True)
def _exact_algorithms():
    """The comparisons below are bit for bit between model instances: the exact engines,
    as auto may give a new model's layers (its weights at addresses and with contents the
    process saw before) the measured choice of an earlier one (docs/conv2d.md)."""
    was = cc.are_exact_algorithms_enabled()
    cc.use_exact_algorithms(True)
    yield
    cc.use_exact_algorithms(was)


@pytest.fixture(scope="module")
def resnet_file(tmp_path_factory):
    cc.manual_seed(3)
    model = cc.models.resnet18(num_classes=7)
    model.eval()
    path = tmp_path_factory.mktemp("w") / "resnet18.pth"
    torch.save(_torch_state(model), path)           # torchvision's names and layout
    x = np.random.default_rng(0).standard_normal((2, 3, 40, 40)).astype(np.float32)
    was = cc.are_exact_algorithms_enabled()
    cc.use_exact_algorithms(True)   # (module scope: set up before _exact_algorithms)
    try:
        with cc.no_grad():
            want = model(cc.Tensor(x)).data
    finally:
        cc.use_exact_algorithms(was)
    return path, x, want


def test_a_torch_file_loads_without_torch_and_gives_the_same_outputs(resnet_file, tmp_path):
    path, x, want = resnet_file
    np.save(tmp_path / "x.npy", x)
    code = (
        "import sys, numpy as np, cnncore as cc\n"
        "cc.use_exact_algorithms(True)\n"
        f"m = cc.models.resnet18(num_classes=7, weights={str(path)!r})\n"
        "m.eval()\n"
        f"x = np.load({str(tmp_path / 'x.npy')!r})\n"
        "with cc.no_grad():\n"
        "    y = m(cc.Tensor(x)).data\n"
        f"np.save({str(tmp_path / 'y.npy')!r}, y)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n")
    env = dict(os.environ, PYTHONPATH=PKG_PARENT)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), want)


def test_dtypes_strides_shared_storage_and_checkpoint_dicts(tmp_path):
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    obj = {"epoch": 3, "state_dict": {
        "t": base.t(),                                 # non-contiguous: strides (1, 6)
        "row": base[2],                                # a view at an offset of one storage
        "half": torch.tensor([1.5, -2.0], dtype=torch.float16),
        "bf16": torch.tensor([3.0, -0.5], dtype=torch.bfloat16),
        "long": torch.tensor([1, 2 ** 40]), "flag": torch.tensor([True, False]),
        "double": torch.tensor([[1.0, 2.0]], dtype=torch.float64),
        "empty": torch.zeros(0, 3)}}
    path = tmp_path / "mixed.pt"
    torch.save(obj, path)
    got = load_torch(path)
    assert got["epoch"] == 3
    sd = got["state_dict"]
    for k, v in obj["state_dict"].items():
        want = v.float().numpy() if v.dtype == torch.bfloat16 else v.numpy()
        np.testing.assert_array_equal(sd[k], want, err_msg=k)
        assert sd[k].shape == tuple(v.shape), k
    assert sd["half"].dtype == np.float16 and sd["long"].dtype == np.int64
    assert sd["bf16"].dtype == np.float32 and sd["flag"].dtype == np.bool_
    assert set(load_weights(path)) == set(obj["state_dict"])   # the state_dict entry


def test_a_malicious_pickle_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pth"
    torch.save({"weight": torch.zeros(2), "payload": Evil()}, path)
    with pytest.raises(cc.UnsafeCheckpointError, match=r"names (posix|os|nt)\.system.*nothing "
                                                       r"from this file was run"):
        load_torch(path)
    assert not marker.exists()
    with pytest.raises(cc.UnsafeCheckpointError):
        cc.models.lenet5(weights=path)
    assert not marker.exists()


@pytest.mark.parametrize("damage,pattern", [
    ("truncate", r"not a readable zip archive|truncated|corrupted"),
    ("flip", r"cannot read|corrupted|CRC"),
    ("garbage", r"not a torch.save zip archive"),
    ("legacy", r"legacy \(pre-1\.6, non-zip\) format"),
    ("no-pickle", r"expected one <name>/data\.pkl"),
])
def test_damaged_and_legacy_files_are_clear_errors(tmp_path, damage, pattern):
    path = tmp_path / "w.pth"
    state = {"w": torch.arange(1000, dtype=torch.float32)}
    if damage == "legacy":
        torch.save(state, path, _use_new_zipfile_serialization=False)
    else:
        torch.save(state, path)
    raw = bytearray(path.read_bytes())
    if damage == "truncate":
        path.write_bytes(bytes(raw[:len(raw) // 2]))
    elif damage == "flip":
        with zipfile.ZipFile(path) as z:
            info = next(i for i in z.infolist() if i.filename.endswith("/data/0"))
        at = info.header_offset + 30 + len(info.filename) + len(info.extra) + 100
        raw[at] ^= 0xFF
        path.write_bytes(bytes(raw))
    elif damage == "garbage":
        path.write_bytes(b"not a checkpoint at all")
    elif damage == "no-pickle":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("archive/version", "3")
    with pytest.raises(cc.CheckpointError, match=pattern):
        load_torch(path)


def test_timm_vgg_names_and_conv_head_load(tmp_path):
    """timm's VGG keeps its first two classifier layers as convolutions (pre_logits.fc1 is
    a 7x7 conv, fc2 a 1x1) and names the last head.fc: renamed and reshaped on load."""
    safetensors = pytest.importorskip("safetensors.numpy")
    with cc.nn.init.skip_init():
        ref = cc.models.vgg11(num_classes=5)
    rng = np.random.default_rng(0)
    for p in ref.parameters():
        p.data[...] = rng.standard_normal(p.shape).astype(np.float32) * 0.01
    timm = {}
    for k, v in ref.state_dict().items():
        a = np.ascontiguousarray(v.data)
        if k.startswith("classifier.0."):
            k = "pre_logits.fc1." + k.split(".", 2)[2]
            a = a.reshape(4096, 512, 7, 7) if a.ndim == 2 else a
        elif k.startswith("classifier.3."):
            k = "pre_logits.fc2." + k.split(".", 2)[2]
            a = a.reshape(4096, 4096, 1, 1) if a.ndim == 2 else a
        elif k.startswith("classifier.6."):
            k = "head.fc." + k.split(".", 2)[2]
        timm[k] = a
    path = tmp_path / "vgg11.tv_in1k.safetensors"
    safetensors.save_file(timm, str(path))
    got = cc.models.vgg11(num_classes=5, weights=path)
    for k, v in ref.state_dict().items():
        np.testing.assert_array_equal(got.state_dict()[k].data, v.data, err_msg=k)
    # torchvision-style "module." prefixes (DataParallel) are dropped too
    renamed = for_model({"module." + k: v for k, v in timm.items()}, got)
    assert "classifier.0.weight" in renamed and renamed["classifier.0.weight"].shape == \
        (4096, 25088)


def test_convert_weights_command(resnet_file, tmp_path, capsys):
    path, x, want = resnet_file
    out = tmp_path / "resnet18.safetensors"
    assert cli.main(["convert-weights", str(path), str(out)]) == 0
    assert "arrays" in capsys.readouterr().out
    model = cc.models.resnet18(num_classes=7, weights=out)
    model.eval()
    with cc.no_grad():
        np.testing.assert_array_equal(model(cc.Tensor(x)).data, want)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["convert-weights", str(path), str(tmp_path / "x.safetensors"), "--model",
                  "resnet50"])
    assert exit_.value.code == 2
    assert "does not fit --model resnet50" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["convert-weights", str(path), str(tmp_path / "x.bin")])
    assert "must end in .safetensors" in capsys.readouterr().err
    np.savez(tmp_path / "w.npz", **{k: v.data for k, v in model.state_dict().items()})
    assert json.dumps(sorted(load_weights(tmp_path / "w.npz"))) == json.dumps(
        sorted(model.state_dict()))
