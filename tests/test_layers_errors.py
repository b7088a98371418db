"""Error contract of the layer ops: shape, size and value problems raise ValueError,
wrong types and dtypes raise TypeError; every message starts with the op name and
names the offending argument (and, where there is one, the offending value). After
every rejected call the library still works.
"""
import re

import numpy as np
import pytest

from cnncore import ops
from helpers import expect_error

F32, F64 = np.float32, np.float64


def arr(shape, dtype=F64, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def assert_alive():
    x = np.array([[1.0, -2.0, 3.0]])
    np.testing.assert_array_equal(ops.relu(x), [[1.0, 0.0, 3.0]])
    np.testing.assert_allclose(ops.softmax(np.zeros((2, 4))), 0.25)


def expect(exc, call, op, *patterns):
    """call() raises exactly the kind `exc`; the message starts with `op` and matches
    every regex in `patterns`."""
    return expect_error(exc, call, re.escape(op) + ":", *patterns, alive=assert_alive)


def name(n):
    return rf"\b{n}\b"


X = arr((2, 3, 4))
X32 = X.astype(F32)
XI = np.arange(24).reshape(2, 3, 4)

# --------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("op,call", [
    ("relu", lambda: ops.relu(XI)),
    ("leaky_relu", lambda: ops.leaky_relu(XI)),
    ("sigmoid", lambda: ops.sigmoid(XI.astype(np.int8))),
    ("tanh", lambda: ops.tanh(XI.astype(bool))),
    ("softmax", lambda: ops.softmax(XI)),
    ("log_softmax", lambda: ops.log_softmax(XI)),
    ("dropout", lambda: ops.dropout(XI, seed=0)),
    ("local_response_norm", lambda: ops.local_response_norm(XI, 3)),
    ("batch_norm", lambda: ops.batch_norm(XI, np.zeros(3), np.ones(3))),
    ("linear", lambda: ops.linear(XI, np.ones((2, 4)))),
])
def test_integer_x_is_a_type_error(op, call):
    expect(TypeError, call, op, name("x"), "float32 or float64")


def test_integer_input_of_cross_entropy_is_a_type_error():
    expect(TypeError, lambda: ops.cross_entropy(XI, np.zeros((2, 4), int)), "cross_entropy",
           name("input"), "float32 or float64")


@pytest.mark.parametrize("op,call,arg", [
    ("relu", lambda: ops.relu_backward(X32, X), "grad_out"),
    ("sigmoid", lambda: ops.sigmoid_backward(X, X32), "grad_out"),
    ("softmax", lambda: ops.softmax_backward(X32, X), "grad_out"),
    ("log_softmax", lambda: ops.log_softmax_backward(X, X32), "grad_out"),
    ("local_response_norm", lambda: ops.local_response_norm_backward(X32, X, 3), "grad_out"),
    ("dropout", lambda: ops.dropout_backward(X32, X, seed=1), "grad_out"),
    ("cross_entropy", lambda: ops.cross_entropy(X, np.zeros((2, 4), int), weight=np.ones(3, F32)),
     "weight"),
    ("cross_entropy", lambda: ops.cross_entropy_backward(np.array(1.0, F32), X, np.zeros((2, 4), int)),
     "grad_out"),
    ("batch_norm", lambda: ops.batch_norm(X, np.zeros(3, F32), np.ones(3)), "running_mean"),
    ("batch_norm", lambda: ops.batch_norm(X, np.zeros(3), np.ones(3), np.ones(3, F32)), "weight"),
    ("batch_norm", lambda: ops.batch_norm(X, np.zeros(3), np.ones(3), None, np.ones(3, F32)), "bias"),
    ("linear", lambda: ops.linear(X, np.ones((2, 4), F32)), "weight"),
    ("linear", lambda: ops.linear(X, np.ones((2, 4)), np.ones(2, F32)), "bias"),
    ("linear", lambda: ops.linear_backward(np.ones((2, 3, 2), F32), X, np.ones((2, 4))), "grad_out"),
])
def test_mixed_dtypes_are_a_type_error(op, call, arg):
    expect(TypeError, call, op, name(arg), "float32", "float64")


def test_non_array_arguments_are_type_errors():
    expect(TypeError, lambda: ops.relu("abc"), "relu", name("x"))
    expect(TypeError, lambda: ops.leaky_relu(X, "0.1"), "leaky_relu", name("negative_slope"))
    expect(TypeError, lambda: ops.softmax(X, 1.5), "softmax", name("dim"))
    expect(TypeError, lambda: ops.softmax(X, True), "softmax", name("dim"))
    expect(TypeError, lambda: ops.local_response_norm(X, 2.0), "local_response_norm", name("size"))
    expect(TypeError, lambda: ops.local_response_norm(X, 3, alpha=None), "local_response_norm",
           name("alpha"))
    expect(TypeError, lambda: ops.batch_norm(X, np.zeros(3), np.ones(3), training=1), "batch_norm",
           name("training"))
    expect(TypeError, lambda: ops.batch_norm(X, np.zeros(3), np.ones(3), eps="1e-5"), "batch_norm",
           name("eps"))
    expect(TypeError, lambda: ops.batch_norm(X, [0.0] * 3, [1.0] * 3, training=True), "batch_norm",
           name("running_mean"), "in place")
    expect(TypeError, lambda: ops.cross_entropy(X, np.zeros((2, 4), int), reduction=None),
           "cross_entropy", name("reduction"))


# --------------------------------------------------------------------------- activations


def test_activation_value_errors():
    expect(ValueError, lambda: ops.leaky_relu(X, float("nan")), "leaky_relu", name("negative_slope"),
           "finite", "nan")
    expect(ValueError, lambda: ops.relu_backward(np.ones((2, 3)), X), "relu", name("grad_out"),
           r"\[2, 3, 4\]", r"\[2, 3\]")
    expect(ValueError, lambda: ops.tanh_backward(np.ones((2, 3, 5)), X), "tanh", name("grad_out"))


# --------------------------------------------------------------------------- softmax


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [3, -4, 100])
def test_softmax_dim_out_of_range(op, dim):
    msg = expect(ValueError, lambda: getattr(ops, op)(X, dim), op, name("dim"), r"\[-3, 2\]")
    assert re.search(rf"got {dim}\b", msg)


def test_softmax_other_errors():
    expect(ValueError, lambda: ops.softmax(np.array(1.0)), "softmax", name("x"), "0-d")
    expect(ValueError, lambda: ops.softmax_backward(np.ones((2, 3)), X), "softmax", name("grad_out"))
    expect(ValueError, lambda: ops.log_softmax_backward(X, X, dim=5), "log_softmax", name("dim"))


# --------------------------------------------------------------------------- cross-entropy

T = np.array([0, 2, 1, 0])
L = arr((4, 3))


def test_cross_entropy_target_dtype():
    expect(TypeError, lambda: ops.cross_entropy(L, T.astype(F64)), "cross_entropy", name("target"),
           "integer", "float64")
    expect(TypeError, lambda: ops.cross_entropy(L, T.astype(bool)), "cross_entropy", name("target"),
           "integer", "bool")
    expect(TypeError, lambda: ops.cross_entropy_backward(1.0, L, T.astype(F32)), "cross_entropy",
           name("target"))


@pytest.mark.parametrize("bad", [3, -1, 99, -101])
def test_cross_entropy_target_out_of_range(bad):
    t = T.copy()
    t[2] = bad
    msg = expect(ValueError, lambda: ops.cross_entropy(L, t), "cross_entropy", name("target"),
                 r"\[0, 2\]", rf"got {bad}\b", "ignore_index=-100")
    assert "position 2" in msg
    expect(ValueError, lambda: ops.cross_entropy_backward(1.0, L, t), "cross_entropy", name("target"))
    # the same value is fine as ignore_index
    assert np.isfinite(ops.cross_entropy(L, t, ignore_index=bad))


def test_cross_entropy_shape_and_value_errors():
    expect(ValueError, lambda: ops.cross_entropy(L[0], T[:1]), "cross_entropy", name("input"),
           "at least 2 dimensions")
    expect(ValueError, lambda: ops.cross_entropy(L, T[:3]), "cross_entropy", name("target"),
           r"\[4\]", r"\[3\]")
    expect(ValueError, lambda: ops.cross_entropy(arr((4, 3, 5)), T), "cross_entropy", name("target"),
           r"\[4, 5\]")
    expect(ValueError, lambda: ops.cross_entropy(np.zeros((4, 0)), T), "cross_entropy", name("input"),
           "class")
    expect(ValueError, lambda: ops.cross_entropy(L, T, weight=np.ones(4)), "cross_entropy",
           name("weight"), r"\[3\]", r"\[4\]")
    expect(ValueError, lambda: ops.cross_entropy(L, T, reduction="avg"), "cross_entropy",
           name("reduction"), "'avg'")
    for ls in (-0.1, 1.5, float("nan")):
        expect(ValueError, lambda: ops.cross_entropy(L, T, label_smoothing=ls), "cross_entropy",
               name("label_smoothing"), r"\[0, 1\]")
    expect(ValueError, lambda: ops.cross_entropy_backward(np.ones(4), L, T), "cross_entropy",
           name("grad_out"), "reduction='mean'", r"\[\]")
    expect(ValueError, lambda: ops.cross_entropy_backward(1.0, L, T, reduction="none"), "cross_entropy",
           name("grad_out"), r"\[4\]")


# --------------------------------------------------------------------------- dropout


@pytest.mark.parametrize("p", [-0.1, 1.01, 2, float("nan")])
def test_dropout_p_out_of_range(p):
    expect(ValueError, lambda: ops.dropout(X, p, seed=0), "dropout", name("p"), r"\[0, 1\]")
    expect(ValueError, lambda: ops.dropout_backward(X, X, p, seed=0), "dropout", name("p"))


def test_dropout_other_errors():
    with pytest.raises(TypeError, match="seed"):
        ops.dropout(X, 0.5)  # seed is required
    expect(TypeError, lambda: ops.dropout(X, 0.5, seed=1.0), "dropout", name("seed"))
    expect(ValueError, lambda: ops.dropout(X, 0.5, seed=-1), "dropout", name("seed"), "-1")
    expect(ValueError, lambda: ops.dropout(X, 0.5, seed=2**64), "dropout", name("seed"))
    expect(TypeError, lambda: ops.dropout(X, "0.5", seed=1), "dropout", name("p"))
    expect(TypeError, lambda: ops.dropout(X, 0.5, training="yes", seed=1), "dropout", name("training"))
    expect(ValueError, lambda: ops.dropout_backward(np.ones((2, 3)), X, seed=1), "dropout",
           name("grad_out"))


# --------------------------------------------------------------------------- LRN


def test_lrn_errors():
    op = "local_response_norm"
    for size in (0, -3):
        expect(ValueError, lambda: ops.local_response_norm(X, size), op, name("size"), rf"got {size}\b")
    expect(ValueError, lambda: ops.local_response_norm(arr((2, 3)), 3), op, name("x"),
           "at least 3 dimensions", r"\(2, 3\)|\[2, 3\]")
    expect(ValueError, lambda: ops.local_response_norm(X, 3, beta=float("inf")), op, name("beta"))
    expect(ValueError, lambda: ops.local_response_norm_backward(np.ones((2, 3, 5)), X, 3), op,
           name("grad_out"))


# --------------------------------------------------------------------------- batch norm

RM, RV = np.zeros(3), np.ones(3)


def test_batch_norm_shape_errors():
    op = "batch_norm"
    expect(ValueError, lambda: ops.batch_norm(arr(5), RM, RV), op, name("x"), "at least 2 dimensions")
    expect(ValueError, lambda: ops.batch_norm(X, np.zeros(4), RV), op, name("running_mean"), r"\[3\]",
           r"\[4\]")
    expect(ValueError, lambda: ops.batch_norm(X, RM, np.ones((3, 1))), op, name("running_var"),
           r"\[3, 1\]")
    expect(ValueError, lambda: ops.batch_norm(X, RM, RV, np.ones(2)), op, name("weight"), r"\[2\]")
    expect(ValueError, lambda: ops.batch_norm(X, RM, RV, None, np.ones(5)), op, name("bias"), r"\[5\]")
    expect(ValueError, lambda: ops.batch_norm_backward(np.ones((2, 3)), X, RM, RV), op,
           name("grad_out"))


def test_batch_norm_value_errors():
    op = "batch_norm"
    expect(ValueError, lambda: ops.batch_norm(X, RM, RV, eps=-1e-5), op, name("eps"), "-1e-05")
    expect(ValueError, lambda: ops.batch_norm(X, RM, RV, momentum=1.5), op, name("momentum"), "1.5")
    expect(ValueError, lambda: ops.batch_norm(X, None, None), op, name("running_mean"), "training=False")
    expect(ValueError, lambda: ops.batch_norm(X, RM, None, training=True), op, name("running_var"),
           "together")
    rm, rv = np.zeros(3), np.ones(3)
    expect(ValueError, lambda: ops.batch_norm(arr((1, 3)), rm, rv, training=True), op,
           "more than 1 value per channel")
    expect(ValueError, lambda: ops.batch_norm(arr((1, 3, 1, 1)), rm, rv, training=True), op,
           "more than 1 value per channel")
    np.testing.assert_array_equal(rm, 0)  # nothing was updated


def test_batch_norm_running_stats_must_be_updatable():
    op = "batch_norm"
    strided = np.zeros(6)[::2]
    expect(ValueError, lambda: ops.batch_norm(X, strided, RV.copy(), training=True), op,
           name("running_mean"), "C-contiguous")
    ro = np.ones(3)
    ro.flags.writeable = False
    expect(ValueError, lambda: ops.batch_norm(X, RM.copy(), ro, training=True), op, name("running_var"),
           "writeable")
    # in eval mode they are only read: any array-like will do
    np.testing.assert_allclose(ops.batch_norm(X, strided, ro, eps=0.0), X)


# --------------------------------------------------------------------------- linear


def test_linear_errors():
    op = "linear"
    W = np.ones((2, 4))
    expect(ValueError, lambda: ops.linear(X, np.ones(4)), op, name("weight"), "2 dimensions")
    expect(ValueError, lambda: ops.linear(X, np.ones((2, 5))), op, name("weight"), r"\b5\b", r"\b4\b")
    expect(ValueError, lambda: ops.linear(X, W, np.ones(3)), op, name("bias"), r"\[2\]", r"\[3\]")
    expect(ValueError, lambda: ops.linear(np.array(1.0), np.ones((2, 1))), op, name("x"), "0-d")
    expect(ValueError, lambda: ops.linear_backward(np.ones((2, 3, 3)), X, W), op, name("grad_out"),
           r"\[2, 3, 2\]")
    expect(ValueError, lambda: ops.linear_backward(np.ones((2, 3, 2)), X, W, np.ones(3)), op,
           name("bias"), r"\(2,\)")
