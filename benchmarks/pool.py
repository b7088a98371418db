#!/usr/bin/env python3
"""Time ``cnncore.ops.max_pool2d`` / ``avg_pool2d`` and their backward twins on a fixed suite.

Where PyTorch imports, the same problems are timed with PyTorch in the same run: forward
with ``F.max_pool2d`` / ``F.avg_pool2d`` under ``torch.no_grad()``, backward with
``torch.ops.aten.max_pool2d_with_indices_backward`` (given the indices of a forward call
made before timing) and ``torch.ops.aten.avg_pool2d_backward``; no graph is built.

Passes: ``fwd`` (output only), ``fwd+i`` (max: output and int64 indices), ``bwd`` (cnncore
max pooling recomputes the argmax from x; torch is handed its indices), ``bwd+i`` (max:
cnncore is handed the indices too, as an autograd layer would).

Timing, problem strings and ratio follow benchmarks/conv2d.py (both use benchmarks/_bench.py):
the median of several calls after one warm-up;
``ratio`` = torch_ms / cnncore_ms, above 1 means cnncore is faster; ``err`` is the largest
difference from PyTorch relative to PyTorch's largest value.

    python3 benchmarks/pool.py                  # full suite, 1 and 2 threads
    python3 benchmarks/pool.py --quick          # small batch, 2 repeats (smoke test)
    python3 benchmarks/pool.py --threads 1,2,4 --repeat 9 --batch 16
"""
import argparse
import sys

import numpy as np

import cnncore
from cnncore import ops
from _bench import TorchTable, parse_list, rel_err, threads_restored, time_call

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the benchmark still times cnncore alone
    torch = None


# name, kind, channels, size (H = W), kernel, stride, padding
SUITE = [
    ("resnet_stem_max", "max", 64, 112, 3, 2, 1),
    ("vgg_max", "max", 128, 56, 2, 2, 0),
    ("resnet_stem_avg", "avg", 64, 112, 3, 2, 1),
    ("vgg_avg", "avg", 128, 56, 2, 2, 0),
]


def problem_string(mb, kind, c, ih, k, s, p):
    return f"{kind}_mb{mb}ic{c}ih{ih}kh{k}sh{s}ph{p}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=7, help="timed calls per measurement (median)")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--batch", default="16", help="comma-separated batch sizes")
    ap.add_argument("--quick", action="store_true", help="batch 2, 2 repeats (smoke test)")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--algorithm", choices=["auto", "reference", "direct"], default="auto")
    ap.add_argument("--no-torch", action="store_true", help="do not time PyTorch")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        raise SystemExit("--repeat must be at least 1")
    threads = parse_list(args.threads, "threads")
    batches = [2] if args.quick else parse_list(args.batch, "batch")
    repeat = min(args.repeat, 2) if args.quick else args.repeat
    use_torch = torch is not None and not args.no_torch
    dtype = np.dtype(args.dtype)

    table = TorchTable(pass_width=5)
    table.start(torch.__version__ if use_torch else None, dtype, args.algorithm, repeat)

    rng = np.random.default_rng(0)
    algo = dict(algorithm=args.algorithm)
    with threads_restored(torch if use_torch else None):
        for mb in batches:
            for name, kind, c, ih, k, s, p in SUITE:
                x = rng.standard_normal((mb, c, ih, ih)).astype(dtype)
                if kind == "max":
                    y0, idx = ops.max_pool2d(x, k, s, p, return_indices=True)
                else:
                    y0, idx = ops.avg_pool2d(x, k, s, p), None
                go = rng.standard_normal(y0.shape).astype(dtype)
                prob = problem_string(mb, kind, c, ih, k, s, p)
                if use_torch:
                    xt, got = torch.from_numpy(x), torch.from_numpy(go)
                    if kind == "max":
                        with torch.no_grad():
                            _, idx_t = F.max_pool2d(xt, k, s, p, return_indices=True)
                for nt in threads:
                    cnncore.set_num_threads(nt)
                    if use_torch:
                        torch.set_num_threads(nt)
                    rows = []  # (pass, cnncore fn, torch fn, compare)
                    if kind == "max":
                        rows.append(("fwd", lambda: ops.max_pool2d(x, k, s, p, **algo),
                                     lambda: F.max_pool2d(xt, k, s, p), lambda a, b: rel_err(a, b)))
                        rows.append(("fwd+i", lambda: ops.max_pool2d(
                                         x, k, s, p, return_indices=True, **algo),
                                     lambda: F.max_pool2d(xt, k, s, p, return_indices=True),
                                     lambda a, b: max(rel_err(a[0], b[0]),
                                                      float(np.any(a[1] != b[1].numpy())))))

                        def t_bwd():
                            return torch.ops.aten.max_pool2d_with_indices_backward(
                                got, xt, [k, k], [s, s], [p, p], [1, 1], False, idx_t)

                        rows.append(("bwd", lambda: ops.max_pool2d_backward(go, x, k, s, p, **algo),
                                     t_bwd, rel_err))
                        rows.append(("bwd+i", lambda: ops.max_pool2d_backward(
                            go, x, k, s, p, indices=idx, **algo), t_bwd, rel_err))
                    else:
                        def t_bwd():
                            return torch.ops.aten.avg_pool2d_backward(
                                got, xt, [k, k], [s, s], [p, p], False, True, None)

                        rows.append(("fwd", lambda: ops.avg_pool2d(x, k, s, p, **algo),
                                     lambda: F.avg_pool2d(xt, k, s, p), rel_err))
                        rows.append(("bwd", lambda: ops.avg_pool2d_backward(go, x, k, s, p, **algo),
                                     t_bwd, rel_err))
                    # cnncore first, then torch: each warm-up call absorbs the switch
                    # between thread pools
                    for pas, c_fn, t_fn, compare in rows:
                        c_ms, ours = time_call(c_fn, repeat)
                        t_ms = err = None
                        if use_torch:
                            def timed_torch(fn=t_fn):
                                with torch.no_grad():
                                    return fn()
                            t_ms, theirs = time_call(timed_torch, repeat)
                            if isinstance(theirs, torch.Tensor):
                                theirs = theirs.numpy()
                            err = compare(ours, theirs)
                        table.row(prob, nt, pas, c_ms, t_ms, err)
                        sys.stdout.flush()
    table.summary()
    return 0


if __name__ == "__main__":
    sys.exit(main())
