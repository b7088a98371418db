"""What the benchmark scripts share: timing (the median of several calls after one warm-up
call), the error of a result relative to its rival's, command-line lists, the first line of
the output, and the table of cnncore against PyTorch with its geometric means.

The scripts run as ``python3 benchmarks/<name>.py``, which puts this folder on ``sys.path``.
"""
import contextlib
import math
import os
import platform
import statistics
import time

import numpy as np

import cnncore

# one timed measurement should not take much longer than this (seconds, all repeats);
# slow calls get fewer repeats, but never fewer than MIN_REPEAT (or than asked for)
TIME_BUDGET = 1.5
MIN_REPEAT = 3


def _repeats(warm, repeat, budget):
    """How many timed calls: repeat, or fewer when repeat calls of warm seconds would take
    longer than budget."""
    if warm * repeat <= budget:
        return repeat
    return max(min(MIN_REPEAT, repeat), min(repeat, int(budget / max(warm, 1e-9))))


def time_call(fn, repeat, budget=TIME_BUDGET):
    """Median wall time (ms) of fn() after one warm-up call; returns (ms, last result)."""
    time.sleep(0.005)  # let another library's spinning OpenMP workers go to sleep
    t0 = time.perf_counter()
    result = fn()
    times = []
    for _ in range(_repeats(time.perf_counter() - t0, repeat, budget)):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times), result


def time_pair(ours, rival, repeat, budget=TIME_BUDGET):
    """Median wall times (ms) of ours() and rival(), called alternately after one warm-up
    call each (so a load change on a shared machine hits both alike); returns
    (ours_ms, ours_result, rival_ms, rival_result)."""
    t0 = time.perf_counter()
    a = ours()
    b = rival()
    ta, tb = [], []
    for _ in range(_repeats(time.perf_counter() - t0, repeat, budget)):
        t0 = time.perf_counter()
        a = ours()
        t1 = time.perf_counter()
        b = rival()
        t2 = time.perf_counter()
        ta.append(t1 - t0)
        tb.append(t2 - t1)
    return 1e3 * statistics.median(ta), a, 1e3 * statistics.median(tb), b


def rel_err(ours, ref):
    """Largest |ours - ref| relative to the largest |ref| (1 where ref is all zeros); the
    worst pair for tuples of results; 0 for empty ones."""
    if isinstance(ours, tuple):
        return max(rel_err(a, r) for a, r in zip(ours, ref))
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    if ref.size == 0:
        return 0.0
    scale = float(np.abs(ref).max()) or 1.0
    return float(np.abs(ours - ref).max()) / scale


def geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values))


def parse_list(text, name, conv=int):
    """The comma-separated values of option --name; integers must be positive."""
    try:
        vals = [conv(v.strip()) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SystemExit(f"--{name}: expected a comma-separated list, got {text!r}")
    if not vals:
        raise SystemExit(f"--{name}: expected at least one value, got {text!r}")
    if conv is int and any(v <= 0 for v in vals):
        raise SystemExit(f"--{name}: expected positive integers, got {text!r}")
    return vals


def parse_only(text, suite, what):
    """The names of --only, each the first field of an entry of suite."""
    names = {n.strip() for n in text.split(",") if n.strip()}
    unknown = names - {s[0] for s in suite}
    if unknown:
        raise SystemExit(f"--only: unknown {what}(s) {sorted(unknown)}")
    return names


def print_environment(rivals=(), settings=()):
    """The first line of a run: versions, kernel level, CPUs, then the run's settings."""
    print("  ".join([f"cnncore {getattr(cnncore, '__version__', '?')}", f"isa={cnncore.get_isa()}",
                     f"numpy {np.__version__}", *rivals, f"python {platform.python_version()}",
                     f"cpus={os.cpu_count()}", *settings]))


def print_header(header):
    print(header)
    print("-" * len(header))


@contextlib.contextmanager
def threads_restored(torch=None):
    """Gives cnncore (and torch, when given) their thread counts back on exit."""
    old = cnncore.get_num_threads()
    old_torch = torch.get_num_threads() if torch is not None else None
    try:
        yield
    finally:
        cnncore.set_num_threads(old)
        if torch is not None:
            torch.set_num_threads(old_torch)


class TorchTable:
    """Rows of cnncore against PyTorch (problem, threads, pass, both times, ratio =
    torch_ms / cnncore_ms, err), then the geometric mean of the ratios per thread count
    and pass."""

    def __init__(self, pass_width=4, columns=()):
        self.pass_width = pass_width
        self.columns = tuple(columns)  # more cnncore algorithms, one time column each
        self.ratios = {}

    def start(self, torch_version, dtype, algorithm, repeat):
        """Prints the environment line (torch_version None: PyTorch is not timed) and the
        table's header."""
        print_environment([f"torch {torch_version or '(not used)'}"],
                          [f"dtype={dtype}", f"algorithm={algorithm}",
                           f"repeat={repeat} (median, after 1 warm-up)"])
        extra = "".join(f" {c + '_ms':>13}" for c in self.columns)
        print_header(f"{'problem':<34} {'thr':>3} {'pass':>{self.pass_width}} {'cnncore_ms':>11} "
                     f"{'torch_ms':>10} {'ratio':>7} {'err':>8}{extra}")

    def row(self, prob, nt, pas, c_ms, t_ms=None, err=None, extra=()):
        """``extra``: the times of ``columns`` (None: that algorithm cannot serve it)."""
        start = f"{prob:<34} {nt:>3} {pas:>{self.pass_width}} {c_ms:>11.3f}"
        more = "".join(f" {'-' if v is None else f'{v:.3f}':>13}" for v in extra)
        if t_ms is None:
            print(f"{start} {'-':>10} {'-':>7} {'-':>8}{more}")
            return
        ratio = t_ms / c_ms if c_ms > 0 else float("inf")
        self.ratios.setdefault((nt, pas), []).append(ratio)
        print(f"{start} {t_ms:>10.3f} {ratio:>7.2f} {err:>8.1e}{more}")

    def summary(self):
        if not self.ratios:
            return
        print()
        print("geometric mean of torch_ms / cnncore_ms (above 1: cnncore faster)")
        for (nt, pas), vals in sorted(self.ratios.items()):
            gm = geomean(vals)
            print(f"  threads={nt} {pas:>{self.pass_width}}: {gm:.3f}  ({len(vals)} problems)")
