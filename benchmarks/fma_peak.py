#!/usr/bin/env python3
"""Measure this machine's fp32 FMA peak (GFLOP/s), for 1 and more threads, at each kernel level.

Each thread runs 12 independent chains of vector multiply-adds on registers only (no memory
traffic), which covers the FMA latency times the FMA units of current x86 cores; the
threads are timed together. The best of ``--repeat`` runs is the peak (a shared machine can
only slow a run down); the median is printed beside it. Other benchmarks quote their speed
as a percentage of this number (``peak_gflops`` below).

    python3 benchmarks/fma_peak.py                   # 1 and all threads, every level
    python3 benchmarks/fma_peak.py --threads 1,2 --seconds 1 --repeat 5
"""
import argparse
import os
import statistics

from cnncore import _core
from _bench import parse_list, print_environment, print_header

LEVELS = ["generic", "avx2", "avx512"]
LANES = {"generic": 4, "avx2": 8, "avx512": 16}


def levels_here():
    best = _core.best_isa()
    return [lv for lv in LEVELS if LEVELS.index(lv) <= LEVELS.index(best)] if best in LEVELS else ["generic"]


def peak_gflops(threads, isa=None, seconds=0.3, repeat=3):
    """The best of `repeat` measurements of the fp32 FMA peak on `threads` threads at
    kernel level `isa` (default: the best this CPU runs)."""
    isa = isa or levels_here()[-1]
    return max(_core._fma_peak(threads, isa, seconds)["gflops"] for _ in range(repeat))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", default=f"1,{os.cpu_count() or 1}",
                    help="comma-separated thread counts (default: 1 and all CPUs)")
    ap.add_argument("--seconds", type=float, default=0.5, help="length of one run (default 0.5)")
    ap.add_argument("--repeat", type=int, default=5, help="runs per entry (default 5)")
    args = ap.parse_args(argv)
    threads = sorted(set(parse_list(args.threads, "threads")))
    if not 0 < args.seconds <= 60:
        raise SystemExit("--seconds: expected a value in (0, 60]")
    if args.repeat < 1:
        raise SystemExit("--repeat: expected a positive integer")
    print_environment(settings=[f"best_isa={_core.best_isa()}", f"seconds={args.seconds}",
                                f"repeat={args.repeat}"])
    print_header(f"{'level':<8} {'lanes':>5} {'thr':>3} {'peak_GFLOP/s':>13} {'median':>9} "
                 f"{'per_core':>9}")
    for isa in levels_here():
        for nt in threads:
            runs = [_core._fma_peak(nt, isa, args.seconds)["gflops"] for _ in range(args.repeat)]
            best = max(runs)
            print(f"{isa:<8} {LANES[isa]:>5} {nt:>3} {best:>13.1f} {statistics.median(runs):>9.1f} "
                  f"{best / nt:>9.1f}")


if __name__ == "__main__":
    main()
