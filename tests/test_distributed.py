"""cnncore.distributed: data-parallel training over MPI.

The MPI tests start their own ``mpiexec -n 2`` on loopback (tests/mpi_worker.py is what
each rank runs) and skip when mpi4py or mpiexec is missing; .ci/run installs both. The
rest (sampler arithmetic, hooks, errors before init) need no MPI.
"""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import cnncore as cc
import cnncore.distributed as dist
from cnncore import nn

HERE = os.path.dirname(os.path.abspath(__file__))
MPIEXEC = shutil.which("mpiexec")
HAVE_MPI = MPIEXEC is not None and importlib.util.find_spec("mpi4py") is not None
needs_mpi = pytest.mark.skipif(not HAVE_MPI, reason="needs mpi4py and mpiexec "
                               "(pip install 'cnncore[mpi]')")


def _env():
    env = dict(os.environ)
    pkg_parent = os.path.dirname(os.path.dirname(cc.__file__))   # the cnncore under test
    env["PYTHONPATH"] = os.pathsep.join([pkg_parent, HERE, env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    return env


def _mpiexec(args, timeout=120, n=2, check=True):
    cmd = [MPIEXEC, "-n", str(n)] + args
    t0 = time.monotonic()
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=timeout)
    proc.seconds = time.monotonic() - t0
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout}\n"
                             f"{proc.stderr}")
    return proc


def _worker(scenario, out, timeout=120, check=True, **opts):
    args = [sys.executable, os.path.join(HERE, "mpi_worker.py"), scenario, str(out)]
    args += [f"{k}={v}" for k, v in opts.items()]
    return _mpiexec(args, timeout=timeout, check=check)


# ---------------------------------------------------------------------------
# 2 ranks x half batch == 1 process x whole batch


@needs_mpi
@pytest.mark.parametrize("dtype,optimizer,bn,tol", [
    ("float64", "sgd", "none", 1e-12),
    ("float64", "adam", "sync", 1e-12),
    ("float64", "sgd", "sync", 1e-12),
    ("float32", "adam", "none", 1e-5),
    ("float32", "sgd", "sync", 1e-5),
])
def test_two_ranks_step_like_one_process(tmp_path, dtype, optimizer, bn, tol):
    import mpi_worker
    steps = 5
    # a tiny bucket cap: every parameter travels in its own Allreduce, in a fixed order
    _worker("equal", tmp_path, dtype=dtype, opt=optimizer, bn=int(bn != "none"),
            syncbn=int(bn == "sync"), steps=steps, bucket=1e-4 if optimizer == "sgd" else 4)
    ref = mpi_worker.run_steps(dtype, optimizer, bn != "none", steps)
    for r in (0, 1):
        got = np.load(tmp_path / f"rank{r}.npz")
        assert sorted(got.files) == sorted(ref)
        for k, v in ref.items():
            scale = max(float(np.abs(v).max()), 1e-30)
            err = float(np.abs(got[k] - v).max()) / scale
            assert err <= tol, f"rank {r} {k}: relative error {err:.2e} > {tol:g}"
    # and the run moved the weights: the comparison is not of two untouched models
    start = mpi_worker.run_steps(dtype, optimizer, bn != "none", 0)
    assert any(np.abs(ref[k] - start[k]).max() > 1e-3 for k in ref if k.endswith("weight"))


@needs_mpi
def test_per_rank_batchnorm_differs_from_one_process(tmp_path):
    """Plain BatchNorm normalises with each rank's own statistics (torch's default), so
    the result is not the one-process one: SyncBatchNorm is what makes it so."""
    import mpi_worker
    _worker("equal", tmp_path, dtype="float64", opt="sgd", bn=1, syncbn=0, steps=3)
    ref = mpi_worker.run_steps("float64", "sgd", True, 3)
    got = np.load(tmp_path / "rank0.npz")
    assert max(float(np.abs(got[k] - ref[k]).max()) for k in ref) > 1e-6


# ---------------------------------------------------------------------------
# DistributedSampler


@needs_mpi
@pytest.mark.parametrize("n,drop_last", [(20, 0), (21, 0), (21, 1)])
def test_sampler_shards_under_mpi(tmp_path, n, drop_last):
    _worker("sampler", tmp_path, n=n, drop_last=drop_last)
    shards = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for epoch in ("0", "1", "2"):
        a, b = shards[0][epoch], shards[1][epoch]
        assert len(a) == len(b)
        if n % 2 == 0 or drop_last:
            assert not set(a) & set(b)
            union = sorted(a + b)
            assert union == (list(range(n)) if not drop_last else sorted(set(union)))
            assert len(union) == (n if not drop_last else n - n % 2)
        else:                       # padded with one repeat to a multiple of 2
            assert sorted(set(a + b)) == list(range(n)) and len(a + b) == n + 1
    assert shards[0]["0"] != shards[0]["1"]          # a new order each epoch


@pytest.mark.parametrize("n,replicas,drop_last", [(10, 3, False), (10, 3, True), (9, 3, False),
                                                  (0, 2, False), (2, 4, False), (7, 1, False)])
def test_sampler_covers_every_sample_once_per_epoch(n, replicas, drop_last):
    data = list(range(n))
    for epoch in range(3):
        shards = []
        for r in range(replicas):
            s = dist.DistributedSampler(data, num_replicas=replicas, rank=r, seed=3,
                                        drop_last=drop_last)
            s.set_epoch(epoch)
            shards.append(list(s))
            assert len(shards[-1]) == len(s)
        flat = [i for sh in shards for i in sh]
        assert len({len(sh) for sh in shards}) <= 1
        if drop_last:
            assert len(flat) == len(set(flat)) == n - n % replicas
        else:
            assert set(flat) == set(range(n))
            assert len(flat) == -(-n // replicas) * replicas
            # every sample at least once; the padding adds fewer than `replicas` repeats
            # when there are at least as many samples as ranks
            if n >= replicas:
                assert len(flat) - n < replicas


def test_sampler_order_depends_on_seed_and_epoch_and_not_shuffled_is_strided():
    data = list(range(50))
    s = dist.DistributedSampler(data, num_replicas=2, rank=1, seed=0)
    first = list(s)
    assert list(s) == first                       # same epoch, same order
    s.set_epoch(1)
    assert list(s) != first
    other = dist.DistributedSampler(data, num_replicas=2, rank=1, seed=1)
    assert list(other) != first
    plain = dist.DistributedSampler(data, num_replicas=5, rank=2, shuffle=False)
    assert list(plain) == list(range(2, 50, 5))


def test_sampler_rejects_bad_arguments():
    with pytest.raises(ValueError, match="rank must be in"):
        dist.DistributedSampler(range(4), num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="num_replicas must be >= 1"):
        dist.DistributedSampler(range(4), num_replicas=0, rank=0)
    with pytest.raises(TypeError, match="rank must be an integer"):
        dist.DistributedSampler(range(4), num_replicas=2, rank=0.5)


def test_dataloader_takes_a_sampler():
    x = np.arange(12, dtype=np.float32).reshape(12, 1, 1, 1)
    ds = cc.data.ArrayDataset(x, np.arange(12))
    s = dist.DistributedSampler(ds, num_replicas=3, rank=1, shuffle=False)
    loader = cc.data.DataLoader(ds, batch_size=3, sampler=s)
    assert len(loader) == 2
    labels = [int(v) for _, y in loader for v in y.data]
    assert labels == [1, 4, 7, 10]
    with pytest.raises(ValueError, match="exclude each other"):
        cc.data.DataLoader(ds, batch_size=3, sampler=s, shuffle=True)
    with pytest.raises(TypeError, match="iterable of indices"):
        cc.data.DataLoader(ds, batch_size=3, sampler=3)


# ---------------------------------------------------------------------------
# errors and failure behaviour


def test_importable_without_mpi_and_clear_errors_before_init():
    code = ("import sys, cnncore.distributed as d; assert 'mpi4py' not in sys.modules; "
            "print(d.is_initialized())")
    out = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
    if not dist.is_initialized():
        with pytest.raises(dist.DistributedError, match=r"init\(\) has not been called"):
            dist.rank()
        with pytest.raises(dist.DistributedError, match="has not been called"):
            dist.DistributedDataParallel(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        dist.init(timeout=0)


def test_init_without_mpi4py_names_the_extra():
    code = ("import sys; sys.modules['mpi4py'] = None\n"
            "import cnncore.distributed as d\n"
            "try:\n    d.init()\nexcept d.DistributedError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert 'pip install "cnncore[mpi]"' in out.stdout


@needs_mpi
def test_collectives_check_their_arguments_and_compute(tmp_path):
    _worker("errors", tmp_path)
    for r in (0, 1):
        got = json.loads((tmp_path / f"rank{r}.json").read_text())
        assert got["op"].startswith("ValueError: all_reduce: op must be one of sum, mean")
        assert got["strided"].startswith("ValueError: all_reduce: the array must be "
                                         "C-contiguous and writeable")
        assert got["dtype"].startswith("TypeError: all_reduce: dtype <U1 cannot be reduced")
        assert got["mean-int"].startswith("TypeError: all_reduce: op='mean' needs a floating")
        assert got["root"].startswith("ValueError: broadcast: root must be a rank in [0, 2)")
        assert got["list"].startswith("TypeError: all_reduce: expected a NumPy array or "
                                      "Tensor, got list")
        assert got["ddp"].startswith("ValueError: DistributedDataParallel: bucket_cap_mb must "
                                     "be a positive number")
        assert got["mean"] == [0.5, 10.0] and got["max"] == [1]
        assert got["bcast"] == [6.0] and got["gather"] == [[0], [1]]


@needs_mpi
def test_mismatched_models_are_refused_on_every_rank(tmp_path):
    _worker("mismatch", tmp_path)
    for r in (0, 1):
        line = (tmp_path / f"rank{r}.txt").read_text()
        assert line.startswith(f"rank {r} refused") and "'0.weight'" in line and "(4, 1, 3, 3)" in line and "(5, 1, 3, 3)" in line


@needs_mpi
@pytest.mark.parametrize("scenario,needle", [
    ("raise", "rank 1 of 2 raised ValueError; aborting the job"),
    ("kill", "signal 9"),
    ("hang", "no answer from the other ranks after 3 s"),
])
def test_a_failing_rank_ends_the_job(tmp_path, scenario, needle):
    """A rank that raises, dies or hangs stops the whole job with a message, within a
    bounded time (here the collectives' timeout is 3 s; a hung job would hit 60 s)."""
    proc = _worker(scenario, tmp_path, timeout=60, check=False, timeout_s=3)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0, text
    assert needle in text, text
    assert "finished" not in proc.stdout
    assert proc.seconds < 30, f"took {proc.seconds:.1f} s"


# ---------------------------------------------------------------------------
# SyncBatchNorm without MPI peers: one rank is plain batch norm


def test_sync_batchnorm_conversion_keeps_state():
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3, momentum=0.3), nn.ReLU())
    model[1].running_mean.data[:] = [1, 2, 3]
    weight = model[1].weight
    model.eval()
    conv = dist.SyncBatchNorm.convert_sync_batchnorm(model)
    assert conv is model and type(model[1]) is dist.SyncBatchNorm
    assert model[1].weight is weight and model[1].momentum == 0.3
    assert not model[1].training
    np.testing.assert_array_equal(model[1].running_mean.data, [1, 2, 3])
    # in eval mode it is batch norm with the running statistics, and needs no MPI
    x = cc.Tensor(np.random.default_rng(0).standard_normal((2, 1, 5, 5)).astype(np.float32))
    ref = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU())
    ref.load_state_dict(model.state_dict())
    ref.eval()
    np.testing.assert_allclose(model(x).data, ref(x).data, rtol=1e-6)
    root = dist.SyncBatchNorm.convert_sync_batchnorm(nn.BatchNorm1d(4))
    assert type(root) is dist.SyncBatchNorm and root.num_features == 4
    assert list(model.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias",
                                        "1.running_mean", "1.running_var",
                                        "1.num_batches_tracked"]


# ---------------------------------------------------------------------------
# the command line


def _cli(tmp, *argv, n=2, check=True, timeout=300):
    args = [sys.executable, "-m", "cnncore", "train", "--distributed", "--no-progress",
            "--no-plot", "--out", str(tmp)] + list(argv)
    return _mpiexec(args, n=n, check=check, timeout=timeout)


@needs_mpi
def test_cli_distributed_training_reaches_the_one_process_accuracy(tmp_path, capsys):
    from cnncore import cli
    proc = _cli(tmp_path / "two", "--epochs", "15")
    # only rank 0 reports: one banner, one line per epoch, one closing line
    assert proc.stdout.count("cnncore train:") == 1 and "2 ranks x 1 thread" in proc.stdout
    assert proc.stdout.count("epoch  15/15") == 1 and proc.stdout.count("test accuracy") == 1
    two = json.loads((tmp_path / "two" / "report.json").read_text())
    assert cli.main(["train", "--epochs", "15", "--no-progress", "--no-plot",
                     "--out", str(tmp_path / "one")]) == 0
    capsys.readouterr()
    one = json.loads((tmp_path / "one" / "report.json").read_text())
    assert two["world_size"] == 2 and one["world_size"] == 1
    assert two["images_per_second"] > 0 and len(two["history"]) == 15
    assert one["test_accuracy"] >= 0.93 and two["test_accuracy"] >= 0.93, (one, two)
    assert abs(one["test_accuracy"] - two["test_accuracy"]) <= 0.03


@needs_mpi
def test_cli_distributed_resume_and_argument_errors(tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "d.npz"
    np.savez(data, x=rng.random((48, 1, 12, 12)).astype(np.float32), y=np.arange(48) % 3)
    net = ["--sync-bn", "--model", "resnet18", "--data", str(data), "--batch-size", "8"]
    _cli(tmp_path, "--epochs", "2", *net)
    ckpt = str(tmp_path / "checkpoint.safetensors")
    proc = _cli(tmp_path, "--epochs", "3", "--resume", ckpt, *net)
    assert "resuming after epoch 2" in proc.stdout and "epoch   3/3" in proc.stdout
    rep = json.loads((tmp_path / "report.json").read_text())
    assert [h["epoch"] for h in rep["history"]] == [1, 2, 3]
    assert rep["sync_batchnorm"] and rep["resumed_from_epoch"] == 2
    bad = _cli(tmp_path / "x", "--batch-size", "33", check=False, timeout=60)
    assert bad.returncode == 2
    assert "--batch-size 33 is the global batch and must divide among the 2 ranks" in bad.stderr
    # a failure on rank 0 only (its --out cannot be created) stops every rank cleanly
    (tmp_path / "file").write_text("")
    bad = _cli(tmp_path / "file" / "sub", "--epochs", "1", check=False, timeout=60)
    assert bad.returncode == 2, bad.stderr
    assert "cannot create the folder" in bad.stderr and "rank 0 could not start" in bad.stderr
