#!/usr/bin/env python3
"""Time ``ops.local_conv2d`` and ``ops.tiled_conv2d`` (forward and backward) against
``ops.conv2d`` on the same shapes, and against a NumPy ``einsum`` implementation timed in
the same run (no PyTorch equivalent exists).

* ``local``: one kernel per output position, weight (H_out, W_out, C_out, C_in, k, k).
* ``tiled``: tile (2, 2) (``--tile``), weight (2, 2, C_out, C_in, k, k).
* ``conv2d``: the shared-weight convolution of the same shape, the natural yardstick
  (local and tiled do the same multiply-adds; local reads H_out*W_out times more weights).
* ``numpy``: ``einsum`` over a strided window view (forward, weight gradient, patch
  gradient) plus a loop over kernel taps to fold patch gradients back; tiled by expanding
  the kernels to every position and summing the weight gradient per tile entry.

Columns: ``ms`` is the median of several timed calls after one warm-up call; ``/conv2d``
is cnncore_ms / conv2d_ms (the cost of unsharing; above 1 means slower than conv2d);
``numpy/`` is numpy_ms / cnncore_ms (above 1 means cnncore is faster); ``err`` is the
largest difference from the NumPy result relative to its largest value. Backward means
(grad_x, grad_weight, grad_bias) for every op.

    python3 benchmarks/local_conv.py                  # default suite, 1 thread
    python3 benchmarks/local_conv.py --quick          # two small problems
    python3 benchmarks/local_conv.py --threads 1,2 --dtype float64
"""
import argparse
import math
import sys

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

import cnncore
from cnncore import ops
from _bench import (geomean, parse_list, parse_only, print_environment, print_header, rel_err,
                    threads_restored, time_call)

# name, batch, ic, ih(=iw), oc, k, stride, pad
SUITE = [
    ("lenet_c3", 16, 6, 14, 16, 5, 1, 0),
    ("small3x3", 8, 16, 16, 32, 3, 1, 1),
    ("mid3x3", 8, 32, 28, 32, 3, 1, 1),
    ("stride2", 8, 16, 32, 32, 3, 2, 1),
    ("batch1", 1, 32, 28, 32, 3, 1, 1),
    ("faces", 16, 3, 32, 16, 5, 1, 2),
]
QUICK = ["lenet_c3", "batch1"]
TIME_BUDGET = 2.0  # seconds per measurement, all repeats


# --------------------------------------------------------------------------- NumPy rival


def np_windows(x, k, s, p):
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    return xp, sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::s, ::s]  # n c i j a b


def np_local_forward(x, w, b, k, s, p):
    _, win = np_windows(x, k, s, p)
    return np.einsum("ncijab,ijocab->noij", win, w, optimize=True) + b


def np_local_backward(g, x, w, k, s, p):
    xp, win = np_windows(x, k, s, p)
    ho, wo = g.shape[2:]
    gw = np.einsum("noij,ncijab->ijocab", g, win, optimize=True)
    dwin = np.einsum("noij,ijocab->ncijab", g, w, optimize=True)
    gxp = np.zeros_like(xp)
    for a in range(k):
        for c in range(k):
            gxp[:, :, a:a + s * (ho - 1) + 1:s, c:c + s * (wo - 1) + 1:s] += dwin[..., a, c]
    h, wd = x.shape[2:]
    return gxp[:, :, p:p + h, p:p + wd], gw, g.sum(axis=0)


def expand(w, b, ho, wo):
    rows, cols = np.arange(ho) % w.shape[0], np.arange(wo) % w.shape[1]
    return w[rows][:, cols], b[:, rows][:, :, cols]


def np_tiled_forward(x, w, b, k, s, p, ho, wo):
    wl, bl = expand(w, b, ho, wo)
    return np_local_forward(x, wl, bl, k, s, p)


def np_tiled_backward(g, x, w, k, s, p):
    th, tw = w.shape[:2]
    ho, wo = g.shape[2:]
    wl, _ = expand(w, np.zeros((w.shape[2], th, tw), w.dtype), ho, wo)
    gx, gwl, gbl = np_local_backward(g, x, wl, k, s, p)
    gw = np.stack([np.stack([gwl[i::th, j::tw].sum(axis=(0, 1)) for j in range(tw)]) for i in range(th)])
    gb = np.stack([np.stack([gbl[:, i::th, j::tw].sum(axis=(1, 2)) for j in range(tw)], -1)
                   for i in range(th)], 1)
    return gx, gw, gb


# --------------------------------------------------------------------------- driver


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", default="1", help="comma-separated thread counts")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--tile", default="2,2", help="tile of the tiled convolution, tH,tW")
    ap.add_argument("--quick", action="store_true", help="two small problems, 2 repeats")
    ap.add_argument("--no-numpy", action="store_true", help="do not time the NumPy einsum rival")
    ap.add_argument("--only", default="", help="comma-separated problem names: " + ", ".join(s[0] for s in SUITE))
    args = ap.parse_args(argv)
    threads = parse_list(args.threads, "threads")
    tile = tuple(parse_list(args.tile, "tile"))
    if len(tile) != 2:
        raise SystemExit("--tile: expected two integers tH,tW")
    repeat = max(1, args.repeat)
    suite = SUITE
    if args.quick:
        suite = [s for s in SUITE if s[0] in QUICK]
        repeat = min(repeat, 2)
    if args.only:
        names = parse_only(args.only, SUITE, "problem")
        suite = [s for s in suite if s[0] in names]
    dtype = np.dtype(args.dtype)
    print_environment(settings=[f"dtype={dtype}", f"tile={tile}",
                                f"repeat={repeat} (median after 1 warm-up)"])
    print_header(f"{'problem':<30} {'thr':>3} {'pass':>4} {'op':<6} {'ms':>9} {'/conv2d':>8} "
                 f"{'numpy_ms':>9} {'numpy/':>7} {'err':>8}")
    rng = np.random.default_rng(0)
    summary = {}
    with threads_restored():
        for name, mb, ic, ih, oc, k, s, p in suite:
            ho = (ih + 2 * p - k) // s + 1
            x = rng.standard_normal((mb, ic, ih, ih)).astype(dtype)
            scale = 1 / math.sqrt(ic * k * k)
            wc = (rng.standard_normal((oc, ic, k, k)) * scale).astype(dtype)
            wl = (rng.standard_normal((ho, ho, oc, ic, k, k)) * scale).astype(dtype)
            wt = (rng.standard_normal(tile + (oc, ic, k, k)) * scale).astype(dtype)
            bc = rng.standard_normal(oc).astype(dtype)
            bl = rng.standard_normal((oc, ho, ho)).astype(dtype)
            bt = rng.standard_normal((oc,) + tile).astype(dtype)
            g = rng.standard_normal((mb, oc, ho, ho)).astype(dtype)
            kw = dict(stride=s, padding=p)
            prob = f"{name}:mb{mb}ic{ic}ih{ih}oc{oc}k{k}s{s}p{p}"
            for nt in threads:
                cnncore.set_num_threads(nt)
                rows = {
                    ("fwd", "conv2d"): (lambda: ops.conv2d(x, wc, bc, **kw), None),
                    ("fwd", "local"): (lambda: ops.local_conv2d(x, wl, bl, **kw),
                                       lambda: np_local_forward(x, wl, bl, k, s, p)),
                    ("fwd", "tiled"): (lambda: ops.tiled_conv2d(x, wt, bt, tile=tile, **kw),
                                       lambda: np_tiled_forward(x, wt, bt, k, s, p, ho, ho)),
                    ("bwd", "conv2d"): (lambda: ops.conv2d_backward(g, x, wc, **kw), None),
                    ("bwd", "local"): (lambda: ops.local_conv2d_backward(g, x, wl, **kw),
                                       lambda: np_local_backward(g, x, wl, k, s, p)),
                    ("bwd", "tiled"): (lambda: ops.tiled_conv2d_backward(g, x, wt, tile=tile, **kw),
                                       lambda: np_tiled_backward(g, x, wt, k, s, p)),
                }
                conv_ms = {}
                for (pas, op), (ours, rival) in rows.items():
                    ms, res = time_call(ours, repeat, TIME_BUDGET)
                    if op == "conv2d":
                        conv_ms[pas] = ms
                        print(f"{prob:<30} {nt:>3} {pas:>4} {op:<6} {ms:>9.3f} {1.0:>8.2f} {'-':>9} {'-':>7} "
                              f"{'-':>8}")
                        continue
                    vs_conv = ms / conv_ms[pas]
                    summary.setdefault((nt, pas, op, "/conv2d"), []).append(vs_conv)
                    if rival is not None and not args.no_numpy:
                        with np.errstate(all="ignore"):
                            np_ms, ref = time_call(rival, max(1, min(repeat, 3)), TIME_BUDGET)
                        ratio = np_ms / ms
                        summary.setdefault((nt, pas, op, "numpy/"), []).append(ratio)
                        err = rel_err(res, ref)
                        print(f"{prob:<30} {nt:>3} {pas:>4} {op:<6} {ms:>9.3f} {vs_conv:>8.2f} {np_ms:>9.3f} "
                              f"{ratio:>7.2f} {err:>8.1e}")
                    else:
                        print(f"{prob:<30} {nt:>3} {pas:>4} {op:<6} {ms:>9.3f} {vs_conv:>8.2f} {'-':>9} {'-':>7} "
                              f"{'-':>8}")
                    sys.stdout.flush()
    if summary:
        print()
        print("geometric means (/conv2d: cnncore_ms / conv2d_ms; numpy/: numpy_ms / cnncore_ms)")
        for (nt, pas, op, kind), vals in sorted(summary.items()):
            print(f"  threads={nt} {pas} {op:<6} {kind:<8} {geomean(vals):8.2f}  ({len(vals)} problems)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
