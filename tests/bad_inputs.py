"""The bad-input corpus: calls of every public op with arguments a user can get wrong,
each with what must happen — a clean exception of a stated type whose message matches a
stated pattern, or a result that a check accepts. tests/test_bad_inputs.py runs every
case in a child process of its own, so a crash, a hang or a runaway allocation is a
failure of that case rather than of the test run.

``CASES`` maps a case id to ``(build, expect)``: ``build()`` returns ``(fn, args,
kwargs)`` (deterministic: its random numbers come from a generator seeded by the id)
and ``expect`` is ``("raises", ExceptionType, regex)`` or ``("returns", check)`` where
``check(result, fn, args, kwargs)`` raises AssertionError when the result is wrong."""
import zlib

import numpy as np

import cnncore
from cnncore import nn, ops

from op_catalogue import CALLS, float_positions

P = 2 ** 63 - 1


def _rng(case_id):
    return np.random.default_rng(zlib.crc32(case_id.encode()))


def _base(name):
    """The name an op's messages start with (a backward op speaks as its forward)."""
    return name[:-len("_backward")] if name.endswith("_backward") else name


CASES = {}


def case(case_id, expect):
    def register(build):
        assert case_id not in CASES, case_id
        CASES[case_id] = (build, expect)
        return build
    return register


def _mutated(name, mutate):
    def build():
        rng = _rng(name + mutate.__name__)
        fn, args, kwargs = CALLS[name](rng, "f4")
        args = list(args)
        if mutate is float64_last_array:
            mutate(args, float_positions(args, name), name)
        else:
            mutate(args, float_positions(args, name))
        return fn, tuple(args), kwargs
    return build


# --- mutations of every op's valid call -------------------------------------------------

def text_for_first_array(args, pos):
    args[pos[0]] = "text"


def int32_first_array(args, pos):
    args[pos[0]] = args[pos[0]].astype(np.int32)


def float16_first_array(args, pos):
    args[pos[0]] = args[pos[0]].astype(np.float16)


def complex_first_array(args, pos):
    args[pos[0]] = args[pos[0]].astype(np.complex64)


# The last array whose values an op reads (linear_backward only asks whether bias is given).
_VALUES_READ_UP_TO = {"linear_backward": 3}


def float64_last_array(args, pos, name=None):
    last = [p for p in pos if p < _VALUES_READ_UP_TO.get(name, len(args))][-1]
    args[last] = args[last].astype(np.float64)


def none_for_first_array(args, pos):
    args[pos[0]] = None


def drop_a_dimension(args, pos):
    a = args[pos[0]]
    args[pos[0]] = a[0] if a.ndim else a.reshape(1, 1)


_FIRST_ARG = {"cross_entropy": "input", "nll_loss": "input"}


def _first_name(name):
    return "grad_out" if name.endswith("_backward") else _FIRST_ARG.get(name, "x")


_ELEMENTWISE = ("relu", "sigmoid", "tanh", "leaky_relu", "silu", "gelu", "softmax", "log_softmax", "dropout",
                "local_response_norm", "linear")  # any rank >= 1 (or >= 2) is a valid call

for _name in sorted(CALLS):
    _b, _arg = _base(_name), _first_name(_name)
    _pos = float_positions(CALLS[_name](np.random.default_rng(0), "f4")[1], _name)
    # dropout_backward checks grad_out against x's dtype before its own dtype
    _dtype_msg = (rf"^{_b}: {_arg} (must be a float32 or float64 array, got dtype|has dtype .* but)")
    case(f"{_name}/text", ("raises", TypeError, _dtype_msg))(_mutated(_name, text_for_first_array))
    case(f"{_name}/int32", ("raises", TypeError, _dtype_msg + r"|int32"))(_mutated(_name, int32_first_array))
    case(f"{_name}/float16", ("raises", TypeError, _dtype_msg))(_mutated(_name, float16_first_array))
    case(f"{_name}/complex64", ("raises", TypeError, _dtype_msg))(_mutated(_name, complex_first_array))
    case(f"{_name}/none", ("raises", TypeError, rf"^{_b}: {_arg} must be a NumPy array, got NoneType"
                                                 rf"|^{_b}: {_arg} must be"))(
        _mutated(_name, none_for_first_array))
    if len(_pos) > 1:
        case(f"{_name}/mixed-dtypes", ("raises", TypeError, rf"^{_b}: .* has dtype float64 but .* has float32"
                                                            rf"|^{_b}: .* has dtype float32 but .* has float64"))(
            _mutated(_name, float64_last_array))
    if not (_name in _ELEMENTWISE or _name.endswith("_backward") and _b in _ELEMENTWISE):
        case(f"{_name}/rank", ("raises", ValueError, rf"^{_b}: .*(dimensions|shape|spatial ax)"))(
            _mutated(_name, drop_a_dimension))


# --- the audit's findings and other mistakes, by family ----------------------------------

def _raises(case_id, exc, pattern):
    return case(case_id, ("raises", exc, pattern))


def _returns(case_id, check):
    return case(case_id, ("returns", check))


def _finite(result, *_):
    for r in (result if isinstance(result, tuple) else (result,)):
        if r is not None:
            assert np.all(np.isfinite(r)), "non-finite values in the result"


X1, W1 = np.ones((1, 1, 4), "f4"), np.ones((1, 1, 3), "f4")
X2, W2 = np.ones((1, 1, 4, 4), "f4"), np.ones((1, 1, 3, 3), "f4")

for _i, _pad in enumerate([(P, P), (P, 0), (0, P), (3, 3), (P - 1, 2)]):
    _raises(f"conv_transpose1d/padding-{_i}", ValueError, r"^conv_transpose1d: padding .* leaves no output")(
        lambda _pad=_pad: (ops.conv_transpose1d, (X1, W1), {"padding": _pad}))
for _i, _pad in enumerate([(P, P, 0, 0), (P, P - 10 ** 7, 0, 0), (0, 0, P, 1)]):
    _raises(f"conv_transpose2d/padding-{_i}", ValueError, r"^conv_transpose2d: padding .* leaves no output")(
        lambda _pad=_pad: (ops.conv_transpose2d, (X2, W2), {"padding": _pad}))
_raises("conv_transpose2d_backward/padding", ValueError, r"^conv_transpose2d: padding .* leaves no output")(
    lambda: (ops.conv_transpose2d_backward, (np.ones((1, 1, 1, 1), "f4"), X2, W2), {"padding": (P, P - 100, 0, 0)}))
_raises("nn.ConvTranspose2d/padding", ValueError, r"conv_transpose2d: padding .* leaves no output")(
    lambda: (lambda m, x: m(cnncore.Tensor(x)), (nn.ConvTranspose2d(1, 1, 3, padding=(P, 0)), X2), {}))
_raises("conv_transpose2d/output_padding", ValueError, r"^conv_transpose2d: output_padding must be smaller")(
    lambda: (ops.conv_transpose2d, (X2, W2), {"output_padding": 1}))


def _same_as_reference(result, fn, args, kwargs):
    ref = fn(*args, **dict(kwargs, algorithm="reference"))
    np.testing.assert_allclose(result, ref, rtol=1e-6)
    _finite(result)


for _kind in ("max", "avg", "weighted_avg"):
    for _s in (2 ** 62, 2 ** 63 - 3):
        _returns(f"{_kind}_pool2d/stride-{_s}", _same_as_reference)(
            lambda _kind=_kind, _s=_s: (getattr(ops, _kind + "_pool2d"),
                                        (_rng("p").standard_normal((1, 2, 5, 5)), 2),
                                        {"stride": _s, "algorithm": "direct"}))
_returns("lp_pool2d/stride-huge", _same_as_reference)(
    lambda: (ops.lp_pool2d, (_rng("lp").standard_normal((1, 2, 5, 5)), 2.0, 2),
             {"stride": 2 ** 63 - 3, "algorithm": "direct"}))
for _f in ("adaptive_avg_pool2d", "adaptive_max_pool2d"):
    _raises(f"{_f}/output_size-int64-max", ValueError, rf"^{_f}: output_size")(
        lambda _f=_f: (getattr(ops, _f), (X2, (P, 1)), {}))
    _raises(f"{_f}/output_size-zero", ValueError, rf"^{_f}: output_size must be positive")(
        lambda _f=_f: (getattr(ops, _f), (X2, (0, 1)), {}))
for _sigma in (0.01, 1e-300):
    _returns(f"weighted_avg_pool2d/even-kernel-sigma-{_sigma}", _finite)(
        lambda _sigma=_sigma: (ops.weighted_avg_pool2d, (_rng("w").standard_normal((1, 1, 8, 8)), 4),
                               {"sigma": _sigma}))
_raises("weighted_avg_pool2d/sigma-zero", ValueError, r"^weighted_avg_pool2d: sigma must be positive")(
    lambda: (ops.weighted_avg_pool2d, (X2, 2), {"sigma": 0.0}))
_raises("weighted_avg_pool2d/sigma-nan", ValueError, r"^weighted_avg_pool2d: sigma must be positive and finite")(
    lambda: (ops.weighted_avg_pool2d, (X2, 2), {"sigma": float("nan")}))
_raises("max_pool2d/kernel-zero", ValueError, r"^max_pool2d: kernel_size must be positive")(
    lambda: (ops.max_pool2d, (X2, 0), {}))
_raises("max_pool2d/padding-over-half", ValueError, r"^max_pool2d: padding")(
    lambda: (ops.max_pool2d, (X2, 2), {"padding": 2}))
_raises("max_pool2d/kernel-float", TypeError, r"^max_pool2d: kernel_size must be an integer")(
    lambda: (ops.max_pool2d, (X2, 2.5), {}))
_raises("max_pool2d/kernel-bool", TypeError, r"^max_pool2d: kernel_size must be an integer")(
    lambda: (ops.max_pool2d, (X2, True), {}))
_raises("max_pool2d/kernel-beyond-int64", ValueError, r"^max_pool2d: kernel_size must fit in a 64-bit")(
    lambda: (ops.max_pool2d, (X2, 2 ** 64), {}))
_raises("max_pool2d/kernel-larger-than-input", ValueError, r"^max_pool2d: kernel_size is larger than the padded")(
    lambda: (ops.max_pool2d, (X2, 5), {}))
_raises("lp_pool2d/norm-zero", ValueError, r"^lp_pool2d: norm_type")(
    lambda: (ops.lp_pool2d, (X2, 0.0, 2), {}))
_raises("lp_pool2d/norm-nan", ValueError, r"^lp_pool2d: norm_type")(
    lambda: (ops.lp_pool2d, (X2, float("nan"), 2), {}))
_raises("max_pool2d_backward/indices-wrong-dtype", TypeError, r"^max_pool2d: indices")(
    lambda: (ops.max_pool2d_backward, (np.ones((1, 1, 2, 2), "f4"), X2, 2), {"indices": np.zeros((1, 1, 2, 2))}))
_raises("max_pool2d_backward/indices-out-of-range", ValueError, r"^max_pool2d: indices")(
    lambda: (ops.max_pool2d_backward, (np.ones((1, 1, 2, 2), "f4"), X2, 2),
             {"indices": np.full((1, 1, 2, 2), 99, np.int64)}))

# convolution parameters
for _arg, _val, _exc, _pat in [
        ("stride", 0, ValueError, "stride must be positive"),
        ("stride", -1, ValueError, "stride must be positive"),
        ("stride", 2 ** 64, ValueError, "stride must fit in a 64-bit"),
        ("stride", 1.5, TypeError, "stride must be an integer"),
        ("stride", (1, 2, 3), ValueError, r"stride must be an integer or a tuple of 2 integers, got 3"),
        ("dilation", 0, ValueError, "dilation must be positive"),
        ("padding", -1, ValueError, "padding must be non-negative"),
        ("padding", "bogus", ValueError, "padding must be"),
        ("padding", 2 ** 63, ValueError, "padding must fit in a 64-bit"),
        ("padding_mode", "bogus", ValueError, "padding_mode must be one of"),
        ("groups", 0, ValueError, "groups must be a positive integer"),
        ("groups", 2, ValueError, "groups"),
        ("algorithm", "fastest", ValueError, "algorithm must be one of"),
        ("flip", "yes", TypeError, "flip must be a bool")]:
    _raises(f"conv2d/{_arg}-{_val!r}", _exc, rf"^conv2d: {_pat}")(
        lambda _arg=_arg, _val=_val: (ops.conv2d, (np.ones((1, 3, 5, 5), "f4"), np.ones((2, 3, 3, 3), "f4")),
                                      {_arg: _val}))
_raises("conv2d/kernel-larger-than-input", ValueError, r"^conv2d: ")(
    lambda: (ops.conv2d, (X2, np.ones((1, 1, 5, 5), "f4")), {}))
_raises("conv2d/channel-mismatch", ValueError, r"^conv2d: weight expects 2 input channels")(
    lambda: (ops.conv2d, (X2, np.ones((1, 2, 3, 3), "f4")), {}))
_raises("conv2d/bias-shape", ValueError, r"^conv2d: bias")(
    lambda: (ops.conv2d, (X2, W2, np.ones(3, "f4")), {}))
_raises("conv2d/reflect-padding-too-large", ValueError, r"^conv2d: .*reflect")(
    lambda: (ops.conv2d, (X2, W2), {"padding": 4, "padding_mode": "reflect"}))
_raises("conv2d/0-d-input", ValueError, r"^conv2d: x must have 4 dimensions")(
    lambda: (ops.conv2d, (np.float32(1.0), W2), {}))
_raises("conv2d/object-array", TypeError, r"^conv2d: x must be a float32 or float64 array, got dtype object")(
    lambda: (ops.conv2d, (np.array([[[[1.0]]]], dtype=object), W2), {}))
_returns("conv2d/nested-lists", lambda r, fn, a, k: np.testing.assert_array_equal(
    r, ops.conv2d(np.asarray(a[0]), np.asarray(a[1]))))(
    lambda: (ops.conv2d, (np.ones((1, 1, 4, 4)).tolist(), np.ones((1, 1, 3, 3)).tolist()), {}))
_returns("conv2d/inf-input-propagates", lambda r, *_: (np.testing.assert_equal(np.isinf(r).any(), True)))(
    lambda: (ops.conv2d, (np.full((1, 1, 4, 4), np.inf, "f4"), W2), {}))
_returns("conv2d/empty-batch", lambda r, *_: np.testing.assert_equal(r.shape, (0, 1, 2, 2)))(
    lambda: (ops.conv2d, (np.ones((0, 1, 4, 4), "f4"), W2), {}))


def _limited(limit, fn):
    def call(*args, **kwargs):
        cnncore.set_memory_limit(limit)
        return fn(*args, **kwargs)
    return call


_raises("conv2d/broadcast-view-4GiB", ValueError, r"^conv2d: .* this call already holds")(
    lambda: (_limited(6 * 2 ** 30, ops.conv2d),
             (np.broadcast_to(np.ones((1, 1, 1, 1), "f4"), (1, 1, 2 ** 15, 2 ** 15)), np.ones((1, 1, 1, 1), "f4")),
             {}))
_raises("conv2d/broadcast-view-2**40", ValueError, r"^conv2d: x is not C-contiguous and its C-order copy")(
    lambda: (ops.conv2d, (np.broadcast_to(np.ones((1, 1, 1, 1), "f4"), (2 ** 20, 1, 2 ** 10, 2 ** 10)), W2), {}))
_raises("conv2d/result-over-limit", ValueError, r"^conv2d: the result and workspace .* more than the memory limit")(
    lambda: (_limited(1000, ops.conv2d), (np.ones((1, 1, 64, 64), "f4"), W2), {}))
_raises("tiled_conv2d/tile-zero", ValueError, r"^tiled_conv2d: tile")(
    lambda: (ops.tiled_conv2d, (X2, np.ones((1, 1, 1, 1, 3, 3), "f4")), {"tile": 0}))
_raises("local_conv2d/weight-grid", ValueError, r"^local_conv2d: .*weight must have shape \(H_out, W_out")(
    lambda: (ops.local_conv2d, (X2, np.ones((3, 3, 1, 1, 3, 3), "f4")), {}))
_raises("separable_conv2d/depthwise-shape", ValueError, r"^separable_conv2d: depthwise_weight")(
    lambda: (ops.separable_conv2d, (X2, np.ones((1, 2, 3, 3), "f4"), np.ones((1, 1, 1, 1), "f4")), {}))
_raises("separable_conv2d/pointwise-after-multiplier", ValueError, r"^separable_conv2d: pointwise_weight must")(
    lambda: (ops.separable_conv2d, (X2, np.ones((2, 1, 3, 3), "f4"), np.ones((1, 1, 1, 1), "f4")), {}))

# pad
_raises("pad/negative", ValueError, r"^pad: ")(lambda: (ops.pad, (X2, -1), {}))
_raises("pad/wrong-length", ValueError, r"^pad: pad")(lambda: (ops.pad, (X2, (1, 2, 3)), {}))
_raises("pad/reflect-too-large", ValueError, r"^pad: .*reflect")(lambda: (ops.pad, (X2, 4), {"mode": "reflect"}))
_raises("pad/mode-bogus", ValueError, r"^pad: mode must be one of")(lambda: (ops.pad, (X2, 1), {"mode": "wrap"}))
_raises("pad/value-nan-string", TypeError, r"^pad: value")(lambda: (ops.pad, (X2, 1), {"value": "0"}))
_raises("pad/huge-empty-result", ValueError, r"")(lambda: (ops.pad, (np.empty((0, 1, 1, 1)), 2 ** 40), {}))

# activations, softmax, dropout
_raises("leaky_relu/slope-nan", ValueError, r"^leaky_relu: negative_slope must be a finite number")(
    lambda: (ops.leaky_relu, (X2, float("nan")), {}))
_raises("softmax/dim-out-of-range", ValueError, r"^softmax: dim must be in \[-4, 3\]")(lambda: (ops.softmax, (X2,), {"dim": 4}))
_raises("log_softmax/dim-float", TypeError, r"^log_softmax: dim must be an integer")(
    lambda: (ops.log_softmax, (X2,), {"dim": 1.0}))
_raises("softmax/0-d", ValueError, r"^softmax: ")(lambda: (ops.softmax, (np.float32(1.0),), {}))
_raises("dropout/p-above-one", ValueError, r"^dropout: p must be in")(lambda: (ops.dropout, (X2, 1.5), {"seed": 1}))
_raises("dropout/p-nan", ValueError, r"^dropout: p must be in")(
    lambda: (ops.dropout, (X2, float("nan")), {"seed": 1}))
_raises("dropout/seed-negative", ValueError, r"^dropout: seed")(lambda: (ops.dropout, (X2, 0.5), {"seed": -1}))
_raises("dropout/seed-beyond-uint64", ValueError, r"^dropout: seed")(
    lambda: (ops.dropout, (X2, 0.5), {"seed": 2 ** 64}))
_returns("relu/nan-propagates", lambda r, *_: np.testing.assert_equal(np.isnan(r).all(), True))(
    lambda: (ops.relu, (np.full((2, 3), np.nan, "f4"),), {}))

# losses
_T = np.array([0, 1, 2, 3])
_raises("cross_entropy/target-out-of-range", ValueError, r"^cross_entropy: target")(
    lambda: (ops.cross_entropy, (np.ones((4, 5), "f4"), np.array([0, 1, 2, 7])), {}))
_raises("cross_entropy/target-float", TypeError, r"^cross_entropy: target")(
    lambda: (ops.cross_entropy, (np.ones((4, 5), "f4"), _T.astype("f4")), {}))
_raises("cross_entropy/target-length", ValueError, r"^cross_entropy: target")(
    lambda: (ops.cross_entropy, (np.ones((4, 5), "f4"), _T[:3]), {}))
_raises("cross_entropy/label-smoothing-2", ValueError, r"^cross_entropy: label_smoothing")(
    lambda: (ops.cross_entropy, (np.ones((4, 5), "f4"), _T), {"label_smoothing": 2.0}))
_raises("cross_entropy/reduction-bogus", ValueError, r"^cross_entropy: reduction must be one of")(
    lambda: (ops.cross_entropy, (np.ones((4, 5), "f4"), _T), {"reduction": "avg"}))
_raises("cross_entropy/weight-length", ValueError, r"^cross_entropy: weight")(
    lambda: (ops.cross_entropy, (np.ones((4, 5), "f4"), _T), {"weight": np.ones(4, "f4")}))
_raises("nll_loss/target-negative", ValueError, r"^nll_loss: target")(
    lambda: (ops.nll_loss, (np.ones((4, 5), "f4"), np.array([0, -2, 1, 1])), {}))
_returns("nll_loss/ignore-index", lambda r, *_: np.testing.assert_allclose(r, -1.0))(
    lambda: (ops.nll_loss, (np.ones((4, 5), "f4"), np.array([0, -100, 1, 1])), {}))

# normalisation, linear
_raises("batch_norm/eps-negative", ValueError, r"^batch_norm: eps")(
    lambda: (ops.batch_norm, (np.ones((2, 3, 2, 2), "f4"), np.zeros(3, "f4"), np.ones(3, "f4")), {"eps": -1.0}))
_raises("batch_norm/running-mean-shape", ValueError, r"^batch_norm: running_mean")(
    lambda: (ops.batch_norm, (np.ones((2, 3, 2, 2), "f4"), np.zeros(4, "f4"), np.ones(3, "f4")), {}))
_raises("batch_norm/momentum-nan", ValueError, r"^batch_norm: momentum")(
    lambda: (ops.batch_norm, (np.ones((2, 3, 2, 2), "f4"), np.zeros(3, "f4"), np.ones(3, "f4")),
             {"training": True, "momentum": float("nan")}))
_raises("batch_norm/running-stats-not-writeable", ValueError, r"^batch_norm: running_mean must be a writeable")(
    lambda: (ops.batch_norm, (np.ones((2, 3, 2, 2), "f4"), np.zeros(6, "f4")[::2], np.ones(3, "f4")),
             {"training": True}))
_raises("batch_norm/running-stats-unaligned", ValueError, r"^batch_norm: running_var must be a writeable, aligned")(
    lambda: (ops.batch_norm, (np.ones((2, 3, 2, 2)), np.zeros(3),
                              np.frombuffer(bytearray(25), np.float64, 3, 1)), {"training": True}))
_raises("local_response_norm/size-zero", ValueError, r"^local_response_norm: size")(
    lambda: (ops.local_response_norm, (np.ones((1, 4, 2, 2), "f4"), 0), {}))
_raises("local_response_norm/beta-inf", ValueError, r"^local_response_norm: beta must be a finite")(
    lambda: (ops.local_response_norm, (np.ones((1, 4, 2, 2), "f4"), 3), {"beta": float("inf")}))
_raises("linear/feature-mismatch", ValueError, r"^linear: ")(
    lambda: (ops.linear, (np.ones((2, 5), "f4"), np.ones((3, 6), "f4")), {}))
_raises("linear/bias-shape", ValueError, r"^linear: bias")(
    lambda: (ops.linear, (np.ones((2, 6), "f4"), np.ones((3, 6), "f4"), np.ones(4, "f4")), {}))

# runtime settings
_raises("set_memory_limit/zero", ValueError, r"^set_memory_limit: nbytes must be at least 1")(
    lambda: (cnncore.set_memory_limit, (0,), {}))
_raises("set_memory_limit/float", TypeError, r"^set_memory_limit: nbytes must be an integer")(
    lambda: (cnncore.set_memory_limit, (1.5,), {}))
_raises("set_num_threads/zero", ValueError, r"^set_num_threads: n must be at least 1")(
    lambda: (cnncore.set_num_threads, (0,), {}))
_raises("set_num_threads/huge", ValueError, r"^set_num_threads: n must be at most 1024")(
    lambda: (cnncore.set_num_threads, (10 ** 6,), {}))


def run_case(case_id):
    """Runs one case in this process: ("ok", "") or ("fail", why)."""
    build, expect = CASES[case_id]
    fn, args, kwargs = build()
    try:
        result = fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the point is to classify it
        got = f"{type(exc).__name__}: {exc}"
        if expect[0] != "raises":
            return "fail", f"expected a result, got {got}"
        import re
        if not isinstance(exc, expect[1]):
            return "fail", f"expected {expect[1].__name__}, got {got}"
        if not re.search(expect[2], str(exc)):
            return "fail", f"message does not match {expect[2]!r}: {got}"
        return "ok", got
    if expect[0] == "raises":
        return "fail", f"expected {expect[1].__name__}, the call returned"
    try:
        expect[1](result, fn, args, kwargs)
    except AssertionError as exc:
        return "fail", f"wrong result: {exc}"
    return "ok", "returned a correct result"

_raises("gelu/approximate", ValueError, r"^gelu: approximate must be 'none' or 'tanh', got 'erf'")(
    lambda: (ops.gelu, (X2,), {"approximate": "erf"}))
