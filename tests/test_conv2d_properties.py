"""Mathematical properties of conv2d that hold whatever the implementation.

Adjointness of the backward pass, the bias gradient, commutativity of true
convolution, translation equivariance, grouped = per-group convolutions, and the
output-shape formula.
"""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

from cnncore import ops
from helpers import SEEDS, pair

MODES = ["zeros", "reflect", "replicate", "circular"]
ALGORITHMS = ["reference", "im2col", "auto"]


@st.composite
def small_configs(draw, modes=MODES):
    """(x_shape, w_shape, kwargs) with a valid input size for the drawn padding mode."""
    groups = draw(st.sampled_from([1, 2, 3]))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pads = tuple(draw(st.integers(0, 3)) for _ in range(4))
    mode = draw(st.sampled_from(modes))
    sizes = []
    for k, d, before, after in [(kh, dilation[0], *pads[:2]), (kw, dilation[1], *pads[2:])]:
        lo = max(1, d * (k - 1) + 1 - before - after)
        if mode == "reflect":
            lo = max(lo, before + 1, after + 1)
        sizes.append(draw(st.integers(lo, lo + 6)))
    # pads is (top, bottom, left, right); cnncore lists the last axis first, as F.pad
    kwargs = dict(stride=stride, padding=pads[2:] + pads[:2], dilation=dilation, groups=groups,
                  padding_mode=mode, flip=draw(st.booleans()))
    return ((draw(st.integers(1, 2)), c_in, *sizes), (c_out, c_in // groups, kh, kw), kwargs)


def _inner(a, b):
    return float(np.sum(a * b))


# --------------------------------------------------------------------------- adjointness


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@given(cfg=small_configs(), seed=SEEDS)
def test_backward_is_adjoint_of_forward(algorithm, cfg, seed):
    """<conv(x, w), g> == <x, grad_x(g)> == <w, grad_w(g)>, for every padding mode.

    conv is linear in x (the padded border is a linear map of x, also for reflect,
    replicate and circular) and linear in w, so the backward pass must be the exact
    transpose of both maps.
    """
    x_shape, w_shape, kw = cfg
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    y = ops.conv2d(x, w, algorithm=algorithm, **kw)
    g = rng.standard_normal(y.shape)
    gx, gw, _ = ops.conv2d_backward(g, x, w, algorithm=algorithm, **kw)

    lhs = _inner(y, g)
    scale = np.sum(np.abs(y * g)) + np.sum(np.abs(x * gx)) + np.sum(np.abs(w * gw)) + 1.0
    assert abs(lhs - _inner(x, gx)) <= 1e-11 * scale
    assert abs(lhs - _inner(w, gw)) <= 1e-11 * scale


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@given(cfg=small_configs(), seed=SEEDS)
def test_grad_bias_is_grad_out_summed(algorithm, cfg, seed):
    x_shape, w_shape, kw = cfg
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    y = ops.conv2d(x, w, b, algorithm=algorithm, **kw)
    np.testing.assert_allclose(y - ops.conv2d(x, w, algorithm=algorithm, **kw),
                               np.broadcast_to(b[None, :, None, None], y.shape),
                               rtol=0, atol=1e-12 * (1 + np.abs(y).max()))
    g = rng.standard_normal(y.shape)
    _, _, gb = ops.conv2d_backward(g, x, w, algorithm=algorithm, bias=True, **kw)
    np.testing.assert_allclose(gb, g.sum(axis=(0, 2, 3)), rtol=1e-12, atol=1e-12 * g.size)
    _, _, none = ops.conv2d_backward(g, x, w, algorithm=algorithm, bias=False, **kw)
    assert none is None


# --------------------------------------------------------------------------- commutativity


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("a_hw, b_hw",
                         [((5, 7), (3, 4)), ((1, 6), (4, 1)), ((2, 9), (6, 3)), ((4, 4), (1, 1))])
def test_true_convolution_commutes(rng, algorithm, a_hw, b_hw):
    a = rng.integers(-8, 9, size=(1, 1) + a_hw).astype(np.float64)
    b = rng.integers(-8, 9, size=(1, 1) + b_hw).astype(np.float64)
    ab = ops.conv2d(a, b, padding="full", flip=True, algorithm=algorithm)
    ba = ops.conv2d(b, a, padding="full", flip=True, algorithm=algorithm)
    assert ab.shape == (1, 1, a_hw[0] + b_hw[0] - 1, a_hw[1] + b_hw[1] - 1)
    np.testing.assert_array_equal(ab, ba)  # small integers: exact in any order

    # Cross-correlation does not commute in general (it reverses the kernel).
    ab_corr = ops.conv2d(a, b, padding="full", flip=False, algorithm=algorithm)
    np.testing.assert_array_equal(ab_corr, ops.conv2d(b, a, padding="full", flip=False,
                                                      algorithm=algorithm)[:, :, ::-1, ::-1])


# --------------------------------------------------------------------------- translations


@st.composite
def equivariance_cases(draw):
    rng = np.random.default_rng(draw(SEEDS))
    c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    k = (draw(st.sampled_from([1, 3, 5])), draw(st.sampled_from([1, 3, 5])))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    h, wd = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    x = rng.integers(-8, 9, size=(2, c_in, h, wd)).astype(np.float64)
    w = rng.integers(-8, 9, size=(c_out, c_in) + k).astype(np.float64)
    shift = (draw(st.integers(-12, 12)), draw(st.integers(-12, 12)))
    return x, w, dilation, shift, draw(st.booleans())


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@given(case=equivariance_cases())
def test_circular_same_stride1_commutes_with_roll(algorithm, case):
    x, w, dilation, shift, flip = case
    kw = dict(padding="same", padding_mode="circular", dilation=dilation, flip=flip,
              algorithm=algorithm)
    y = ops.conv2d(x, w, **kw)
    assert y.shape[2:] == x.shape[2:]
    shifted = ops.conv2d(np.roll(x, shift, axis=(2, 3)), w, **kw)
    np.testing.assert_array_equal(shifted, np.roll(y, shift, axis=(2, 3)))  # integers: exact


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@given(data=st.data())
def test_circular_strided_shift_by_multiple_of_stride(algorithm, data):
    """Shifting the input by m*s (circularly) shifts a stride-s output by m."""
    rng = np.random.default_rng(data.draw(SEEDS))
    s = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    h, wd = s[0] * data.draw(st.integers(1, 4)), s[1] * data.draw(st.integers(1, 4))
    k = (data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4)))
    x = rng.integers(-8, 9, size=(1, 2, h, wd)).astype(np.float64)
    w = rng.integers(-8, 9, size=(3, 2) + k).astype(np.float64)
    m = (data.draw(st.integers(-5, 5)), data.draw(st.integers(-5, 5)))
    kw = dict(stride=s, padding="same", padding_mode="circular", algorithm=algorithm,
              dilation=data.draw(st.integers(1, 2)), flip=data.draw(st.booleans()))
    y = ops.conv2d(x, w, **kw)
    assert y.shape[2:] == (h // s[0], wd // s[1])
    shifted = ops.conv2d(np.roll(x, (m[0] * s[0], m[1] * s[1]), axis=(2, 3)), w, **kw)
    np.testing.assert_array_equal(shifted, np.roll(y, m, axis=(2, 3)))


def _interior(n_out, n_in, stride, before, span):
    """Output indices whose whole window lies inside the unpadded input."""
    i = np.arange(n_out)
    return (i * stride - before >= 0) & (i * stride - before + span <= n_in - 1)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("stride, dilation, k, pad, m", [
    (1, 1, (3, 3), 1, (2, 1)),
    (1, 2, (3, 2), (2, 3), (-3, 4)),
    (2, 1, (4, 3), 3, (1, -2)),
    ((1, 3), (2, 1), (2, 5), (2, 4, 0, 1), (2, 1)),
])
def test_zero_padding_shift_equivariance_in_interior(rng, algorithm, stride, dilation, k, pad, m):
    """A (non-circular) shift of the input by m*s shifts the output by m away from borders."""
    (sh, sw), (dh, dw) = pair(stride), pair(dilation)
    h, wd = 13, 14
    big = rng.standard_normal((2, 2, h + abs(m[0]) * sh, wd + abs(m[1]) * sw))
    oh, ow = max(-m[0], 0) * sh, max(-m[1], 0) * sw  # origin of x1 in big
    x1 = big[:, :, oh:oh + h, ow:ow + wd]
    x2 = big[:, :, oh + m[0] * sh:oh + m[0] * sh + h, ow + m[1] * sw:ow + m[1] * sw + wd]
    w = rng.standard_normal((3, 2) + k)
    kw = dict(stride=stride, padding=pad, dilation=dilation, algorithm=algorithm)
    y1, y2 = ops.conv2d(x1, w, **kw), ops.conv2d(x2, w, **kw)

    t, b, l, r = (pad,) * 4 if isinstance(pad, int) else (
        (pad[0], pad[0], pad[1], pad[1]) if len(pad) == 2 else pad[2:] + pad[:2])
    rows = _interior(y1.shape[2], h, sh, t, dh * (k[0] - 1))
    cols = _interior(y1.shape[3], wd, sw, l, dw * (k[1] - 1))
    # y2[i] = y1[i + m] where both windows are interior.
    ri = [i for i in range(y2.shape[2]) if rows[i] and 0 <= i + m[0] < len(rows) and rows[i + m[0]]]
    ci = [j for j in range(y2.shape[3]) if cols[j] and 0 <= j + m[1] < len(cols) and cols[j + m[1]]]
    assert ri and ci, "test sizes leave no interior"
    got = y2[:, :, ri][:, :, :, ci]
    want = y1[:, :, [i + m[0] for i in ri]][:, :, :, [j + m[1] for j in ci]]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- groups


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@given(cfg=small_configs(), seed=SEEDS)
def test_grouped_equals_concatenated_per_group(algorithm, cfg, seed):
    x_shape, w_shape, kw = cfg
    groups = kw["groups"]
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    y = ops.conv2d(x, w, b, algorithm=algorithm, **kw)
    g = rng.standard_normal(y.shape)
    gx, gw, gb = ops.conv2d_backward(g, x, w, algorithm=algorithm, **kw)

    one = dict(kw, groups=1)
    xs, ws, bs, gs = (np.split(a, groups, axis=ax) for a, ax in [(x, 1), (w, 0), (b, 0), (g, 1)])
    parts = [ops.conv2d(xi, wi, bi, algorithm=algorithm, **one) for xi, wi, bi in zip(xs, ws, bs)]
    np.testing.assert_allclose(y, np.concatenate(parts, axis=1), rtol=1e-12, atol=1e-12)
    back = [ops.conv2d_backward(gi, xi, wi, algorithm=algorithm, **one)
            for gi, xi, wi in zip(gs, xs, ws)]
    gx_parts, gw_parts, gb_parts = zip(*back)
    np.testing.assert_allclose(gx, np.concatenate(gx_parts, axis=1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gw, np.concatenate(gw_parts, axis=0), rtol=1e-12, atol=1e-11)
    np.testing.assert_allclose(gb, np.concatenate(gb_parts), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- output shape


def _formula(n, before, after, k, s, d):
    return (n + before + after - d * (k - 1) - 1) // s + 1


@given(cfg=small_configs(), padding_form=st.sampled_from(["quad", "pair", "int", "valid"]))
def test_output_shape_formula_and_actual_shape(cfg, padding_form):
    x_shape, w_shape, kw = cfg
    l, r, t, b = kw["padding"]
    if padding_form == "pair":
        b, r = t, l
        kw = dict(kw, padding=(t, l))
    elif padding_form == "int":
        b = l = r = t
        kw = dict(kw, padding=t)
        if kw["padding_mode"] == "reflect" and t >= min(x_shape[2:]):
            kw["padding_mode"] = "zeros"
    elif padding_form == "valid":
        t = b = l = r = 0
        kw = dict(kw, padding="valid")
    (sh, sw), (dh, dw) = kw["stride"], kw["dilation"]
    ho = _formula(x_shape[2], t, b, w_shape[2], sh, dh)
    wo = _formula(x_shape[3], l, r, w_shape[3], sw, dw)
    assume(ho >= 1 and wo >= 1)  # "valid" / symmetric forms may not fit the drawn input
    want = (x_shape[0], w_shape[0], ho, wo)
    shape_kw = {k: v for k, v in kw.items() if k != "flip"}
    assert tuple(ops.conv2d_output_shape(x_shape, w_shape, **shape_kw)) == want
    assert ops.conv2d(np.zeros(x_shape), np.zeros(w_shape), **kw).shape == want


def test_same_padding_gives_ceil_in_over_stride():
    checked = 0
    for stride in (1, 2, 3):
        for k in (1, 2, 3, 4, 5):
            for d in (1, 2):
                for n in (1, 2, 5, 7, 8, 11):
                    x_shape, w_shape = (1, 1, n, n + 3), (1, 1, k, k + 1)
                    kw = dict(stride=stride, padding="same", dilation=d)
                    want = (1, 1, -(-n // stride), -(-(n + 3) // stride))
                    assert tuple(ops.conv2d_output_shape(x_shape, w_shape, **kw)) == want, kw
                    assert ops.conv2d(np.ones(x_shape), np.ones(w_shape), **kw).shape == want, kw
                    checked += 1
    assert checked == 180


def test_same_padding_puts_the_odd_pixel_at_the_end():
    # Even kernel, stride 1: total padding 1 goes to the bottom/right.
    x = np.arange(1.0, 5.0).reshape(1, 1, 1, 4)
    y = ops.conv2d(x, np.ones((1, 1, 1, 2)), padding="same")
    np.testing.assert_array_equal(y, [[[[3.0, 5.0, 7.0, 4.0]]]])


def test_full_padding_gives_in_plus_dilated_kernel_span():
    for k in (1, 2, 3, 4):
        for d in (1, 2, 3):
            for n in (1, 4, 7):
                x_shape, w_shape = (2, 3, n, n + 2), (5, 3, k, 5 - k)
                want = (2, 5, n + d * (k - 1), n + 2 + d * (4 - k))
                kw = dict(padding="full", dilation=d)
                assert tuple(ops.conv2d_output_shape(x_shape, w_shape, **kw)) == want
                assert ops.conv2d(np.ones(x_shape), np.ones(w_shape), **kw).shape == want
