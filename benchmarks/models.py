#!/usr/bin/env python3
"""Time whole networks, cnncore against PyTorch in the same run with the same weights.

Each workload builds the network in PyTorch (``benchmarks/torch_models.py``, torchvision's
parameter names) and in cnncore, copies the weights by name, then times both alternately
(``--repeat`` rounds after warm-up calls; medians): an eval-mode forward under
``no_grad`` (after ``INFERENCE_WARMUP`` calls each, as a server runs: cnncore's ``auto``
settles its choices on the first calls with unchanged weights, timing the candidates where
its cost model cannot order them), or a training step (after ``TRAINING_WARMUP`` steps each:
its gradients' measured choices settle on the first steps) (forward, cross-entropy,
``zero_grad``, backward, SGD with momentum 0.9). ``ratio`` is torch_ms / cnncore_ms: above 1 means cnncore is faster.
``err`` is the largest difference of the two outputs (the first step's logits for
training) relative to the largest PyTorch output. ``*_MiB`` is the peak resident memory the
workload adds to its process (weights excluded: they exist before the measurement
starts), measured in a fresh child process per library (``/proc/self/clear_refs`` resets
the peak, ``VmHWM`` reads it).

``--profile`` prints, for cnncore, where each workload's time goes: per op, pass and
problem, ms per step, GFLOP/s and the share of the FMA peak measured in the same run.

    python3 benchmarks/models.py                          # every workload, 1 and 2 threads
    python3 benchmarks/models.py --only resnet18_fwd_b1_224 --threads 2
    python3 benchmarks/models.py --only resnet18_train_b16_112 --profile --threads 1
    python3 benchmarks/models.py --no-memory --repeat 5
"""
import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

import cnncore as cc
from cnncore import functional as F
from _bench import parse_list, parse_only, print_environment, print_header, rel_err, threads_restored

try:
    import torch
    import torch_models
except ImportError:
    torch = None

# name, model, batch, input (C, H, W), classes, training step?
WORKLOADS = [
    ("resnet18_fwd_b1_224", "resnet18", 1, (3, 224, 224), 1000, False),
    ("resnet18_train_b16_112", "resnet18", 16, (3, 112, 112), 1000, True),
    ("resnet18_train_b32_32", "resnet18", 32, (3, 32, 32), 10, True),
    ("vgg16_fwd_b1_224", "vgg16", 1, (3, 224, 224), 1000, False),
    ("googlenet_fwd_b1_224", "googlenet", 1, (3, 224, 224), 1000, False),
    ("alexnet_fwd_b8_224", "alexnet", 8, (3, 224, 224), 1000, False),
    ("lenet5_train_b64", "lenet5", 64, (1, 32, 32), 10, True),
]
LR, MOMENTUM = 0.01, 0.9
# warm-up calls of an inference workload: weights seen unchanged twice are cached, then
# auto's measured choice takes three trials per candidate, up to three candidates
# (cpp/src/ops/conv_measure.hpp)
INFERENCE_WARMUP = 13
# and of a training workload: the gradients' measured choices (up to nine trial steps)
TRAINING_WARMUP = 11


def build(workload, seed=0):
    """The torch model, the cnncore model with its weights, an input batch and labels."""
    _, model, batch, shape, classes, train = workload
    torch.manual_seed(seed)
    tm = torch_models.BUILDERS[model](num_classes=classes)
    with cc.nn.init.skip_init():
        cm = cc.models.get_model(model, num_classes=classes)
    result = cm.load_state_dict(tm.state_dict())
    assert not result.missing_keys and not result.unexpected_keys, result
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, *shape), dtype=np.float32)
    y = rng.integers(0, classes, batch)
    tm.train(train)
    cm.train(train)
    return tm, cm, x, y


def steppers(workload, tm, cm, x, y):
    """(cnncore step, torch step): each returns the output logits as a NumPy array."""
    train = workload[5]
    xc, yc = cc.tensor(x), cc.tensor(y)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    if not train:
        def ours():
            with cc.no_grad():
                return cm(xc).numpy()

        def rival():
            with torch.no_grad():
                return tm(xt).numpy()
        return ours, rival
    opt_c = cc.optim.SGD(cm.parameters(), lr=LR, momentum=MOMENTUM)
    opt_t = torch.optim.SGD(tm.parameters(), lr=LR, momentum=MOMENTUM)

    def ours():
        out = cm(xc)
        loss = F.cross_entropy(out, yc)
        opt_c.zero_grad()
        loss.backward()
        opt_c.step()
        return out.numpy()

    def rival():
        out = tm(xt)
        loss = torch.nn.functional.cross_entropy(out, yt)
        opt_t.zero_grad()
        loss.backward()
        opt_t.step()
        return out.detach().numpy()
    return ours, rival


def time_alternating(ours, rival, repeat, budget, warmup=1):
    """Medians (ms) of ours() and rival() called in turns after `warmup` calls each; the
    first calls' results are returned for the error check (same weights on both sides). A
    short sleep between calls lets each library's OpenMP workers stop spinning."""
    a, b = ours(), rival()
    for _ in range(warmup - 1):
        ours()
        rival()
    ta, tb = [], []
    t_start = time.perf_counter()
    for i in range(repeat):
        for fn, times in ((ours, ta), (rival, tb)) if i % 2 == 0 else ((rival, tb), (ours, ta)):
            time.sleep(0.01)
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        if i >= 2 and time.perf_counter() - t_start > budget:
            break
    return 1e3 * statistics.median(ta), 1e3 * statistics.median(tb), a, b


# ---- peak memory, in a child process per side -------------------------------------------

def _rss_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def memory_child(name, side, threads, steps=2):
    """Run in a fresh interpreter: the peak resident memory (MiB) `steps` calls of one
    side of workload `name` add to the process after its model exists."""
    workload = next(w for w in WORKLOADS if w[0] == name)
    cc.set_num_threads(threads)
    torch.set_num_threads(threads)
    tm, cm, x, y = build(workload)
    ours, rival = steppers(workload, tm, cm, x, y)
    fn = ours if side == "cnncore" else rival
    if side == "cnncore":
        del tm
    else:
        del cm
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current resident size
    except OSError:
        return None
    base = _rss_kib("VmRSS")
    for _ in range(steps):
        fn()
    return (_rss_kib("VmHWM") - base) / 1024


def measure_memory(name, side, threads):
    env = dict(os.environ)
    here = os.path.dirname(os.path.abspath(__file__))
    env["PYTHONPATH"] = here + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--memory-child",
                           json.dumps([name, side, threads])], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        return None
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", default=f"1,{os.cpu_count() or 1}")
    ap.add_argument("--only", default="", help="comma-separated workload names")
    ap.add_argument("--repeat", type=int, default=9, help="timed rounds per workload (median)")
    ap.add_argument("--budget", type=float, default=20.0,
                    help="seconds per workload and thread count after which rounds stop (at least 3)")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory children")
    ap.add_argument("--profile", action="store_true", help="per-op profile of cnncore instead")
    ap.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.memory_child:
        name, side, threads = json.loads(args.memory_child)
        print(json.dumps(memory_child(name, side, threads)))
        return
    if torch is None:
        raise SystemExit("benchmarks/models.py needs PyTorch (the rival and the source of the weights)")
    workloads = WORKLOADS
    if args.only:
        names = parse_only(args.only, WORKLOADS, "workload")
        workloads = [w for w in WORKLOADS if w[0] in names]
    threads = sorted(set(parse_list(args.threads, "threads")))
    print_environment([f"torch {torch.__version__}"],
                      [f"repeat={args.repeat} (median, alternating)", f"budget={args.budget}s"])
    if args.profile:
        return profile(workloads, threads, args)
    print_header(f"{'workload':<24} {'thr':>3} {'cnncore_ms':>11} {'torch_ms':>10} {'ratio':>6} "
                 f"{'err':>8} {'cnncore_MiB':>11} {'torch_MiB':>10}")
    with threads_restored(torch):
        for w in workloads:
            for nt in threads:
                # fresh models per thread count: the error column compares the first
                # step's logits, from the same weights on both sides
                tm, cm, x, y = build(w)
                ours, rival = steppers(w, tm, cm, x, y)
                cc.set_num_threads(nt)
                torch.set_num_threads(nt)
                c_ms, t_ms, a, b = time_alternating(ours, rival, args.repeat, args.budget,
                                                    TRAINING_WARMUP if w[5] else INFERENCE_WARMUP)
                mem = ("-", "-")
                if not args.no_memory:
                    got = [measure_memory(w[0], side, nt) for side in ("cnncore", "torch")]
                    mem = tuple("?" if m is None else f"{m:.0f}" for m in got)
                print(f"{w[0]:<24} {nt:>3} {c_ms:>11.2f} {t_ms:>10.2f} {t_ms / c_ms:>6.2f} "
                      f"{rel_err(a, b):>8.1e} {mem[0]:>11} {mem[1]:>10}", flush=True)
                del tm, cm, ours, rival
                gc.collect()


def profile(workloads, threads, args):
    from _profile import CoreProfile
    from fma_peak import peak_gflops
    with threads_restored(torch):
        for nt in threads:
            cc.set_num_threads(nt)
            peak = peak_gflops(nt)
            for w in workloads:
                tm, cm, x, y = build(w)
                ours, _ = steppers(w, tm, cm, x, y)
                del tm
                for _ in range(TRAINING_WARMUP if w[5] else INFERENCE_WARMUP):  # warm-up, outside the profile
                    ours()
                prof = CoreProfile()
                with prof.installed():
                    t0 = time.perf_counter()
                    for i in range(args.repeat):
                        ours()
                        if i >= 2 and time.perf_counter() - t0 > args.budget:
                            break
                    prof.steps = i + 1
                    prof.wall = time.perf_counter() - t0
                print()
                print(f"{w[0]}  threads={nt}  {prof.steps} steps  peak {peak:.1f} GFLOP/s")
                for line in prof.table(peak):
                    print(line)
                del cm
                gc.collect()


if __name__ == "__main__":
    main()
