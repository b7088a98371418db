"""Properties of the layer ops, and each op against a NumPy oracle written here
(so that the definitions are checked also where torch is not installed).

softmax rows sum to 1 and do not change when a constant is added; log_softmax is
log(softmax) and stays finite where exp overflows; the dropout mask is a pure
function of (seed, flat index): the same for any thread count, shape or dtype, with
a keep rate of about 1 - p; batch norm normalises, updates its running statistics
like torch and leaves them alone in eval mode, in the backward and for an empty
batch; cross-entropy's reductions and ignore_index; LRN's window; linear is a
matrix product.
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import cnncore
from cnncore import ops
from helpers import SEEDS

DTYPES = st.sampled_from([np.float32, np.float64])


@pytest.fixture
def threads():
    saved = cnncore.get_num_threads()
    yield cnncore.set_num_threads
    cnncore.set_num_threads(saved)


@st.composite
def arrays(draw, min_rank=1, max_rank=4, scale=3.0, min_side=1):
    rank = draw(st.integers(min_rank, max_rank))
    shape = tuple(draw(st.integers(min_side, 5)) for _ in range(rank))
    rng = np.random.default_rng(draw(SEEDS))
    dtype = draw(DTYPES)
    return (rng.standard_normal(shape) * scale).astype(dtype)


def tol(dtype):
    return dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)


# --------------------------------------------------------------------------- activations


def test_activations_match_numpy(rng):
    x = rng.standard_normal((3, 4, 5)) * 4
    np.testing.assert_array_equal(ops.relu(x), np.maximum(x, 0))
    np.testing.assert_array_equal(ops.leaky_relu(x, 0.2), np.where(x > 0, x, 0.2 * x))
    np.testing.assert_allclose(ops.sigmoid(x), 1 / (1 + np.exp(-x)), rtol=1e-14)
    np.testing.assert_allclose(ops.tanh(x), np.tanh(x), rtol=1e-14)
    g = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(ops.relu_backward(g, x), np.where(x > 0, g, 0))
    np.testing.assert_array_equal(ops.relu_backward(g[:1, :1, :2], np.array([[[0.0, -0.0]]])),
                                  np.zeros((1, 1, 2)))
    np.testing.assert_array_equal(ops.leaky_relu_backward(g, x, 0.2), np.where(x > 0, g, 0.2 * g))


def test_activations_at_extremes():
    x = np.array([-1e4, -50.0, 0.0, 50.0, 1e4, np.nan])
    with np.errstate(all="raise"):  # no warnings from NumPy-side conversions either
        s = ops.sigmoid(x)
    np.testing.assert_allclose(s[:5], [0.0, 1.9287498479639178e-22, 0.5, 1.0, 1.0], rtol=1e-14)
    assert np.isnan(s[5])
    assert np.isnan(ops.relu(x)[5]) and np.isnan(ops.tanh(x)[5])
    np.testing.assert_array_equal(ops.tanh(x)[[0, 4]], [-1.0, 1.0])
    # the result keeps the dtype, and a 0-d input gives a 0-d result
    assert ops.relu(x.astype(np.float32)).dtype == np.float32
    assert ops.sigmoid(np.float64(0.0)).shape == () and ops.sigmoid(np.float64(0.0)) == 0.5
    assert ops.dropout(np.array(2.0), 0.0, seed=0).shape == ()


def test_float32_sigmoid_and_tanh_are_accurate():
    """The float32 kernels use their own vectorisable exp / tanh: within a few ulp of the
    float64 result over the whole useful range. sigmoid(x) for x < -88.7 (a subnormal
    float) comes out as 0, as 1 / (1 + expf(-x)) does with libm."""
    x = np.concatenate([np.linspace(-110, 95, 400_001), np.geomspace(1e-30, 1, 2001),
                        -np.geomspace(1e-30, 1, 2001)]).astype(np.float32)
    x64 = x.astype(np.float64)
    with np.errstate(over="ignore"):
        want_sig = 1 / (1 + np.exp(-x64))
    tiny = np.finfo(np.float32).tiny  # the smallest normal float
    np.testing.assert_allclose(ops.sigmoid(x), want_sig, rtol=4 * 2**-24, atol=tiny)
    np.testing.assert_allclose(ops.tanh(x), np.tanh(x64), rtol=4 * 2**-24, atol=1e-44)
    g = np.ones_like(x)
    s = want_sig
    # 1 - s and 1 - tanh^2 cancel near 1: absolute errors of a few float epsilons
    np.testing.assert_allclose(ops.sigmoid_backward(g, x), s * (1 - s), rtol=2e-6, atol=3e-7)
    np.testing.assert_allclose(ops.tanh_backward(g, x), 1 - np.tanh(x64) ** 2, rtol=2e-6, atol=3e-7)


def test_non_contiguous_inputs_are_accepted(rng):
    x = rng.standard_normal((5, 4, 3)).transpose(2, 0, 1)  # a strided view
    assert not x.flags.c_contiguous
    np.testing.assert_array_equal(ops.softmax(x, 1), ops.softmax(np.ascontiguousarray(x), 1))
    w = rng.standard_normal((2, 4))
    np.testing.assert_allclose(ops.linear(x, w), x @ w.T, rtol=1e-13)
    np.testing.assert_array_equal(ops.relu(x[:, ::2]), np.maximum(x[:, ::2], 0))


# --------------------------------------------------------------------------- softmax


@given(x=arrays(scale=300.0), dim_pick=st.integers(0, 7))
def test_softmax_sums_to_one_and_ignores_constants(x, dim_pick):
    dim = dim_pick % x.ndim
    x = np.round(x * 64) / 64  # on a 1/64 grid: x + 37.5 and every x - max are exact
    y = ops.softmax(x, dim)
    assert y.dtype == x.dtype and np.all(np.isfinite(y)) and np.all(y >= 0)
    np.testing.assert_allclose(y.sum(axis=dim), 1.0, rtol=0, atol=1e-5 if x.dtype == np.float32 else 1e-13)
    # so adding a constant changes nothing at all
    np.testing.assert_array_equal(ops.softmax(x + x.dtype.type(37.5), dim), y)
    # log_softmax stays finite where exp(x) overflows, and is log(softmax) where it does not
    ly = ops.log_softmax(x, dim - x.ndim)
    assert np.all(np.isfinite(ly)) and np.all(ly <= 0)
    np.testing.assert_allclose(np.exp(ly), y, **tol(x.dtype))


def test_softmax_matches_numpy(rng):
    x = rng.standard_normal((2, 3, 4))
    for dim in range(3):
        e = np.exp(x - x.max(axis=dim, keepdims=True))
        np.testing.assert_allclose(ops.softmax(x, dim), e / e.sum(axis=dim, keepdims=True), rtol=1e-14)
        np.testing.assert_allclose(ops.log_softmax(x, dim), np.log(e / e.sum(axis=dim, keepdims=True)),
                                   rtol=1e-13, atol=1e-14)


def test_softmax_backward_of_a_constant_gradient_is_zero(rng):
    x = rng.standard_normal((4, 7))
    np.testing.assert_allclose(ops.softmax_backward(np.ones_like(x), x), 0, atol=1e-15)


# --------------------------------------------------------------------------- cross-entropy


def np_cross_entropy(x, t, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    c = x.shape[1]
    xm = np.moveaxis(x, 1, -1)  # (N, d..., C)
    logp = xm - xm.max(-1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
    w = np.ones(c) if weight is None else weight
    valid = t != ignore_index
    tt = np.where(valid, t, 0)
    nll = -np.take_along_axis(logp, tt[..., None], -1)[..., 0] * w[tt]
    smooth = -(logp * w).sum(-1)
    loss = np.where(valid, (1 - label_smoothing) * nll + label_smoothing / c * smooth, 0.0)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / np.where(valid, w[tt], 0).sum()


@given(seed=SEEDS, reduction=st.sampled_from(["none", "mean", "sum"]),
       smoothing=st.sampled_from([0.0, 0.25, 1.0]), weighted=st.booleans(),
       shape=st.sampled_from([(5, 3), (2, 4, 3), (3, 2, 2, 2), (1, 1)]))
def test_cross_entropy_matches_numpy(seed, reduction, smoothing, weighted, shape):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 3
    t = rng.integers(0, shape[1], (shape[0], *shape[2:]))
    t[rng.random(t.shape) < 0.3] = -100
    t.flat[0] = 0
    w = rng.random(shape[1]) + 0.1 if weighted else None
    kw = dict(weight=w, reduction=reduction, label_smoothing=smoothing)
    got = ops.cross_entropy(x, t, **kw)
    assert got.shape == (t.shape if reduction == "none" else ())
    np.testing.assert_allclose(got, np_cross_entropy(x, t, **kw), rtol=1e-12, atol=1e-14)


def test_cross_entropy_reductions_and_ignore_index(rng):
    x = rng.standard_normal((6, 4)).astype(np.float32)
    t = np.array([0, 3, 1, 7, 2, 7], dtype=np.int16)  # any integer dtype
    per = ops.cross_entropy(x, t, ignore_index=7, reduction="none")
    assert per.dtype == np.float32 and per[3] == 0 and per[5] == 0
    np.testing.assert_allclose(ops.cross_entropy(x, t, ignore_index=7, reduction="sum"), per.sum(), rtol=1e-6)
    np.testing.assert_allclose(ops.cross_entropy(x, t, ignore_index=7), per.sum() / 4, rtol=1e-6)
    g = ops.cross_entropy_backward(1.0, x, t, ignore_index=7)
    assert g.dtype == np.float32
    np.testing.assert_array_equal(g[[3, 5]], 0)
    np.testing.assert_allclose(g.sum(axis=1), 0, atol=1e-7)  # softmax - onehot sums to 0
    # every target ignored: the mean is 0/0 = NaN (like torch), the gradient 0
    assert np.isnan(ops.cross_entropy(x, np.full(6, 7), ignore_index=7))
    np.testing.assert_array_equal(ops.cross_entropy_backward(1.0, x, np.full(6, 7), ignore_index=7), 0)
    # an empty batch
    assert ops.cross_entropy(x[:0], t[:0], reduction="sum") == 0
    assert ops.cross_entropy(x[:0], t[:0], reduction="none").shape == (0,)


# --------------------------------------------------------------------------- dropout


@given(x=arrays(max_rank=3), p=st.sampled_from([0.1, 0.5, 0.9]), seed=st.integers(0, 2**64 - 1))
def test_dropout_mask_is_a_function_of_seed_and_index(x, p, seed):
    y = ops.dropout(x, p, seed=seed)
    np.testing.assert_array_equal(ops.dropout(x, p, seed=seed), y)
    # the same flat mask whatever the shape and dtype
    flat = ops.dropout(np.ones(x.size), p, seed=seed)
    kept = flat != 0
    np.testing.assert_array_equal(y.reshape(-1) != 0, kept & (x.reshape(-1) != 0))
    scale = x.dtype.type(1 / (1 - p))
    np.testing.assert_array_equal(y.reshape(-1)[kept], x.reshape(-1)[kept] * scale)
    # the backward applies the same mask and scale
    g = np.ones_like(x)
    np.testing.assert_array_equal(ops.dropout_backward(g, x, p, seed=seed).reshape(-1) != 0, kept)


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 0.8])
def test_dropout_keep_rate_and_thread_independence(p, threads):
    x = np.ones(200_000, dtype=np.float32)
    threads(1)
    one = ops.dropout(x, p, seed=2024)
    threads(2)
    two = ops.dropout(x, p, seed=2024)
    np.testing.assert_array_equal(one, two)
    mask = (one != 0).mean()
    assert abs(mask - (1 - p)) < 0.01
    # the mask times its scale has mean about 1 (dropout keeps the expectation)
    assert abs(one.mean() - 1) < 0.03
    other = ops.dropout(x, p, seed=2025)
    assert p == 0 or not np.array_equal(one, other)


def test_dropout_edge_cases(rng):
    x = rng.standard_normal((3, 5))
    np.testing.assert_array_equal(ops.dropout(x, 1.0, seed=1), 0)
    np.testing.assert_array_equal(ops.dropout(x, 0.0, seed=1), x)
    y = ops.dropout(x, 0.6, training=False, seed=1)
    np.testing.assert_array_equal(y, x)
    assert y is not x
    np.testing.assert_array_equal(ops.dropout_backward(x, x, 0.6, training=False, seed=1), x)
    assert ops.dropout(np.zeros((0, 4)), 0.5, seed=1).shape == (0, 4)


# --------------------------------------------------------------------------- batch norm


@given(x=arrays(min_rank=2, max_rank=4), momentum=st.sampled_from([0.0, 0.1, 1.0]))
def test_batch_norm_training_normalises_and_updates_running_stats(x, momentum):
    c = x.shape[1]
    axes = tuple(a for a in range(x.ndim) if a != 1)
    m = x.size // c
    if m < 2:
        x = np.concatenate([x, x * 2 + 1])
        m = x.size // c
    rng = np.random.default_rng(0)
    rm0 = rng.standard_normal(c).astype(x.dtype)
    rv0 = (rng.random(c) + 0.5).astype(x.dtype)
    rm, rv = rm0.copy(), rv0.copy()
    y = ops.batch_norm(x, rm, rv, training=True, momentum=momentum, eps=1e-5)
    x64 = x.astype(np.float64)
    mean, var = x64.mean(axis=axes), x64.var(axis=axes)
    shape = [1] * x.ndim
    shape[1] = c
    ref = (x64 - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + 1e-5)
    np.testing.assert_allclose(y, ref, rtol=1e-4 if x.dtype == np.float32 else 1e-11, atol=1e-5)
    t = dict(rtol=1e-5, atol=1e-6) if x.dtype == np.float32 else dict(rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(rm, (1 - momentum) * rm0 + momentum * mean, **t)
    np.testing.assert_allclose(rv, (1 - momentum) * rv0 + momentum * var * m / (m - 1), **t)


def test_batch_norm_eval_uses_running_stats_and_updates_nothing(rng):
    x = rng.standard_normal((4, 3, 5))
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    rm, rv = rng.standard_normal(3), rng.random(3) + 0.5
    rm0, rv0 = rm.copy(), rv.copy()
    y = ops.batch_norm(x, rm, rv, w, b, eps=1e-3)
    ref = (x - rm[:, None]) / np.sqrt(rv[:, None] + 1e-3) * w[:, None] + b[:, None]
    np.testing.assert_allclose(y, ref, rtol=1e-13, atol=1e-14)
    np.testing.assert_array_equal(rm, rm0)
    np.testing.assert_array_equal(rv, rv0)
    # nor does the backward, in either mode
    for training in (False, True):
        ops.batch_norm_backward(np.ones_like(x), x, rm, rv, w, b, training=training)
        np.testing.assert_array_equal(rm, rm0)
        np.testing.assert_array_equal(rv, rv0)
    # an empty batch in training mode normalises nothing and updates nothing
    assert ops.batch_norm(x[:0], rm, rv, training=True).shape == (0, 3, 5)
    np.testing.assert_array_equal(rm, rm0)


def test_batch_norm_float32_running_stats_in_place():
    x = np.arange(24, dtype=np.float32).reshape(4, 2, 3)
    rm, rv = np.zeros(2, np.float32), np.ones(2, np.float32)
    ops.batch_norm(x, rm, rv, training=True, momentum=0.5)
    # channel 0 holds 0,1,2, 6,7,8, 12,13,14, 18,19,20: mean 10
    np.testing.assert_allclose(rm, [5.0, 6.5], rtol=1e-6)
    assert rm.dtype == np.float32


# --------------------------------------------------------------------------- LRN


def np_lrn(x, size, alpha, beta, k):
    c = x.shape[1]
    sq = np.pad(x ** 2, [(0, 0), (size // 2, (size - 1) // 2)] + [(0, 0)] * (x.ndim - 2))
    s = sum(sq[:, i:i + c] for i in range(size))
    return x / (k + alpha / size * s) ** beta


@given(x=arrays(min_rank=3, max_rank=5), size=st.integers(1, 7), beta=st.sampled_from([0.5, 0.75, 2.0]))
def test_lrn_matches_numpy(x, size, beta):
    got = ops.local_response_norm(x, size, alpha=0.3, beta=beta, k=1.0)
    np.testing.assert_allclose(got, np_lrn(x.astype(np.float64), size, 0.3, beta, 1.0),
                               rtol=2e-5 if x.dtype == np.float32 else 1e-12, atol=1e-6)


def test_lrn_size_one_is_pointwise(rng):
    x = rng.standard_normal((2, 3, 4))
    np.testing.assert_allclose(ops.local_response_norm(x, 1, alpha=1.0, beta=1.0, k=1.0), x / (1 + x * x),
                               rtol=1e-14)


# --------------------------------------------------------------------------- linear


@given(seed=SEEDS, lead=st.lists(st.integers(1, 4), max_size=3), n_in=st.integers(1, 9),
       n_out=st.integers(1, 9), dtype=DTYPES)
def test_linear_is_a_matrix_product(seed, lead, n_in, n_out, dtype):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((*lead, n_in)).astype(dtype)
    w = rng.standard_normal((n_out, n_in)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    y = ops.linear(x, w, b)
    assert y.shape == (*lead, n_out) and y.dtype == dtype
    t = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y, x @ w.T + b, **t)
    g = rng.standard_normal(y.shape).astype(dtype)
    gx, gw, gb = ops.linear_backward(g, x, w, b)
    rows = int(np.prod(lead))
    g2, x2 = g.reshape(rows, n_out), x.reshape(rows, n_in)
    np.testing.assert_allclose(gx, g @ w, **t)
    np.testing.assert_allclose(gw, g2.T @ x2, **t)
    np.testing.assert_allclose(gb, g2.sum(axis=0), **t)
