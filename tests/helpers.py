"""Helpers shared by the test modules, imported as ``from helpers import ...`` (pytest's
default "prepend" import mode puts tests/ on ``sys.path``).

* Padding arithmetic of docs/conv2d.md and the pieces of the hypothesis configurations
  of the convolutions: seeds, padding forms, the smallest input a padding accepts,
  random inputs, and the index maps of the NumPy oracles.
* Central finite differences (eps 1e-6) and the gradient check built on them
  (rtol 1e-3, atol 1e-5); the adjoint identities of an op linear in x and in w.
* The error contract: one rejected call (exception kind, message, a working library
  afterwards) and a batch of rejected calls in a fresh interpreter.
* Running a function at several thread counts.
"""
import json
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import strategies as st

import cnncore
from cnncore import ops

SEEDS = st.integers(0, 2**32 - 1)

# the gradients a convolution's backward returns, in order
GRAD_NAMES = ("grad_x", "grad_weight", "grad_bias")

# numpy.pad's name for each padding mode
NP_PAD_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap",
               "symmetric": "symmetric"}

# --------------------------------------------------------------------------- padding geometry


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def resolve_padding(padding, in_hw, k_hw, stride, dilation, flip=False):
    """(top, bottom, left, right), as docs/conv2d.md defines the forms and words (a 4-tuple
    lists (left, right, top, bottom), last axis first, as torch's F.pad)."""
    if isinstance(padding, int):
        return (padding,) * 4
    if isinstance(padding, tuple):
        if len(padding) == 4:
            return padding[2], padding[3], padding[0], padding[1]
        return padding[0], padding[0], padding[1], padding[1]
    pads = []
    for n, k, s, d in zip(in_hw, k_hw, pair(stride), pair(dilation)):
        span = d * (k - 1)
        if padding == "valid":
            pads += [0, 0]
        elif padding == "full":
            pads += [span, span]
        else:  # same
            total = max((-(-n // s) - 1) * s + span + 1 - n, 0)
            before = total - total // 2 if flip else total // 2   # true convolution: scipy's
            pads += [before, total - before]
    return tuple(pads)


def conv_out_hw(x_shape, kernel, kwargs):
    """(H_out, W_out) of a convolution; kwargs may hold flip and tile, which do not matter."""
    kw = {k: v for k, v in kwargs.items() if k not in ("flip", "tile")}
    return tuple(ops.conv2d_output_shape(x_shape, kernel, **kw)[2:])


def padded_source_index(n, before, after, mode):
    """Which input index feeds each padded position along one axis (-1: a zero)."""
    if mode == "zeros":
        return np.pad(np.arange(n), (before, after), mode="constant", constant_values=-1)
    return np.pad(np.arange(n), (before, after), mode=NP_PAD_MODE[mode])


def window_index_map(n, before, after, k, stride, dilation, mode):
    """(out, k) input index read by output o at window offset a; -1 reads a zero."""
    src = padded_source_index(n, before, after, mode)
    out = (n + before + after - dilation * (k - 1) - 1) // stride + 1
    return src[np.arange(out)[:, None] * stride + np.arange(k)[None, :] * dilation]


# --------------------------------------------------------------------------- hypothesis pieces


def int_or_pair(lo, hi):
    """An int or an (H, W) pair of ints, each in [lo, hi]."""
    return st.one_of(st.integers(lo, hi), st.tuples(st.integers(lo, hi), st.integers(lo, hi)))


@st.composite
def paddings(draw, max_pad):
    """Every padding form: an int, a pair, a 4-tuple (values in [0, max_pad]) or a word."""
    form = draw(st.sampled_from(["int", "pair", "quad", "valid", "same", "full"]))
    if form == "int":
        return draw(st.integers(0, max_pad))
    if form == "pair":
        return (draw(st.integers(0, max_pad)), draw(st.integers(0, max_pad)))
    if form == "quad":
        return tuple(draw(st.integers(0, max_pad)) for _ in range(4))
    return form


def min_input_size(padding, axis, k_hw, dilation, mode):
    """The smallest input size along axis (0: H, 1: W) that gives an output with this
    padding and mode (reflect padding must be smaller than the input, symmetric padding at
    most as large)."""
    span = pair(dilation)[axis] * (k_hw[axis] - 1) + 1
    if not isinstance(padding, str):
        before, after = resolve_padding(padding, (1, 1), k_hw, 1, 1)[2 * axis:2 * axis + 2]
        lo = max(1, span - before - after)
        if mode == "reflect":
            lo = max(lo, before + 1, after + 1)
        elif mode == "symmetric":
            lo = max(lo, before, after)
        return lo
    if padding == "valid":
        return span
    if padding == "full":
        return {"reflect": span, "symmetric": max(1, span - 1)}.get(mode, 1)
    # same: the larger side is at most ceil((span - 1) / 2)
    return {"reflect": span // 2 + 1, "symmetric": max(1, span // 2)}.get(mode, 1)


@st.composite
def conv_geometry(draw, modes, max_k=3, max_extra=5):
    """Kernel, stride (1-3), dilation (1-2), padding (0-2 or a word) and mode first; then an
    input size (H, W) that suits them. Returns ((kH, kW), stride, dilation, padding, mode,
    (H, W))."""
    kh, kw = draw(st.integers(1, max_k)), draw(st.integers(1, max_k))
    stride, dilation = draw(int_or_pair(1, 3)), draw(int_or_pair(1, 2))
    padding = draw(paddings(2))
    mode = draw(st.sampled_from(modes))
    lows = [min_input_size(padding, axis, (kh, kw), dilation, mode) for axis in (0, 1)]
    sizes = tuple(draw(st.integers(lo, lo + max_extra)) for lo in lows)
    return (kh, kw), stride, dilation, padding, mode, sizes


def random_arrays(rng, shapes, dtype, integer=False):
    """One array of each shape, as dtype: small integers in [-8, 8] (sums of their products
    stay exact) or standard normal values."""
    if integer:
        return [rng.integers(-8, 9, size=s).astype(dtype) for s in shapes]
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


# --------------------------------------------------------------------------- finite differences

FD_EPS = 1e-6
FD_RTOL = 1e-3
FD_ATOL = 1e-5


def numeric_grad(loss, a, eps=FD_EPS):
    """Central differences (loss() at a + eps minus at a - eps) / (2 eps) of the scalar loss()
    with respect to every entry of a, which is changed in place and restored."""
    grad = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        old = a[idx]
        a[idx] = old + eps
        plus = loss()
        a[idx] = old - eps
        minus = loss()
        a[idx] = old
        grad[idx] = (plus - minus) / (2 * eps)
    return grad


def assert_gradients_match(loss, params, grads, labels=None, min_abs=None):
    """Each analytic gradient in grads has its param's shape, is float64 and equals
    numeric_grad(loss, param) to rtol 1e-3, atol 1e-5. With min_abs, the numeric gradient
    must also exceed min_abs somewhere, so that a degenerate case cannot pass vacuously."""
    labels = labels or [f"gradient {i}" for i in range(len(params))]
    assert len(grads) == len(params) == len(labels)
    for label, analytic, param in zip(labels, grads, params):
        assert analytic.shape == param.shape and analytic.dtype == np.float64, label
        numeric = numeric_grad(loss, param)
        if min_abs is not None:
            assert np.abs(numeric).max() > min_abs, f"{label}: degenerate configuration"
        np.testing.assert_allclose(analytic, numeric, rtol=FD_RTOL, atol=FD_ATOL, err_msg=label)


def assert_adjoint_identities(op, op_backward, x, w, g, **kwargs):
    """<op(x, w), g> = <x, grad_x> = <w, grad_weight> for an op linear in x and in w, to
    1e-11 times the sum of |every product| (which bounds the rounding of each side); asked
    for no bias gradient, op_backward returns None for it."""
    lhs = np.vdot(op(x, w, **kwargs), g)
    gx, gw, gb = op_backward(g, x, w, bias=False, **kwargs)
    assert gb is None
    scale = 1e-11 * (1 + np.vdot(op(np.abs(x), np.abs(w), **kwargs), np.abs(g)))
    assert abs(lhs - np.vdot(x, gx)) <= scale
    assert abs(lhs - np.vdot(w, gw)) <= scale


# --------------------------------------------------------------------------- errors


def expect_error(exc, call, prefix, *patterns, alive, flags=0):
    """call() raises exc, and a ValueError is not a TypeError (nor the other way round); the
    message matches the regex prefix at its start and every regex in patterns (re.search
    with flags); alive() (a valid call) still works afterwards. Returns the message."""
    with pytest.raises(exc) as info:
        call()
    other = {ValueError: TypeError, TypeError: ValueError}.get(exc)
    if other is not None:
        assert not isinstance(info.value, other), repr(info.value)
    msg = str(info.value)
    assert re.match(prefix, msg), f"message does not start with {prefix!r}: {msg!r}"
    for p in patterns:
        assert re.search(p, msg, flags), f"{p!r} not found in {msg!r}"
    alive()
    return msg


_BAD_CALLS_RUNNER = """
import json, re
wrong = []
for i, entry in enumerate(bad):
    if not (isinstance(entry, tuple) and len(entry) == 3 and isinstance(entry[2], str)):
        wrong.append((i, "not an (exception type, call, message regex) triple"))
        continue
    exc, call, pattern = entry
    try:
        call()
    except exc as e:
        msg = str(e)
        if exc is ValueError and isinstance(e, TypeError):
            wrong.append((i, repr(e)))
        elif not re.match(r"[A-Za-z_][\\w.]*: \\S", msg):
            wrong.append((i, "message does not name the op: " + repr(e)))
        elif not re.search(pattern, msg):
            wrong.append((i, f"{pattern!r} not in {msg!r}"))
    except BaseException as e:
        wrong.append((i, repr(e)))
    else:
        wrong.append((i, "no exception"))
print(json.dumps({"checked": len(bad), "wrong": wrong, "alive": alive()}))
"""


def child_env(**extra):
    """os.environ for a child interpreter that imports the cnncore these tests import
    (the installed package in CI, the source tree's with a built _core when developing),
    with this process's sys.path after it, plus `extra` variables."""
    import os
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(cnncore.__file__)))
    return dict(os.environ, PYTHONPATH=os.pathsep.join([package_root] + sys.path), **extra)


def bad_calls_in_subprocess(setup, env=None, timeout=120):
    """Runs setup (code that defines ``bad``, a list of calls, and ``alive()``, a valid call
    returning something JSON can carry) in a fresh interpreter, then every bad call and
    alive(). Each bad call is an (exception type, callable, regex) triple: the call must
    raise that type (a ValueError that is not a TypeError), its message must start with the
    op's name ("conv2d: ..."), so that a stray NumPy or pybind11 error does not count as a
    clean rejection, and must contain the regex, which states why the call is wrong (so a
    call rejected for another reason than the one it was written for does not pass).
    Asserts that the interpreter exits normally and that every call raised as it should;
    returns (number of bad calls, alive())."""
    script = textwrap.dedent(setup) + _BAD_CALLS_RUNNER
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=timeout, env=env)
    assert r.returncode == 0, f"rc={r.returncode}\nstdout:{r.stdout}\nstderr:{r.stderr}"
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["wrong"] == [], result["wrong"]
    return result["checked"], result["alive"]


# --------------------------------------------------------------------------- threads


def at_thread_counts(fn, counts=(1, 2)):
    """[fn() run with n cnncore threads for n in counts]; the thread count is restored."""
    old = cnncore.get_num_threads()
    try:
        results = []
        for n in counts:
            cnncore.set_num_threads(n)
            results.append(fn())
        return results
    finally:
        cnncore.set_num_threads(old)


def torch_order(pads):
    """A flat before/after list converted between first-axis-first (as np.pad and the core
    take it) and last-axis-first (as torch's F.pad and cnncore's API take it): the pairs in
    reverse order, its own inverse."""
    pairs = [tuple(pads[i:i + 2]) for i in range(0, len(pads), 2)]
    return [p for pair in pairs[::-1] for p in pair]
