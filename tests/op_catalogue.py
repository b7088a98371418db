"""One valid call of every public op in cnncore.ops (forward and backward), built
from a random generator: the shared list behind the tests that must reach every op
(strided and unaligned inputs, the bad-input corpus, the fuzz harness).

``CALLS[name](rng, dtype)`` returns ``(fn, args, kwargs)``; the array arguments are
the positional ones that are float ndarrays (integer targets and indices excepted)."""
import numpy as np

from cnncore import ops


def _a(rng, dtype, *shape):
    return rng.standard_normal(shape).astype(dtype)


def _conv(nd):
    def make(rng, dt):
        sp = (5, 6, 7)[:nd]
        return getattr(ops, f"conv{nd}d"), (_a(rng, dt, 2, 3, *sp), _a(rng, dt, 4, 3, *(3,) * nd),
                                           _a(rng, dt, 4)), {"padding": 1}
    return make


def _conv_bw(nd):
    def make(rng, dt):
        sp = (5, 6, 7)[:nd]
        return getattr(ops, f"conv{nd}d_backward"), (_a(rng, dt, 2, 4, *sp), _a(rng, dt, 2, 3, *sp),
                                                    _a(rng, dt, 4, 3, *(3,) * nd)), {"padding": 1}
    return make


def _tconv(nd):
    def make(rng, dt):
        sp = (4, 5, 3)[:nd]
        return getattr(ops, f"conv_transpose{nd}d"), (_a(rng, dt, 2, 3, *sp), _a(rng, dt, 3, 2, *(3,) * nd),
                                                     _a(rng, dt, 2)), {"stride": 2}
    return make


def _tconv_bw(nd):
    def make(rng, dt):
        sp = (4, 5, 3)[:nd]
        out = tuple(2 * (s - 1) + 3 for s in sp)
        return getattr(ops, f"conv_transpose{nd}d_backward"), (_a(rng, dt, 2, 2, *out), _a(rng, dt, 2, 3, *sp),
                                                              _a(rng, dt, 3, 2, *(3,) * nd)), {"stride": 2}
    return make


def _pool(kind, nd, backward):
    def make(rng, dt):
        sp = (6, 7, 5)[:nd]
        x = _a(rng, dt, 2, 3, *sp)
        name = f"{kind}_pool{nd}d"
        lead = {"lp": (2.0, 2), "adaptive_avg": ((3,) * nd,), "adaptive_max": ((3,) * nd,),
                "global_avg": (), "global_max": ()}.get(kind, (2,))
        if not backward:
            return getattr(ops, name), (x,) + lead, {}
        # The output shape by hand (building a call never runs an op: the bad-input
        # worker forks after building, which is unsafe once OpenMP has threads).
        out = {"adaptive_avg": (3,) * nd, "adaptive_max": (3,) * nd, "global_avg": (1,) * nd,
               "global_max": (1,) * nd}.get(kind, tuple(s // 2 for s in sp))
        return getattr(ops, name + "_backward"), (_a(rng, dt, 2, 3, *out), x) + lead, {}
    return make


def _unary(name):
    def make(rng, dt):
        return getattr(ops, name), (_a(rng, dt, 3, 4, 5),), {}
    return make


def _unary_bw(name):
    def make(rng, dt):
        return getattr(ops, name), (_a(rng, dt, 3, 4, 5), _a(rng, dt, 3, 4, 5)), {}
    return make


def _targets(rng, n=4, c=5):
    return rng.integers(0, c, size=n)


CALLS = {}
for _nd in (1, 2, 3):
    CALLS[f"conv{_nd}d"] = _conv(_nd)
    CALLS[f"conv{_nd}d_backward"] = _conv_bw(_nd)
    CALLS[f"conv_transpose{_nd}d"] = _tconv(_nd)
    CALLS[f"conv_transpose{_nd}d_backward"] = _tconv_bw(_nd)
    for _kind in ("max", "avg", "lp", "weighted_avg", "adaptive_avg", "adaptive_max", "global_avg", "global_max"):
        CALLS[f"{_kind}_pool{_nd}d"] = _pool(_kind, _nd, False)
        CALLS[f"{_kind}_pool{_nd}d_backward"] = _pool(_kind, _nd, True)
for _name in ("relu", "sigmoid", "tanh", "leaky_relu", "silu", "gelu", "softmax", "log_softmax"):
    CALLS[_name] = _unary(_name)
    CALLS[_name + "_backward"] = _unary_bw(_name + "_backward")

CALLS.update({
    "separable_conv2d": lambda rng, dt: (ops.separable_conv2d, (_a(rng, dt, 2, 3, 6, 6), _a(rng, dt, 3, 1, 3, 3),
                                                                _a(rng, dt, 4, 3, 1, 1), _a(rng, dt, 4)), {}),
    "separable_conv2d_backward": lambda rng, dt: (
        ops.separable_conv2d_backward, (_a(rng, dt, 2, 4, 4, 4), _a(rng, dt, 2, 3, 6, 6), _a(rng, dt, 3, 1, 3, 3),
                                        _a(rng, dt, 4, 3, 1, 1)), {}),
    "local_conv2d": lambda rng, dt: (ops.local_conv2d, (_a(rng, dt, 2, 3, 5, 5), _a(rng, dt, 3, 3, 4, 3, 3, 3),
                                                        _a(rng, dt, 4, 3, 3)), {}),
    "local_conv2d_backward": lambda rng, dt: (
        ops.local_conv2d_backward, (_a(rng, dt, 2, 4, 3, 3), _a(rng, dt, 2, 3, 5, 5),
                                    _a(rng, dt, 3, 3, 4, 3, 3, 3)), {}),
    "tiled_conv2d": lambda rng, dt: (ops.tiled_conv2d, (_a(rng, dt, 2, 3, 6, 6), _a(rng, dt, 2, 2, 4, 3, 3, 3),
                                                        _a(rng, dt, 4, 2, 2)), {"tile": 2}),
    "tiled_conv2d_backward": lambda rng, dt: (
        ops.tiled_conv2d_backward, (_a(rng, dt, 2, 4, 4, 4), _a(rng, dt, 2, 3, 6, 6),
                                    _a(rng, dt, 2, 2, 4, 3, 3, 3)), {"tile": 2}),
    "pad": lambda rng, dt: (ops.pad, (_a(rng, dt, 2, 3, 4, 5), (1, 2, 2, 1)), {"mode": "reflect"}),
    "pad_backward": lambda rng, dt: (ops.pad_backward, (_a(rng, dt, 2, 3, 7, 8), _a(rng, dt, 2, 3, 4, 5),
                                                        (1, 2, 2, 1)), {"mode": "reflect"}),
    "linear": lambda rng, dt: (ops.linear, (_a(rng, dt, 4, 6), _a(rng, dt, 3, 6), _a(rng, dt, 3)), {}),
    "linear_backward": lambda rng, dt: (ops.linear_backward, (_a(rng, dt, 4, 3), _a(rng, dt, 4, 6),
                                                              _a(rng, dt, 3, 6), _a(rng, dt, 3)), {}),
    "batch_norm": lambda rng, dt: (ops.batch_norm, (_a(rng, dt, 4, 3, 5, 5), np.zeros(3, dt), np.ones(3, dt),
                                                    _a(rng, dt, 3), _a(rng, dt, 3)), {"training": True}),
    "batch_norm_backward": lambda rng, dt: (
        ops.batch_norm_backward, (_a(rng, dt, 4, 3, 5, 5), _a(rng, dt, 4, 3, 5, 5), np.zeros(3, dt),
                                  np.ones(3, dt), _a(rng, dt, 3), _a(rng, dt, 3)), {"training": True}),
    "local_response_norm": lambda rng, dt: (ops.local_response_norm, (_a(rng, dt, 2, 6, 4, 4), 3), {}),
    "local_response_norm_backward": lambda rng, dt: (
        ops.local_response_norm_backward, (_a(rng, dt, 2, 6, 4, 4), _a(rng, dt, 2, 6, 4, 4), 3), {}),
    "cross_entropy": lambda rng, dt: (ops.cross_entropy, (_a(rng, dt, 4, 5), _targets(rng)), {}),
    "cross_entropy_backward": lambda rng, dt: (ops.cross_entropy_backward,
                                               (np.asarray(1.0, dt), _a(rng, dt, 4, 5), _targets(rng)), {}),
    "nll_loss": lambda rng, dt: (ops.nll_loss, (_a(rng, dt, 4, 5), _targets(rng)), {}),
    "nll_loss_backward": lambda rng, dt: (ops.nll_loss_backward,
                                          (np.asarray(1.0, dt), _a(rng, dt, 4, 5), _targets(rng)), {}),
    "dropout": lambda rng, dt: (ops.dropout, (_a(rng, dt, 3, 4, 5), 0.3), {"seed": 7}),
    "dropout_backward": lambda rng, dt: (ops.dropout_backward, (_a(rng, dt, 3, 4, 5), _a(rng, dt, 3, 4, 5), 0.3),
                                         {"seed": 7}),
})


# Arguments an op updates in place (so they must stay writeable C-contiguous arrays).
IN_PLACE = {"batch_norm": (1, 2)}


def float_positions(args, name=None):
    """Indices of the float ndarray arguments of a call (less those `name` updates in place)."""
    skip = IN_PLACE.get(name, ())
    return [i for i, a in enumerate(args)
            if isinstance(a, np.ndarray) and a.dtype.kind == "f" and i not in skip]


def public_ops():
    """Every op function in cnncore.ops that computes (not the shape helpers)."""
    return sorted(n for n in dir(ops) if not n.startswith("_") and callable(getattr(ops, n))
                  and not n.endswith("_output_shape") and n not in ("conv_param_count",))
