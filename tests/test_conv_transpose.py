"""Transposed convolution (1-3 D): the adjoint of convolution, its gradients,
output sizes and bad input; conv1d/conv3d through the shared N-d core."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnncore import ops
from helpers import GRAD_NAMES, assert_gradients_match, torch_order

CONV = {1: ops.conv1d, 2: ops.conv2d, 3: ops.conv3d}
CONV_BWD = {1: ops.conv1d_backward, 2: ops.conv2d_backward, 3: ops.conv3d_backward}
TCONV = {1: ops.conv_transpose1d, 2: ops.conv_transpose2d, 3: ops.conv_transpose3d}
TCONV_BWD = {1: ops.conv_transpose1d_backward, 2: ops.conv_transpose2d_backward,
             3: ops.conv_transpose3d_backward}


@st.composite
def transpose_cases(draw):
    nd = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([1, 2]))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))
    k = [draw(st.integers(1, 3)) for _ in range(nd)]
    stride = [draw(st.integers(1, 3)) for _ in range(nd)]
    dilation = [draw(st.integers(1, 2)) for _ in range(nd)]
    size = [draw(st.integers(1, 4 if nd == 3 else 6)) for _ in range(nd)]
    padding = []
    for a in range(nd):
        full = (size[a] - 1) * stride[a] + dilation[a] * (k[a] - 1) + 1
        before = draw(st.integers(0, (full - 1) // 2))
        padding += [before, draw(st.integers(0, (full - 1) // 2))]
    out_pad = [draw(st.integers(0, max(stride[a], dilation[a]) - 1)) for a in range(nd)]
    n = draw(st.integers(1, 2))  # batch 0: test_empty_batches.py
    return dict(nd=nd, x=(n, c_in, *size), w=(c_in, c_out // groups, *k),
                kw=dict(stride=stride, padding=torch_order(padding), output_padding=out_pad,
                        groups=groups,
                        dilation=dilation))


def _data(case, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(case["x"]), rng.standard_normal(case["w"])


@given(transpose_cases())
def test_output_size_formula(case):
    x, w = _data(case)
    nd, kw = case["nd"], case["kw"]
    y = TCONV[nd](x, w, **kw)
    pads = torch_order(kw["padding"])
    want = [(x.shape[2 + a] - 1) * kw["stride"][a] - pads[2 * a] - pads[2 * a + 1]
            + kw["dilation"][a] * (w.shape[2 + a] - 1) + kw["output_padding"][a] + 1
            for a in range(nd)]
    assert y.shape == (x.shape[0], w.shape[1] * kw["groups"], *want)
    shape_fn = getattr(ops, f"conv_transpose{nd}d_output_shape")
    assert shape_fn(x.shape, w.shape, **kw) == y.shape


@given(transpose_cases())
def test_transpose_is_the_adjoint_of_convolution(case):
    """<conv_transpose(x), g> == <x, conv(G)> with the same weights, where G is g
    placed into the full (uncropped) output at offset pad_before — the part of
    g past the full output (from output_padding) multiplies nothing."""
    x, w = _data(case)
    nd, kw = case["nd"], case["kw"]
    y = TCONV[nd](x, w, **kw)
    g = np.random.default_rng(3).standard_normal(y.shape)
    full = [(x.shape[2 + a] - 1) * kw["stride"][a] + kw["dilation"][a] * (w.shape[2 + a] - 1) + 1
            for a in range(nd)]
    G = np.zeros((*y.shape[:2], *full))
    dst, src = [slice(None)] * 2, [slice(None)] * 2
    for a in range(nd):
        before = torch_order(kw["padding"])[2 * a]
        n = min(y.shape[2 + a], full[a] - before)
        dst.append(slice(before, before + n))
        src.append(slice(0, n))
    G[tuple(dst)] = g[tuple(src)]
    back = CONV[nd](G, w, stride=kw["stride"], dilation=kw["dilation"], groups=kw["groups"])
    assert back.shape == x.shape
    np.testing.assert_allclose(np.vdot(y, g), np.vdot(x, back), rtol=1e-10, atol=1e-10)


@given(transpose_cases())
def test_backward_data_is_convolution_and_adjoint_holds(case):
    x, w = _data(case)
    nd, kw = case["nd"], case["kw"]
    y = TCONV[nd](x, w, **kw)
    g = np.random.default_rng(4).standard_normal(y.shape)
    gx, gw, gb = TCONV_BWD[nd](g, x, w, **kw)
    assert gx.shape == x.shape and gw.shape == w.shape
    # The op is bilinear: <y, g> = <x, gx> = <w, gw>.
    lhs = np.vdot(y, g)
    np.testing.assert_allclose(np.vdot(x, gx), lhs, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(np.vdot(w, gw), lhs, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gb, g.sum(axis=tuple(i for i in range(g.ndim) if i != 1)),
                               rtol=1e-12, atol=1e-12)


def test_finite_differences_2d():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 2, 3, 4))
    w = rng.standard_normal((2, 3, 2, 3))
    b = rng.standard_normal(3)
    kw = dict(stride=(2, 1), padding=(0, 1, 1, 0), output_padding=(1, 0), dilation=(1, 2))
    G = rng.standard_normal(ops.conv_transpose2d(x, w, b, **kw).shape)
    gx, gw, gb = ops.conv_transpose2d_backward(G, x, w, **kw)

    def loss():
        return np.sum(ops.conv_transpose2d(x, w, b, **kw) * G)

    assert_gradients_match(loss, (x, w, b), (gx, gw, gb), GRAD_NAMES,
                           min_abs=1e-3)


def test_float32_small_integers_exact_across_algorithms():
    rng = np.random.default_rng(6)
    x = rng.integers(-8, 9, (2, 3, 5, 4)).astype(np.float32)
    w = rng.integers(-8, 9, (3, 2, 3, 3)).astype(np.float32)
    kw = dict(stride=2, padding=1, output_padding=1)
    ref = ops.conv_transpose2d(x, w, algorithm="reference", **kw)
    np.testing.assert_array_equal(ops.conv_transpose2d(x, w, algorithm="im2col", **kw), ref)
    assert ref.dtype == np.float32


@pytest.mark.parametrize("nd", [1, 3])
def test_conv1d_conv3d_match_conv2d_with_unit_axes(nd):
    """conv1d over L equals conv2d over (1, L); conv3d over (1, H, W) equals conv2d."""
    rng = np.random.default_rng(7)
    if nd == 1:
        x, w = rng.standard_normal((2, 3, 9)), rng.standard_normal((4, 3, 3))
        y = ops.conv1d(x, w, stride=2, padding=(2, 1), dilation=2, padding_mode="reflect")
        y2 = ops.conv2d(x[:, :, None], w[:, :, None], stride=(1, 2), padding=(2, 1, 0, 0),
                        dilation=(1, 2), padding_mode="reflect")
        np.testing.assert_allclose(y, y2[:, :, 0], rtol=1e-12, atol=1e-12)
        g = rng.standard_normal(y.shape)
        for a, b in zip(ops.conv1d_backward(g, x, w, stride=2, padding=(2, 1), dilation=2,
                                            padding_mode="reflect"),
                        ops.conv2d_backward(g[:, :, None], x[:, :, None], w[:, :, None],
                                            stride=(1, 2), padding=(2, 1, 0, 0), dilation=(1, 2),
                                            padding_mode="reflect")):
            np.testing.assert_allclose(a, b.reshape(a.shape), rtol=1e-12, atol=1e-12)
    else:
        x, w = rng.standard_normal((2, 3, 1, 7, 6)), rng.standard_normal((4, 3, 1, 3, 2))
        y = ops.conv3d(x, w, padding="same", padding_mode="circular", flip=True)
        y2 = ops.conv2d(x[:, :, 0], w[:, :, 0], padding="same", padding_mode="circular", flip=True)
        np.testing.assert_allclose(y[:, :, 0], y2, rtol=1e-12, atol=1e-12)


def test_conv3d_fast_equals_reference():
    rng = np.random.default_rng(8)
    x = rng.integers(-4, 5, (2, 4, 5, 6, 7)).astype(np.float32)
    w = rng.integers(-4, 5, (6, 2, 2, 3, 2)).astype(np.float32)
    kw = dict(stride=(1, 2, 1), padding=(0, 1, 1, 1, 1, 0), dilation=(2, 1, 1), groups=2,
              padding_mode="replicate")
    ref = ops.conv3d(x, w, algorithm="reference", **kw)
    np.testing.assert_array_equal(ops.conv3d(x, w, algorithm="im2col", **kw), ref)
    g = rng.integers(-4, 5, ref.shape).astype(np.float32)
    for a, b in zip(ops.conv3d_backward(g, x, w, algorithm="im2col", **kw),
                    ops.conv3d_backward(g, x, w, algorithm="reference", **kw)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(stride=2, output_padding=2), r"output_padding must be smaller than either stride or dilation"),
    (dict(output_padding=-1), r"output_padding must be non-negative"),
    (dict(padding=5), r"leaves no output"),
    (dict(padding="same"), r"padding must be an integer or a tuple"),
    (dict(groups=0), r"groups must be a positive integer"),
    (dict(groups=2), r"groups=2 must divide the input channels"),
    (dict(stride=(1, 1, 1)), r"stride must be an integer or a tuple of 2 integers"),
])
def test_transpose_rejects_bad_arguments(kwargs, pattern):
    x, w = np.zeros((1, 3, 4, 4)), np.zeros((3, 2, 3, 3))
    with pytest.raises(ValueError, match=pattern):
        ops.conv_transpose2d(x, w, **kwargs)
    assert ops.conv_transpose2d(x, w).shape == (1, 2, 6, 6)  # alive and well


def test_transpose_rejects_bad_arrays():
    x = np.zeros((1, 3, 4, 4))
    with pytest.raises(ValueError, match=r"weight.shape\[0\] must equal x's 3 input channels"):
        ops.conv_transpose2d(x, np.zeros((2, 2, 3, 3)))
    with pytest.raises(ValueError, match=r"bias must have shape \(2,\)"):
        ops.conv_transpose2d(x, np.zeros((3, 2, 3, 3)), np.zeros(3))
    with pytest.raises(TypeError, match="float32 or float64"):
        ops.conv_transpose2d(x.astype(int), np.zeros((3, 2, 3, 3)))
    with pytest.raises(TypeError, match="dtype"):
        ops.conv_transpose2d(x, np.zeros((3, 2, 3, 3), np.float32))
    with pytest.raises(ValueError, match="grad_out must have the forward output's shape"):
        ops.conv_transpose2d_backward(np.zeros((1, 2, 5, 5)), x, np.zeros((3, 2, 3, 3)))


def test_backward_skips_unwanted_gradients():
    rng = np.random.default_rng(9)
    x, w = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 3))
    g = rng.standard_normal(ops.conv2d(x, w, padding=1).shape)
    gx, gw, gb = ops.conv2d_backward(g, x, w, padding=1)
    only_w = ops.conv2d_backward(g, x, w, padding=1, input_grad=False)
    assert only_w[0] is None
    np.testing.assert_array_equal(only_w[1], gw)
    np.testing.assert_array_equal(only_w[2], gb)
    only_x = ops.conv2d_backward(g, x, w, padding=1, weight_grad=False, bias=False)
    np.testing.assert_array_equal(only_x[0], gx)
    assert only_x[1] is None and only_x[2] is None
    with pytest.raises(ValueError, match="grad_out must have the forward output's shape"):
        ops.conv2d_backward(g[:, :, 1:], x, w, padding=1, input_grad=False, weight_grad=False)
    with pytest.raises(TypeError, match="input_grad must be a bool"):
        ops.conv2d_backward(g, x, w, padding=1, input_grad=1)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("mode,flip", [("reflect", False), ("circular", True),
                                       ("replicate", False), ("symmetric", True),
                                       ("zeros", True)])
def test_padding_modes_and_flip_make_it_the_adjoint_of_that_convolution(nd, mode, flip):
    """<conv(x, w; mode, flip), y> == <x, conv_transpose(y, w; mode, flip)>, and its own
    backward is checked by the same identity and against finite differences."""
    rng = np.random.default_rng(nd)
    conv = getattr(ops, f"conv{nd}d")
    tconv = getattr(ops, f"conv_transpose{nd}d")
    tback = getattr(ops, f"conv_transpose{nd}d_backward")
    x = rng.standard_normal((2, 4) + (7, 6, 5)[:nd])
    w = rng.standard_normal((4, 2) + (3, 2, 3)[:nd])
    kw = dict(stride=(2, 1, 2)[:nd], padding=(2, 1, 1)[:nd], groups=2, padding_mode=mode,
              flip=flip)
    y = conv(x, w, **kw)
    g = rng.standard_normal(y.shape)
    t = tconv(g, w, output_padding=tuple((n + 2 * p - k) % s for n, p, k, s in zip(
        x.shape[2:], kw["padding"], w.shape[2:], kw["stride"])), **kw)
    assert t.shape == x.shape
    np.testing.assert_allclose(np.sum(y * g), np.sum(x * t), rtol=1e-12)
    # gradients of the transposed op: adjoint identities in both arguments
    op_kw = dict(kw, output_padding=tuple((n + 2 * p - k) % s for n, p, k, s in zip(
        x.shape[2:], kw["padding"], w.shape[2:], kw["stride"])))
    h = rng.standard_normal(t.shape)
    gx, gw, gb = tback(h, g, w, **op_kw)
    np.testing.assert_allclose(np.sum(tconv(g, w, **op_kw) * h), np.sum(g * gx), rtol=1e-12)
    np.testing.assert_allclose(np.sum(tconv(g, w, **op_kw) * h), np.sum(w * gw), rtol=1e-12)
    np.testing.assert_allclose(gb, h.sum(axis=(0,) + tuple(range(2, h.ndim))), rtol=1e-12)
    b = rng.standard_normal(w.shape[1] * 2)
    np.testing.assert_allclose(tconv(g, w, b, **op_kw) - tconv(g, w, **op_kw),
                               np.broadcast_to(b.reshape((1, -1) + (1,) * nd), t.shape))


def test_transposed_layers_take_padding_mode_and_flip():
    import cnncore as cc
    from cnncore import nn
    m = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1, padding_mode="circular", flip=True,
                           dtype=np.float64)
    assert "padding_mode='circular'" in repr(m) and "flip=True" in repr(m)
    x = cc.tensor(np.random.default_rng(0).standard_normal((1, 2, 4, 4)), requires_grad=True)
    y = m(x)
    want = ops.conv_transpose2d(x.data, m.weight.data, m.bias.data, stride=2, padding=1,
                                padding_mode="circular", flip=True)
    np.testing.assert_allclose(y.data, want, rtol=1e-12)
    y.sum().backward()
    assert x.grad.shape == x.shape and m.weight.grad.shape == m.weight.shape
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        ops.conv_transpose2d(x.data, m.weight.data, padding_mode="mirror")
    lc = nn.LocallyConnected2d(2, 3, 3, (5, 5), padding="same", padding_mode="reflect",
                               flip=True, dtype=np.float64)
    z = cc.tensor(np.random.default_rng(1).standard_normal((1, 2, 5, 5)))
    np.testing.assert_allclose(lc(z).data, ops.local_conv2d(
        z.data, lc.weight.data, lc.bias.data, padding="same", padding_mode="reflect",
        flip=True), rtol=1e-12)
    tc = nn.TiledConv2d(2, 3, 2, 2, padding=(1, 0, 1, 0), padding_mode="circular", flip=True,
                        dtype=np.float64)
    np.testing.assert_allclose(tc(z).data, ops.tiled_conv2d(
        z.data, tc.weight.data, tc.bias.data, tile=2, padding=(1, 0, 1, 0),
        padding_mode="circular", flip=True), rtol=1e-12)
