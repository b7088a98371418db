"""cnncore.nn: every layer's gradients (input and parameters) by float64 finite
differences through the autograd, a whole tiny network the same way, the
Module machinery (registration, state_dict, modes, repr) and initialisation."""
import collections
import math

import numpy as np
import pytest

import cnncore as cc
from cnncore import gradcheck, nn


def _check_module(module, x_shape, rng, x=None):
    """Gradients of sum(module(x) * r) w.r.t. x and every parameter."""
    module.double()
    params = list(module.parameters())
    for p in params:
        if not np.all(np.isfinite(p.data)):
            raise AssertionError("uninitialised parameter")
    if x is None:
        x = cc.tensor(rng.standard_normal(x_shape), requires_grad=True)

    def fn(inp, *ps):
        return module(inp)

    assert gradcheck(fn, [x, *params])
    return x


LAYERS = {
    "Linear": (lambda: nn.Linear(5, 3), (4, 5)),
    "Linear-no-bias": (lambda: nn.Linear(5, 3, bias=False), (2, 3, 5)),
    "Conv1d": (lambda: nn.Conv1d(2, 3, 3, stride=2, padding=1), (2, 2, 7)),
    "Conv2d": (lambda: nn.Conv2d(2, 3, 3, padding="same", padding_mode="circular"), (1, 2, 4, 5)),
    "Conv2d-groups-flip": (lambda: nn.Conv2d(4, 2, 2, stride=2, groups=2, flip=True),
                           (1, 4, 5, 5)),
    "Conv3d": (lambda: nn.Conv3d(1, 2, 2, padding=1), (1, 1, 3, 3, 2)),
    "ConvTranspose2d": (lambda: nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1), (1, 2, 3, 3)),
    "LocallyConnected2d": (lambda: nn.LocallyConnected2d(2, 2, 3, input_size=(4, 5)),
                           (2, 2, 4, 5)),
    "TiledConv2d": (lambda: nn.TiledConv2d(2, 2, 2, tile=(2, 2), padding=1), (1, 2, 4, 4)),
    "DepthwiseSeparableConv2d": (lambda: nn.DepthwiseSeparableConv2d(2, 3, 3, padding=1,
                                                                     depth_multiplier=2),
                                 (1, 2, 4, 4)),
    "AvgPool2d": (lambda: nn.AvgPool2d(2), (1, 2, 4, 4)),
    "LPPool2d": (lambda: nn.LPPool2d(2, 2), (1, 2, 4, 4)),
    "WeightedAvgPool2d": (lambda: nn.WeightedAvgPool2d(3, 2, 1), (1, 2, 5, 5)),
    "AdaptiveAvgPool2d": (lambda: nn.AdaptiveAvgPool2d((2, 2)), (1, 2, 5, 4)),
    "BatchNorm2d-train": (lambda: nn.BatchNorm2d(3), (4, 3, 2, 2)),
    "BatchNorm1d-train": (lambda: nn.BatchNorm1d(3), (6, 3)),
    "BatchNorm2d-eval": (lambda: nn.BatchNorm2d(3).eval(), (2, 3, 2, 2)),
    "LocalResponseNorm": (lambda: nn.LocalResponseNorm(3, alpha=0.1), (2, 4, 2, 2)),
    "Sigmoid": (lambda: nn.Sigmoid(), (3, 4)),
    "Tanh": (lambda: nn.Tanh(), (3, 4)),
    "Softmax": (lambda: nn.Softmax(1), (3, 4)),
    "Flatten": (lambda: nn.Flatten(), (2, 3, 2)),
    "ConvTranspose1d": (lambda: nn.ConvTranspose1d(2, 2, 3, stride=2), (1, 2, 4)),
    "ConvTranspose3d": (lambda: nn.ConvTranspose3d(1, 2, 2), (1, 1, 2, 2, 2)),
    "AvgPool1d": (lambda: nn.AvgPool1d(3, 2, 1), (2, 2, 7)),
    "AvgPool3d": (lambda: nn.AvgPool3d(2), (1, 1, 4, 2, 2)),
    "LPPool1d": (lambda: nn.LPPool1d(3, 2), (1, 2, 6)),
    "AdaptiveAvgPool1d": (lambda: nn.AdaptiveAvgPool1d(3), (1, 2, 7)),
    "AdaptiveAvgPool3d": (lambda: nn.AdaptiveAvgPool3d((1, 2, 2)), (1, 1, 3, 3, 3)),
    "GlobalAvgPool2d": (lambda: nn.GlobalAvgPool2d(), (2, 3, 3, 2)),
    "BatchNorm3d-train": (lambda: nn.BatchNorm3d(2), (3, 2, 2, 2, 1)),
    "LogSoftmax": (lambda: nn.LogSoftmax(-1), (3, 4)),
    "Pad-reflect": (lambda: nn.Pad((1, 1, 2, 0), mode="reflect"), (1, 2, 3, 3)),
    "ZeroPad2d": (lambda: nn.ZeroPad2d(1), (1, 1, 2, 2)),
    "Identity": (lambda: nn.Identity(), (2, 2)),
    "Sequential": (lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.Tanh(), nn.Flatten(),
                                         nn.Linear(8, 3)), (2, 1, 4, 4)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_gradients_by_finite_differences(name, rng):
    make, shape = LAYERS[name]
    cc.manual_seed(3)
    module = make()
    _check_module(module, shape, rng)


def test_layers_with_kinks_gradients(rng):
    # ReLU / max pooling / dropout: inputs kept away from kinks and ties
    n = 2 * 2 * 4 * 4
    x = cc.tensor((rng.permutation(n).reshape(2, 2, 4, 4) - n / 2 + 0.5) * 0.1,
                  requires_grad=True)
    for module in (nn.ReLU(), nn.LeakyReLU(0.1), nn.MaxPool2d(2), nn.AdaptiveMaxPool2d(1),
                   nn.MaxPool2d(3, 1, 1, ceil_mode=True)):
        _check_module(module, None, rng, x=x)
    x1 = cc.tensor(x.numpy().reshape(2, 2, 16), requires_grad=True)
    _check_module(nn.MaxPool1d(2), None, rng, x=x1)
    x3 = cc.tensor(x.numpy().reshape(2, 2, 2, 2, 4), requires_grad=True)
    _check_module(nn.MaxPool3d(2), None, rng, x=x3)
    d = nn.Dropout(0.4)
    cc.manual_seed(1)
    y1 = d(x)
    cc.manual_seed(1)
    y2 = d(x)
    np.testing.assert_array_equal(y1.numpy(), y2.numpy())      # seedable
    assert (y1.numpy() == 0).any()
    assert d.eval()(x) is x


def test_whole_tiny_network_gradients(rng):
    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 3, 3, padding=1)
            self.bn = nn.BatchNorm2d(3)
            self.pool = nn.AvgPool2d(2)
            self.fc = nn.Linear(3 * 2 * 2, 4)

        def forward(self, x):
            h = self.pool(self.bn(self.conv(x)).tanh())
            return self.fc(h.flatten(1))

    cc.manual_seed(0)
    net = Tiny().double()
    x = cc.tensor(rng.standard_normal((3, 1, 4, 4)), requires_grad=True)
    target = cc.tensor(np.array([0, 3, 1]))
    assert gradcheck(lambda inp, *ps: cc.functional.cross_entropy(net(inp), target),
                     [x, *net.parameters()])


# ---------------------------------------------------------------------------
# Module machinery


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
        self.scale = 2.0

    def forward(self, x):
        return self.head(self.bn(self.conv(x)).relu()) * self.scale


def test_registration_and_naming():
    m = Block()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["conv.weight", "bn.weight", "bn.bias", "head.1.weight", "head.1.bias"]
    assert list(m.state_dict()) == ["conv.weight", "bn.weight", "bn.bias", "bn.running_mean",
                                    "bn.running_var", "bn.num_batches_tracked",
                                    "head.1.weight", "head.1.bias"]
    assert [n for n, _ in m.named_children()] == ["conv", "bn", "head"]
    assert len(list(m.modules())) == 6
    assert m.num_parameters() == 4 * 3 * 9 + 4 + 4 + 4 * 2 + 2
    shared = nn.Sequential(m.conv, m.conv)
    assert len(list(shared.parameters())) == 1           # deduplicated
    assert m.scale == 2.0 and "scale" not in m.state_dict()


def test_train_eval_propagate():
    m = Block()
    m.eval()
    assert not any(mod.training for mod in m.modules())
    m.train()
    assert all(mod.training for mod in m.modules())


def test_state_dict_round_trip_and_strict_errors():
    cc.manual_seed(0)
    a, b = Block(), Block()
    a.bn.running_mean.data[:] = [1, 2, 3, 4]
    result = b.load_state_dict(a.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(b.state_dict()[k].numpy(), v.numpy())
    assert b.state_dict()["conv.weight"].numpy() is not a.conv.weight.numpy()

    sd = collections.OrderedDict(a.state_dict())
    del sd["bn.bias"]
    sd["extra.weight"] = np.zeros(3)
    with pytest.raises(KeyError, match=r'Missing key\(s\) in state_dict: "bn.bias"') as e:
        b.load_state_dict(sd)
    assert "Unexpected key(s) in state_dict: \"extra.weight\"" in str(e.value)
    out = b.load_state_dict(sd, strict=False)
    assert out.missing_keys == ["bn.bias"] and out.unexpected_keys == ["extra.weight"]

    bad = dict(a.state_dict())
    bad["conv.weight"] = np.zeros((4, 1, 3, 3))
    before = b.head[1].weight.numpy().copy()
    bad["head.1.weight"] = np.ones((2, 4))
    with pytest.raises(ValueError, match=r"size mismatch for conv.weight: .*\(4, 1, 3, 3\).*"
                                         r"\(4, 3, 3, 3\)"):
        b.load_state_dict(bad)
    np.testing.assert_array_equal(b.head[1].weight.numpy(), before)   # nothing copied


def test_load_state_dict_accepts_torch_tensors():
    torch = pytest.importorskip("torch")
    lin = nn.Linear(3, 2)
    tl = torch.nn.Linear(3, 2)
    lin.load_state_dict(tl.state_dict())
    np.testing.assert_allclose(lin.weight.numpy(), tl.weight.detach().numpy())


def test_repr_is_nested_like_torch():
    text = repr(Block())
    assert text.startswith("Block(\n  (conv): Conv2d(3, 4, kernel_size=(3, 3), stride=(1, 1), "
                           "bias=False)")
    assert "(head): Sequential(\n    (0): Flatten(" in text


def test_assignment_rules_and_containers():
    m = nn.Module()
    m.w = nn.Parameter(np.zeros(3))
    with pytest.raises(TypeError, match="Parameter or None"):
        m.w = np.ones(3)
    m.w = None
    assert list(m.parameters()) == []
    ml = nn.ModuleList([nn.ReLU(), nn.Tanh()])
    assert len(ml) == 2 and isinstance(ml[1], nn.Tanh)
    seq = nn.Sequential(nn.ReLU(), nn.Tanh(), nn.Sigmoid())
    assert isinstance(seq[-1], nn.Sigmoid) and len(seq[1:]) == 2
    md = nn.ModuleDict({"a": nn.Linear(2, 2)})
    assert [n for n, _ in md.named_parameters()] == ["a.weight", "a.bias"]


def test_module_dtype_conversion_and_zero_grad():
    m = nn.Linear(3, 2)
    assert m.weight.dtype == np.float32
    m(cc.tensor(np.ones((1, 3), np.float32))).sum().backward()
    assert m.weight.grad is not None
    m.zero_grad()
    assert m.weight.grad is None
    m.double()
    assert m.weight.dtype == np.float64 and m.bias.dtype == np.float64


def test_layer_argument_errors():
    with pytest.raises(ValueError, match="groups=3 must divide"):
        nn.Conv2d(4, 6, 3, groups=3)
    with pytest.raises(ValueError, match="in_channels must be a positive integer"):
        nn.Conv2d(0, 6, 3)
    with pytest.raises(ValueError, match="expected input with 5 features"):
        nn.Linear(5, 2)(cc.tensor(np.ones((2, 4), np.float32)))
    with pytest.raises(ValueError, match="expected 3 channels"):
        nn.BatchNorm2d(3)(cc.tensor(np.ones((2, 4, 2, 2), np.float32)))
    with pytest.raises(ValueError, match="p must be in"):
        nn.Dropout(1.5)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm2d(3)(cc.tensor(np.ones((1, 3, 1, 1), np.float32)))
    nn.BatchNorm2d(3).eval()(cc.tensor(np.ones((1, 3, 1, 1), np.float32)))   # fine in eval


def test_batchnorm_tracks_batches_and_momentum_none():
    bn = nn.BatchNorm1d(2, momentum=None)
    xs = [np.array([[1.0, 2.0], [3.0, 6.0]], np.float32), np.array([[5.0, 0.0], [7.0, 2.0]],
                                                                   np.float32)]
    for x in xs:
        bn(cc.tensor(x))
    assert int(bn.num_batches_tracked.item()) == 2
    # cumulative average of the batch means
    np.testing.assert_allclose(bn.running_mean.numpy(), (xs[0].mean(0) + xs[1].mean(0)) / 2)


# ---------------------------------------------------------------------------
# init


def test_kaiming_and_xavier_statistics():
    g = np.random.default_rng(0)
    w = np.empty((256, 128, 3, 3), np.float32)
    nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu", generator=g)
    assert w.std() == pytest.approx(math.sqrt(2 / (256 * 9)), rel=0.02)
    nn.init.kaiming_uniform_(w, nonlinearity="relu", generator=g)
    assert np.abs(w).max() <= math.sqrt(6 / (128 * 9)) + 1e-7
    assert w.std() == pytest.approx(math.sqrt(2 / (128 * 9)), rel=0.02)
    nn.init.xavier_uniform_(w, generator=g)
    assert w.std() == pytest.approx(math.sqrt(2 / ((128 + 256) * 9)), rel=0.02)
    nn.init.xavier_normal_(w, gain=nn.init.calculate_gain("tanh"), generator=g)
    assert w.std() == pytest.approx(5 / 3 * math.sqrt(2 / ((128 + 256) * 9)), rel=0.02)
    nn.init.trunc_normal_(w, std=1.0, a=-0.5, b=0.5, generator=g)
    assert np.abs(w).max() <= 0.5


def test_initialisation_is_seedable():
    cc.manual_seed(123)
    a = nn.Conv2d(3, 8, 3)
    cc.manual_seed(123)
    b = nn.Conv2d(3, 8, 3)
    c = nn.Conv2d(3, 8, 3)
    np.testing.assert_array_equal(a.weight.numpy(), b.weight.numpy())
    assert not np.array_equal(a.weight.numpy(), c.weight.numpy())
    d = nn.Linear(4, 4, generator=np.random.default_rng(5))
    e = nn.Linear(4, 4, generator=5)
    np.testing.assert_array_equal(d.weight.numpy(), e.weight.numpy())
    bound = 1 / math.sqrt(3 * 9)                          # torch's default bounds
    assert np.abs(a.weight.numpy()).max() <= bound and np.abs(a.bias.numpy()).max() <= bound


# --- forward values against independent NumPy / closed forms (gradcheck alone cannot see
# a layer that computes the wrong function consistently) ---

from numpy.lib.stride_tricks import sliding_window_view  # noqa: E402

from cnncore import functional as F  # noqa: E402


def _np_corr2d(x, w, b, stride=(1, 1), dilation=(1, 1)):
    """Cross-correlation of an already padded x (N, C, H, W) with w (O, C, kh, kw)."""
    kh, kw = w.shape[2:]
    dh, dw = dilation
    win = sliding_window_view(x, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(2, 3))
    win = win[:, :, ::stride[0], ::stride[1], ::dh, ::dw]
    y = np.einsum("nchwij,ocij->nohw", win, w)
    return y if b is None else y + b[None, :, None, None]


def test_linear_and_conv_forward_values(rng):
    lin = nn.Linear(5, 3).double()
    x = rng.standard_normal((4, 5))
    np.testing.assert_allclose(lin(cc.tensor(x)).numpy(),
                               x @ lin.weight.numpy().T + lin.bias.numpy(), rtol=1e-12)
    for mode, np_mode in (("zeros", "constant"), ("circular", "wrap"), ("reflect", "reflect"),
                          ("replicate", "edge")):
        conv = nn.Conv2d(2, 3, 3, stride=(1, 2), padding=(1, 2), dilation=(1, 2),
                         padding_mode=mode).double()
        x = rng.standard_normal((2, 2, 6, 7))
        xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (2, 2)), mode=np_mode)
        want = _np_corr2d(xp, conv.weight.numpy(), conv.bias.numpy(), (1, 2), (1, 2))
        np.testing.assert_allclose(conv(cc.tensor(x)).numpy(), want, rtol=1e-10, atol=1e-12)
    flip = nn.Conv2d(1, 1, 2, flip=True, bias=False).double()
    x = rng.standard_normal((1, 1, 4, 4))
    want = _np_corr2d(x, flip.weight.numpy()[:, :, ::-1, ::-1], None)
    np.testing.assert_allclose(flip(cc.tensor(x)).numpy(), want, rtol=1e-12)


def test_conv_transpose_forward_is_the_scatter(rng):
    ct = nn.ConvTranspose2d(2, 3, 3, stride=2).double()
    x = rng.standard_normal((1, 2, 3, 4))
    w, b = ct.weight.numpy(), ct.bias.numpy()
    want = np.zeros((1, 3, (3 - 1) * 2 + 3, (4 - 1) * 2 + 3))
    for i in range(3):
        for j in range(4):
            want[0, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3] += np.einsum("c,cokl->okl", x[0, :, i, j], w)
    np.testing.assert_allclose(ct(cc.tensor(x)).numpy(), want + b[None, :, None, None],
                               rtol=1e-12)


def test_pooling_and_activation_forward_values(rng):
    x = rng.standard_normal((2, 3, 6, 6))
    win = sliding_window_view(x, (2, 2), axis=(2, 3))[:, :, ::2, ::2]
    np.testing.assert_allclose(nn.MaxPool2d(2)(cc.tensor(x)).numpy(), win.max(axis=(-1, -2)))
    np.testing.assert_allclose(nn.AvgPool2d(2)(cc.tensor(x)).numpy(), win.mean(axis=(-1, -2)),
                               rtol=1e-12)
    t = cc.tensor(x)
    np.testing.assert_allclose(nn.ReLU()(t).numpy(), np.maximum(x, 0))
    np.testing.assert_allclose(nn.LeakyReLU(0.2)(t).numpy(), np.where(x > 0, x, 0.2 * x))
    np.testing.assert_allclose(nn.Sigmoid()(t).numpy(), 1 / (1 + np.exp(-x)), rtol=1e-12)
    np.testing.assert_allclose(nn.Tanh()(t).numpy(), np.tanh(x), rtol=1e-12)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(nn.Softmax(1)(t).numpy(), e / e.sum(axis=1, keepdims=True),
                               rtol=1e-12)
    np.testing.assert_allclose(nn.Flatten()(t).numpy(), x.reshape(2, -1))


def test_norm_layers_forward_values(rng):
    x = rng.standard_normal((4, 3, 2, 5)) * 2 + 1
    bn = nn.BatchNorm2d(3, momentum=0.1).double()
    bn.weight.data[...] = [1.0, 2.0, -0.5]
    bn.bias.data[...] = [0.0, 1.0, 3.0]
    y = bn(cc.tensor(x)).numpy()
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    want = (x - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-5)
    want = want * bn.weight.numpy()[None, :, None, None] + bn.bias.numpy()[None, :, None, None]
    np.testing.assert_allclose(y, want, rtol=1e-10, atol=1e-12)
    n = x.size // 3
    np.testing.assert_allclose(bn.running_mean, 0.1 * mean, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * var * n / (n - 1), rtol=1e-12)
    bn.eval()
    y = bn(cc.tensor(x)).numpy()
    want = (x - bn.running_mean[None, :, None, None]) / np.sqrt(
        bn.running_var[None, :, None, None] + 1e-5)
    want = want * bn.weight.numpy()[None, :, None, None] + bn.bias.numpy()[None, :, None, None]
    np.testing.assert_allclose(y, want, rtol=1e-10)
    lrn = nn.LocalResponseNorm(3, alpha=0.3, beta=0.75, k=2.0)
    x = rng.standard_normal((2, 5, 3, 3))
    sq = np.pad(x * x, ((0, 0), (1, 1), (0, 0), (0, 0)))
    s = sq[:, :-2] + sq[:, 1:-1] + sq[:, 2:]
    np.testing.assert_allclose(lrn(cc.tensor(x)).numpy(), x / (2.0 + 0.3 / 3 * s) ** 0.75,
                               rtol=1e-12)


def test_dropout_forward_values():
    x = np.ones((200, 50))
    d = nn.Dropout(0.3)
    y = d(cc.tensor(x)).numpy()
    assert set(np.unique(y)) <= {0.0, 1 / 0.7}
    assert 0.25 < np.mean(y == 0) < 0.35
    d.eval()
    np.testing.assert_array_equal(d(cc.tensor(x)).numpy(), x)


def test_losses_forward_values(rng):
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    assert F.mse_loss(cc.tensor(a), cc.tensor(b)).item() == pytest.approx(np.mean((a - b) ** 2))
    assert F.mse_loss(cc.tensor(a), cc.tensor(b), reduction="sum").item() == pytest.approx(
        np.sum((a - b) ** 2))
    assert nn.MSELoss()(cc.tensor(a), cc.tensor(b)).item() == pytest.approx(np.mean((a - b) ** 2))
    assert F.l1_loss(cc.tensor(a), cc.tensor(b)).item() == pytest.approx(np.mean(np.abs(a - b)))
    np.testing.assert_allclose(nn.L1Loss(reduction="none")(cc.tensor(a), cc.tensor(b)).numpy(),
                               np.abs(a - b))
    t = np.array([0, 2, 1, 2])
    logp = a - np.log(np.exp(a).sum(axis=1, keepdims=True))
    assert nn.CrossEntropyLoss()(cc.tensor(a), cc.tensor(t)).item() == pytest.approx(
        -logp[np.arange(4), t].mean())


def test_gradcheck_rejects_a_wrong_backward():
    from cnncore.tensor import Function

    class Twice(Function):
        def forward(self, a):
            return a * 2.0

        def backward(self, grad):
            return (grad * 3.0,)                      # wrong: d(2a)/da is 2

    x = cc.tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    with pytest.raises(AssertionError, match="gradcheck: input 0"):
        gradcheck(lambda t: Twice.apply(t), [x])
    # and a right one passes
    assert gradcheck(lambda t: t * 2.0, [x])
