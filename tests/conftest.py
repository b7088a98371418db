"""Shared test configuration.

Hypothesis profiles: ``default`` is small so the whole suite stays fast;
``thorough`` (``CNNCORE_HYPOTHESIS_PROFILE=thorough``) draws many more cases.
"""
import os

# Uninitialised tensors start as NaN bytes in the tests (docs/DEVELOPING.md): a kernel that
# leaves part of its result unwritten then fails instead of passing on zeroed memory. Set
# before cnncore allocates anything; child processes inherit it.
os.environ.setdefault("CNNCORE_POISON_EMPTY", "1")

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# helpers.py holds assertions shared by the test modules: rewrite them as pytest does the
# modules' own, so that a failure shows the values compared.
pytest.register_assert_rewrite("helpers")

settings.register_profile(
    "default",
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("CNNCORE_HYPOTHESIS_PROFILE", "default"))


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
