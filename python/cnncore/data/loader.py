"""``DataLoader``: batches from a data set, optionally shuffled with a seed."""
import numpy as np

from .. import _random
from ..tensor import Tensor

__all__ = ["DataLoader"]


class DataLoader:
    """Iterate over ``dataset`` in batches of ``(images, labels)`` Tensors.

    ``shuffle=True`` draws a new order every epoch from ``seed`` (or
    ``generator``, or the package-wide generator), so a fixed seed gives the
    same sequence of epochs. ``drop_last`` drops a final short batch. Data sets
    with ``get_batch(indices)`` (e.g. :class:`~cnncore.data.ArrayDataset`) are
    sliced as whole batches; others are read item by item and stacked.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None,
                 generator=None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size <= 0:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, got "
                             f"{batch_size!r}")
        self.dataset, self.batch_size = dataset, int(batch_size)
        self.shuffle, self.drop_last = shuffle, drop_last
        self.rng = np.random.default_rng(seed) if seed is not None else (
            None if generator is None else _random.resolve(generator))

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        n = len(self.dataset)
        order = _random.resolve(self.rng).permutation(n) if self.shuffle else np.arange(n)
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
