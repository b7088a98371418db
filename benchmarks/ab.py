"""A/B of two or more builds of cnncore's core on one workload: each build runs in its own
persistent process, and the processes take turns, one call each (the order reversed every
round), so that the machine's slow drifts fall on every build alike; medians and minima per
build, and each median's ratio to the first build's.

    python3 benchmarks/ab.py --workload step --args resnet18_train_b16_112 1 -- old.so new.so
    python3 benchmarks/ab.py --workload conv --args 16 512 4 512 fwd winograd2 1 -- old.so new.so

A build is a `_core` extension module file (e.g. a copy of python/cnncore/_core*.so made before
a change); the rest of the package comes from python/cnncore. Workloads:

* ``step NAME THREADS``: one step (training or inference) of a benchmarks/models.py workload;
* ``conv N C H K PASS ALGORITHM THREADS``: one 3x3 stride-1 convolution (PASS fwd, data or
  weight), three weight sets in turn, each changed before its call as training's are.

Between a process's calls the others run theirs, so caches hold what a real step leaves in
them rather than the last call's data.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE = os.path.join(os.path.dirname(HERE), "python", "cnncore")


def make_workload(kind, args):
    """The callable one turn runs."""
    import numpy as np
    import cnncore as cc
    if kind == "step":
        sys.path.insert(0, HERE)
        import models as M
        name, threads = args[0], int(args[1])
        cc.set_num_threads(threads)
        found = [w for w in M.WORKLOADS if w[0] == name]
        if not found:
            raise SystemExit(f"unknown workload {name!r}; models.py has {[w[0] for w in M.WORKLOADS]}")
        tm, cm, x, y = M.build(found[0])
        ours, _ = M.steppers(found[0], tm, cm, x, y)
        del tm
        return ours
    if kind == "conv":
        from cnncore import ops
        N, C, H, K = map(int, args[:4])
        which, algorithm, threads = args[4], args[5], int(args[6])
        if which not in ("fwd", "data", "weight"):
            raise SystemExit(f"PASS must be fwd, data or weight, not {which!r}")
        cc.set_num_threads(threads)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((N, C, H, H)).astype(np.float32)
        ws = [(rng.standard_normal((K, C, 3, 3)) * 0.05).astype(np.float32) for _ in range(3)]
        gy = rng.standard_normal((N, K, H, H)).astype(np.float32)
        turn = [0]

        def call():
            w = ws[turn[0] % 3]
            turn[0] += 1
            w += 1e-7
            if which == "fwd":
                ops.conv2d(x, w, padding=1, algorithm=algorithm)
            else:
                ops.conv2d_backward(gy, x, w, padding=1, bias=False, algorithm=algorithm,
                                    input_grad=which == "data", weight_grad=which == "weight")
        return call
    raise SystemExit(f"unknown workload kind {kind!r} (step or conv)")


def worker(kind, args):
    """One build's process: a call per line read, its milliseconds written back."""
    fn = make_workload(kind, args)
    for _ in range(3):
        fn()
    print("ready", flush=True)
    for _ in sys.stdin:
        t0 = time.perf_counter()
        fn()
        print(f"{(time.perf_counter() - t0) * 1e3:.4f}", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workload", default="step", help="step or conv")
    ap.add_argument("--args", nargs="+", required=True, help="the workload's arguments")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("builds", nargs="*", help="_core extension files to compare")
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args.workload, args.args)
    if len(args.builds) < 2:
        raise SystemExit("give two or more builds (_core extension files) after --")
    for b in args.builds:
        if not os.path.isfile(b):
            raise SystemExit(f"no such build: {b}")
    if args.rounds < 1:
        raise SystemExit(f"--rounds must be positive, not {args.rounds}")
    root = tempfile.mkdtemp(prefix="cnncore-ab-")
    procs = []
    try:
        for i, build in enumerate(args.builds):
            pkg = os.path.join(root, str(i), "cnncore")
            shutil.copytree(PACKAGE, pkg, ignore=shutil.ignore_patterns("_core*.so", "__pycache__"))
            shutil.copy(build, os.path.join(pkg, "_core" + _suffix()))
            env = dict(os.environ, PYTHONPATH=os.path.join(root, str(i)))
            env.setdefault("OPENBLAS_NUM_THREADS", "1")
            procs.append(subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--worker", "--workload", args.workload, "--args",
                 *args.args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env))
        for p in procs:
            if p.stdout.readline().strip() != "ready":
                raise SystemExit("a build's process failed to start its workload")
        times = [[] for _ in procs]
        for r in range(args.rounds):
            order = range(len(procs)) if r % 2 == 0 else reversed(range(len(procs)))
            for i in order:
                procs[i].stdin.write("go\n")
                procs[i].stdin.flush()
                times[i].append(float(procs[i].stdout.readline()))
    finally:
        for p in procs:
            if p.stdin:
                p.stdin.close()
            p.wait()
        shutil.rmtree(root, ignore_errors=True)
    base = statistics.median(times[0])
    print(f"{args.workload} {' '.join(args.args)}: {args.rounds} rounds, alternating")
    print(f"{'build':<40} {'median_ms':>10} {'min_ms':>10} {'ratio':>7}")
    for build, t in zip(args.builds, times):
        med = statistics.median(t)
        print(f"{os.path.basename(build):<40} {med:>10.3f} {min(t):>10.3f} {med / base:>7.3f}")


def _suffix():
    import sysconfig
    return sysconfig.get_config_var("EXT_SUFFIX") or ".so"


if __name__ == "__main__":
    main()
