"""cnncore.viz: the pictures carry the structure they claim (grids of the right tiles,
feature maps equal to the layer's output, receptive-field boxes of summary's size whose
position matches the gradient's support, saliency equal to |W| for a linear model)."""
import numpy as np
import pytest

import cnncore as cc
from cnncore import nn, viz
from cnncore.summary import summary

PNG = b"\x89PNG\r\n\x1a\n"


def test_filters_grid(tmp_path):
    m = cc.models.lenet5()
    grid = viz.filters(m, tmp_path / "f.png")
    assert grid.shape == (2 * 6 + 1, 3 * 6 + 1)          # 6 tiles of 5x5, 3 columns, 1px
    np.testing.assert_allclose(grid[1:6, 1:6], (lambda w: (w - w.min()) / (w.max() - w.min()))(
        m.features[0].weight.data[0, 0].astype(np.float64)))
    assert (tmp_path / "f.png").read_bytes()[:8] == PNG
    a = cc.models.alexnet()
    assert viz.filters(a).shape == (8 * 12 + 1, 8 * 12 + 1, 3)   # 64 RGB 11x11 filters


def test_feature_maps_are_the_layers_output(tmp_path):
    m = cc.models.lenet5()
    x = np.random.default_rng(0).random((1, 32, 32)).astype(np.float32)
    maps, grid = viz.feature_maps(m, x, "features.0", tmp_path / "m.png")
    with cc.no_grad():
        want = m.features[0](cc.Tensor(x[None])).data[0]
    np.testing.assert_allclose(maps, want, rtol=1e-6)
    assert maps.shape == (6, 28, 28) and grid.shape == (2 * 29 + 1, 3 * 29 + 1)
    assert (tmp_path / "m.png").read_bytes()[:8] == PNG
    with pytest.raises(ValueError, match="no layer named 'features.99'"):
        viz.feature_maps(m, x, "features.99")


def _positive_stack():
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, dtype=np.float64),
                        nn.Conv2d(2, 2, 3, stride=2, padding=2, dilation=2, dtype=np.float64),
                        nn.AvgPool2d(2, stride=2, padding=1),
                        nn.Conv2d(2, 1, (3, 2), stride=(1, 2), padding=(1, 0, 0, 1),
                                  dtype=np.float64))
    for p in net.parameters():
        p.data[...] = 1.0                      # every tap reaches: support == field
    return net


@pytest.mark.parametrize("unit", [(2, 1), (0, 0), (4, 3)])
def test_receptive_field_matches_summary_and_the_gradient(tmp_path, unit):
    net = _positive_stack()
    shape = (1, 1, 37, 41)
    clipped, full = viz.receptive_field(net, shape, "3", unit, tmp_path / "rf.png")
    layers, _ = summary(net, shape, np.float64)
    rf = next(li.rf for li in layers if li.name == "3")
    assert [b - a + 1 for a, b in full] == list(rf)
    x = cc.Tensor(np.zeros(shape), requires_grad=True)
    out = net(x)
    g = np.zeros(out.shape)
    g[(0, 0) + tuple(unit)] = 1.0
    out.backward(g)
    rows, cols = np.nonzero(x.grad.data[0, 0])
    assert (rows.min(), rows.max()) == clipped[0] and (cols.min(), cols.max()) == clipped[1]
    assert (tmp_path / "rf.png").read_bytes()[:8] == PNG


def test_receptive_field_of_a_resnet_unit_has_summarys_size():
    with cc.nn.init.skip_init():
        m = cc.models.resnet18(num_classes=10)
    shape = (1, 3, 224, 224)
    clipped, full = viz.receptive_field(m, shape, "layer2.0.conv1", (10, 12))
    layers, _ = summary(m, shape)
    rf = next(li.rf for li in layers if li.name == "layer2.0.conv1")
    assert [b - a + 1 for a, b in full] == list(rf)
    assert all(0 <= a <= b < 224 for a, b in clipped)


def test_saliency_of_a_linear_model_is_its_weights(tmp_path):
    m = nn.Sequential(nn.Flatten(), nn.Linear(2 * 4 * 5, 3, dtype=np.float64))
    x = np.random.default_rng(1).standard_normal((2, 4, 5))
    smap, target = viz.saliency(m, x, target=1, path=tmp_path / "s.png")
    w = np.abs(m[1].weight.data[1].reshape(2, 4, 5)).max(axis=0)
    np.testing.assert_allclose(smap, (w - w.min()) / (w.max() - w.min()), rtol=1e-12)
    assert target == 1 and (tmp_path / "s.png").read_bytes()[:8] == PNG
    _, predicted = viz.saliency(m, x)
    with cc.no_grad():
        assert predicted == int(m(cc.Tensor(x[None])).data.argmax())
    with pytest.raises(ValueError, match="target class 5"):
        viz.saliency(m, x, target=5)


def test_viz_commands(tmp_path, capsys):
    from PIL import Image

    from cnncore import cli, data
    run = tmp_path / "run"
    assert cli.main(["train", "--epochs", "1", "--out", str(run), "--no-progress",
                     "--no-plot"]) == 0
    ckpt = str(run / "checkpoint.safetensors")
    img = tmp_path / "d.png"
    Image.fromarray((data.load_digits("test").images[0, 0] * 255).astype(np.uint8)).save(img)
    o = {k: str(tmp_path / f"{k}.png") for k in ("filters", "features", "saliency", "rf")}
    commands = [["filters", ckpt, o["filters"]],
                ["features", ckpt, str(img), o["features"], "--layer", "features.2"],
                ["saliency", ckpt, str(img), o["saliency"]],
                ["receptive-field", "resnet18", o["rf"], "--layer", "layer3.0.conv1",
                 "--unit", "3,4"]]
    for argv in commands:
        assert cli.main(["viz", *argv]) == 0, argv
    for path in o.values():
        with open(path, "rb") as f:
            assert f.read(8) == PNG
    text = capsys.readouterr().out
    assert "features.2: 6 maps of 14x14" in text and "layer3.0.conv1 unit (3, 4)" in text
    with pytest.raises(SystemExit):
        cli.main(["viz", "features", ckpt, str(img), str(tmp_path / "x.png"), "--layer",
                  "nope"])
    assert "no layer named 'nope'" in capsys.readouterr().err
