#!/usr/bin/env python3
"""Time FFT convolution (``ops.conv2d(..., algorithm="fft")``) and small-kernel direct
convolution against SciPy, in the same run.

Single-channel 256x256 images, true convolution (``padding="full", flip=True``), which is
exactly ``scipy.signal.convolve2d(x, w, "full")`` / ``scipy.signal.fftconvolve(x, w, "full")``:

* 31x31 kernel: cnncore ``fft`` and ``auto`` against ``scipy.signal.fftconvolve``, and
  cnncore ``fft`` against cnncore ``im2col`` (what FFT buys over the GEMM path);
* 3x3 and 5x5 kernels: cnncore ``direct`` and ``auto`` against ``scipy.signal.convolve2d``.

Each entry is the median of several timed calls after one warm-up call; cnncore and its
rival are called alternately, so load on a shared machine affects both alike.  ``ratio`` is
rival_ms / cnncore_ms: above 1 means the cnncore entry is faster.  ``err`` is the largest
difference from the rival's result relative to the rival's largest value.  cnncore's FFT
computes in float64 for both dtypes; SciPy's fftconvolve computes float32 input in float32.

    python3 benchmarks/fft.py                    # float64 and float32, 1 thread
    python3 benchmarks/fft.py --quick            # fewer repeats (smoke test)
    python3 benchmarks/fft.py --threads 1,2 --dtype float32
"""
import argparse
import sys

import numpy as np

import cnncore
from cnncore import ops
from _bench import (MIN_REPEAT, parse_list, print_environment, print_header, rel_err,
                    threads_restored, time_pair)

try:
    import scipy
    from scipy import signal
except ImportError:  # pragma: no cover - the benchmark needs SciPy as its rival
    raise SystemExit("benchmarks/fft.py needs scipy (pip install scipy)")

IMAGE = 256


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=11,
                    help="timed calls per measurement (median is reported; slow ones use "
                         "fewer, at least %d)" % MIN_REPEAT)
    ap.add_argument("--threads", default="1", help="comma-separated cnncore thread counts")
    ap.add_argument("--dtype", default="float64,float32", help="comma-separated dtypes")
    ap.add_argument("--quick", action="store_true", help="3 repeats, no im2col row (smoke test)")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        raise SystemExit("--repeat must be at least 1")
    threads = parse_list(args.threads, "threads")
    dtypes = [np.dtype(d) for d in parse_list(args.dtype, "dtype", str)]
    if any(d not in (np.float32, np.float64) for d in dtypes):
        raise SystemExit("--dtype: float32 and/or float64")
    repeat = 3 if args.quick else args.repeat

    print_environment([f"scipy {scipy.__version__}"],
                      [f"repeat={repeat} (median, after 1 warm-up)"])
    print_header(f"{'problem':<22} {'dtype':>7} {'thr':>3} {'cnncore':>8} {'ms':>9}  "
                 f"{'rival':<20} {'ms':>9} {'ratio':>7} {'err':>8}")

    rng = np.random.default_rng(0)
    with threads_restored():
        for dtype in dtypes:
            img = rng.standard_normal((IMAGE, IMAGE)).astype(dtype)
            for nt in threads:
                cnncore.set_num_threads(nt)
                for k in (31, 3, 5):
                    ker = rng.standard_normal((k, k)).astype(dtype)
                    x, w = img[None, None], ker[None, None]
                    prob = f"img{IMAGE}k{k}full_flip"

                    def ours(algo):
                        return lambda: ops.conv2d(x, w, padding="full", flip=True, algorithm=algo)[0, 0]

                    if k == 31:
                        scipy_fft = lambda: signal.fftconvolve(img, ker, "full")  # noqa: E731
                        fft_ms, y_fft, r_ms, ref = time_pair(ours("fft"), scipy_fft, repeat)
                        report(prob, dtype, nt, "fft", fft_ms, "scipy.fftconvolve", r_ms,
                               rel_err(y_fft, ref))
                        ms, y, r_ms, ref = time_pair(ours("auto"), scipy_fft, repeat)
                        report(prob, dtype, nt, "auto", ms, "scipy.fftconvolve", r_ms, rel_err(y, ref))
                        if not args.quick:
                            fft_ms, y_fft, ms, y = time_pair(ours("fft"), ours("im2col"), repeat)
                            report(prob, dtype, nt, "fft", fft_ms, "cnncore im2col", ms,
                                   rel_err(y_fft, y))
                    else:
                        scipy_direct = lambda: signal.convolve2d(img, ker, "full")  # noqa: E731
                        for algo in ("direct", "auto"):
                            ms, y, r_ms, ref = time_pair(ours(algo), scipy_direct, repeat)
                            report(prob, dtype, nt, algo, ms, "scipy.convolve2d", r_ms, rel_err(y, ref))
                    sys.stdout.flush()
    return 0


def report(prob, dtype, nt, algo, ms, rival, rival_ms, err):
    ratio = rival_ms / ms if ms > 0 else float("inf")
    print(f"{prob:<22} {str(dtype):>7} {nt:>3} {algo:>8} {ms:>9.3f}  {rival:<20} {rival_ms:>9.3f} "
          f"{ratio:>7.2f} {err:>8.1e}")


if __name__ == "__main__":
    sys.exit(main())
