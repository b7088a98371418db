"""Error contract of ``cnncore.ops.conv2d`` / ``conv2d_backward`` / ``conv2d_output_shape``.

See docs/conv2d.md, section "Errors": shape, size and value problems raise
``ValueError``; wrong types raise ``TypeError``; every message starts with the op
name and names the offending argument.  After every rejected call the process must
still be usable (checked by a valid call after each error, and by a subprocess that
runs a batch of bad calls and must exit normally).
"""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import cnncore
from cnncore import ops
from helpers import bad_calls_in_subprocess, expect_error

# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------

F64 = np.float64
F32 = np.float32


def _arr(shape, dtype=F64, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def assert_alive():
    """A small valid convolution still gives the exact answer."""
    x = np.ones((1, 1, 3, 3), dtype=F64)
    w = np.ones((1, 1, 2, 2), dtype=F64)
    y = ops.conv2d(x, w)
    assert y.shape == (1, 1, 2, 2)
    assert y.dtype == F64
    np.testing.assert_array_equal(y, np.full((1, 1, 2, 2), 4.0))


def expect(exc, call, *patterns):
    """``call()`` raises ``exc``; its message starts with the op name and matches every
    regex in ``patterns`` (case-insensitive, ``re.search``).  The process must still work
    afterwards.  Returns the message."""
    assert patterns, "give at least one pattern"
    return expect_error(exc, call, r"\s*conv2d", *patterns, alive=assert_alive, flags=re.IGNORECASE)


# argument-name patterns (word boundaries so that "padding" does not match
# "padding_mode", "x" does not match "max", ...)
X = r"\b(x|input_shape)\b"  # conv2d_output_shape calls it input_shape
W = r"\bweight(_shape)?\b"
B = r"\bbias\b"
GO = r"\bgrad_out\b"
STRIDE = r"\bstride\b"
DIL = r"\bdilation\b"
PAD = r"\bpadding\b"
PMODE = r"\bpadding_mode\b"
GROUPS = r"\bgroups\b"
ALGO = r"\balgorithm\b"


def value_pat(v):
    """The offending value must appear in the message ("what arrived")."""
    return r"(?<![\d.])" + re.escape(str(v)) + r"(?![\d.])"


# Base valid problem: x (2, 4, 7, 6), weight (6, 4, 3, 3) -> y (2, 6, 5, 4).
XS = (2, 4, 7, 6)
WS = (6, 4, 3, 3)


def _grad_out_for(x, w, dtype=None):
    """A grad_out that is plausible for default parameters (only used in tests where
    some other argument is wrong, so its exact shape does not matter)."""
    n = x.shape[0] if getattr(x, "ndim", 0) >= 1 else 1
    c = w.shape[0] if getattr(w, "ndim", 0) >= 1 else 1
    dt = dtype if dtype is not None else (x.dtype if x.dtype.kind == "f" else F64)
    return np.zeros((n, c, 3, 3), dtype=dt)


def run_op(op, x, w, b=None, **kw):
    if op == "conv2d":
        return ops.conv2d(x, w, b, **kw)
    if op == "backward":
        return ops.conv2d_backward(_grad_out_for(x, w), x, w, bias=True, **kw)
    if op == "output_shape":
        return ops.conv2d_output_shape(tuple(x.shape), tuple(w.shape), **kw)
    raise AssertionError(op)


ALL_OPS = ["conv2d", "backward", "output_shape"]
ARRAY_OPS = ["conv2d", "backward"]


# --------------------------------------------------------------------------------------
# sanity: the happy path that the error tests are built around
# --------------------------------------------------------------------------------------


def test_base_problem_is_valid():
    x, w = _arr(XS), _arr(WS, seed=1)
    y = ops.conv2d(x, w)
    assert y.shape == (2, 6, 5, 4)
    assert ops.conv2d_output_shape(XS, WS) == (2, 6, 5, 4)
    gx, gw, gb = ops.conv2d_backward(np.ones_like(y), x, w)
    assert gx.shape == XS and gw.shape == WS and gb.shape == (6,)
    gx2, gw2, gb2 = ops.conv2d_backward(np.ones_like(y), x, w, bias=False)
    assert gb2 is None
    np.testing.assert_allclose(gb, np.full(6, 2 * 5 * 4.0))


# --------------------------------------------------------------------------------------
# ranks
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ALL_OPS)
@pytest.mark.parametrize("xshape", [(4, 7, 6), (1, 2, 4, 7, 6), (7,), ()])
def test_x_wrong_rank(op, xshape):
    x = _arr(xshape)
    expect(ValueError, lambda: run_op(op, x, _arr(WS)), X, r"4|dim|rank|shape")


@pytest.mark.parametrize("op", ALL_OPS)
@pytest.mark.parametrize("wshape", [(6, 4, 3), (1, 6, 4, 3, 3), (6,)])
def test_weight_wrong_rank(op, wshape):
    expect(ValueError, lambda: run_op(op, _arr(XS), _arr(wshape)), W, r"4|dim|rank|shape")


@pytest.mark.parametrize("bshape", [(6, 1), (1, 6), (), (1, 1, 6)])
def test_bias_wrong_rank(bshape):
    expect(ValueError, lambda: ops.conv2d(_arr(XS), _arr(WS), _arr(bshape)), B,
           r"1|dim|rank|shape")


@pytest.mark.parametrize("goshape", [(2, 6, 5), (6, 5, 4), (1, 2, 6, 5, 4), ()])
def test_grad_out_wrong_rank(goshape):
    x, w = _arr(XS), _arr(WS)
    expect(ValueError, lambda: ops.conv2d_backward(_arr(goshape), x, w), GO,
           r"4|dim|rank|shape")


# --------------------------------------------------------------------------------------
# channels and groups
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ALL_OPS)
def test_channel_mismatch(op):
    # x has 5 channels, weight expects 4
    expect(ValueError, lambda: run_op(op, _arr((2, 5, 7, 6)), _arr(WS)),
           r"\b(x|weight)\b", r"channel")


@pytest.mark.parametrize("op", ALL_OPS)
def test_channel_mismatch_grouped(op):
    # groups=2: weight expects 2*2 = 4 input channels, x has 6
    expect(ValueError,
           lambda: run_op(op, _arr((1, 6, 5, 5)), _arr((4, 2, 3, 3)), groups=2),
           r"\b(x|weight)\b", r"channel|groups")


@pytest.mark.parametrize("op", ALL_OPS)
@pytest.mark.parametrize("g", [0, -1, -7])
def test_groups_not_positive(op, g):
    expect(ValueError, lambda: run_op(op, _arr(XS), _arr(WS), groups=g), GROUPS, value_pat(g))


@pytest.mark.parametrize("op", ALL_OPS)
def test_groups_not_dividing_cin(op):
    # C_in = 6, groups = 4: 6 % 4 != 0 (weight has C_in/groups = 1, C_out = 8)
    expect(ValueError,
           lambda: run_op(op, _arr((1, 6, 5, 5)), _arr((8, 1, 3, 3)), groups=4), GROUPS)


@pytest.mark.parametrize("op", ALL_OPS)
def test_groups_not_dividing_cout(op):
    # C_in = 4, groups = 2 (2 channels per group, matches weight), C_out = 3 not divisible
    expect(ValueError,
           lambda: run_op(op, _arr((1, 4, 5, 5)), _arr((3, 2, 3, 3)), groups=2), GROUPS)


def test_groups_valid_depthwise_still_works():
    x = _arr((2, 3, 5, 5))
    w = _arr((6, 1, 3, 3), seed=3)
    y = ops.conv2d(x, w, groups=3)
    assert y.shape == (2, 6, 3, 3)
    # output channel o uses input channel o // 2 only
    ref = np.zeros_like(y)
    for o in range(6):
        c = o // 2
        for i in range(3):
            for j in range(3):
                ref[:, o, i, j] = np.sum(x[:, c, i:i + 3, j:j + 3] * w[o, 0], axis=(1, 2))
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------------------
# stride / dilation
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ALL_OPS)
@pytest.mark.parametrize("name,pat", [("stride", STRIDE), ("dilation", DIL)])
@pytest.mark.parametrize("v", [0, -1, -5])
def test_stride_dilation_not_positive_int(op, name, pat, v):
    expect(ValueError, lambda: run_op(op, _arr(XS), _arr(WS), **{name: v}), pat, value_pat(v))


@pytest.mark.parametrize("op", ALL_OPS)
@pytest.mark.parametrize("name,pat", [("stride", STRIDE), ("dilation", DIL)])
@pytest.mark.parametrize("v", [(1, 0), (0, 1), (-2, 1), (1, -3), (0, 0)])
def test_stride_dilation_not_positive_tuple(op, name, pat, v):
    expect(ValueError, lambda: run_op(op, _arr(XS), _arr(WS), **{name: v}), pat,
           r"(?<![\d.])(0|-\d+)(?![\d.])")


@pytest.mark.parametrize("op", ALL_OPS)
@pytest.mark.parametrize("name,pat", [("stride", STRIDE), ("dilation", DIL)])
@pytest.mark.parametrize("v", [(), (1,), (1, 1, 1), (1, 1, 1, 1)])
def test_stride_dilation_wrong_tuple_length(op, name, pat, v):
    expect(ValueError, lambda: run_op(op, _arr(XS), _arr(WS), **{name: v}), pat)


@pytest.mark.parametrize("op", ALL_OPS)
@pytest.mark.parametrize("name,pat", [("stride", STRIDE), ("dilation", DIL)])
@pytest.mark.parametrize("v", [1.5, 2.0, "2", (1, 1.5), ("1", 1), None, [1, 2.5]])
def test_stride_dilation_non_integer(op, name, pat, v):
    expect(TypeError, lambda: run_op(op, _arr(XS), _arr(WS), **{name: v}), pat)


@pytest.mark.parametrize("op", ALL_OPS)
@pytest.mark.parametrize("v", [1.5, "2", None])
def test_groups_non_integer(op, v):
    expect(TypeError, lambda: run_op(op, _arr(XS), _arr(WS), groups=v), GROUPS)


def test_numpy_integer_parameters_are_accepted():
    x, w = _arr(XS), _arr(WS)
    a = ops.conv2d(x, w, stride=np.int64(2), dilation=(np.int32(1), 1), padding=np.int64(1))
    b = ops.conv2d(x, w, stride=2, dilation=1, padding=1)
    np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------------------
# padding
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ALL_OPS)
@pytest.mark.parametrize("p", [-1, (0, -1), (-2, 0), (1, 1, -1, 0), (0, 0, 0, -3)])
def test_negative_padding(op, p):
    expect(ValueError, lambda: run_op(op, _arr(XS), _arr(WS), padding=p), PAD,
           r"-\d|negative|>= ?0|non-?neg")


@pytest.mark.parametrize("op", ALL_OPS)
@pytest.mark.parametrize("p", [(), (1,), (1, 1, 1), (1, 1, 1, 1, 1)])
def test_padding_wrong_tuple_length(op, p):
    expect(ValueError, lambda: run_op(op, _arr(XS), _arr(WS), padding=p), PAD)


@pytest.mark.parametrize("op", ALL_OPS)
@pytest.mark.parametrize("word", ["half", "SAMEISH", "", "2", "zeros"])
def test_unknown_padding_word(op, word):
    msg = expect(ValueError, lambda: run_op(op, _arr(XS), _arr(WS), padding=word), PAD)
    if word:
        assert word in msg, f"the bad word {word!r} is not quoted in {msg!r}"


@pytest.mark.parametrize("op", ALL_OPS)
@pytest.mark.parametrize("p", [1.5, None, (1, 1.5), (1, "1")])
def test_padding_wrong_type(op, p):
    expect(TypeError, lambda: run_op(op, _arr(XS), _arr(WS), padding=p), PAD)


@pytest.mark.parametrize("op", ALL_OPS)
@pytest.mark.parametrize("mode", ["reflection", "zero", "constant", "wrap", "edge", ""])
def test_unknown_padding_mode(op, mode):
    msg = expect(ValueError, lambda: run_op(op, _arr(XS), _arr(WS), padding=1, padding_mode=mode),
                 PMODE)
    if mode:
        assert mode in msg, f"the bad mode {mode!r} is not quoted in {msg!r}"


@pytest.mark.parametrize("op", ALL_OPS)
@pytest.mark.parametrize("mode", [None, 0])
def test_padding_mode_wrong_type(op, mode):
    expect(TypeError, lambda: run_op(op, _arr(XS), _arr(WS), padding=1, padding_mode=mode),
           PMODE)


@pytest.mark.parametrize("op", ARRAY_OPS)
@pytest.mark.parametrize("algo", ["fast", "", "winograd3", "im2row"])
def test_unknown_algorithm(op, algo):
    msg = expect(ValueError, lambda: run_op(op, _arr(XS), _arr(WS), algorithm=algo), ALGO)
    if algo:
        assert algo in msg, f"the bad algorithm {algo!r} is not quoted in {msg!r}"


@pytest.mark.parametrize("op", ARRAY_OPS)
def test_algorithm_wrong_type(op):
    expect(TypeError, lambda: run_op(op, _arr(XS), _arr(WS), algorithm=None), ALGO)


# x is (1, 2, 4, 6): H=4, W=6
@pytest.mark.parametrize("op", ALL_OPS)
@pytest.mark.parametrize(
    "padding,k",
    [
        (4, 3),  # 4 >= H
        (5, 3),
        ((4, 1), 3),  # H
        ((1, 6), 3),  # W
        ((0, 0, 0, 4), 3),  # bottom ((left, right, top, bottom), as F.pad)
        ((6, 0, 0, 0), 3),  # left
        ((0, 7, 0, 0), 3),  # right
        ("full", 5),  # 4 on each side of H
    ],
)
def test_reflect_padding_too_large(op, padding, k):
    x = _arr((1, 2, 4, 6))
    w = _arr((3, 2, k, k))
    expect(ValueError, lambda: run_op(op, x, w, padding=padding, padding_mode="reflect"),
           r"\bpadding(_mode)?\b", r"reflect")


@pytest.mark.parametrize("op", ALL_OPS)
def test_reflect_same_padding_too_large(op):
    # H = W = 2, k = 5, "same": total 4, 2 per side >= 2
    x = _arr((1, 1, 2, 2))
    w = _arr((1, 1, 5, 5))
    expect(ValueError, lambda: run_op(op, x, w, padding="same", padding_mode="reflect"),
           r"\bpadding(_mode)?\b", r"reflect")


def test_reflect_padding_at_limit_works():
    # pad = size - 1 is the largest legal reflect pad; compare with numpy
    x = _arr((1, 1, 4, 6))
    w = np.ones((1, 1, 1, 1))
    y = ops.conv2d(x, w, padding=(3, 5), padding_mode="reflect")
    ref = np.pad(x, ((0, 0), (0, 0), (3, 3), (5, 5)), mode="reflect")
    np.testing.assert_array_equal(y, ref)
    assert ops.conv2d_output_shape(x.shape, w.shape, padding=(3, 5),
                                   padding_mode="reflect") == ref.shape


@pytest.mark.parametrize("mode,npmode", [("circular", "wrap"), ("replicate", "edge"),
                                         ("zeros", "constant")])
def test_large_padding_in_other_modes_works(mode, npmode):
    # circular/replicate/zeros accept padding larger than the input
    x = _arr((1, 2, 2, 3))
    w = np.zeros((2, 2, 1, 1))
    w[0, 0, 0, 0] = w[1, 1, 0, 0] = 1.0  # identity 1x1 conv
    y = ops.conv2d(x, w, padding=(0, 7, 5, 1), padding_mode=mode)    # (left, right, top, bottom)
    ref = np.pad(x, ((0, 0), (0, 0), (5, 1), (0, 7)), mode=npmode)
    np.testing.assert_array_equal(y, ref)


# --------------------------------------------------------------------------------------
# sizes
# --------------------------------------------------------------------------------------

SIZE_WORDS = r"size|large|small|output|empty|exceed|kernel|< ?1|positive|zero|\b0\b"


@pytest.mark.parametrize("op", ALL_OPS)
@pytest.mark.parametrize(
    "xshape,wshape,kw",
    [
        ((1, 1, 3, 3), (1, 1, 5, 5), {}),
        ((1, 1, 3, 8), (1, 1, 4, 3), {}),  # only H too small
        ((1, 1, 8, 3), (1, 1, 3, 4), {"padding": "valid"}),  # only W too small
        ((1, 1, 3, 3), (1, 1, 6, 6), {"padding": 1}),  # 5 < 6
        ((1, 1, 5, 5), (1, 1, 3, 3), {"dilation": 3}),  # effective kernel 7 > 5
        ((1, 1, 5, 5), (1, 1, 3, 3), {"dilation": (1, 3)}),
    ],
)
def test_kernel_larger_than_padded_input(op, xshape, wshape, kw):
    expect(ValueError, lambda: run_op(op, _arr(xshape), _arr(wshape), **kw),
           r"\b(x|weight|padding|dilation|kernel|input)\b", SIZE_WORDS)


@pytest.mark.parametrize("op", ALL_OPS)
@pytest.mark.parametrize("wshape", [(6, 4, 0, 3), (6, 4, 3, 0), (6, 4, 0, 0)])
def test_zero_size_kernel(op, wshape):
    expect(ValueError, lambda: run_op(op, _arr(XS), _arr(wshape), padding=1), W,
           r"\b0\b|zero|empty|positive|size|kernel")


@pytest.mark.parametrize("op", ALL_OPS)
@pytest.mark.parametrize(
    "xshape,wshape",
    [
        ((2, 0, 5, 5), (3, 0, 3, 3)),  # C_in = 0
        ((2, 4, 5, 5), (0, 4, 3, 3)),  # C_out = 0
    ],
)
def test_zero_channels(op, xshape, wshape):
    expect(ValueError, lambda: run_op(op, _arr(xshape), _arr(wshape)),
           r"\b(x|weight)\b", r"channel|\b0\b|zero|empty|positive")


@pytest.mark.parametrize("op", ALL_OPS)
@pytest.mark.parametrize("xshape", [(2, 4, 0, 6), (2, 4, 7, 0), (2, 4, 0, 0)])
def test_zero_spatial_size(op, xshape):
    expect(ValueError, lambda: run_op(op, _arr(xshape), _arr(WS)), X,
           r"\b0\b|zero|empty|positive|size")


@pytest.mark.parametrize("dtype", [F32, F64])
def test_batch_zero_is_valid(dtype):
    x = np.zeros((0, 4, 7, 6), dtype=dtype)
    w = _arr(WS, dtype)
    b = _arr((6,), dtype)
    y = ops.conv2d(x, w, b, padding=1, stride=(2, 1))
    assert y.shape == (0, 6, 4, 6)
    assert y.dtype == dtype
    assert ops.conv2d_output_shape(x.shape, w.shape, padding=1, stride=(2, 1)) == (0, 6, 4, 6)
    for mode in ["reflect", "replicate", "circular"]:
        assert ops.conv2d(x, w, padding="same", padding_mode=mode).shape == (0, 6, 7, 6)
    gx, gw, gb = ops.conv2d_backward(np.zeros((0, 6, 4, 6), dtype), x, w, padding=1,
                                     stride=(2, 1))
    assert gx.shape == x.shape and gx.dtype == dtype
    assert gw.shape == w.shape and gw.dtype == dtype
    assert gb.shape == (6,) and gb.dtype == dtype
    np.testing.assert_array_equal(gw, 0)
    np.testing.assert_array_equal(gb, 0)


# --------------------------------------------------------------------------------------
# bias
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("bshape", [(5,), (7,), (1,), (0,), (12,)])
def test_bias_wrong_length(bshape):
    msg = expect(ValueError, lambda: ops.conv2d(_arr(XS), _arr(WS), _arr(bshape)), B)
    assert re.search(value_pat(6), msg) or re.search(value_pat(bshape[0]), msg), msg


# --------------------------------------------------------------------------------------
# dtypes
# --------------------------------------------------------------------------------------

DTYPE_WORDS = r"float|dtype|double|int|bool|complex|type"


@pytest.mark.parametrize("xd,wd", [(F32, F64), (F64, F32)])
def test_mixed_float_x_weight(xd, wd):
    expect(TypeError, lambda: ops.conv2d(_arr(XS, xd), _arr(WS, wd)),
           r"\b(x|weight)\b", r"float32|float64|float|double|dtype")
    expect(TypeError,
           lambda: ops.conv2d_backward(np.zeros((2, 6, 5, 4), xd), _arr(XS, xd), _arr(WS, wd)),
           r"\b(x|weight)\b", r"float32|float64|float|double|dtype")


@pytest.mark.parametrize("d,bd", [(F32, F64), (F64, F32)])
def test_mixed_float_bias(d, bd):
    expect(TypeError, lambda: ops.conv2d(_arr(XS, d), _arr(WS, d), _arr((6,), bd)), B,
           r"float32|float64|float|double|dtype")


@pytest.mark.parametrize("d,god", [(F32, F64), (F64, F32)])
def test_grad_out_wrong_float_dtype(d, god):
    x, w = _arr(XS, d), _arr(WS, d)
    expect(TypeError, lambda: ops.conv2d_backward(np.ones((2, 6, 5, 4), god), x, w), GO,
           r"float32|float64|float|double|dtype")


BAD_DTYPES = [np.int32, np.int64, np.uint8, np.bool_, np.complex64, np.complex128]


@pytest.mark.parametrize("bad", BAD_DTYPES)
def test_bad_dtype_x(bad):
    x = np.ones(XS, dtype=bad)
    expect(TypeError, lambda: ops.conv2d(x, _arr(WS)), X, DTYPE_WORDS)
    expect(TypeError, lambda: ops.conv2d_backward(np.ones((2, 6, 5, 4)), x, _arr(WS)), X,
           DTYPE_WORDS)


@pytest.mark.parametrize("bad", BAD_DTYPES)
def test_bad_dtype_weight(bad):
    w = np.ones(WS, dtype=bad)
    expect(TypeError, lambda: ops.conv2d(_arr(XS), w), W, DTYPE_WORDS)
    expect(TypeError, lambda: ops.conv2d_backward(np.ones((2, 6, 5, 4)), _arr(XS), w), W,
           DTYPE_WORDS)


@pytest.mark.parametrize("bad", BAD_DTYPES)
def test_bad_dtype_bias(bad):
    expect(TypeError, lambda: ops.conv2d(_arr(XS), _arr(WS), np.ones(6, dtype=bad)), B,
           DTYPE_WORDS)


@pytest.mark.parametrize("bad", BAD_DTYPES)
def test_bad_dtype_grad_out(bad):
    go = np.ones((2, 6, 5, 4), dtype=bad)
    expect(TypeError, lambda: ops.conv2d_backward(go, _arr(XS), _arr(WS)), GO, DTYPE_WORDS)


@pytest.mark.parametrize("bad", [np.int32, np.bool_, np.complex128])
def test_bad_dtype_all_arrays(bad):
    expect(TypeError, lambda: ops.conv2d(np.ones(XS, bad), np.ones(WS, bad)),
           r"\b(x|weight)\b", DTYPE_WORDS)


# --------------------------------------------------------------------------------------
# grad_out shape
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "goshape",
    [
        (2, 6, 5, 5),  # W_out wrong
        (2, 6, 4, 4),  # H_out wrong
        (2, 5, 5, 4),  # C_out wrong
        (3, 6, 5, 4),  # N wrong
        (1, 6, 5, 4),
        (2, 6, 7, 6),  # looks like "same" padding, but padding=0
    ],
)
def test_grad_out_shape_mismatch(goshape):
    x, w = _arr(XS), _arr(WS)
    expect(ValueError, lambda: ops.conv2d_backward(np.ones(goshape), x, w), GO,
           r"shape|size|expect|\d")


def test_grad_out_shape_mismatch_with_params():
    # with stride 2, padding 1 the output is (2, 6, 4, 3); give the stride-1 shape
    x, w = _arr(XS), _arr(WS)
    expect(ValueError,
           lambda: ops.conv2d_backward(np.ones((2, 6, 7, 6)), x, w, stride=2, padding=1), GO)
    gx, gw, gb = ops.conv2d_backward(np.ones((2, 6, 4, 3)), x, w, stride=2, padding=1)
    assert gx.shape == XS


# --------------------------------------------------------------------------------------
# 64-bit overflow and the memory limit
#
# These run in a subprocess with an address-space limit, so that an implementation
# that (wrongly) tries to allocate the result cannot take the test machine down; the
# subprocess reports the exception type and message of every call as JSON.
# --------------------------------------------------------------------------------------

_HUGE_SCRIPT = r"""
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))
import numpy as np
import cnncore
from cnncore import ops
lim = cnncore.get_memory_limit()
# a padding so large that the result alone is more than 4x the memory limit, on one
# axis only (products stay far below 2**63: no overflow, just too much memory)
p_mem = int(4 * lim // (8 * 2)) + 16
x = np.ones((1, 1, 4, 4)); w = np.ones((1, 1, 3, 3))
x32 = x.astype(np.float32); w32 = w.astype(np.float32)
cases = {
    # 64-bit overflow of the sizes themselves or of their products
    "pad_2_62": lambda: ops.conv2d(x, w, padding=2**62),
    "pad_2_62_tuple_h": lambda: ops.conv2d(x, w, padding=(2**62, 0)),
    "pad_2_62_4tuple": lambda: ops.conv2d(x, w, padding=(2**62, 2**62, 0, 0)),
    "pad_2_63_minus_1": lambda: ops.conv2d(x, w, padding=2**63 - 1),
    "pad_2_31_both": lambda: ops.conv2d(x, w, padding=2**31),
    "pad_2_31_both_f32": lambda: ops.conv2d(x32, w32, padding=2**31),
    "pad_2_31_both_circular": lambda: ops.conv2d(x, w, padding=2**31, padding_mode="circular"),
    "pad_2_31_both_replicate": lambda: ops.conv2d(x, w, padding=2**31,
                                                  padding_mode="replicate"),
    "dilation_2_62": lambda: ops.conv2d(x, w, dilation=2**62),
    "dilation_2_62_full": lambda: ops.conv2d(x, w, dilation=2**62, padding="full"),
    "full_dilation_2_31": lambda: ops.conv2d(x, w, dilation=2**31, padding="full"),
    "same_dilation_2_62": lambda: ops.conv2d(x, w, dilation=2**62, padding="same"),
    "backward_pad_2_31": lambda: ops.conv2d_backward(np.ones((1, 1, 1, 1)), x, w,
                                                     padding=2**31),
    "backward_pad_2_62": lambda: ops.conv2d_backward(np.ones((1, 1, 1, 1)), x, w,
                                                     padding=2**62),
    "shape_pad_2_62": lambda: ops.conv2d_output_shape((1, 1, 4, 4), (1, 1, 3, 3),
                                                      padding=2**62),
    "shape_dilation_2_62": lambda: ops.conv2d_output_shape((1, 1, 4, 4), (1, 1, 3, 3),
                                                           dilation=2**62),
    # representable sizes, but more than the memory limit
    "pad_2_31_h": lambda: ops.conv2d(x, w, padding=(2**31, 0)) if 2**33 * 8 > lim else None,
    "pad_mem_h": lambda: ops.conv2d(x, w, padding=(p_mem, 0)),
    "pad_mem_w_f32": lambda: ops.conv2d(x32, w32, padding=(0, 0, p_mem, p_mem)),
    "pad_mem_circular": lambda: ops.conv2d(x, w, padding=(p_mem, 0), padding_mode="circular"),
    # may succeed (it only computes a shape) or raise ValueError
    "shape_pad_mem": lambda: ops.conv2d_output_shape((1, 1, 4, 4), (1, 1, 3, 3),
                                                     padding=(p_mem, 0)),
}
out = {"_p_mem": p_mem}
for name, fn in cases.items():
    try:
        r = fn()
        out[name] = ["ok", None if r is None else repr(tuple(getattr(r, "shape", r)))]
    except BaseException as e:  # noqa: BLE001 - we report everything
        out[name] = [type(e).__name__, str(e)]
# still alive?
y = ops.conv2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)))
out["_alive"] = bool((y == 4).all())
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def huge_results():
    if os.environ.get("CNNCORE_SANITIZED") == "1":
        pytest.skip("the child runs under an 8 GiB address-space limit, and ASan reserves "
                    "terabytes of shadow memory at start-up, so the child cannot start")
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", _HUGE_SCRIPT], capture_output=True, text=True,
                       timeout=300, env=env)
    assert r.returncode == 0, f"subprocess died: rc={r.returncode}\n{r.stdout}\n{r.stderr}"
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res.pop("_alive") is True
    return res


HUGE_OVERFLOW = ["pad_2_62", "pad_2_62_tuple_h", "pad_2_62_4tuple", "pad_2_63_minus_1",
                 "pad_2_31_both", "pad_2_31_both_f32", "pad_2_31_both_circular",
                 "pad_2_31_both_replicate", "dilation_2_62", "dilation_2_62_full",
                 "full_dilation_2_31", "same_dilation_2_62", "backward_pad_2_31",
                 "backward_pad_2_62", "shape_pad_2_62", "shape_dilation_2_62"]
HUGE_MEMORY = ["pad_2_31_h", "pad_mem_h", "pad_mem_w_f32", "pad_mem_circular"]
HUGE_WORDS = (r"overflow|memory|large|exceed|too big|size|limit|kernel|output|input|"
              r"grad_out|shape")


@pytest.mark.parametrize("case", HUGE_OVERFLOW)
def test_sizes_overflowing_int64_raise_value_error(huge_results, case):
    typ, msg = huge_results[case]
    assert typ == "ValueError", f"{case}: expected ValueError, got {typ}: {msg}"
    assert re.match(r"\s*conv2d", msg), msg
    assert re.search(HUGE_WORDS, msg, re.I), msg


@pytest.mark.parametrize("case", HUGE_MEMORY)
def test_sizes_over_the_memory_limit_raise_value_error(huge_results, case):
    typ, msg = huge_results[case]
    if case == "pad_2_31_h" and typ == "ok":
        pytest.skip("memory limit is above 64 GiB on this machine")
    assert typ == "ValueError", f"{case}: expected ValueError, got {typ}: {msg}"
    assert re.match(r"\s*conv2d", msg), msg
    assert re.search(r"memory", msg, re.I), msg


def test_output_shape_of_problem_over_the_memory_limit(huge_results):
    # conv2d_output_shape allocates nothing; it may return the shape or raise ValueError
    typ, msg = huge_results["shape_pad_mem"]
    p = huge_results["_p_mem"]
    if typ == "ok":
        assert msg == repr((1, 1, 4 + 2 * p - 2, 2)), msg
    else:
        assert typ == "ValueError", (typ, msg)
        assert re.match(r"\s*conv2d", msg), msg


def test_memory_limit_small():
    old = cnncore.get_memory_limit()
    assert isinstance(old, int) and old > 0
    try:
        cnncore.set_memory_limit(1 << 20)
        assert cnncore.get_memory_limit() == 1 << 20
        x = _arr((1, 1, 8, 8))
        w = _arr((1, 1, 3, 3))
        # output (1, 1, 606, 606) float64 = 2.9 MB > 1 MiB
        expect(ValueError, lambda: ops.conv2d(x, w, padding=300), r"memory")
        # float32: (1, 1, 606, 606) * 4 = 1.47 MB > 1 MiB
        expect(ValueError, lambda: ops.conv2d(x.astype(F32), w.astype(F32), padding=300),
               r"memory")
        # many channels: output (1, 256, 32, 32) float64 = 2 MiB
        xc = _arr((1, 1, 32, 32))
        wc = _arr((256, 1, 1, 1))
        expect(ValueError, lambda: ops.conv2d(xc, wc), r"memory")
        for algo in ["reference", "im2col", "auto"]:
            expect(ValueError, lambda: ops.conv2d(x, w, padding=300, algorithm=algo),
                   r"memory")
        # backward: grad_x is as large as x (1, 1, 600, 600) = 2.9 MB
        xb = _arr((1, 1, 600, 600))
        expect(ValueError,
               lambda: ops.conv2d_backward(np.ones((1, 1, 598, 598)), xb, w), r"memory")
        # a small problem is still fine under the small limit
        y = ops.conv2d(x, w, padding=1)
        assert y.shape == (1, 1, 8, 8)
    finally:
        cnncore.set_memory_limit(old)
    assert cnncore.get_memory_limit() == old
    # after restoring, the big problem works again
    assert ops.conv2d(_arr((1, 1, 8, 8)), _arr((1, 1, 3, 3)), padding=300).shape == (1, 1, 606, 606)


def test_memory_limit_workspace():
    """A problem with a small output but a big im2col workspace either raises a
    ValueError about memory (workspace over the limit) or, if the implementation
    tiles its workspace, gives the right answer."""
    old = cnncore.get_memory_limit()
    x = _arr((1, 256, 32, 32), F32)  # 1 MiB input (allocated by us)
    w = _arr((2, 256, 3, 3), F32, seed=1)
    ref = ops.conv2d(x, w, algorithm="reference")
    try:
        cnncore.set_memory_limit(1 << 20)
        try:
            y = ops.conv2d(x, w, algorithm="im2col")  # im2col: 256*9*900*4 = 8.3 MB
        except ValueError as e:
            assert re.search(r"memory", str(e), re.I), str(e)
            assert str(e).startswith("conv2d"), str(e)
        else:
            np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-3)
    finally:
        cnncore.set_memory_limit(old)
    assert_alive()


# --------------------------------------------------------------------------------------
# conv2d_output_shape
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ishape,wshape,kw,exc,pat",
    [
        ((1, 4, 7, 6), (6, 4, 3), {}, ValueError, W),
        ((4, 7, 6), (6, 4, 3, 3), {}, ValueError, r"\b(x|input_shape|input)\b"),
        ((1, 4, 7, 6, 1), (6, 4, 3, 3), {}, ValueError, r"\b(x|input_shape|input)\b"),
        ((1, 4, 7, 6), (6, 4, 3, 3), {"groups": 0}, ValueError, GROUPS),
        ((1, 4, 7, 6), (6, 4, 3, 3), {"stride": 0}, ValueError, STRIDE),
        ((1, 4, 7, 6), (6, 4, 3, 3), {"dilation": (1, -1)}, ValueError, DIL),
        ((1, 4, 7, 6), (6, 4, 3, 3), {"padding": -2}, ValueError, PAD),
        ((1, 4, 7, 6), (6, 4, 3, 3), {"padding": "half"}, ValueError, PAD),
        ((1, 4, 7, 6), (6, 4, 3, 3), {"padding_mode": "wrap"}, ValueError, PMODE),
        ((1, 4, 7, 6), (6, 4, 3, 3), {"padding": 7, "padding_mode": "reflect"}, ValueError,
         r"reflect"),
        ((1, 5, 7, 6), (6, 4, 3, 3), {}, ValueError, r"channel"),
        ((1, 4, 2, 6), (6, 4, 3, 3), {}, ValueError, r"\b(x|weight|padding|kernel|input)\b"),
        ((1, 4, 7, 6), (6, 4, 0, 3), {}, ValueError, W),
        ((1, 4, 0, 6), (6, 4, 3, 3), {}, ValueError, r"\b(x|input_shape|input)\b"),
        ((1, 4, 7, 6), (6, 4, 3, 3), {"stride": 1.5}, TypeError, STRIDE),
        ((1, 4, 7, 6), (6, 4, 3, 3), {"groups": "1"}, TypeError, GROUPS),
        ((1, 4, 7, 6), (6, 4, 3, 3), {"padding": None}, TypeError, PAD),
        ((1, 4, 7, 6), (6, 4, 3, 3), {"padding": 1, "padding_mode": 3}, TypeError, PMODE),
        ((1, 4, 7, 6), (6, 4, 3, 3), {"padding": (1, 2, 3)}, ValueError, PAD),
        ((1, 4, 7, 6), (6, 4, 3, 3), {"stride": (1, 1, 1)}, ValueError, STRIDE),
        ((1, -4, 7, 6), (6, -4, 3, 3), {}, ValueError, r"\b(x|weight|input_shape|input)\b"),
        ((1, 4, -7, 6), (6, 4, 3, 3), {}, ValueError, r"\b(x|input_shape|input)\b"),
    ],
)
def test_output_shape_bad_arguments(ishape, wshape, kw, exc, pat):
    expect(exc, lambda: ops.conv2d_output_shape(ishape, wshape, **kw), pat)


@pytest.mark.parametrize(
    "ishape,wshape,kw,expected",
    [
        ((2, 4, 7, 6), (6, 4, 3, 3), {}, (2, 6, 5, 4)),
        ((2, 4, 7, 6), (6, 4, 3, 3), {"padding": "same"}, (2, 6, 7, 6)),
        ((2, 4, 7, 6), (6, 4, 3, 3), {"padding": "same", "stride": 2}, (2, 6, 4, 3)),
        ((2, 4, 7, 6), (6, 4, 3, 3), {"padding": "same", "stride": 3, "dilation": 2},
         (2, 6, 3, 2)),
        ((2, 4, 7, 6), (6, 4, 3, 3), {"padding": "full"}, (2, 6, 9, 8)),
        ((2, 4, 7, 6), (6, 4, 3, 3), {"padding": "full", "dilation": 2}, (2, 6, 11, 10)),
        ((2, 4, 7, 6), (6, 4, 3, 3), {"padding": "valid"}, (2, 6, 5, 4)),
        ((2, 4, 7, 6), (6, 2, 3, 2), {"groups": 2, "padding": (2, 3, 1, 0)}, (2, 6, 6, 10)),
        ((2, 4, 7, 6), (6, 4, 3, 3), {"stride": (2, 3), "padding": (1, 2)}, (2, 6, 4, 3)),
        ((2, 4, 7, 6), (6, 4, 3, 3), {"padding": 2, "padding_mode": "reflect"}, (2, 6, 9, 8)),
        ((0, 4, 7, 6), (6, 4, 3, 3), {}, (0, 6, 5, 4)),
    ],
)
def test_output_shape_values(ishape, wshape, kw, expected):
    got = ops.conv2d_output_shape(ishape, wshape, **kw)
    assert tuple(got) == expected
    assert all(isinstance(v, int) for v in got)
    if ishape[0] > 0:
        y = ops.conv2d(_arr(ishape), _arr(wshape), **kw)
        assert y.shape == expected


# --------------------------------------------------------------------------------------
# threads
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, -1, -8])
def test_set_num_threads_not_positive(n):
    before = cnncore.get_num_threads()
    with pytest.raises(ValueError, match=re.compile(r"thread|positive|" + value_pat(n), re.I)):
        cnncore.set_num_threads(n)
    assert cnncore.get_num_threads() == before
    assert_alive()


@pytest.mark.parametrize("n", [1.5, "2", None])
def test_set_num_threads_wrong_type(n):
    with pytest.raises(TypeError):
        cnncore.set_num_threads(n)
    assert_alive()


def test_threads_round_trip_and_identical_results():
    old = cnncore.get_num_threads()
    assert isinstance(old, int) and old >= 1
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 8, 19, 17))
    w = rng.standard_normal((12, 4, 3, 3))
    b = rng.standard_normal(12)
    kw = dict(stride=(1, 2), padding=(1, 2, 0, 1), dilation=(2, 1), groups=2,
              padding_mode="reflect")
    results = {}
    try:
        for n in (1, 2, 1):
            cnncore.set_num_threads(n)
            assert cnncore.get_num_threads() == n
            for algo in ["reference", "im2col", "auto"]:
                y = ops.conv2d(x, w, b, algorithm=algo, **kw)
                go = np.cos(y)
                grads = ops.conv2d_backward(go, x, w, algorithm=algo, **kw)
                f32 = ops.conv2d(x.astype(F32), w.astype(F32), b.astype(F32), algorithm=algo,
                                 **kw)
                results.setdefault(algo, []).append((n, y, grads, f32))
    finally:
        cnncore.set_num_threads(old)
    assert cnncore.get_num_threads() == old
    for algo, runs in results.items():
        _, y1, g1, f1 = runs[0]
        for n, y, g, f in runs[1:]:
            # forward: every output element is one independent sum -> bitwise identical
            np.testing.assert_array_equal(y, y1, err_msg=f"{algo} forward, {n} threads")
            np.testing.assert_array_equal(f, f1, err_msg=f"{algo} forward f32, {n} threads")
            # backward: reductions over the batch may be split differently among threads
            for a, r in zip(g, g1):
                np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-12,
                                           err_msg=f"{algo} backward, {n} threads")


# --------------------------------------------------------------------------------------
# a batch of bad calls in a fresh process: no crash, no abort, every call raises the
# documented exception type with a message saying why
# --------------------------------------------------------------------------------------

_BATCH_SCRIPT = r"""
import numpy as np
import cnncore
from cnncore import ops
x = np.ones((2, 4, 7, 6)); w = np.ones((6, 4, 3, 3)); go = np.ones((2, 6, 5, 4))
V, T = ValueError, TypeError
bad = [
    (V, lambda: ops.conv2d(x[0], w), r"x must have 4 dimensions .*got 3"),
    (V, lambda: ops.conv2d(x, w[0]), r"weight must have 4 dimensions .*got 3"),
    (V, lambda: ops.conv2d(x, w, np.ones((6, 1))), r"bias must have shape \(6,\).*got \[6, 1\]"),
    (V, lambda: ops.conv2d(x, w, np.ones(5)), r"bias must have shape \(6,\).*got \[5\]"),
    (V, lambda: ops.conv2d(np.ones((2, 5, 7, 6)), w), r"x has 5 channels"),
    (V, lambda: ops.conv2d(x, w, groups=0), r"groups must be a positive integer, got 0"),
    (V, lambda: ops.conv2d(x, w, groups=3), r"groups=3 must divide"),
    (V, lambda: ops.conv2d(x, w, stride=0), r"stride must be positive, got 0 on axis H"),
    (V, lambda: ops.conv2d(x, w, stride=(1, 0)), r"stride must be positive, got 0 on axis W"),
    (V, lambda: ops.conv2d(x, w, stride=(1, 1, 1)), r"stride must be .*got 3 values"),
    (V, lambda: ops.conv2d(x, w, dilation=-1), r"dilation must be positive, got -1"),
    (V, lambda: ops.conv2d(x, w, padding=-1), r"padding must be non-negative, got -1"),
    (V, lambda: ops.conv2d(x, w, padding=(1, 1, 1)), r"padding must be .*got 3 values"),
    (V, lambda: ops.conv2d(x, w, padding="half"), r"got 'half'"),
    (V, lambda: ops.conv2d(x, w, padding_mode="wrap"),
     r"padding_mode must be one of .*got 'wrap'"),
    (V, lambda: ops.conv2d(x, w, algorithm="fast"), r"algorithm must be one of .*got 'fast'"),
    (V, lambda: ops.conv2d(x, w, padding=7, padding_mode="reflect"),
     r"reflect padding must be smaller than the input size"),
    (V, lambda: ops.conv2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3))),
     r"kernel is larger than the padded input"),
    (V, lambda: ops.conv2d(x, np.ones((6, 4, 0, 3))), r"positive kernel size .*kH=0"),
    (V, lambda: ops.conv2d(np.ones((2, 0, 7, 6)), np.ones((6, 0, 3, 3))), r"at least one channel"),
    (V, lambda: ops.conv2d(np.ones((2, 4, 0, 6)), w),
     r"positive size on every spatial axis, got H=0"),
    (V, lambda: ops.conv2d(x, w, padding=2**62), r"padding: size arithmetic overflows"),
    (V, lambda: ops.conv2d(x, w, dilation=2**62), r"dilation: size arithmetic overflows"),
    (V, lambda: ops.conv2d_backward(np.ones((2, 6, 5, 5)), x, w),
     r"grad_out must have the forward output's shape \[2, 6, 5, 4\], got \[2, 6, 5, 5\]"),
    (V, lambda: ops.conv2d_backward(go[0], x, w),
     r"grad_out must have the forward output's shape .*got \[6, 5, 4\]"),
    (V, lambda: ops.conv2d_output_shape((1, 4, 7), (6, 4, 3, 3)),
     r"input_shape must have 4 entries"),
    (V, lambda: cnncore.set_num_threads(0), r"n must be at least 1, got 0"),
    (T, lambda: ops.conv2d(x.astype(np.float32), w),
     r"weight has dtype float64 but x has float32"),
    (T, lambda: ops.conv2d(x.astype(np.int64), w), r"float32 or float64 array, got dtype int64"),
    (T, lambda: ops.conv2d(x.astype(bool), w), r"got dtype bool"),
    (T, lambda: ops.conv2d(x.astype(np.complex128), w), r"got dtype complex128"),
    (T, lambda: ops.conv2d(x, w, stride=1.5), r"got float 1\.5"),
    (T, lambda: ops.conv2d(x, w, stride="2"), r"got str '2'"),
    (T, lambda: ops.conv2d_backward(go.astype(np.float32), x, w),
     r"grad_out has dtype float32 but x has float64"),
    (T, lambda: ops.conv2d_backward(go.astype(np.int32), x, w),
     r"grad_out must be a float32 or float64 array, got dtype int32"),
]
alive = lambda: ops.conv2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2))).tolist()
"""


_LEVELS = ("ref", "generic", "avx2", "avx512")


@pytest.mark.parametrize("isa", [None, *_LEVELS])
def test_batch_of_bad_calls_in_subprocess(isa):
    if isa is not None and _LEVELS.index(isa) > _LEVELS.index(cnncore._core.best_isa()):
        pytest.skip(f"this CPU does not support {isa}")
    env = dict(os.environ)
    env.pop("CNNCORE_ISA", None)
    if isa is not None:
        env["CNNCORE_ISA"] = isa
    n, alive = bad_calls_in_subprocess(_BATCH_SCRIPT, env=env, timeout=300)
    assert n == 35
    assert alive == [[[[4.0, 4.0], [4.0, 4.0]]]]


def test_isa_is_reported():
    assert cnncore.get_isa() in _LEVELS


def test_gil_is_usable_from_threads():
    """Kernels release the GIL: calling conv2d from several Python threads at once
    must give the same results as calling it serially (and not deadlock)."""
    import threading

    rng = np.random.default_rng(3)
    xs = [rng.standard_normal((2, 3, 12, 12)) for _ in range(4)]
    w = rng.standard_normal((5, 3, 3, 3))
    serial = [ops.conv2d(x, w, padding=1) for x in xs]
    out = [None] * 4

    def work(i):
        for _ in range(5):
            out[i] = ops.conv2d(xs[i], w, padding=1)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    for a, b in zip(out, serial):
        np.testing.assert_array_equal(a, b)


# The checked keywords are cached by argument (ops/_common.py): a value equal to a cached
# valid one but of a rejected type is still refused, whichever came first.
@pytest.mark.parametrize("kw, bad", [
    ("stride", 2.0), ("stride", (2, 2.0)), ("padding", 1.0), ("padding", (1, 1.0)),
    ("dilation", 1.0), ("groups", 1.0), ("groups", True), ("flip", 1),
])
def test_cached_keywords_still_refuse_wrong_types(kw, bad):
    x, w = _arr((1, 2, 6, 6)), _arr((2, 2, 3, 3))
    good = {"stride": 2, "padding": 1, "dilation": 1, "groups": 1, "flip": True}[kw]
    good = (2, 2) if isinstance(bad, tuple) and kw == "stride" else good
    good = (1, 1) if isinstance(bad, tuple) and kw == "padding" else good
    ref = ops.conv2d(x, w, **{kw: good})
    for _ in range(2):  # the valid call is cached now
        np.testing.assert_array_equal(ops.conv2d(x, w, **{kw: good}), ref)
        with pytest.raises(TypeError, match=kw):
            ops.conv2d(x, w, **{kw: bad})
    assert_alive()


def test_cached_keywords_are_not_shared_with_callers():
    from cnncore.ops._common import _conv_params
    args = ("conv2d", 2, 2, 1, 1, 1, "zeros", False, "auto")
    for _ in range(2):  # the first call fills the cache, the second is served from it
        given = _conv_params(*args)
        given["stride"][0] = 99  # a caller changing what it was given
        given["padding"].append(7)
    again = _conv_params(*args)
    assert again["stride"] == [2, 2] and again["padding"] == [1, 1, 1, 1]
