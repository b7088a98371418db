"""The CUDA backend against the CPU: every op with a CUDA kernel, forward and
backward, a whole network's training step, the device array, the allocator and
the errors.

Each comparison runs on the devices that exist: ``cuda`` (a real GPU: skipped
without one) and ``emulator`` (the host emulator of the backend, which runs the
same kernel bodies on the CPU; skipped where a real GPU serves "cuda"). float64
results must match the CPU to 1e-10 relative, float32 to 1e-4.
"""

import copy
import json

import numpy as np
import pytest

import cnncore as cc
from cnncore import functional as F

REAL_GPU = cc.cuda.is_available()


@pytest.fixture(params=["cuda", "emulator"])
def device(request):
    if request.param == "cuda":
        if not REAL_GPU:
            pytest.skip(f"no CUDA device: {cc.cuda.why_unavailable()}")
        yield "cuda"
        return
    if REAL_GPU:
        pytest.skip("a real GPU serves 'cuda' here; the emulator only stands in without one")
    was = cc.cuda.use_emulator(True)
    try:
        yield "cuda"
    finally:
        cc.cuda.use_emulator(was)


TOL = {np.float64: 1e-10, np.float32: 1e-4}


def _close(a, b, dtype):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(1.0, float(np.abs(b).max()) if b.size else 1.0)
    np.testing.assert_allclose(a, b, rtol=TOL[dtype], atol=TOL[dtype] * scale)


def _run(fn, arrays, dtype, device, seed=0):
    """fn(*tensors) on the CPU and on `device`, with the gradients of sum(out * g)."""
    rng = np.random.default_rng(seed)
    results = []
    for dev in ("cpu", device):
        ts = [cc.tensor(a.astype(dtype), requires_grad=True) for a in arrays]
        ins = [t if dev == "cpu" else t.to(dev) for t in ts]
        out = fn(*ins)
        assert out.device.type == dev
        g = cc.tensor(np.random.default_rng(seed + 1).standard_normal(out.shape).astype(dtype))
        (out * (g if dev == "cpu" else g.to(dev))).sum().backward()
        results.append((out.cpu().numpy(), [None if t.grad is None else t.grad.numpy() for t in ts]))
    del rng
    (y0, g0), (y1, g1) = results
    _close(y1, y0, dtype)
    for a, b in zip(g1, g0):
        assert (a is None) == (b is None)
        if a is not None:
            _close(a, b, dtype)


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


CONV_CASES = [
    dict(nd=2, x=(2, 3, 9, 8), w=(4, 3, 3, 3), kw=dict(padding=1)),
    dict(nd=2, x=(1, 4, 11, 7), w=(6, 2, 3, 2), kw=dict(stride=2, dilation=(2, 1), groups=2, padding=(2, 1))),
    dict(nd=2, x=(2, 3, 8, 8), w=(5, 3, 3, 3), kw=dict(padding=2, padding_mode="reflect")),
    dict(nd=2, x=(2, 3, 7, 6), w=(2, 3, 3, 3), kw=dict(padding=1, padding_mode="circular", flip=True)),
    dict(nd=2, x=(1, 2, 6, 6), w=(2, 2, 4, 4), kw=dict(padding="same", padding_mode="replicate")),
    dict(nd=2, x=(2, 4, 7, 7), w=(4, 1, 3, 3), kw=dict(padding=1, groups=4)),
    dict(nd=1, x=(2, 3, 17), w=(4, 3, 5), kw=dict(stride=3, padding=2)),
    dict(nd=3, x=(1, 2, 5, 6, 4), w=(3, 2, 2, 3, 2), kw=dict(padding=1, stride=(1, 2, 1))),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{c['nd']}d-{sorted(c['kw'].items())}")
def test_convolution_matches_cpu(device, case, dtype):
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[case["nd"]]
    b = _rand(case["w"][0], seed=3)
    _run(lambda x, w, b: conv(x, w, b, **case["kw"]), [_rand(*case["x"]), _rand(*case["w"], seed=2), b],
         dtype, device)


def test_convolution_is_exact_with_small_integers(device):
    rng = np.random.default_rng(5)
    x = rng.integers(-8, 9, (2, 3, 10, 9)).astype(np.float32)
    w = rng.integers(-8, 9, (4, 3, 3, 3)).astype(np.float32)
    cpu = F.conv2d(cc.tensor(x), cc.tensor(w), stride=2, padding=1).numpy()
    dev = F.conv2d(cc.tensor(x).to(device), cc.tensor(w).to(device), stride=2, padding=1).cpu().numpy()
    assert np.array_equal(cpu, dev)


MORE_CONV = [
    ("transpose", lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
     [(2, 3, 5, 4), (3, 2, 3, 3), (2,)]),
    ("transpose-grouped", lambda x, w, b: F.conv_transpose2d(x, w, b, stride=(1, 2), groups=3, dilation=2),
     [(1, 3, 4, 5), (3, 2, 2, 3), (6,)]),
    ("separable", lambda x, dw, pw: F.separable_conv2d(x, dw, pw, padding=1, stride=2),
     [(2, 3, 7, 6), (6, 1, 3, 3), (4, 6, 1, 1)]),
    ("pad-reflect", lambda x, w, b: F.pad(x, (2, 1, 1, 2), mode="reflect") * w.sum() + b.sum(),
     [(2, 3, 5, 4), (2,), (2,)]),
    ("pad-circular", lambda x, w, b: F.pad(x, (3, 1, 0, 4), mode="circular") + w.sum() * b.sum(),
     [(1, 2, 3, 4), (2,), (1,)]),
    ("pad-constant", lambda x, w, b: F.pad(x, (1, 2, 3, 0), value=0.5) * b.sum() + w.sum(),
     [(1, 2, 3, 4), (2,), (1,)]),
    ("lrn", lambda x, w, b: F.local_response_norm(x, 3, alpha=0.1, beta=0.75, k=2.0) + w.sum() + b.sum(),
     [(2, 5, 3, 3), (1,), (1,)]),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,fn,shapes", MORE_CONV, ids=[c[0] for c in MORE_CONV])
def test_transposed_separable_pad_and_lrn_match_cpu(device, name, fn, shapes, dtype):
    _run(fn, [_rand(*s, seed=k) for k, s in enumerate(shapes)], dtype, device)


def test_dropout_draws_the_cpu_mask_and_nll_matches(device):
    x = _rand(4, 6, 5)
    cpu = F.dropout(cc.tensor(x), 0.3, seed=123).numpy()
    dev = F.dropout(cc.tensor(x).to(device), 0.3, seed=123).cpu().numpy()
    np.testing.assert_array_equal(cpu, dev)
    assert (cpu == 0).mean() > 0.1
    target = cc.tensor(np.array([1, 0, 3, 5]))
    _run(lambda x: F.nll_loss(F.log_softmax(x, dim=1), target, ignore_index=3), [_rand(4, 6)], np.float64, device)


POOLS = [
    ("max", lambda x: F.max_pool2d(x, 3, 2, padding=1)),
    ("max-ceil-dilated", lambda x: F.max_pool2d(x, 2, 2, dilation=2, ceil_mode=True)),
    ("avg", lambda x: F.avg_pool2d(x, 3, 2, padding=1)),
    ("avg-exclude-pad", lambda x: F.avg_pool2d(x, 3, 2, padding=1, count_include_pad=False)),
    ("lp2", lambda x: F.lp_pool2d(x, 2.0, 2)),
    ("weighted", lambda x: F.weighted_avg_pool2d(x, 3, 1, padding=1)),
    ("adaptive-avg", lambda x: F.adaptive_avg_pool2d(x, (3, 2))),
    ("adaptive-max", lambda x: F.adaptive_max_pool2d(x, 3)),
    ("max1d", lambda x: F.max_pool1d(x.reshape(2, 3, 49), 4, 3)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,fn", POOLS, ids=[p[0] for p in POOLS])
def test_pooling_matches_cpu(device, name, fn, dtype):
    _run(fn, [_rand(2, 3, 7, 7)], dtype, device)


ACTIVATIONS = [F.relu, lambda x: F.leaky_relu(x, 0.1), F.sigmoid, F.tanh, F.silu, F.gelu,
               lambda x: F.gelu(x, approximate="tanh"), lambda x: F.softmax(x, dim=1),
               lambda x: F.log_softmax(x, dim=1)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("k", range(len(ACTIVATIONS)))
def test_activations_and_softmax_match_cpu(device, k, dtype):
    _run(ACTIVATIONS[k], [_rand(3, 5, 4)], dtype, device)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kw", [dict(), dict(reduction="sum", label_smoothing=0.1), dict(ignore_index=2),
                                dict(reduction="none")])
def test_cross_entropy_matches_cpu(device, kw, dtype):
    target = cc.tensor(np.array([0, 2, 1, 4, 2]))
    weight = np.linspace(0.5, 1.5, 5)
    _run(lambda x, w: F.cross_entropy(x, target, weight=w, **kw), [_rand(5, 5), weight], dtype, device)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_matches_cpu_and_updates_running_stats(device, training):
    rm, rv = _rand(4, seed=7) * 0.1, np.abs(_rand(4, seed=8)) + 0.5
    stats = {}
    for dev in ("cpu", device):
        m, v = cc.tensor(rm.copy()).to(dev), cc.tensor(rv.copy()).to(dev)
        stats[dev] = (m, v)

    def fn(x, w, b):
        m, v = stats[x.device.type]
        return F.batch_norm(x, m, v, w, b, training=training, momentum=0.3)

    _run(fn, [_rand(3, 4, 5, 5), _rand(4, seed=1), _rand(4, seed=2)], np.float64, device)
    for a, b in zip(stats["cpu"], stats[device]):
        _close(b.cpu().numpy(), a.numpy(), np.float64)
    moved = not np.allclose(stats["cpu"][0].numpy(), rm)
    assert moved == training


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_linear_and_tensor_arithmetic_match_cpu(device, dtype):
    def fn(x, w, b):
        y = F.linear(x, w, b)
        z = (y * 2 - y.exp() / 3).pow(2).sqrt() + y.abs().clamp(0.1, 2.0)
        return (z @ w) @ w.t() + z.mean(dim=0, keepdim=True) - z.max(dim=1, keepdim=True).values + z[1:, ::2].sum()

    _run(fn, [_rand(4, 6), _rand(5, 6, seed=1), _rand(5, seed=2)], dtype, device)


@pytest.mark.parametrize("opt", ["sgd", "adam", "adamw", "rmsprop"])
def test_training_steps_of_a_network_match_cpu(device, opt):
    cc.manual_seed(1)
    model = cc.models.lenet5().double()
    twin = copy.deepcopy(model).to(device)
    assert all(p.device.type == "cuda" for p in twin.parameters())
    make = {"sgd": lambda ps: cc.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
            "adam": lambda ps: cc.optim.Adam(ps, lr=1e-3, amsgrad=True),
            "adamw": lambda ps: cc.optim.AdamW(ps, lr=1e-3, weight_decay=0.1),
            "rmsprop": lambda ps: cc.optim.RMSprop(ps, lr=1e-3, momentum=0.5, centered=True)}[opt]
    opts = make(model.parameters()), make(twin.parameters())
    rng = np.random.default_rng(0)
    for _ in range(3):
        x, y = rng.standard_normal((4, 1, 32, 32)), cc.tensor(rng.integers(0, 10, 4))
        for m, o, xs in ((model, opts[0], cc.tensor(x)), (twin, opts[1], cc.tensor(x).to(device))):
            o.zero_grad()
            F.cross_entropy(m(xs), y).backward()
            o.step()
    for (name, p), q in zip(model.named_parameters(), twin.parameters()):
        _close(q.cpu().numpy(), p.numpy(), np.float64)


def test_resnet_block_forward_and_backward_match_cpu(device):
    cc.manual_seed(2)
    model = cc.models.resnet18(num_classes=5).double()
    twin = copy.deepcopy(model).to(device)
    x = _rand(4, 3, 32, 32)
    outs = []
    for m, xs in ((model, cc.tensor(x)), (twin, cc.tensor(x).to(device))):
        out = m(xs)
        F.cross_entropy(out, cc.tensor(np.array([0, 1, 2, 3]))).backward()
        outs.append(out.cpu().numpy())
    _close(outs[1], outs[0], np.float64)
    for p, q in zip(model.parameters(), twin.parameters()):
        np.testing.assert_allclose(q.grad.cpu().numpy(), p.grad.numpy(), rtol=1e-7, atol=1e-9)


def test_device_array_follows_numpy(device):
    a = _rand(3, 4, 5)
    d = cc.cuda.CudaArray.from_numpy(a)
    assert isinstance(d, cc.cuda.CudaArray) and d.shape == (3, 4, 5) and d.dtype == np.float64
    checks = [
        (lambda x: x.transpose(2, 0, 1), None), (lambda x: x[1, ::-2, 1:4], None), (lambda x: x[..., None, 2], None),
        (lambda x: np.maximum(x, 0.3) - np.minimum(x, x[:, :1]), None), (lambda x: np.where(x > 0, x, -x * 2), None),
        (lambda x: x.sum(axis=(0, 2), keepdims=True), None), (lambda x: x.max(axis=1), None),
        (lambda x: x.argmax(axis=2), None), (lambda x: np.concatenate([x, x[:1]], axis=0), None),
        (lambda x: np.stack([x[0], x[1]], axis=1), None), (lambda x: np.broadcast_to(x[:, :1], (3, 4, 5)), None),
        (lambda x: x.reshape(4, -1).T @ x.reshape(4, -1), None), (lambda x: (x ** 2).mean() + x.var(), None),
        (lambda x: np.clip(x, -0.5, None).astype(np.float32), None), (lambda x: np.split(x, [1, 3], axis=1)[1], None),
    ]
    for fn, _ in checks:
        want = fn(a)
        got = fn(d)
        assert isinstance(got, cc.cuda.CudaArray), fn
        np.testing.assert_allclose(got.get(), want, rtol=1e-12, atol=1e-12)
    e = d.copy()
    e[1, 2:] = 7.0
    want = a.copy()
    want[1, 2:] = 7.0
    np.testing.assert_array_equal(e.get(), want)
    np.testing.assert_array_equal(d.get(), a)   # the copy did not share memory


def test_errors_name_the_problem(device):
    x = cc.tensor(_rand(1, 2, 5, 5)).to(device)
    w = cc.tensor(_rand(3, 2, 3, 3))
    with pytest.raises(ValueError, match="weight is on cpu but x is on cuda"):
        F.conv2d(x, w)
    with pytest.raises(ValueError, match="has no CUDA kernel"):
        F.local_conv2d(x, cc.tensor(_rand(3, 3, 2, 2, 3, 3)).to(device))
    with pytest.raises(ValueError, match="CPU algorithm"):
        F.conv2d(x, w.to(device), algorithm="im2col")
    with pytest.raises(TypeError, match="cpu"):
        x.numpy()
    with pytest.raises(TypeError, match="device memory"):
        np.asarray(x.data)
    with pytest.raises(IndexError, match="basic indices"):
        x.data[np.array([0])]
    with pytest.raises(ValueError, match="return_indices is not available on CUDA"):
        F.max_pool2d(x, 2, return_indices=True)
    assert F.relu(x).device.type == "cuda"     # still alive and working


def test_allocator_reuses_blocks_and_does_not_leak(device):
    model = cc.models.lenet5().to(device)
    opt = cc.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = cc.tensor(_rand(8, 1, 32, 32).astype(np.float32)).to(device), cc.tensor(np.arange(8) % 10)

    def step():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

    step()
    step()
    held = cc.cuda.memory_allocated()
    before = cc.cuda.memory_stats()
    for _ in range(10):
        step()
    after = cc.cuda.memory_stats()
    assert cc.cuda.memory_allocated() == held
    assert after["device_allocs"] == before["device_allocs"]   # every block came from the cache
    assert after["cache_hits"] > before["cache_hits"]
    cc.cuda.empty_cache()
    assert cc.cuda.memory_reserved() >= cc.cuda.memory_allocated()


def test_without_a_device_cuda_is_refused_with_the_reason():
    if REAL_GPU:
        pytest.skip("a real GPU is present")
    assert not cc.cuda.is_available() and cc.cuda.device_count() == 0
    assert cc.cuda.why_unavailable()
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        cc.tensor([1.0]).to("cuda")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        cc.models.lenet5().to("cuda")
    with pytest.raises(RuntimeError, match="device 0 only"):
        cc.device("cuda:1")
    assert "conv_forward" in cc.cuda.supported_ops() and "local_conv_forward" not in cc.cuda.supported_ops()


def test_state_dicts_and_checkpoints_cross_devices(device, tmp_path):
    cc.manual_seed(3)
    model = cc.models.lenet5()
    gpu = cc.models.lenet5().to(device)
    gpu.load_state_dict(model.state_dict())          # host arrays into device parameters
    x = cc.tensor(_rand(2, 1, 32, 32).astype(np.float32))
    np.testing.assert_allclose(gpu(x.to(device)).cpu().numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)
    path = tmp_path / "gpu.safetensors"
    cc.save(gpu.state_dict(), path)                   # saved from the host
    back = cc.models.lenet5()
    back.load_state_dict(cc.load(path))
    for (k, a), b in zip(model.state_dict().items(), back.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)
    cpu_again = cc.models.lenet5()
    cpu_again.load_state_dict(gpu.state_dict())      # device arrays into host parameters
    assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in
               zip(model.parameters(), cpu_again.parameters()))
    gpu.to("cpu")
    assert all(p.device.type == "cpu" for p in gpu.parameters())


def test_cli_trains_on_the_device_like_on_the_cpu(device, tmp_path, capsys):
    """`cnncore train --device cuda` follows the CPU run: the same per-epoch losses and
    weights to float32 tolerance, and its checkpoint (written from the host) resumes."""
    from cnncore import cli
    common = ["--epochs", "2", "--no-progress", "--no-plot", "--schedule", "none"]
    reports = {}
    for dev in ("cpu", "cuda"):
        out = tmp_path / dev
        assert cli.main(["train", "--device", dev, "--out", str(out)] + common) == 0, \
            capsys.readouterr().err
        reports[dev] = json.loads((out / "report.json").read_text())
    assert reports["cuda"]["device"] == "cuda" and reports["cpu"]["device"] == "cpu"
    for ha, hb in zip(reports["cpu"]["history"], reports["cuda"]["history"]):
        assert hb["train_loss"] == pytest.approx(ha["train_loss"], rel=1e-3), (ha, hb)
    a = cc.load(tmp_path / "cpu" / "checkpoint.safetensors")["model"]
    b = cc.load(tmp_path / "cuda" / "checkpoint.safetensors")["model"]
    for k in a:
        np.testing.assert_allclose(np.asarray(b[k].data), np.asarray(a[k].data), rtol=1e-2,
                                   atol=1e-3, err_msg=k)
    code = cli.main(["train", "--device", "cuda", "--resume", str(tmp_path / "cuda"), "--out",
                     str(tmp_path / "cuda"), "--epochs", "3", "--no-progress", "--no-plot",
                     "--schedule", "none"])
    assert code == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "cuda" / "report.json").read_text())["epochs"] == 3


def test_cli_device_cuda_without_cuda_is_a_usage_error(tmp_path, capsys):
    if REAL_GPU:
        pytest.skip("a real GPU is present")
    from cnncore import cli
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--epochs", "1", "--device", "cuda", "--out", str(tmp_path / "o")])
    assert exit_.value.code == 2 and "CUDA is not available" in capsys.readouterr().err
