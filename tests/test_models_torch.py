"""Torch parity: a ResNet-18 built here in torch with torchvision's parameter
names; its weights copied by name into cnncore.models.resnet18 give the same
outputs (eval mode) and the same gradients (training mode). Skips without torch."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
tnn = torch.nn

import cnncore as cc  # noqa: E402
from cnncore import functional as F  # noqa: E402
from cnncore import models  # noqa: E402


class TorchBasicBlock(tnn.Module):
    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = tnn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(planes)
        self.relu = tnn.ReLU(inplace=True)
        self.conv2 = tnn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = tnn.Sequential(tnn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                             tnn.BatchNorm2d(planes))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class TorchResNet18(tnn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        self.conv1 = tnn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = tnn.BatchNorm2d(64)
        self.relu = tnn.ReLU(inplace=True)
        self.maxpool = tnn.MaxPool2d(3, 2, 1)
        inplanes = 64
        for i, planes in enumerate((64, 128, 256, 512)):
            stride = 1 if i == 0 else 2
            layer = tnn.Sequential(TorchBasicBlock(inplanes, planes, stride),
                                   TorchBasicBlock(planes, planes))
            setattr(self, f"layer{i + 1}", layer)
            inplanes = planes
        self.avgpool = tnn.AdaptiveAvgPool2d((1, 1))
        self.fc = tnn.Linear(512, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    tm = TorchResNet18(num_classes=10).double()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():                     # non-trivial BN statistics and affine terms
        for m in tm.modules():
            if isinstance(m, tnn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
                m.weight.copy_(1 + 0.1 * torch.randn(m.num_features, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.num_features, generator=g))
    with cc.nn.init.skip_init():
        cm = models.resnet18(num_classes=10, dtype=np.float64)
    result = cm.load_state_dict(tm.state_dict())          # by name, strict
    assert result.missing_keys == [] and result.unexpected_keys == []
    return tm, cm


def test_same_names_and_counts(pair):
    tm, cm = pair
    assert list(tm.state_dict()) == list(cm.state_dict())
    assert sum(p.numel() for p in tm.parameters()) == cm.num_parameters()
    assert sum(p.numel() for p in TorchResNet18().parameters()) == 11_689_512


def test_eval_outputs_match(pair):
    tm, cm = pair
    x = np.random.default_rng(2).standard_normal((2, 3, 64, 64))
    tm.eval()
    cm.eval()
    with torch.no_grad():
        expect = tm(torch.from_numpy(x)).numpy()
    with cc.no_grad():
        got = cm(cc.tensor(x)).numpy()
    np.testing.assert_allclose(got, expect, rtol=1e-9, atol=1e-10)


def test_float32_eval_outputs_match(pair):
    tm, cm = pair
    tm32 = TorchResNet18(num_classes=10)
    tm32.load_state_dict({k: v.float() if v.is_floating_point() else v
                          for k, v in tm.state_dict().items()})
    with cc.nn.init.skip_init():
        cm32 = models.resnet18(num_classes=10)
    cm32.load_state_dict(tm32.state_dict())
    x = np.random.default_rng(3).standard_normal((1, 3, 32, 32)).astype(np.float32)
    tm32.eval()
    cm32.eval()
    with torch.no_grad():
        expect = tm32(torch.from_numpy(x)).numpy()
    with cc.no_grad():
        got = cm32(cc.tensor(x)).numpy()
    np.testing.assert_allclose(got, expect, rtol=1e-4, atol=1e-4)


def test_training_mode_gradients_match(pair):
    tm, cm = pair
    tm.train()
    cm.train()
    x = np.random.default_rng(4).standard_normal((3, 3, 32, 32))
    y = np.array([1, 7, 3])
    loss_t = tnn.functional.cross_entropy(tm(torch.from_numpy(x)), torch.from_numpy(y))
    tm.zero_grad()
    loss_t.backward()
    cm.zero_grad()
    loss_c = F.cross_entropy(cm(cc.tensor(x)), cc.tensor(y))
    loss_c.backward()
    assert loss_c.item() == pytest.approx(loss_t.item(), rel=1e-9)
    grads = dict(cm.named_parameters())
    for name, p in tm.named_parameters():
        np.testing.assert_allclose(grads[name].grad.numpy(), p.grad.numpy(), rtol=1e-6,
                                   atol=1e-9, err_msg=name)
    # running statistics updated the same way
    np.testing.assert_allclose(cm.bn1.running_mean.numpy(), tm.bn1.running_mean.numpy(),
                               rtol=1e-10)
    np.testing.assert_allclose(cm.layer3[0].bn2.running_var.numpy(),
                               tm.layer3[0].bn2.running_var.numpy(), rtol=1e-10)
