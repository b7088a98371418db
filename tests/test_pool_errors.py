"""Error contract of the pooling ops.

Shape, size and value problems raise ``ValueError``; wrong types and dtypes raise
``TypeError``; every message starts with the op name and names the offending argument.
After every rejected call the process must still work (checked by a valid call after each
error, and by a subprocess that makes a batch of bad calls and must exit normally).
"""
import re

import numpy as np
import pytest

import cnncore
from cnncore import ops
from helpers import bad_calls_in_subprocess, expect_error

X = np.zeros((1, 2, 5, 5))
G = np.zeros((1, 2, 2, 2))  # output of a 2x2/2 pool of X


def assert_alive():
    y = ops.max_pool2d(np.arange(16.0).reshape(1, 1, 4, 4), 2)
    np.testing.assert_array_equal(y, [[[[5.0, 7.0], [13.0, 15.0]]]])


def expect(exc, call, op, *patterns):
    """call() raises exc (not the other kind); the message starts with `op` and matches
    every regex in `patterns`; the process still works afterwards."""
    return expect_error(exc, call, re.escape(op) + ":", *patterns, alive=assert_alive)


# ------------------------------------------------------------------ kernel, stride, padding


@pytest.mark.parametrize("fn", ["max_pool2d", "avg_pool2d", "weighted_avg_pool2d"])
@pytest.mark.parametrize("k", [0, -1, (2, 0)])
def test_kernel_size_not_positive(fn, k):
    expect(ValueError, lambda: getattr(ops, fn)(X, k), fn, r"kernel_size must be positive",
           r"got (0|-1)")


def test_lp_kernel_size_not_positive():
    expect(ValueError, lambda: ops.lp_pool1d(np.zeros((1, 1, 5)), 2, 0), "lp_pool1d",
           r"kernel_size must be positive, got 0")


@pytest.mark.parametrize("k", [(3, 3, 3), (3,)])
def test_kernel_size_wrong_length(k):
    expect(ValueError, lambda: ops.max_pool2d(X, k), "max_pool2d", r"kernel_size",
           r"tuple of 2")


@pytest.mark.parametrize("k", [2.5, "3", None, True])
def test_kernel_size_wrong_type(k):
    expect(TypeError, lambda: ops.avg_pool2d(X, k), "avg_pool2d", r"kernel_size")


@pytest.mark.parametrize("s", [0, -2, (1, 0)])
def test_stride_not_positive(s):
    expect(ValueError, lambda: ops.max_pool2d(X, 3, s), "max_pool2d", r"stride must be positive")


def test_stride_wrong_type():
    expect(TypeError, lambda: ops.avg_pool1d(np.zeros((1, 1, 5)), 2, 1.5), "avg_pool1d",
           r"stride")


@pytest.mark.parametrize("pad", [-1, (0, -1), (0, 0, -1, 0)])
def test_padding_negative(pad):
    expect(ValueError, lambda: ops.max_pool2d(X, 3, 1, pad), "max_pool2d",
           r"padding must be non-negative")


@pytest.mark.parametrize("fn,k,pad,limit", [
    ("max_pool2d", 3, 2, 1), ("avg_pool2d", 2, (0, 2), 1), ("lp_pool2d", 3, (0, 0, 0, 2), 1),
    ("weighted_avg_pool2d", 4, 3, 2)])
def test_padding_more_than_half_the_kernel(fn, k, pad, limit):
    args = (2.0, k, 1, pad) if fn == "lp_pool2d" else (k, 1, pad)
    expect(ValueError, lambda: getattr(ops, fn)(X, *args), fn,
           r"padding must be at most half the kernel size", rf"padding <= {limit}, got")


def test_padding_limit_uses_the_dilated_kernel():
    # kernel 2, dilation 3: extent 4 allows padding 2, not 3
    assert ops.max_pool1d(np.zeros((1, 1, 5)), 2, 1, 2, dilation=3).shape == (1, 1, 6)
    expect(ValueError, lambda: ops.max_pool1d(np.zeros((1, 1, 5)), 2, 1, 3, dilation=3),
           "max_pool1d", r"half the dilated kernel", r"<= 2, got 3")


@pytest.mark.parametrize("pad", ["same", "valid"])
def test_padding_words_rejected(pad):
    expect(ValueError, lambda: ops.max_pool2d(X, 3, 1, pad), "max_pool2d", r"padding",
           r"named padding")


def test_padding_wrong_length():
    expect(ValueError, lambda: ops.avg_pool2d(X, 3, 1, (1, 1, 1)), "avg_pool2d", r"padding",
           r"2 \(per axis\) or 4")


@pytest.mark.parametrize("d", [0, (1, -1)])
def test_dilation_not_positive(d):
    expect(ValueError, lambda: ops.max_pool2d(X, 2, dilation=d), "max_pool2d",
           r"dilation must be positive")


@pytest.mark.parametrize("fn,k", [("max_pool2d", 6), ("avg_pool2d", (2, 7)),
                                  ("weighted_avg_pool2d", 6)])
def test_output_size_below_one(fn, k):
    expect(ValueError, lambda: getattr(ops, fn)(X, k), fn,
           r"kernel_size is larger than the padded input", r"output size would be < 1")


def test_output_size_below_one_dilated():
    expect(ValueError, lambda: ops.max_pool1d(np.zeros((1, 1, 4)), 3, dilation=2), "max_pool1d",
           r"larger than the padded input", r"= 5 but in \+ padding = 4")


# --------------------------------------------------------------------------- kind-specific values


@pytest.mark.parametrize("p", [0.5, 0.0, -2.0, float("nan"), -float("inf")])
def test_norm_type_below_one(p):
    expect(ValueError, lambda: ops.lp_pool2d(X, p, 2), "lp_pool2d", r"norm_type must be >= 1")


@pytest.mark.parametrize("p", ["2", None, [2.0], True])
def test_norm_type_wrong_type(p):
    expect(TypeError, lambda: ops.lp_pool2d(X, p, 2), "lp_pool2d", r"norm_type must be a real")


@pytest.mark.parametrize("sigma", [0, -1.0, (1.0, 0.0), float("inf"), float("nan")])
def test_sigma_not_positive(sigma):
    expect(ValueError, lambda: ops.weighted_avg_pool2d(X, 3, sigma=sigma),
           "weighted_avg_pool2d", r"sigma must be positive")


def test_sigma_wrong_length_or_type():
    expect(ValueError, lambda: ops.weighted_avg_pool2d(X, 3, sigma=(1.0, 1.0, 1.0)),
           "weighted_avg_pool2d", r"sigma must be a number or a tuple of 2")
    expect(TypeError, lambda: ops.weighted_avg_pool2d(X, 3, sigma="wide"),
           "weighted_avg_pool2d", r"sigma must be a real number")


@pytest.mark.parametrize("d", [0, -3])
def test_divisor_override_not_positive(d):
    expect(ValueError, lambda: ops.avg_pool2d(X, 2, divisor_override=d), "avg_pool2d",
           r"divisor_override must be a positive integer")


def test_divisor_override_wrong_type():
    expect(TypeError, lambda: ops.avg_pool2d(X, 2, divisor_override=2.0), "avg_pool2d",
           r"divisor_override")


@pytest.mark.parametrize("fn,name,value", [
    ("max_pool2d", "ceil_mode", 1), ("max_pool2d", "return_indices", "yes"),
    ("avg_pool2d", "count_include_pad", None), ("avg_pool2d", "ceil_mode", "False")])
def test_flags_must_be_bool(fn, name, value):
    expect(TypeError, lambda: getattr(ops, fn)(X, 2, **{name: value}), fn,
           rf"{name} must be a bool")


def test_algorithm_unknown():
    expect(ValueError, lambda: ops.avg_pool2d(X, 2, algorithm="fast"), "avg_pool2d",
           r"algorithm must be one of 'auto', 'reference', 'direct'")
    expect(TypeError, lambda: ops.avg_pool2d(X, 2, algorithm=1), "avg_pool2d",
           r"algorithm must be a string")


# --------------------------------------------------------------------------- adaptive


@pytest.mark.parametrize("fn", ["adaptive_avg_pool2d", "adaptive_max_pool2d"])
@pytest.mark.parametrize("size", [0, -3, (2, 0)])
def test_output_size_not_positive(fn, size):
    expect(ValueError, lambda: getattr(ops, fn)(X, size), fn, r"output_size must be positive")


def test_output_size_wrong_length_or_type():
    expect(ValueError, lambda: ops.adaptive_avg_pool2d(X, (2, 2, 2)), "adaptive_avg_pool2d",
           r"output_size must be an integer or a tuple of 2")
    expect(TypeError, lambda: ops.adaptive_max_pool1d(np.zeros((1, 1, 4)), None),
           "adaptive_max_pool1d", r"output_size")
    expect(TypeError, lambda: ops.adaptive_max_pool2d(X, (2, 1.5)), "adaptive_max_pool2d",
           r"output_size")


def test_output_size_overflow():
    expect(ValueError, lambda: ops.adaptive_avg_pool1d(np.zeros((1, 1, 4)), 2**62),
           "adaptive_avg_pool1d", r"output_size", r"overflows 64-bit")


# --------------------------------------------------------------------------- arrays


@pytest.mark.parametrize("fn,shape,rank", [
    ("max_pool2d", (2, 5, 5), 4), ("max_pool2d", (1, 1, 2, 5, 5), 4), ("avg_pool1d", (5,), 3),
    ("lp_pool3d", (1, 2, 5, 5), 5), ("adaptive_avg_pool2d", (1, 5), 4),
    ("global_max_pool2d", (1, 2, 3), 4)])
def test_x_wrong_rank(fn, shape, rank):
    args = {"lp_pool3d": (2.0, 2), "adaptive_avg_pool2d": (2,), "global_max_pool2d": ()}.get(
        fn, (2,))
    expect(ValueError, lambda: getattr(ops, fn)(np.zeros(shape), *args), fn,
           rf"x must have {rank} dimensions", re.escape(str(shape)))


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.bool_, np.complex128, np.float16])
def test_x_not_float(dtype):
    expect(TypeError, lambda: ops.avg_pool2d(X.astype(dtype), 2), "avg_pool2d",
           r"x must be a float32 or float64 array", rf"dtype {np.dtype(dtype)}")


def test_x_not_an_array():
    expect(TypeError, lambda: ops.max_pool1d("abc", 2), "max_pool1d", r"x must be a float")


def test_x_empty_channels_or_spatial():
    expect(ValueError, lambda: ops.max_pool2d(np.zeros((1, 0, 5, 5)), 2), "max_pool2d",
           r"x must have at least one channel")
    expect(ValueError, lambda: ops.avg_pool2d(np.zeros((1, 2, 0, 5)), 1), "avg_pool2d",
           r"positive size on every spatial axis", r"H=0")


def test_batch_zero_is_fine():
    y = ops.max_pool2d(np.zeros((0, 3, 5, 5), np.float32), 2)
    assert y.shape == (0, 3, 2, 2) and y.dtype == np.float32
    assert ops.avg_pool2d_backward(np.zeros((0, 3, 2, 2)), np.zeros((0, 3, 5, 5)), 2).shape == \
        (0, 3, 5, 5)


@pytest.mark.parametrize("fn,args", [("max_pool2d", (2,)), ("avg_pool2d", (2,)),
                                     ("lp_pool2d", (2.0, 2)), ("weighted_avg_pool2d", (2,)),
                                     ("adaptive_max_pool2d", (2,)),
                                     ("adaptive_avg_pool2d", (2,))])
def test_grad_out_checks(fn, args):
    bwd = getattr(ops, fn + "_backward")
    expect(TypeError, lambda: bwd(G.astype(np.float32), X, *args), fn,
           r"grad_out has dtype float32 but x has float64")
    expect(TypeError, lambda: bwd(G.astype(np.int64), X, *args), fn,
           r"grad_out must be a float32 or float64 array")
    expect(ValueError, lambda: bwd(np.zeros((1, 2, 3, 2)), X, *args), fn,
           r"grad_out must have the forward output's shape \[1, 2, 2, 2\], got \[1, 2, 3, 2\]")
    expect(ValueError, lambda: bwd(np.zeros((1, 2, 2)), X, *args), fn,
           r"grad_out must have 4 dimensions")
    expect(TypeError, lambda: bwd(G, X.astype(np.int32), *args), fn, r"x must be a float")


def test_indices_checks():
    bwd = ops.max_pool2d_backward
    expect(TypeError, lambda: bwd(G, X, 2, indices=np.zeros((1, 2, 2, 2))), "max_pool2d",
           r"indices must be an int64 array", r"float64")
    expect(TypeError, lambda: bwd(G, X, 2, indices=np.zeros((1, 2, 2, 2), np.int32)),
           "max_pool2d", r"indices must be an int64 array", r"int32")
    expect(TypeError, lambda: bwd(G, X, 2, indices=[[0]]), "max_pool2d", r"indices", r"list")
    expect(ValueError, lambda: bwd(G, X, 2, indices=np.zeros((1, 2, 2, 1), np.int64)),
           "max_pool2d", r"indices must have grad_out's shape")
    for bad in (25, -2):
        idx = np.zeros((1, 2, 2, 2), np.int64)
        idx[0, 1, 1, 0] = bad
        expect(ValueError, lambda: bwd(G, X, 2, indices=idx), "max_pool2d",
               r"indices must lie in \[-1, 25\)", rf"got {bad} at position 6")


def test_memory_limit_is_checked_before_allocating():
    old = cnncore.get_memory_limit()
    try:
        cnncore.set_memory_limit(1000)
        for kw in ({}, dict(return_indices=True)):
            expect(ValueError, lambda: ops.max_pool2d(np.zeros((1, 4, 40, 40)), 2, **kw),
                   "max_pool2d", r"memory limit")
        expect(ValueError, lambda: ops.avg_pool2d_backward(np.zeros((1, 4, 20, 20)),
                                                           np.zeros((1, 4, 40, 40)), 2),
               "avg_pool2d", r"memory limit")
    finally:
        cnncore.set_memory_limit(old)
    assert ops.max_pool2d(np.zeros((1, 4, 40, 40)), 2).shape == (1, 4, 20, 20)


def test_pool_output_shape_errors():
    expect(ValueError, lambda: ops.pool_output_shape((1, 2, 5, 5), "median", 2),
           "pool_output_shape", r"kind must be one of")
    expect(ValueError, lambda: ops.pool_output_shape((1, 2, 5, 5), "max"), "pool_output_shape",
           r"exactly one of kernel_size")
    expect(ValueError, lambda: ops.pool_output_shape((1, 2, 5, 5), "lp", output_size=2),
           "pool_output_shape", r"only supported for max and avg")
    expect(ValueError, lambda: ops.pool_output_shape((2**40, 2**40, 2**40, 4), "max", 2),
           "pool_output_shape", r"overflows 64-bit")


def test_bad_calls_in_a_subprocess_leave_it_running():
    n, alive = bad_calls_in_subprocess(r"""
        import numpy as np
        from cnncore import ops
        x = np.zeros((1, 2, 5, 5))
        V, T = ValueError, TypeError
        bad = [(V, lambda: ops.max_pool2d(x, 0), r"kernel_size must be positive, got 0"),
               (V, lambda: ops.avg_pool2d(x, 3, 1, 2), r"padding must be at most half"),
               (V, lambda: ops.lp_pool2d(x, 0.5, 2), r"norm_type must be >= 1 .*got 0\.5"),
               (V, lambda: ops.weighted_avg_pool2d(x, 2, sigma=-1), r"sigma must be positive"),
               (V, lambda: ops.adaptive_max_pool2d(x, 0), r"output_size must be positive"),
               (T, lambda: ops.max_pool2d(x.astype(int), 2), r"got dtype int64"),
               (V, lambda: ops.max_pool2d_backward(np.zeros((1, 2, 3, 3)), x, 2),
                r"grad_out must have the forward output's shape \[1, 2, 2, 2\]"),
               (V, lambda: ops.max_pool2d_backward(np.zeros((1, 2, 2, 2)), x, 2,
                                                   indices=np.full((1, 2, 2, 2), 10**9)),
                r"indices must lie in \[-1, 25\)")]
        alive = lambda: float(ops.max_pool2d(np.arange(4.0).reshape(1, 1, 2, 2), 2)[0, 0, 0, 0])
    """, timeout=60)
    assert (n, alive) == (8, 3.0)
