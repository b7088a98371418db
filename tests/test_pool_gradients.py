"""Pooling backward twins: central finite differences, adjoint identities, indices.

* ``*_backward`` against central differences of L = sum(pool(x) * G) in float64
  (eps 1e-6, atol 1e-5, rtol 1e-3) for every kind, rank and the awkward options.
  Max-type pools get inputs without ties (a shuffled ramp with spacing 0.05), so the
  argmax does not move under the perturbation.
* The linear pools (average, adaptive average, weighted) satisfy
  <pool(x), g> = <x, pool_backward(g)> for random configurations.
* Max backward from the forward's indices equals the backward that recomputes them.
* Lp: a window of zeros has gradient 0 (finite), not NaN.
"""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from cnncore import ops
from helpers import SEEDS, assert_gradients_match


def _distinct(rng, shape, positive=False):
    """Values at least 0.05 apart (no ties, also in |x| when positive=False)."""
    n = int(np.prod(shape))
    mags = (rng.permutation(n) + 1) * 0.05
    signs = np.ones(n) if positive else rng.choice([-1.0, 1.0], n)
    return (mags * signs).reshape(shape)


# id: (op, x shape, positional args after x, keyword args, tie-free input)
CONFIGS = {
    "max1d": ("max_pool1d", (2, 2, 9), (3, 2, 1), {}, True),
    "max2d_dilated_ceil": ("max_pool2d", (1, 2, 7, 8), (3, 2, (2, 1)),
                           dict(dilation=(2, 1), ceil_mode=True), True),
    "max2d_overlap": ("max_pool2d", (2, 1, 6, 5), ((3, 2), 1, (1, 0, 1, 1)), {}, True),
    "max3d": ("max_pool3d", (1, 2, 4, 5, 4), (2, (1, 2, 2), (1, 0, 1)), {}, True),
    "avg1d_exclude": ("avg_pool1d", (2, 2, 9), (3, 2, 1),
                      dict(count_include_pad=False, ceil_mode=True), False),
    "avg2d": ("avg_pool2d", (1, 2, 7, 6), (3, 2, 1), {}, False),
    "avg2d_override": ("avg_pool2d", (1, 1, 6, 7), ((2, 3), (1, 2)), dict(divisor_override=4),
                       False),
    "avg3d_ceil": ("avg_pool3d", (1, 1, 5, 4, 5), (2, 2, (1, 0, 1)), dict(ceil_mode=True),
                   False),
    "lp1": ("lp_pool2d", (1, 2, 6, 5), (1, 2, 1), {}, True),
    "lp2_padded": ("lp_pool2d", (1, 2, 6, 7), (2, 3, 2, 1), {}, False),
    "lp3_1d": ("lp_pool1d", (2, 2, 9), (3, 3, 2, 1, True), {}, False),
    "lp1_5_3d": ("lp_pool3d", (1, 1, 4, 5, 4), (1.5, 2, 1), {}, False),
    "lp_inf": ("lp_pool2d", (1, 2, 6, 6), (math.inf, 3, 2, 1), {}, True),
    "weighted1d": ("weighted_avg_pool1d", (2, 2, 9), (3, 2, 1), dict(sigma=0.8), False),
    "weighted2d_ceil": ("weighted_avg_pool2d", (1, 2, 7, 6), (3, 2, 1),
                        dict(ceil_mode=True), False),
    "weighted3d": ("weighted_avg_pool3d", (1, 1, 4, 5, 4), ((2, 3, 2), 1, (1, 1, 0)),
                   dict(sigma=(0.5, 1.0, 2.0)), False),
    "adaptive_avg2d": ("adaptive_avg_pool2d", (2, 2, 7, 5), ((3, 4),), {}, False),
    "adaptive_max1d": ("adaptive_max_pool1d", (2, 2, 7), (4,), {}, True),
    "adaptive_max3d": ("adaptive_max_pool3d", (1, 2, 4, 5, 3), ((2, 3, 2),), {}, True),
}
GLOBAL = {
    "global_avg": ("global_avg_pool2d", (2, 3, 4, 5), (), {}, False),
    "global_max": ("global_max_pool2d", (2, 3, 4, 5), (), {}, True),
}


def _check_finite_differences(rng, op, shape, args, kw, distinct):
    fwd, bwd = getattr(ops, op), getattr(ops, op + "_backward")
    x = _distinct(rng, shape) if distinct else rng.standard_normal(shape)
    G = rng.standard_normal(fwd(x, *args, **kw).shape)

    def loss():
        return float(np.sum(fwd(x, *args, **kw) * G))

    assert_gradients_match(loss, [x], [bwd(G, x, *args, **kw)], ["grad_x"], min_abs=1e-3)


@pytest.mark.parametrize("algorithm", ["reference", "direct"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_backward_matches_finite_differences(rng, name, algorithm):
    op, shape, args, kw, distinct = CONFIGS[name]
    _check_finite_differences(rng, op, shape, args, dict(kw, algorithm=algorithm), distinct)


@pytest.mark.parametrize("name", list(GLOBAL))
def test_global_backward_matches_finite_differences(rng, name):
    _check_finite_differences(rng, *GLOBAL[name])


# --------------------------------------------------------------------------- adjoint identity


@st.composite
def linear_pools(draw):
    nd = draw(st.integers(1, 3))
    kind = draw(st.sampled_from(["avg", "weighted_avg", "adaptive_avg"]))
    n, c = draw(st.integers(1, 2)), draw(st.sampled_from([1, 3, 17]))
    if kind == "adaptive_avg":
        sizes = [draw(st.integers(1, 7)) for _ in range(nd)]
        out = tuple(draw(st.integers(1, 8)) for _ in range(nd))
        return (n, c, *sizes), f"adaptive_avg_pool{nd}d", (out,), {}
    ks = [draw(st.integers(1, 4)) for _ in range(nd)]
    pads = [draw(st.integers(0, k // 2)) for k in ks]
    stride = [draw(st.integers(1, 3)) for _ in range(nd)]
    sizes = [draw(st.integers(max(1, k - 2 * p), k + 5)) for k, p in zip(ks, pads)]
    kw = dict(stride=tuple(stride), padding=tuple(pads), ceil_mode=draw(st.booleans()))
    if kind == "avg":
        kw["count_include_pad"] = draw(st.booleans())
        kw["divisor_override"] = draw(st.one_of(st.none(), st.integers(1, 5)))
        name = f"avg_pool{nd}d"
    else:
        kw["sigma"] = draw(st.one_of(st.none(), st.floats(0.2, 4.0)))
        name = f"weighted_avg_pool{nd}d"
    return (n, c, *sizes), name, (tuple(ks),), kw


@given(case=linear_pools(), seed=SEEDS,
       algorithm=st.sampled_from(["reference", "direct"]))
def test_adjoint_identity_of_linear_pools(case, seed, algorithm):
    shape, name, args, kw = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    y = getattr(ops, name)(x, *args, algorithm=algorithm, **kw)
    g = rng.standard_normal(y.shape)
    gx = getattr(ops, name + "_backward")(g, x, *args, algorithm=algorithm, **kw)
    lhs, rhs = float(np.sum(y * g)), float(np.sum(x * gx))
    assert math.isclose(lhs, rhs, rel_tol=1e-12, abs_tol=1e-12)
    # linear: pool(2x - 3z) = 2 pool(x) - 3 pool(z)
    z = rng.standard_normal(shape)
    np.testing.assert_allclose(getattr(ops, name)(2 * x - 3 * z, *args, **kw),
                               2 * y - 3 * getattr(ops, name)(z, *args, **kw),
                               rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- max from indices


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_backward_from_indices_equals_recomputed(rng, dtype, nd):
    x = rng.integers(-3, 4, (2, 3) + (7,) * nd).astype(dtype)  # many ties
    kw = dict(stride=2, padding=1, dilation=2, ceil_mode=True)
    y, idx = getattr(ops, f"max_pool{nd}d")(x, 3, return_indices=True, **kw)
    g = rng.standard_normal(y.shape).astype(dtype)
    bwd = getattr(ops, f"max_pool{nd}d_backward")
    np.testing.assert_array_equal(bwd(g, x, 3, indices=idx, **kw), bwd(g, x, 3, **kw))
    # each output's gradient lands on the position its index names
    flat = bwd(g, x, 3, indices=idx, **kw).reshape(2, 3, -1)
    want = np.zeros_like(flat)
    for n in range(2):
        for c in range(3):
            np.add.at(want[n, c], idx[n, c].ravel(), g[n, c].ravel())
    np.testing.assert_allclose(flat, want, rtol=1e-6)
    xa = x.reshape(2, 3, 7, -1)  # adaptive max pooling too
    yi, ii = ops.adaptive_max_pool2d(xa, (3, 2), True)
    gi = rng.standard_normal(yi.shape).astype(dtype)
    np.testing.assert_array_equal(ops.adaptive_max_pool2d_backward(gi, xa, (3, 2), indices=ii),
                                  ops.adaptive_max_pool2d_backward(gi, xa, (3, 2)))


# --------------------------------------------------------------------------- Lp special cases


@pytest.mark.parametrize("p", [1.0, 1.5, 2.0, 3.0, math.inf])
@pytest.mark.parametrize("algorithm", ["reference", "direct"])
def test_lp_zero_window_gradient_is_zero_and_finite(p, algorithm):
    x = np.zeros((1, 1, 4, 6))
    x[0, 0, 2:, 4:] = [[1.0, -2.0], [0.0, 3.0]]  # only the last 2x2 window is non-zero
    y = ops.lp_pool2d(x, p, 2, algorithm=algorithm)
    assert np.all(y[0, 0, :, :2] == 0) and np.all(y[0, 0, 0] == 0)
    g = np.arange(1.0, 1.0 + y.size).reshape(y.shape)
    gx = ops.lp_pool2d_backward(g, x, p, 2, algorithm=algorithm)
    assert np.all(np.isfinite(gx))
    assert np.all(gx[0, 0, :, :4] == 0) and np.all(gx[0, 0, :2] == 0)
    v = np.array([1.0, -2.0, 0.0, 3.0])
    yv = np.max(np.abs(v)) if math.isinf(p) else np.sum(np.abs(v) ** p) ** (1 / p)
    if math.isinf(p):
        want = np.array([0, 0, 0, 1.0])
    else:
        want = np.sign(v) * (np.abs(v) / yv) ** (p - 1)
    np.testing.assert_allclose(gx[0, 0, 2:, 4:].ravel(), g[0, 0, 1, 2] * want, rtol=1e-12)
