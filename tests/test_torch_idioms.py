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
    with pytest.raises(RuntimeError, match="CPU only"):
        x.to("cuda")
    with pytest.raises(RuntimeError, match="CPU only"):
        cc.device("cuda:0")
    m = nn.Linear(2, 2)
    assert m.to("cpu") is m and m.to("cpu", np.float64).weight.dtype == np.float64
    with pytest.raises(RuntimeError, match="CPU only"):
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
    np.testing.assert_array_equal(m.weight.grad.data, tm.weight.grad.numpy())
    m.weight.grad.data[0, 0] = np.nan
    with pytest.raises(RuntimeError, match="total norm of the gradients is nan"):
        nn.utils.clip_grad_norm_(m.parameters(), 1.0, error_if_nonfinite=True)
    with pytest.raises(ValueError, match="max_norm must be >= 0"):
        nn.utils.clip_grad_norm_(m.parameters(), -1)
    with pytest.raises(TypeError, match="expected Tensors"):
        nn.utils.clip_grad_norm_([1.0], 1)
    assert float(nn.utils.clip_grad_norm_([], 1.0).data) == 0.0
