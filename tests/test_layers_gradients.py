"""Every layer op's backward against central finite differences, in float64.

For an op f and a fixed random G, L = sum(f(inputs) * G); each gradient returned by
``name_backward(G, ...)`` must match (L(a + eps) - L(a - eps)) / (2 eps) entry by entry
(eps 1e-6, atol 1e-5, rtol 1e-3). The ops with a reference twin are checked at kernel
level "ref" and at the fast level. relu / leaky_relu inputs are kept away from 0,
where they are not differentiable.
"""
import numpy as np
import pytest

import cnncore
from cnncore import ops
from helpers import assert_gradients_match

LEVELS = list(dict.fromkeys(["ref", cnncore._core.best_isa()]))


@pytest.fixture(params=LEVELS)
def level(request):
    saved = cnncore.get_isa()
    cnncore.set_isa(request.param)
    yield request.param
    cnncore.set_isa(saved)


def check(forward, backward, arrays, rng):
    """forward() -> output from the arrays (mutated in place by the differencing);
    backward(G) -> gradients of the arrays, in order."""
    out = forward()
    G = rng.standard_normal(np.shape(out))
    grads = backward(G)
    grads = grads if isinstance(grads, tuple) else (grads,)
    assert_gradients_match(lambda: float(np.sum(forward() * G)), arrays, grads)


def away_from_zero(rng, shape):
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < 0.05, 0.1 * np.sign(x) + (x == 0) * 0.1, x)


# --------------------------------------------------------------------------- activations


@pytest.mark.parametrize("name,kw", [("relu", {}), ("leaky_relu", {}),
                                     ("leaky_relu", dict(negative_slope=0.3)),
                                     ("sigmoid", {}), ("tanh", {})])
def test_activation_gradients(rng, name, kw):
    x = away_from_zero(rng, (2, 3, 4)) * 3
    f, b = getattr(ops, name), getattr(ops, name + "_backward")
    check(lambda: f(x, **kw), lambda G: b(G, x, **kw), [x], rng)


# --------------------------------------------------------------------------- softmax


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("shape,dim", [((5,), 0), ((3, 4), -1), ((2, 3, 4), 1), ((2, 3, 4), 0),
                                       ((2, 70), 0)])
def test_softmax_gradients(rng, level, log, shape, dim):
    x = rng.standard_normal(shape) * 2
    f = ops.log_softmax if log else ops.softmax
    b = ops.log_softmax_backward if log else ops.softmax_backward
    check(lambda: f(x, dim), lambda G: b(G, x, dim), [x], rng)


# --------------------------------------------------------------------------- cross-entropy


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("kw", [{}, dict(label_smoothing=0.2), dict(ignore_index=1),
                                dict(weight=True, label_smoothing=0.1, ignore_index=0)],
                         ids=["plain", "smoothing", "ignore", "weight+smoothing+ignore"])
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2, 2)], ids=["2d", "4d"])
def test_cross_entropy_gradients(rng, level, reduction, kw, shape):
    x = rng.standard_normal(shape)
    target = rng.integers(0, shape[1], (shape[0], *shape[2:]))
    target.flat[0] = 2  # at least one target that no case ignores
    kw = dict(kw, reduction=reduction)
    if kw.get("weight") is True:
        kw["weight"] = rng.random(shape[1]) + 0.5
    check(lambda: ops.cross_entropy(x, target, **kw),
          lambda G: ops.cross_entropy_backward(G, x, target, **kw), [x], rng)


# --------------------------------------------------------------------------- dropout


@pytest.mark.parametrize("p,training", [(0.3, True), (0.0, True), (0.7, False), (1.0, True)])
def test_dropout_gradients(rng, p, training):
    x = rng.standard_normal((3, 4, 5))
    check(lambda: ops.dropout(x, p, training, seed=11),
          lambda G: ops.dropout_backward(G, x, p, training, seed=11), [x], rng)


# --------------------------------------------------------------------------- LRN


@pytest.mark.parametrize("size", [1, 2, 3, 5])
@pytest.mark.parametrize("shape", [(2, 5, 3), (1, 4, 2, 2)])
def test_lrn_gradients(rng, level, size, shape):
    x = rng.standard_normal(shape) * 2
    kw = dict(size=size, alpha=0.8, beta=0.75, k=1.5)
    check(lambda: ops.local_response_norm(x, **kw),
          lambda G: ops.local_response_norm_backward(G, x, **kw), [x], rng)


# --------------------------------------------------------------------------- batch norm


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 2, 2), (3, 1, 4)])
def test_batch_norm_gradients(rng, level, training, shape):
    c = shape[1]
    x = rng.standard_normal(shape)
    w, b = rng.standard_normal(c), rng.standard_normal(c)
    rm, rv = rng.standard_normal(c), rng.random(c) + 0.5
    kw = dict(training=training, momentum=0.1, eps=1e-3)

    def forward():
        # fresh copies: a training call updates the running statistics in place
        return ops.batch_norm(x, rm.copy(), rv.copy(), w, b, **kw)

    check(forward, lambda G: ops.batch_norm_backward(G, x, rm, rv, w, b, **kw), [x, w, b], rng)


def test_batch_norm_gradient_without_affine_or_running_stats(rng, level):
    x = rng.standard_normal((4, 2, 3))
    check(lambda: ops.batch_norm(x, None, None, training=True),
          lambda G: ops.batch_norm_backward(G, x, None, None, training=True)[0], [x], rng)
    _, gw, gb = ops.batch_norm_backward(np.ones_like(x), x, None, None, training=True)
    assert gw is None and gb is None


# --------------------------------------------------------------------------- linear


@pytest.mark.parametrize("x_shape", [(4,), (3, 4), (2, 3, 4)])
def test_linear_gradients(rng, level, x_shape):
    x = rng.standard_normal(x_shape)
    w, b = rng.standard_normal((5, 4)), rng.standard_normal(5)
    check(lambda: ops.linear(x, w, b), lambda G: ops.linear_backward(G, x, w, b), [x, w, b], rng)
    gx, gw, gb = ops.linear_backward(np.ones(x_shape[:-1] + (5,)), x, w)
    assert gb is None
