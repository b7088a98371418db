"""The PyTorch idioms a user reaches for: grad mode as a function, constructors, tensor
methods, item assignment, devices, retain_grad, module hooks, gradient clipping. Values
and gradients are compared with torch where it is installed (the oracle), else with
NumPy."""
import numpy as np
import pytest

import cnncore as cc
from cnncore import nn

torch = pytest.importorskip("torch")


def _pair(shape, seed=0):
    a = np.random.default_rng(seed).standard_normal(shape)
    return cc.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


# --- grad mode -----------------------------------------------------------------

def test_set_grad_enabled_as_function_context_and_decorator():
    assert cc.is_grad_enabled()
    try:
        cc.set_grad_enabled(False)                # the function form used to do nothing
        assert not cc.is_grad_enabled()
        x = cc.tensor([1.0], requires_grad=True)
        assert not (x * 2).requires_grad
    finally:
        cc.set_grad_enabled(True)
    assert cc.is_grad_enabled()
    with cc.set_grad_enabled(False):
        assert not cc.is_grad_enabled()
        with cc.enable_grad():
            assert cc.is_grad_enabled()
        with cc.set_grad_enabled(True):
            assert cc.is_grad_enabled()
        assert not cc.is_grad_enabled()
    assert cc.is_grad_enabled()

    @cc.set_grad_enabled(False)
    def f():
        return cc.is_grad_enabled()

    assert cc.is_grad_enabled()                   # decorating does not switch the mode
    assert f() is False and cc.is_grad_enabled()

    @cc.no_grad()
    def g():
        return cc.is_grad_enabled()

    assert g() is False and cc.is_grad_enabled()
    with pytest.raises(TypeError, match="mode must be a bool"):
        cc.set_grad_enabled("no")


# --- constructors ----------------------------------------------------------------

def test_constructors_match_torch():
    assert cc.full((2, 3), 1.5).dtype == np.float32
    np.testing.assert_array_equal(cc.full(3, 7).data, torch.full((3,), 7).numpy())
    np.testing.assert_allclose(cc.linspace(-1, 2, 7).data, torch.linspace(-1, 2, 7).numpy())
    np.testing.assert_array_equal(cc.arange(2, 9, 3).data, torch.arange(2, 9, 3).numpy())
    assert cc.zeros(2, 3).shape == (2, 3) and cc.ones((4,)).data.sum() == 4
    z = cc.zeros_like(cc.ones(2, 2, dtype=np.float64))
    assert z.dtype == np.float64 and not z.data.any()
    assert cc.ones_like(np.zeros(3, np.int32)).dtype == np.int32
    assert cc.randn(2, 5).shape == (2, 5) and cc.rand(3).data.max() < 1
    with pytest.raises(ValueError, match="steps must be a non-negative integer"):
        cc.linspace(0, 1, -2)


def test_where_and_matmul_forward_and_gradients():
    a, ta = _pair((3, 4))
    b, tb = _pair((4,), 1)                        # broadcast
    out = cc.where(a > 0, a, b)
    tout = torch.where(ta > 0, ta, tb)
    np.testing.assert_allclose(out.data, tout.detach().numpy())
    (out * out).sum().backward()
    (tout * tout).sum().backward()
    np.testing.assert_allclose(a.grad.data, ta.grad.numpy())
    np.testing.assert_allclose(b.grad.data, tb.grad.numpy())
    with pytest.raises(TypeError, match="condition must be boolean"):
        cc.where(a, a, b)
    m, tm = _pair((4, 2), 2)
    p = cc.matmul(a, m)
    tp = torch.matmul(ta, tm)
    np.testing.assert_allclose(p.data, tp.detach().numpy())
    p.sum().backward()
    tp.sum().backward()
    np.testing.assert_allclose(m.grad.data, tm.grad.numpy())


# --- tensor methods ----------------------------------------------------------------

@pytest.mark.parametrize("name,fn", [
    ("t", lambda x: x.t()),
    ("pow", lambda x: x.pow(3)),
    ("min", lambda x: x.min()),
    ("min(dim)", lambda x: x.min(1)[0]),
    ("max(dim)", lambda x: x.max(0)[0]),
    ("var", lambda x: x.var()),
    ("var(dim)", lambda x: x.var(1)),
    ("var(dim, biased)", lambda x: x.var(0, unbiased=False, keepdim=True)),
    ("std(dim)", lambda x: x.std(1)),
    ("clamp", lambda x: x.clamp(-0.5, 0.5)),
    ("exp", lambda x: x.exp()),
    ("log", lambda x: (x.abs() + 1).log()),
    ("abs", lambda x: x.abs()),
])
def test_tensor_methods_match_torch(name, fn):
    x, tx = _pair((3, 5))
    out, tout = fn(x), fn(tx)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-12, err_msg=name)
    g = np.random.default_rng(9).standard_normal(out.shape)
    out.backward(g)
    tout.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-10, atol=1e-12,
                               err_msg=name)


def test_index_reductions_match_torch():
    x, tx = _pair((4, 6), 3)
    for dim in (0, 1):
        np.testing.assert_array_equal(x.argmax(dim).data, tx.argmax(dim).numpy())
        np.testing.assert_array_equal(x.argmin(dim).data, tx.argmin(dim).numpy())
        np.testing.assert_array_equal(x.min(dim).indices.data, tx.min(dim).indices.numpy())
        np.testing.assert_array_equal(x.max(dim, keepdim=True).indices.data,
                                      tx.max(dim, keepdim=True).indices.numpy())
    assert int(x.argmin().data) == int(tx.argmin())
    with pytest.raises(ValueError, match="at most 2 dimensions"):
        cc.zeros(2, 2, 2).t()


def test_item_assignment_outside_the_graph():
    t = cc.zeros(3, 4)
    t[1] = 5.0
    t[:, 2] = cc.tensor([1.0, 2.0, 3.0])
    t[cc.tensor([True, False, False])] = -1
    expect = torch.zeros(3, 4)
    expect[1] = 5.0
    expect[:, 2] = torch.tensor([1.0, 2.0, 3.0])
    expect[torch.tensor([True, False, False])] = -1
    np.testing.assert_array_equal(t.data, expect.numpy())
    w = cc.zeros(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="requires grad would bypass autograd"):
        w[0] = 1.0
    with cc.no_grad():
        w[0] = 1.0                                # initialising a parameter in place
    assert w.data[0] == 1.0


def test_device_and_to():
    x = cc.tensor([1.0, 2.0], requires_grad=True)
    assert x.device == cc.device("cpu") and x.device == "cpu" and str(x.device) == "cpu"
    assert x.to("cpu") is x and x.cpu() is x
    assert x.to(cc.device("cpu"), np.float64).dtype == np.float64
    assert x.to(dtype="float64").dtype == np.float64
    assert x.to(cc.zeros(1, dtype=np.float64)).dtype == np.float64
    y = x.to("cpu", copy=True)
    assert y is not x and np.array_equal(y.data, x.data)
    assert cc.device("cuda:0") == "cuda" and cc.device("cuda").type == "cuda"
    with pytest.raises(RuntimeError, match="unknown device"):
        cc.device("tpu")
    m = nn.Linear(2, 2)
    assert m.to("cpu") is m and m.to("cpu", np.float64).weight.dtype == np.float64
    if not (cc.cuda.is_available() or cc.cuda.is_emulated()):     # tests/test_cuda.py covers the rest
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            x.to("cuda")
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            m.to("cuda")


def test_retain_grad_keeps_a_non_leaf_gradient():
    x, tx = _pair((2, 3))
    h, th = x * 3, tx * 3
    h.retain_grad()
    h.retain_grad()                               # twice: still one copy
    th.retain_grad()
    (h.exp().sum() * 2).backward()
    (th.exp().sum() * 2).backward()
    np.testing.assert_allclose(h.grad.data, th.grad.numpy())
    x.retain_grad()                               # a leaf: nothing to do
    with pytest.raises(RuntimeError, match="does not require grad"):
        cc.zeros(2).retain_grad()


# --- module hooks ---------------------------------------------------------------

def _linear_pair():
    m = nn.Linear(3, 2, dtype=np.float64)
    tm = torch.nn.Linear(3, 2).double()
    with torch.no_grad():
        tm.weight.copy_(torch.tensor(m.weight.data))
        tm.bias.copy_(torch.tensor(m.bias.data))
    return m, tm


def test_forward_hooks_see_and_replace_arguments_and_output():
    m = nn.Linear(3, 2)
    calls = []
    pre = m.register_forward_pre_hook(lambda mod, args: (args[0] * 2,))
    post = m.register_forward_hook(lambda mod, args, out: calls.append(
        (mod, args[0].data.copy(), out.data.copy())) or out + 1)
    x = cc.ones(1, 3)
    out = m(x)
    mod, seen_in, seen_out = calls[0]
    assert mod is m
    np.testing.assert_array_equal(seen_in, 2 * np.ones((1, 3)))   # the pre hook's argument
    np.testing.assert_allclose(out.data, seen_out + 1)
    pre.remove()
    post.remove()
    np.testing.assert_allclose(m(x).data, x.data @ m.weight.data.T + m.bias.data, rtol=1e-6)
    with pytest.raises(TypeError, match="must be callable"):
        m.register_forward_hook(None)


def test_full_backward_hook_matches_torch():
    m, tm = _linear_pair()
    got, want = [], []
    m.register_full_backward_hook(lambda mod, gi, go: got.append((gi, go)))
    tm.register_full_backward_hook(lambda mod, gi, go: want.append((gi, go)))
    x, tx = _pair((4, 3))
    (m(x) ** 2).sum().backward()
    (tm(tx) ** 2).sum().backward()
    (gi, go), (tgi, tgo) = got[0], want[0]
    np.testing.assert_allclose(go[0].data, tgo[0].numpy())
    np.testing.assert_allclose(gi[0].data, tgi[0].numpy())
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy())
    # an input that needs no gradient: grad_input is (None,), the hook still runs
    m2, tm2 = _linear_pair()
    got, want = [], []
    m2.register_full_backward_hook(lambda mod, gi, go: got.append(gi))
    tm2.register_full_backward_hook(lambda mod, gi, go: want.append(gi))
    m2(cc.ones(2, 3, dtype=np.float64)).sum().backward()
    with pytest.warns(UserWarning, match="no inputs require gradients"):
        tm2(torch.ones(2, 3, dtype=torch.float64)).sum().backward()
    assert got == [(None,)] and want == [(None,)]
    # a returned tuple replaces the input's gradient
    m3, _ = _linear_pair()
    m3.register_full_backward_hook(lambda mod, gi, go: (gi[0] * 0,))
    x3 = cc.ones(2, 3, dtype=np.float64, requires_grad=True)
    m3(x3).sum().backward()
    assert not x3.grad.data.any() and m3.weight.grad.data.any()


# --- gradient clipping -------------------------------------------------------------

@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
def test_clip_grad_norm_matches_torch(norm_type):
    m, tm = _linear_pair()
    x, tx = _pair((5, 3))
    (m(x) ** 3).sum().backward()
    (tm(tx) ** 3).sum().backward()
    total = nn.utils.clip_grad_norm_(m.parameters(), 0.5, norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(tm.parameters(), 0.5, norm_type)
    np.testing.assert_allclose(float(total.data), float(ttotal), rtol=1e-12)
    np.testing.assert_allclose(m.weight.grad.data, tm.weight.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(m.bias.grad.data, tm.bias.grad.numpy(), rtol=1e-10)


def test_clip_grad_value_and_errors():
    m, tm = _linear_pair()
    x, tx = _pair((5, 3))
    (m(x) ** 3).sum().backward()
    (tm(tx) ** 3).sum().backward()
    nn.utils.clip_grad_value_(m.parameters(), 0.1)
    torch.nn.utils.clip_grad_value_(tm.parameters(), 0.1)
    np.testing.assert_allclose(m.weight.grad.data, tm.weight.grad.numpy(), rtol=1e-12)
    assert np.abs(m.weight.grad.data).max() <= 0.1
    m.weight.grad.data[0, 0] = np.nan
    with pytest.raises(RuntimeError, match="total norm of the gradients is nan"):
        nn.utils.clip_grad_norm_(m.parameters(), 1.0, error_if_nonfinite=True)
    with pytest.raises(ValueError, match="max_norm must be >= 0"):
        nn.utils.clip_grad_norm_(m.parameters(), -1)
    with pytest.raises(TypeError, match="expected Tensors"):
        nn.utils.clip_grad_norm_([1.0], 1)
    assert float(nn.utils.clip_grad_norm_([], 1.0).data) == 0.0


# --- layers and functional ops that were missing --------------------------------------

F = cc.functional
TF = torch.nn.functional


def _grads_match(out, tout, inputs, rtol=1e-10, atol=1e-12):
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=rtol, atol=atol)
    g = np.random.default_rng(5).standard_normal(out.shape)
    out.backward(g)
    tout.backward(torch.tensor(g))
    for mine, theirs in inputs:
        np.testing.assert_allclose(mine.grad.data, theirs.grad.numpy(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("shape,normalized", [((4, 6), (6,)), ((2, 3, 4, 5), (4, 5)),
                                              ((3, 7), 7)])
def test_layer_norm_matches_torch(shape, normalized):
    x, tx = _pair(shape)
    ns = (normalized,) if isinstance(normalized, int) else normalized
    w, tw = _pair(ns, 1)
    b, tb = _pair(ns, 2)
    _grads_match(F.layer_norm(x, normalized, w, b), TF.layer_norm(tx, ns, tw, tb),
                 [(x, tx), (w, tw), (b, tb)])
    m = nn.LayerNorm(normalized, dtype=np.float64)
    assert m.weight.shape == ns and "elementwise_affine=True" in repr(m)
    with pytest.raises(ValueError, match="last 1 dimensions are"):
        F.layer_norm(x, (9,))


@pytest.mark.parametrize("groups", [1, 2, 6])
def test_group_norm_matches_torch(groups):
    x, tx = _pair((3, 6, 4, 5))
    w, tw = _pair((6,), 1)
    b, tb = _pair((6,), 2)
    _grads_match(F.group_norm(x, groups, w, b), TF.group_norm(tx, groups, tw, tb),
                 [(x, tx), (w, tw), (b, tb)])
    x2, tx2 = _pair((2, 6, 3))
    _grads_match(F.group_norm(x2, groups), TF.group_norm(tx2, groups), [(x2, tx2)])
    with pytest.raises(ValueError, match="positive divisor of the 6 channels"):
        F.group_norm(x, 4)
    with pytest.raises(ValueError, match="must be divisible by num_groups"):
        nn.GroupNorm(4, 6)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_and_silu_match_torch(approximate):
    x, tx = _pair((5, 7))
    x.data[0, :4] = [0.0, -30.0, 30.0, 1e-8]
    tx.data[0, :4] = torch.tensor([0.0, -30.0, 30.0, 1e-8])
    _grads_match(F.gelu(x, approximate), TF.gelu(tx, approximate=approximate), [(x, tx)],
                 rtol=1e-9, atol=1e-12)
    y, ty = _pair((5, 7), 1)
    _grads_match(F.silu(y), TF.silu(ty), [(y, ty)], rtol=1e-9, atol=1e-12)
    x32 = cc.tensor(np.linspace(-8, 8, 101, dtype=np.float32))
    np.testing.assert_allclose(nn.GELU(approximate)(x32).data,
                               torch.nn.GELU(approximate)(torch.tensor(x32.data)).numpy(),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(nn.SiLU()(x32).data, TF.silu(torch.tensor(x32.data)).numpy(),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh'"):
        nn.GELU("erf")


def test_dropout2d_drops_whole_channels():
    x = cc.ones(8, 16, 3, 3, requires_grad=True)
    y = F.dropout2d(x, 0.5, seed=3)
    planes = y.data.reshape(8, 16, 9)
    assert ((planes == 0).all(axis=2) | (planes == 2).all(axis=2)).all()
    assert 0.3 < (planes[:, :, 0] == 0).mean() < 0.7
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, y.data)     # d/dx of x * mask is the mask
    again = F.dropout2d(x, 0.5, seed=3)
    np.testing.assert_array_equal(again.data, y.data)
    m = nn.Dropout2d(0.5)
    m.eval()
    assert m(x) is x
    assert F.dropout2d(cc.ones(4, 2, 2), 0.25, seed=1).shape == (4, 2, 2)   # unbatched
    with pytest.raises(ValueError, match="3-D .* or 4-D"):
        F.dropout2d(cc.ones(2, 3), 0.5)
    with pytest.raises(ValueError, match=r"^Dropout2d: p must be in \[0, 1\], got 2"):
        nn.Dropout2d(2)


@pytest.mark.parametrize("kw", [dict(size=(7, 5), mode="nearest"),
                                dict(scale_factor=2, mode="nearest"),
                                dict(scale_factor=(0.5, 1.5), mode="nearest"),
                                dict(size=(7, 9), mode="bilinear", align_corners=False),
                                dict(size=(7, 9), mode="bilinear", align_corners=True),
                                dict(scale_factor=2, mode="bilinear", align_corners=False),
                                dict(size=(2, 3), mode="bilinear", align_corners=False)])
def test_interpolate_matches_torch(kw):
    x, tx = _pair((2, 3, 4, 6))
    _grads_match(F.interpolate(x, **kw), TF.interpolate(tx, **kw), [(x, tx)])


def test_interpolate_1d_and_errors():
    x, tx = _pair((2, 3, 5))
    _grads_match(F.interpolate(x, size=9, mode="linear"),
                 TF.interpolate(tx, size=9, mode="linear"), [(x, tx)])
    up = nn.Upsample(scale_factor=2)
    assert up(cc.zeros(1, 1, 2, 2)).shape == (1, 1, 4, 4)
    with pytest.raises(ValueError, match="exactly one of size and scale_factor"):
        F.interpolate(x)
    with pytest.raises(ValueError, match="needs a 4-D input"):
        F.interpolate(x, size=4, mode="bilinear")


@pytest.mark.parametrize("kw", [dict(kernel_size=3), dict(kernel_size=(2, 3), stride=2),
                                dict(kernel_size=3, padding=1, dilation=2),
                                dict(kernel_size=(3, 1), stride=(1, 2), padding=(0, 1))])
def test_unfold_and_fold_match_torch(kw):
    x, tx = _pair((2, 3, 7, 8))
    cols, tcols = F.unfold(x, **kw), TF.unfold(tx, **kw)
    _grads_match(cols, tcols, [(x, tx)])
    c, tc = _pair(tuple(tcols.shape), 4)
    _grads_match(F.fold(c, (7, 8), **kw), TF.fold(tc, (7, 8), **kw), [(c, tc)])
    assert nn.Unfold(**kw)(x).shape == tuple(tcols.shape)
    with pytest.raises(ValueError, match="expected an input|does not fit"):
        F.fold(c, (3, 8), **kw)


def test_max_unpool2d_matches_torch():
    x, tx = _pair((2, 3, 6, 7))
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    ty, tidx = TF.max_pool2d(tx, 2, return_indices=True)
    np.testing.assert_array_equal(idx.data, tidx.numpy())
    _grads_match(F.max_unpool2d(y, idx, 2, output_size=(6, 7)),
                 TF.max_unpool2d(ty, tidx, 2, output_size=(6, 7)), [(x, tx)])
    out = nn.MaxUnpool2d(2)(cc.tensor(y.data[0]), cc.tensor(idx.data[0]), output_size=(6, 7))
    assert out.shape == (3, 6, 7)
    with pytest.raises(IndexError, match="outside the 2x2 output plane"):
        F.max_unpool2d(cc.ones(1, 1, 1, 1), np.array([[[[9]]]]), 2)


@pytest.mark.parametrize("kw", [dict(), dict(reduction="sum"), dict(reduction="none"),
                                dict(label_smoothing=0.2)])
def test_cross_entropy_with_probability_targets_matches_torch(kw):
    x, tx = _pair((5, 4))
    p = np.random.default_rng(1).random((5, 4))
    p /= p.sum(1, keepdims=True)
    _grads_match(F.cross_entropy(x, p, **kw), TF.cross_entropy(tx, torch.tensor(p), **kw),
                 [(x, tx)])
    w = np.array([1.0, 2.0, 0.5, 1.5])
    y, ty = _pair((3, 4, 2, 2), 2)
    q = np.random.default_rng(3).random((3, 4, 2, 2))
    _grads_match(F.cross_entropy(y, q, weight=w, **kw),
                 TF.cross_entropy(ty, torch.tensor(q), weight=torch.tensor(w), **kw), [(y, ty)])
    with pytest.raises(ValueError, match="reduction must be 'mean', 'sum' or 'none'"):
        F.cross_entropy(x, p, reduction="avg")
    with pytest.raises(ValueError, match="one value per class"):
        F.cross_entropy(x, p, weight=np.ones(3))
    with pytest.raises(ValueError, match="probability targets must have the logits' shape"):
        cc._numpy_functional.soft_cross_entropy(x, p[:2])


# --- optimisers and schedules ---------------------------------------------------------

@pytest.mark.parametrize("kw", [dict(), dict(momentum=0.9), dict(centered=True),
                                dict(centered=True, momentum=0.5, weight_decay=0.01,
                                     alpha=0.9)])
def test_rmsprop_matches_torch(kw):
    m, tm = _linear_pair()
    opt = cc.optim.RMSprop(m.parameters(), lr=0.01, **kw)
    topt = torch.optim.RMSprop(tm.parameters(), lr=0.01, **kw)
    x, tx = _pair((6, 3))
    for _ in range(5):
        opt.zero_grad()
        topt.zero_grad()
        (m(x) ** 2).sum().backward()
        (tm(tx) ** 2).sum().backward()
        opt.step()
        topt.step()
    np.testing.assert_allclose(m.weight.data, tm.weight.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(m.bias.data, tm.bias.detach().numpy(), rtol=1e-10)
    with pytest.raises(ValueError, match="invalid alpha"):
        cc.optim.RMSprop(m.parameters(), alpha=1.5)


@pytest.mark.parametrize("kw,opt", [(dict(), "sgd"), (dict(anneal_strategy="linear"), "adam"),
                                    (dict(three_phase=True, pct_start=0.25), "sgd"),
                                    (dict(cycle_momentum=False, div_factor=10), "adam")])
def test_one_cycle_matches_torch(kw, opt):
    m, tm = _linear_pair()
    if opt == "sgd":
        o, to = cc.optim.SGD(m.parameters(), lr=0.1, momentum=0.9), \
            torch.optim.SGD(tm.parameters(), lr=0.1, momentum=0.9)
    else:
        o, to = cc.optim.Adam(m.parameters(), lr=0.1), torch.optim.Adam(tm.parameters(), lr=0.1)
    s = cc.optim.OneCycleLR(o, max_lr=0.5, total_steps=20, **kw)
    ts = torch.optim.lr_scheduler.OneCycleLR(to, max_lr=0.5, total_steps=20, **kw)
    key = "momentum" if opt == "sgd" else "betas"
    for _ in range(19):
        assert o.param_groups[0]["lr"] == pytest.approx(to.param_groups[0]["lr"], rel=1e-12)
        assert o.param_groups[0][key] == pytest.approx(to.param_groups[0][key], rel=1e-12)
        o.step()
        to.step()
        s.step()
        ts.step()
    with pytest.raises(ValueError, match="stepped 21 times"):
        s.step()


def test_reduce_lr_on_plateau_matches_torch():
    m, tm = _linear_pair()
    o = cc.optim.SGD(m.parameters(), lr=1.0)
    to = torch.optim.SGD(tm.parameters(), lr=1.0)
    s = cc.optim.ReduceLROnPlateau(o, factor=0.5, patience=2, cooldown=1, min_lr=0.05)
    ts = torch.optim.lr_scheduler.ReduceLROnPlateau(to, factor=0.5, patience=2, cooldown=1,
                                                    min_lr=0.05)
    metrics = [5, 4, 4, 4, 4, 3.9999, 4, 4, 4, 4, 4, 4, 4, 4, 4, 2, 2, 2, 2, 2, 2, 2, 2]
    for v in metrics:
        s.step(v)
        ts.step(v)
        assert s.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-12)
    assert s.get_last_lr()[0] < 1.0
    mx = cc.optim.ReduceLROnPlateau(o, mode="max", patience=0, threshold_mode="abs",
                                    threshold=0.1)
    lr = o.param_groups[0]["lr"]
    mx.step(1.0)
    mx.step(1.05)                                 # not better by 0.1: one bad epoch, reduce
    assert o.param_groups[0]["lr"] == pytest.approx(max(lr * 0.1, 0.0))
    with pytest.raises(ValueError, match="factor must be in"):
        cc.optim.ReduceLROnPlateau(o, factor=1.5)


# --- unbatched inputs, DataLoader workers -----------------------------------------------

@pytest.mark.parametrize("make,shape", [
    (lambda: nn.Conv2d(3, 4, 3, padding=1, dtype=np.float64), (3, 6, 7)),
    (lambda: nn.Conv1d(3, 2, 3, dtype=np.float64), (3, 9)),
    (lambda: nn.ConvTranspose2d(3, 2, 2, stride=2, dtype=np.float64), (3, 4, 4)),
    (lambda: nn.MaxPool2d(2), (3, 6, 6)),
    (lambda: nn.AvgPool2d(3, stride=2, padding=1), (2, 7, 7)),
    (lambda: nn.AdaptiveAvgPool2d((2, 3)), (2, 7, 7)),
    (lambda: nn.MaxPool1d(2), (3, 8)),
])
def test_unbatched_inputs_equal_a_batch_of_one(make, shape):
    layer = make()
    x = cc.tensor(np.random.default_rng(0).standard_normal(shape), requires_grad=True)
    out = layer(x)
    ref = layer(cc.tensor(x.data[None]))
    assert out.shape == ref.shape[1:]
    np.testing.assert_allclose(out.data, ref.data[0], rtol=1e-12)
    out.sum().backward()
    assert x.grad.shape == shape
    y, idx = nn.MaxPool2d(2, return_indices=True)(cc.ones(2, 4, 4))
    assert y.shape == (2, 2, 2) and idx.shape == (2, 2, 2)


def test_dataloader_workers_keep_order_and_determinism():
    x = np.arange(40, dtype=np.float32).reshape(10, 1, 2, 2)
    ds = cc.data.ArrayDataset(x, np.arange(10))
    plain = [(a.data, b.data) for a, b in cc.data.DataLoader(ds, 3, shuffle=True, seed=4)]
    threaded = [(a.data, b.data) for a, b in cc.data.DataLoader(ds, 3, shuffle=True, seed=4,
                                                                num_workers=2)]
    assert len(plain) == len(threaded) == 4
    for (a, b), (c, d) in zip(plain, threaded):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    # random transforms: each batch its own generator, so two runs agree whatever the timing
    aug = cc.data.ArrayDataset(x, np.arange(10),
                               transform=cc.data.transforms.RandomHorizontalFlip())
    runs = [[a.data for a, _ in cc.data.DataLoader(aug, 2, seed=1, num_workers=3,
                                                   prefetch_factor=1)] for _ in range(3)]
    for run in runs[1:]:
        for a, b in zip(runs[0], run):
            np.testing.assert_array_equal(a, b)
    first = next(iter(cc.data.DataLoader(ds, 2, num_workers=2)))      # leaving early is fine
    np.testing.assert_array_equal(first[1].data, [0, 1])
    with pytest.raises(ValueError, match="num_workers must be an integer >= 0"):
        cc.data.DataLoader(ds, 2, num_workers=-1)


# --- errors that name what went wrong ----------------------------------------------------

def test_an_error_deep_in_a_model_names_the_module_and_its_input():
    model = cc.models.vgg11(num_classes=10)
    with pytest.raises(ValueError) as info:
        model(cc.zeros(1, 3, 31, 31))
    msg = str(info.value)
    assert msg.startswith("features.20 (MaxPool2d) on input of shape (1, 512, 1, 1): "
                          "max_pool2d: kernel_size is larger than the padded input"), msg
    net = nn.Sequential(nn.Linear(4, 3), nn.Sequential(nn.ReLU(), nn.Linear(5, 2)))
    with pytest.raises(ValueError, match=r"^1\.1 \(Linear\) on input of shape \(2, 3\): "):
        net(cc.zeros(2, 4))
    with pytest.raises(ValueError, match=r"^Linear: expected input"):   # a direct call: as it was
        nn.Linear(5, 2)(cc.zeros(2, 3))


def test_channels_last_input_is_named_as_such():
    with pytest.raises(ValueError, match=r"it looks like NHWC; move the channels first, e\.g\. "
                                         r"x\.permute\(0, 3, 1, 2\)"):
        nn.Conv2d(3, 8, 3)(cc.zeros(2, 32, 32, 3))
    with pytest.raises(ValueError, match="looks like NLC"):
        nn.Conv1d(4, 8, 3)(cc.zeros(2, 10, 4))


@pytest.mark.parametrize("make,needle", [
    (lambda: nn.Conv2d(3, 4, 0), "kernel_size must be a positive int or 2 positive ints, got 0"),
    (lambda: nn.Conv2d(3, 4, 3, stride=(1, 0)), "stride must be a positive int"),
    (lambda: nn.Conv1d(3, 4, 3, dilation=-1), "dilation must be a positive int"),
    (lambda: nn.ConvTranspose2d(3, 4, (2, 2, 2)), "kernel_size must be a positive int or 2"),
])
def test_layers_check_their_geometry_when_built(make, needle):
    with pytest.raises(ValueError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        make()


@pytest.mark.parametrize("value,kind", [(["a"], "strings"), (np.array([1j]), "complex numbers"),
                                        (np.array([object()]), "Python objects"),
                                        ([b"x"], "bytes")])
def test_tensors_refuse_non_numeric_data(value, kind):
    with pytest.raises(TypeError, match=f"real floating-point numbers; got dtype .*{kind}"):
        cc.tensor(value)
    with pytest.raises(TypeError, match=kind):
        cc.Tensor(np.asarray(value))


def test_readme_cxx_install_command_builds_before_installing():
    import pathlib
    text = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text()
    line = next(ln for ln in text.split("a C++ library: after")[1].splitlines() if "cmake" in ln)
    steps = [s.strip(" `") for s in line.split("&&")]
    assert steps[0].startswith("cmake -S . -B build")
    assert steps[1].startswith("cmake --build build") and steps[2].startswith("cmake --install")


def test_dev_build_stops_at_once_without_pybind11(tmp_path):
    import pathlib
    import subprocess
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\nexit 1\n")            # a python3 without pybind11
    fake.chmod(0o755)
    root = pathlib.Path(__file__).resolve().parent.parent
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run(["bash", str(root / "scripts" / "dev-build.sh"), "probe"], env=env,
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 1
    assert "pybind11 is not installed" in proc.stderr and "pip install pybind11" in proc.stderr
    assert not (root / "build" / "dev-probe").exists()
