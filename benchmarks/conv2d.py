#!/usr/bin/env python3
"""Time ``cnncore.ops.conv2d`` (forward) and ``conv2d_backward`` on a fixed suite of layers.

Where PyTorch imports, the same shapes are timed with PyTorch in the same run:
forward with ``F.conv2d`` under ``torch.no_grad()``, backward with
``torch.ops.aten.convolution_backward`` (grad_input, grad_weight and grad_bias, the
same three results ``conv2d_backward`` returns; no graph is built, so only the
backward computation is timed).

Each entry is the median of several timed calls after warm-up calls (below). Problems are
named benchdnn-style, e.g. ``mb16ic64ih56oc64kh3sh1ph1`` (``g<groups>`` is added for
grouped layers).  ``ratio`` is torch_ms / cnncore_ms: above 1 means cnncore is faster.
The ``err`` column is the largest difference between cnncore and PyTorch relative to the
largest PyTorch value (forward: the output; backward: the worst of the three gradients).
``--columns`` adds one column per named cnncore algorithm (its time; ``-`` where it cannot
serve the layer), e.g. ``--columns im2col,direct,winograd2,winograd4``.

The forward is timed as inference: the same weights every call (after ``WARMUP`` warm-up
calls, so that Winograd's cache of transformed weights holds them, as it does when serving,
and auto's measured choice has settled: it times its candidates on the first calls where its
cost model cannot order them). The backward is timed as training: one weight changes in place
before every call, as an optimiser step changes them all, so no transform is served from the
cache (after as many warm-up steps). PyTorch gets the same warm-up calls.

    python3 benchmarks/conv2d.py                 # full suite, 1 and 2 threads
    python3 benchmarks/conv2d.py --quick         # a few small layers (smoke test)
    python3 benchmarks/conv2d.py --threads 1,2,4 --repeat 9 --batch 1
    python3 benchmarks/conv2d.py --batch 16 --columns im2col,winograd2,winograd4
"""
import argparse
import math
import sys

import numpy as np

import cnncore
from cnncore import ops
from _bench import (MIN_REPEAT, TorchTable, parse_list, parse_only, rel_err, threads_restored,
                    time_call)

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the benchmark still times cnncore alone
    torch = None


# warm-up calls before each timed set (besides time_call's own): cached weights after two,
# then three trials of each of auto's candidates, up to three (cpp/src/ops/conv_measure.hpp)
WARMUP = 11

# name, ic, ih(=iw), oc, k, stride, pad, groups, dilation
SUITE = [
    ("resnet3x3_56", 64, 56, 64, 3, 1, 1, 1, 1),
    ("resnet3x3_28", 128, 28, 128, 3, 1, 1, 1, 1),
    ("resnet3x3_14", 256, 14, 256, 3, 1, 1, 1, 1),
    ("resnet3x3_7", 512, 7, 512, 3, 1, 1, 1, 1),
    ("resnet3x3_4", 512, 4, 512, 3, 1, 1, 1, 1),
    ("resnet3x3_2", 512, 2, 512, 3, 1, 1, 1, 1),
    ("resnet3x3_1", 512, 1, 512, 3, 1, 1, 1, 1),
    ("resnet3x3s2_56", 64, 56, 128, 3, 2, 1, 1, 1),
    ("vgg3x3_224", 64, 224, 64, 3, 1, 1, 1, 1),
    ("vgg3x3_112a", 64, 112, 128, 3, 1, 1, 1, 1),
    ("vgg3x3_112", 128, 112, 128, 3, 1, 1, 1, 1),
    ("vgg3x3_56a", 128, 56, 256, 3, 1, 1, 1, 1),
    ("vgg3x3_56", 256, 56, 256, 3, 1, 1, 1, 1),
    ("vgg3x3_28a", 256, 28, 512, 3, 1, 1, 1, 1),
    ("vgg3x3_28", 512, 28, 512, 3, 1, 1, 1, 1),
    ("vgg3x3_14", 512, 14, 512, 3, 1, 1, 1, 1),
    ("resnet1x1_56", 256, 56, 64, 1, 1, 0, 1, 1),
    ("resnet1x1s2_28", 128, 28, 256, 1, 2, 0, 1, 1),
    ("resnet7x7s2_224", 3, 224, 64, 7, 2, 3, 1, 1),
    ("alexnet11x11s4_224", 3, 224, 64, 11, 4, 2, 1, 1),
    ("alexnet5x5_27", 64, 27, 192, 5, 1, 2, 1, 1),
    ("grouped3x3_28", 128, 28, 128, 3, 1, 1, 4, 1),
    ("dilated3x3_28", 128, 28, 128, 3, 1, 2, 1, 2),
    ("depthwise3x3_56", 128, 56, 128, 3, 1, 1, 128, 1),
    ("lenet_c1", 1, 32, 6, 5, 1, 0, 1, 1),
    ("lenet_c3", 6, 14, 16, 5, 1, 0, 1, 1),
]
QUICK = ["lenet_c1", "lenet_c3", "resnet3x3_14", "depthwise3x3_56"]


def problem_string(mb, ic, ih, oc, k, s, p, g, d=1):
    gs = f"g{g}" if g > 1 else ""
    ds = f"dh{d - 1}" if d > 1 else ""  # benchdnn counts dilation from 0
    return f"mb{mb}{gs}ic{ic}ih{ih}oc{oc}kh{k}sh{s}{ds}ph{p}"


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
    ap.add_argument("--algorithm", choices=["auto", "reference", "im2col", "direct", "winograd",
                                            "winograd2", "winograd4", "winograd6"],
                    default="auto", help="cnncore algorithm")
    ap.add_argument("--columns", default="",
                    help="comma-separated cnncore algorithms timed too, one column each")
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
        names = parse_only(args.only, SUITE, "layer")
        suite = [s for s in suite if s[0] in names]
    use_torch = torch is not None and not args.no_torch
    dtype = np.dtype(args.dtype)
    tdtype = None
    if use_torch:
        tdtype = torch.float32 if dtype == np.float32 else torch.float64

    columns = [c for c in args.columns.split(",") if c]
    for c in columns:
        if c not in ("auto", "reference", "im2col", "direct", "fft", "winograd", "winograd2",
                     "winograd4", "winograd6"):
            raise SystemExit(f"--columns: unknown algorithm {c!r}")
    table = TorchTable(pass_width=4, columns=columns)
    table.start(torch.__version__ if use_torch else None, dtype, args.algorithm, repeat)
    rng = np.random.default_rng(0)
    with threads_restored(torch if use_torch else None):
        for mb in batches:
            for name, ic, ih, oc, k, s, p, g, d in suite:
                x = rng.standard_normal((mb, ic, ih, ih)).astype(dtype)
                w = (rng.standard_normal((oc, ic // g, k, k)) / math.sqrt(ic // g * k * k)
                     ).astype(dtype)
                b = rng.standard_normal(oc).astype(dtype)
                kw = dict(stride=s, padding=p, groups=g, dilation=d)
                out_shape = tuple(ops.conv2d_output_shape(x.shape, w.shape, **kw))
                go = rng.standard_normal(out_shape).astype(dtype)
                if use_torch:
                    xt, wt, bt, got = (torch.from_numpy(a) for a in (x, w, b, go))
                    assert xt.dtype == tdtype
                prob = problem_string(mb, ic, ih, oc, k, s, p, g, d)
                for nt in threads:
                    cnncore.set_num_threads(nt)
                    if use_torch:
                        torch.set_num_threads(nt)
                    # cnncore first (forward, backward), then torch: the warm-up call
                    # of each measurement absorbs the switch between thread pools
                    def warmed(fn, repeat):
                        for _ in range(WARMUP - 1):
                            fn()
                        return time_call(fn, repeat)

                    def c_forward(algorithm):
                        return warmed(lambda: ops.conv2d(x, w, b, algorithm=algorithm, **kw), repeat)

                    def c_backward(algorithm):
                        def step():
                            w.flat[0] = np.nextafter(w.flat[0], np.inf)  # "an optimiser step"
                            return ops.conv2d_backward(go, x, w, bias=True, algorithm=algorithm,
                                                       **kw)
                        return warmed(step, repeat)

                    def column(timer, algorithm):
                        try:
                            return timer(algorithm)[0]
                        except ValueError:  # cannot serve this layer
                            return None

                    c_fwd, y = c_forward(args.algorithm)
                    c_bwd, grads = c_backward(args.algorithm)
                    x_fwd = [column(c_forward, c) for c in columns]
                    x_bwd = [column(c_backward, c) for c in columns]
                    t_fwd = t_bwd = e_fwd = e_bwd = None
                    if use_torch:
                        def torch_fwd():
                            with torch.no_grad():
                                return F.conv2d(xt, wt, bt, stride=s, padding=p, groups=g, dilation=d)

                        def torch_bwd():
                            # grad_input, grad_weight, grad_bias; no autograd graph
                            with torch.no_grad():
                                return torch.ops.aten.convolution_backward(
                                    got, xt, wt, [oc], [s, s], [p, p], [d, d], False,
                                    [0, 0], g, [True, True, True])

                        t_fwd, yt = warmed(torch_fwd, repeat)
                        t_bwd, tg = warmed(torch_bwd, repeat)
                        e_fwd = rel_err(y, yt.numpy())
                        e_bwd = rel_err(grads, tuple(r.numpy() for r in tg))
                    table.row(prob, nt, "fwd", c_fwd, t_fwd, e_fwd, x_fwd)
                    table.row(prob, nt, "bwd", c_bwd, t_bwd, e_bwd, x_bwd)
                    sys.stdout.flush()
    table.summary()
    return 0


if __name__ == "__main__":
    sys.exit(main())
