#!/usr/bin/env python3
"""Time the blocked GEMM (``C = op(A) op(B)``, float32) of every micro-kernel this CPU runs,
as GFLOP/s and as a percentage of the FMA peak measured in the same run
(``benchmarks/fma_peak.py``).

Sizes are square (M = N = K) plus the shapes the convolutions of ResNet-18 hand to the GEMM
(``M x N x K`` = output channels x output positions x patch size). Each entry is the median
of ``--repeat`` calls after one warm-up call; the kernels of one size are timed in turns
(round robin), so a load change on a shared machine hits them alike. Where PyTorch imports,
``torch.mm`` is timed in the same turns (its oneDNN/MKL path is the rival).

    python3 benchmarks/gemm.py                     # 1 and all threads
    python3 benchmarks/gemm.py --threads 1 --sizes 512,1024 --repeat 15
"""
import argparse
import os
import statistics
import time

import numpy as np

import cnncore
from cnncore import _core
from _bench import parse_list, print_environment, print_header, threads_restored
from fma_peak import peak_gflops

try:
    import torch
except ImportError:
    torch = None

# name, M, N, K
CONV_SHAPES = [
    ("resnet3x3_56", 64, 3136, 576),
    ("resnet3x3_28", 128, 784, 1152),
    ("resnet3x3_14", 256, 196, 2304),
    ("resnet3x3_7", 512, 49, 4608),
    ("resnet3x3_7_b32", 512, 49 * 32, 4608),
]


def _median_ms(times):
    return 1e3 * statistics.median(times)


def time_round_robin(fns, repeat):
    """Median ms of each of fns, called in turns after one warm-up call each."""
    for f in fns:
        f()
    times = [[] for _ in fns]
    for _ in range(repeat):
        for i, f in enumerate(fns):
            t0 = time.perf_counter()
            f()
            times[i].append(time.perf_counter() - t0)
    return [_median_ms(t) for t in times]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", default=f"1,{os.cpu_count() or 1}")
    ap.add_argument("--sizes", default="256,512,1024,2048", help="square sizes (default 256,512,1024,2048)")
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--no-conv-shapes", action="store_true", help="square sizes only")
    ap.add_argument("--kernels", default="", help="comma-separated kernel names (default: every f32 kernel)")
    args = ap.parse_args(argv)
    threads = sorted(set(parse_list(args.threads, "threads")))
    problems = [(f"{n}^3", n, n, n) for n in parse_list(args.sizes, "sizes")]
    if not args.no_conv_shapes:
        problems += CONV_SHAPES
    kernels = [k for k in _core._gemm_kernels() if k.startswith("f32_")]
    if args.kernels:
        wanted = [k.strip() for k in args.kernels.split(",") if k.strip()]
        unknown = set(wanted) - set(kernels)
        if unknown:
            raise SystemExit(f"--kernels: unknown or not runnable here: {sorted(unknown)}; have {kernels}")
        kernels = wanted
    print_environment([f"torch {torch.__version__ if torch else '(not used)'}"],
                      [f"repeat={args.repeat} (median, round robin)"])
    rng = np.random.default_rng(0)
    with threads_restored(torch):
        for nt in threads:
            cnncore.set_num_threads(nt)
            if torch is not None:
                torch.set_num_threads(nt)
            peak = peak_gflops(nt)
            print()
            print(f"threads={nt}: measured FMA peak {peak:.1f} GFLOP/s")
            print_header(f"{'problem':<16} {'M':>5} {'N':>6} {'K':>5}  {'kernel':<26} {'ms':>8} "
                         f"{'GFLOP/s':>8} {'%peak':>6}")
            for name, M, N, K in problems:
                a = rng.standard_normal((M, K), dtype=np.float32)
                b = rng.standard_normal((K, N), dtype=np.float32)
                fns = [lambda k=k: _core._gemm(a, b, kernel=k) for k in kernels]
                labels = list(kernels)
                if torch is not None:
                    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
                    fns.append(lambda: torch.mm(ta, tb))
                    labels.append("torch.mm")
                flop = 2.0 * M * N * K
                for label, ms in zip(labels, time_round_robin(fns, args.repeat)):
                    gf = flop / (ms * 1e-3) * 1e-9
                    print(f"{name:<16} {M:>5} {N:>6} {K:>5}  {label:<26} {ms:>8.3f} {gf:>8.1f} "
                          f"{100 * gf / peak:>6.1f}")


if __name__ == "__main__":
    main()
