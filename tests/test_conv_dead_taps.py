"""Taps that read only zero padding (a 3x3 kernel on a 1x1 map) are dropped by the fast
paths (cpp/src/ops/conv.cpp, "taps that read only zero padding"): results equal the
reference's, NaN and Inf included, for every algorithm and pass."""
import numpy as np
import pytest

from cnncore import ops

CASES = [  # (input H, W), kernel, padding, dilation, stride, flip
    ((1, 1), 3, 1, 1, 1, False),
    ((1, 1), 3, 1, 1, 1, True),
    ((2, 1), 3, (1, 1), 1, 1, False),
    ((1, 3), 5, 2, 1, 1, True),
    ((2, 2), 3, 2, 2, 1, False),
    ((3, 3), 3, 1, 1, 2, False),
    ((1, 1), 3, (1, 2), 1, 1, False),
]


def grads(algorithm, gy, x, w, kw):
    return ops.conv2d_backward(gy, x, w, bias=True, algorithm=algorithm, **kw)


# direct serves stride 1 only (its refusal of other strides is tested elsewhere)
PAIRS = [(case, algo) for case in CASES for algo in ("auto", "im2col", "direct", "fft")
         if not (algo == "direct" and case[4] != 1)]


@pytest.mark.parametrize("case,algorithm", PAIRS)
def test_dropped_taps_match_the_reference(case, algorithm):
    hw, k, pad, dil, stride, flip = case
    rng = np.random.default_rng(0)
    x = rng.integers(-4, 5, (3, 5, *hw)).astype(np.float64)
    w = rng.integers(-4, 5, (4, 5, k, k)).astype(np.float64)
    kw = dict(padding=pad, dilation=dil, stride=stride, flip=flip)
    ref = ops.conv2d(x, w, algorithm="reference", **kw)
    np.testing.assert_allclose(ops.conv2d(x, w, algorithm=algorithm, **kw), ref, atol=1e-9)
    gy = rng.integers(-4, 5, ref.shape).astype(np.float64)
    for got, want in zip(grads(algorithm, gy, x, w, kw), grads("reference", gy, x, w, kw)):
        np.testing.assert_allclose(got, want, atol=1e-9)


@pytest.mark.parametrize("algorithm", ["auto", "im2col", "direct"])
def test_non_finite_values_at_dropped_taps_spread_like_the_reference(algorithm):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 1, 1))
    w = rng.standard_normal((4, 3, 3, 3))
    w[1, 2, 0, 0] = np.nan          # a corner tap: it reads only padding on a 1x1 map
    w[2, 0, 2, 1] = np.inf
    kw = dict(padding=1)
    ref = ops.conv2d(x, w, algorithm="reference", **kw)
    got = ops.conv2d(x, w, algorithm=algorithm, **kw)
    assert np.isnan(ref[:, 1]).all() and np.isnan(ref[:, 2]).all() and np.isfinite(ref[:, 0]).all()
    np.testing.assert_allclose(got, ref)  # NaNs compare equal
    gy = rng.standard_normal(ref.shape)
    gy[1, 3, 0, 0] = np.inf          # output channel 3: its dropped taps' gradient is inf * 0
    w_ok = np.nan_to_num(w, nan=0.5, posinf=0.5)
    want = grads("reference", gy, x, w_ok, kw)
    got = grads(algorithm, gy, x, w_ok, kw)
    assert np.isnan(want[1][3, :, 0, 0]).all() and np.isfinite(want[1][2]).all()
    for g, r in zip(got, want):
        np.testing.assert_allclose(g, r)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("algorithm", ["auto", "direct"])
@pytest.mark.parametrize("groups", [1, 2])
def test_non_finite_weights_on_small_maps_at_a_full_batch(dtype, algorithm, groups):
    # Batch 16 on 2x2 maps takes the small-map batch-reduce path, which skips the taps
    # that read padding; it finds the non-finite weight while packing and hands the
    # problem to a path that multiplies the padding as the reference does. In the
    # second group only, so that the first group's output is already written.
    rng = np.random.default_rng(2)
    x = rng.integers(-4, 5, (16, 4, 2, 2)).astype(dtype)
    w = rng.integers(-4, 5, (6, 4 // groups, 3, 3)).astype(dtype)
    w[5, 1, 0, 0] = np.nan
    w[4, 0, 2, 2] = np.inf
    ref = ops.conv2d(x, w, padding=1, groups=groups, algorithm="reference")
    got = ops.conv2d(x, w, padding=1, groups=groups, algorithm=algorithm)
    assert not np.isfinite(ref[:, 4:]).any() and np.isfinite(ref[:, :4]).all()
    np.testing.assert_array_equal(got, ref)
    w[:] = np.nan_to_num(w, nan=1.0, posinf=1.0)
    np.testing.assert_array_equal(ops.conv2d(x, w, padding=1, groups=groups, algorithm=algorithm),
                                  ops.conv2d(x, w, padding=1, groups=groups, algorithm="reference"))
