"""The host cache of freed tensor buffers (cpp/src/util/host_cache.cpp): big results
freed by NumPy wait for reuse up to a limit, so the next op of a similar size does not
fault in fresh pages; the limit, its errors, emptying it, and that a reused buffer
never shows its old values."""
import subprocess
import sys

import numpy as np
import pytest

import cnncore
from cnncore import ops

from helpers import child_env

BIG = (1, 64, 112, 112)  # 3.2 MB, as ResNet-18's stem output


@pytest.fixture
def cache_limit():
    old = cnncore.get_host_cache_limit()
    yield cnncore.set_host_cache_limit
    cnncore.set_host_cache_limit(old)


def test_a_freed_result_is_reused(cache_limit):
    cache_limit(64 << 20)
    cnncore.empty_host_cache()
    x = np.random.default_rng(0).standard_normal(BIG).astype(np.float32)
    y = ops.relu(x)
    address = y.__array_interface__["data"][0]
    del y
    assert cnncore.host_cache_bytes() >= x.nbytes
    z = ops.relu(x)
    assert z.__array_interface__["data"][0] == address
    assert cnncore.host_cache_bytes() == 0
    np.testing.assert_array_equal(z, np.maximum(x, 0))


def test_a_reused_buffer_holds_only_the_new_result(cache_limit):
    cache_limit(64 << 20)
    cnncore.empty_host_cache()
    y = ops.relu(np.full(BIG, 5.0, np.float32))
    address = y.__array_interface__["data"][0]
    del y
    z = ops.avg_pool2d(np.ones(BIG, np.float32), 2)  # a quarter of the size: not that block
    w = ops.relu(-np.ones(BIG, np.float32))
    assert w.__array_interface__["data"][0] == address  # the 5.0s' block, reused
    np.testing.assert_array_equal(w, 0)
    np.testing.assert_array_equal(z, 1)


def test_small_buffers_are_not_cached(cache_limit):
    cache_limit(64 << 20)
    cnncore.empty_host_cache()
    y = ops.relu(np.ones((16, 16), np.float32))
    del y
    assert cnncore.host_cache_bytes() == 0


def test_the_limit_bounds_what_is_kept(cache_limit):
    cache_limit(4 << 20)
    cnncore.empty_host_cache()
    xs = [ops.relu(np.ones(BIG, np.float32)) for _ in range(4)]  # 4 x 3.2 MB
    del xs
    assert 0 < cnncore.host_cache_bytes() <= 4 << 20
    cache_limit(0)  # off: frees what is held, keeps nothing
    assert cnncore.host_cache_bytes() == 0
    y = ops.relu(np.ones(BIG, np.float32))
    del y
    assert cnncore.host_cache_bytes() == 0
    assert cnncore.get_host_cache_limit() == 0


def test_empty_host_cache_frees_everything(cache_limit):
    cache_limit(64 << 20)
    y = ops.relu(np.ones(BIG, np.float32))
    del y
    assert cnncore.host_cache_bytes() > 0
    cnncore.empty_host_cache()
    assert cnncore.host_cache_bytes() == 0
    assert cnncore.get_host_cache_limit() == 64 << 20


def test_bad_limits_are_refused(cache_limit):
    with pytest.raises(ValueError, match=r"set_host_cache_limit: bytes must be >= 0, got -1"):
        cache_limit(-1)
    with pytest.raises(TypeError, match="set_host_cache_limit"):
        cache_limit(1.5)
    with pytest.raises(TypeError, match="set_host_cache_limit"):
        cache_limit("64")


def test_the_environment_sets_the_starting_limit():
    code = "import cnncore; print(cnncore.get_host_cache_limit())"
    for value, expected in (("8", 8 << 20), ("0", 0), ("", 64 << 20), ("lots", 64 << 20)):
        env = child_env()
        env["CNNCORE_HOST_CACHE_MB"] = value
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                             check=True).stdout
        assert int(out) == expected, (value, out)
