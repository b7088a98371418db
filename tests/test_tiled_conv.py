"""``ops.tiled_conv2d`` / ``tiled_conv2d_backward``: tiled convolution (Ngiam et al., 2010).

Output (i, j) uses kernel ``weight[i % tH, j % tW]`` and bias ``bias[:, i % tH, j % tW]``.

* The reference against a NumPy oracle written here; the fast path against the reference
  (bit for bit in float32 with small integers, ~1e-12 in float64, 1 and 2 threads).
* The seed's properties: tile (1, 1) is ``conv2d`` with ``weight[0, 0]``; tile
  (H_out, W_out) is ``local_conv2d`` with the same weights; any tile is ``local_conv2d``
  with the kernels repeated, and its weight gradient is the local one summed per tile
  entry; shifting the input by a multiple of the tile shifts the output (circular
  padding, stride 1); a tile larger than the output leaves unreached kernels with zero
  gradient.
* Gradients by finite differences and the adjoint identities; every rejected input.
"""
import re

import numpy as np
import pytest
from hypothesis import given, strategies as st

from cnncore import ops
from helpers import (GRAD_NAMES, SEEDS, assert_adjoint_identities, assert_gradients_match,
                     at_thread_counts, conv_geometry, conv_out_hw as out_hw, expect_error, pair,
                     random_arrays, resolve_padding, window_index_map)

MODES = ["zeros", "reflect", "replicate", "circular", "symmetric"]
F32, F64 = np.float32, np.float64


# --------------------------------------------------------------------------- oracle


def oracle_forward(x, w, b, stride=1, padding=0, dilation=1, padding_mode="zeros", flip=False):
    """y[n,o,i,j] = b[o,i%tH,j%tW] + sum w[i%tH, j%tW, o, c, a', b'] xpad[n, c, i*s+a*d, j*s+b*d]."""
    x = x.astype(F64)
    th, tw, _, _, kh, kw = w.shape
    t, bt, l, r = resolve_padding(padding, x.shape[2:], (kh, kw), stride, dilation, flip)
    (sh, sw), (dh, dw) = pair(stride), pair(dilation)
    hi = window_index_map(x.shape[2], t, bt, kh, sh, dh, padding_mode)
    wi = window_index_map(x.shape[3], l, r, kw, sw, dw, padding_mode)
    ho, wo = hi.shape[0], wi.shape[0]
    y = np.zeros((x.shape[0], w.shape[2], ho, wo))
    for i in range(ho):
        for j in range(wo):
            k = w[i % th, j % tw].astype(F64)
            if flip:
                k = k[..., ::-1, ::-1]
            rows, cols = hi[i][:, None], wi[j][None, :]
            inside = (rows >= 0) & (cols >= 0)
            patch = np.where(inside, x[:, :, np.maximum(rows, 0), np.maximum(cols, 0)], 0.0)
            y[:, :, i, j] = np.einsum("ncab,ocab->no", patch, k)
            if b is not None:
                y[:, :, i, j] += b[:, i % th, j % tw]
    return y


# --------------------------------------------------------------------------- configurations


@st.composite
def tiled_configs(draw, max_k=3, max_extra=5, channels=(1, 3, 17), batches=(1, 2, 3), max_tile=5):
    """Kernel, stride, dilation, padding, mode and tile first; then an input that suits them."""
    (kh, kw), stride, dilation, padding, mode, sizes = draw(conv_geometry(MODES, max_k, max_extra))
    tile = draw(st.one_of(st.integers(1, max_tile),
                          st.tuples(st.integers(1, max_tile), st.integers(1, max_tile))))
    c_in, c_out = draw(st.sampled_from(channels)), draw(st.sampled_from(channels))
    kwargs = dict(tile=tile, stride=stride, padding=padding, dilation=dilation, padding_mode=mode,
                  flip=draw(st.booleans()))
    n = draw(st.sampled_from(batches))
    return (n, c_in) + sizes, (c_out, c_in, kh, kw), kwargs, draw(st.booleans())


def conv_kwargs(kwargs):
    return {k: v for k, v in kwargs.items() if k != "tile"}


def make_inputs(cfg, rng, dtype, integer=False):
    x_shape, kernel, kwargs, with_bias = cfg
    th, tw = pair(kwargs["tile"])
    ho, wo = out_hw(x_shape, kernel, kwargs)
    shapes = [x_shape, (th, tw) + tuple(kernel), (kernel[0], th, tw), (x_shape[0], kernel[0], ho, wo)]
    x, w, b, g = random_arrays(rng, shapes, dtype, integer)
    return x, w, (b if with_bias else None), g


def expand(w, b, ho, wo):
    """Tiled weight/bias -> the locally connected ones that repeat them."""
    rows, cols = np.arange(ho) % w.shape[0], np.arange(wo) % w.shape[1]
    wl = w[rows][:, cols]
    bl = None if b is None else b[:, rows][:, :, cols]
    return wl, bl


def fold(gw_local, tile):
    """Local weight gradient -> tiled: summed over the positions sharing each kernel."""
    th, tw = tile
    out = np.zeros((th, tw) + gw_local.shape[2:], dtype=gw_local.dtype)
    for i in range(gw_local.shape[0]):
        for j in range(gw_local.shape[1]):
            out[i % th, j % tw] += gw_local[i, j]
    return out


# --------------------------------------------------------------------------- reference and fast path


@given(cfg=tiled_configs(channels=(1, 3), batches=(1, 2)), seed=SEEDS)
def test_reference_matches_numpy_oracle(cfg, seed):
    x, w, b, g = make_inputs(cfg, np.random.default_rng(seed), F64)
    kwargs = cfg[2]
    y = ops.tiled_conv2d(x, w, b, algorithm="reference", **kwargs)
    want = oracle_forward(x, w, b, **conv_kwargs(kwargs))
    assert y.shape == want.shape == g.shape
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("algorithm", ["im2col", "auto"])
@given(cfg=tiled_configs(), seed=SEEDS)
def test_float32_small_integers_exact(algorithm, cfg, seed):
    x, w, b, g = make_inputs(cfg, np.random.default_rng(seed), F32, integer=True)
    kwargs = cfg[2]
    ref = ops.tiled_conv2d(x, w, b, algorithm="reference", **kwargs)
    got = ops.tiled_conv2d(x, w, b, algorithm=algorithm, **kwargs)
    assert got.dtype == F32 and got.shape == g.shape
    np.testing.assert_array_equal(got, ref)
    ref_b = ops.tiled_conv2d_backward(g, x, w, algorithm="reference", **kwargs)
    got_b = ops.tiled_conv2d_backward(g, x, w, algorithm=algorithm, **kwargs)
    for name, r, a in zip(GRAD_NAMES, ref_b, got_b):
        assert a.dtype == F32 and a.shape == r.shape, name
        np.testing.assert_array_equal(a, r, err_msg=name)


@given(cfg=tiled_configs(), seed=SEEDS)
def test_float64_matches_reference(cfg, seed):
    x, w, b, g = make_inputs(cfg, np.random.default_rng(seed), F64)
    kwargs = cfg[2]
    np.testing.assert_allclose(ops.tiled_conv2d(x, w, b, algorithm="im2col", **kwargs),
                               ops.tiled_conv2d(x, w, b, algorithm="reference", **kwargs),
                               rtol=1e-12, atol=1e-11)
    ref = ops.tiled_conv2d_backward(g, x, w, algorithm="reference", bias=b is not None, **kwargs)
    got = ops.tiled_conv2d_backward(g, x, w, algorithm="im2col", bias=b is not None, **kwargs)
    for name, r, a in zip(GRAD_NAMES, ref, got):
        if r is None:
            assert a is None, name
        else:
            np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-10, err_msg=name)


@pytest.mark.parametrize("tile, n", [((1, 1), 1), ((1, 1), 4), ((2, 3), 1), ((2, 3), 5), ((9, 8), 2)])
def test_two_threads_agree_with_one(tile, n):
    """Few/many classes and images reach every threading mode of the fast path."""
    rng = np.random.default_rng(11)
    x = rng.integers(-8, 9, (n, 3, 11, 10)).astype(F32)
    w = rng.integers(-8, 9, tile + (6, 3, 3, 3)).astype(F32)
    b = rng.integers(-8, 9, (6,) + tile).astype(F32)
    g = rng.integers(-8, 9, (n, 6, 9, 8)).astype(F32)
    results = at_thread_counts(lambda: (ops.tiled_conv2d(x, w, b, tile=tile, algorithm="im2col"),)
                               + ops.tiled_conv2d_backward(g, x, w, tile=tile, algorithm="im2col"))
    ref = (ops.tiled_conv2d(x, w, b, tile=tile, algorithm="reference"),) + \
        ops.tiled_conv2d_backward(g, x, w, tile=tile, algorithm="reference")
    for one, two, r in zip(*results, ref):
        np.testing.assert_array_equal(one, r)
        np.testing.assert_array_equal(two, r)


# --------------------------------------------------------------------------- properties


@given(cfg=tiled_configs(max_tile=1), seed=SEEDS)
def test_one_tile_is_conv2d(cfg, seed):
    x, w, b, g = make_inputs(cfg, np.random.default_rng(seed), F32, integer=True)
    kwargs = cfg[2]
    ckw = conv_kwargs(kwargs)
    cb = None if b is None else b[:, 0, 0]
    np.testing.assert_array_equal(ops.tiled_conv2d(x, w, b, **kwargs), ops.conv2d(x, w[0, 0], cb, **ckw))
    tx, tw_, tb = ops.tiled_conv2d_backward(g, x, w, **kwargs)
    cx, cw, cbias = ops.conv2d_backward(g, x, w[0, 0], **ckw)
    np.testing.assert_array_equal(tx, cx)
    np.testing.assert_array_equal(tw_[0, 0], cw)
    np.testing.assert_array_equal(tb[:, 0, 0], cbias)


@given(cfg=tiled_configs(channels=(1, 3)), seed=SEEDS)
def test_output_sized_tile_is_local_conv(cfg, seed):
    x_shape, kernel, kwargs, _ = cfg
    ho, wo = out_hw(x_shape, kernel, kwargs)
    kwargs = dict(kwargs, tile=(ho, wo))
    x, w, b, g = make_inputs((x_shape, kernel, kwargs, True), np.random.default_rng(seed), F32, integer=True)
    lkw = conv_kwargs(kwargs)
    np.testing.assert_array_equal(ops.tiled_conv2d(x, w, b, **kwargs), ops.local_conv2d(x, w, b, **lkw))
    for name, t, l in zip(GRAD_NAMES,
                          ops.tiled_conv2d_backward(g, x, w, **kwargs),
                          ops.local_conv2d_backward(g, x, w, **lkw)):
        np.testing.assert_array_equal(t, l, err_msg=name)


@given(cfg=tiled_configs(channels=(1, 3)), seed=SEEDS)
def test_any_tile_is_local_conv_with_repeated_kernels(cfg, seed):
    """Tiled = local with weight[i % tH, j % tW] at (i, j); its weight and bias gradients are
    the local ones summed over the positions that share each kernel."""
    x, w, b, g = make_inputs(cfg, np.random.default_rng(seed), F32, integer=True)
    kwargs = cfg[2]
    lkw = conv_kwargs(kwargs)
    ho, wo = g.shape[2:]
    wl, bl = expand(w, b, ho, wo)
    np.testing.assert_array_equal(ops.tiled_conv2d(x, w, b, **kwargs), ops.local_conv2d(x, wl, bl, **lkw))
    tx, tw_, tb = ops.tiled_conv2d_backward(g, x, w, **kwargs)
    lx, lw, lb = ops.local_conv2d_backward(g, x, wl, **lkw)
    np.testing.assert_array_equal(tx, lx)
    np.testing.assert_array_equal(tw_, fold(lw, w.shape[:2]))
    np.testing.assert_array_equal(tb, np.moveaxis(fold(np.moveaxis(lb, 0, -1), w.shape[:2]), -1, 0))


@pytest.mark.parametrize("tile", [(1, 1), (2, 2), (3, 2), (4, 6)])
def test_shift_by_a_tile_multiple_shifts_the_output(tile):
    # Circular "same" padding, stride 1, sizes that are multiples of the tile: rolling x by
    # (p*tH, q*tW) rolls y by the same amount, exactly.
    rng = np.random.default_rng(2)
    th, tw = tile
    x = rng.integers(-8, 9, (2, 3, 3 * th * 2, 2 * tw * 3)).astype(F32)
    w = rng.integers(-8, 9, tile + (4, 3, 3, 2)).astype(F32)
    b = rng.integers(-8, 9, (4,) + tile).astype(F32)
    kw = dict(tile=tile, padding="same", padding_mode="circular")
    y = ops.tiled_conv2d(x, w, b, **kw)
    for p, q in [(1, 0), (0, 1), (2, -1)]:
        shift = (p * th, q * tw)
        np.testing.assert_array_equal(ops.tiled_conv2d(np.roll(x, shift, axis=(2, 3)), w, b, **kw),
                                      np.roll(y, shift, axis=(2, 3)))
    if tile != (1, 1):  # a shift by one pixel changes which kernel sees which pixel
        assert not np.array_equal(ops.tiled_conv2d(np.roll(x, 1, axis=2), w, b, **kw), np.roll(y, 1, axis=2))


@pytest.mark.parametrize("algorithm", ["reference", "im2col"])
def test_tile_larger_than_output(algorithm):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 2, 5, 4))
    w = rng.standard_normal((5, 7, 3, 2, 2, 2))  # output is 4 x 3
    b = rng.standard_normal((3, 5, 7))
    y = ops.tiled_conv2d(x, w, b, tile=(5, 7), algorithm=algorithm)
    assert y.shape == (2, 3, 4, 3)
    np.testing.assert_allclose(y, ops.local_conv2d(x, w[:4, :3].copy(), b[:, :4, :3].copy()), rtol=1e-13, atol=1e-13)
    g = rng.standard_normal(y.shape)
    gx, gw, gb = ops.tiled_conv2d_backward(g, x, w, tile=(5, 7), algorithm=algorithm)
    assert np.abs(gw[:4, :3]).min() > 0
    np.testing.assert_array_equal(gw[4:], 0.0)
    np.testing.assert_array_equal(gw[:, 3:], 0.0)
    np.testing.assert_array_equal(gb[:, 4:], 0.0)
    np.testing.assert_array_equal(gb[:, :, 3:], 0.0)


def test_parameter_count():
    """tH*tW*C_out*C_in*kH*kW weights whatever the input size."""
    for hw in [(6, 6), (11, 9)]:
        x = np.ones((1, 3) + hw)
        w = np.ones((2, 3, 8, 3, 3, 3))
        assert w.size == 2 * 3 * 8 * 3 * 3 * 3
        assert ops.tiled_conv2d(x, w, tile=(2, 3)).shape == (1, 8, hw[0] - 2, hw[1] - 2)


@pytest.mark.parametrize("algorithm", ["reference", "im2col"])
def test_batch_zero(algorithm):
    x = np.zeros((0, 3, 7, 5))
    w = np.ones((2, 2, 4, 3, 3, 3))
    y = ops.tiled_conv2d(x, w, np.ones((4, 2, 2)), tile=2, algorithm=algorithm)
    assert y.shape == (0, 4, 5, 3)
    gx, gw, gb = ops.tiled_conv2d_backward(np.zeros(y.shape), x, w, tile=2, algorithm=algorithm)
    assert gx.shape == x.shape
    np.testing.assert_array_equal(gw, np.zeros(w.shape))
    np.testing.assert_array_equal(gb, np.zeros((4, 2, 2)))


# --------------------------------------------------------------------------- gradients

FD_CONFIGS = {
    "tile22": ((2, 2, 5, 6), (2, 2), (3, 2, 3), dict(padding=1)),
    "tile31_stride": ((1, 2, 8, 7), (3, 1), (2, 3, 2), dict(stride=(2, 1), dilation=(1, 2), padding=(1, 0, 2, 1))),
    "reflect_flip": ((1, 1, 6, 5), (2, 3), (2, 3, 3), dict(padding="same", padding_mode="reflect", flip=True)),
    "symmetric_big_tile": ((2, 1, 4, 4), (5, 2), (2, 2, 2), dict(padding="full", padding_mode="symmetric")),
}


@pytest.mark.parametrize("algorithm", ["reference", "im2col"])
@pytest.mark.parametrize("name", list(FD_CONFIGS))
def test_backward_matches_finite_differences(algorithm, name):
    x_shape, tile, (c_out, kh, kw_), kwargs = FD_CONFIGS[name]
    rng = np.random.default_rng(9)
    kwargs = dict(kwargs, tile=tile, algorithm=algorithm)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(tile + (c_out, x_shape[1], kh, kw_))
    b = rng.standard_normal((c_out,) + tile)
    G = rng.standard_normal(ops.tiled_conv2d(x, w, b, **kwargs).shape)

    def loss():
        return float(np.sum(ops.tiled_conv2d(x, w, b, **kwargs) * G))

    got = ops.tiled_conv2d_backward(G, x, w, bias=True, **kwargs)
    assert_gradients_match(loss, (x, w, b), got, GRAD_NAMES, min_abs=1e-3)


@given(cfg=tiled_configs(batches=(1, 2)), seed=SEEDS)
def test_adjoint_identities(cfg, seed):
    x, w, _, g = make_inputs(cfg, np.random.default_rng(seed), F64)
    assert_adjoint_identities(ops.tiled_conv2d, ops.tiled_conv2d_backward, x, w, g, **cfg[2])


# --------------------------------------------------------------------------- errors


def assert_alive():
    y = ops.tiled_conv2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 1, 1, 2, 2)), tile=1)
    np.testing.assert_array_equal(y, np.full((1, 1, 2, 2), 4.0))


X = np.ones((2, 3, 7, 7))
W = np.ones((2, 3, 4, 3, 3, 3))
G = np.ones((2, 4, 5, 5))
TILED = re.escape("(tH, tW, C_out, C_in, kH, kW)")

BAD_CALLS = {
    "tile_zero": (ValueError, lambda: ops.tiled_conv2d(X, W, tile=0), [r"\btile\b", "positive", r"got 0"]),
    "tile_negative": (ValueError, lambda: ops.tiled_conv2d(X, W, tile=(2, -3)), [r"\btile\b", "got -3", "axis W"]),
    "tile_three_values": (ValueError, lambda: ops.tiled_conv2d(X, W, tile=(1, 2, 3)), [r"\btile\b", "2 integers"]),
    "tile_float": (TypeError, lambda: ops.tiled_conv2d(X, W, tile=2.0), [r"\btile\b", "integer"]),
    "tile_bool": (TypeError, lambda: ops.tiled_conv2d(X, W, tile=True), [r"\btile\b", "bool"]),
    "tile_none": (TypeError, lambda: ops.tiled_conv2d(X, W, tile=None), [r"\btile\b"]),
    "tile_mismatch": (ValueError, lambda: ops.tiled_conv2d(X, W, tile=(3, 2)),
                      [r"\bweight\b", TILED + re.escape(" = (3, 2, 4, 3, 3, 3)"), re.escape("got (2, 3, 4, 3, 3, 3)"),
                       re.escape("tile=(3, 2)")]),
    "weight_rank": (ValueError, lambda: ops.tiled_conv2d(X, np.ones((4, 3, 3, 3)), tile=1),
                    [r"\bweight\b", "6 dimensions", TILED]),
    "channels": (ValueError, lambda: ops.tiled_conv2d(X, np.ones((2, 3, 4, 5, 3, 3)), tile=(2, 3)),
                 [r"\bweight\b", "C_in=5", "x has 3 channels", TILED + re.escape(" = (2, 3, 4, 3, 3, 3)")]),
    "bias_shape": (ValueError, lambda: ops.tiled_conv2d(X, W, np.ones(4), tile=(2, 3)),
                   [r"\bbias\b", re.escape("(C_out, tH, tW) = (4, 2, 3)"), re.escape("got (4,)")]),
    "bias_layout": (ValueError, lambda: ops.tiled_conv2d(X, W, np.ones((2, 3, 4)), tile=(2, 3)),
                    [r"\bbias\b", re.escape("(4, 2, 3)"), re.escape("got (2, 3, 4)")]),
    "mixed_dtypes": (TypeError, lambda: ops.tiled_conv2d(X.astype(F32), W, tile=(2, 3)),
                     [r"\bweight\b", "float32", "float64"]),
    "integer_weight": (TypeError, lambda: ops.tiled_conv2d(X, W.astype(np.int16), tile=(2, 3)),
                       [r"\bweight\b", "int16"]),
    "complex_x": (TypeError, lambda: ops.tiled_conv2d(X.astype(complex), W, tile=(2, 3)), [r"\bx\b", "complex"]),
    "grad_out_shape": (ValueError, lambda: ops.tiled_conv2d_backward(np.ones((2, 4, 5, 6)), X, W, tile=(2, 3)),
                       [r"\bgrad_out\b", re.escape("(2, 4, 5, 5)"), re.escape("got (2, 4, 5, 6)")]),
    "grad_out_dtype": (TypeError, lambda: ops.tiled_conv2d_backward(G.astype(F32), X, W, tile=(2, 3)),
                       [r"\bgrad_out\b", "float32"]),
    "backward_tile_zero": (ValueError, lambda: ops.tiled_conv2d_backward(G, X, W, tile=(0, 3)),
                           [r"\btile\b", "positive"]),
    "padding_mode": (ValueError, lambda: ops.tiled_conv2d(X, W, tile=(2, 3), padding_mode="wrap"),
                     [r"\bpadding_mode\b", "wrap"]),
    "stride_zero": (ValueError, lambda: ops.tiled_conv2d(X, W, tile=(2, 3), stride=(1, 0)), [r"\bstride\b"]),
    "algorithm": (ValueError, lambda: ops.tiled_conv2d(X, W, tile=(2, 3), algorithm="direct"),
                  [r"\balgorithm\b", "direct"]),
}


@pytest.mark.parametrize("name", list(BAD_CALLS))
def test_bad_input(name):
    exc, call, patterns = BAD_CALLS[name]
    expect_error(exc, call, "tiled_conv2d", *patterns, alive=assert_alive)


def test_tile_is_required():
    with pytest.raises(TypeError, match="tile"):
        ops.tiled_conv2d(X, W)
    with pytest.raises(TypeError, match="tile"):
        ops.tiled_conv2d_backward(G, X, W)
    assert_alive()
