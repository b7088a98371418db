"""cnncore.functional: every op differentiates through its C++ backward kernel.

Each case builds float64 inputs and checks autograd against central finite
differences (eps 1e-6, atol 1e-5, rtol 1e-3) via ``cnncore.gradcheck``.
"""
import numpy as np
import pytest

import cnncore as cc
from cnncore import functional as F
from cnncore import gradcheck


def T(rng, *shape, grad=True, scale=1.0):
    return cc.tensor(scale * rng.standard_normal(shape), requires_grad=grad)


def distinct(rng, *shape, offset=0.0):
    """Well-separated values (no near-ties for max pooling, none near 0 after ``offset``)."""
    n = int(np.prod(shape))
    return cc.tensor(rng.permutation(n).reshape(shape) * 0.1 + 0.01 * rng.standard_normal(shape)
                     + offset, requires_grad=True)


CASES = {
    "conv1d": lambda r: (lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1),
                         [T(r, 2, 3, 7), T(r, 4, 3, 3), T(r, 4)]),
    "conv2d": lambda r: (lambda x, w, b: F.conv2d(x, w, b, 1, "same", 1, 1),
                         [T(r, 2, 2, 5, 4), T(r, 3, 2, 3, 3), T(r, 3)]),
    "conv2d-groups-dilation-stride": lambda r: (
        lambda x, w: F.conv2d(x, w, None, 2, 1, 2, 2), [T(r, 1, 4, 7, 7), T(r, 4, 2, 2, 2)]),
    "conv2d-flip-reflect": lambda r: (
        lambda x, w, b: F.conv2d(x, w, b, padding=1, padding_mode="reflect", flip=True),
        [T(r, 1, 2, 4, 5), T(r, 2, 2, 3, 3), T(r, 2)]),
    "conv2d-fft": lambda r: (lambda x, w, b: F.conv2d(x, w, b, padding=2, algorithm="fft"),
                             [T(r, 1, 2, 6, 5), T(r, 2, 2, 5, 5), T(r, 2)]),
    "conv3d": lambda r: (lambda x, w, b: F.conv3d(x, w, b, padding=1),
                         [T(r, 1, 2, 3, 3, 3), T(r, 2, 2, 2, 2, 2), T(r, 2)]),
    "conv_transpose2d": lambda r: (
        lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
        [T(r, 1, 3, 3, 3), T(r, 3, 2, 3, 3), T(r, 2)]),
    "conv_transpose1d": lambda r: (lambda x, w: F.conv_transpose1d(x, w, stride=2),
                                   [T(r, 2, 2, 4), T(r, 2, 3, 3)]),
    "separable_conv2d": lambda r: (
        lambda x, dw, pw, b: F.separable_conv2d(x, dw, pw, b, padding=1),
        [T(r, 1, 2, 4, 4), T(r, 4, 1, 3, 3), T(r, 3, 4, 1, 1), T(r, 3)]),
    "local_conv2d": lambda r: (lambda x, w, b: F.local_conv2d(x, w, b),
                               [T(r, 2, 2, 4, 4), T(r, 2, 2, 3, 2, 3, 3), T(r, 3, 2, 2)]),
    "tiled_conv2d": lambda r: (lambda x, w, b: F.tiled_conv2d(x, w, b, tile=2, padding=1),
                               [T(r, 1, 2, 4, 4), T(r, 2, 2, 2, 2, 3, 3), T(r, 2, 2, 2)]),
    "pad-reflect": lambda r: (lambda x: F.pad(x, (1, 2, 2, 0), mode="reflect"),
                              [T(r, 1, 2, 4, 4)]),
    "pad-constant": lambda r: (lambda x: F.pad(x, (1, 1), value=0.0), [T(r, 2, 1, 3, 3)]),
    "max_pool2d": lambda r: (lambda x: F.max_pool2d(x, 2, 1, padding=1),
                             [distinct(r, 1, 2, 4, 4)]),
    "max_pool2d-ceil-dilation": lambda r: (
        lambda x: F.max_pool2d(x, 2, 2, dilation=2, ceil_mode=True), [distinct(r, 1, 1, 6, 6)]),
    "max_pool1d": lambda r: (lambda x: F.max_pool1d(x, 3, 2), [distinct(r, 2, 2, 7)]),
    "max_pool3d": lambda r: (lambda x: F.max_pool3d(x, 2), [distinct(r, 1, 1, 4, 4, 2)]),
    "avg_pool2d": lambda r: (lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
                             [T(r, 2, 2, 5, 5)]),
    "avg_pool1d": lambda r: (lambda x: F.avg_pool1d(x, 2), [T(r, 1, 3, 6)]),
    "lp_pool2d": lambda r: (lambda x: F.lp_pool2d(x, 2.0, 2), [T(r, 1, 2, 4, 4)]),
    "lp_pool2d-p3": lambda r: (lambda x: F.lp_pool2d(x, 3.0, 2, 1), [T(r, 1, 1, 5, 5)]),
    "weighted_avg_pool2d": lambda r: (lambda x: F.weighted_avg_pool2d(x, 3, 1, 1, sigma=0.8),
                                      [T(r, 1, 2, 4, 4)]),
    "adaptive_avg_pool2d": lambda r: (lambda x: F.adaptive_avg_pool2d(x, (2, 3)),
                                      [T(r, 1, 2, 5, 7)]),
    "adaptive_avg_pool2d-upsample": lambda r: (lambda x: F.adaptive_avg_pool2d(x, 4),
                                               [T(r, 1, 1, 2, 3)]),
    "adaptive_max_pool2d": lambda r: (lambda x: F.adaptive_max_pool2d(x, 2),
                                      [distinct(r, 1, 2, 5, 5)]),
    "global_avg_pool2d": lambda r: (F.global_avg_pool2d, [T(r, 2, 3, 3, 2)]),
    "global_max_pool2d": lambda r: (F.global_max_pool2d, [distinct(r, 2, 3, 3, 2)]),
    "relu": lambda r: (F.relu, [distinct(r, 3, 5, offset=-0.75)]),
    "leaky_relu": lambda r: (lambda x: F.leaky_relu(x, 0.2), [distinct(r, 3, 5, offset=-0.75)]),
    "sigmoid": lambda r: (F.sigmoid, [T(r, 3, 4)]),
    "tanh": lambda r: (F.tanh, [T(r, 3, 4)]),
    "softmax": lambda r: (lambda x: F.softmax(x, 1), [T(r, 3, 4, 2)]),
    "log_softmax": lambda r: (lambda x: F.log_softmax(x, -1), [T(r, 3, 4)]),
    "local_response_norm": lambda r: (lambda x: F.local_response_norm(x, 3, 0.1, 0.75, 1.0),
                                      [T(r, 2, 5, 2, 2)]),
    "batch_norm-train": lambda r: (
        lambda x, w, b: F.batch_norm(x, np.zeros(3), np.ones(3), w, b, training=True),
        [T(r, 4, 3, 2, 2), T(r, 3), T(r, 3)]),
    "batch_norm-eval": lambda r: (
        lambda x, w, b: F.batch_norm(x, np.full(3, 0.3), np.full(3, 2.0), w, b),
        [T(r, 4, 3, 2), T(r, 3), T(r, 3)]),
    "batch_norm-1d-no-affine": lambda r: (
        lambda x: F.batch_norm(x, None, None, training=True), [T(r, 5, 3)]),
    "linear": lambda r: (F.linear, [T(r, 4, 5), T(r, 3, 5), T(r, 3)]),
    "linear-3d-no-bias": lambda r: (F.linear, [T(r, 2, 4, 5), T(r, 3, 5)]),
    "mse_loss": lambda r: (lambda a, b: F.mse_loss(a, b), [T(r, 3, 4), T(r, 3, 4)]),
    "l1_loss": lambda r: (lambda a: F.l1_loss(a, np.zeros((3, 4)), reduction="sum"),
                          [distinct(r, 3, 4, offset=-0.55)]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_gradient_by_finite_differences(name, rng):
    fn, inputs = CASES[name](rng)
    assert gradcheck(fn, inputs)


def test_dropout_gradient_uses_the_same_mask(rng):
    x = T(rng, 4, 6)
    y = F.dropout(x, 0.5, True, seed=7)
    y.backward(np.ones((4, 6)))
    kept = y.numpy() != 0
    np.testing.assert_allclose(x.grad.numpy(), np.where(kept, 2.0, 0.0))
    np.testing.assert_allclose(y.numpy()[kept], 2 * x.numpy()[kept])
    assert F.dropout(x, 0.5, training=False) is x
    assert gradcheck(lambda t: F.dropout(t, 0.3, True, seed=11), [T(rng, 3, 5)])


@pytest.mark.parametrize("kw", [
    {}, {"reduction": "sum"}, {"reduction": "none"}, {"label_smoothing": 0.2},
    {"ignore_index": 1}, {"weight": "w"}, {"weight": "w", "ignore_index": 0},
])
def test_cross_entropy_gradient(kw, rng):
    kw = dict(kw)
    if kw.get("weight") == "w":
        kw["weight"] = np.array([0.5, 2.0, 1.0, 3.0])
    target = cc.tensor(np.array([1, 0, 3, 1, 2]))
    assert gradcheck(lambda x: F.cross_entropy(x, target, **kw), [T(rng, 5, 4)])


def test_cross_entropy_spatial_and_nll_agree(rng):
    logits = T(rng, 2, 3, 2, 2)
    target = cc.tensor(rng.integers(0, 3, (2, 2, 2)))
    ce = F.cross_entropy(logits, target)
    nll = F.nll_loss(F.log_softmax(logits, 1), target)
    assert ce.item() == pytest.approx(nll.item(), rel=1e-12)
    assert gradcheck(lambda x: F.nll_loss(F.log_softmax(x, 1), target, reduction="sum"),
                     [logits])


def test_nll_loss_weights_and_ignore(rng):
    logp = T(rng, 4, 3)
    target = cc.tensor(np.array([0, 2, 1, 2]))
    w = np.array([1.0, 2.0, 0.5])
    out = F.nll_loss(logp, target, weight=w, ignore_index=1)
    lp = logp.numpy()
    expect = -(1.0 * lp[0, 0] + 0.5 * lp[1, 2] + 0.5 * lp[3, 2]) / (1.0 + 0.5 + 0.5)
    assert out.item() == pytest.approx(expect)
    assert gradcheck(lambda t: F.nll_loss(t, target, weight=w, ignore_index=1), [logp])
    with pytest.raises(ValueError, match="target values"):
        F.nll_loss(logp, cc.tensor(np.array([0, 5, 1, 2])))


def test_max_pool_return_indices(rng):
    x = distinct(rng, 1, 1, 4, 4)
    out, idx = F.max_pool2d(x, 2, return_indices=True)
    flat = x.numpy().reshape(-1)
    np.testing.assert_array_equal(flat[idx.numpy().reshape(-1)], out.numpy().reshape(-1))
    out.sum().backward()
    assert x.grad.numpy().sum() == 4 and set(np.unique(x.grad.numpy())) <= {0.0, 1.0}


def test_pad_lists_the_last_axis_first_like_torch(rng):
    x = cc.tensor(rng.standard_normal((1, 1, 2, 3)))
    y = F.pad(x, (1, 2, 0, 1), value=0.0)         # left 1, right 2, top 0, bottom 1
    assert y.shape == (1, 1, 3, 6)
    np.testing.assert_array_equal(y.numpy()[0, 0, :2, 1:4], x.numpy()[0, 0])
    with pytest.raises(ValueError, match="pairs"):
        F.pad(x, (1, 2, 3))


def test_batch_norm_training_updates_running_stats_once(rng):
    x = T(rng, 8, 3)
    rm, rv = np.zeros(3), np.ones(3)
    y = F.batch_norm(x, rm, rv, training=True, momentum=0.5)
    y.sum().backward()
    np.testing.assert_allclose(rm, 0.5 * x.numpy().mean(0))
    np.testing.assert_allclose(rv, 0.5 + 0.5 * x.numpy().var(0, ddof=1))
    np.testing.assert_allclose(y.numpy().mean(0), 0, atol=1e-12)


def test_op_errors_reach_the_user_with_the_op_name(rng):
    x = cc.tensor(rng.standard_normal((1, 4, 5, 5)).astype(np.float32))
    w = cc.tensor(rng.standard_normal((2, 3, 3, 3)).astype(np.float32))
    with pytest.raises(ValueError, match="conv2d"):
        F.conv2d(x, w)
    with pytest.raises(TypeError, match="dtype"):
        F.linear(cc.tensor(np.ones((2, 3))), cc.tensor(np.ones((2, 3), np.float32)))


def test_torch_parity_of_common_ops(rng):
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    x = rng.standard_normal((2, 3, 6, 6))
    w = rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4)
    y = F.max_pool2d(F.relu(F.conv2d(cc.tensor(x), cc.tensor(w), cc.tensor(b), 1, 1)), 2)
    ty = tf.max_pool2d(tf.relu(tf.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b),
                                         padding=1)), 2)
    np.testing.assert_allclose(y.numpy(), ty.numpy(), rtol=1e-10, atol=1e-12)
    p = F.pad(cc.tensor(x), (1, 2, 3, 0), mode="replicate")
    tp = tf.pad(torch.tensor(x), (1, 2, 3, 0), mode="replicate")
    np.testing.assert_array_equal(p.numpy(), tp.numpy())
    logits = rng.standard_normal((5, 4))
    tgt = np.array([0, 3, 1, 1, 2])
    ce = F.cross_entropy(cc.tensor(logits), cc.tensor(tgt), label_smoothing=0.1)
    tce = tf.cross_entropy(torch.tensor(logits), torch.tensor(tgt), label_smoothing=0.1)
    assert ce.item() == pytest.approx(tce.item(), rel=1e-10)
