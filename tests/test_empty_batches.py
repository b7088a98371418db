"""Empty batches and empty feature sizes, every op family, forward and backward: the
property tests draw batch >= 1 (so their assertions are never vacuous), and these cover
size 0 explicitly: the right shapes and dtypes, zero gradients where a sum is empty."""
import numpy as np
import pytest

from cnncore import ops

DTYPES = [np.float32, np.float64]


def _z(*shape, dtype=np.float64):
    return np.zeros(shape, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algorithm", ["reference", "im2col", "fft"])
def test_conv_batch_zero(dtype, algorithm):
    x, w, b = _z(0, 3, 6, 5, dtype=dtype), np.ones((4, 3, 3, 2), dtype), np.ones(4, dtype)
    y = ops.conv2d(x, w, b, padding=1, algorithm=algorithm)
    assert y.shape == (0, 4, 6, 6) and y.dtype == dtype
    gx, gw, gb = ops.conv2d_backward(_z(0, 4, 6, 6, dtype=dtype), x, w, padding=1,
                                     algorithm=algorithm)
    assert gx.shape == x.shape and gx.dtype == dtype
    np.testing.assert_array_equal(gw, np.zeros_like(w))        # a sum over no images
    np.testing.assert_array_equal(gb, np.zeros(4, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv_1d_3d_depthwise_transpose_separable_batch_zero(dtype):
    y = ops.conv1d(_z(0, 2, 7, dtype=dtype), np.ones((3, 2, 3), dtype))
    assert y.shape == (0, 3, 5) and y.dtype == dtype
    y = ops.conv3d(_z(0, 1, 3, 3, 3, dtype=dtype), np.ones((2, 1, 2, 2, 2), dtype))
    assert y.shape == (0, 2, 2, 2, 2)
    y = ops.conv2d(_z(0, 4, 5, 5, dtype=dtype), np.ones((4, 1, 3, 3), dtype), groups=4,
                   algorithm="direct")
    assert y.shape == (0, 4, 3, 3)
    x, w = _z(0, 2, 3, 3, dtype=dtype), np.ones((2, 3, 3, 3), dtype)
    y = ops.conv_transpose2d(x, w, stride=2)
    assert y.shape == (0, 3, 7, 7) and y.dtype == dtype
    gx, gw, gb = ops.conv_transpose2d_backward(_z(0, 3, 7, 7, dtype=dtype), x, w, stride=2)
    assert gx.shape == x.shape and not gw.any() and not gb.any()
    dw, pw = np.ones((2, 1, 3, 3), dtype), np.ones((5, 2, 1, 1), dtype)
    y = ops.separable_conv2d(_z(0, 2, 4, 4, dtype=dtype), dw, pw)
    assert y.shape == (0, 5, 2, 2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_local_and_tiled_conv_batch_zero(dtype):
    x = _z(0, 2, 4, 4, dtype=dtype)
    w = np.ones((2, 2, 3, 2, 3, 3), dtype)
    y = ops.local_conv2d(x, w)
    assert y.shape == (0, 3, 2, 2) and y.dtype == dtype
    gx, gw, gb = ops.local_conv2d_backward(_z(0, 3, 2, 2, dtype=dtype), x, w)
    assert gx.shape == x.shape and not gw.any() and not gb.any()
    y = ops.tiled_conv2d(x, np.ones((1, 2, 3, 2, 3, 3), dtype), tile=(1, 2))
    assert y.shape == (0, 3, 2, 2)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn,args", [("max_pool2d", (2,)), ("avg_pool2d", (2,)),
                                     ("lp_pool2d", (2.0, 2)), ("weighted_avg_pool2d", (3,)),
                                     ("adaptive_avg_pool2d", ((2, 3),)),
                                     ("adaptive_max_pool2d", (2,)), ("global_avg_pool2d", ())])
def test_pool_batch_zero(dtype, fn, args):
    x = _z(0, 3, 6, 6, dtype=dtype)
    y = getattr(ops, fn)(x, *args)
    assert y.shape[:2] == (0, 3) and y.dtype == dtype
    g = getattr(ops, fn + "_backward")(np.zeros(y.shape, dtype), x, *args)
    assert g.shape == x.shape and g.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_ops_empty(dtype):
    x = _z(0, 4, dtype=dtype)
    for fn in ("relu", "sigmoid", "tanh"):
        assert getattr(ops, fn)(x).shape == (0, 4)
        assert getattr(ops, fn + "_backward")(x, x).shape == (0, 4)
    assert ops.softmax(x, 1).shape == (0, 4) and ops.log_softmax_backward(x, x, 1).shape == (0, 4)
    assert ops.dropout(x, 0.5, seed=1).shape == (0, 4)
    # linear with an empty batch, and with no input features (the product is all bias)
    w, b = np.ones((3, 4), dtype), np.arange(3, dtype=dtype)
    assert ops.linear(x, w, b).shape == (0, 3)
    gx, gw, gb = ops.linear_backward(_z(0, 3, dtype=dtype), x, w, b)
    assert gx.shape == (0, 4) and not gw.any() and not gb.any()
    y = ops.linear(_z(2, 0, dtype=dtype), _z(3, 0, dtype=dtype), b)
    np.testing.assert_array_equal(y, np.tile(b, (2, 1)))
    # a mean over no targets is NaN (as torch); sum is 0
    t = np.zeros(0, np.int64)
    assert np.isnan(ops.cross_entropy(x, t)) and ops.cross_entropy(x, t, reduction="sum") == 0
    assert ops.nll_loss(x, t, reduction="sum") == 0
    xs = _z(0, 3, 2, 2, dtype=dtype)
    y = ops.batch_norm(xs, np.zeros(3, dtype), np.ones(3, dtype))
    assert y.shape == xs.shape
    assert ops.local_response_norm(xs, 3).shape == xs.shape
