"""Winograd convolution (``algorithm="winograd"``, ``"winograd2"``, ``"winograd4"``,
``"winograd6"``): its float32 error against a float64 reference on ResNet and VGG layer
shapes (the bounds docs/conv2d.md states), the choice ``auto`` makes and the switch that
keeps it exact, clear errors, and training that reaches the exact engines' accuracy."""
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import cnncore
from cnncore import nn, ops

# (name, channels in, channels out, map): ResNet-18's and VGG-16's 3x3 stride-1 layers
# (the VGG maps halved: the error depends on the channels summed and the tile, and the
# float64 reference stays fast)
LAYERS = [("resnet_56", 64, 64, 56), ("resnet_28", 128, 128, 28), ("resnet_14", 256, 256, 14),
          ("resnet_7", 512, 512, 7), ("vgg_112", 64, 64, 112), ("vgg_28", 256, 512, 28),
          ("vgg_14", 512, 512, 14)]
# The largest error, relative to the largest reference value, that each tile may show
# in float32 with unit-scale data (measured maxima: 9e-7, 2e-5, 3e-5; docs/conv2d.md).
BOUNDS = {"winograd2": 2e-6, "winograd4": 4e-5, "winograd6": 6e-5, "im2col": 2e-6}


def _rel(a, ref):
    return float(np.abs(a - ref).max() / np.abs(ref).max())


@pytest.fixture(scope="module")
def references():
    rng = np.random.default_rng(7)
    out = {}
    for name, ci, co, hw in LAYERS:
        x = rng.standard_normal((1, ci, hw, hw))
        w = rng.standard_normal((co, ci, 3, 3)) / np.sqrt(9 * ci)
        y = ops.conv2d(x, w, padding=1, algorithm="im2col")
        gy = rng.standard_normal(y.shape)
        gx, gw, _ = ops.conv2d_backward(gy, x, w, padding=1, algorithm="im2col", bias=False)
        out[name] = (x, w, gy, y, gx, gw)
    return out


@pytest.mark.parametrize("algorithm", ["winograd2", "winograd4", "winograd6", "im2col"])
@pytest.mark.parametrize("layer", [name for name, *_ in LAYERS])
def test_float32_error_within_the_stated_bound(references, layer, algorithm):
    x, w, gy, y, gx, gw = references[layer]
    x32, w32, gy32 = (a.astype(np.float32) for a in (x, w, gy))
    y32 = ops.conv2d(x32, w32, padding=1, algorithm=algorithm)
    gx32, gw32, _ = ops.conv2d_backward(gy32, x32, w32, padding=1, algorithm=algorithm, bias=False)
    bound = BOUNDS[algorithm]
    errors = {"forward": _rel(y32, y), "data": _rel(gx32, gx), "weight": _rel(gw32, gw)}
    assert max(errors.values()) <= bound, (layer, algorithm, errors)
    if algorithm in ("winograd4", "winograd6"):
        # the transforms round: a real (not zero) error, above plain float32 summation's
        assert errors["forward"] > 1e-6


def test_float64_is_exact_to_rounding(references):
    x, w, gy, y, gx, gw = references["resnet_28"]
    for algorithm in ("winograd2", "winograd4", "winograd6"):
        assert _rel(ops.conv2d(x, w, padding=1, algorithm=algorithm), y) < 1e-13
        gx64, gw64, _ = ops.conv2d_backward(gy, x, w, padding=1, algorithm=algorithm, bias=False)
        assert _rel(gx64, gx) < 1e-13 and _rel(gw64, gw) < 1e-13


def test_auto_takes_winograd_unless_exact_algorithms_are_asked_for():
    rng = np.random.default_rng(3)
    # small integers: every exact engine sums them exactly in float32
    x = rng.integers(-3, 4, (4, 64, 28, 28)).astype(np.float32)
    w = rng.integers(-3, 4, (64, 64, 3, 3)).astype(np.float32)
    ref = ops.conv2d(x, w, padding=1, algorithm="reference")
    assert not cnncore.are_exact_algorithms_enabled()
    auto = ops.conv2d(x, w, padding=1)
    assert 0 < np.abs(auto - ref).max() <= 4e-5 * np.abs(ref).max()  # Winograd's rounding
    cnncore.use_exact_algorithms(True)
    try:
        assert cnncore.are_exact_algorithms_enabled()
        np.testing.assert_array_equal(ops.conv2d(x, w, padding=1), ref)
        gy = rng.integers(-3, 4, ref.shape).astype(np.float32)
        gx, gw, _ = ops.conv2d_backward(gy, x, w, padding=1, bias=False)
        rx, rw, _ = ops.conv2d_backward(gy, x, w, padding=1, bias=False, algorithm="reference")
        np.testing.assert_array_equal(gx, rx)
        np.testing.assert_array_equal(gw, rw)
        # an explicit request still runs
        assert np.abs(ops.conv2d(x, w, padding=1, algorithm="winograd4") - ref).max() > 0
    finally:
        cnncore.use_exact_algorithms(False)


@pytest.mark.parametrize("kw, why", [
    (dict(stride=2), "stride 1 only"),
    (dict(dilation=2), "dilation 1 only"),
])
def test_what_winograd_cannot_serve_is_a_clear_error(kw, why):
    x = np.zeros((1, 2, 9, 9), np.float32)
    with pytest.raises(ValueError, match=f"algorithm='winograd'.*{why}"):
        ops.conv2d(x, np.zeros((2, 2, 3, 3), np.float32), padding=1, algorithm="winograd", **kw)
    with pytest.raises(ValueError, match="3x3 kernels only"):
        ops.conv2d(x, np.zeros((2, 2, 5, 5), np.float32), algorithm="winograd4")
    with pytest.raises(ValueError, match="2-D convolutions only"):
        ops.conv1d(np.zeros((1, 2, 9), np.float32), np.zeros((2, 2, 3), np.float32),
                   algorithm="winograd")


def test_switch_and_cache_arguments_are_checked():
    with pytest.raises(TypeError, match="use_exact_algorithms: mode must be a bool"):
        cnncore.use_exact_algorithms(1)
    with pytest.raises(ValueError, match="set_winograd_cache_limit: bytes must be >= 0"):
        cnncore.set_winograd_cache_limit(-1)
    with pytest.raises(TypeError, match="set_winograd_cache_limit: nbytes must be an integer"):
        cnncore.set_winograd_cache_limit(1.5)
    old = cnncore.get_winograd_cache_limit()
    try:
        cnncore.set_winograd_cache_limit(0)
        assert cnncore.winograd_cache_bytes() == 0
    finally:
        cnncore.set_winograd_cache_limit(old)


def test_inference_keeps_the_transformed_weights_and_sees_in_place_changes():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 32, 12, 12)).astype(np.float32)
    w = rng.standard_normal((32, 32, 3, 3)).astype(np.float32)
    old = cnncore.get_winograd_cache_limit()
    cnncore.set_winograd_cache_limit(0)  # empty it
    cnncore.set_winograd_cache_limit(64 << 20)
    try:
        for _ in range(2):
            ops.conv2d(x, w, padding=1, algorithm="winograd4")
        assert cnncore.winograd_cache_bytes() > 0
        w[3, 4, 1, 2] += 1.0  # in place: the same buffer
        got = ops.conv2d(x, w, padding=1, algorithm="winograd4")
        assert _rel(got, ops.conv2d(x, w, padding=1, algorithm="reference")) < 4e-5
    finally:
        cnncore.set_winograd_cache_limit(old)


def test_conv2d_module_takes_the_algorithm():
    conv = nn.Conv2d(8, 8, 3, padding=1, algorithm="winograd2")
    x = cnncore.from_numpy(np.random.default_rng(0).standard_normal((2, 8, 10, 10)).astype(np.float32))
    x.requires_grad = True
    y = conv(x)
    y.sum().backward()
    ref = ops.conv2d(x.numpy(), conv.weight.numpy(), conv.bias.numpy(), padding=1, algorithm="reference")
    assert _rel(y.numpy(), ref) < 2e-6
    assert x.grad is not None and conv.weight.grad is not None


class _SmallResNet(nn.Module):
    """Two residual stages of 3x3 convolutions, wide enough that auto takes Winograd."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 64, 3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(64)
        self.c1 = nn.Conv2d(64, 64, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.c2 = nn.Conv2d(64, 64, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.pool = nn.GlobalAvgPool2d()
        self.fc = nn.Linear(64, 10)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.relu(self.bn0(self.stem(x)))
        y = self.relu(self.bn1(self.c1(x)))
        x = self.relu(self.bn2(self.c2(y)) + x)
        return self.fc(self.pool(x).reshape(x.shape[0], -1))


def _train_and_score(exact, epochs=8):
    from cnncore.data import load_digits
    train = load_digits("train", size=12, pad=2)
    test = load_digits("test", size=12, pad=2)
    cnncore.manual_seed(0)
    model = _SmallResNet()
    opt = cnncore.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = nn.CrossEntropyLoss()
    cnncore.use_exact_algorithms(exact)
    cnncore.use_deterministic_algorithms(True)  # each run reproducible, so the test is
    try:
        order = np.random.default_rng(0)
        for _ in range(epochs):
            idx = order.permutation(len(train))
            for start in range(0, len(idx), 64):
                xb, yb = train.get_batch(idx[start:start + 64])
                opt.zero_grad()
                loss = loss_fn(model(cnncore.from_numpy(xb)), cnncore.from_numpy(yb))
                loss.backward()
                opt.step()
        model.eval()
        xb, yb = test.get_batch(np.arange(len(test)))
        return float((model(cnncore.from_numpy(xb)).numpy().argmax(1) == yb).mean())
    finally:
        cnncore.use_exact_algorithms(False)
        cnncore.use_deterministic_algorithms(False)


def test_training_with_auto_reaches_the_exact_engines_accuracy():
    # auto does take Winograd on this model's 64 -> 64 layers at batch 64
    rng = np.random.default_rng(1)
    x = rng.integers(-3, 4, (64, 64, 12, 12)).astype(np.float32)
    w = rng.integers(-3, 4, (64, 64, 3, 3)).astype(np.float32)
    assert np.abs(ops.conv2d(x, w, padding=1) - ops.conv2d(x, w, padding=1, algorithm="reference")).max() > 0
    exact = _train_and_score(True)
    auto = _train_and_score(False)
    assert exact >= 0.93, exact
    assert abs(auto - exact) <= 0.03, (auto, exact)


def test_the_matrices_are_what_the_script_derives():
    root = pathlib.Path(__file__).resolve().parents[1]
    script = root / "scripts" / "winograd-matrices.py"
    header = root / "cpp" / "src" / "cpu" / "kernels" / "winograd-matrices.hpp"
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True)
    assert out.stdout == header.read_text()
