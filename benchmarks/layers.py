#!/usr/bin/env python3
"""Time cnncore's elementwise / normalisation layer ops, forward and backward, on LeNet-ish
and ResNet-ish shapes.

Where PyTorch imports, the same problems are timed with PyTorch in the same run, without
autograd: forward with ``torch.nn.functional`` under ``torch.no_grad()``, backward with the
``torch.ops.aten`` backward kernels. Torch's sigmoid / tanh / softmax / log_softmax backward
kernels are handed the forward output; cnncore's recompute it from ``x`` (its API takes
``x``). Torch's cross-entropy backward is ``nll_loss_backward`` + ``_log_softmax_backward_data``
given a precomputed log_softmax; cnncore's recomputes the log-sum-exp. Torch's batch-norm
backward is handed the saved mean and inverse std.

Each time is the median of ``--repeat`` measurements, each averaging enough calls to take
about 20 ms, after a warm-up. ``ratio`` = torch_ms / cnncore_ms: above 1 means cnncore is
faster. ``err``: largest difference from PyTorch relative to PyTorch's largest value.

    OMP_NUM_THREADS=1 python3 benchmarks/layers.py            # 1 thread (default)
    python3 benchmarks/layers.py --threads 2 --filter sigmoid
    CNNCORE_ISA=generic python3 benchmarks/layers.py          # a forced kernel level
"""
import argparse
import os
import platform
import statistics
import time

import numpy as np

import cnncore
from cnncore import ops

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the benchmark still times cnncore alone
    torch = None


# name, shape; "lenet": after conv1 (64, 6, 28, 28), logits (64, 10);
# "resnet": a stage-1 activation (32, 64, 56, 56), logits (64, 1000).
ACT_SHAPES = [("lenet", (64, 6, 28, 28)), ("resnet", (32, 64, 56, 56))]
LOGIT_SHAPES = [("lenet", (64, 10)), ("resnet", (64, 1000)), ("seg", (8, 21, 32, 32))]
BN_SHAPES = [("lenet", (64, 6, 28, 28)), ("resnet", (32, 64, 56, 56))]


def time_ms(fn, repeat):
    """Median over `repeat` measurements of the mean time (ms) of enough calls to last ~20 ms."""
    fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    inner = max(1, min(1000, int(0.02 / once)))
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - t0) / inner)
    return 1e3 * statistics.median(samples)


def rel_err(ours, ref):
    ours = np.asarray(ours, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if ref.size == 0:
        return 0.0
    scale = float(np.max(np.abs(ref))) or 1.0
    return float(np.max(np.abs(ours - ref))) / scale


def problems(rng, dtype):
    """Yields (name, cnncore_fn, torch_fn or None) for every problem."""
    t = torch is not None
    for tag, shape in ACT_SHAPES:
        x = rng.standard_normal(shape).astype(dtype)
        g = rng.standard_normal(shape).astype(dtype)
        tx, tg = (torch.from_numpy(x), torch.from_numpy(g)) if t else (None, None)
        ty_sig = torch.sigmoid(tx) if t else None
        ty_tanh = torch.tanh(tx) if t else None
        s = "x".join(map(str, shape))
        yield (f"relu_{tag}_{s}", lambda: ops.relu(x), t and (lambda: F.relu(tx)))
        yield (f"relu_bwd_{tag}_{s}", lambda: ops.relu_backward(g, x),
               t and (lambda: torch.ops.aten.threshold_backward(tg, tx, 0.0)))
        yield (f"leaky_relu_{tag}_{s}", lambda: ops.leaky_relu(x, 0.1), t and (lambda: F.leaky_relu(tx, 0.1)))
        yield (f"leaky_relu_bwd_{tag}_{s}", lambda: ops.leaky_relu_backward(g, x, 0.1),
               t and (lambda: torch.ops.aten.leaky_relu_backward(tg, tx, 0.1, False)))
        yield (f"sigmoid_{tag}_{s}", lambda: ops.sigmoid(x), t and (lambda: torch.sigmoid(tx)))
        yield (f"sigmoid_bwd_{tag}_{s}", lambda: ops.sigmoid_backward(g, x),
               t and (lambda: torch.ops.aten.sigmoid_backward(tg, ty_sig)))
        yield (f"tanh_{tag}_{s}", lambda: ops.tanh(x), t and (lambda: torch.tanh(tx)))
        yield (f"tanh_bwd_{tag}_{s}", lambda: ops.tanh_backward(g, x),
               t and (lambda: torch.ops.aten.tanh_backward(tg, ty_tanh)))
        yield (f"silu_{tag}_{s}", lambda: ops.silu(x), t and (lambda: F.silu(tx)))
        yield (f"silu_bwd_{tag}_{s}", lambda: ops.silu_backward(g, x),
               t and (lambda: torch.ops.aten.silu_backward(tg, tx)))
        for approx in ("none", "tanh"):
            label = "gelu" if approx == "none" else "gelu_tanh"
            yield (f"{label}_{tag}_{s}", lambda a=approx: ops.gelu(x, a),
                   t and (lambda a=approx: F.gelu(tx, approximate=a)))
            yield (f"{label}_bwd_{tag}_{s}", lambda a=approx: ops.gelu_backward(g, x, a),
                   t and (lambda a=approx: torch.ops.aten.gelu_backward(tg, tx, approximate=a)))
    for tag, shape in LOGIT_SHAPES:
        x = (3 * rng.standard_normal(shape)).astype(dtype)
        g = rng.standard_normal(shape).astype(dtype)
        tshape = (shape[0],) + shape[2:]
        target = rng.integers(0, shape[1], size=tshape).astype(np.int64)
        s = "x".join(map(str, shape))
        tx, tg, tt = (torch.from_numpy(x), torch.from_numpy(g), torch.from_numpy(target)) if t else (None,) * 3
        tdt = tx.dtype if t else None
        tsm = torch.softmax(tx, 1) if t else None
        tlsm = torch.log_softmax(tx, 1) if t else None
        yield (f"softmax_{tag}_{s}", lambda: ops.softmax(x, 1), t and (lambda: torch.softmax(tx, 1)))
        yield (f"softmax_bwd_{tag}_{s}", lambda: ops.softmax_backward(g, x, 1),
               t and (lambda: torch.ops.aten._softmax_backward_data(tg, tsm, 1, tdt)))
        yield (f"log_softmax_{tag}_{s}", lambda: ops.log_softmax(x, 1), t and (lambda: torch.log_softmax(tx, 1)))
        yield (f"log_softmax_bwd_{tag}_{s}", lambda: ops.log_softmax_backward(g, x, 1),
               t and (lambda: torch.ops.aten._log_softmax_backward_data(tg, tlsm, 1, tdt)))
        yield (f"cross_entropy_{tag}_{s}", lambda: ops.cross_entropy(x, target),
               t and (lambda: F.cross_entropy(tx, tt)))

        def torch_ce_bwd(tlsm=tlsm, tt=tt, tdt=tdt):
            one = torch.ones((), dtype=tdt)
            total = torch.tensor(float(tt.numel()), dtype=tdt)
            glsm = (torch.ops.aten.nll_loss_backward(one, tlsm, tt, None, 1, -100, total) if tlsm.dim() == 2
                    else torch.ops.aten.nll_loss2d_backward(one, tlsm, tt, None, 1, -100, total))
            return torch.ops.aten._log_softmax_backward_data(glsm, tlsm, 1, tdt)

        yield (f"cross_entropy_bwd_{tag}_{s}", lambda: ops.cross_entropy_backward(1.0, x, target),
               t and torch_ce_bwd)
    for tag, shape in BN_SHAPES:
        C = shape[1]
        x = rng.standard_normal(shape).astype(dtype)
        g = rng.standard_normal(shape).astype(dtype)
        w = (1 + 0.1 * rng.standard_normal(C)).astype(dtype)
        b = (0.1 * rng.standard_normal(C)).astype(dtype)
        rm, rv = np.zeros(C, dtype), np.ones(C, dtype)
        s = "x".join(map(str, shape))
        if t:
            tx, tg, tw, tb = map(torch.from_numpy, (x, g, w, b))
            trm, trv = torch.zeros(C, dtype=tx.dtype), torch.ones(C, dtype=tx.dtype)
            _, smean, sinvstd = torch.ops.aten.native_batch_norm(tx, tw, tb, None, None, True, 0.1, 1e-5)
        yield (f"batch_norm_{tag}_{s}",
               lambda: ops.batch_norm(x, rm.copy(), rv.copy(), w, b, training=True),
               t and (lambda: F.batch_norm(tx, trm.clone(), trv.clone(), tw, tb, training=True)))
        yield (f"batch_norm_bwd_{tag}_{s}",
               lambda: ops.batch_norm_backward(g, x, rm, rv, w, b, training=True),
               t and (lambda: torch.ops.aten.native_batch_norm_backward(
                   tg, tx, tw, None, None, smean, sinvstd, True, 1e-5, [True, True, True])))


def first(r):
    return r[0] if isinstance(r, (tuple, list)) else r


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=7, help="measurements per problem (median)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--filter", default="", help="only problems whose name contains this")
    ap.add_argument("--no-torch", action="store_true", help="do not time PyTorch")
    args = ap.parse_args(argv)
    global torch
    if args.no_torch:
        torch = None
    cnncore.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    dtype = np.dtype(args.dtype)
    print(f"cnncore {getattr(cnncore, '__version__', '?')}  isa={cnncore.get_isa()}  "
          f"numpy {np.__version__}  torch {torch.__version__ if torch is not None else '(not used)'}  "
          f"python {platform.python_version()}  cpus={os.cpu_count()}  threads={args.threads}  "
          f"dtype={dtype}  repeat={args.repeat}")
    print(f"{'problem':<42} {'cnncore_ms':>11} {'torch_ms':>10} {'ratio':>7} {'err':>8}")
    rng = np.random.default_rng(0)
    for name, ours, theirs in problems(rng, dtype):
        if args.filter and args.filter not in name:
            continue
        ms = time_ms(ours, args.repeat)
        if theirs:
            with torch.no_grad():
                tms = time_ms(theirs, args.repeat)
                err = rel_err(first(ours()), first(theirs()).numpy())
            print(f"{name:<42} {ms:>11.4f} {tms:>10.4f} {tms / ms:>7.2f} {err:>8.1e}")
        else:
            print(f"{name:<42} {ms:>11.4f} {'-':>10} {'-':>7} {'-':>8}")


if __name__ == "__main__":
    main()
