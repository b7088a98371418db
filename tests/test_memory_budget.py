"""The per-call memory budget (issue 8, finding 3): everything one op call allocates,
the copies of its non-contiguous or unaligned inputs, its workspace and its result, is
summed against cnncore.set_memory_limit, and the input copies are counted before any of
their pages is written, so a call that cannot fit fails before it touches memory."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import cnncore
from cnncore import ops

from helpers import child_env
from op_catalogue import CALLS, float_positions



@pytest.fixture
def limit():
    old = cnncore.get_memory_limit()
    yield cnncore.set_memory_limit
    cnncore.set_memory_limit(old)


def _strided(a):
    """The same values in a non-contiguous view (every other element of a buffer twice as big)."""
    if a.ndim == 0:
        return a
    buf = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    buf[..., ::2] = a
    v = buf[..., ::2]
    assert not v.flags.c_contiguous or a.shape[-1] <= 1
    return v


def _unaligned(a):
    buf = bytearray(a.nbytes + 1)
    u = np.frombuffer(buf, dtype=a.dtype, count=a.size, offset=1).reshape(a.shape)
    u[...] = a
    return u


def _fortran(a):
    return np.asfortranarray(a) if a.ndim else a  # (NumPy makes a 0-d array 1-d)


def _same(a, b):
    if isinstance(a, tuple) or isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif a is None:
        assert b is None
    else:
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("layout", [_strided, _unaligned, _fortran], ids=["strided", "unaligned", "fortran"])
@pytest.mark.parametrize("name", sorted(CALLS))
def test_every_op_gives_the_same_answer_for_any_input_layout(name, layout):
    # The copies of such inputs are made lazily (at the op's first memory check): a
    # kernel that read one before it was filled would see uninitialised memory.
    rng = np.random.default_rng(abs(hash(name)) % 2 ** 32)
    dtype = "f4" if hash(name) % 2 else "f8"
    fn, args, kwargs = CALLS[name](rng, dtype)
    expect = fn(*args, **kwargs)
    moved = list(args)
    for i in float_positions(args, name):
        moved[i] = layout(args[i])
    _same(fn(*moved, **kwargs), expect)


def test_input_copy_and_result_are_summed(limit):
    x = np.ones((512, 256))           # 1 MiB
    xt = x.T                          # its copy is 1 MiB, so is the result
    limit(3 * 2 ** 19)                # 1.5 MiB: either alone fits, both do not
    assert ops.relu(x).shape == x.shape
    with pytest.raises(ValueError, match=r"^relu: .* on top of the 1048576 bytes this call already holds"):
        ops.relu(xt)
    limit(2 ** 21)
    np.testing.assert_array_equal(ops.relu(xt), x.T)


def test_two_input_copies_are_summed_before_either_is_made(limit):
    a = np.ones((256, 512)).T         # (512, 256), 1 MiB copy each
    b = np.ones((256, 512)).T
    limit(2 ** 20 + 2 ** 19)          # one copy fits, two do not
    with pytest.raises(ValueError, match=r"^linear: .*(this call holds|already holds)"):
        ops.linear(a, b)


def test_max_pool_indices_count_towards_the_call(limit):
    x = np.ones((1, 1, 512, 512))
    y_bytes = 8 * 256 * 256           # result and indices are 512 KiB each
    limit(y_bytes + y_bytes // 2)
    assert ops.max_pool2d(x, 2).shape == (1, 1, 256, 256)
    with pytest.raises(ValueError, match=r"^max_pool2d: .* on top of the 524288 bytes this call already holds"):
        ops.max_pool2d(x, 2, return_indices=True)
    limit(4 * y_bytes)
    y, idx = ops.max_pool2d(x, 2, return_indices=True)
    assert idx.dtype == np.int64 and idx.shape == y.shape and idx.max() < x.size


def test_a_refused_call_leaves_nothing_held(limit):
    xt = np.ones((512, 256)).T
    limit(3 * 2 ** 19)
    for _ in range(3):  # the account of a refused call does not leak into the next
        with pytest.raises(ValueError, match="already holds"):
            ops.relu(xt)
    assert ops.relu(np.ones((512, 256))).shape == (512, 256)


@pytest.mark.skipif(os.environ.get("CNNCORE_SANITIZED") == "1",
                    reason="ASan's allocator reserves and poisons what it hands out, so a 4 GiB "
                           "buffer is not free address space there")
def test_zero_stride_view_is_refused_without_touching_its_copy():
    # A 2**30-element broadcast view of one float: its C-order copy is 4 GiB, the
    # convolution's result as much again. Under a 6 GiB limit the call must fail
    # before writing the copy: the child's peak memory stays far below 4 GiB.
    code = textwrap.dedent("""
        import numpy as np, cnncore
        from cnncore import ops
        cnncore.set_memory_limit(6 * 2 ** 30)
        v = np.broadcast_to(np.ones((1, 1, 1, 1), "f4"), (1, 1, 2 ** 15, 2 ** 15))
        try:
            ops.conv2d(v, np.ones((1, 1, 1, 1), "f4"))
        except ValueError as e:
            print("refused:", e)
        # VmHWM: this process's peak resident memory (getrusage's maxrss would carry
        # over the parent's peak across fork and exec)
        hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
        print("peak_mb", int(hwm.split()[1]) // 1024)
    """)
    env = child_env()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "refused: conv2d:" in out.stdout and "4294967296 bytes this call already holds" in out.stdout
    peak = int(out.stdout.rsplit("peak_mb", 1)[1])
    assert peak < 1024, out.stdout
