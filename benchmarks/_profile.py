"""Where a cnncore workload's time goes: every call into the C++ core is timed and
grouped by op, pass and problem (convolutions named benchdnn-style), with the GFLOP/s of
the ops whose work is known (convolution, linear) and their share of the measured FMA peak.
Whatever the step spends outside the core (autograd, NumPy elementwise work, the
optimiser) is the last row.

Used by ``benchmarks/models.py --profile``.
"""
import collections
import contextlib
import functools
import math
import time

from cnncore import _core

# the core's entry points that do an op's work; everything else (shape queries, settings)
# is left alone
_PASSES = {"_forward": "fwd", "_backward": "bwd"}


def _pass_of(name):
    for suffix, label in _PASSES.items():
        if name.endswith(suffix):
            return name[: -len(suffix)], label
    return None


def _conv_problem(x_shape, w_shape, params):
    nd = len(w_shape) - 2
    stride = params.get("stride") or [1] * nd
    pad = params.get("padding") or []
    s = f"mb{x_shape[0]}"
    g = params.get("groups", 1)
    if g > 1:
        s += f"g{g}"
    s += f"ic{x_shape[1]}ih{x_shape[2]}oc{w_shape[0]}kh{w_shape[2]}sh{stride[0]}"
    s += f"ph{pad[0] if pad else 0}"
    if params.get("preset"):
        s += f"({params['preset']})"
    return s


def _conv_flop(dst_elems, w_shape):
    return 2.0 * dst_elems * math.prod(w_shape[1:])


def _describe(name, args, kwargs, result):
    """(problem string, flop) of one core call; flop 0 where unknown."""
    try:
        if name == "conv_forward":
            x, w = args[0], args[1]
            return _conv_problem(x.shape, w.shape, kwargs), _conv_flop(result.size, w.shape)
        if name == "conv_backward":
            gy, x, w = args[0], args[1], args[2]
            passes = int(bool(args[4])) + int(bool(args[5]))
            return _conv_problem(x.shape, w.shape, kwargs), passes * _conv_flop(gy.size, w.shape)
        if name == "linear_forward":
            x, w = args[0], args[1]
            return f"mb{x.shape[0]}ic{w.shape[1]}oc{w.shape[0]}", 2.0 * x.shape[0] * w.shape[0] * w.shape[1]
        if name == "linear_backward":
            x, w = args[1], args[2]
            return f"mb{x.shape[0]}ic{w.shape[1]}oc{w.shape[0]}", 4.0 * x.shape[0] * w.shape[0] * w.shape[1]
        if args and hasattr(args[0], "shape"):
            return "x".join(map(str, args[0].shape)), 0.0
    except (AttributeError, IndexError, TypeError):
        pass
    return "", 0.0


class CoreProfile:
    """Totals per (op, pass, problem): calls, seconds, flop."""

    def __init__(self):
        self.rows = collections.defaultdict(lambda: [0, 0.0, 0.0])
        self.steps = 0
        self.wall = 0.0

    @contextlib.contextmanager
    def installed(self):
        """Wraps every op entry point of cnncore._core while the context is open."""
        saved = {}
        for name in dir(_core):
            split = _pass_of(name)
            fn = getattr(_core, name)
            if split is None or not callable(fn):
                continue
            saved[name] = fn
            setattr(_core, name, self._wrap(name, split, fn))
        try:
            yield self
        finally:
            for name, fn in saved.items():
                setattr(_core, name, fn)

    def _wrap(self, name, split, fn):
        op, pas = split
        rows = self.rows

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            result = fn(*args, **kwargs)
            dt = time.perf_counter() - t0
            first = result[0] if isinstance(result, tuple) else result
            problem, flop = _describe(name, args, kwargs, first)
            row = rows[(op, pas, problem)]
            row[0] += 1
            row[1] += dt
            row[2] += flop
            return result

        return timed

    def table(self, peak_gflops, top=25):
        """Lines of the profile, heaviest first; times are per step."""
        steps = max(self.steps, 1)
        step_ms = 1e3 * self.wall / steps
        core = sum(r[1] for r in self.rows.values())
        out = [f"{'op':<16} {'pass':<4} {'problem':<34} {'calls':>5} {'ms':>8} {'%step':>6} "
               f"{'GFLOP/s':>8} {'%peak':>6}"]
        out.append("-" * len(out[0]))
        ranked = sorted(self.rows.items(), key=lambda kv: -kv[1][1])
        for (op, pas, problem), (calls, sec, flop) in ranked[:top]:
            ms = 1e3 * sec / steps
            gf = flop / sec * 1e-9 if sec > 0 and flop else None
            gfs = f"{gf:>8.1f} {100 * gf / peak_gflops:>6.1f}" if gf else f"{'':>8} {'':>6}"
            out.append(f"{op:<16} {pas:<4} {problem:<34} {calls // steps:>5} {ms:>8.3f} "
                       f"{100 * ms / step_ms:>6.1f} {gfs}")
        if len(ranked) > top:
            rest = sum(r[1] for _, r in ranked[top:])
            out.append(f"{'(other core ops)':<61} {1e3 * rest / steps:>8.3f} "
                       f"{100 * 1e3 * rest / steps / step_ms:>6.1f}")
        outside = self.wall - core
        out.append(f"{'(outside the core: autograd, NumPy, optimiser)':<61} {1e3 * outside / steps:>8.3f} "
                   f"{100 * outside / max(self.wall, 1e-12):>6.1f}")
        flop = sum(r[2] for r in self.rows.values())
        wall = max(self.wall, 1e-12)
        gflops = flop / wall * 1e-9
        out.append(f"step {step_ms:.2f} ms; the core {100 * core / wall:.1f}% of it; whole step "
                   f"{gflops:.1f} GFLOP/s of convolution and linear work ({100 * gflops / peak_gflops:.1f}% of "
                   f"the {peak_gflops:.0f} GFLOP/s peak)")
        return out
