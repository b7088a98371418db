"""FFT convolution (``algorithm="fft"``) and the core's own FFT.

* ``cnncore._core._fft`` (a private hook onto ``cpp/src/cpu/kernels/fft.cpp``) against
  ``numpy.fft``: every 1-D length 1..70, primes and large sizes (the Bluestein path),
  2-D and 3-D, forward and inverse, non-contiguous input, and its argument errors.
* ``algorithm="fft"`` against ``algorithm="reference"`` for conv1d/2d/3d: forward and every
  backward output over hypothesis-drawn configurations (every padding mode including
  ``symmetric``, explicit and named padding, stride, dilation, groups, flip, bias, batch 0),
  float64 to ~1e-9 and float32 to ~1e-4 relative to the largest reference value.
* FFT equals direct convolution (im2col, and scipy.signal) on a 64x64 image with a 15x15
  kernel; the adjoint identity; circular translation equivariance; NaN/Inf keep the direct
  definition's semantics; threads do not change results.
* ``algorithm="auto"`` picks FFT for large kernels: shown without timing through the memory
  limit (im2col's patch matrix would not fit, auto still runs and equals the FFT result).
* The FFT path serves every geometry; what it rejects (a workspace above the memory limit)
  is a ValueError naming the op and the limit, and the process stays usable.
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import cnncore
from cnncore import _core, ops
from helpers import SEEDS, torch_order

MODES = ["zeros", "reflect", "replicate", "circular", "symmetric"]
CONV = {1: ops.conv1d, 2: ops.conv2d, 3: ops.conv3d}
CONV_BACKWARD = {1: ops.conv1d_backward, 2: ops.conv2d_backward, 3: ops.conv3d_backward}


def _crandn(rng, shape):
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def _assert_fft_close(ours, ref, tol=1e-12):
    assert ours.shape == ref.shape and ours.dtype == np.complex128
    scale = max(1.0, float(np.max(np.abs(ref)))) if ref.size else 1.0
    np.testing.assert_allclose(ours, ref, rtol=0, atol=tol * scale * np.log2(ref.size + 2))


# --------------------------------------------------------------------------------------
# The FFT itself against numpy.fft
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("inverse", [False, True])
def test_fft_1d_every_length_1_to_70(inverse):
    rng = np.random.default_rng(1)
    for n in range(1, 71):
        x = _crandn(rng, n)
        ref = np.fft.ifft(x) if inverse else np.fft.fft(x)
        _assert_fft_close(_core._fft(x, inverse), ref)


@pytest.mark.parametrize("n", [71, 97, 101, 127, 257, 509, 1009, 4099,  # primes: Bluestein
                               1000, 1024, 2310, 4004, 4096, 6561, 15625, 3 * 13 * 17 * 2])
def test_fft_1d_primes_and_large_sizes(n):
    rng = np.random.default_rng(n)
    x = _crandn(rng, n)
    _assert_fft_close(_core._fft(x, False), np.fft.fft(x))
    _assert_fft_close(_core._fft(x, True), np.fft.ifft(x))


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (7, 11), (16, 9), (32, 45), (13, 1), (1, 67),
                                   (2, 3, 4), (5, 7, 3), (8, 8, 8), (1, 17, 2), (3, 1, 1), (6, 10, 17)])
def test_fft_2d_3d_forward_and_inverse(shape):
    rng = np.random.default_rng(len(shape) * 100 + shape[-1])
    x = _crandn(rng, shape)
    _assert_fft_close(_core._fft(x, False), np.fft.fftn(x))
    _assert_fft_close(_core._fft(x, True), np.fft.ifftn(x))
    np.testing.assert_allclose(_core._fft(_core._fft(x, False), True), x, atol=1e-12 * np.log2(x.size + 2))


@given(st.lists(st.integers(1, 40), min_size=1, max_size=3), st.booleans(), SEEDS)
def test_fft_random_shapes_match_numpy(shape, inverse, seed):
    x = _crandn(np.random.default_rng(seed), tuple(shape))
    ref = np.fft.ifftn(x) if inverse else np.fft.fftn(x)
    _assert_fft_close(_core._fft(x, inverse), ref)


def test_fft_non_contiguous_input_and_real_signal_symmetry():
    rng = np.random.default_rng(3)
    base = _crandn(rng, (12, 20))
    for x in (base[::2, 1::3], base.T, np.asfortranarray(base)):
        assert not x.flags.c_contiguous
        _assert_fft_close(_core._fft(x, False), np.fft.fftn(x))
    # a real signal has a Hermitian spectrum
    r = rng.standard_normal(30).astype(np.complex128)
    spec = _core._fft(r, False)
    np.testing.assert_allclose(spec[1:], np.conj(spec[1:][::-1]), atol=1e-12)


def test_fft_argument_errors():
    with pytest.raises(TypeError, match="_fft: x must be a complex128 array, got dtype float64"):
        _core._fft(np.ones(4), False)
    with pytest.raises(TypeError, match="_fft: x must be a NumPy array"):
        _core._fft([1j, 2j], False)
    with pytest.raises(ValueError, match="_fft: x must have 1, 2 or 3 dimensions, got 4"):
        _core._fft(np.ones((2, 2, 2, 2), np.complex128), False)
    with pytest.raises(ValueError, match="_fft: x must have 1, 2 or 3 dimensions, got 0"):
        _core._fft(np.array(1j), False)
    with pytest.raises(ValueError, match="positive length"):
        _core._fft(np.ones((3, 0), np.complex128), False)
    _assert_fft_close(_core._fft(np.ones(4, np.complex128), False), np.fft.fft(np.ones(4)))


# --------------------------------------------------------------------------------------
# FFT convolution against the reference
# --------------------------------------------------------------------------------------


@st.composite
def fft_cases(draw):
    """Kernel, stride, dilation, padding and mode first; then an input size that is legal."""
    nd = draw(st.sampled_from([1, 2, 2, 3]))
    max_in = {1: 24, 2: 12, 3: 6}[nd]
    groups = draw(st.integers(1, 3))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    k = [draw(st.integers(1, 5 if nd < 3 else 3)) for _ in range(nd)]
    stride = [draw(st.integers(1, 3)) for _ in range(nd)]
    dilation = [draw(st.integers(1, 2)) for _ in range(nd)]
    span = [d * (kk - 1) + 1 for d, kk in zip(dilation, k)]
    mode = draw(st.sampled_from(MODES))
    kind = draw(st.sampled_from(["int", "axis", "sides", "valid", "same", "full"]))
    sizes = []
    if kind in ("int", "axis", "sides"):
        if kind == "int":
            p = draw(st.integers(0, 3))
            pads = [(p, p)] * nd
            padding = p
        elif kind == "axis":
            pads = [(p, p) for p in (draw(st.integers(0, 3)) for _ in range(nd))]
            padding = tuple(p for p, _ in pads)
        else:
            pads = [(draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(nd)]
            padding = tuple(torch_order([v for pair in pads for v in pair]))   # F.pad's order
        for (pb, pa), sp in zip(pads, span):
            lo = max(1, sp - pb - pa)
            if mode == "reflect":
                lo = max(lo, max(pb, pa) + 1)
            elif mode == "symmetric":
                lo = max(lo, max(pb, pa))
            sizes.append(draw(st.integers(lo, max(lo, max_in))))
    else:
        padding = kind
        for sp in span:
            # 'valid' needs in >= span; reflect/symmetric pads ('same', 'full') stay below it
            lo = sp if kind == "valid" or mode in ("reflect", "symmetric") else 1
            sizes.append(draw(st.integers(lo, max(lo, max_in))))
    return dict(
        nd=nd, n=draw(st.integers(1, 2)), c_in=c_in, c_out=c_out, k=k, sizes=sizes,
        dtype=draw(st.sampled_from([np.float32, np.float64])), bias=draw(st.booleans()),
        seed=draw(SEEDS),
        kw=dict(stride=stride if nd > 1 else stride[0], dilation=tuple(dilation), padding=padding,
                padding_mode=mode, groups=groups, flip=draw(st.booleans())))


def _tol(dtype):
    return 1e-4 if dtype == np.float32 else 1e-9


def _assert_close(got, ref, dtype):
    assert got.shape == ref.shape and got.dtype == ref.dtype == dtype
    scale = max(1.0, float(np.max(np.abs(ref)))) if ref.size else 1.0
    np.testing.assert_allclose(got, ref, rtol=_tol(dtype), atol=_tol(dtype) * scale)


@given(fft_cases())
def test_fft_equals_reference_forward_and_backward(case):
    rng = np.random.default_rng(case["seed"])
    nd, dt, kw = case["nd"], case["dtype"], case["kw"]
    x = rng.standard_normal((case["n"], case["c_in"], *case["sizes"])).astype(dt)
    w = rng.standard_normal((case["c_out"], case["c_in"] // kw["groups"], *case["k"])).astype(dt)
    b = rng.standard_normal(case["c_out"]).astype(dt) if case["bias"] else None
    ref = CONV[nd](x, w, b, algorithm="reference", **kw)
    got = CONV[nd](x, w, b, algorithm="fft", **kw)
    _assert_close(got, ref, dt)
    g = rng.standard_normal(ref.shape).astype(dt)
    refs = CONV_BACKWARD[nd](g, x, w, bias=case["bias"], algorithm="reference", **kw)
    gots = CONV_BACKWARD[nd](g, x, w, bias=case["bias"], algorithm="fft", **kw)
    for r, o in zip(refs, gots):
        if r is None:
            assert o is None
        else:
            _assert_close(o, r, dt)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("stride", [1, 2])
def test_fft_one_sided_and_oversized_padding(mode, stride):
    """Padding on one side only, or wider than the kernel, moves outputs off the input
    (negative plane offsets): the transform length must still rule out wrap-around."""
    rng = np.random.default_rng(stride)
    x = rng.standard_normal((1, 2, 9, 10))
    w = rng.standard_normal((3, 2, 4, 3))
    pads = [(3, 0, 0, 2), (0, 3, 2, 0), (3, 1, 2, 2)]
    if mode in ("zeros", "circular", "replicate"):
        pads.append((7, 0, 9, 4))  # wider than the kernel
    for pad in pads:
        kw = dict(padding=pad, padding_mode=mode, stride=stride)
        ref = ops.conv2d(x, w, algorithm="reference", **kw)
        np.testing.assert_allclose(ops.conv2d(x, w, algorithm="fft", **kw), ref, atol=1e-12)
        g = rng.standard_normal(ref.shape)
        for o, r in zip(ops.conv2d_backward(g, x, w, algorithm="fft", **kw),
                        ops.conv2d_backward(g, x, w, algorithm="reference", **kw)):
            np.testing.assert_allclose(o, r, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kw", [
    dict(padding="same"),
    dict(padding="full", flip=True),
    dict(padding="valid", stride=2),
    dict(padding="same", padding_mode="reflect", dilation=(1, 2)),
    dict(padding=(3, 9, 0, 14), padding_mode="symmetric", groups=3),
])
def test_fft_equals_direct_64x64_with_15x15_kernel(dtype, kw):
    rng = np.random.default_rng(64)
    x = rng.standard_normal((2, 3, 64, 64)).astype(dtype)
    w = rng.standard_normal((6, 3 // kw.get("groups", 1), 15, 15)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    direct = ops.conv2d(x, w, b, algorithm="im2col", **kw)
    _assert_close(ops.conv2d(x, w, b, algorithm="fft", **kw), direct, dtype)
    g = rng.standard_normal(direct.shape).astype(dtype)
    for o, r in zip(ops.conv2d_backward(g, x, w, algorithm="fft", **kw),
                    ops.conv2d_backward(g, x, w, algorithm="im2col", **kw)):
        _assert_close(o, r, dtype)


def test_fft_matches_scipy_convolve_and_correlate():
    from scipy import signal  # a test dependency (pyproject: the test extra)
    rng = np.random.default_rng(5)
    img, ker = rng.standard_normal((64, 64)), rng.standard_normal((15, 15))
    x, w = img[None, None], ker[None, None]
    full = ops.conv2d(x, w, padding="full", flip=True, algorithm="fft")[0, 0]
    np.testing.assert_allclose(full, signal.convolve2d(img, ker, "full"), atol=1e-10)
    valid = ops.conv2d(x, w, algorithm="fft")[0, 0]
    np.testing.assert_allclose(valid, signal.correlate2d(img, ker, "valid"), atol=1e-10)
    wrap = ops.conv2d(x, w, padding=7, padding_mode="circular", algorithm="fft")[0, 0]
    np.testing.assert_allclose(wrap, signal.correlate2d(img, ker, "same", boundary="wrap"), atol=1e-10)
    sym = ops.conv2d(x, w, padding=7, padding_mode="symmetric", algorithm="fft")[0, 0]
    np.testing.assert_allclose(sym, signal.correlate2d(img, ker, "same", boundary="symm"), atol=1e-10)


@pytest.mark.parametrize("nd,kw", [
    (1, dict(stride=2, padding=(3, 1), padding_mode="replicate", dilation=2)),
    (2, dict(stride=(2, 3), padding="same", padding_mode="reflect", groups=2, flip=True)),
    (2, dict(padding=(4, 0, 1, 6), padding_mode="symmetric", dilation=(2, 1))),
    (3, dict(stride=(1, 2, 1), padding="full", padding_mode="zeros", groups=2)),
])
def test_fft_adjoint_identity(nd, kw):
    """<conv(x), g> = <x, grad_x> = <w, grad_w> for the FFT forward and backward."""
    rng = np.random.default_rng(nd)
    sizes = {1: (23,), 2: (11, 13), 3: (5, 6, 7)}[nd]
    ks = {1: (5,), 2: (4, 3), 3: (2, 3, 2)}[nd]
    groups = kw.get("groups", 1)
    x = rng.standard_normal((2, 2 * groups, *sizes))
    w = rng.standard_normal((3 * groups, 2, *ks))
    y = CONV[nd](x, w, algorithm="fft", **kw)
    g = rng.standard_normal(y.shape)
    gx, gw, _ = CONV_BACKWARD[nd](g, x, w, algorithm="fft", **kw)
    lhs = float(np.vdot(y, g))
    assert np.isclose(float(np.vdot(x, gx)), lhs, rtol=1e-11, atol=1e-11)
    assert np.isclose(float(np.vdot(w, gw)), lhs, rtol=1e-11, atol=1e-11)


def test_fft_circular_padding_is_translation_equivariant():
    rng = np.random.default_rng(9)
    x, w = rng.standard_normal((1, 2, 20, 24)), rng.standard_normal((3, 2, 9, 7))
    kw = dict(padding="same", padding_mode="circular", algorithm="fft")
    y = ops.conv2d(x, w, **kw)
    shifted = ops.conv2d(np.roll(x, (3, -5), axis=(2, 3)), w, **kw)
    np.testing.assert_allclose(shifted, np.roll(y, (3, -5), axis=(2, 3)), atol=1e-11)


def test_fft_batch_zero_and_bias_only_outputs():
    x = np.zeros((0, 2, 9, 9))
    w = np.ones((3, 2, 4, 4))
    y = ops.conv2d(x, w, algorithm="fft")
    assert y.shape == (0, 3, 6, 6)
    gx, gw, gb = ops.conv2d_backward(np.zeros(y.shape), x, w, algorithm="fft")
    assert gx.shape == x.shape and gw.shape == w.shape and not gw.any() and not gb.any()
    # padding so wide that some outputs read only zeros: those are the bias alone
    x = np.random.default_rng(0).standard_normal((1, 1, 3, 3))
    w = np.ones((1, 1, 2, 2))
    b = np.array([0.5])
    kw = dict(padding=(6, 6, 6, 6), stride=4)
    got = ops.conv2d(x, w, b, algorithm="fft", **kw)
    np.testing.assert_allclose(got, ops.conv2d(x, w, b, algorithm="reference", **kw), atol=1e-12)
    assert got[0, 0, 0, 0] == 0.5


def _same_ieee(got, want):
    """Same NaN positions, same infinities (with sign), finite values close."""
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got) * np.sign(got), np.isinf(want) * np.sign(want))
    fin = np.isfinite(want)
    np.testing.assert_allclose(got[fin], want[fin], rtol=1e-9, atol=1e-9)


def test_fft_nonfinite_values_keep_direct_semantics():
    """A NaN/Inf would spread through a transform; the FFT path must give what direct
    convolution gives: NaN and Inf only where a product or sum of the direct definition makes
    them. The oracles are independent of the reference the FFT path falls back to: a NumPy
    sliding-window correlation for the forward, the im2col path for the gradients."""
    from numpy.lib.stride_tricks import sliding_window_view

    rng = np.random.default_rng(11)
    x, w = rng.standard_normal((1, 2, 16, 16)), rng.standard_normal((2, 2, 5, 5))
    x[0, 1, 8, 8] = np.nan
    w[1, 0, 0, 0] = np.inf
    for kw, np_pad in ((dict(), None), (dict(padding=2, padding_mode="reflect"), "reflect")):
        xp = x if np_pad is None else np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)), mode=np_pad)
        with np.errstate(invalid="ignore"):
            want = np.einsum("nchwij,ocij->nohw", sliding_window_view(xp, (5, 5), axis=(2, 3)), w)
        got = ops.conv2d(x, w, algorithm="fft", **kw)
        assert np.isnan(got).any() and np.isinf(got).any() and np.isfinite(got).any()
        _same_ieee(got, want)
        g = np.ones(got.shape)
        for o, r in zip(ops.conv2d_backward(g, x, w, algorithm="fft", **kw),
                        ops.conv2d_backward(g, x, w, algorithm="im2col", **kw)):
            _same_ieee(o, r)


def test_fft_results_do_not_depend_on_threads():
    rng = np.random.default_rng(12)
    x, w = rng.standard_normal((3, 4, 30, 31)), rng.standard_normal((6, 2, 9, 8))
    g = rng.standard_normal((3, 6, 30, 31))
    kw = dict(padding="same", groups=2, algorithm="fft")
    old = cnncore.get_num_threads()
    try:
        results = []
        for nt in (1, 2):
            cnncore.set_num_threads(nt)
            results.append((ops.conv2d(x, w, **kw), *ops.conv2d_backward(g, x, w, **kw)))
    finally:
        cnncore.set_num_threads(old)
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------------------
# auto, and errors
# --------------------------------------------------------------------------------------


needs_fast_level = pytest.mark.skipif(cnncore.get_isa() == "ref",
                                      reason="at kernel level 'ref', auto runs the reference by definition")


@needs_fast_level
def test_auto_picks_fft_for_a_large_kernel():
    """Without timing: im2col's patch matrix (3*31*31 x 128*128 float64, ~380 MB) does not
    fit a 64 MB limit, so im2col is refused, yet auto runs: it chose FFT, bit for bit."""
    rng = np.random.default_rng(13)
    x, w = rng.standard_normal((1, 3, 128, 128)), rng.standard_normal((4, 3, 31, 31))
    old = cnncore.get_memory_limit()
    cnncore.set_memory_limit(64 << 20)
    try:
        with pytest.raises(ValueError, match="conv2d: .*memory limit"):
            ops.conv2d(x, w, padding="same", algorithm="im2col")
        auto = ops.conv2d(x, w, padding="same")
        fft = ops.conv2d(x, w, padding="same", algorithm="fft")
        grads_auto = ops.conv2d_backward(np.ones(auto.shape), x, w, padding="same")
        grads_fft = ops.conv2d_backward(np.ones(auto.shape), x, w, padding="same", algorithm="fft")
    finally:
        cnncore.set_memory_limit(old)
    np.testing.assert_array_equal(auto, fft)
    for a, f in zip(grads_auto, grads_fft):
        np.testing.assert_array_equal(a, f)
    from scipy import signal  # a test dependency (pyproject: the test extra)
    ref = sum(signal.correlate2d(x[0, c], w[1, c], "same") for c in range(3))
    np.testing.assert_allclose(auto[0, 1], ref, atol=1e-9)


@needs_fast_level
def test_auto_picks_fft_for_single_channel_large_kernel_and_not_for_small():
    rng = np.random.default_rng(14)
    x = rng.standard_normal((1, 1, 256, 256))
    big, small = rng.standard_normal((1, 1, 31, 31)), rng.standard_normal((1, 1, 3, 3))
    kw = dict(padding="full", flip=True)
    fft = ops.conv2d(x, big, algorithm="fft", **kw)
    direct = ops.conv2d(x, big, algorithm="direct", **kw)
    assert not np.array_equal(fft, direct)  # the two differ in rounding, so equality below tells
    np.testing.assert_array_equal(ops.conv2d(x, big, **kw), fft)
    np.testing.assert_allclose(fft, direct, atol=1e-10)
    np.testing.assert_array_equal(ops.conv2d(x, small, **kw), ops.conv2d(x, small, algorithm="direct", **kw))


def test_fft_workspace_above_the_memory_limit_is_a_clear_error():
    x, w = np.ones((2, 3, 40, 40), np.float32), np.ones((4, 3, 9, 9), np.float32)
    old = cnncore.get_memory_limit()
    cnncore.set_memory_limit(100_000)
    try:
        with pytest.raises(ValueError, match=r"conv2d: the result and workspace .* memory limit of 100000 bytes"):
            ops.conv2d(x, w, algorithm="fft")
        with pytest.raises(ValueError, match=r"conv2d: .*memory limit"):
            ops.conv2d_backward(np.ones((2, 4, 32, 32), np.float32), x, w, algorithm="fft")
    finally:
        cnncore.set_memory_limit(old)
    # still alive and exact on a small problem
    y = ops.conv2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)), algorithm="fft")
    np.testing.assert_allclose(y, np.full((1, 1, 2, 2), 4.0), atol=1e-12)


def test_fft_accepts_every_geometry():
    """Nothing geometric is refused: awkward combinations all run and match the reference."""
    rng = np.random.default_rng(15)
    x = rng.standard_normal((1, 4, 7, 5))
    w = rng.standard_normal((2, 2, 7, 5))
    for kw in (dict(stride=(5, 4), dilation=(1, 1), padding="full", padding_mode="circular", groups=2),
               dict(padding=(5, 5, 7, 7), padding_mode="symmetric", flip=True, groups=2),
               dict(stride=3, padding="same", padding_mode="replicate", groups=2)):
        np.testing.assert_allclose(ops.conv2d(x, w, algorithm="fft", **kw),
                                   ops.conv2d(x, w, algorithm="reference", **kw), atol=1e-12)
