"""Mathematical properties of the pooling ops.

* Translation: with stride 1 and circular boundary (``np.pad(..., "wrap")`` before
  pooling) every windowed pool commutes exactly with ``np.roll``; max pooling with
  stride = kernel is invariant to moving an isolated maximum inside its window; shifting
  the input by the stride shifts the output by one position.
* Lp: p = 1 on non-negative input is sum pooling; max|x| <= Lp <= K^(1/p) max|x|, so large
  p approaches max pooling; p = inf is max pooling of |x|.
* Global pooling equals adaptive pooling to 1 and the NumPy mean/max; adaptive pooling
  with a dividing output size equals ordinary pooling with kernel = stride = in/out.
* Weighted average pooling is the depthwise convolution with the normalised Gaussian
  (computed here in NumPy), keeps constants away from padding, tends to the plain
  average as sigma grows and to the centre tap as sigma shrinks.
* Max indices name the positions of the maxima.
"""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from cnncore import ops
from helpers import SEEDS


def _call(kind, nd, x, k, **kw):
    if kind == "lp":
        return getattr(ops, f"lp_pool{nd}d")(x, kw.pop("p", 2.0), k, **kw)
    return getattr(ops, f"{kind}_pool{nd}d")(x, k, **kw)


def _wrap(x, spans):
    """Circular padding so that a stride-1 pool keeps the spatial size."""
    pads = [(0, 0), (0, 0)] + [((s - 1) // 2, s - 1 - (s - 1) // 2) for s in spans]
    return np.pad(x, pads, mode="wrap")


@st.composite
def equivariance_cases(draw):
    nd = draw(st.integers(1, 3))
    kind = draw(st.sampled_from(["max", "avg", "lp", "weighted_avg"]))
    k = [draw(st.integers(1, 3 if nd == 3 else 4)) for _ in range(nd)]
    d = [draw(st.integers(1, 2)) if kind == "max" else 1 for _ in range(nd)]
    spans = [di * (ki - 1) + 1 for ki, di in zip(k, d)]
    sizes = [draw(st.integers(1, 6 if nd == 3 else 9)) for _ in range(nd)]
    shift = tuple(draw(st.integers(-10, 10)) for _ in range(nd))
    kw = dict(stride=1)
    if kind == "max":
        kw["dilation"] = tuple(d)
    if kind == "lp":
        kw["p"] = draw(st.sampled_from([1.0, 2.0, 3.0, math.inf]))
    return nd, kind, tuple(k), spans, (draw(st.integers(1, 2)), draw(st.sampled_from([1, 3])),
                                       *sizes), shift, kw


@given(case=equivariance_cases(), seed=SEEDS)
def test_stride1_pooling_commutes_with_circular_shifts(case, seed):
    nd, kind, k, spans, shape, shift, kw = case
    x = np.random.default_rng(seed).standard_normal(shape)
    axes = tuple(range(2, 2 + nd))
    y = _call(kind, nd, _wrap(x, spans), k, **dict(kw))
    assert y.shape == x.shape
    y_shifted = _call(kind, nd, _wrap(np.roll(x, shift, axes), spans), k, **dict(kw))
    np.testing.assert_array_equal(y_shifted, np.roll(y, shift, axes))


@given(seed=SEEDS, k=st.integers(2, 4), blocks=st.integers(1, 3), data=st.data())
def test_max_pool_is_invariant_to_moving_an_isolated_maximum_inside_its_window(seed, k, blocks,
                                                                              data):
    rng = np.random.default_rng(seed)
    h, w = k * blocks, k * (blocks + 1)
    bg = rng.uniform(-1, 1, (1, 2, h, w))
    bi, bj = data.draw(st.integers(0, blocks - 1)), data.draw(st.integers(0, blocks))
    p1 = (bi * k + data.draw(st.integers(0, k - 1)), bj * k + data.draw(st.integers(0, k - 1)))
    p2 = (bi * k + data.draw(st.integers(0, k - 1)), bj * k + data.draw(st.integers(0, k - 1)))
    x1, x2 = bg.copy(), bg.copy()
    x1[0, 1][p1] = 5.0
    x2[0, 1][p2] = 5.0
    y1, i1 = ops.max_pool2d(x1, k, return_indices=True)
    y2, i2 = ops.max_pool2d(x2, k, return_indices=True)
    np.testing.assert_array_equal(y1, y2)
    assert y1[0, 1, bi, bj] == 5.0
    assert i1[0, 1, bi, bj] == p1[0] * w + p1[1] and i2[0, 1, bi, bj] == p2[0] * w + p2[1]
    # moving it into the next window moves the maximum's output
    x3 = bg.copy()
    x3[0, 1][(p1[0], (p1[1] + k) % w)] = 5.0
    assert ops.max_pool2d(x3, k)[0, 1, bi, ((p1[1] + k) % w) // k] == 5.0


@pytest.mark.parametrize("kind", ["max", "avg", "lp", "weighted_avg"])
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_shifting_the_input_by_the_stride_shifts_the_output_by_one(rng, kind, nd):
    k, s = 3, 2
    x = rng.standard_normal((2, 3) + (9,) * nd)
    y = _call(kind, nd, x, k, stride=s)
    for a in range(nd):
        cut = [slice(None)] * (nd + 2)
        cut[2 + a] = slice(s, None)
        ys = _call(kind, nd, x[tuple(cut)], k, stride=s)
        drop = [slice(None)] * (nd + 2)
        drop[2 + a] = slice(1, None)
        np.testing.assert_array_equal(ys, y[tuple(drop)])


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_lp1_on_nonnegative_input_is_sum_pooling(rng, nd):
    x = np.abs(rng.standard_normal((2, 3) + (7,) * nd))
    kw = dict(stride=2, padding=1, ceil_mode=True)
    sums = getattr(ops, f"avg_pool{nd}d")(x, 3, divisor_override=1, **kw)
    np.testing.assert_allclose(getattr(ops, f"lp_pool{nd}d")(x, 1, 3, **kw), sums, rtol=1e-14)
    # away from padding and partial windows: K * the average
    np.testing.assert_allclose(getattr(ops, f"lp_pool{nd}d")(x, 1, 3),
                               3**nd * getattr(ops, f"avg_pool{nd}d")(x, 3), rtol=1e-13)
    # and L1 ignores signs
    np.testing.assert_array_equal(getattr(ops, f"lp_pool{nd}d")(-x, 1, 3, **kw),
                                  getattr(ops, f"lp_pool{nd}d")(x, 1, 3, **kw))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_p_approaches_max_pooling(rng, dtype):
    x = (10 * rng.standard_normal((2, 3, 8, 9))).astype(dtype)
    mx = ops.max_pool2d(np.abs(x), 3, 2, 1)
    np.testing.assert_array_equal(ops.lp_pool2d(x, math.inf, 3, 2, 1), mx)
    gaps = []
    for p in (2.0, 8.0, 50.0, 500.0):
        lp = ops.lp_pool2d(x, p, 3, 2, 1)
        assert np.all(np.isfinite(lp))  # no overflow even for p = 500 in float32
        rt = 1e-5 if dtype == np.float32 else 1e-12
        assert np.all(lp >= mx * (1 - rt))
        assert np.all(lp <= mx * 9 ** (1 / p) * (1 + rt))
        gaps.append(float(np.max(lp / mx - 1)))
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] < 0.005


def test_global_pools_equal_adaptive_one_and_numpy(rng):
    x = rng.standard_normal((3, 4, 5, 7))
    ga, gm = ops.global_avg_pool2d(x), ops.global_max_pool2d(x)
    assert ga.shape == gm.shape == (3, 4, 1, 1)
    np.testing.assert_array_equal(ga, ops.adaptive_avg_pool2d(x, 1))
    np.testing.assert_array_equal(gm, ops.adaptive_max_pool2d(x, (1, 1)))
    np.testing.assert_allclose(ga[..., 0, 0], x.mean(axis=(2, 3)), rtol=1e-13)
    np.testing.assert_array_equal(gm[..., 0, 0], x.max(axis=(2, 3)))
    g = rng.standard_normal((3, 4, 1, 1))
    np.testing.assert_allclose(ops.global_avg_pool2d_backward(g, x),
                               np.broadcast_to(g / 35, x.shape), rtol=1e-13)
    gx = ops.global_max_pool2d_backward(g, x)
    assert np.count_nonzero(gx) == 12
    np.testing.assert_array_equal(gx.sum(axis=(2, 3)), g[..., 0, 0])


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_adaptive_with_dividing_size_equals_ordinary_pooling(rng, nd):
    x = rng.standard_normal((2, 3) + (6,) * nd)
    for out, k in ((3, 2), (2, 3), (6, 1), (1, 6)):
        np.testing.assert_allclose(getattr(ops, f"adaptive_avg_pool{nd}d")(x, out),
                                   getattr(ops, f"avg_pool{nd}d")(x, k), rtol=1e-14)
        ya, ia = getattr(ops, f"adaptive_max_pool{nd}d")(x, out, True)
        ym, im = getattr(ops, f"max_pool{nd}d")(x, k, return_indices=True)
        np.testing.assert_array_equal(ya, ym)
        np.testing.assert_array_equal(ia, im)
    np.testing.assert_array_equal(getattr(ops, f"adaptive_max_pool{nd}d")(x, 6), x)
    # None keeps an axis
    y = getattr(ops, f"adaptive_avg_pool{nd}d")(x, (None,) * (nd - 1) + (2,))
    assert y.shape == (2, 3) + (6,) * (nd - 1) + (2,)


def test_adaptive_windows_overlap_like_torch():
    # 5 inputs -> 3 outputs: windows [0, 2), [1, 4), [3, 5)
    x = np.array([[[1.0, 2.0, 4.0, 8.0, 16.0]]])
    np.testing.assert_allclose(ops.adaptive_avg_pool1d(x, 3)[0, 0], [1.5, 14 / 3, 12.0])
    # 2 inputs -> 5 outputs (upsampling): windows [0,1), [0,1), [0,2), [1,2), [1,2)
    y, i = ops.adaptive_max_pool1d(np.array([[[3.0, 1.0]]]), 5, True)
    np.testing.assert_array_equal(y[0, 0], [3, 3, 3, 1, 1])
    np.testing.assert_array_equal(i[0, 0], [0, 0, 0, 1, 1])


def _gaussian(k, sigma):
    t = [np.arange(ki) - (ki - 1) / 2 for ki in k]
    grid = np.meshgrid(*t, indexing="ij")
    r2 = sum((g / s) ** 2 for g, s in zip(grid, sigma))
    w = np.exp(-0.5 * r2)
    return w / w.sum()


@pytest.mark.parametrize("k,sigma,stride,padding", [
    ((3, 3), None, 1, 1), ((5, 3), 1.3, 2, (2, 1)), ((2, 4), (0.5, 2.0), (1, 3), (0, 2, 1, 0)),
])
def test_weighted_avg_is_a_depthwise_gaussian_convolution(rng, k, sigma, stride, padding):
    x = rng.standard_normal((2, 3, 9, 10))
    sig = [ki / 4 for ki in k] if sigma is None else (
        sigma if isinstance(sigma, tuple) else (sigma, sigma))
    w = np.broadcast_to(_gaussian(k, sig), (3, 1) + k).copy()
    want = ops.conv2d(x, w, stride=stride, padding=padding, groups=3)
    got = ops.weighted_avg_pool2d(x, k, stride, padding, sigma=sigma)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_weighted_avg_limits_and_constants(rng):
    x = rng.standard_normal((1, 2, 8, 9))
    # weights sum to 1: a constant stays constant where no padding is read
    c = np.full((1, 1, 7, 7), 2.5)
    np.testing.assert_allclose(ops.weighted_avg_pool2d(c, 3, 1, sigma=0.6), 2.5, rtol=1e-14)
    # padding taps read zeros and keep their weight: a corner loses the weight of 5 taps
    corner = ops.weighted_avg_pool2d(c, 3, 1, 1, sigma=0.6)[0, 0, 0, 0]
    g = _gaussian((3, 3), (0.6, 0.6))
    assert math.isclose(corner, 2.5 * g[1:, 1:].sum(), rel_tol=1e-13)
    # huge sigma: the plain average (padding counted); tiny sigma: the centre tap
    np.testing.assert_allclose(ops.weighted_avg_pool2d(x, 3, 2, 1, sigma=1e4),
                               ops.avg_pool2d(x, 3, 2, 1), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ops.weighted_avg_pool2d(x, 3, 2, 1, sigma=0.05),
                               x[:, :, ::2, ::2], rtol=1e-12, atol=1e-12)


def test_avg_pool_divisor_rules():
    c = np.ones((1, 1, 4, 4))
    inc = ops.avg_pool2d(c, 3, 1, 1)
    exc = ops.avg_pool2d(c, 3, 1, 1, count_include_pad=False)
    assert inc[0, 0, 0, 0] == 4 / 9 and inc[0, 0, 0, 1] == 6 / 9 and inc[0, 0, 1, 1] == 1
    np.testing.assert_array_equal(exc, np.ones_like(exc))
    np.testing.assert_array_equal(ops.avg_pool2d(c, 3, 1, 1, divisor_override=2)[0, 0, 0, :2],
                                  [2.0, 3.0])
    # ceil mode: the partial last window (start 4 of 5) counts only up to in + padding
    y = ops.avg_pool1d(np.ones((1, 1, 5)), 2, 2, 0, ceil_mode=True)
    np.testing.assert_array_equal(y, [[[1.0, 1.0, 1.0]]])


def test_ceil_mode_last_window_must_start_inside():
    # k=2, s=2, pad 1 on 5 inputs: padded 7, floor gives 3; ceil would give 4, but the
    # 4th window would start at 6 >= 5 + 1 (past the input and the left padding)
    x = np.arange(5.0).reshape(1, 1, 5)
    assert ops.max_pool1d(x, 2, 2, 1).shape == (1, 1, 3)
    assert ops.max_pool1d(x, 2, 2, 1, ceil_mode=True).shape == (1, 1, 3)
    # ceil mode adds the partial window that starts inside: 7 inputs, k=2, s=2
    x7 = np.arange(7.0).reshape(1, 1, 7)
    assert ops.max_pool1d(x7, 2, 2).shape == (1, 1, 3)
    np.testing.assert_array_equal(ops.max_pool1d(x7, 2, 2, ceil_mode=True), [[[1, 3, 5, 6]]])
    assert ops.pool_output_shape((1, 1, 7), "max", 2, 2, ceil_mode=True) == (1, 1, 4)
    assert ops.pool_output_shape((2, 3, 7, 9), "avg", output_size=(None, 2)) == (2, 3, 7, 2)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_indices_name_the_maxima(rng, nd):
    x = rng.integers(-4, 5, (2, 3) + (7,) * nd).astype(np.float32)
    y, idx = getattr(ops, f"max_pool{nd}d")(x, 3, 2, 1, dilation=1, ceil_mode=True,
                                            return_indices=True)
    assert idx.dtype == np.int64 and idx.shape == y.shape
    flat = x.reshape(2, 3, -1)
    np.testing.assert_array_equal(np.take_along_axis(flat, idx.reshape(2, 3, -1), 2),
                                  y.reshape(2, 3, -1))


def test_max_pool_nan_and_infinities():
    x = np.array([[[1.0, np.nan, 3.0, -np.inf, -np.inf, 2.0, np.inf, 0.0]]])
    for algo in ("reference", "direct"):
        y, i = ops.max_pool1d(x, 2, return_indices=True, algorithm=algo)
        assert np.isnan(y[0, 0, 0]) and i[0, 0, 0] == 1  # NaN wins
        assert y[0, 0, 1] == 3.0 and y[0, 0, 2] == 2.0 and y[0, 0, 3] == np.inf
        y, i = ops.max_pool1d(x[..., 3:5], 2, return_indices=True, algorithm=algo)
        assert y[0, 0, 0] == -np.inf and i[0, 0, 0] == 0  # all -inf: the first tap
    # a dilated window that only reads padding: -inf, index -1, no gradient
    x1 = np.array([[[5.0]]])
    y, i = ops.max_pool1d(x1, 2, 1, 2, dilation=3, return_indices=True)
    assert y.shape == (1, 1, 2) and np.all(y == -np.inf) and np.all(i == -1)
    np.testing.assert_array_equal(ops.max_pool1d_backward(np.ones((1, 1, 2)), x1, 2, 1, 2,
                                                          dilation=3), [[[0.0]]])
