"""``ops.local_conv2d`` / ``local_conv2d_backward``: unshared (locally connected) convolution.

* The naive reference (``algorithm="reference"``) against a NumPy oracle written here
  (index maps for the padding modes, fancy indexing for the windows, ``einsum``,
  ``np.add.at`` for the adjoint of the gather).
* The fast path (``"im2col"``, ``"auto"``) against the reference: bit for bit in float32
  with small-integer fills, to ~1e-12 in float64, with 1 and 2 threads.
* Gradients by central finite differences and by the adjoint identities.
* Properties: one kernel repeated everywhere is ``conv2d``; each output position depends
  on its own kernel only; the parameter count; batch 0; NaN propagation.
* Every rejected input: exception type, a message naming the argument, and a live process.
"""
import re

import numpy as np
import pytest
from hypothesis import given, strategies as st

import cnncore
from cnncore import ops
from helpers import (GRAD_NAMES, SEEDS, assert_adjoint_identities, assert_gradients_match,
                     at_thread_counts, bad_calls_in_subprocess, conv_geometry, conv_out_hw as out_hw,
                     expect_error, pair, random_arrays, resolve_padding, window_index_map)

MODES = ["zeros", "reflect", "replicate", "circular", "symmetric"]
F32, F64 = np.float32, np.float64


# --------------------------------------------------------------------------- oracle


def windows(x, kh, kw, stride, padding, dilation, mode, flip=False):
    """win[n, c, i, j, a, b] = xpad[n, c, i*sH + a*dH, j*sW + b*dW], plus the index maps."""
    t, b, l, r = resolve_padding(padding, x.shape[2:], (kh, kw), stride, dilation, flip)
    (sh, sw), (dh, dw) = pair(stride), pair(dilation)
    hi = window_index_map(x.shape[2], t, b, kh, sh, dh, mode)[:, None, :, None]
    wi = window_index_map(x.shape[3], l, r, kw, sw, dw, mode)[None, :, None, :]
    hi, wi = np.broadcast_arrays(hi, wi)  # (H_out, W_out, kH, kW)
    inside = (hi >= 0) & (wi >= 0)
    win = np.where(inside, x[:, :, np.maximum(hi, 0), np.maximum(wi, 0)], 0.0)
    return win, hi, wi, inside


def per_position(a, ho, wo):
    """A (tH, tW, ...) array indexed by (i % tH, j % tW) for every output position."""
    return a[np.arange(ho) % a.shape[0]][:, np.arange(wo) % a.shape[1]]


def oracle_forward(x, w, b, stride=1, padding=0, dilation=1, padding_mode="zeros", flip=False):
    """Tiled convolution with weight (tH, tW, C_out, C_in, kH, kW); local: tile = output."""
    x = x.astype(F64)
    win = windows(x, w.shape[4], w.shape[5], stride, padding, dilation, padding_mode, flip)[0]
    ho, wo = win.shape[2:4]
    wk = per_position(w.astype(F64), ho, wo)
    if flip:
        wk = wk[..., ::-1, ::-1]
    y = np.einsum("ncijab,ijocab->noij", win, wk)
    if b is not None:
        y = y + per_position(np.moveaxis(b.astype(F64), 0, -1), ho, wo).transpose(2, 0, 1)
    return y


def oracle_backward(g, x, w, stride=1, padding=0, dilation=1, padding_mode="zeros", flip=False):
    """(grad_x, grad_weight, grad_bias) of oracle_forward, tiled layout."""
    x, g = x.astype(F64), g.astype(F64)
    th, tw = w.shape[:2]
    win, hi, wi, inside = windows(x, w.shape[4], w.shape[5], stride, padding, dilation,
                                  padding_mode, flip)
    ho, wo = win.shape[2:4]
    wk = per_position(w.astype(F64), ho, wo)
    if flip:
        wk = wk[..., ::-1, ::-1]
    dwin = np.einsum("noij,ijocab->ncijab", g, wk)
    gx = np.zeros(x.shape)
    np.add.at(gx, (slice(None), slice(None), hi[inside], wi[inside]), dwin[:, :, inside])
    gwk = np.einsum("noij,ncijab->ijocab", g, win)
    if flip:
        gwk = gwk[..., ::-1, ::-1]
    gw = np.zeros(w.shape)
    gb = np.zeros((w.shape[2], th, tw))
    for i in range(ho):
        for j in range(wo):
            gw[i % th, j % tw] += gwk[i, j]
            gb[:, i % th, j % tw] += g[:, :, i, j].sum(axis=0)
    return gx, gw, gb


# --------------------------------------------------------------------------- configurations


@st.composite
def local_configs(draw, max_k=3, max_extra=5, channels=(1, 3, 17), batches=(1, 2, 3)):
    """Kernel, stride, dilation, padding and mode first; then an input that suits them."""
    (kh, kw), stride, dilation, padding, mode, sizes = draw(conv_geometry(MODES, max_k, max_extra))
    c_in, c_out = draw(st.sampled_from(channels)), draw(st.sampled_from(channels))
    n = draw(st.sampled_from(batches))
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, padding_mode=mode,
                  flip=draw(st.booleans()))
    return (n, c_in) + sizes, (c_out, c_in, kh, kw), kwargs, draw(st.booleans())


def make_inputs(cfg, rng, dtype, integer=False):
    x_shape, kernel, kwargs, with_bias = cfg
    ho, wo = out_hw(x_shape, kernel, kwargs)
    c_out = kernel[0]
    shapes = [x_shape, (ho, wo) + tuple(kernel), (c_out, ho, wo), (x_shape[0], c_out, ho, wo)]
    x, w, b, g = random_arrays(rng, shapes, dtype, integer)
    return x, w, (b if with_bias else None), g


# --------------------------------------------------------------------------- reference vs oracle


@given(cfg=local_configs(channels=(1, 3), batches=(1, 2)), seed=SEEDS)
def test_reference_matches_numpy_oracle(cfg, seed):
    x, w, b, g = make_inputs(cfg, np.random.default_rng(seed), F64)
    kwargs = cfg[2]
    y = ops.local_conv2d(x, w, b, algorithm="reference", **kwargs)
    want = oracle_forward(x, w, b, **kwargs)
    assert y.shape == want.shape == g.shape
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)
    got = ops.local_conv2d_backward(g, x, w, bias=True, algorithm="reference", **kwargs)
    for name, a, r in zip(GRAD_NAMES, got,
                          oracle_backward(g, x, w, **kwargs)):
        assert a.shape == r.shape, name
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-11, err_msg=name)


# --------------------------------------------------------------------------- fast vs reference


@pytest.mark.parametrize("algorithm", ["im2col", "auto"])
@given(cfg=local_configs(), seed=SEEDS)
def test_float32_small_integers_exact(algorithm, cfg, seed):
    # Every partial sum is an integer below 2**24 (at most 17*3*3 + 1 products of
    # magnitude <= 64 per output, 3*H_out*W_out per weight gradient), hence exact.
    x, w, b, g = make_inputs(cfg, np.random.default_rng(seed), F32, integer=True)
    kwargs = cfg[2]
    ref = ops.local_conv2d(x, w, b, algorithm="reference", **kwargs)
    got = ops.local_conv2d(x, w, b, algorithm=algorithm, **kwargs)
    assert got.dtype == ref.dtype == F32 and got.shape == g.shape
    np.testing.assert_array_equal(got, ref)
    ref_b = ops.local_conv2d_backward(g, x, w, algorithm="reference", **kwargs)
    got_b = ops.local_conv2d_backward(g, x, w, algorithm=algorithm, **kwargs)
    for name, r, a in zip(GRAD_NAMES, ref_b, got_b):
        assert a.dtype == F32, name
        np.testing.assert_array_equal(a, r, err_msg=name)


@given(cfg=local_configs(), seed=SEEDS)
def test_float64_matches_reference(cfg, seed):
    x, w, b, g = make_inputs(cfg, np.random.default_rng(seed), F64)
    kwargs = dict(cfg[2], bias=b is not None)
    fwd = {k: v for k, v in kwargs.items() if k != "bias"}
    np.testing.assert_allclose(ops.local_conv2d(x, w, b, algorithm="im2col", **fwd),
                               ops.local_conv2d(x, w, b, algorithm="reference", **fwd),
                               rtol=1e-12, atol=1e-11)
    ref = ops.local_conv2d_backward(g, x, w, algorithm="reference", **kwargs)
    got = ops.local_conv2d_backward(g, x, w, algorithm="im2col", **kwargs)
    if b is None:
        assert got[2] is None and ref[2] is None
    for name, r, a in zip(GRAD_NAMES, ref, got):
        if r is not None:
            assert a.dtype == F64 and a.shape == r.shape, name
            np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-10, err_msg=name)


@pytest.mark.parametrize("n, flip", [(33, False), (40, True)])
def test_large_batch_exact(n, flip):
    """Batches of 32 and more take the packed GEMM path of the fast kernels."""
    rng = np.random.default_rng(n)
    x = rng.integers(-8, 9, (n, 3, 6, 7)).astype(F32)
    w = rng.integers(-8, 9, (6, 4, 5, 3, 3, 4)).astype(F32)
    b = rng.integers(-8, 9, (5, 6, 4)).astype(F32)
    g = rng.integers(-8, 9, (n, 5, 6, 4)).astype(F32)
    kw = dict(padding=(0, 0, 1, 1), padding_mode="replicate", flip=flip)
    np.testing.assert_array_equal(ops.local_conv2d(x, w, b, algorithm="im2col", **kw),
                                  ops.local_conv2d(x, w, b, algorithm="reference", **kw))
    for name, a, r in zip(GRAD_NAMES,
                          ops.local_conv2d_backward(g, x, w, algorithm="im2col", **kw),
                          ops.local_conv2d_backward(g, x, w, algorithm="reference", **kw)):
        np.testing.assert_array_equal(a, r, err_msg=name)


@pytest.mark.parametrize("n", [1, 2, 3, 8])
def test_two_threads_agree_with_one(n):
    """Batches below, at and above the thread count reach every threading mode."""
    rng = np.random.default_rng(n)
    x = rng.integers(-8, 9, (n, 3, 9, 8)).astype(F32)
    w = rng.integers(-8, 9, (9, 8, 5, 3, 3, 3)).astype(F32)
    b = rng.integers(-8, 9, (5, 9, 8)).astype(F32)
    g = rng.integers(-8, 9, (n, 5, 9, 8)).astype(F32)
    kw = dict(padding="same", padding_mode="circular", algorithm="im2col")
    results = at_thread_counts(
        lambda: (ops.local_conv2d(x, w, b, **kw),) + ops.local_conv2d_backward(g, x, w, **kw))
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(results[0][0], ops.local_conv2d(x, w, b, padding="same",
                                                                  padding_mode="circular",
                                                                  algorithm="reference"))


# --------------------------------------------------------------------------- gradients

# x shape, (C_out, kH, kW), keyword arguments
FD_CONFIGS = {
    "plain": ((2, 2, 5, 4), (3, 2, 3), dict(padding=1)),
    "stride_dilation": ((1, 2, 7, 6), (2, 3, 2), dict(stride=(2, 1), dilation=(1, 2), padding=(2, 1, 1, 0))),
    "reflect_flip": ((1, 1, 5, 5), (2, 3, 3), dict(padding="same", padding_mode="reflect", flip=True)),
    "circular": ((2, 2, 4, 3), (2, 3, 3), dict(padding=(4, 2, 3, 1), padding_mode="circular")),
    "symmetric_full": ((1, 1, 3, 4), (2, 2, 2), dict(padding="full", padding_mode="symmetric")),
}


@pytest.mark.parametrize("algorithm", ["reference", "im2col"])
@pytest.mark.parametrize("name", list(FD_CONFIGS))
def test_backward_matches_finite_differences(algorithm, name):
    x_shape, (c_out, kh, kw_), kwargs = FD_CONFIGS[name]
    rng = np.random.default_rng(7)
    ho, wo = out_hw(x_shape, (c_out, x_shape[1], kh, kw_), kwargs)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal((ho, wo, c_out, x_shape[1], kh, kw_))
    b = rng.standard_normal((c_out, ho, wo))
    kwargs = dict(kwargs, algorithm=algorithm)
    G = rng.standard_normal((x_shape[0], c_out, ho, wo))

    def loss():
        return float(np.sum(ops.local_conv2d(x, w, b, **kwargs) * G))

    got = ops.local_conv2d_backward(G, x, w, bias=True, **kwargs)
    assert_gradients_match(loss, (x, w, b), got, GRAD_NAMES, min_abs=1e-3)


@given(cfg=local_configs(batches=(1, 2)), seed=SEEDS)
def test_adjoint_identities(cfg, seed):
    """<f(x), g> = <x, back_data(g)> = <w, back_weight(g)> (f is linear in x and in w)."""
    x, w, _, g = make_inputs(cfg, np.random.default_rng(seed), F64)
    assert_adjoint_identities(ops.local_conv2d, ops.local_conv2d_backward, x, w, g, **cfg[2])


# --------------------------------------------------------------------------- properties


@given(cfg=local_configs(channels=(1, 3)), seed=SEEDS)
def test_equal_kernels_equal_conv2d(cfg, seed):
    """Every position using the same kernel (and bias) is an ordinary convolution."""
    x_shape, kernel, kwargs, _ = cfg
    rng = np.random.default_rng(seed)
    ho, wo = out_hw(x_shape, kernel, kwargs)
    x = rng.integers(-8, 9, x_shape).astype(F32)
    k = rng.integers(-8, 9, kernel).astype(F32)
    bias = rng.integers(-8, 9, kernel[0]).astype(F32)
    w = np.broadcast_to(k, (ho, wo) + kernel)  # non-contiguous on purpose
    b = np.broadcast_to(bias[:, None, None], (kernel[0], ho, wo))
    want = ops.conv2d(x, k, bias, **kwargs)
    np.testing.assert_array_equal(ops.local_conv2d(x, w, b, **kwargs), want)
    g = rng.integers(-8, 9, want.shape).astype(F32)
    cx, cw, cb = ops.conv2d_backward(g, x, k, **kwargs)
    lx, lw, lb = ops.local_conv2d_backward(g, x, w, **kwargs)
    np.testing.assert_array_equal(lx, cx)
    np.testing.assert_array_equal(lw.sum(axis=(0, 1)), cw)
    np.testing.assert_array_equal(lb.sum(axis=(1, 2)), cb)


def test_each_position_uses_its_own_kernel():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 6, 7))
    w = rng.standard_normal((4, 5, 2, 3, 3, 3))
    y = ops.local_conv2d(x, w)
    w2 = w.copy()
    w2[1, 3] += 1.0
    diff = ops.local_conv2d(x, w2) - y
    changed = np.argwhere(np.abs(diff).max(axis=(0, 1)) > 0)
    assert changed.tolist() == [[1, 3]]


@pytest.mark.parametrize("c_in, c_out, hw, k, kwargs", [
    (3, 8, (10, 12), (3, 3), dict()),
    (1, 4, (7, 7), (5, 3), dict(stride=2, padding=1)),
    (6, 2, (9, 6), (2, 2), dict(dilation=2, padding="same")),
])
def test_parameter_count(c_in, c_out, hw, k, kwargs):
    """A locally connected layer has H_out*W_out*C_out*C_in*kH*kW weights; any other count
    is rejected with the expected shape in the message."""
    ho, wo = out_hw((1, c_in) + hw, (c_out, c_in) + k, kwargs)
    x = np.ones((1, c_in) + hw)
    w = np.ones((ho, wo, c_out, c_in) + k)
    assert w.size == ho * wo * c_out * c_in * k[0] * k[1]
    assert w.size == ho * wo * (c_out * c_in * k[0] * k[1])  # conv2d's count times positions
    y = ops.local_conv2d(x, w, **kwargs)
    assert y.shape == (1, c_out, ho, wo)
    expected = re.escape(str((ho, wo, c_out, c_in) + k))
    with pytest.raises(ValueError, match=expected):
        ops.local_conv2d(x, np.ones((ho + 1, wo, c_out, c_in) + k), **kwargs)


@pytest.mark.parametrize("algorithm", ["reference", "im2col", "auto"])
def test_batch_zero(algorithm):
    x = np.zeros((0, 3, 7, 5))
    w = np.ones((5, 4, 4, 3, 3, 2))
    y = ops.local_conv2d(x, w, np.ones((4, 5, 4)), algorithm=algorithm)
    assert y.shape == (0, 4, 5, 4)
    gx, gw, gb = ops.local_conv2d_backward(np.zeros(y.shape), x, w, algorithm=algorithm)
    assert gx.shape == x.shape
    np.testing.assert_array_equal(gw, np.zeros(w.shape))
    np.testing.assert_array_equal(gb, np.zeros((4, 5, 4)))


@pytest.mark.parametrize("algorithm", ["reference", "im2col"])
def test_nan_weight_poisons_only_its_position(algorithm):
    # Zero padding is multiplied like any value, so a NaN weight on a border tap still
    # gives NaN at its own position, and nowhere else.
    x = np.ones((1, 1, 4, 4))
    w = np.ones((4, 4, 1, 1, 3, 3))
    w[0, 0, 0, 0, 0, 0] = np.nan  # reads the padding at position (0, 0)
    y = ops.local_conv2d(x, w, padding=1, algorithm=algorithm)
    assert np.isnan(y[0, 0, 0, 0])
    assert np.isfinite(np.delete(y.ravel(), 0)).all()


def test_non_contiguous_inputs():
    rng = np.random.default_rng(5)
    x = np.asfortranarray(rng.standard_normal((2, 3, 6, 6)))
    w = rng.standard_normal((8, 4, 2, 3, 3, 3))[::2]
    y = ops.local_conv2d(x, w)
    np.testing.assert_allclose(y, oracle_forward(x, w, None), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- errors


def assert_alive():
    y = ops.local_conv2d(np.ones((1, 1, 3, 3)), np.ones((2, 2, 1, 1, 2, 2)))
    np.testing.assert_array_equal(y, np.full((1, 1, 2, 2), 4.0))


X = np.ones((2, 3, 7, 7))
W = np.ones((5, 5, 4, 3, 3, 3))
B = np.ones((4, 5, 5))
G = np.ones((2, 4, 5, 5))

BAD_CALLS = {
    "weight_positions": (ValueError, lambda: ops.local_conv2d(X, np.ones((4, 5, 4, 3, 3, 3))),
                         [r"\bweight\b", re.escape("(H_out, W_out, C_out, C_in, kH, kW) = (5, 5, 4, 3, 3, 3)"),
                          re.escape("got (4, 5, 4, 3, 3, 3)"), "H_out=5"]),
    "weight_rank": (ValueError, lambda: ops.local_conv2d(X, np.ones((4, 3, 3, 3))),
                    [r"\bweight\b", "6 dimensions", re.escape("(H_out, W_out, C_out, C_in, kH, kW)")]),
    "channels": (ValueError, lambda: ops.local_conv2d(X, np.ones((5, 5, 4, 2, 3, 3))),
                 [r"\bweight\b", "C_in=2", r"x has 3 channels",
                  re.escape("(H_out, W_out, C_out, C_in, kH, kW) = (5, 5, 4, 3, 3, 3)")]),
    "bias_shape": (ValueError, lambda: ops.local_conv2d(X, W, np.ones(4)),
                   [r"\bbias\b", re.escape("(C_out, H_out, W_out) = (4, 5, 5)"), re.escape("got (4,)")]),
    "kernel_too_big": (ValueError, lambda: ops.local_conv2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 1, 1, 3, 3))),
                       [r"kernel is larger than the padded input"]),
    "mixed_dtypes": (TypeError, lambda: ops.local_conv2d(X, W.astype(F32)),
                     [r"\bweight\b", "float32", "float64"]),
    "mixed_bias_dtype": (TypeError, lambda: ops.local_conv2d(X, W, B.astype(F32)), [r"\bbias\b", "float32"]),
    "integer_x": (TypeError, lambda: ops.local_conv2d(X.astype(np.int64), W), [r"\bx\b", "int64"]),
    "integer_weight": (TypeError, lambda: ops.local_conv2d(X, W.astype(np.int32)), [r"\bweight\b", "int32"]),
    "bool_x": (TypeError, lambda: ops.local_conv2d(X.astype(bool), W), [r"\bx\b", "bool"]),
    "x_rank": (ValueError, lambda: ops.local_conv2d(np.ones((3, 7, 7)), W), [r"\bx\b", "4 dimensions"]),
    "grad_out_shape": (ValueError, lambda: ops.local_conv2d_backward(np.ones((2, 4, 5, 4)), X, W),
                       [r"\bgrad_out\b", re.escape("(2, 4, 5, 5)"), re.escape("got (2, 4, 5, 4)")]),
    "grad_out_dtype": (TypeError, lambda: ops.local_conv2d_backward(G.astype(F32), X, W),
                       [r"\bgrad_out\b", "float32"]),
    "grad_out_rank": (ValueError, lambda: ops.local_conv2d_backward(np.ones((4, 5, 5)), X, W),
                      [r"\bgrad_out\b", "4 dimensions"]),
    "backward_bias_flag": (TypeError, lambda: ops.local_conv2d_backward(G, X, W, bias=None),
                           [r"\bbias\b", "bool"]),
    "stride_zero": (ValueError, lambda: ops.local_conv2d(X, W, stride=0), [r"\bstride\b", "positive"]),
    "stride_float": (TypeError, lambda: ops.local_conv2d(X, W, stride=1.5), [r"\bstride\b"]),
    "dilation_negative": (ValueError, lambda: ops.local_conv2d(X, W, dilation=(1, -1)), [r"\bdilation\b"]),
    "padding_negative": (ValueError, lambda: ops.local_conv2d(X, W, padding=-1), [r"\bpadding\b"]),
    "padding_word": (ValueError, lambda: ops.local_conv2d(X, W, padding="half"), [r"\bpadding\b", "half"]),
    "padding_mode": (ValueError, lambda: ops.local_conv2d(X, W, padding_mode="mirror"),
                     [r"\bpadding_mode\b", "mirror"]),
    "reflect_too_far": (ValueError, lambda: ops.local_conv2d(X, np.ones((19, 5, 4, 3, 3, 3)), padding=(7, 0),
                                                             padding_mode="reflect"),
                        [r"reflect padding must be smaller"]),
    "flip_type": (TypeError, lambda: ops.local_conv2d(X, W, flip="yes"), [r"\bflip\b", "bool"]),
    "algorithm": (ValueError, lambda: ops.local_conv2d(X, W, algorithm="fft"), [r"\balgorithm\b", "fft"]),
    "tile_keyword": (TypeError, lambda: ops.local_conv2d(X, W, tile=2), [r"tile"]),
    "weight_not_array": (TypeError, lambda: ops.local_conv2d(X, "w"), [r"\bweight\b"]),
}


@pytest.mark.parametrize("name", list(BAD_CALLS))
def test_bad_input(name):
    exc, call, patterns = BAD_CALLS[name]
    # tile_keyword: Python's own message for an unknown keyword, without the op name
    prefix = "" if name == "tile_keyword" else "local_conv2d"
    expect_error(exc, call, prefix, *patterns, alive=assert_alive)


def test_memory_limit_is_checked_before_allocating():
    old = cnncore.get_memory_limit()
    x, w = np.ones((2, 3, 20, 20)), np.ones((18, 18, 4, 3, 3, 3))
    try:
        cnncore.set_memory_limit(10_000)
        for call in (lambda: ops.local_conv2d(x, w),
                     lambda: ops.local_conv2d_backward(np.ones((2, 4, 18, 18)), x, w),
                     lambda: ops.tiled_conv2d(x, w[:2, :2].copy(), tile=2)):
            with pytest.raises(ValueError, match=r"conv2d: .*memory limit of 10000 bytes"):
                call()
    finally:
        cnncore.set_memory_limit(old)
    assert ops.local_conv2d(x, w).shape == (2, 4, 18, 18)


def test_process_survives_a_batch_of_bad_calls():
    n, alive = bad_calls_in_subprocess(r"""
        import numpy as np
        from cnncore import ops
        x = np.ones((2, 3, 7, 7)); w = np.ones((5, 5, 4, 3, 3, 3))
        V, T = ValueError, TypeError
        bad = [
            (V, lambda: ops.local_conv2d(x, w[:4]), r"H_out=5, W_out=5; weight must have shape"),
            (V, lambda: ops.local_conv2d(x, w, np.ones(4)),
             r"bias must have one value per output channel and position"),
            (T, lambda: ops.local_conv2d(x.astype(int), w),
             r"x must be a float32 or float64 array, got dtype int64"),
            (T, lambda: ops.local_conv2d(x, w.astype(np.float32)),
             r"weight has dtype float32 but x has float64"),
            (V, lambda: ops.local_conv2d_backward(np.ones((2, 4, 1, 1)), x, w),
             r"grad_out must have the forward output's shape .*got \(2, 4, 1, 1\)"),
            (V, lambda: ops.local_conv2d(x, np.ones((5, 5, 4, 2, 3, 3))),
             r"weight has C_in=2 .*but x has 3 channels"),
            (V, lambda: ops.local_conv2d(x, w, stride=0), r"stride must be positive, got 0"),
            (V, lambda: ops.tiled_conv2d(x, w, tile=0), r"tile must be positive, got 0"),
            (V, lambda: ops.tiled_conv2d(x, w, tile=(2, -1)),
             r"tile must be positive, got -1 on axis W"),
        ]
        alive = lambda: float(ops.local_conv2d(x, w).sum())
    """)
    assert n == 9
    assert alive == 2 * 4 * 5 * 5 * 27
