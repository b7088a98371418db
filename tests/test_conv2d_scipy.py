"""Single-channel conv2d against scipy.signal, memory layouts, and NaN/Inf propagation."""
import numpy as np
import pytest
from scipy import signal

from cnncore import ops
from helpers import GRAD_NAMES, pair

ALGORITHMS = ["reference", "im2col", "auto"]

# (input H, W), (kernel kH, kW); odd kernels are usable with "same".
SHAPES = [((7, 9), (3, 3)), ((5, 11), (1, 5)), ((10, 6), (5, 3)), ((13, 13), (3, 1)),
          ((6, 7), (2, 4)), ((9, 5), (4, 2)), ((3, 3), (3, 3)), ((1, 8), (1, 2))]


def _scipy(x2d, w2d, mode, flip):
    fn = signal.convolve2d if flip else signal.correlate2d
    return fn(x2d, w2d, mode=mode)


# "same" with an even kernel: true convolution (flip) centres it as scipy does; cross-
# correlation as torch does, one pixel later than scipy.signal.correlate2d (tested below).
CASES = [(flip, mode, x_hw, k_hw) for flip in (True, False) for mode in ["full", "same", "valid"]
         for x_hw, k_hw in SHAPES if flip or mode != "same" or (k_hw[0] % 2 and k_hw[1] % 2)]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("flip, mode, x_hw, k_hw", CASES)
def test_single_channel_matches_scipy_float64(rng, algorithm, flip, mode, x_hw, k_hw):
    x = rng.standard_normal(x_hw)
    w = rng.standard_normal(k_hw)
    got = ops.conv2d(x[None, None], w[None, None], padding=mode, flip=flip, algorithm=algorithm)
    want = _scipy(x, w, mode, flip)
    assert got.shape == (1, 1) + want.shape
    np.testing.assert_allclose(got[0, 0], want, rtol=1e-12, atol=1e-13 * w.size)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("flip", [True, False])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("x_hw, k_hw", [s for s in SHAPES if s[1][0] % 2 and s[1][1] % 2])
def test_single_channel_matches_scipy_float32(rng, algorithm, flip, mode, x_hw, k_hw):
    x = rng.standard_normal(x_hw).astype(np.float32)
    w = rng.standard_normal(k_hw).astype(np.float32)
    got = ops.conv2d(x[None, None], w[None, None], padding=mode, flip=flip, algorithm=algorithm)
    assert got.dtype == np.float32
    want = _scipy(x.astype(np.float64), w.astype(np.float64), mode, flip)
    np.testing.assert_allclose(got[0, 0], want, rtol=1e-5, atol=1e-5 * w.size)


def test_same_with_even_kernel_is_scipy_full_cropped_with_odd_pixel_at_end(rng):
    """Documented 'same' for even kernels in cross-correlation (torch's rule): pad (k-1)//2
    before, the rest after."""
    x, w = rng.standard_normal((6, 7)), rng.standard_normal((4, 2))
    full = signal.correlate2d(x, w, mode="full")
    # full is padded by k-1 on both sides; 'same' uses (k-1)//2 before.
    top, left = (4 - 1) - (4 - 1) // 2, (2 - 1) - (2 - 1) // 2
    want = full[top:top + 6, left:left + 7]
    got = ops.conv2d(x[None, None], w[None, None], padding="same")
    np.testing.assert_allclose(got[0, 0], want, rtol=1e-12, atol=1e-12)
    torch = pytest.importorskip("torch")
    with pytest.warns(UserWarning, match="even kernel lengths"):
        t = torch.nn.functional.conv2d(torch.tensor(x[None, None]),
                                       torch.tensor(w[None, None]), padding="same")
    np.testing.assert_allclose(got[0, 0], t[0, 0].numpy(), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- memory layouts


def _layout_variants(rng, shape):
    """(description, array) pairs that hold the same values as a contiguous array of shape."""
    n, c, h, w = shape
    big = rng.standard_normal((n, c, 2 * h + 1, 3 * w))
    sliced = big[:, :, 1::2, ::3]
    transposed = np.ascontiguousarray(rng.standard_normal((n, c, w, h))).transpose(0, 1, 3, 2)
    fortran = np.asfortranarray(rng.standard_normal(shape))
    reversed_ = rng.standard_normal(shape)[:, :, ::-1, ::-1]
    channels_last = np.ascontiguousarray(rng.standard_normal((n, h, w, c))).transpose(0, 3, 1, 2)
    return [("sliced", sliced), ("transposed", transposed), ("fortran", fortran),
            ("reversed", reversed_), ("channels_last", channels_last)]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_non_contiguous_inputs_match_contiguous_copies(rng, algorithm, dtype):
    # The docs say such arrays are copied to C order, so the results must be bit-identical.
    kw = dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2, flip=True,
              padding_mode="reflect", algorithm=algorithm)
    xs = _layout_variants(rng, (2, 4, 7, 6))
    ws = _layout_variants(rng, (6, 2, 3, 3))
    bias = rng.standard_normal(12).astype(dtype)[::2]  # strided bias as well
    for (xname, x), (wname, w) in zip(xs, ws[::-1]):
        x, w, b = x.astype(dtype, copy=False), w.astype(dtype, copy=False), bias
        assert not (x.flags.c_contiguous and w.flags.c_contiguous)
        got = ops.conv2d(x, w, b, **kw)
        want = ops.conv2d(np.ascontiguousarray(x), np.ascontiguousarray(w),
                          np.ascontiguousarray(b), **kw)
        np.testing.assert_array_equal(got, want, err_msg=f"x {xname}, weight {wname}")

        g = np.asfortranarray(rng.standard_normal(want.shape).astype(dtype))
        got_b = ops.conv2d_backward(g, x, w, **kw)
        want_b = ops.conv2d_backward(np.ascontiguousarray(g), np.ascontiguousarray(x),
                                     np.ascontiguousarray(w), **kw)
        for name, gb, wb in zip(GRAD_NAMES, got_b, want_b):
            np.testing.assert_array_equal(gb, wb, err_msg=f"{name}: x {xname}, weight {wname}")


def test_inputs_are_not_modified(rng):
    x = np.asfortranarray(rng.standard_normal((1, 2, 5, 6)))
    w = rng.standard_normal((3, 2, 3, 3))[:, :, ::-1]
    x0, w0 = x.copy(), w.copy()
    y = ops.conv2d(x, w, padding="same", padding_mode="circular")
    ops.conv2d_backward(np.ones_like(y), x, w, padding="same", padding_mode="circular")
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(w, w0)


# --------------------------------------------------------------------------- NaN / Inf


def _top_left(padding):
    if isinstance(padding, int):
        return padding, padding
    # a 4-tuple is (left, right, top, bottom), last axis first as in F.pad
    return (padding[0], padding[1]) if len(padding) == 2 else (padding[2], padding[0])


def _covered(n_out, stride, before, dilation, k, pos):
    """Output indices whose window (in padded coordinates) reads input index pos."""
    return np.array([any(i * stride - before + a * dilation == pos for a in range(k))
                     for i in range(n_out)])


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("stride, dilation, padding, k, pos", [
    (1, 1, 1, (3, 3), (0, 0)),
    (1, 1, 0, (3, 2), (3, 4)),
    (2, 1, 2, (3, 3), (4, 3)),
    (1, 2, (1, 3), (3, 2), (2, 5)),
    (3, (1, 2), (2, 0, 0, 1), (4, 3), (6, 1)),
])
@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_non_finite_input_propagates_exactly_to_covering_windows(
        rng, algorithm, stride, dilation, padding, k, pos, value):
    x = rng.uniform(0.5, 2.0, size=(2, 2, 8, 7))
    w = rng.uniform(0.5, 2.0, size=(3, 2) + k) * rng.choice([-1.0, 1.0], size=(3, 2) + k)
    x[1, 0][pos] = value
    y = ops.conv2d(x, w, stride=stride, dilation=dilation, padding=padding, algorithm=algorithm)

    (sh, sw), (dh, dw) = pair(stride), pair(dilation)
    t, l = _top_left(padding)
    rows = _covered(y.shape[2], sh, t, dh, k[0], pos[0])
    cols = _covered(y.shape[3], sw, l, dw, k[1], pos[1])
    expected = np.zeros(y.shape, dtype=bool)
    expected[1] = (rows[:, None] & cols[None, :])[None]
    assert expected.any(), "test case must cover the non-finite pixel"
    np.testing.assert_array_equal(~np.isfinite(y), expected)
    if np.isnan(value):
        assert np.isnan(y[expected]).all()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_inf_in_circular_border_reaches_the_far_side(algorithm):
    x = np.ones((1, 1, 4, 5))
    x[0, 0, 0, 0] = np.inf
    w = np.ones((1, 1, 3, 3))
    y = ops.conv2d(x, w, padding="same", padding_mode="circular", algorithm=algorithm)
    expected = np.zeros((4, 5), dtype=bool)
    for i in (3, 0, 1):  # rows whose 3-window wraps around to row 0
        for j in (4, 0, 1):
            expected[i, j] = True
    np.testing.assert_array_equal(np.isposinf(y[0, 0]), expected)
    np.testing.assert_array_equal(y[0, 0][~expected], 9.0)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("padding", [0, 1, "full"])
def test_nan_in_weight_poisons_only_its_output_channel(rng, algorithm, padding):
    # y = sum w * xpad with xpad = np.pad(x) (docs): NaN * 0 is NaN, so the NaN weight
    # reaches every output pixel of its channel, border pixels included.
    x = rng.standard_normal((2, 3, 5, 5))
    w = rng.standard_normal((4, 3, 2, 2))
    w[2, 1, 0, 1] = np.nan
    y = ops.conv2d(x, w, padding=padding, algorithm=algorithm)
    assert np.isnan(y[:, 2]).all(), np.argwhere(~np.isnan(y[:, 2])).tolist()
    assert np.isfinite(np.delete(y, 2, axis=1)).all()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_nan_in_grad_out_reaches_what_its_window_touches(algorithm):
    # grad_weight[a, b] = sum g * xpad[...]: the NaN at output (0, 0) multiplies every tap,
    # the zero-padded ones too (NaN * 0 is NaN). grad_x gets it only inside the window.
    x = np.ones((1, 1, 3, 3))
    g = np.zeros((1, 1, 4, 4))
    g[0, 0, 0, 0] = np.nan
    gx, gw, gb = ops.conv2d_backward(g, x, np.ones((1, 1, 2, 2)), padding=1, algorithm=algorithm)
    assert np.isnan(gw).all(), gw.tolist()
    expected = np.zeros((3, 3), dtype=bool)
    expected[0, 0] = True  # window of output (0, 0) covers padded rows/cols -1..0
    np.testing.assert_array_equal(np.isnan(gx[0, 0]), expected)
    assert np.isnan(gb).all()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_opposite_infinities_in_one_window_give_nan(algorithm):
    x = np.zeros((1, 1, 1, 4))
    x[0, 0, 0, 1], x[0, 0, 0, 2] = np.inf, -np.inf
    y = ops.conv2d(x, np.ones((1, 1, 1, 2)), algorithm=algorithm)
    assert np.isposinf(y[0, 0, 0, 0]) and np.isnan(y[0, 0, 0, 1]) and np.isneginf(y[0, 0, 0, 2])
