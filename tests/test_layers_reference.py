"""Fast layer kernels against their naive twins (kernel level "ref").

At level "ref" the softmax, cross-entropy, LRN, batch-norm and linear ops run the
naive loops of cpu/ref/layers-ref.cpp; at every other level they run the blocked /
fused / tiled / GEMM kernels. Both are run on the same data over awkward shapes
(channels 1, 3, 17; inner sizes that are not multiples of the 64-wide blocks; empty
batches) and must agree: bit for bit where the sums are exact (small-integer fills
for linear; the LRN forward adds the same squares in the same order), to rounding
otherwise. The fast kernels must also give identical results for 1 and 2 threads.
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import cnncore
from cnncore import ops
from helpers import SEEDS

BEST = cnncore._core.best_isa()
# The GEMM micro-kernel changes with the level, the other layer kernels do not.
GEMM_LEVELS = list(dict.fromkeys(["generic", BEST]))


@pytest.fixture(autouse=True)
def _restore_settings():
    isa, threads = cnncore.get_isa(), cnncore.get_num_threads()
    yield
    cnncore.set_isa(isa)
    cnncore.set_num_threads(threads)


def _tuple(r):
    return r if isinstance(r, tuple) else (r,)


def at_levels(f, levels):
    """f() at level "ref" (None if levels has no "ref"), then [f() at each level with 1 and
    2 threads]."""
    ref = None
    if "ref" in levels:
        cnncore.set_isa("ref")
        ref = f()
    fast = []
    for level in levels:
        if level == "ref":
            continue
        cnncore.set_isa(level)
        for threads in (1, 2):
            cnncore.set_num_threads(threads)
            fast.append(f())
    return ref, fast


def assert_agree(f, rtol=0.0, atol=0.0, levels=("ref", BEST)):
    """The fast results equal the reference (exactly when rtol == atol == 0), and the
    results for 1 and 2 threads are identical."""
    ref, fast = at_levels(f, levels)
    for got in fast:
        if ref is None:
            break
        for r, g in zip(_tuple(ref), _tuple(got), strict=True):
            if r is None:
                assert g is None
                continue
            assert g.shape == r.shape and g.dtype == r.dtype
            if rtol == atol == 0.0:
                np.testing.assert_array_equal(g, r)
            else:
                np.testing.assert_allclose(g, r, rtol=rtol, atol=atol)
    for a, b in zip(fast[0::2], fast[1::2]):
        for x, y in zip(_tuple(a), _tuple(b), strict=True):
            if x is not None:
                np.testing.assert_array_equal(x, y)


def tol(dtype):
    return dict(rtol=2e-5, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)


@st.composite
def nc_arrays(draw, min_rank=2, max_rank=4, min_n=1):
    """(N, C, spatial...) with C in {1, 3, 17} or small, inner sizes around the block width."""
    rank = draw(st.integers(min_rank, max_rank))
    n = draw(st.integers(min_n, 3))
    c = draw(st.sampled_from([1, 2, 3, 5, 17]))
    spatial = [draw(st.sampled_from([1, 2, 3, 7, 65])) if i == 0 else draw(st.integers(1, 3))
               for i in range(rank - 2)]
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(SEEDS))
    return (rng.standard_normal((n, c, *spatial)) * 2).astype(dtype), rng


# --------------------------------------------------------------------------- softmax


@given(data=nc_arrays(min_rank=1), log=st.booleans(), dim_pick=st.integers(0, 9))
def test_softmax_fast_equals_reference(data, log, dim_pick):
    x, rng = data
    if x.ndim == 1:
        x = x.reshape(-1)
    dim = dim_pick % x.ndim - (x.ndim if dim_pick % 2 else 0)
    g = rng.standard_normal(x.shape).astype(x.dtype)
    fwd = ops.log_softmax if log else ops.softmax
    bwd = ops.log_softmax_backward if log else ops.softmax_backward
    assert_agree(lambda: fwd(x, dim), **tol(x.dtype))
    assert_agree(lambda: bwd(g, x, dim), **tol(x.dtype))


# --------------------------------------------------------------------------- cross-entropy


@given(data=nc_arrays(), reduction=st.sampled_from(["none", "mean", "sum"]),
       smoothing=st.sampled_from([0.0, 0.1, 1.0]), weighted=st.booleans(),
       ignore=st.sampled_from([-100, 0, 2]))
def test_cross_entropy_fast_equals_reference(data, reduction, smoothing, weighted, ignore):
    x, rng = data
    c = x.shape[1]
    target = rng.integers(0, c, (x.shape[0], *x.shape[2:]))
    target[rng.random(target.shape) < 0.2] = ignore
    weight = (rng.random(c) + 0.1).astype(x.dtype) if weighted else None
    kw = dict(weight=weight, ignore_index=ignore, reduction=reduction, label_smoothing=smoothing)
    out = ops.cross_entropy(x, target, **kw)
    g = rng.standard_normal(out.shape).astype(x.dtype)
    t = tol(x.dtype)
    scale = max(1, target.size)  # sums of many terms
    assert_agree(lambda: ops.cross_entropy(x, target, **kw), rtol=t["rtol"] * 10,
                 atol=t["atol"] * scale)
    assert_agree(lambda: ops.cross_entropy_backward(g, x, target, **kw), **t)


# --------------------------------------------------------------------------- LRN


@given(data=nc_arrays(min_rank=3), size=st.sampled_from([1, 2, 3, 4, 5, 9, 30]),
       ints=st.booleans())
def test_lrn_fast_equals_reference(data, size, ints):
    x, rng = data
    if ints:
        x = np.round(x * 2).astype(x.dtype)
    g = rng.standard_normal(x.shape).astype(x.dtype)
    kw = dict(size=size, alpha=0.5, beta=0.75, k=2.0)
    # same squares added in the same order: bit-identical
    assert_agree(lambda: ops.local_response_norm(x, **kw))
    assert_agree(lambda: ops.local_response_norm_backward(g, x, **kw), **tol(x.dtype))


# --------------------------------------------------------------------------- batch norm


@given(data=nc_arrays(), training=st.booleans(), affine=st.booleans())
def test_batch_norm_fast_equals_reference(data, training, affine):
    x, rng = data
    c = x.shape[1]
    m = x.size // c if c else 0
    if training and m == 1:
        x = np.concatenate([x, x + 1], axis=0)
    w = rng.standard_normal(c).astype(x.dtype) if affine else None
    b = rng.standard_normal(c).astype(x.dtype) if affine else None
    rm0 = rng.standard_normal(c).astype(x.dtype)
    rv0 = (rng.random(c) + 0.5).astype(x.dtype)
    g = rng.standard_normal(x.shape).astype(x.dtype)

    def forward():
        rm, rv = rm0.copy(), rv0.copy()
        y = ops.batch_norm(x, rm, rv, w, b, training=training, momentum=0.3, eps=1e-3)
        return y, rm, rv

    t = tol(x.dtype)
    assert_agree(forward, rtol=t["rtol"] * 5, atol=t["atol"] * 10)
    assert_agree(lambda: ops.batch_norm_backward(g, x, rm0, rv0, w, b, training=training,
                                                 momentum=0.3, eps=1e-3),
                 rtol=t["rtol"] * 10, atol=t["atol"] * max(10, x.size))


@pytest.mark.parametrize("shape", [(2, 1, 400, 400), (3, 3, 300, 301), (4, 8, 128, 128), (64, 96, 4, 4),
                                   (700, 500)])
@pytest.mark.parametrize("training", [False, True])
def test_batch_norm_large_maps_fast_equals_reference(shape, training):
    """Maps large enough to be split between threads: by whole channels (enough of them),
    or, with fewer channels than two a thread, by images within each channel; and the
    tiny rows of (N, C) input. Both must agree with the reference and give the same bits
    for 1 and 2 threads."""
    rng = np.random.default_rng(sum(shape))
    c = shape[1]
    x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    w, b = rng.standard_normal(c).astype(np.float32), rng.standard_normal(c).astype(np.float32)
    rm0, rv0 = rng.standard_normal(c).astype(np.float32), (rng.random(c) + 0.5).astype(np.float32)

    def forward():
        rm, rv = rm0.copy(), rv0.copy()
        return ops.batch_norm(x, rm, rv, w, b, training=training, momentum=0.3, eps=1e-3), rm, rv

    assert_agree(forward, rtol=1e-4, atol=1e-5)
    assert_agree(lambda: ops.batch_norm_backward(g, x, rm0, rv0, w, b, training=training, momentum=0.3, eps=1e-3),
                 rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("shape", [(0,), (0, 3), (0, 5, 7), (0, 2, 3, 2)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_empty_batches_fast_equals_reference(shape, dtype):
    """Batch 0, which nc_arrays no longer draws: the very checks of the properties above."""
    def data():
        return np.zeros(shape, dtype), np.random.default_rng(0)

    for log in (False, True):
        for dim_pick in range(2 * len(shape)):
            test_softmax_fast_equals_reference.hypothesis.inner_test(data(), log, dim_pick)
    if len(shape) < 2:
        return
    for reduction in ("none", "mean", "sum"):
        for smoothing, weighted, ignore in ((0.0, False, -100), (0.1, True, 0), (1.0, True, 2)):
            test_cross_entropy_fast_equals_reference.hypothesis.inner_test(
                data(), reduction, smoothing, weighted, ignore)
    for training in (False, True):
        for affine in (False, True):
            test_batch_norm_fast_equals_reference.hypothesis.inner_test(data(), training, affine)
    if len(shape) >= 3:
        for size in (1, 3, 30):
            test_lrn_fast_equals_reference.hypothesis.inner_test(data(), size, False)


# --------------------------------------------------------------------------- linear


@st.composite
def linear_problems(draw):
    lead = draw(st.lists(st.sampled_from([1, 2, 3, 5, 17]), min_size=0, max_size=2))
    n_in = draw(st.sampled_from([1, 3, 17, 40]))
    n_out = draw(st.sampled_from([1, 3, 17, 33]))  # empty sizes: test_empty_batches.py
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(SEEDS))
    ints = lambda shape: rng.integers(-8, 9, shape).astype(dtype)  # noqa: E731
    return ints((*lead, n_in)), ints((n_out, n_in)), ints((n_out,)), ints((*lead, n_out))


@given(prob=linear_problems(), with_bias=st.booleans())
def test_linear_fast_equals_reference_exactly(prob, with_bias):
    x, w, b, g = prob
    b = b if with_bias else None
    # small integers: every partial sum is exact, so the GEMM must agree bit for bit
    levels = ["ref", *GEMM_LEVELS]
    assert_agree(lambda: ops.linear(x, w, b), levels=levels)
    assert_agree(lambda: ops.linear_backward(g, x, w, b), levels=levels)
    np.testing.assert_array_equal(ops.linear(x, w, b), x @ w.T + (0 if b is None else b))


# --------------------------------------------------------------------------- elementwise


@given(data=nc_arrays(min_n=1))
def test_elementwise_ops_are_thread_count_independent(data):
    x, rng = data
    g = rng.standard_normal(x.shape).astype(x.dtype)
    for f in (lambda: ops.relu(x), lambda: ops.leaky_relu_backward(g, x, 0.2),
              lambda: ops.sigmoid_backward(g, x), lambda: ops.tanh(x),
              lambda: ops.dropout(x, 0.4, seed=3)):
        assert_agree(f, levels=(BEST,))
