#!/usr/bin/env python3
"""Data-parallel scaling on this machine: training throughput by ranks x threads, and
the loopback Allreduce's latency and bandwidth (docs/distributed.md uses both).

Part 1, images/s of a training step (forward, cross-entropy, backward, SGD with
momentum) at a fixed global batch, for
  1 rank x 1 thread, 1 rank x 2 threads (plain cnncore, no MPI), and
  2 ranks x 1 thread (``mpiexec -n 2``, DistributedDataParallel, half the batch each).
``sync ms`` is the communication the backward pass left exposed (DDP's
``last_sync_seconds`` on the rank that waited least, so not the other's lateness).
Each configuration runs in a fresh process, the configurations in turn for ``--rounds``
rounds; an entry is the median step over all rounds (after warm-up steps), and a
2-rank step is the slower rank's. ``vs 1x1`` is the throughput over 1 rank x 1 thread.

Part 2, the Allreduce of float32 buffers from 1 KB to 100 MB between 2 ranks: median
time, the algorithm bandwidth (bytes / time) and the bus bandwidth (x 2(N-1)/N, what
each rank sends and receives in a ring), for mpi4py's blocking ``Allreduce`` and for
``cnncore.distributed.all_reduce`` (non-blocking with a timeout, polled).

    python3 benchmarks/distributed.py                     # both parts
    python3 benchmarks/distributed.py --part allreduce    # only part 2
    python3 benchmarks/distributed.py --json out.json
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

NETS = {   # name: (constructor, keywords, global batch, input shape)
    "lenet5": ("lenet5", {}, 64, (1, 32, 32)),
    "resnet18": ("resnet18", {"num_classes": 10}, 16, (3, 112, 112)),
    "resnet50": ("resnet50", {"num_classes": 10}, 16, (3, 112, 112)),
}


def _step_times(net, steps, warmup, world, rank, distributed):
    import cnncore as cc
    from cnncore import functional as F
    from cnncore import models
    name, kw, batch, shape = NETS[net]
    cc.manual_seed(0)
    model = models.get_model(name, **kw)
    if distributed:
        import cnncore.distributed as dist
        model = dist.DistributedDataParallel(model)
    opt = cc.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(rank)
    local = batch // world
    x = cc.Tensor(rng.standard_normal((local,) + shape).astype(np.float32))
    y = cc.Tensor(rng.integers(0, 10, local))
    times, syncs = [], []
    for i in range(warmup + steps):
        if distributed:
            dist.barrier()
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        t = time.perf_counter() - t0
        sync = model.last_sync_seconds if distributed else 0.0
        if distributed:
            # the step ends when the slower rank's does; the rank that waited least in the
            # reduction measures the communication itself, not the other's lateness
            t, neg_sync = dist.all_reduce(np.array([t, -sync]), "max").tolist()
            sync = -neg_sync
        if i >= warmup:
            times.append(t)
            syncs.append(sync)
    return times, syncs


def _allreduce_times(sizes, repeat):
    import cnncore.distributed as dist
    comm = dist.init()
    from mpi4py import MPI
    out = []
    for nbytes in sizes:
        buf = np.ones(max(nbytes // 4, 1), np.float32)
        reps = max(3, min(repeat, int(2e8 // max(nbytes, 1))))
        raw, ours = [], []
        for _ in range(reps):                 # the two ways alternate
            comm.Barrier()
            t0 = time.perf_counter()
            comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
            raw.append(time.perf_counter() - t0)
            comm.Barrier()
            t0 = time.perf_counter()
            dist.all_reduce(buf, "sum")
            ours.append(time.perf_counter() - t0)
            buf[:] = 1
        out.append(dict(bytes=buf.nbytes, mpi4py_s=statistics.median(raw),
                        cnncore_s=statistics.median(ours)))
    return out


def _worker(args):
    """What a child process runs; prints one JSON line."""
    import cnncore as cc
    cc.set_num_threads(args.threads)
    if args.worker == "steps":
        world, rank = 1, 0
        if args.distributed:
            import cnncore.distributed as dist
            dist.init()
            world, rank = dist.world_size(), dist.rank()
        times = _step_times(args.net, args.steps, args.warmup, world, rank, args.distributed)
        if rank == 0:
            print(json.dumps(times))
    else:
        result = _allreduce_times([int(s) for s in args.sizes.split(",")], args.repeat)
        import cnncore.distributed as dist
        if dist.rank() == 0:
            print(json.dumps(result))


def _run(cmd, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), HERE]))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _mpiexec():
    exe = shutil.which("mpiexec")
    if exe is None:
        raise SystemExit("mpiexec not found: pip install 'cnncore[mpi]'")
    return exe


CONFIGS = [("1 rank x 1 thread", 1, 1), ("1 rank x 2 threads", 1, 2),
           ("2 ranks x 1 thread", 2, 1)]


def part_steps(args):
    me = [sys.executable, os.path.abspath(__file__)]
    rows = []
    for net in args.nets.split(","):
        _, _, batch, shape = NETS[net]
        samples = {c[0]: ([], []) for c in CONFIGS}
        for _ in range(args.rounds):
            for label, ranks, threads in CONFIGS:
                cmd = me + ["--worker", "steps", "--net", net, "--threads", str(threads),
                            "--steps", str(args.steps), "--warmup", str(args.warmup)]
                if ranks > 1:
                    cmd = [_mpiexec(), "-n", str(ranks)] + cmd + ["--distributed"]
                times, syncs = _run(cmd, threads)
                samples[label][0].extend(times)
                samples[label][1].extend(syncs)
        base = statistics.median(samples[CONFIGS[0][0]][0])
        print(f"\n{net}, global batch {batch} x {shape}, SGD momentum step")
        print(f"{'configuration':22s} {'ms/step':>9s} {'images/s':>9s} {'vs 1x1':>7s} "
              f"{'sync ms':>8s}")
        for label, ranks, threads in CONFIGS:
            t = statistics.median(samples[label][0])
            sync = statistics.median(samples[label][1])
            print(f"{label:22s} {1e3 * t:9.1f} {batch / t:9.1f} {base / t:7.2f} "
                  f"{1e3 * sync:8.1f}")
            rows.append(dict(net=net, batch=batch, config=label, ranks=ranks, threads=threads,
                             step_s=t, sync_s=sync, images_per_s=batch / t,
                             samples=samples[label][0]))
    return rows


def part_allreduce(args):
    sizes = [2 ** 10, 10 * 2 ** 10, 100 * 2 ** 10, 2 ** 20, 10 * 2 ** 20, 100 * 2 ** 20]
    cmd = [_mpiexec(), "-n", "2", sys.executable, os.path.abspath(__file__), "--worker",
           "allreduce", "--sizes", ",".join(map(str, sizes)), "--repeat", str(args.repeat)]
    rows = _run(cmd, 1)
    print("\nAllreduce (sum, float32) between 2 ranks on loopback")
    print(f"{'bytes':>10s} {'mpi4py us':>10s} {'cnncore us':>11s} {'algbw GB/s':>11s} "
          f"{'busbw GB/s':>11s}")
    n = 2
    for r in rows:
        t = r["mpi4py_s"]
        r["algbw_GBps"] = r["bytes"] / t / 1e9
        r["busbw_GBps"] = r["algbw_GBps"] * 2 * (n - 1) / n
        print(f"{r['bytes']:10d} {1e6 * t:10.1f} {1e6 * r['cnncore_s']:11.1f} "
              f"{r['algbw_GBps']:11.2f} {r['busbw_GBps']:11.2f}")
    return rows


LINKS = [("10 Gbit/s", 1.25e9, 30e-6), ("100 Gbit/s", 12.5e9, 5e-6)]   # bandwidth, latency
BUCKET = 4 * 2 ** 20


def ring_allreduce_s(nbytes, n, bandwidth, latency):
    """Ring all-reduce: 2(N-1) steps, each moving 1/N of every bucket; per bucket a
    latency per step."""
    if n == 1:
        return 0.0
    buckets = -(-nbytes // BUCKET)
    return 2 * (n - 1) / n * nbytes / bandwidth + 2 * (n - 1) * latency * buckets


def part_model(args, steps_rows):
    """Predicted weak-scaling efficiency (per-machine batch fixed) on N machines."""
    from cnncore import models
    step = {r["net"]: r["step_s"] for r in steps_rows if r["config"] == "1 rank x 2 threads"}
    nets = [n for n in ("resnet18", "resnet50") if n in step]
    if not nets:
        return []
    rows = []
    for net in nets:
        name, kw, batch, shape = NETS[net]
        nbytes = 4 * models.get_model(name, **kw).num_parameters()
        for speed in (1, 10):
            tc = step[net] / speed
            print(f"\n{net}: {nbytes / 1e6:.1f} MB of gradients, compute {1e3 * tc:.0f} ms a "
                  f"step per machine ({'this machine' if speed == 1 else 'a machine 10x faster'}"
                  f"); efficiency = T_compute / (T_compute + exposed all-reduce)")
            head = " ".join(f"{f'N={n}':>7s}" for n in (2, 4, 8, 16, 32, 64))
            print(f"{'link':24s} {head}")
            for link, bw, lat in LINKS:
                for overlap in (False, True):
                    effs = []
                    for n in (2, 4, 8, 16, 32, 64):
                        t = ring_allreduce_s(nbytes, n, bw, lat)
                        # with overlap, the backward pass (about 2/3 of a step) hides all
                        # but the last bucket's share
                        exposed = max(t * BUCKET / nbytes, t - 2 / 3 * tc) if overlap else t
                        effs.append(tc / (tc + exposed))
                        rows.append(dict(net=net, speed=speed, link=link, overlap=overlap,
                                         n=n, allreduce_s=t, efficiency=effs[-1]))
                    label = f"{link}, {'overlapped' if overlap else 'no overlap'}"
                    print(f"{label:24s} " + " ".join(f"{100 * e:6.1f}%" for e in effs))
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--part", choices=["all", "steps", "allreduce"], default="all",
                   help="'all' also prints the cost model's predictions from the measured steps")
    p.add_argument("--nets", default="lenet5,resnet18")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeat", type=int, default=50, help="Allreduce repetitions per size")
    p.add_argument("--json", metavar="PATH")
    # internal: what the child processes run
    p.add_argument("--worker", choices=["steps", "allreduce"], help=argparse.SUPPRESS)
    p.add_argument("--net", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--distributed", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--sizes", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        _worker(args)
        return
    import cnncore as cc
    print(f"cnncore {cc.__version__} on {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores")
    out = {}
    if args.part in ("all", "steps"):
        out["steps"] = part_steps(args)
    if args.part in ("all", "allreduce"):
        out["allreduce"] = part_allreduce(args)
    if args.part == "all":
        out["model"] = part_model(args, out["steps"])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
