"""The command line: train / eval / predict / summary / demo."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import cnncore
from cnncore import cli


def run(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def fail(capsys, *argv):
    with pytest.raises(SystemExit) as e:
        cli.main(list(argv))
    assert e.value.code == 2
    return capsys.readouterr().err


def test_summary_lenet5_table(capsys):
    code, out, _ = run(capsys, "summary", "lenet5")
    assert code == 0
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    # layer, type, shape, params, MACs, RF, jump
    assert rows["features.0"][2:] == ["(1,6,28,28)", "156", "117,600", "5", "1"]
    assert rows["features.2"][-2:] == ["6", "2"]
    assert rows["features.3"][2:] == ["(1,16,10,10)", "2,416", "240,000", "14", "2"]
    assert rows["features.5"][-2:] == ["16", "4"]
    assert rows["classifier.4"][2:5] == ["(1,10)", "850", "840"]
    assert "total parameters: 61,706" in out and "total MACs: 416,520" in out


def test_summary_resnet18_receptive_field_and_totals(capsys, tmp_path):
    code, out, _ = run(capsys, "summary", "resnet18", "--input", "1,3,224,224", "--json",
                       str(tmp_path / "s.json"))
    assert code == 0
    assert "total parameters: 11,689,512" in out
    assert "total MACs: 1,814,073,344" in out
    rep = json.loads((tmp_path / "s.json").read_text())
    layers = {lay["name"]: lay for lay in rep["layers"]}
    assert layers["layer4.1.bn2"]["rf"] == [435, 435]          # ResNet-18's known field
    assert layers["layer4.1.bn2"]["jump"] == [32, 32]
    assert layers["maxpool"]["output_shape"] == [1, 64, 56, 56]


def test_summary_of_a_million_images_allocates_one(capsys, tmp_path):
    """`summary vgg16 --input 1000000,3,224,224` allocated the whole 600 GB input; now the
    forward runs on one and two samples and the figures scale to the batch."""
    code, out, _ = run(capsys, "summary", "vgg16", "--input", "1000000,3,224,224", "--json",
                       str(tmp_path / "s.json"))
    assert code == 0
    assert "input (1000000, 3, 224, 224) -> output (1000000, 1000)" in out
    assert "total MACs: 15,470,264,320,000,000 (15470264.320 G)" in out   # 10**6 x one image
    assert "total parameters: 138,357,544" in out
    layers = {lay["name"]: lay for lay in json.loads((tmp_path / "s.json").read_text())["layers"]}
    assert layers["features.0"]["output_shape"] == [1000000, 64, 224, 224]
    assert layers["features.0"]["macs"] == 1000000 * 224 * 224 * 64 * 3 * 9


def test_unknown_model_and_bad_input_are_clear_errors(capsys):
    assert "unknown model 'lenet7'" in fail(capsys, "summary", "lenet7")
    assert "unknown model 'resnet9'" in fail(capsys, "train", "--model", "resnet9")
    assert "--input must be" in fail(capsys, "summary", "lenet5", "--input", "1,x")
    assert "cannot take input" in fail(capsys, "summary", "alexnet", "--input", "1,3,16,16")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import cnncore
    out = tmp_path_factory.mktemp("run")
    before = cnncore.get_num_threads()
    code = cli.main(["train", "--epochs", "2", "--out", str(out), "--json",
                     str(out / "r.json"), "--no-progress"])
    assert code == 0
    assert cnncore.get_num_threads() == before          # in-process calls leave no trace
    return out


def test_train_writes_checkpoint_curves_and_report(trained):
    rep = json.loads((trained / "r.json").read_text())
    assert rep["model"] == "lenet5" and rep["epochs"] == 2
    assert rep["threads"] == 1                        # auto: LeNet runs on one thread
    assert {"test_accuracy", "seconds", "history", "checkpoint"} <= set(rep)
    assert 0.0 <= rep["test_accuracy"] <= 1.0 and rep["seconds"] > 0
    assert len(rep["history"]) == 2
    assert rep["history"][1]["train_loss"] < rep["history"][0]["train_loss"]
    assert (trained / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(trained / "checkpoint.safetensors") > 61_706 * 4


def test_eval_reproduces_the_training_report(trained, capsys):
    rep = json.loads((trained / "r.json").read_text())
    code, out, _ = run(capsys, "eval", str(trained / "checkpoint.safetensors"), "--json",
                       str(trained / "e.json"))
    assert code == 0 and "accuracy" in out
    ev = json.loads((trained / "e.json").read_text())
    assert ev["test_accuracy"] == pytest.approx(rep["test_accuracy"])
    assert ev["test_loss"] == pytest.approx(rep["test_loss"], rel=1e-5)


def test_predict_on_image_files(trained, capsys, tmp_path):
    from PIL import Image  # a runtime dependency of cnncore
    from cnncore import data
    te = data.load_digits("test")
    paths = []
    for i in range(3):
        p = tmp_path / f"digit{i}.png"
        Image.fromarray((te.images[i, 0] * 255).astype(np.uint8)).save(p)
        paths.append(str(p))
    code, out, _ = run(capsys, "predict", str(trained / "checkpoint.safetensors"), *paths,
                       "--json", str(tmp_path / "p.json"))
    assert code == 0
    res = json.loads((tmp_path / "p.json").read_text())
    assert [r["image"] for r in res] == paths
    for r in res:
        assert r["prediction"] in [str(d) for d in range(10)]
        assert 0 < r["probability"] <= 1 and len(r["top"]) == 3
    assert "missing.png" in fail(capsys, "predict", str(trained / "checkpoint.safetensors"),
                                 str(tmp_path / "missing.png"))


def test_damaged_or_foreign_checkpoints_are_clear_errors(trained, capsys, tmp_path):
    raw = (trained / "checkpoint.safetensors").read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(raw[: len(raw) // 2])
    assert "truncated" in fail(capsys, "eval", str(cut))
    assert "does not exist" in fail(capsys, "eval", str(tmp_path / "nope.safetensors"))
    from cnncore import models, save
    save(models.lenet5().state_dict(), tmp_path / "plain.safetensors")
    assert "no cnncore.model metadata" in fail(capsys, "eval", str(tmp_path / "plain.safetensors"))


def test_train_on_an_npz_file(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.random((40, 1, 16, 16)).astype(np.float32)
    y = (x[:, 0, :8].mean((1, 2)) > x[:, 0, 8:].mean((1, 2))).astype(np.int64)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    code, out, _ = run(capsys, "train", "--data", str(tmp_path / "d.npz"), "--model", "lenet5",
                       "--epochs", "1", "--batch-size", "8", "--out", str(tmp_path / "o"),
                       "--no-progress", "--no-plot")
    assert code == 0 and "npz" in out and "epoch   1/1" in out
    assert (tmp_path / "o" / "checkpoint.safetensors").exists()
    np.savez(tmp_path / "small.npz", x=x[:, :, :12, :12], y=y)
    assert "at least 16" in fail(capsys, "train", "--data", str(tmp_path / "small.npz"),
                                 "--epochs", "1", "--out", str(tmp_path / "o2"))


def test_python_dash_m_demo_still_works():
    r = subprocess.run([sys.executable, "-m", "cnncore", "demo"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "check: OK" in r.stdout


def test_default_train_reaches_97_percent(tmp_path, capsys):
    """The README's main job: `cnncore train` with its defaults (LeNet-5 on the
    bundled digits) must reach at least 97% test accuracy."""
    report = tmp_path / "report.json"
    code = cli.main(["train", "--out", str(tmp_path), "--json", str(report), "--no-progress",
                     "--no-plot"])
    capsys.readouterr()
    assert code == 0
    r = json.loads(report.read_text())
    assert r["model"] == "lenet5" and r["epochs"] == 60
    assert r["test_accuracy"] >= 0.97, r["test_accuracy"]


def test_summary_into_a_closed_pipe_is_quiet():
    """`cnncore summary ... | head -1`: the reader leaves early; no traceback."""
    r = subprocess.run(f"{sys.executable} -m cnncore summary resnet18 | head -1", shell=True,
                       capture_output=True, text=True, timeout=120)
    assert r.stdout.startswith("resnet18")
    assert "Traceback" not in r.stderr and "BrokenPipe" not in r.stderr, r.stderr


def test_resume_repeats_the_uninterrupted_run(tmp_path, capsys):
    """Each epoch draws from generators seeded by (seed, epoch), and the checkpoint written
    after every epoch holds the optimiser state: 2 epochs + a resume to 4 give the very
    weights of 4 epochs straight."""
    common = ["--no-progress", "--no-plot", "--schedule", "none"]
    assert cli.main(["train", "--epochs", "4", "--out", str(tmp_path / "a")] + common) == 0
    assert cli.main(["train", "--epochs", "2", "--out", str(tmp_path / "b")] + common) == 0
    ckpt = str(tmp_path / "b" / "checkpoint.safetensors")
    assert cli.main(["train", "--epochs", "4", "--out", str(tmp_path / "b"), "--resume",
                     str(tmp_path / "b")] + common) == 0          # the run's folder
    out = capsys.readouterr().out
    assert "1 thread;" in out and "1 threads" not in out          # the banner's plural
    assert "resuming after epoch 2" in out and "epoch   3/4" in out and "epoch   1/4" not in \
        out.split("resuming")[1]
    a = cnncore.load(tmp_path / "a" / "checkpoint.safetensors")
    b = cnncore.load(ckpt)
    for k, v in a["model"].items():
        np.testing.assert_array_equal(v.data, b["model"][k].data, err_msg=k)
    rep = json.loads((tmp_path / "b" / "report.json").read_text())
    assert [h["epoch"] for h in rep["history"]] == [1, 2, 3, 4]
    assert rep["resumed_from_epoch"] == 2 and rep["schedule"] == "none"
    # the report records how the run was trained (it used to omit these)
    assert rep["weight_decay"] == 0.0 and rep["optimizer"] == "adam" and rep["lr"] == 5e-3
    assert rep["augmentation"] == {"enabled": True, "translate": 2, "hflip": False,
                                   "rgb_jitter": 0.0}
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--epochs", "4", "--out", str(tmp_path / "b"), "--resume", ckpt]
                 + common)
    assert exit_.value.code == 2
    assert "has already trained 4 epochs" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["train", "--model", "resnet18", "--epochs", "5", "--out",
                  str(tmp_path / "c"), "--resume", ckpt] + common)
    assert "holds a lenet5 model, not --model resnet18" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["train", "--sync-bn", "--out", str(tmp_path / "d")])
    assert "--sync-bn synchronises batch norm across ranks: it needs --distributed" in \
        capsys.readouterr().err


def test_version_and_defaults_in_every_help(capsys):
    import cnncore
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"cnncore {cnncore.__version__}"
    for cmd in ("train", "eval", "predict", "summary"):
        with pytest.raises(SystemExit):
            cli.main([cmd, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "(default:" in text, cmd


def test_eval_finds_the_data_the_checkpoint_was_trained_on(tmp_path, capsys):
    """A checkpoint trained on an image folder used to fall back to the digits in eval and
    fail with a shape error: it now records its data source, split and seed."""
    from PIL import Image
    rng = np.random.default_rng(0)
    for cls, level in (("dark", 40), ("light", 210)):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(12):
            pix = np.clip(rng.normal(level, 20, (12, 12)), 0, 255).astype(np.uint8)
            Image.fromarray(pix).save(tmp_path / "imgs" / cls / f"{i}.png")
    out = tmp_path / "run"
    assert cli.main(["train", "--data", str(tmp_path / "imgs"), "--epochs", "3", "--out",
                     str(out), "--no-progress", "--no-plot", "--translate", "0",
                     "--input-size", "16"]) == 0
    rep = json.loads((out / "report.json").read_text())
    code, text, _ = run(capsys, "eval", str(out / "checkpoint.safetensors"), "--json",
                        str(tmp_path / "e.json"))
    assert code == 0 and "imgs" in text
    ev = json.loads((tmp_path / "e.json").read_text())
    assert ev["test_accuracy"] == pytest.approx(rep["test_accuracy"])
    meta = cnncore.io.load_metadata(out / "checkpoint.safetensors")
    args = json.loads(meta["cnncore.args"])
    assert args["epochs"] == 3 and args["translate"] == 0 and args["input_size"] == 16
    assert json.loads(meta["cnncore.data"])["source"]["format"] == "auto"
    import shutil
    shutil.rmtree(tmp_path / "imgs")
    assert "which no longer exists; pass --data" in fail(capsys, "eval",
                                                         str(out / "checkpoint.safetensors"))


def test_predict_detects_a_dark_on_light_image(trained, capsys, tmp_path):
    from PIL import Image
    from cnncore import data
    te = data.load_digits("test")
    i = int(np.flatnonzero(te.labels == 3)[0])
    light = tmp_path / "dark_on_light.png"
    Image.fromarray(((1 - te.images[i, 0]) * 255).astype(np.uint8)).save(light)
    normal = tmp_path / "light_on_dark.png"
    Image.fromarray((te.images[i, 0] * 255).astype(np.uint8)).save(normal)
    ckpt = str(trained / "checkpoint.safetensors")
    code, out, _ = run(capsys, "predict", ckpt, str(light), str(normal), "--json",
                       str(tmp_path / "p.json"))
    res = json.loads((tmp_path / "p.json").read_text())
    assert [r["inverted"] for r in res] == [True, False]
    assert "light background, unlike the training images: inverted" in out
    # the same image once inverted (up to the PNG's rounding of 255 (1 - x))
    assert [c for c, _ in res[0]["top"]] == [c for c, _ in res[1]["top"]]
    np.testing.assert_allclose([p for _, p in res[0]["top"]], [p for _, p in res[1]["top"]],
                               rtol=1e-3)
    run(capsys, "predict", ckpt, str(light), "--polarity", "as-is", "--json",
        str(tmp_path / "q.json"))
    assert json.loads((tmp_path / "q.json").read_text())[0]["inverted"] is False
    run(capsys, "predict", ckpt, str(normal), "--invert", "--json", str(tmp_path / "r.json"))
    assert json.loads((tmp_path / "r.json").read_text())[0]["inverted"] is True


def test_rgb_jitter_is_reachable_and_checked(tmp_path, capsys):
    assert "RGB intensity jitter needs colour images (3 channels), these have 1" in fail(
        capsys, "train", "--jitter", "0.1", "--epochs", "1", "--out", str(tmp_path / "a"))
    x = np.random.default_rng(0).random((24, 3, 8, 8)).astype(np.float32)
    np.savez(tmp_path / "rgb.npz", x=x, y=np.arange(24) % 2)
    assert cli.main(["train", "--data", str(tmp_path / "rgb.npz"), "--jitter", "0.1",
                     "--epochs", "1", "--out", str(tmp_path / "b"), "--no-progress",
                     "--no-plot", "--model", "resnet18"]) == 0
    capsys.readouterr()
