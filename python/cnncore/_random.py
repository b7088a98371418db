"""The package-wide random generator: parameter initialisation, dropout seeds,
shuffling and augmentation draw from it unless given a generator of their own.

``cnncore.manual_seed(s)`` makes everything that follows reproducible.
"""
import threading

import numpy as np

_generator = np.random.default_rng()
_local = threading.local()      # a DataLoader worker thread's own generator (see using())


def manual_seed(seed):
    """Reseed the package-wide generator (and return it)."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def resolve(generator=None):
    """``generator`` if given (a Generator or an int seed), else the package-wide one."""
    if generator is None:
        own = getattr(_local, "generator", None)
        return _generator if own is None else own
    if isinstance(generator, np.random.Generator):
        return generator
    return np.random.default_rng(generator)


class using:
    """``with using(rng):`` — code on this thread that would draw from the package-wide
    generator draws from ``rng`` instead (DataLoader workers: each batch its own seed, so
    the batches do not depend on which thread ran first)."""

    def __init__(self, rng):
        self.rng = rng

    def __enter__(self):
        self.prev = getattr(_local, "generator", None)
        _local.generator = self.rng
        return self.rng

    def __exit__(self, *exc):
        _local.generator = self.prev
        return False
