"""cnncore.Tensor: autograd of the NumPy-side ops, graph walking, grad mode, interop."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import cnncore as cc
from cnncore import Tensor, gradcheck


def t64(rng, *shape, positive=False):
    a = rng.standard_normal(shape)
    if positive:
        a = np.abs(a) + 0.5
    return cc.tensor(a, requires_grad=True)


# ---------------------------------------------------------------------------
# gradients by finite differences


@pytest.mark.parametrize("name, fn, shapes", [
    ("add", lambda a, b: a + b, [(3, 4), (3, 4)]),
    ("add-broadcast", lambda a, b: a + b, [(2, 3, 4), (3, 1)]),
    ("sub-broadcast", lambda a, b: a - b, [(4,), (2, 3, 4)]),
    ("mul-broadcast", lambda a, b: a * b, [(2, 1, 4), (3, 1)]),
    ("div", lambda a, b: a / b, [(3, 4), "pos(3, 4)"]),
    ("matmul-2d", lambda a, b: a @ b, [(3, 4), (4, 5)]),
    ("matmul-batched-broadcast", lambda a, b: a @ b, [(2, 3, 4), (4, 2)]),
    ("matmul-vec-mat", lambda a, b: a @ b, [(4,), (4, 3)]),
    ("matmul-mat-vec", lambda a, b: a @ b, [(3, 4), (4,)]),
    ("pow", lambda a: a ** 3, [(2, 5)]),
    ("pow-frac", lambda a: a ** 0.5, ["pos(2, 5)"]),
    ("exp-log", lambda a: (a.exp() + 1).log(), [(3, 3)]),
    ("sqrt", lambda a: a.sqrt(), ["pos(4,)"]),
    ("neg-abs", lambda a: -(a.abs()), [(3, 4)]),
    ("sum-all", lambda a: a.sum(), [(3, 4)]),
    ("sum-dim-keep", lambda a: a.sum(1, keepdim=True) * a, [(3, 4)]),
    ("mean-dims", lambda a: a.mean((0, 2)), [(2, 3, 4)]),
    ("max-dim", lambda a: a.max(1).values, [(3, 5)]),
    ("reshape-T", lambda a: a.reshape(4, 3).T @ a.reshape(4, 3), [(3, 4)]),
    ("permute", lambda a: a.permute(2, 0, 1) * 2, [(2, 3, 4)]),
    ("flatten", lambda a: a.flatten(1) * a.flatten(1), [(2, 3, 2)]),
    ("squeeze-unsqueeze", lambda a: a.unsqueeze(0).squeeze(0) * a, [(3, 1)]),
    ("slice", lambda a: a[1:, ::2] * 3, [(3, 5)]),
    ("index-int-none", lambda a: a[1, None, :] + a[0], [(3, 4)]),
    ("fancy-repeat", lambda a: a[np.array([0, 2, 0, 0])], [(3, 4)]),
    ("cat", lambda a, b: cc.cat([a, b, a], dim=1), [(2, 3), (2, 2)]),
    ("stack", lambda a, b: cc.stack([a, b], dim=1), [(2, 3), (2, 3)]),
    ("expand", lambda a: a.expand(3, 4) * 1.5, [(1, 4)]),
    ("clamp", lambda a: a.clamp(-0.5, 0.5), [(4, 4)]),
    ("maximum", lambda a, b: a.maximum(b), [(3, 4), (3, 4)]),
    ("rsub-rdiv", lambda a: 2 - 3 / (a * a + 1), [(3,)]),
    ("double-use", lambda a: a * a + a, [(3, 2)]),
    ("clone", lambda a: a.clone() * a, [(3,)]),
])
def test_gradients_match_finite_differences(name, fn, shapes, rng):
    inputs = []
    for s in shapes:
        if isinstance(s, str):
            inputs.append(t64(rng, *eval(s[3:]), positive=True))
        else:
            inputs.append(t64(rng, *s))
    assert gradcheck(fn, inputs)


@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), st.data())
def test_broadcast_add_gradient_sums_over_broadcast_axes(shape, data):
    # b has a size-1 axis wherever the draw says so; its gradient is the sum of
    # the output gradient over those axes.
    ones = data.draw(st.lists(st.booleans(), min_size=len(shape), max_size=len(shape)))
    bshape = tuple(1 if o else n for o, n in zip(ones, shape))
    rng = np.random.default_rng(0)
    a = cc.tensor(rng.standard_normal(shape), requires_grad=True)
    b = cc.tensor(rng.standard_normal(bshape), requires_grad=True)
    g = rng.standard_normal(shape)
    (a + b).backward(g)
    np.testing.assert_allclose(a.grad.numpy(), g)
    axes = tuple(i for i, o in enumerate(ones) if o)
    np.testing.assert_allclose(b.grad.numpy(), g.sum(axis=axes, keepdims=True))


# ---------------------------------------------------------------------------
# the graph


def test_grad_accumulates_across_backward_calls_until_reset():
    x = cc.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3 + 2, 3 + 4])
    x.grad = None
    (x * 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2, 2])


def test_diamond_graph_visits_each_node_once():
    # y = a*b with b = a+1 shared twice: dy/da = b + a + 1 summed across paths
    a = cc.tensor(np.array([2.0]), requires_grad=True)
    b = a + 1
    y = a * b + b * b
    y.backward()
    # y = a(a+1) + (a+1)^2 -> dy/da = 2a + 1 + 2(a+1) = 4a + 3 = 11
    assert a.grad.item() == pytest.approx(11.0)


def test_deep_chain_does_not_recurse():
    x = cc.tensor(np.ones(3), requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0 + 0.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 1.0)


def test_non_scalar_backward_needs_grad_and_checks_shape():
    x = cc.tensor(np.ones((2, 3)), requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="one-element"):
        y.backward()
    with pytest.raises(ValueError, match="shape"):
        y.backward(np.ones(3))
    y.backward(np.full((2, 3), 0.5))
    np.testing.assert_allclose(x.grad.numpy(), 1.0)


def test_backward_without_graph_raises_clearly():
    x = cc.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match="does not require grad"):
        (x * 2).sum().backward()


def test_no_grad_builds_no_graph_and_restores_mode():
    x = cc.tensor([1.0], requires_grad=True)
    with cc.no_grad():
        assert not cc.is_grad_enabled()
        y = x * 2
        with cc.enable_grad():
            z = x * 2
    assert cc.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad

    @cc.no_grad()
    def f(t):
        return t * 3

    assert not f(x).requires_grad
    assert cc.is_grad_enabled()


def test_detach_shares_data_and_cuts_the_graph():
    x = cc.tensor([1.0, 2.0], requires_grad=True)
    d = (x * 2).detach()
    assert not d.requires_grad and d.is_leaf
    y = x * d
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])   # d treated as a constant


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="floating"):
        cc.tensor([1, 2, 3], requires_grad=True)


# ---------------------------------------------------------------------------
# construction, dtype, interop


def test_tensor_copies_but_numpy_is_zero_copy():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = cc.tensor(a)
    a[0, 0] = 100
    assert t.numpy()[0, 0] == 0                           # tensor() copied
    v = t.numpy()
    v[1, 1] = -1
    assert t.numpy()[1, 1] == -1                          # numpy() is a view
    assert np.shares_memory(np.asarray(t), t.numpy())     # __array__ too
    s = cc.from_numpy(a)
    assert np.shares_memory(s.numpy(), a)


def test_dtypes_follow_torch_defaults():
    assert cc.tensor([1.0, 2.0]).dtype == np.float32
    assert cc.tensor(np.zeros(2)).dtype == np.float64
    assert cc.tensor([1, 2]).dtype == np.int64
    x = cc.tensor(np.ones(2, np.float32))
    assert (x * 2.5).dtype == np.float32                  # Python scalars do not upcast
    assert x.double().dtype == np.float64
    assert x.to("float64").dtype == np.float64


def test_cast_is_differentiable():
    x = cc.tensor(np.ones(3, np.float32), requires_grad=True)
    (x.double() * 2).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.numpy(), 2)


def test_ndarray_on_the_left_stays_in_the_graph():
    x = cc.tensor(np.ones(3), requires_grad=True)
    y = np.array([1.0, 2.0, 3.0]) * x
    assert isinstance(y, Tensor) and y.requires_grad
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1, 2, 3])
    # other ufuncs see plain arrays
    assert isinstance(np.exp(x), np.ndarray)


def test_dlpack_round_trip_is_zero_copy():
    a = np.arange(4, dtype=np.float32)
    t = cc.from_numpy(a)
    b = np.from_dlpack(t)
    assert np.shares_memory(a, b)
    u = cc.from_dlpack(a)
    assert np.shares_memory(u.numpy(), a)


def test_item_shape_and_repr():
    t = cc.tensor([[1.5]], requires_grad=True)
    assert t.item() == 1.5 and float(t) == 1.5
    assert t.shape == (1, 1) and t.ndim == 2 and t.numel() == 1 and t.size(0) == 1
    assert "requires_grad=True" in repr(t)
    assert "grad_fn" in repr(t * 2)
    with pytest.raises(ValueError, match="one element"):
        cc.tensor([1.0, 2.0]).item()


def test_comparisons_and_argmax_give_plain_tensors():
    t = cc.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 1.0]], requires_grad=True)
    assert t.argmax(1).tolist() == [1, 0]
    eq = t.argmax(1) == cc.tensor([1, 1])
    assert eq.tolist() == [True, False] and not eq.requires_grad
    values, idx = t.max(1)
    assert values.tolist() == [5.0, 7.0] and idx.tolist() == [1, 0]
    assert {t: 1}[t] == 1                                   # still hashable


# --- hooks -------------------------------------------------------------------

def test_register_hook_sees_and_replaces_the_gradient():
    x = cc.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    seen = []
    y.register_hook(lambda g: seen.append(g.data.copy()))
    h = y.register_hook(lambda g: g * 10)          # replaces dL/dy on its way to x
    (y * y).sum().backward()
    np.testing.assert_allclose(seen[0], [4.0, 8.0, 12.0])
    np.testing.assert_allclose(x.grad.data, [80.0, 160.0, 240.0])
    h.remove()
    x.grad = None
    (y * y).sum().backward()
    np.testing.assert_allclose(x.grad.data, [8.0, 16.0, 24.0])
    with pytest.raises(RuntimeError, match="does not require grad"):
        cc.tensor([1.0]).register_hook(lambda g: g)
    with pytest.raises(TypeError, match="must be callable"):
        x.register_hook(3)
    bad = x * 1
    bad.register_hook(lambda g: np.zeros(5))
    with pytest.raises(RuntimeError, match="shape"):
        bad.sum().backward()


def test_post_accumulate_grad_hook_and_queued_callbacks():
    from cnncore.tensor import queue_callback
    w = cc.tensor([1.0, -1.0], requires_grad=True)
    events = []

    def hook(t):
        events.append(("grad", t.grad.data.copy()))
        queue_callback(lambda: events.append(("end", None)))

    w.register_post_accumulate_grad_hook(hook)
    ((w * w).sum() + w.sum()).backward()          # w is reached twice; the hook runs once
    assert [e[0] for e in events] == ["grad", "end"]
    np.testing.assert_allclose(events[0][1], [3.0, -1.0])
    (w * 1).sum().backward()                      # accumulates: the hook sees the sum
    np.testing.assert_allclose(events[2][1], [4.0, 0.0])
    with pytest.raises(RuntimeError, match="only leaf tensors"):
        (w * 2).register_post_accumulate_grad_hook(hook)
    with pytest.raises(RuntimeError, match="no backward pass is running"):
        queue_callback(lambda: None)
