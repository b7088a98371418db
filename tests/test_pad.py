"""ops.pad against numpy.pad, its adjoint, and conv with padding_mode='symmetric'."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnncore import ops
from helpers import NP_PAD_MODE

MODES = list(NP_PAD_MODE)


@st.composite
def pad_cases(draw):
    nd = draw(st.integers(1, 3))
    size = [draw(st.integers(1, 6)) for _ in range(nd)]
    mode = draw(st.sampled_from(MODES))
    pairs = []
    for s in size:
        limit = {"reflect": s - 1, "symmetric": s}.get(mode, 2 * s + 1)
        pairs.append([draw(st.integers(0, limit)), draw(st.integers(0, limit))])
    # listed last axis first, as torch's F.pad (and so cnncore) takes them; sometimes only
    # the last axes
    keep = draw(st.integers(1, nd))
    pads = [p for pair in pairs[::-1][:keep] for p in pair]
    shape = (draw(st.integers(1, 2)), draw(st.sampled_from([1, 3])), *size)   # batch 0: below
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return shape, pads, mode, dtype


def np_pad(x, pads, mode, value=0.0):
    """np.pad with cnncore's (torch's) order: before/after pairs, last axis first."""
    pairs = [(pads[2 * i], pads[2 * i + 1]) for i in range(len(pads) // 2)][::-1]
    width = [(0, 0)] * (x.ndim - len(pairs)) + pairs
    if mode == "zeros":
        return np.pad(x, width, mode="constant", constant_values=value)
    return np.pad(x, width, mode=NP_PAD_MODE[mode])


@given(pad_cases())
def test_pad_equals_numpy_pad(case):
    shape, pads, mode, dtype = case
    x = np.random.default_rng(0).integers(-8, 9, shape).astype(dtype)
    y = ops.pad(x, pads, mode)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, np_pad(x, pads, mode))


@given(pad_cases())
def test_pad_backward_is_the_adjoint(case):
    shape, pads, mode, _ = case
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape)
    y = ops.pad(x, pads, mode)
    g = rng.standard_normal(y.shape)
    gx = ops.pad_backward(g, x, pads, mode)
    assert gx.shape == x.shape
    np.testing.assert_allclose(np.vdot(y, g), np.vdot(x, gx), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_pad_empty_batch(mode, nd):
    """Batch 0 in every mode and rank: the strategies above draw batch >= 1."""
    x = np.zeros((0, 3) + (4,) * nd)
    pads = (1, 2) * nd
    y = ops.pad(x, pads, mode)
    assert y.shape == np_pad(x, pads, mode).shape == (0, 3) + (7,) * nd
    gx = ops.pad_backward(np.zeros(y.shape), x, pads, mode)
    assert gx.shape == x.shape and gx.dtype == x.dtype


def test_pad_backward_counts_copies():
    # 1-D replicate: the edge element is copied pad+1 times, so its gradient is pad+1.
    x = np.arange(4.0).reshape(1, 1, 4)
    g = ops.pad_backward(np.ones((1, 1, 9)), x, (3, 2), "replicate")
    np.testing.assert_array_equal(g[0, 0], [4, 1, 1, 3])


def test_constant_value_and_int_pad():
    x = np.ones((1, 2, 2, 3), np.float32)
    y = ops.pad(x, 1, "constant", value=-2.5)
    assert y.shape == (1, 2, 4, 5)
    assert y[0, 0, 0, 0] == -2.5 and y[0, 1, 1, 1] == 1


def test_conv_symmetric_mode_equals_conv_on_numpy_padded_input():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 7, 6))
    w = rng.standard_normal((4, 3, 3, 4))
    for algorithm in ("reference", "im2col"):
        # (left, right, top, bottom), as F.pad lists them
        y = ops.conv2d(x, w, padding=(3, 0, 2, 1), padding_mode="symmetric", algorithm=algorithm)
        xp = np.pad(x, [(0, 0), (0, 0), (2, 1), (3, 0)], mode="symmetric")
        np.testing.assert_allclose(y, ops.conv2d(xp, w), rtol=1e-12, atol=1e-12)
        g = rng.standard_normal(y.shape)
        gx, gw, _ = ops.conv2d_backward(g, x, w, padding=(3, 0, 2, 1), padding_mode="symmetric",
                                        algorithm=algorithm)
        gxp, gw_ref, _ = ops.conv2d_backward(g, xp, w)
        np.testing.assert_allclose(gw, gw_ref, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(gx, ops.pad_backward(gxp, x, (3, 0, 2, 1), "symmetric"),
                                   rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kwargs, exc, pattern", [
    (dict(pad=(1, 1, 1)), ValueError, r"pad must be an integer or before/after pairs for up "
                                      r"to x's 2 spatial axes, last axis first"),
    (dict(pad=(1,) * 6), ValueError, r"pad must be an integer or before/after pairs"),
    (dict(pad=-1), ValueError, r"pad must be non-negative"),
    (dict(pad=(3, 0, 0, 0), mode="reflect"), ValueError, r"reflect padding must be smaller"),
    (dict(pad=(4, 0, 0, 0), mode="symmetric"), ValueError, r"symmetric padding must be at most"),
    (dict(pad=1, mode="mirror"), ValueError, r"mode must be one of"),
    (dict(pad=1, mode=3), TypeError, r"mode must be a string"),
    (dict(pad=1.5), TypeError, r"pad must be an integer"),
    (dict(pad=1, mode="reflect", value=1.0), ValueError, r"value only applies"),
])
def test_pad_rejects_bad_arguments(kwargs, exc, pattern):
    x = np.zeros((1, 1, 3, 3))
    with pytest.raises(exc, match=pattern):
        ops.pad(x, **kwargs)
    assert ops.pad(x, 1).shape == (1, 1, 5, 5)  # still alive and working


def test_pad_rejects_bad_arrays():
    with pytest.raises(TypeError, match="float32 or float64"):
        ops.pad(np.zeros((1, 1, 3), np.int64), 1)
    with pytest.raises(ValueError, match="3, 4 or 5 dimensions"):
        ops.pad(np.zeros((3, 3)), 1)
    with pytest.raises(ValueError, match="grad_out must have the forward output's shape"):
        ops.pad_backward(np.zeros((1, 1, 4)), np.zeros((1, 1, 3)), 1)
    with pytest.raises(TypeError, match="grad_out has dtype"):
        ops.pad_backward(np.zeros((1, 1, 5), np.float32), np.zeros((1, 1, 3)), 1)


def test_every_padding_tuple_lists_the_last_axis_first():
    """One convention: ops.pad, F.pad, convolution and pooling take before/after pairs last
    axis first, as torch.nn.functional.pad; torch's F.pad agrees."""
    torch = pytest.importorskip("torch")
    import cnncore as cc
    x = np.random.default_rng(0).standard_normal((1, 2, 4, 5))
    want = torch.nn.functional.pad(torch.tensor(x), (1, 2, 3, 0)).numpy()
    np.testing.assert_array_equal(ops.pad(x, (1, 2, 3, 0)), want)
    np.testing.assert_array_equal(cc.functional.pad(cc.tensor(x), (1, 2, 3, 0)).data, want)
    np.testing.assert_array_equal(ops.pad(x, (1, 2)), torch.nn.functional.pad(
        torch.tensor(x), (1, 2)).numpy())                      # only the last axis
    w = np.ones((1, 2, 3, 3))
    np.testing.assert_allclose(ops.conv2d(x, w, padding=(1, 2, 3, 0)), ops.conv2d(want, w),
                               rtol=1e-12)
    y = ops.max_pool2d(x, 2, padding=(1, 1, 0, 0))            # W padded, H not
    assert y.shape == (1, 2, 2, 3)
