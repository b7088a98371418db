"""What each rank runs in tests/test_distributed.py (``mpiexec -n 2 python mpi_worker.py
SCENARIO OUT [key=value ...]``, with the test's cnncore on PYTHONPATH); ``run_steps`` is also
the one-process reference the test compares with."""
import json
import os
import signal
import sys
import time

import numpy as np

import cnncore as cc
from cnncore import functional as F
from cnncore import nn

GLOBAL_BATCH = 8


def make_model(dtype, batchnorm, seed=0, wide=4):
    cc.manual_seed(seed)
    # a convolution before batch norm has no bias: its gradient would be rounding noise
    # (batch norm cancels it), which Adam scales up to full steps
    layers = [nn.Conv2d(1, wide, 3, padding=1, bias=not batchnorm, dtype=dtype)]
    if batchnorm:
        layers.append(nn.BatchNorm2d(wide, dtype=dtype))
    layers += [nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(wide * 16, 3, dtype=dtype)]
    return nn.Sequential(*layers)


def make_data(dtype, steps):
    rng = np.random.default_rng(123)
    x = rng.standard_normal((steps, GLOBAL_BATCH, 1, 8, 8)).astype(dtype)
    y = rng.integers(0, 3, (steps, GLOBAL_BATCH))
    return x, y


def make_optimizer(name, params):
    if name == "sgd":
        return cc.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-3)
    return cc.optim.Adam(params, lr=0.01)


def run_steps(dtype, optimizer, batchnorm, steps, world=1, rank=0, wrap=None):
    """Train ``steps`` steps; rank ``rank`` of ``world`` takes samples rank, rank + world, ...
    of each global batch. ``wrap`` turns the model into its distributed form."""
    dtype = np.dtype(dtype)
    model = make_model(dtype, batchnorm)
    if wrap is not None:
        model = wrap(model)
    opt = make_optimizer(optimizer, model.parameters())
    xs, ys = make_data(dtype, steps)
    for s in range(steps):
        x = cc.Tensor(np.ascontiguousarray(xs[s, rank::world]))
        y = cc.Tensor(ys[s, rank::world])
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {k: v.data.copy() for k, v in model.state_dict().items()}


def main():
    scenario, out = sys.argv[1], sys.argv[2]
    opts = dict(a.split("=", 1) for a in sys.argv[3:])
    import cnncore.distributed as dist
    dist.init(timeout=float(opts.get("timeout_s", 60)))
    rank, world = dist.rank(), dist.world_size()
    cc.set_num_threads(1)
    if scenario == "equal":
        sync = opts.get("syncbn") == "1"

        def wrap(m):
            if sync:
                m = dist.SyncBatchNorm.convert_sync_batchnorm(m)
            return dist.DistributedDataParallel(m, bucket_cap_mb=float(opts.get("bucket", 4)))
        state = run_steps(opts["dtype"], opts["opt"], opts.get("bn") == "1",
                          int(opts["steps"]), world, rank, wrap)
        np.savez(os.path.join(out, f"rank{rank}.npz"), **state)
    elif scenario == "sampler":
        n = int(opts["n"])
        sampler = dist.DistributedSampler(list(range(n)), shuffle=True, seed=7,
                                          drop_last=opts.get("drop_last") == "1")
        epochs = {}
        for epoch in range(3):
            sampler.set_epoch(epoch)
            epochs[epoch] = list(sampler)
        with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
            json.dump(epochs, f)
    elif scenario == "errors":            # argument checks, and the collectives' results
        found = {}
        for label, call in [
                ("op", lambda: dist.all_reduce(np.zeros(2), "avg")),
                ("strided", lambda: dist.all_reduce(np.zeros((2, 2))[:, 0])),
                ("dtype", lambda: dist.all_reduce(np.array(["a"]))),
                ("mean-int", lambda: dist.all_reduce(np.zeros(2, np.int64), "mean")),
                ("root", lambda: dist.broadcast(np.zeros(2), root=world)),
                ("list", lambda: dist.all_reduce([1.0, 2.0])),
                ("ddp", lambda: dist.DistributedDataParallel(make_model(np.float32, False),
                                                             bucket_cap_mb=0))]:
            try:
                call()
                found[label] = "no error"
            except (TypeError, ValueError) as exc:
                found[label] = f"{type(exc).__name__}: {exc}"
        found["mean"] = dist.all_reduce(np.array([float(rank), 10.0]), "mean").tolist()
        found["max"] = dist.all_reduce(np.array([rank]), "max").tolist()
        found["bcast"] = dist.broadcast(np.array([rank + 5.0]), root=1).tolist()
        found["gather"] = dist.all_gather(np.array([rank])).tolist()
        dist.barrier()
        with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
            json.dump(found, f)
    elif scenario == "mismatch":
        model = make_model(np.float32, False, wide=4 if rank == 0 else 5)
        try:
            dist.DistributedDataParallel(model)
        except dist.DistributedError as exc:    # (a file each: printed lines interleave)
            with open(os.path.join(out, f"rank{rank}.txt"), "w") as f:
                f.write(f"rank {rank} refused: {exc}")
    elif scenario in ("raise", "kill", "hang"):
        model = dist.DistributedDataParallel(make_model(np.float32, False))
        opt = make_optimizer("sgd", model.parameters())
        xs, ys = make_data(np.float32, 50)
        for s in range(50):
            if s == 2 and rank == 1:
                if scenario == "raise":
                    raise ValueError("rank 1 failed on purpose")
                if scenario == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                time.sleep(600)
            loss = F.cross_entropy(model(cc.Tensor(xs[s, rank::world])),
                                   cc.Tensor(ys[s, rank::world]))
            opt.zero_grad()
            loss.backward()
            opt.step()
        print("finished", flush=True)
    else:
        raise SystemExit(f"unknown scenario {scenario}")


if __name__ == "__main__":
    main()
