"""Edge cases across the op families: 64-bit argument limits, oversized copies,
thread limits, global pooling in every rank, 3-D convolution in every padding
mode, and the command line's argument checks."""
import subprocess
import sys

import numpy as np
import pytest

import cnncore
from cnncore import ops

HUGE = 2 ** 63  # one past int64

X4 = np.ones((1, 2, 6, 6))


@pytest.mark.parametrize("call", [
    lambda: ops.conv2d(X4, np.ones((2, 2, 3, 3)), padding=HUGE),
    lambda: ops.conv2d(X4, np.ones((2, 2, 3, 3)), stride=HUGE),
    lambda: ops.conv2d(X4, np.ones((2, 2, 3, 3)), groups=HUGE),
    lambda: ops.conv_transpose2d(X4, np.ones((2, 2, 3, 3)), output_padding=HUGE),
    lambda: ops.max_pool2d(X4, HUGE),
    lambda: ops.max_pool2d(X4, 2, stride=-HUGE - 1),
    lambda: ops.adaptive_avg_pool2d(X4, HUGE),
    lambda: ops.tiled_conv2d(X4, np.ones((1, 1, 2, 2, 3, 3)), tile=HUGE),
    lambda: ops.pad(X4, HUGE),
], ids=["conv-padding", "conv-stride", "conv-groups", "tconv-output_padding", "pool-kernel",
        "pool-stride", "adaptive-output_size", "tiled-tile", "pad"])
def test_integers_beyond_int64_are_value_errors_naming_the_argument(call):
    with pytest.raises(ValueError, match=r"must fit in a 64-bit signed integer"):
        call()


def test_threads_are_bounded():
    with pytest.raises(ValueError, match=r"set_num_threads: n must be at most 1024"):
        cnncore.set_num_threads(10 ** 6)
    with pytest.raises(ValueError, match=r"64-bit"):
        cnncore.set_num_threads(HUGE)
    assert cnncore.get_num_threads() >= 1


def test_huge_non_contiguous_input_is_refused_before_copying():
    x = np.broadcast_to(np.ones((1, 3, 8, 8)), (2 ** 40, 3, 8, 8))
    with pytest.raises(ValueError, match=r"conv2d: x is not C-contiguous and its C-order copy"):
        ops.conv2d(x, np.ones((2, 3, 3, 3)))
    assert ops.conv2d(np.ones((1, 3, 4, 4)), np.ones((2, 3, 3, 3))).shape == (1, 2, 2, 2)


@pytest.mark.parametrize("call, pattern", [
    (lambda: ops.pad(X4, 2 ** 40), r"^pad: the padded size of x"),
    (lambda: ops.conv_transpose2d(X4, np.ones((2, 2, 3, 3)), stride=2 ** 40),
     r"^conv_transpose2d: "),
])
def test_overflow_messages_name_the_op(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_global_pooling_in_every_rank(nd):
    rng = np.random.default_rng(nd)
    x = rng.standard_normal((2, 3) + (4,) * nd)
    axes = tuple(range(2, 2 + nd))
    avg = getattr(ops, f"global_avg_pool{nd}d")(x)
    mx = getattr(ops, f"global_max_pool{nd}d")(x)
    np.testing.assert_allclose(avg, x.mean(axis=axes, keepdims=True), rtol=1e-12)
    np.testing.assert_array_equal(mx, x.max(axis=axes, keepdims=True))
    g = rng.standard_normal(avg.shape)
    gx = getattr(ops, f"global_avg_pool{nd}d_backward")(g, x)
    np.testing.assert_allclose(gx, np.broadcast_to(g / 4 ** nd, x.shape), rtol=1e-12)
    gm = getattr(ops, f"global_max_pool{nd}d_backward")(g, x)
    assert np.count_nonzero(gm) == g.size and np.isclose(gm.sum(), g.sum())


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular", "symmetric"])
@pytest.mark.parametrize("algorithm", ["im2col", "fft"])
def test_conv3d_every_padding_mode_matches_reference(mode, algorithm):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 2, 4, 5, 6))
    w = rng.standard_normal((3, 2, 2, 3, 2))
    kw = dict(padding=(1, 1, 2, 0, 1, 2), stride=(1, 2, 1), dilation=(1, 1, 2),
              padding_mode=mode)
    ref = ops.conv3d(x, w, algorithm="reference", **kw)
    np.testing.assert_allclose(ops.conv3d(x, w, algorithm=algorithm, **kw), ref,
                               rtol=1e-9, atol=1e-9)
    g = rng.standard_normal(ref.shape)
    for got, want in zip(ops.conv3d_backward(g, x, w, algorithm=algorithm, **kw),
                         ops.conv3d_backward(g, x, w, algorithm="reference", **kw)):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("args, pattern", [
    (["--epochs", "0"], "argument --epochs: must be >= 1"),
    (["--batch-size", "0"], "argument --batch-size: must be >= 1"),
    (["--lr", "-1"], "argument --lr: must be > 0"),
    (["--threads", "-1"], "argument --threads: must be >= 0"),
    (["--test-fraction", "1.5"], "argument --test-fraction: must be > 0 and < 1"),
    (["--model", "lenet7"], "lenet7"),
])
def test_cli_rejects_bad_options_with_a_message(args, pattern, tmp_path):
    r = subprocess.run([sys.executable, "-m", "cnncore", "train", *args, "--no-progress",
                        "--no-plot", "--out", str(tmp_path)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2, r.stderr
    assert pattern in r.stderr and "Traceback" not in r.stderr


def test_dropout_accepts_the_whole_unsigned_seed_range():
    x = np.ones((3, 4))
    for seed in (0, 2 ** 63, 2 ** 64 - 1):
        a = ops.dropout(x, 0.5, seed=seed)
        np.testing.assert_array_equal(a, ops.dropout(x, 0.5, seed=seed))
    with pytest.raises(ValueError, match=r"dropout: seed must be in \[0, 18446744073709551615\]"):
        ops.dropout(x, 0.5, seed=2 ** 64)
