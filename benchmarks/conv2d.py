#!/usr/bin/env python3
"""Time ``cnncore.ops.conv2d`` (forward) and ``conv2d_backward`` on a fixed suite of layers.

Where PyTorch imports, the same shapes are timed with PyTorch in the same run:
forward with ``F.conv2d`` under ``torch.no_grad()``, backward with
``torch.ops.aten.convolution_backward`` (grad_input, grad_weight and grad_bias, the
same three results ``conv2d_backward`` returns; no graph is built, so only the
backward computation is timed).

Each entry is the median of several timed calls after one warm-up call. Problems are
named benchdnn-style, e.g. ``mb16ic64ih56oc64kh3sh1ph1`` (``g<groups>`` is added for
grouped layers).  ``ratio`` is torch_ms / cnncore_ms: above 1 means cnncore is faster.
The ``err`` column is the largest difference between cnncore and PyTorch relative to the
largest PyTorch value (forward: the output; backward: the worst of the three gradients).

    python3 benchmarks/conv2d.py                 # full suite, 1 and 2 threads
    python3 benchmarks/conv2d.py --quick         # a few small layers (smoke test)
    python3 benchmarks/conv2d.py --threads 1,2,4 --repeat 9 --batch 1
"""
import argparse
import math
import os
import platform
import statistics
import sys
import time

import numpy as np

import cnncore
from cnncore import ops

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the benchmark still times cnncore alone
    torch = None


# name, ic, ih(=iw), oc, k, stride, pad, groups
SUITE = [
    ("resnet3x3_56", 64, 56, 64, 3, 1, 1, 1),
    ("resnet3x3_28", 128, 28, 128, 3, 1, 1, 1),
    ("resnet3x3_14", 256, 14, 256, 3, 1, 1, 1),
    ("resnet1x1_56", 256, 56, 64, 1, 1, 0, 1),
    ("resnet7x7s2_224", 3, 224, 64, 7, 2, 3, 1),
    ("depthwise3x3_56", 128, 56, 128, 3, 1, 1, 128),
    ("lenet_c1", 1, 32, 6, 5, 1, 0, 1),
    ("lenet_c3", 6, 14, 16, 5, 1, 0, 1),
]
QUICK = ["lenet_c1", "lenet_c3", "resnet3x3_14", "depthwise3x3_56"]

# one timed measurement should not take much longer than this (seconds, all repeats);
# big problems get fewer repeats (but never fewer than MIN_REPEAT)
TIME_BUDGET = 1.5
MIN_REPEAT = 3


def problem_string(mb, ic, ih, oc, k, s, p, g):
    gs = f"g{g}" if g > 1 else ""
    return f"mb{mb}{gs}ic{ic}ih{ih}oc{oc}kh{k}sh{s}ph{p}"


def time_call(fn, repeat, quick):
    """Median wall time (ms) of fn() after one warm-up call; returns (ms, last result)."""
    time.sleep(0.005)  # let the other library's spinning OpenMP workers go to sleep
    t0 = time.perf_counter()
    result = fn()
    warm = time.perf_counter() - t0
    n = repeat
    if not quick and warm * repeat > TIME_BUDGET:
        n = max(MIN_REPEAT, min(repeat, int(TIME_BUDGET / max(warm, 1e-9))))
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times), result


def rel_err(ours, ref):
    ours = np.asarray(ours, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    if scale == 0.0:
        scale = 1.0
    return float(np.max(np.abs(ours - ref))) / scale if ref.size else 0.0


def parse_list(text, name):
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SystemExit(f"--{name}: expected a comma-separated list of integers, got {text!r}")
    if not vals or any(v <= 0 for v in vals):
        raise SystemExit(f"--{name}: expected positive integers, got {text!r}")
    return vals


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=7,
                    help="timed calls per measurement (median is reported; big problems "
                         "use fewer, at least %d)" % MIN_REPEAT)
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--batch", default="1,16", help="comma-separated batch sizes")
    ap.add_argument("--quick", action="store_true",
                    help="a few small layers, batch 1, 2 repeats (smoke test)")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--algorithm", choices=["auto", "reference", "im2col"], default="auto",
                    help="cnncore algorithm")
    ap.add_argument("--no-torch", action="store_true", help="do not time PyTorch")
    ap.add_argument("--only", default="",
                    help="comma-separated layer names to run (default: all); names: "
                         + ", ".join(s[0] for s in SUITE))
    args = ap.parse_args(argv)

    if args.repeat < 1:
        raise SystemExit("--repeat must be at least 1")
    threads = parse_list(args.threads, "threads")
    batches = parse_list(args.batch, "batch")
    repeat = args.repeat
    suite = SUITE
    if args.quick:
        suite = [s for s in SUITE if s[0] in QUICK]
        batches = [1]
        repeat = min(repeat, 2)
    if args.only:
        names = {n.strip() for n in args.only.split(",") if n.strip()}
        unknown = names - {s[0] for s in SUITE}
        if unknown:
            raise SystemExit(f"--only: unknown layer(s) {sorted(unknown)}")
        suite = [s for s in suite if s[0] in names]
    use_torch = torch is not None and not args.no_torch
    dtype = np.dtype(args.dtype)
    tdtype = None
    if use_torch:
        tdtype = torch.float32 if dtype == np.float32 else torch.float64

    print(f"cnncore {getattr(cnncore, '__version__', '?')}  isa={cnncore.get_isa()}  "
          f"numpy {np.__version__}  "
          f"torch {torch.__version__ if use_torch else '(not used)'}  "
          f"python {platform.python_version()}  cpus={os.cpu_count()}  dtype={dtype}  "
          f"algorithm={args.algorithm}  repeat={repeat} (median, after 1 warm-up)")

    old_threads = cnncore.get_num_threads()
    old_torch_threads = torch.get_num_threads() if use_torch else None
    header = (f"{'problem':<34} {'thr':>3} {'pass':>4} {'cnncore_ms':>11} {'torch_ms':>10} "
              f"{'ratio':>7} {'err':>8}")
    print(header)
    print("-" * len(header))
    ratios = {}
    rng = np.random.default_rng(0)
    try:
        for mb in batches:
            for name, ic, ih, oc, k, s, p, g in suite:
                x = rng.standard_normal((mb, ic, ih, ih)).astype(dtype)
                w = (rng.standard_normal((oc, ic // g, k, k)) / math.sqrt(ic // g * k * k)
                     ).astype(dtype)
                b = rng.standard_normal(oc).astype(dtype)
                kw = dict(stride=s, padding=p, groups=g)
                out_shape = tuple(ops.conv2d_output_shape(x.shape, w.shape, **kw))
                go = rng.standard_normal(out_shape).astype(dtype)
                if use_torch:
                    xt, wt, bt, got = (torch.from_numpy(a) for a in (x, w, b, go))
                    assert xt.dtype == tdtype
                prob = problem_string(mb, ic, ih, oc, k, s, p, g)
                for nt in threads:
                    cnncore.set_num_threads(nt)
                    if use_torch:
                        torch.set_num_threads(nt)
                    # cnncore first (forward, backward), then torch: the warm-up call
                    # of each measurement absorbs the switch between thread pools
                    c_fwd, y = time_call(
                        lambda: ops.conv2d(x, w, b, algorithm=args.algorithm, **kw),
                        repeat, args.quick)
                    c_bwd, grads = time_call(
                        lambda: ops.conv2d_backward(go, x, w, bias=True,
                                                    algorithm=args.algorithm, **kw),
                        repeat, args.quick)
                    t_fwd = t_bwd = e_fwd = e_bwd = None
                    if use_torch:
                        def torch_fwd():
                            with torch.no_grad():
                                return F.conv2d(xt, wt, bt, stride=s, padding=p, groups=g)

                        def torch_bwd():
                            # grad_input, grad_weight, grad_bias; no autograd graph
                            with torch.no_grad():
                                return torch.ops.aten.convolution_backward(
                                    got, xt, wt, [oc], [s, s], [p, p], [1, 1], False,
                                    [0, 0], g, [True, True, True])

                        t_fwd, yt = time_call(torch_fwd, repeat, args.quick)
                        t_bwd, tg = time_call(torch_bwd, repeat, args.quick)
                        e_fwd = rel_err(y, yt.numpy())
                        e_bwd = max(rel_err(a, r.numpy()) for a, r in zip(grads, tg))
                    report(prob, nt, "fwd", c_fwd, t_fwd, e_fwd, ratios)
                    report(prob, nt, "bwd", c_bwd, t_bwd, e_bwd, ratios)
                    sys.stdout.flush()
    finally:
        cnncore.set_num_threads(old_threads)
        if use_torch:
            torch.set_num_threads(old_torch_threads)

    if ratios:
        print()
        print("geometric mean of torch_ms / cnncore_ms (above 1: cnncore faster)")
        for (nt, pas), vals in sorted(ratios.items()):
            gm = math.exp(sum(math.log(v) for v in vals) / len(vals))
            print(f"  threads={nt} {pas}: {gm:.3f}  ({len(vals)} problems)")
    return 0


def report(prob, nt, pas, c_ms, t_ms, err, ratios):
    if t_ms is not None:
        ratio = t_ms / c_ms if c_ms > 0 else float("inf")
        ratios.setdefault((nt, pas), []).append(ratio)
        print(f"{prob:<34} {nt:>3} {pas:>4} {c_ms:>11.3f} {t_ms:>10.3f} {ratio:>7.2f} "
              f"{err:>8.1e}")
    else:
        print(f"{prob:<34} {nt:>3} {pas:>4} {c_ms:>11.3f} {'-':>10} {'-':>7} {'-':>8}")


if __name__ == "__main__":
    sys.exit(main())
