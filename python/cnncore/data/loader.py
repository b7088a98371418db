"""``DataLoader``: batches from a data set, optionally shuffled with a seed."""
import numpy as np

from .. import _random
from ..tensor import Tensor

__all__ = ["DataLoader"]


class DataLoader:
    """Iterate over ``dataset`` in batches of ``(images, labels)`` Tensors.

    ``shuffle=True`` draws a new order every epoch from ``seed`` (or
    ``generator``, or the package-wide generator), so a fixed seed gives the
    same sequence of epochs. ``drop_last`` drops a final short batch. A
    ``sampler`` (an iterable of indices with a length, e.g.
    :class:`cnncore.distributed.DistributedSampler`) chooses the indices and their
    order instead; it excludes ``shuffle``. ``num_workers > 0`` prepares up to
    ``prefetch_factor * num_workers`` batches ahead on that many threads (reading files and
    the NumPy transforms release the GIL for much of their work); batches still arrive in
    order, and each batch's random transforms draw from its own generator, seeded in order
    from the loader's, so the result does not depend on thread timing (it differs from
    ``num_workers=0``, whose transforms share one generator, as torch's workers do). Data sets with ``get_batch(indices)`` (e.g. :class:`~cnncore.data.ArrayDataset`) are
    sliced as whole batches; others are read item by item and stacked.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None,
                 generator=None, sampler=None, num_workers=0, prefetch_factor=2):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size <= 0:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, got "
                             f"{batch_size!r}")
        if sampler is not None:
            if shuffle:
                raise ValueError("DataLoader: sampler and shuffle=True exclude each other "
                                 "(the sampler decides the order)")
            if not hasattr(sampler, "__iter__") or not hasattr(sampler, "__len__"):
                raise TypeError(f"DataLoader: sampler must be an iterable of indices with a "
                                f"length, got {type(sampler).__name__}")
        for name, v, lo in (("num_workers", num_workers, 0), ("prefetch_factor",
                                                                prefetch_factor, 1)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise ValueError(f"DataLoader: {name} must be an integer >= {lo}, got {v!r}")
        self.num_workers, self.prefetch_factor = int(num_workers), int(prefetch_factor)
        self.sampler = sampler
        self.dataset, self.batch_size = dataset, int(batch_size)
        self.shuffle, self.drop_last = shuffle, drop_last
        self.rng = np.random.default_rng(seed) if seed is not None else (
            None if generator is None else _random.resolve(generator))

    def __len__(self):
        n = len(self.dataset) if self.sampler is None else len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        if self.sampler is not None:
            order = np.fromiter(iter(self.sampler), np.int64)
        else:
            n = len(self.dataset)
            order = _random.resolve(self.rng).permutation(n) if self.shuffle else np.arange(n)
        n = order.size
        chunks = [order[s:s + self.batch_size] for s in range(0, n, self.batch_size)]
        if self.drop_last and chunks and chunks[-1].size < self.batch_size:
            chunks.pop()
        if self.num_workers == 0:
            for idx in chunks:
                yield self._batch(idx)
            return
        yield from self._prefetched(chunks)

    def _batch(self, idx):
        get_batch = getattr(self.dataset, "get_batch", None)
        if get_batch is not None:
            x, y = get_batch(idx)
        else:
            items = [self.dataset[int(i)] for i in idx]
            x = np.stack([np.asarray(a) for a, _ in items])
            y = np.asarray([b for _, b in items])
        return Tensor(np.ascontiguousarray(x)), Tensor(np.asarray(y))

    def _seeded_batch(self, idx, seed):
        with _random.using(np.random.default_rng(seed)):
            return self._batch(idx)

    def _prefetched(self, chunks):
        import collections
        from concurrent.futures import ThreadPoolExecutor
        seeds = _random.resolve(self.rng).integers(0, 2**63 - 1, size=len(chunks))
        ahead = self.prefetch_factor * self.num_workers
        with ThreadPoolExecutor(self.num_workers, thread_name_prefix="cnncore-loader") as pool:
            pending = collections.deque()
            try:
                for i, idx in enumerate(chunks):
                    pending.append(pool.submit(self._seeded_batch, idx, seeds[i]))
                    if len(pending) >= ahead:
                        yield pending.popleft().result()
                while pending:
                    yield pending.popleft().result()
            finally:
                for f in pending:           # the loop was left early: drop the rest
                    f.cancel()
