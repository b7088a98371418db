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
    order instead; it excludes ``shuffle``. Data sets with ``get_batch(indices)`` (e.g. :class:`~cnncore.data.ArrayDataset`) are
    sliced as whole batches; others are read item by item and stacked.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None,
                 generator=None, sampler=None):
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
        get_batch = getattr(self.dataset, "get_batch", None)
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            if self.drop_last and idx.size < self.batch_size:
                break
            if get_batch is not None:
                x, y = get_batch(idx)
            else:
                items = [self.dataset[int(i)] for i in idx]
                x = np.stack([np.asarray(a) for a, _ in items])
                y = np.asarray([b for _, b in items])
            yield Tensor(np.ascontiguousarray(x)), Tensor(np.asarray(y))
