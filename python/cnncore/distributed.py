"""Data-parallel training over MPI (the optional extra ``pip install "cnncore[mpi]"``).

Start one process per worker with ``mpiexec -n N python train.py`` (or ``srun``
under Slurm); each process calls :func:`init`, wraps its model in
:class:`DistributedDataParallel` and reads its own shard of the data through a
:class:`DistributedSampler`. After ``loss.backward()`` every rank holds the
gradient averaged over all ranks, so N ranks on batches of ``B`` step exactly
as one process would on the ``N*B`` images together (up to the order of
floating-point sums). ``docs/distributed.md`` has the details, the cost model
and how to run on a cluster.

The transport is `mpi4py <https://mpi4py.readthedocs.io>`_: NumPy buffers go to
MPI's collectives without copies through Python objects. mpi4py is imported
by :func:`init`, not by ``import cnncore``, so this module is importable (and
:func:`is_available` answers) without MPI installed.

Failure behaviour. Every collective here waits at most ``timeout`` seconds
(:func:`init`'s argument, or ``CNNCORE_DIST_TIMEOUT``, default 300) and then
raises :class:`DistributedError` naming the operation. After :func:`init` an
exception that escapes the script on any rank prints its traceback and aborts
the whole job (``MPI_Abort``), so one failing rank never leaves the others
waiting; a rank that dies is detected by the MPI launcher, which ends the job.
"""
import contextlib
import hashlib
import math
import os
import sys
import time

import numpy as np

from .nn.layers import _BatchNorm
from .nn.module import Module
from .tensor import Function, Tensor, is_grad_enabled, queue_callback

__all__ = [
    "DistributedError", "is_available", "is_initialized", "init", "rank", "world_size",
    "local_size", "barrier", "all_reduce", "broadcast", "all_gather", "abort",
    "DistributedDataParallel", "DistributedSampler", "SyncBatchNorm",
]


class DistributedError(RuntimeError):
    """A distributed operation failed: MPI missing, not initialised, a timeout, or ranks
    that disagree (model shapes, buffer sizes)."""


_INSTALL_HINT = ('cnncore.distributed needs mpi4py and an MPI runtime: pip install '
                 '"cnncore[mpi]" (mpi4py and the mpich wheel), or mpi4py built against the '
                 'MPI your cluster provides')

_state = {"comm": None, "timeout": 300.0, "MPI": None}

_OPS = ("sum", "mean", "max", "min", "prod")


def is_available():
    """Whether mpi4py (and so an MPI library) can be imported."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def is_initialized():
    return _state["comm"] is not None


def _timeout_arg(timeout):
    if timeout is None:
        text = os.environ.get("CNNCORE_DIST_TIMEOUT", "300")
        try:
            timeout = float(text)
        except ValueError:
            raise ValueError(f"CNNCORE_DIST_TIMEOUT must be a number of seconds, got "
                             f"{text!r}") from None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or \
            not timeout > 0 or not math.isfinite(timeout):
        raise ValueError(f"init: timeout must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


def init(comm=None, timeout=None, abort_on_exception=True):
    """Start MPI (once; later calls return the same communicator) and return the
    communicator: ``comm`` (an ``mpi4py.MPI.Comm``) or ``MPI.COMM_WORLD``.

    ``timeout`` bounds every collective of this module, in seconds. With
    ``abort_on_exception`` (the default) an uncaught exception on any rank aborts
    the whole job after printing its traceback, instead of leaving the other ranks
    waiting in their next collective.
    """
    timeout = _timeout_arg(timeout)
    if _state["comm"] is not None:
        _state["timeout"] = timeout
        return _state["comm"]
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise DistributedError(f"{_INSTALL_HINT} ({exc})") from None
    if comm is None:
        comm = MPI.COMM_WORLD
    elif not isinstance(comm, MPI.Comm):
        raise TypeError(f"init: comm must be an mpi4py.MPI.Comm, got {type(comm).__name__}")
    _state.update(comm=comm, timeout=timeout, MPI=MPI)
    if abort_on_exception and comm.Get_size() > 1:
        _install_excepthook(comm)
    return comm


def _install_excepthook(comm):
    previous = sys.excepthook

    def hook(kind, value, tb):
        previous(kind, value, tb)
        if not issubclass(kind, KeyboardInterrupt):
            sys.stderr.write(f"cnncore.distributed: rank {comm.Get_rank()} of "
                             f"{comm.Get_size()} raised {kind.__name__}; aborting the job\n")
        _abort_after_output(comm, 1)

    sys.excepthook = hook


def _abort_after_output(comm, code):
    """MPI_Abort, once the launcher has had a moment to forward what this rank printed
    (aborting tears the job down at once, and output still in its pipes is lost)."""
    sys.stdout.flush()
    sys.stderr.flush()
    time.sleep(0.5)
    comm.Abort(int(code))


def _comm(what):
    comm = _state["comm"]
    if comm is None:
        raise DistributedError(f"{what}: cnncore.distributed.init() has not been called")
    return comm


def rank():
    """This process's index, 0 .. world_size() - 1."""
    return _comm("rank").Get_rank()


def world_size():
    return _comm("world_size").Get_size()


def local_size():
    """How many ranks share this machine (for choosing threads per rank)."""
    comm = _comm("local_size")
    MPI = _state["MPI"]
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        return node.Get_size()
    finally:
        node.Free()


def abort(message, code=1):
    """Print ``message`` (prefixed by the rank) on stderr and end every rank of the job."""
    comm = _comm("abort")
    sys.stdout.flush()
    sys.stderr.write(f"cnncore.distributed: rank {comm.Get_rank()}: {message}\n")
    _abort_after_output(comm, code)


def _wait(request, what):
    """Complete a non-blocking MPI request within the timeout. The first second polls
    without pause, as MPI's own blocking wait does: a large message moves in many
    pipelined pieces, each needing this side's progress, so sleeping between polls
    would cut the bandwidth. Longer waits (a slower rank) sleep up to 1 ms a poll."""
    if request.Test():
        return
    start = time.monotonic()
    deadline = start + _state["timeout"]
    pause = 0.0
    while True:
        for _ in range(64):
            if request.Test():
                return
        now = time.monotonic()
        if now > deadline:
            raise DistributedError(
                f"{what}: no answer from the other ranks after {_state['timeout']:g} s (a rank "
                f"died, hangs, or runs a different sequence of collectives); raise the limit "
                f"with init(timeout=...) or CNNCORE_DIST_TIMEOUT")
        if now - start > 1.0:
            pause = min(1e-3, max(pause * 2, 2e-5))
            time.sleep(pause)


def _buffer(array, what):
    data = array.data if isinstance(array, Tensor) else array
    if not isinstance(data, np.ndarray):
        raise TypeError(f"{what}: expected a NumPy array or Tensor, got {type(array).__name__}")
    if not data.flags.c_contiguous or not data.flags.writeable:
        raise ValueError(f"{what}: the array must be C-contiguous and writeable (it is "
                         f"reduced in place); pass np.ascontiguousarray(a)")
    if data.dtype.kind not in "fiub":
        raise TypeError(f"{what}: dtype {data.dtype} cannot be reduced")
    return data


def _mpi_op(op, what):
    if op not in _OPS:
        raise ValueError(f"{what}: op must be one of {', '.join(_OPS)}, got {op!r}")
    MPI = _state["MPI"]
    return {"sum": MPI.SUM, "mean": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN,
            "prod": MPI.PROD}[op]


def all_reduce(array, op="sum"):
    """Reduce ``array`` (an ndarray or Tensor) element-wise over all ranks, in place, and
    return it: ``op`` is "sum", "mean", "max", "min" or "prod"."""
    comm = _comm("all_reduce")
    data = _buffer(array, "all_reduce")
    mop = _mpi_op(op, "all_reduce")
    if op == "mean" and data.dtype.kind != "f":
        raise TypeError(f"all_reduce: op='mean' needs a floating-point array, got {data.dtype}")
    _wait(comm.Iallreduce(_state["MPI"].IN_PLACE, data, op=mop), f"all_reduce({op})")
    if op == "mean":
        data /= comm.Get_size()
    return array


def broadcast(array, root=0):
    """Overwrite ``array`` on every rank with rank ``root``'s, in place; return it."""
    comm = _comm("broadcast")
    size = comm.Get_size()
    if isinstance(root, bool) or not isinstance(root, (int, np.integer)) or \
            not 0 <= root < size:
        raise ValueError(f"broadcast: root must be a rank in [0, {size}), got {root!r}")
    data = _buffer(array, "broadcast")
    _wait(comm.Ibcast(data, root=int(root)), "broadcast")
    return array


def all_gather(array):
    """Every rank's ``array`` (same shape and dtype on all), stacked: shape (world, ...)."""
    comm = _comm("all_gather")
    data = np.ascontiguousarray(array.data if isinstance(array, Tensor) else array)
    out = np.empty((comm.Get_size(),) + data.shape, data.dtype)
    _wait(comm.Iallgather(data, out), "all_gather")
    return out


def barrier():
    """Wait until every rank has arrived (within the timeout)."""
    _wait(_comm("barrier").Ibarrier(), "barrier")


def _gather_objects(obj, what):
    """Every rank's picklable ``obj`` as a list: sizes first, then the bytes, both with the
    timeout."""
    import pickle
    payload = np.frombuffer(pickle.dumps(obj), np.uint8)
    sizes = all_gather(np.array([payload.size], np.int64))[:, 0]
    out = np.zeros((len(sizes), int(sizes.max())), np.uint8)
    mine = np.zeros(out.shape[1], np.uint8)
    mine[:payload.size] = payload
    comm = _comm(what)
    _wait(comm.Iallgather(mine, out), what)
    return [pickle.loads(out[i, :sizes[i]].tobytes()) for i in range(len(sizes))]


# ---------------------------------------------------------------------------
# DistributedDataParallel


class _Bucket:
    """A run of parameters (one dtype) whose gradients travel in one Allreduce. The
    buffer holds each gradient's elements, then one "used" flag per parameter (1 where
    this rank produced a gradient), so that one collective also tells which parameters
    had a gradient on any rank."""

    def __init__(self, params, dtype):
        self.params = params
        self.offsets = np.cumsum([0] + [p.data.size for p in params])
        n = int(self.offsets[-1])
        self.buffer = np.zeros(n + len(params), dtype)
        self.flags = self.buffer[n:]
        self.ready = [False] * len(params)
        self.pending = len(params)
        self.request = None

    def reset(self):
        self.ready = [False] * len(self.params)
        self.pending = len(self.params)
        self.request = None

    def put(self, i, grad):
        lo, hi = self.offsets[i], self.offsets[i + 1]
        if grad is None:
            self.buffer[lo:hi] = 0
            self.flags[i] = 0
        else:
            self.buffer[lo:hi] = grad.reshape(-1)
            self.flags[i] = 1
        self.ready[i] = True
        self.pending -= 1


class DistributedDataParallel(Module):
    """Wrap ``module`` so that ``backward()`` leaves on every rank the gradients averaged
    over all ranks (the PyTorch name and behaviour).

    At construction every rank checks that the models agree (names, shapes, dtypes:
    a :class:`DistributedError` names the first difference) and takes rank 0's
    parameters and buffers. Gradients are reduced in buckets of about
    ``bucket_cap_mb`` MB, in a fixed order of parameters (the reverse of registration,
    roughly the order backward produces them): a bucket's ``Allreduce`` starts as soon
    as its last gradient is accumulated, so communication overlaps the rest of the
    backward pass, and the pass ends by waiting for them all.

    ``broadcast_buffers`` (default True, as torch) copies rank 0's buffers (BatchNorm's
    running statistics) to every rank at each training forward; BatchNorm itself
    normalises with each rank's own batch statistics unless converted to
    :class:`SyncBatchNorm`. Inside :meth:`no_sync` gradients accumulate locally and
    the next backward outside it reduces the sum. Parameters that no rank gave a
    gradient keep ``grad`` unchanged. ``last_sync_seconds`` is how long the last backward
    pass spent, after its last gradient, finishing the reductions: the communication
    that the backward pass did not hide.
    """

    def __init__(self, module, bucket_cap_mb=4.0, broadcast_buffers=True):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: module must be a cnncore Module, got "
                            f"{type(module).__name__}")
        if isinstance(bucket_cap_mb, bool) or not isinstance(bucket_cap_mb, (int, float)) or \
                not bucket_cap_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be a positive "
                             f"number, got {bucket_cap_mb!r}")
        self.module = module
        comm = _comm("DistributedDataParallel")
        d = self.__dict__
        d["_comm"] = comm
        d["_world"] = comm.Get_size()
        d["broadcast_buffers"] = bool(broadcast_buffers)
        d["_sync"] = True
        d["_armed"] = False
        d["_queued"] = False
        d["last_sync_seconds"] = 0.0
        _check_same_model(module)
        _broadcast_arrays([t.data for _, t in _module_arrays(module)])
        params = [p for p in module.parameters() if p.requires_grad]
        d["_buckets"] = _make_buckets(params[::-1], int(bucket_cap_mb * 2 ** 20))
        d["_next"] = 0
        d["_handles"] = []
        for b_index, bucket in enumerate(self._buckets):
            for i, p in enumerate(bucket.params):
                d["_handles"].append(p.register_post_accumulate_grad_hook(
                    self._grad_ready_hook(b_index, i)))

    def forward(self, *args, **kwargs):
        if self.broadcast_buffers and self.training and self._world > 1:
            _broadcast_arrays([b.data for b in self.module.buffers()])
        self.__dict__["_armed"] = self._sync and is_grad_enabled()
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """Accumulate gradients locally (no communication) inside the block."""
        old = self._sync
        self.__dict__["_sync"] = False
        try:
            yield
        finally:
            self.__dict__["_sync"] = old

    # --- the reduction ---
    def _grad_ready_hook(self, b_index, i):
        def hook(p):
            if not self._armed:
                return
            if not self._queued:
                self.__dict__["_queued"] = True
                queue_callback(self._finish)
            bucket = self._buckets[b_index]
            if bucket.ready[i]:
                return              # the same leaf reached twice in one pass: keep the first
            bucket.put(i, p.grad.data)
            self._launch_ready()
        return hook

    def _launch(self, bucket):
        MPI = _state["MPI"]
        bucket.request = self._comm.Iallreduce(MPI.IN_PLACE, bucket.buffer, op=MPI.SUM)

    def _launch_ready(self):
        """Start the buckets whose gradients are all in, strictly in bucket order (every
        rank must issue the collectives in the same order)."""
        d = self.__dict__
        while d["_next"] < len(self._buckets) and self._buckets[d["_next"]].pending == 0:
            self._launch(self._buckets[d["_next"]])
            d["_next"] += 1
        for b in self._buckets[:d["_next"]]:
            if b.request is not None:
                b.request.Test()     # lets MPI progress the transfers already started

    def _finish(self):
        d = self.__dict__
        d["_armed"] = d["_queued"] = False
        t0 = time.perf_counter()
        try:
            for bucket in self._buckets:
                for i, p in enumerate(bucket.params):
                    if not bucket.ready[i]:
                        bucket.put(i, None if p.grad is None else p.grad.data)
            self._launch_ready()
            scale = 1.0 / self._world
            for k, bucket in enumerate(self._buckets):
                _wait(bucket.request, f"DistributedDataParallel: gradient bucket {k}")
                for i, p in enumerate(bucket.params):
                    if bucket.flags[i] == 0:
                        continue
                    lo, hi = bucket.offsets[i], bucket.offsets[i + 1]
                    g = bucket.buffer[lo:hi] * scale
                    p.grad = Tensor(g.reshape(p.data.shape))
        finally:
            for bucket in self._buckets:
                bucket.reset()
            d["_next"] = 0
            d["last_sync_seconds"] = time.perf_counter() - t0

    # --- passing through ---
    def state_dict(self, prefix=""):
        """The wrapped module's state dict (no ``module.`` prefix), so checkpoints load into
        the bare model."""
        return self.module.state_dict(prefix)

    def load_state_dict(self, state_dict, strict=True):
        return self.module.load_state_dict(state_dict, strict)

    def extra_repr(self):
        return f"world_size={self._world}, buckets={len(self._buckets)}"


def _module_arrays(module):
    """(name, tensor) of every parameter and buffer, in a stable order."""
    out = [(n, p) for n, p in module.named_parameters()]
    out += [(n, b) for n, b in module.named_buffers()]
    return out


def _broadcast_arrays(arrays):
    """Rank 0's values into ``arrays`` on every rank: one Bcast per dtype, packed."""
    by_dtype = {}
    for a in arrays:
        by_dtype.setdefault(a.dtype.str, []).append(a)
    for group in by_dtype.values():
        packed = np.concatenate([a.reshape(-1) for a in group])
        broadcast(packed, 0)
        at = 0
        for a in group:
            a[...] = packed[at:at + a.size].reshape(a.shape)
            at += a.size


def _check_same_model(module):
    """Every rank has the same parameter and buffer names, shapes and dtypes."""
    desc = [(n, tuple(t.data.shape), str(t.data.dtype)) for n, t in _module_arrays(module)]
    digest = np.frombuffer(hashlib.sha256(repr(desc).encode()).digest(), np.uint8)
    digests = all_gather(digest)
    if (digests == digests[0]).all():
        return
    everyone = _gather_objects(desc, "DistributedDataParallel: comparing models")
    me = rank()
    for r, other in enumerate(everyone):
        if other == desc:
            continue
        names = dict((n, (s, d)) for n, s, d in other)
        mine = dict((n, (s, d)) for n, s, d in desc)
        for n in list(mine) + [n for n in names if n not in mine]:
            if mine.get(n) != names.get(n):
                raise DistributedError(
                    f"DistributedDataParallel: the models differ between ranks {me} and {r}: "
                    f"{n!r} is {_describe(mine.get(n))} on rank {me} and "
                    f"{_describe(names.get(n))} on rank {r} (every rank must build the same "
                    f"model)")
        raise DistributedError(f"DistributedDataParallel: ranks {me} and {r} register the "
                               f"same arrays in a different order")
    raise DistributedError("DistributedDataParallel: the models differ between ranks (rank "
                           f"{me}'s matches the others; see their messages)")


def _describe(entry):
    if entry is None:
        return "absent"
    shape, dtype = entry
    return f"shape {shape} {dtype}"


def _make_buckets(params, cap_bytes):
    buckets, run, run_bytes = [], [], 0
    for p in params:
        nbytes = p.data.nbytes
        if run and (p.data.dtype != run[0].data.dtype or run_bytes + nbytes > cap_bytes):
            buckets.append(_Bucket(run, run[0].data.dtype))
            run, run_bytes = [], 0
        run.append(p)
        run_bytes += nbytes
    if run:
        buckets.append(_Bucket(run, run[0].data.dtype))
    return buckets


# ---------------------------------------------------------------------------
# DistributedSampler


class DistributedSampler:
    """The indices of one rank's shard of ``dataset``, for ``DataLoader(sampler=...)``.

    Every epoch the ``len(dataset)`` indices are (with ``shuffle``) permuted by a
    generator seeded with ``seed + epoch`` — the same on every rank, so the shards are
    disjoint — then dealt round-robin: rank ``r`` takes positions ``r, r + N, ...``.
    Without ``drop_last`` the list is first padded with its own beginning to a multiple
    of N (a few samples appear twice); with it the tail that does not divide is dropped.
    Call :meth:`set_epoch` at the start of each epoch for a new order, as in PyTorch.
    ``num_replicas`` and ``rank`` default to :func:`world_size` and :func:`rank`.
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0,
                 drop_last=False):
        if num_replicas is None:
            num_replicas = world_size()
        if rank is None:
            rank = _comm("DistributedSampler").Get_rank()
        for name, v in (("num_replicas", num_replicas), ("rank", rank), ("seed", seed)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"DistributedSampler: {name} must be an integer, got "
                                f"{type(v).__name__}")
        if num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be >= 1, got "
                             f"{num_replicas}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: rank must be in [0, {num_replicas}), got "
                             f"{rank}")
        self.dataset, self.num_replicas, self.rank = dataset, int(num_replicas), int(rank)
        self.shuffle, self.seed, self.drop_last = bool(shuffle), int(seed), bool(drop_last)
        self.epoch = 0
        n = len(dataset)
        if self.drop_last:
            self.num_samples = n // self.num_replicas
        else:
            self.num_samples = -(-n // self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

    def __len__(self):
        return self.num_samples

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            order = np.random.default_rng(self.seed + self.epoch).permutation(n)
        else:
            order = np.arange(n)
        if self.total_size > n:
            reps = -(-self.total_size // max(n, 1))
            order = np.tile(order, reps)
        order = order[:self.total_size]
        return iter(order[self.rank::self.num_replicas].tolist())


# ---------------------------------------------------------------------------
# SyncBatchNorm


class _SyncBatchNormFn(Function):
    # saves: the normalised input, 1/std, the weight and the global element count
    def forward(self, x, weight, bias, kw):
        axes = (0,) + tuple(range(2, x.ndim))
        c = x.shape[1]
        shape = (1, c) + (1,) * (x.ndim - 2)
        n_local = x.size // c if c else 0
        if n_local:          # float64 accumulators; float32 data stays float32
            mean_local = x.mean(axis=axes, dtype=np.float64)
            d = x - mean_local.astype(x.dtype).reshape(shape)
            m2_local = np.square(d).sum(axis=axes, dtype=np.float64)
            # the shift by a rounded mean is exact to first order: correct M2 for it
            m2_local -= n_local * (d.mean(axis=axes, dtype=np.float64)) ** 2
        else:
            mean_local, m2_local = np.zeros(c), np.zeros(c)
        # one Allgather of (count, mean, M2) per rank, combined as Chan et al. do: exact
        # and stable, unlike sums of squares
        stats = all_gather(np.concatenate([[float(n_local)], mean_local, m2_local]))
        counts = stats[:, 0]
        total = counts.sum()
        if total <= 1:
            raise ValueError(f"SyncBatchNorm: expected more than 1 value per channel over all "
                             f"ranks when training, got {int(total)}")
        means, m2s = stats[:, 1:1 + c], stats[:, 1 + c:]
        mean = (counts[:, None] * means).sum(0) / total
        m2 = (m2s + counts[:, None] * (means - mean) ** 2).sum(0)
        var = m2 / total
        invstd = 1.0 / np.sqrt(var + kw["eps"])
        xhat = ((x - mean.reshape(shape)) * invstd.reshape(shape)).astype(x.dtype, copy=False)
        rm, rv, momentum = kw["running_mean"], kw["running_var"], kw["momentum"]
        if rm is not None:
            rm *= 1 - momentum
            rm += (momentum * mean).astype(rm.dtype)
            rv *= 1 - momentum
            rv += (momentum * m2 / (total - 1)).astype(rv.dtype)
        self.xhat, self.invstd, self.total, self.weight = xhat, invstd, total, weight
        self.shape, self.axes = shape, axes
        y = xhat
        if weight is not None:
            y = y * weight.reshape(shape)
        if bias is not None:
            y = y + bias.reshape(shape)
        return y.astype(x.dtype, copy=False)

    def backward(self, grad):
        shape, axes = self.shape, self.axes
        xhat = self.xhat.astype(np.float64, copy=False)
        g = grad.astype(np.float64, copy=False)
        c = grad.shape[1]
        local = np.concatenate([g.sum(axis=axes), (g * xhat).sum(axis=axes)]) if grad.size \
            else np.zeros(2 * c)
        sums = local.copy()
        all_reduce(sums, "sum")
        sum_dy, sum_dy_xhat = sums[:c], sums[c:]
        w = np.ones(c) if self.weight is None else self.weight.astype(np.float64)
        scale = (w * self.invstd).reshape(shape)
        gx = scale * (g - (sum_dy / self.total).reshape(shape)
                      - xhat * (sum_dy_xhat / self.total).reshape(shape))
        nw, nb = self.needs_input_grad[1], self.needs_input_grad[2]
        # the weight and bias gradients stay per rank: DistributedDataParallel averages them
        gw = local[c:].astype(grad.dtype) if nw else None
        gb = local[:c].astype(grad.dtype) if nb else None
        return gx.astype(grad.dtype), gw, gb


class SyncBatchNorm(_BatchNorm):
    """Batch normalisation whose training statistics (mean and variance per channel)
    are those of the whole global batch, across every rank: 2 ranks x B images then
    normalise exactly as one process with 2B would. Costs one Allgather in the forward
    pass and one Allreduce in the backward pass per layer. In eval mode it is plain
    BatchNorm with the running statistics. Build one directly, or convert a model's
    BatchNorm layers with :meth:`convert_sync_batchnorm`.
    """
    _ranks = (2, 3, 4, 5)

    def forward(self, x):
        if not self.training and self.track_running_stats:
            return super().forward(x)
        name = type(self).__name__
        if x.ndim not in self._ranks:
            raise ValueError(f"{name}: expected a 2- to 5-D input, got shape {tuple(x.shape)}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{name}: expected {self.num_features} channels (dimension 1), "
                             f"got input of shape {tuple(x.shape)}")
        momentum = 0.0 if self.momentum is None else self.momentum
        update = self.training and self.track_running_stats
        if update:
            self.num_batches_tracked.data += 1
            if self.momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked.data)
        kw = dict(eps=self.eps, momentum=momentum,
                  running_mean=self.running_mean.data if update else None,
                  running_var=self.running_var.data if update else None)
        return _SyncBatchNormFn.apply(x, self.weight, self.bias, kw=kw)

    @classmethod
    def convert_sync_batchnorm(cls, module):
        """``module`` with every BatchNorm1d/2d/3d replaced by a SyncBatchNorm holding the
        same parameters and running statistics (returns the new root when ``module``
        itself is a BatchNorm)."""
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            new = cls.__new__(cls)
            Module.__init__(new)
            for k in ("num_features", "eps", "momentum", "affine", "track_running_stats"):
                setattr(new, k, getattr(module, k))
            for name, p in module._parameters.items():
                new.register_parameter(name, p)
            for name, b in module._buffers.items():
                new.register_buffer(name, b)
            new.train(module.training)
            return new
        for name, child in list(module._modules.items()):
            if child is not None:
                converted = cls.convert_sync_batchnorm(child)
                if converted is not child:
                    module.add_module(name, converted)
        if hasattr(module, "_seq"):
            module.__dict__["_seq"] = None
        return module
