#!/usr/bin/env python3
"""Time one LeNet-5 training step (batch 64): cnncore against PyTorch, same run.

A step is forward, cross-entropy, ``zero_grad``, backward and an optimiser
update, on the same network in both libraries: the classic LeNet-5 (conv 5x5
-> 2x2 average pool -> sigmoid, twice; 400 -> 120 -> 84 -> 10 with sigmoids)
on 1 x 32 x 32 inputs, and its ReLU / max-pool variant (``modern``). Weights
are copied from the torch model into the cnncore one, so both start equal;
the first steps' losses are compared as a check that the same thing is timed.

Each entry is the median over ``--repeat`` rounds of ``--steps`` steps after a
warm-up. ``ratio`` is torch_ms / cnncore_ms: above 1 means cnncore is faster.
``overhead`` is the share of the cnncore step spent outside the C++ kernels
(Python: autograd bookkeeping, argument checks, the NumPy optimiser update).

    python3 benchmarks/train_step.py                  # 1 and 2 threads, both variants
    python3 benchmarks/train_step.py --threads 1 --steps 20 --repeat 5
"""
import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np

import cnncore as cc
from cnncore import functional as F

try:
    import torch
except ImportError:  # cnncore is still timed alone
    torch = None


def torch_lenet(modern):
    tnn = torch.nn
    act = tnn.ReLU if modern else tnn.Sigmoid
    pool = tnn.MaxPool2d if modern else tnn.AvgPool2d
    return tnn.Sequential(
        tnn.Conv2d(1, 6, 5), pool(2), act(), tnn.Conv2d(6, 16, 5), pool(2), act(),
        tnn.Flatten(), tnn.Linear(400, 120), act(), tnn.Linear(120, 84), act(),
        tnn.Linear(84, 10))


def copy_into(cm, tm):
    """Copy torch LeNet weights (Sequential indices) into cnncore's LeNet5 names."""
    tw = [m for m in tm if hasattr(m, "weight")]
    cw = [m for m in cm.modules() if isinstance(m, (cc.nn.Conv2d, cc.nn.Linear))]
    for c, t in zip(cw, tw):
        c.weight.data[...] = t.weight.detach().numpy()
        c.bias.data[...] = t.bias.detach().numpy()


def time_steps(step, steps, repeat):
    step()
    step()
    rounds = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        rounds.append((time.perf_counter() - t0) / steps * 1e3)
    return statistics.median(rounds)


def kernel_share(step, steps):
    """Fraction of a cnncore step's time spent inside cnncore._core calls."""
    core = cc._core
    spent = [0.0]
    originals = {}
    for name in dir(core):
        fn = getattr(core, name)
        if callable(fn) and not name.startswith("_") and name.endswith(("forward", "backward")):
            def wrap(*a, _fn=fn, **k):
                t = time.perf_counter()
                try:
                    return _fn(*a, **k)
                finally:
                    spent[0] += time.perf_counter() - t
            originals[name] = fn
            setattr(core, name, wrap)
    try:
        step()
        spent[0] = 0.0
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        total = time.perf_counter() - t0
    finally:
        for name, fn in originals.items():
            setattr(core, name, fn)
    return spent[0] / total


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--optimizer", default="adam", choices=["adam", "sgd"])
    args = ap.parse_args(argv)

    rng = np.random.default_rng(0)
    x_np = rng.random((args.batch, 1, 32, 32), dtype=np.float32)
    y_np = rng.integers(0, 10, args.batch)
    print(f"LeNet-5 training step, batch {args.batch}, {args.optimizer}; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; cnncore "
          f"{cc.__version__} ({cc.get_isa()}), "
          f"torch {torch.__version__ if torch else 'not installed'}")
    print(f"{'variant':8} {'threads':>7} {'cnncore ms':>11} {'torch ms':>9} {'ratio':>6} "
          f"{'overhead':>9}  loss check")
    for modern in (False, True):
        for threads in [int(t) for t in args.threads.split(",")]:
            cc.set_num_threads(threads)
            cc.manual_seed(0)
            cm = cc.models.lenet5(modern=modern)
            tm = None
            if torch is not None:
                torch.set_num_threads(threads)
                torch.manual_seed(0)
                tm = torch_lenet(modern)
                copy_into(cm, tm)
            x, y = cc.tensor(x_np), cc.tensor(y_np)
            make = (lambda ps: cc.optim.Adam(ps, lr=1e-3)) if args.optimizer == "adam" else \
                (lambda ps: cc.optim.SGD(ps, lr=0.01, momentum=0.9))
            opt = make(cm.parameters())
            losses = []

            def step():
                loss = F.cross_entropy(cm(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(float(loss.data))

            step()
            first_c = losses[0]
            ms_c = time_steps(step, args.steps, args.repeat)
            share = kernel_share(step, args.steps)
            ms_t, check = float("nan"), "-"
            if tm is not None:
                tx, ty = torch.from_numpy(x_np), torch.from_numpy(y_np)
                topt = torch.optim.Adam(tm.parameters(), lr=1e-3) if args.optimizer == "adam" \
                    else torch.optim.SGD(tm.parameters(), lr=0.01, momentum=0.9)
                tlosses = []

                def tstep():
                    loss = torch.nn.functional.cross_entropy(tm(tx), ty)
                    topt.zero_grad()
                    loss.backward()
                    topt.step()
                    tlosses.append(float(loss.detach()))

                tstep()
                check = f"first loss {first_c:.5f} vs {tlosses[0]:.5f}"
                ms_t = time_steps(tstep, args.steps, args.repeat)
            name = "modern" if modern else "classic"
            print(f"{name:8} {threads:7d} {ms_c:11.2f} {ms_t:9.2f} {ms_t / ms_c:6.2f} "
                  f"{100 * (1 - share):8.0f}%  {check}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
