"""Fast conv2d paths against the naive reference, and the reference against NumPy.

* ``algorithm="im2col"`` and ``"auto"`` must agree with ``algorithm="reference"``
  on random configurations: to ~1e-12 in float64, and bit for bit in float32 when
  every value is a small integer (all partial sums are then exact integers below
  2**24, so the summation order cannot matter).
* The reference itself is checked against a NumPy-only oracle written here:
  ``np.pad`` for the border, a loop over kernel taps with ``einsum`` for the
  forward pass, and the definitions (``einsum`` + ``np.add.at``) for the backward.
"""
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, strategies as st

from cnncore import ops
from helpers import (GRAD_NAMES, NP_PAD_MODE, SEEDS, int_or_pair, min_input_size,
                     padded_source_index, paddings, pair, random_arrays, resolve_padding)

MODES = ["zeros", "reflect", "replicate", "circular"]


# --------------------------------------------------------------------------- helpers


@dataclass
class Config:
    n: int
    c_in: int
    c_out: int
    h: int
    w: int
    kh: int
    kw: int
    stride: object
    padding: object
    dilation: object
    groups: int
    padding_mode: str
    flip: bool
    bias: bool

    def kwargs(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups, padding_mode=self.padding_mode, flip=self.flip)

    def pads(self):
        return resolve_padding(self.padding, (self.h, self.w), (self.kh, self.kw),
                               self.stride, self.dilation, self.flip)

    def out_hw(self):
        t, b, l, r = self.pads()
        (sh, sw), (dh, dw) = pair(self.stride), pair(self.dilation)
        return ((self.h + t + b - dh * (self.kh - 1) - 1) // sh + 1,
                (self.w + l + r - dw * (self.kw - 1) - 1) // sw + 1)

    def out_shape(self):
        return (self.n, self.c_out) + self.out_hw()


@st.composite
def conv_configs(draw, max_k=4, max_extra=8):
    """Kernel, stride, dilation, padding, mode, groups and flip first; then a valid input."""
    kh, kw = draw(st.integers(1, max_k)), draw(st.integers(1, max_k))
    stride = draw(int_or_pair(1, 3))
    dilation = draw(int_or_pair(1, 3))
    padding = draw(paddings(3))
    mode = draw(st.sampled_from(MODES))
    flip = draw(st.booleans())

    groups = draw(st.sampled_from([1, 1, 2, 3, 17]))
    if groups == 1:
        c_in, c_out = draw(st.sampled_from([1, 3, 17])), draw(st.sampled_from([1, 3, 17]))
    elif groups == 17:  # depthwise
        c_in, c_out = 17, draw(st.sampled_from([17, 34]))
    else:
        c_in = groups * draw(st.integers(1, 2))
        c_out = groups * draw(st.integers(1, 3))

    lows = [min_input_size(padding, axis, (kh, kw), dilation, mode) for axis in (0, 1)]
    sizes = [draw(st.integers(lo, lo + max_extra)) for lo in lows]

    n = draw(st.sampled_from([1, 2]))  # batch 0: test_batch_zero_gives_empty_results
    return Config(n=n, c_in=c_in, c_out=c_out, h=sizes[0], w=sizes[1], kh=kh, kw=kw,
                  stride=stride, padding=padding, dilation=dilation, groups=groups,
                  padding_mode=mode, flip=flip, bias=draw(st.booleans()))


def make_inputs(cfg, rng, dtype, integer=False):
    """x, weight, bias (or None) and a grad_out for cfg."""
    shapes = [(cfg.n, cfg.c_in, cfg.h, cfg.w),
              (cfg.c_out, cfg.c_in // cfg.groups, cfg.kh, cfg.kw),
              (cfg.c_out,),
              cfg.out_shape()]
    x, w, b, g = random_arrays(rng, shapes, dtype, integer)
    return x, w, (b if cfg.bias else None), g


def _max_abs(a):
    return float(np.abs(a).max()) if a.size else 0.0


# --------------------------------------------------------------------------- fast vs reference


@pytest.mark.parametrize("algorithm", ["im2col", "auto"])
@given(cfg=conv_configs(), seed=SEEDS)
def test_forward_float64_matches_reference(algorithm, cfg, seed):
    x, w, b, _ = make_inputs(cfg, np.random.default_rng(seed), np.float64)
    ref = ops.conv2d(x, w, b, algorithm="reference", **cfg.kwargs())
    got = ops.conv2d(x, w, b, algorithm=algorithm, **cfg.kwargs())
    assert ref.shape == got.shape == cfg.out_shape()
    assert ref.dtype == got.dtype == np.float64
    terms = cfg.c_in // cfg.groups * cfg.kh * cfg.kw
    atol = 1e-12 * terms * _max_abs(x) * _max_abs(w)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=atol)


@pytest.mark.parametrize("algorithm", ["im2col", "auto"])
@given(cfg=conv_configs(), seed=SEEDS)
def test_backward_float64_matches_reference(algorithm, cfg, seed):
    x, w, _, g = make_inputs(cfg, np.random.default_rng(seed), np.float64)
    kw = dict(cfg.kwargs(), bias=cfg.bias)
    ref = ops.conv2d_backward(g, x, w, algorithm="reference", **kw)
    got = ops.conv2d_backward(g, x, w, algorithm=algorithm, **kw)
    assert got[0].shape == ref[0].shape == x.shape
    assert got[1].shape == ref[1].shape == w.shape
    assert got[0].dtype == got[1].dtype == np.float64
    if cfg.bias:
        assert got[2].shape == ref[2].shape == (cfg.c_out,)
    else:
        assert got[2] is None and ref[2] is None

    # Bounds on how many products are summed per element; circular/reflect borders can
    # send several padded positions to one input pixel, hence the extra factor for grad_x.
    ho, wo = cfg.out_hw()
    t, bt, l, r = cfg.pads()
    wrap = (1 + (t + bt) // cfg.h) * (1 + (l + r) // cfg.w)
    terms_x = cfg.c_out // cfg.groups * cfg.kh * cfg.kw * wrap
    terms_w = cfg.n * ho * wo
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-12,
                               atol=1e-12 * terms_x * _max_abs(g) * _max_abs(w))
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-12,
                               atol=1e-12 * terms_w * _max_abs(g) * _max_abs(x))
    if cfg.bias:
        np.testing.assert_allclose(got[2], ref[2], rtol=1e-12,
                                   atol=1e-12 * terms_w * _max_abs(g))


@pytest.mark.parametrize("algorithm", ["im2col", "auto"])
@given(cfg=conv_configs(), seed=SEEDS)
def test_float32_small_integers_exact(algorithm, cfg, seed):
    x, w, b, g = make_inputs(cfg, np.random.default_rng(seed), np.float32, integer=True)
    # Largest possible |partial sum| stays far below 2**24, so every result is exact.
    ho, wo = cfg.out_hw()
    t, bt, l, r = cfg.pads()
    wrap = (1 + (t + bt) // cfg.h) * (1 + (l + r) // cfg.w)
    worst = 64 * max(cfg.c_in // cfg.groups * cfg.kh * cfg.kw + 1,
                     cfg.c_out // cfg.groups * cfg.kh * cfg.kw * wrap,
                     cfg.n * ho * wo)
    assert worst < 2**24

    ref = ops.conv2d(x, w, b, algorithm="reference", **cfg.kwargs())
    got = ops.conv2d(x, w, b, algorithm=algorithm, **cfg.kwargs())
    assert ref.dtype == got.dtype == np.float32
    assert got.shape == cfg.out_shape()
    np.testing.assert_array_equal(got, ref)

    kw = dict(cfg.kwargs(), bias=True)
    ref_b = ops.conv2d_backward(g, x, w, algorithm="reference", **kw)
    got_b = ops.conv2d_backward(g, x, w, algorithm=algorithm, **kw)
    for name, r_, g_ in zip(GRAD_NAMES, ref_b, got_b):
        assert g_.dtype == np.float32, name
        np.testing.assert_array_equal(g_, r_, err_msg=name)


@pytest.mark.parametrize("algorithm", ["reference", "im2col", "auto"])
def test_batch_zero_gives_empty_results(algorithm):
    x = np.zeros((0, 3, 7, 5))
    w = np.ones((4, 3, 3, 2))
    y = ops.conv2d(x, w, np.ones(4), padding=1, algorithm=algorithm)
    assert y.shape == (0, 4, 7, 6)
    gx, gw, gb = ops.conv2d_backward(np.zeros(y.shape), x, w, padding=1, algorithm=algorithm)
    assert gx.shape == x.shape
    np.testing.assert_array_equal(gw, np.zeros(w.shape))
    np.testing.assert_array_equal(gb, np.zeros(4))


# --------------------------------------------------------------------------- NumPy oracle


def _fold(a, src, axis):
    """Adjoint of gathering along axis with index map src: out[src[i]] += a[i]."""
    a = np.moveaxis(a, axis, 0)
    keep = src >= 0
    out = np.zeros((src.max() + 1,) + a.shape[1:])
    np.add.at(out, src[keep], a[keep])
    return np.moveaxis(out, 0, axis)


def _tap_slices(cfg, a, b):
    """Slices of the padded input read by kernel tap (a, b) for all output pixels."""
    (sh, sw), (dh, dw) = pair(cfg.stride), pair(cfg.dilation)
    ho, wo = cfg.out_hw()
    return (slice(a * dh, a * dh + (ho - 1) * sh + 1, sh),
            slice(b * dw, b * dw + (wo - 1) * sw + 1, sw))


def _effective_weight(cfg, w):
    return w[:, :, ::-1, ::-1] if cfg.flip else w


def oracle_forward(cfg, x, w, bias):
    t, bt, l, r = cfg.pads()
    xp = np.pad(x, ((0, 0), (0, 0), (t, bt), (l, r)), mode=NP_PAD_MODE[cfg.padding_mode])
    wf = _effective_weight(cfg, w)
    cg, og = cfg.c_in // cfg.groups, cfg.c_out // cfg.groups
    y = np.zeros(cfg.out_shape())
    for grp in range(cfg.groups):
        xs, os_ = slice(grp * cg, (grp + 1) * cg), slice(grp * og, (grp + 1) * og)
        for a in range(cfg.kh):
            for b in range(cfg.kw):
                rows, cols = _tap_slices(cfg, a, b)
                y[:, os_] += np.einsum("nchw,oc->nohw", xp[:, xs, rows, cols], wf[os_, :, a, b])
    if bias is not None:
        y += bias[None, :, None, None]
    return y


def oracle_backward(cfg, g, x, w):
    t, bt, l, r = cfg.pads()
    xp = np.pad(x, ((0, 0), (0, 0), (t, bt), (l, r)), mode=NP_PAD_MODE[cfg.padding_mode])
    wf = _effective_weight(cfg, w)
    cg, og = cfg.c_in // cfg.groups, cfg.c_out // cfg.groups
    gxp = np.zeros(xp.shape)
    gwf = np.zeros(w.shape)
    for grp in range(cfg.groups):
        xs, os_ = slice(grp * cg, (grp + 1) * cg), slice(grp * og, (grp + 1) * og)
        for a in range(cfg.kh):
            for b in range(cfg.kw):
                rows, cols = _tap_slices(cfg, a, b)
                gxp[:, xs, rows, cols] += np.einsum("nohw,oc->nchw", g[:, os_], wf[os_, :, a, b])
                gwf[os_, :, a, b] = np.einsum("nohw,nchw->oc", g[:, os_], xp[:, xs, rows, cols])
    # Transpose of the padding map: every padded position adds into its source pixel.
    gx = _fold(gxp, padded_source_index(cfg.h, t, bt, cfg.padding_mode), axis=2)
    gx = _fold(gx, padded_source_index(cfg.w, l, r, cfg.padding_mode), axis=3)
    gw = _effective_weight(cfg, gwf)  # flipping is its own inverse
    return gx, gw, g.sum(axis=(0, 2, 3))


@given(cfg=conv_configs(max_extra=5), seed=SEEDS)
def test_reference_forward_matches_numpy_oracle(cfg, seed):
    x, w, b, _ = make_inputs(cfg, np.random.default_rng(seed), np.float64)
    got = ops.conv2d(x, w, b, algorithm="reference", **cfg.kwargs())
    np.testing.assert_allclose(got, oracle_forward(cfg, x, w, b), rtol=1e-11, atol=1e-11)


@given(cfg=conv_configs(max_extra=5), seed=SEEDS)
def test_reference_backward_matches_numpy_oracle(cfg, seed):
    x, w, _, g = make_inputs(cfg, np.random.default_rng(seed), np.float64)
    got = ops.conv2d_backward(g, x, w, algorithm="reference", bias=True, **cfg.kwargs())
    want = oracle_backward(cfg, g, x, w)
    for name, got_, want_ in zip(GRAD_NAMES, got, want):
        np.testing.assert_allclose(got_, want_, rtol=1e-11, atol=1e-10, err_msg=name)


def test_oracle_sanity_against_hand_computed_example():
    """Pins the oracle itself (and the reference) on a case small enough to do by hand."""
    cfg = Config(n=1, c_in=1, c_out=1, h=1, w=3, kh=1, kw=2, stride=1, padding=(1, 0, 0, 0),
                 dilation=1, groups=1, padding_mode="circular", flip=True, bias=False)
    x = np.array([[[[1.0, 2.0, 3.0]]]])
    w = np.array([[[[10.0, 100.0]]]])
    # circular pad on the left: [3, 1, 2, 3]; flip -> taps (100, 10)
    want = np.array([[[[310.0, 120.0, 230.0]]]])
    np.testing.assert_array_equal(oracle_forward(cfg, x, w, None), want)
    np.testing.assert_array_equal(
        ops.conv2d(x, w, algorithm="reference", **cfg.kwargs()), want)
    g = np.array([[[[1.0, 0.0, 0.0]]]])
    # y[0] = 100*x[2] + 10*x[0]
    gx, gw, _ = oracle_backward(cfg, g, x, w)
    np.testing.assert_array_equal(gx, [[[[10.0, 0.0, 100.0]]]])
    np.testing.assert_array_equal(gw, [[[[1.0, 3.0]]]])
