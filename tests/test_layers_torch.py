"""Layer ops against PyTorch (CPU) as an independent oracle: forward outputs and the
gradients of every array input (torch autograd), in float64 (tight) and float32, for
every op torch has (dropout's mask is our own and is tested elsewhere). Batch norm's
running statistics must also be updated exactly as torch updates them.
"""
import contextlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from hypothesis import given, strategies as st  # noqa: E402

import cnncore  # noqa: E402
from cnncore import ops  # noqa: E402
from helpers import SEEDS  # noqa: E402

torch.set_num_threads(1)
DTYPES = [np.float32, np.float64]
LEVELS = list(dict.fromkeys(["ref", cnncore._core.best_isa()]))


@contextlib.contextmanager
def isa(name):
    saved = cnncore.get_isa()
    cnncore.set_isa(name)
    try:
        yield
    finally:
        cnncore.set_isa(saved)


@pytest.fixture(params=LEVELS)
def level(request):
    with isa(request.param):
        yield request.param


def tol(dtype):
    return dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)


def torch_run(f, arrays, grad_out):
    """f(*tensors) with autograd: (output, [grad of each array that is not None])."""
    ts = [None if a is None else torch.tensor(a, requires_grad=True) for a in arrays]
    out = f(*ts)
    out.backward(torch.tensor(grad_out))
    return out.detach().numpy(), [None if t is None else t.grad.numpy() for t in ts]


def assert_close(got, want, dtype):
    assert got.dtype == dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, **tol(dtype))


# --------------------------------------------------------------------------- activations


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,kw,tf", [
    ("relu", {}, F.relu),
    ("leaky_relu", {}, F.leaky_relu),
    ("leaky_relu", dict(negative_slope=0.2), lambda x: F.leaky_relu(x, 0.2)),
    ("sigmoid", {}, torch.sigmoid),
    ("tanh", {}, torch.tanh),
])
def test_activations(rng, dtype, name, kw, tf):
    x = (rng.standard_normal((2, 3, 5)) * 4).astype(dtype)
    x[0, 0, :2] = 0  # the kink: both sides agree on the gradient there
    g = rng.standard_normal(x.shape).astype(dtype)
    want, (gx,) = torch_run(tf, [x], g)
    assert_close(getattr(ops, name)(x, **kw), want, dtype)
    assert_close(getattr(ops, name + "_backward")(g, x, **kw), gx, dtype)


# --------------------------------------------------------------------------- softmax


@st.composite
def softmax_problems(draw):
    rank = draw(st.integers(1, 4))
    shape = tuple(draw(st.sampled_from([1, 2, 3, 17, 66])) if i == rank - 1 else draw(st.integers(1, 4))
                  for i in range(rank))
    dim = draw(st.integers(-rank, rank - 1))
    dtype = draw(st.sampled_from(DTYPES))
    rng = np.random.default_rng(draw(SEEDS))
    return (rng.standard_normal(shape) * 5).astype(dtype), dim, rng


@pytest.mark.parametrize("log", [False, True])
@given(prob=softmax_problems())
def test_softmax(log, prob):
    x, dim, rng = prob
    g = rng.standard_normal(x.shape).astype(x.dtype)
    tf = F.log_softmax if log else F.softmax
    want, (gx,) = torch_run(lambda t: tf(t, dim), [x], g)
    f, b = (ops.log_softmax, ops.log_softmax_backward) if log else (ops.softmax, ops.softmax_backward)
    assert_close(f(x, dim), want, x.dtype)
    assert_close(b(g, x, dim), gx, x.dtype)


# --------------------------------------------------------------------------- cross-entropy


@st.composite
def ce_problems(draw):
    spatial = draw(st.lists(st.integers(1, 3), max_size=2))
    n, c = draw(st.integers(1, 4)), draw(st.sampled_from([1, 2, 3, 5, 17]))
    dtype = draw(st.sampled_from(DTYPES))
    rng = np.random.default_rng(draw(SEEDS))
    x = (rng.standard_normal((n, c, *spatial)) * 3).astype(dtype)
    target = rng.integers(0, c, (n, *spatial))
    ignore = draw(st.sampled_from([-100, 0, 1, 4]))
    target[rng.random(target.shape) < 0.25] = ignore
    target.flat[0] = 0 if ignore != 0 else c - 1 if c > 1 else 0
    weight = (rng.random(c) + 0.2).astype(dtype) if draw(st.booleans()) else None
    kw = dict(weight=weight, ignore_index=ignore,
              reduction=draw(st.sampled_from(["mean", "sum", "none"])),
              label_smoothing=draw(st.sampled_from([0.0, 0.1, 0.5, 1.0])))
    return x, target, kw, rng


@pytest.mark.parametrize("lvl", LEVELS)
@given(prob=ce_problems())
def test_cross_entropy(lvl, prob):
    x, target, kw, rng = prob
    with isa(lvl):
        out = ops.cross_entropy(x, target, **kw)
        g = rng.standard_normal(out.shape).astype(x.dtype)
        tkw = dict(kw, weight=None if kw["weight"] is None else torch.tensor(kw["weight"]))
        want, (gx,) = torch_run(lambda t: F.cross_entropy(t, torch.tensor(target), **tkw), [x], g)
        assert_close(out, want, x.dtype)
        assert_close(ops.cross_entropy_backward(g, x, target, **kw), gx, x.dtype)


# --------------------------------------------------------------------------- LRN


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 8])
@pytest.mark.parametrize("shape", [(2, 7, 3), (1, 17, 2, 3), (2, 3, 1, 2, 2), (1, 1, 70)])
def test_local_response_norm(rng, level, dtype, size, shape):
    x = (rng.standard_normal(shape) * 2).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    kw = dict(alpha=0.5, beta=0.75, k=2.0)
    want, (gx,) = torch_run(lambda t: F.local_response_norm(t, size, **kw), [x], g)
    assert_close(ops.local_response_norm(x, size, **kw), want, dtype)
    assert_close(ops.local_response_norm_backward(g, x, size, **kw), gx, dtype)


def test_local_response_norm_alexnet_defaults(rng):
    x = rng.standard_normal((2, 96, 5, 5)) * 20
    want = F.local_response_norm(torch.tensor(x), 5).numpy()
    np.testing.assert_allclose(ops.local_response_norm(x, 5), want, rtol=1e-12)


# --------------------------------------------------------------------------- batch norm


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", [(5, 3), (2, 17, 3), (3, 1, 2, 2), (2, 2, 2, 1, 3), (0, 3, 2)])
def test_batch_norm(rng, level, dtype, training, affine, shape):
    c = shape[1]
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal(c).astype(dtype) if affine else None
    b = rng.standard_normal(c).astype(dtype) if affine else None
    rm0 = rng.standard_normal(c).astype(dtype)
    rv0 = (rng.random(c) + 0.5).astype(dtype)
    kw = dict(training=training, momentum=0.3, eps=1e-4)

    trm, trv = torch.tensor(rm0), torch.tensor(rv0)
    want, grads = torch_run(lambda t, tw, tb: F.batch_norm(t, trm, trv, tw, tb, **kw), [x, w, b], g)
    rm, rv = rm0.copy(), rv0.copy()
    assert_close(ops.batch_norm(x, rm, rv, w, b, **kw), want, dtype)
    # torch has updated trm / trv once (forward only); so have we
    np.testing.assert_allclose(rm, trm.numpy(), **tol(dtype))
    np.testing.assert_allclose(rv, trv.numpy(), **tol(dtype))
    got = ops.batch_norm_backward(g, x, rm0, rv0, w, b, **kw)
    for mine, theirs in zip(got, grads):
        if theirs is None:
            assert mine is None
        else:
            assert_close(mine, theirs, dtype)


def test_batch_norm_without_running_stats(rng):
    x = rng.standard_normal((4, 3, 2))
    want = F.batch_norm(torch.tensor(x), None, None, training=True).numpy()
    np.testing.assert_allclose(ops.batch_norm(x, None, None, training=True), want, rtol=1e-12, atol=1e-13)


# --------------------------------------------------------------------------- linear


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("x_shape,out", [((7,), 3), ((5, 17), 1), ((2, 3, 40), 33), ((0, 4), 2),
                                         ((3, 2, 1), 70)])
def test_linear(rng, level, dtype, bias, x_shape, out):
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal((out, x_shape[-1])).astype(dtype)
    b = rng.standard_normal(out).astype(dtype) if bias else None
    g = rng.standard_normal((*x_shape[:-1], out)).astype(dtype)
    want, grads = torch_run(lambda t, tw, tb: F.linear(t, tw, tb), [x, w, b], g)
    assert_close(ops.linear(x, w, b), want, dtype)
    for mine, theirs in zip(ops.linear_backward(g, x, w, b), grads):
        if theirs is None:
            assert mine is None
        else:
            assert_close(mine, theirs, dtype)
