"""Regressions for the size arithmetic an audit found unchecked (issue 8, findings 1, 2
and 5): transposed-convolution padding near 2**63 (heap reads and writes past the
buffer), strides near 2**63 on the fast pooling path, adaptive pooling with an output
size near 2**63, zero-size tensors whose extents multiply past 2**63, unaligned arrays,
and Gaussian pooling weights that all underflowed (0/0 = NaN)."""
import numpy as np
import pytest

from cnncore import ops

P = 2 ** 63 - 1  # the largest int64


@pytest.mark.parametrize("padding", [(P, P), (P, 0), (0, P), (P, P - 1), (P - 4, 3)])
def test_conv_transpose1d_padding_near_int64_max_is_refused(padding):
    x, w = np.ones((1, 1, 4), "f4"), np.ones((1, 1, 3), "f4")
    with pytest.raises(ValueError, match=r"^conv_transpose1d: padding .* leaves no output on spatial axis 0"):
        ops.conv_transpose1d(x, w, padding=padding)
    with pytest.raises(ValueError, match=r"leaves no output"):
        ops.conv_transpose1d_output_shape(x.shape, w.shape, padding=padding)


@pytest.mark.parametrize("padding", [(P, P, 0, 0), (P, P - 10 ** 7, 0, 0), (P, P - 100, 0, 0),
                                     (0, 0, P, 1), (3, P, 0, 0)])
def test_conv_transpose2d_padding_near_int64_max_is_refused_forward_and_backward(padding):
    x, w = np.ones((1, 1, 4, 4), "f4"), np.ones((1, 1, 3, 3), "f4")
    with pytest.raises(ValueError, match=r"^conv_transpose2d: padding .* leaves no output"):
        ops.conv_transpose2d(x, w, padding=padding)
    with pytest.raises(ValueError, match=r"^conv_transpose2d: padding .* leaves no output"):
        ops.conv_transpose2d_backward(np.ones((1, 1, 1, 1), "f4"), x, w, padding=padding)


def test_conv_transpose_padding_that_leaves_exactly_one_output():
    # full = 6: padding (2, 3) leaves position 2 only; (3, 3) leaves nothing.
    x = np.arange(4, dtype="f8").reshape(1, 1, 4)
    w = np.array([1.0, 10.0, 100.0]).reshape(1, 1, 3)
    full = ops.conv_transpose1d(x, w)
    assert full.shape == (1, 1, 6)
    np.testing.assert_array_equal(ops.conv_transpose1d(x, w, padding=(2, 3)), full[:, :, 2:3])
    np.testing.assert_array_equal(ops.conv_transpose1d(x, w, padding=(0, 5)), full[:, :, :1])
    np.testing.assert_array_equal(ops.conv_transpose1d(x, w, padding=(5, 0)), full[:, :, 5:])
    # output_padding extends the extent the padding is cropped from.
    y = ops.conv_transpose1d(x, w, stride=2, padding=(9, 0), output_padding=1)
    assert y.shape == (1, 1, 1) and y[0, 0, 0] == 0.0
    with pytest.raises(ValueError, match=r"leaves no output.*\(10 with output_padding\)"):
        ops.conv_transpose1d(x, w, stride=2, padding=(9, 1), output_padding=1)


def test_conv_transpose_large_asymmetric_padding_backward_matches_the_adjoint():
    # Crops that leave a window at the far end of the full output: the backward
    # embeds grad_out there (it once wrote past the buffer).
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((1, 2, 5, 4)), rng.standard_normal((2, 3, 3, 3))
    pad = (0, 5, 6, 0)      # (left, right, top, bottom), as F.pad
    y = ops.conv_transpose2d(x, w, padding=pad)
    full = ops.conv_transpose2d(x, w)
    np.testing.assert_allclose(y, full[:, :, 6:, :1], rtol=1e-12)
    g = rng.standard_normal(y.shape)
    gx, gw, _ = ops.conv_transpose2d_backward(g, x, w, padding=pad)
    gfull = np.zeros_like(full)
    gfull[:, :, 6:, :1] = g
    fx, fw, _ = ops.conv_transpose2d_backward(gfull, x, w)
    np.testing.assert_allclose(gx, fx, rtol=1e-12)
    np.testing.assert_allclose(gw, fw, rtol=1e-12)


@pytest.mark.parametrize("kind", ["max", "avg", "lp", "weighted_avg"])
@pytest.mark.parametrize("stride", [2 ** 62, 2 ** 63 - 8, 2 ** 63 - 3])
def test_pool_stride_near_int64_max_fast_path_matches_reference(kind, stride):
    x = np.random.default_rng(1).standard_normal((2, 3, 5, 7))
    f = getattr(ops, kind + "_pool2d")
    lead = (2, 2) if kind == "lp" else (2,)  # lp_pool takes norm_type first
    ref = f(x, *lead, stride=stride, algorithm="reference")
    fast = f(x, *lead, stride=stride, algorithm="direct")
    assert ref.shape == (2, 3, 1, 1)
    np.testing.assert_allclose(fast, ref, rtol=1e-12)
    assert np.all(np.isfinite(fast))
    # backward too
    g = np.ones(ref.shape)
    for alg in ("reference", "direct"):
        gx = getattr(ops, kind + "_pool2d_backward")(g, x, *lead, stride=stride, algorithm=alg)
        assert np.all(np.isfinite(gx)) and gx.shape == x.shape


def test_pool_stride_and_padding_near_int64_max_give_one_window():
    x = np.arange(12.0).reshape(1, 1, 3, 4)
    y = ops.max_pool2d(x, 2, stride=2 ** 63 - 8, padding=1, algorithm="direct")
    assert y.shape == (1, 1, 1, 1) and y[0, 0, 0, 0] == 0.0


@pytest.mark.parametrize("size", [2 ** 63 - 1, 2 ** 63 - 2, 2 ** 62])
def test_adaptive_pool_output_size_near_int64_max_is_a_value_error(size):
    x = np.ones((1, 1, 4, 4))
    for f in (ops.adaptive_avg_pool2d, ops.adaptive_max_pool2d):
        with pytest.raises(ValueError) as err:
            f(x, (size, 1))
        msg = str(err.value)
        assert msg.startswith(f.__name__) and "output_size" in msg
        assert "-9223372036854775" not in msg  # no wrapped negative number


def test_zero_size_result_with_extents_past_int64():
    # numel 0 but the extents multiply past 2**63: the strides must not overflow
    # (UBSan flagged Tensor::strides); NumPy cannot hold the result, so a ValueError.
    with pytest.raises(ValueError):
        ops.pad(np.empty((0, 1, 1, 1)), 2 ** 40)
    y = ops.pad(np.empty((0, 1, 1, 1)), 2 ** 20)
    assert y.shape == (0, 1, 2 ** 21 + 1, 2 ** 21 + 1)


@pytest.mark.parametrize("dtype", ["f4", "f8"])
def test_unaligned_arrays_are_copied_and_give_the_aligned_answer(dtype):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 7, 6)).astype(dtype)
    w = rng.standard_normal((4, 3, 3, 3)).astype(dtype)

    def unaligned(a):
        buf = bytearray(a.nbytes + 1)
        u = np.frombuffer(buf, dtype=a.dtype, count=a.size, offset=1).reshape(a.shape)
        u[...] = a
        assert not u.flags.aligned and u.flags.c_contiguous
        return u

    ux, uw = unaligned(x), unaligned(w)
    np.testing.assert_array_equal(ops.conv2d(ux, uw), ops.conv2d(x, w))
    np.testing.assert_array_equal(ops.conv2d(ux, uw, algorithm="im2col"), ops.conv2d(x, w, algorithm="im2col"))
    np.testing.assert_array_equal(ops.max_pool2d(ux, 2), ops.max_pool2d(x, 2))
    np.testing.assert_array_equal(ops.relu(ux), ops.relu(x))
    # int64 arguments too: class targets and max-pool indices (found by the fuzz
    # harness under UBSan: the core loaded them through a misaligned int64*)
    logits, target = x.reshape(6, -1)[:, :5].copy(), np.array([0, 4, 2, 1, 3, 0])
    ut = unaligned(target)
    np.testing.assert_array_equal(ops.cross_entropy(logits, ut), ops.cross_entropy(logits, target))
    np.testing.assert_array_equal(ops.nll_loss_backward(1.0, logits, ut), ops.nll_loss_backward(1.0, logits, target))
    y, idx = ops.max_pool2d(x, 2, return_indices=True)
    g = np.ones(y.shape, x.dtype)
    np.testing.assert_array_equal(ops.max_pool2d_backward(g, x, 2, indices=unaligned(idx)),
                                  ops.max_pool2d_backward(g, x, 2, indices=idx))


def _window_means(x, k):
    n, c, h, w = x.shape
    c0 = k // 2 - 1  # the central 2x2 taps of an even window
    out = np.empty((n, c, h // k, w // k))
    for i in range(h // k):
        for j in range(w // k):
            out[:, :, i, j] = x[:, :, i * k + c0:i * k + c0 + 2, j * k + c0:j * k + c0 + 2].mean(axis=(2, 3))
    return out


@pytest.mark.parametrize("sigma", [0.05, 0.01, 1e-5, 1e-200, 5e-324])
@pytest.mark.parametrize("algorithm", ["reference", "direct"])
def test_weighted_pool_even_kernel_small_sigma_is_the_central_mean(sigma, algorithm):
    # With sigma -> 0 the Gaussian keeps only the taps nearest the centre: for an
    # even kernel the central 2x2, weighted equally. It used to be 0/0 = NaN.
    x = np.random.default_rng(3).standard_normal((2, 2, 8, 8))
    y = ops.weighted_avg_pool2d(x, 4, sigma=sigma, algorithm=algorithm)
    np.testing.assert_allclose(y, _window_means(x, 4), rtol=1e-12, atol=1e-15)
    gx = ops.weighted_avg_pool2d_backward(np.ones(y.shape), x, 4, sigma=sigma, algorithm=algorithm)
    assert np.all(np.isfinite(gx))
    np.testing.assert_allclose(gx.sum(), y.size, rtol=1e-12)


@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_weighted_pool_weights_unchanged_for_ordinary_sigma(k):
    # The relative exponent must not change the weights where nothing underflowed.
    x = np.random.default_rng(4).standard_normal((1, 1, 2 * k, 2 * k))
    sigma = 0.7
    t = np.arange(k) - (k - 1) / 2
    g = np.exp(-0.5 * (t / sigma) ** 2)
    g2 = np.outer(g, g) / np.outer(g, g).sum()
    expect = np.array([[(x[0, 0, i * k:i * k + k, j * k:j * k + k] * g2).sum() for j in range(2)]
                       for i in range(2)])
    for alg in ("reference", "direct"):
        y = ops.weighted_avg_pool2d(x, k, sigma=sigma, algorithm=alg)
        np.testing.assert_allclose(y[0, 0], expect, rtol=1e-12)
