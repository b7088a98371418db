"""The losses of cnncore.functional against NumPy formulas, value by value: cross-entropy
(class weights, ignore_index, label smoothing, spatial targets), nll_loss, mse_loss and
l1_loss in every reduction, their dtypes with NumPy targets, and the reduction error."""
import numpy as np
import pytest

import cnncore as cc
from cnncore import functional as F


def log_softmax(z, axis=1):
    z = z - z.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def reduce(per, weights, reduction):
    if reduction == "none":
        return per
    if reduction == "sum":
        return per.sum()
    return per.sum() / weights.sum()


@pytest.fixture
def problem():
    rng = np.random.default_rng(4)
    return rng.standard_normal((6, 4)), np.array([0, 3, 1, 1, 2, 3])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_with_weights_and_ignore_index(problem, reduction):
    z, y = problem
    w = np.array([0.5, 2.0, 1.0, 3.0])
    lp = log_softmax(z)
    keep = y != 1
    per = np.where(keep, -w[y] * lp[np.arange(6), y], 0.0)
    want = reduce(per, np.where(keep, w[y], 0.0), reduction)
    got = F.cross_entropy(cc.tensor(z), cc.tensor(y), weight=w, ignore_index=1,
                          reduction=reduction)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
    nll = F.nll_loss(cc.tensor(lp), cc.tensor(y), weight=w, ignore_index=1, reduction=reduction)
    np.testing.assert_allclose(nll.numpy(), want, rtol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_label_smoothing(problem, reduction):
    z, y = problem
    lp = log_softmax(z)
    eps = 0.3
    per = (1 - eps) * -lp[np.arange(6), y] + eps * -lp.mean(axis=1)
    want = reduce(per, np.ones(6), reduction)
    got = F.cross_entropy(cc.tensor(z), cc.tensor(y), label_smoothing=eps, reduction=reduction)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)


def test_cross_entropy_over_spatial_positions():
    rng = np.random.default_rng(5)
    z = rng.standard_normal((2, 3, 2, 2))
    y = rng.integers(0, 3, (2, 2, 2))
    lp = log_softmax(z)
    picked = np.take_along_axis(lp, y[:, None], axis=1)[:, 0]
    np.testing.assert_allclose(F.cross_entropy(cc.tensor(z), cc.tensor(y)).item(), -picked.mean(),
                               rtol=1e-12)
    np.testing.assert_allclose(F.cross_entropy(cc.tensor(z), cc.tensor(y), reduction="none")
                               .numpy(), -picked, rtol=1e-12)


@pytest.mark.parametrize("reduction, fn", [("mean", np.mean), ("sum", np.sum),
                                           ("none", lambda a: a)])
def test_mse_and_l1_values_and_dtypes(reduction, fn):
    rng = np.random.default_rng(6)
    a = rng.standard_normal((3, 4)).astype(np.float32)
    b = rng.standard_normal((3, 4))                             # float64 target
    mse = F.mse_loss(cc.tensor(a), b, reduction=reduction)     # NumPy promotion: float64
    l1 = F.l1_loss(cc.tensor(a), b.tolist(), reduction=reduction)
    assert mse.dtype == np.float64 and l1.dtype == np.float32
    np.testing.assert_allclose(mse.numpy(), fn((a - b) ** 2), rtol=1e-12)
    np.testing.assert_allclose(l1.numpy(), fn(np.abs(a - b.astype(np.float32))), rtol=1e-5)
    for loss in (F.mse_loss, F.l1_loss):                         # a number takes x's dtype
        got = loss(cc.tensor(a), 0.5, reduction=reduction)
        assert got.dtype == np.float32
        d = a - np.float32(0.5)
        np.testing.assert_allclose(got.numpy(), fn(d * d if loss is F.mse_loss else np.abs(d)),
                                   rtol=1e-6)
    assert F.mse_loss(cc.tensor(a), cc.tensor(a)).item() == 0.0


def test_unknown_reduction_is_named():
    x = cc.tensor(np.ones(3))
    for fn in (F.mse_loss, F.l1_loss):
        with pytest.raises(ValueError, match=r"^reduction must be 'mean', 'sum' or 'none', got "
                                             r"'avg'$"):
            fn(x, np.zeros(3), reduction="avg")
