#!/usr/bin/env python3
"""Time the README's training loop (LeNet-5 on the bundled digits, batch 32, Adam) with the
machine idle and with other CPU-bound processes running, under several OpenMP wait policies.

Each measurement runs the loop for ``--steps`` steps in a fresh child interpreter (the
OpenMP runtime reads its wait policy once, when it loads), so the settings do not leak into
each other; ``--hogs`` busy-looping processes share the CPUs while the contended rows run.
The ``cnncore default`` row is what a user gets without setting anything (cnncore sets
``OMP_WAIT_POLICY=passive`` itself: see docs/threads.md); the other rows set the
environment variable shown.

    python3 benchmarks/contention.py                 # idle and 2 hogs, every policy
    python3 benchmarks/contention.py --hogs 4 --steps 200
"""
import argparse
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time

CHILD = r"""
import sys, time
import numpy as np
import cnncore as cc
from cnncore import functional as F
cc.manual_seed(0)
steps, threads = int(sys.argv[1]), int(sys.argv[2])
cc.set_num_threads(threads)
model = cc.models.lenet5()
opt = cc.optim.Adam(model.parameters(), lr=5e-3)
train = cc.data.load_digits("train")
loader = cc.data.DataLoader(train, batch_size=32, shuffle=True, seed=0)
def run(n):
    done = 0
    while done < n:
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            done += 1
            if done == n:
                break
run(5)
t0 = time.perf_counter()
run(steps)
print(1e3 * (time.perf_counter() - t0) / steps)
"""

# label, environment additions (None: remove the variable), threads (0: all CPUs)
POLICIES = [
    ("cnncore default", {}, 0),
    ("OMP_WAIT_POLICY=active", {"OMP_WAIT_POLICY": "active"}, 0),
    ("GOMP_SPINCOUNT=3000 (a bounded spin)", {"GOMP_SPINCOUNT": "3000"}, 0),
    ("GOMP_SPINCOUNT=300000 (libgomp's own default)", {"GOMP_SPINCOUNT": "300000"}, 0),
    ("1 thread (cnncore default policy)", {}, 1),
]


def hog(stop):
    x = 0
    while not stop.is_set():
        for _ in range(100000):
            x += 1


def measure(steps, env_add, threads, repeat):
    env = dict(os.environ)
    for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "CNNCORE_SPIN_US"):
        env.pop(k, None)
    env.update(env_add)
    nt = threads or os.cpu_count() or 1
    runs = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", CHILD, str(steps), str(nt)], env=env,
                             capture_output=True, text=True, check=True)
        runs.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(runs)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=100, help="timed training steps per run")
    ap.add_argument("--hogs", type=int, default=2, help="CPU-bound processes in the contended rows")
    ap.add_argument("--repeat", type=int, default=3, help="runs per entry (median)")
    args = ap.parse_args(argv)
    import cnncore
    print(f"cnncore {cnncore.__version__}  isa={cnncore.get_isa()}  cpus={os.cpu_count()}  "
          f"steps={args.steps}  hogs={args.hogs}  repeat={args.repeat} (median)")
    header = f"{'policy':<48} {'idle ms/step':>13} {'loaded ms/step':>15} {'slowdown':>9}"
    print(header)
    print("-" * len(header))
    for label, env_add, threads in POLICIES:
        idle = measure(args.steps, env_add, threads, args.repeat)
        stop = mp.Event()
        hogs = [mp.Process(target=hog, args=(stop,), daemon=True) for _ in range(args.hogs)]
        for h in hogs:
            h.start()
        time.sleep(0.5)
        try:
            loaded = measure(args.steps, env_add, threads, args.repeat)
        finally:
            stop.set()
            for h in hogs:
                h.join()
        print(f"{label:<48} {idle:>13.2f} {loaded:>15.2f} {loaded / idle:>9.2f}")


if __name__ == "__main__":
    main()
