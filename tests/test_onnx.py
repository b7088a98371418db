"""cnncore.onnx.export: every zoo model and every layer with an ONNX form runs in
onnxruntime and matches cnncore to 1e-4; layers without one are refused by name."""
import os

import numpy as np
import pytest

import cnncore as cc
from cnncore import nn
from cnncore import functional as F

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
cnx = pytest.importorskip("cnncore.onnx")


def _calibrate(model, x):
    """If a freshly initialised model gives nearly the same logits for every input
    (GoogLeNet's small initial weights), set batch norm's running statistics from the
    example so that the comparison means something. (Calibrating every model would let
    the tiny batch's statistics amplify float32 rounding in the deep ResNets.)"""
    model.eval()
    with cc.no_grad():
        y = model(cc.Tensor(x)).data
    if float(np.ptp(y, axis=0).max()) > 1e-4 * float(np.abs(y).max()):
        return
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.momentum = 1.0
    model.train()
    with cc.no_grad():
        model(cc.Tensor(x))
    for m in bns:
        m.momentum = 0.1
    model.eval()


def _roundtrip(model, x, tmp_path, opset=18, tol=1e-4):
    path = tmp_path / "m.onnx"
    cnx.export(model, x, path, opset=opset)
    onnx.checker.check_model(str(path))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x})[0]
    # cnncore's output by its exact engines: this test is about the export, and
    # Winograd's rounding (docs/conv2d.md, "Winograd") compounds over GoogLeNet's 57
    # convolutions to about the tolerance
    cc.use_exact_algorithms(True)
    try:
        with cc.no_grad():
            want = model(cc.Tensor(x)).data
    finally:
        cc.use_exact_algorithms(False)
    assert got.shape == want.shape
    scale = max(float(np.abs(want).max()), 1e-6)
    assert float(np.abs(got - want).max()) <= tol * scale, float(np.abs(got - want).max())
    if len(x) > 1:                                             # outputs vary per input
        assert float(np.ptp(want, axis=0).max()) > 1e-5 * scale
    # any batch size: the batch axis is free
    x3 = np.concatenate([x, x, x])[:3]
    assert sess.run(None, {"input": x3})[0].shape[0] == 3
    return path


# Every family and layer kind of the zoo. The VGG configurations differ only in how many
# 3x3 convolutions a block repeats, and each costs ~10 s here (its 100M-parameter head
# through protobuf and onnxruntime), so vgg13, vgg16_bn, vgg19 and vgg19_bn are left to
# CNNCORE_ONNX_ALL=1 (all 24 cases pass, 114 s).
ZOO = [("lenet5", 32, {}), ("alexnet", 64, {}), ("alexnet", 64, {"original": True}),
       ("zfnet", 64, {}), ("googlenet", 64, {}), ("resnet18", 64, {}), ("resnet34", 64, {}),
       ("resnet50", 64, {}), ("resnet101", 64, {}), ("resnet152", 64, {}), ("vgg11", 32, {}),
       ("vgg11_bn", 32, {}), ("vgg13_bn", 32, {}), ("vgg16", 32, {})]
if os.environ.get("CNNCORE_ONNX_ALL"):
    ZOO += [("vgg13", 32, {}), ("vgg16_bn", 32, {}), ("vgg19", 32, {}), ("vgg19_bn", 32, {})]


@pytest.mark.parametrize("name,size,kw", ZOO, ids=[f"{n}{'-original' if k else ''}"
                                                   for n, _, k in ZOO])
def test_every_zoo_model_matches_in_onnxruntime(tmp_path, name, size, kw):
    cc.manual_seed(0)
    model = cc.models.get_model(name, num_classes=10, **kw)
    channels = 1 if name == "lenet5" else 3
    x = np.random.default_rng(1).standard_normal((2, channels, size, size)).astype(np.float32)
    _calibrate(model, x)
    _roundtrip(model, x, tmp_path)
    assert model.training is False           # the mode it was in, restored


class _Everything(nn.Module):
    def __init__(self):
        super().__init__()
        d = dict(dtype=np.float32)   # onnxruntime runs Conv in float32 only
        self.same = nn.Conv2d(3, 4, 2, padding="same", flip=True, **d)       # even kernel
        self.reflect = nn.Conv2d(4, 4, 3, padding=(2, 0, 0, 2), padding_mode="reflect", **d)
        self.grouped = nn.Conv2d(4, 6, 3, padding=2, dilation=2, groups=2, **d)
        self.up = nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1, **d)
        self.bn = nn.BatchNorm2d(4, **d)
        self.pool = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.avg = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
        self.lp = nn.LPPool2d(2, 2, stride=1)
        self.weighted = nn.WeightedAvgPool2d(3, stride=1, padding=1)
        self.lrn = nn.LocalResponseNorm(3)
        self.adapt = nn.AdaptiveAvgPool2d((3, 5))
        self.adapt_max = nn.AdaptiveMaxPool2d((3, 1))
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(4 * 3 * 5 + 4 * 3, 7, **d)

    def forward(self, x):
        y = F.leaky_relu(self.same(x), 0.2)
        y = F.gelu(self.reflect(y)) + F.silu(y)
        y = F.tanh(self.grouped(y))
        y = F.relu(self.bn(self.up(y)))
        y = self.pool(y)
        y = self.lrn(F.sigmoid(self.avg(y) * 2.0 - self.weighted(y)))
        y = self.lp(F.pad(y, (1, 0, 1, 0), mode="replicate"))
        a = self.adapt(y).flatten(1)
        b = self.adapt_max(F.gelu(y, "tanh")).flatten(1)
        return F.log_softmax(self.fc(self.drop(cc.cat([a, b], 1))), 1)


def test_every_layer_with_an_onnx_form(tmp_path):
    cc.manual_seed(2)
    model = _Everything()
    x = np.random.default_rng(3).standard_normal((2, 3, 9, 8)).astype(np.float32)
    _calibrate(model, x)
    _roundtrip(model, x, tmp_path)
    kinds = {n.op_type for n in onnx.load(str(tmp_path / "m.onnx")).graph.node}
    assert {"Conv", "Pad", "ConvTranspose", "BatchNormalization", "MaxPool", "AveragePool",
            "LpPool", "LRN", "MatMul", "Gemm", "Concat", "Erf", "LogSoftmax"} <= kinds


def test_circular_padding_needs_opset_19(tmp_path):
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular",
                                    dtype=np.float32))
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 6)).astype(np.float32)
    with pytest.raises(cnx.ExportError, match="opset >= 19"):
        cnx.export(model, x, tmp_path / "c.onnx")
    _roundtrip(model, x, tmp_path, opset=19)


@pytest.mark.parametrize("layer,needle", [
    (nn.LocallyConnected2d(2, 3, 3, (6, 6)), r"^0 \(LocallyConnected2d\): local_conv2d has "
                                             r"no ONNX form"),
    (nn.TiledConv2d(2, 3, 3, 2), r"tiled_conv2d has no ONNX form"),
    (nn.Conv2d(2, 3, 3, padding=1, padding_mode="symmetric"), r"symmetric.*no ONNX Pad mode"),
])
def test_layers_without_an_onnx_form_are_refused_by_name(tmp_path, layer, needle):
    model = nn.Sequential(layer, nn.ReLU())
    with pytest.raises(cnx.ExportError, match=needle):
        cnx.export(model, np.zeros((1, 2, 6, 6), np.float32), tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_export_onnx_command(tmp_path, capsys):
    from cnncore import cli
    assert cli.main(["train", "--epochs", "1", "--out", str(tmp_path / "run"),
                     "--no-progress", "--no-plot"]) == 0
    out = tmp_path / "lenet.onnx"
    assert cli.main(["export-onnx", str(tmp_path / "run" / "checkpoint.safetensors"),
                     str(out)]) == 0
    assert "opset 18" in capsys.readouterr().out
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert sess.run(None, {"input": np.zeros((4, 1, 32, 32), np.float32)})[0].shape == (4, 10)
