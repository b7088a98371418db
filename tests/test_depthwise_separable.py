"""Depthwise convolution on its direct kernel, depthwise-separable convolution,
and parameter counting."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnncore import ops
from helpers import assert_gradients_match


@st.composite
def depthwise_cases(draw):
    c = draw(st.sampled_from([1, 3, 17]))
    m = draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular", "symmetric"]))
    h = draw(st.integers(dilation[0] * (kh - 1) + 1, 13))
    w = draw(st.integers(dilation[1] * (kw - 1) + 1, 13))
    limit = {"reflect": min(h, w) - 1, "symmetric": min(h, w)}.get(mode, 3)
    padding = draw(st.one_of(
        st.tuples(*[st.integers(0, min(limit, 3))] * 4),
        st.sampled_from(["valid", "same"] if mode in ("reflect", "symmetric") else
                        ["valid", "same", "full"])))
    if isinstance(padding, str) and mode in ("reflect", "symmetric"):
        # 'same' pads at most about half the dilated kernel; keep it legal.
        need = max(dilation[0] * (kh - 1), dilation[1] * (kw - 1))
        if need >= min(h, w):
            padding = "valid"
    n = draw(st.integers(1, 2))  # batch 0: test_empty_batches.py
    return dict(x=(n, c, h, w), w=(c * m, 1, kh, kw),
                kw=dict(stride=stride, dilation=dilation, padding=padding, padding_mode=mode,
                        groups=c, flip=draw(st.booleans())))


@given(depthwise_cases())
def test_direct_equals_reference_exactly(case):
    rng = np.random.default_rng(0)
    x = rng.integers(-8, 9, case["x"]).astype(np.float32)
    w = rng.integers(-8, 9, case["w"]).astype(np.float32)
    b = rng.integers(-8, 9, case["w"][0]).astype(np.float32)
    kw = case["kw"]
    ref = ops.conv2d(x, w, b, algorithm="reference", **kw)
    np.testing.assert_array_equal(ops.conv2d(x, w, b, algorithm="direct", **kw), ref)
    np.testing.assert_array_equal(ops.conv2d(x, w, b, **kw), ref)  # auto
    g = rng.integers(-8, 9, ref.shape).astype(np.float32)
    for a, r in zip(ops.conv2d_backward(g, x, w, algorithm="direct", **kw),
                    ops.conv2d_backward(g, x, w, algorithm="reference", **kw)):
        np.testing.assert_array_equal(a, r)


def test_direct_float64_and_nan_propagation_match_reference():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 7, 8))
    w = rng.standard_normal((8, 1, 3, 3))
    w[3, 0, 0, 0] = np.nan
    kw = dict(groups=4, padding=1)
    ref = ops.conv2d(x, w, algorithm="reference", **kw)
    got = ops.conv2d(x, w, algorithm="direct", **kw)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)  # NaNs compare equal
    assert np.isnan(got[:, 3]).all() and not np.isnan(got[:, 2]).any()


def test_direct_serves_strides_and_rejects_3d_non_depthwise():
    x, w = np.zeros((1, 4, 3, 5, 5)), np.zeros((4, 2, 2, 3, 3))
    with pytest.raises(ValueError, match=r"algorithm='direct' cannot serve .* depthwise .* in 3-D"):
        ops.conv3d(x, w, groups=2, algorithm="direct")
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 4, 9, 11)), rng.standard_normal((4, 2, 3, 3))
    for stride in (1, 2, (2, 3)):
        np.testing.assert_allclose(ops.conv2d(x, w, groups=2, stride=stride, padding=1, algorithm="direct"),
                                   ops.conv2d(x, w, groups=2, stride=stride, padding=1,
                                              algorithm="reference"), rtol=1e-12, atol=1e-12)


SEP_KW = [dict(), dict(stride=2, padding=1), dict(padding="same", padding_mode="reflect", dilation=2)]


@pytest.mark.parametrize("kw", SEP_KW)
@pytest.mark.parametrize("multiplier", [1, 2])
def test_separable_equals_depthwise_then_pointwise(kw, multiplier):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 9, 8))
    dw = rng.standard_normal((3 * multiplier, 1, 3, 3))
    pw = rng.standard_normal((5, 3 * multiplier, 1, 1))
    b = rng.standard_normal(5)
    mid = ops.conv2d(x, dw, groups=3, **kw)
    want = ops.conv2d(mid, pw, b)
    got = ops.separable_conv2d(x, dw, pw, b, **kw)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(got.shape)
    gx, gdw, gpw, gb = ops.separable_conv2d_backward(g, x, dw, pw, **kw)
    gmid, gpw_ref, gb_ref = ops.conv2d_backward(g, mid, pw)
    gx_ref, gdw_ref, _ = ops.conv2d_backward(gmid, x, dw, groups=3, bias=False, **kw)
    for a, r in ((gx, gx_ref), (gdw, gdw_ref), (gpw, gpw_ref), (gb, gb_ref)):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-12)
    assert ops.separable_conv2d_backward(g, x, dw, pw, bias=False, **kw)[3] is None


def test_separable_finite_differences():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, 5, 4))
    dw = rng.standard_normal((4, 1, 2, 3))
    pw = rng.standard_normal((3, 4, 1, 1))
    b = rng.standard_normal(3)
    kw = dict(stride=(1, 2), padding=1, padding_mode="replicate")
    G = rng.standard_normal(ops.separable_conv2d(x, dw, pw, b, **kw).shape)
    grads = ops.separable_conv2d_backward(G, x, dw, pw, **kw)

    def loss():
        return np.sum(ops.separable_conv2d(x, dw, pw, b, **kw) * G)

    assert_gradients_match(loss, (x, dw, pw, b), grads,
                           ("grad_x", "grad_depthwise_weight", "grad_pointwise_weight", "grad_bias"),
                           min_abs=1e-3)


def test_separable_rejects_bad_weights():
    x = np.zeros((1, 3, 6, 6))
    with pytest.raises(ValueError, match=r"depthwise_weight must have shape \(C_in\*multiplier, 1"):
        ops.separable_conv2d(x, np.zeros((4, 1, 3, 3)), np.zeros((2, 4, 1, 1)))
    with pytest.raises(ValueError, match=r"pointwise_weight must have shape \(C_out, 6, 1"):
        ops.separable_conv2d(x, np.zeros((6, 1, 3, 3)), np.zeros((2, 6, 3, 1)))
    with pytest.raises(TypeError, match="pointwise_weight has dtype float32"):
        ops.separable_conv2d(x, np.zeros((3, 1, 3, 3)), np.zeros((2, 3, 1, 1), np.float32))


@pytest.mark.parametrize("c1, c2, k, g", [(3, 8, 3, 1), (16, 32, 5, 4), (12, 12, 3, 12), (1, 1, 1, 1)])
def test_param_count_formulas_match_real_weights(c1, c2, k, g):
    assert ops.conv_param_count(c1, c2, k, groups=g) == k * k * c1 * c2 // g
    w = np.zeros((c2, c1 // g, k, k))
    x = np.zeros((1, c1, k + 2, k + 2))
    ops.conv2d(x, w, groups=g)  # the weight shape the formula counts is accepted
    assert ops.conv_param_count(c1, c2, k, groups=g, bias=True) == w.size + c2
    assert ops.conv_param_count(c1, c2, k, separable=True) == k * k * c1 + c1 * c2
    dw, pw = np.zeros((c1 * 2, 1, k, k)), np.zeros((c2, c1 * 2, 1, 1))
    ops.separable_conv2d(x, dw, pw)
    assert ops.conv_param_count(c1, c2, k, separable=True, depth_multiplier=2) == dw.size + pw.size
    assert ops.conv_param_count(c1, c2, (k, 2, 3)) == k * 6 * c1 * c2


def test_param_count_rejects_bad_arguments():
    with pytest.raises(ValueError, match="groups=3 must divide"):
        ops.conv_param_count(4, 6, 3, groups=3)
    with pytest.raises(ValueError, match="in_channels must be a positive integer"):
        ops.conv_param_count(0, 6, 3)
    with pytest.raises(ValueError, match="groups does not apply"):
        ops.conv_param_count(4, 8, 3, groups=2, separable=True)
    with pytest.raises(TypeError, match="kernel_size must be an integer"):
        ops.conv_param_count(4, 8, 2.5)
