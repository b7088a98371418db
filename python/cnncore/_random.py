"""The package-wide random generator: parameter initialisation, dropout seeds,
shuffling and augmentation draw from it unless given a generator of their own.

``cnncore.manual_seed(s)`` makes everything that follows reproducible.
"""
import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed):
    """Reseed the package-wide generator (and return it)."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def resolve(generator=None):
    """``generator`` if given (a Generator or an int seed), else the package-wide one."""
    if generator is None:
        return _generator
    if isinstance(generator, np.random.Generator):
        return generator
    return np.random.default_rng(generator)
