"""cnncore.models: parameter counts (torchvision's where it has the model),
forward and backward of every network on a small input, clear input errors."""
import re

import numpy as np
import pytest

import cnncore as cc
from cnncore import functional as F
from cnncore import models, nn

# torchvision's counts (and the papers' for LeNet-5 / two-tower AlexNet / ZFNet)
COUNTS = {
    ("lenet5", ()): 61_706,
    ("alexnet", ()): 61_100_840,
    ("alexnet", (("original", True),)): 60_965_224,
    ("zfnet", ()): 62_357_608,
    ("vgg11", ()): 132_863_336,
    ("vgg13", ()): 133_047_848,
    ("vgg16", ()): 138_357_544,
    ("vgg19", ()): 143_667_240,
    ("vgg11_bn", ()): 132_868_840,
    ("vgg13_bn", ()): 133_053_736,
    ("vgg16_bn", ()): 138_365_992,
    ("vgg19_bn", ()): 143_678_248,
    ("googlenet", ()): 6_624_904,
    ("googlenet", (("aux_logits", True),)): 13_004_888,
    # the paper's 5x5 kernels: 16 more weights per (5x5-reduce x 5x5) pair
    ("googlenet", (("true_5x5", True),)): 6_624_904 + 16 * 23_808,
    ("resnet18", ()): 11_689_512,
    ("resnet34", ()): 21_797_672,
    ("resnet50", ()): 25_557_032,
    ("resnet101", ()): 44_549_160,
    ("resnet152", ()): 60_192_808,
}


@pytest.mark.parametrize("name, kwargs", sorted(COUNTS), ids=lambda v: str(v))
def test_parameter_counts(name, kwargs):
    with nn.init.skip_init():                 # lazily allocated: no time spent on init
        model = models.get_model(name, **dict(kwargs))
    assert model.num_parameters() == COUNTS[(name, kwargs)]


def test_lenet5_layer_formula():
    # conv: K*K*c1*c2 + c2; fc: in*out + out
    m = models.lenet5()
    expect = (25 * 1 * 6 + 6) + (25 * 6 * 16 + 16) + (400 * 120 + 120) + (120 * 84 + 84) + \
        (84 * 10 + 10)
    assert m.num_parameters() == expect
    # the paper's order: convolution, subsampling, then the squashing function
    assert [type(layer) for layer in m.features] == [nn.Conv2d, nn.AvgPool2d, nn.Sigmoid] * 2
    modern = models.lenet5(modern=True)
    assert [type(layer) for layer in modern.features] == [nn.Conv2d, nn.MaxPool2d, nn.ReLU] * 2


def test_torchvision_names():
    with nn.init.skip_init():
        r = models.resnet18()
        v = models.vgg16_bn()
        g = models.googlenet(aux_logits=True)
        a = models.alexnet()
    rk = list(r.state_dict())
    assert rk[:6] == ["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean",
                      "bn1.running_var", "bn1.num_batches_tracked"]
    assert "layer2.0.downsample.0.weight" in rk and "layer4.1.bn2.running_var" in rk
    assert rk[-2:] == ["fc.weight", "fc.bias"]
    vk = list(v.state_dict())
    assert "features.1.running_mean" in vk and "classifier.6.weight" in vk
    gk = set(g.state_dict())
    assert {"inception3a.branch2.1.conv.weight", "inception4e.branch4.1.bn.bias",
            "aux1.fc2.weight", "aux2.conv.conv.weight"} <= gk
    assert [n for n, _ in a.named_parameters()][:2] == ["features.0.weight", "features.0.bias"]


SMALL = {
    "lenet5": (dict(), (2, 1, 32, 32)),
    "lenet5-28-modern": (dict(input_size=28, modern=True), (2, 1, 28, 28)),
    "alexnet": (dict(), (2, 3, 63, 63)),
    "alexnet-original": (dict(original=True), (2, 3, 63, 63)),
    "zfnet": (dict(), (2, 3, 53, 53)),
    "vgg11": (dict(), (2, 3, 32, 32)),
    "vgg11_bn": (dict(), (2, 3, 32, 32)),
    "googlenet": (dict(), (2, 3, 32, 32)),
    "googlenet-aux-5x5": (dict(aux_logits=True, true_5x5=True), (2, 3, 32, 32)),
    "resnet18": (dict(), (2, 3, 32, 32)),
    "resnet50": (dict(), (2, 3, 32, 32)),
    # Every other variant too (issue 4: every model runs forward and backward).
    **{v: (dict(), (2, 3, 32, 32)) for v in ("vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19",
                                            "vgg19_bn", "resnet34", "resnet101", "resnet152")},
}


@pytest.mark.parametrize("key", sorted(SMALL))
def test_forward_backward_small_input(key):
    name = key.split("-")[0]
    kwargs, shape = SMALL[key]
    cc.manual_seed(0)
    model = models.get_model(name, num_classes=7, in_channels=shape[1], **kwargs)
    x = cc.tensor(np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    out = model(x)
    target = cc.tensor(np.array([1, 5]))
    if isinstance(out, tuple):                 # GoogLeNet with aux heads in training mode
        assert len(out) == 3 and all(o.shape == (2, 7) for o in out)
        loss = F.cross_entropy(out[0], target) + 0.3 * (F.cross_entropy(out[1], target) +
                                                        F.cross_entropy(out[2], target))
    else:
        assert out.shape == (2, 7)
        loss = F.cross_entropy(out, target)
    assert np.isfinite(loss.item())
    loss.backward()
    for n, p in model.named_parameters():
        assert p.grad is not None, n
        assert p.grad.shape == p.shape and np.all(np.isfinite(p.grad.numpy())), n
    assert any(np.any(p.grad.numpy() != 0) for p in model.parameters())
    model.eval()
    with cc.no_grad():
        y = model(x)
    assert not isinstance(y, tuple) and y.shape == (2, 7) and not y.requires_grad


def test_deep_resnets_and_vgg16_forward_eval():
    x = cc.tensor(np.random.default_rng(1).standard_normal((1, 3, 32, 32)).astype(np.float32))
    for fn in (models.resnet34, models.resnet101, models.resnet152, models.vgg16):
        with nn.init.skip_init():
            m = fn(num_classes=5)
        for p in m.parameters():
            p.data[...] = 0.01
        m.eval()
        with cc.no_grad():
            assert m(x).shape == (1, 5)


def test_wrong_input_channels_is_a_clear_error():
    m = models.resnet18(num_classes=3)
    x = cc.tensor(np.zeros((1, 1, 32, 32), np.float32))
    with pytest.raises(ValueError, match=r"conv2d: weight expects 3 input channels.*x has 1"):
        m(x)
    with pytest.raises(ValueError, match=r"LeNet5: expected input \(N, 1, 32, 32\), got "
                                         r"\(1, 3, 32, 32\)"):
        models.lenet5()(cc.tensor(np.zeros((1, 3, 32, 32), np.float32)))


def test_unknown_model_name():
    with pytest.raises(ValueError, match="unknown model 'lenet6'.*resnet18"):
        models.get_model("lenet6")


def test_checkpoint_of_another_architecture_is_rejected():
    r18 = models.resnet18(num_classes=4)
    with nn.init.skip_init():
        r34 = models.resnet34(num_classes=4)
    with pytest.raises(KeyError, match="Missing key.*layer1.2.conv1.weight"):
        r34.load_state_dict(r18.state_dict())
    with pytest.raises(ValueError, match="size mismatch for fc.weight"):
        models.resnet18(num_classes=5).load_state_dict(r18.state_dict())


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_every_builder_documents_the_paper_what_differs_and_its_parameter_count(name):
    """Model docstrings used to be one line: each now names the paper, says what differs
    from it, and states the parameter count, which must be the built model's."""
    fn = models.MODELS[name]
    doc = " ".join((fn.__doc__ or "").split())
    with nn.init.skip_init():
        count = fn().num_parameters()
    assert f"{count:,} parameters" in doc, (name, count)
    assert re.search(r"\b(19|20)\d\d\b", doc), name            # the paper's year
    assert len(doc) > 150, name
