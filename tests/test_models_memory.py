"""cnncore.models check an estimate of a forward pass's activation memory against
cnncore.get_memory_limit() before running it (models/_memory.py): a huge input is
refused before anything is allocated, the estimate agrees with what the real forward
holds, no_grad needs less, ordinary inputs never pay for the estimate, and it is
computed once per sample shape."""
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import cnncore as cc
from cnncore import models, nn
from cnncore.models import _memory
from cnncore.nn import module as _module

from helpers import child_env



@pytest.fixture
def limit():
    old = cc.get_memory_limit()
    yield cc.set_memory_limit
    cc.set_memory_limit(old)


@pytest.fixture
def probes(monkeypatch):
    """The sample shapes the estimate probed, in order."""
    seen = []
    real = _memory._probe

    def counting(model, sample_shape, dtype):
        seen.append(sample_shape)
        return real(model, sample_shape, dtype)

    monkeypatch.setattr(_memory, "_probe", counting)
    return seen


def _lazy(name, **kwargs):
    with nn.init.skip_init():          # zeros, allocated on first use: fast to build
        return models.get_model(name, **kwargs)


def _zeros(*shape):
    return cc.Tensor(np.zeros(shape, dtype=np.float32))


def _owner(a):
    while isinstance(a.base, np.ndarray):
        a = a.base
    return (id(a.base) if a.base is not None else id(a)), a.nbytes


def _held_by_graph(out, model, x):
    """Bytes of every op result the graph from ``out`` keeps (views counted once) and
    of the other arrays its ops saved (max-pool indices), less the input ``x``, the
    parameters and the buffers."""
    owners, stack, seen, ctxs = {}, [out], set(), []
    while stack:
        t = stack.pop()
        if id(t) in seen or t._ctx is None:
            continue
        seen.add(id(t))
        key, size = _owner(t.data)
        owners[key] = size
        ctxs.append(t._ctx)
        stack.extend(p for p in t._ctx.parents if isinstance(p, cc.Tensor))
    for ctx in ctxs:
        for v in vars(ctx).values():
            for a in v if isinstance(v, (tuple, list)) else (v,):
                if isinstance(a, np.ndarray):
                    key, size = _owner(a)
                    owners.setdefault(key, size)
    for a in [x.data] + [p.data for p in model.parameters()] + [b.data for b in
                                                                model.buffers()]:
        owners.pop(_owner(a)[0], None)
    return sum(owners.values())


def _leaf_outputs(model, x):
    """Sum of every leaf module's output bytes in a real forward (and the output)."""
    total = [0]

    def hook(module, inputs, out):
        if next(module.children(), None) is None and isinstance(out, cc.Tensor):
            total[0] += out.data.nbytes

    _module._forward_hooks.append(hook)
    try:
        out = model(x)
    finally:
        _module._forward_hooks.remove(hook)
    return total[0], out


@pytest.mark.skipif(os.environ.get("CNNCORE_SANITIZED") == "1",
                    reason="the child runs under an address-space limit, and ASan reserves "
                           "terabytes of shadow memory at start-up")
def test_vgg16_on_a_4096_image_is_refused_before_allocating():
    # The audit's case: vgg16 on 1 x 3 x 4096 x 4096 reached 8.9 GB before failing deep
    # inside. Now the estimate (~42 GB with autograd recording) refuses it, under an
    # address-space limit of 2 GiB beyond what the child holds after building the model
    # and the input, and the child is still alive and working afterwards.
    code = textwrap.dedent("""
        import resource, numpy as np
        import cnncore as cc
        from cnncore import models, nn
        cc.set_memory_limit(min(cc.get_memory_limit(), 16 << 30))
        with nn.init.skip_init():
            m = models.vgg16()
        x = cc.Tensor(np.zeros((1, 3, 4096, 4096), dtype=np.float32))
        size = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (size + (2 << 30), size + (2 << 30)))
        try:
            m(x)
            print("RAN")
        except ValueError as e:
            print("REFUSED", e)
        y = m(cc.Tensor(np.zeros((1, 3, 32, 32), dtype=np.float32)))
        print("ALIVE", y.shape)
    """)
    env = child_env(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120, env=env)
    assert r.returncode == 0, f"rc={r.returncode}\n{r.stdout}\n{r.stderr}"
    lines = r.stdout.splitlines()
    assert lines[-1] == "ALIVE (1, 1000)"
    m = re.fullmatch(r"REFUSED vgg16: a forward pass on input shape \(1, 3, 4096, 4096\) "
                     r"would hold about ([\d,]+) bytes of activations \(estimated; autograd "
                     r"keeps every result for the backward; under cnncore.no_grad\(\) about "
                     r"([\d,]+)\), more than the memory limit of ([\d,]+) bytes "
                     r"\(cnncore.set_memory_limit changes it\)", lines[-2])
    assert m, lines
    need, nograd, lim = (int(g.replace(",", "")) for g in m.groups())
    # 64 channels x 4096^2 floats is 4 GiB per conv/relu output of the first block alone
    assert 35e9 < need < 50e9 and nograd < need and need > lim


def test_a_moderate_input_under_a_lowered_limit(limit):
    # resnet18 (functional ReLUs and residual additions, which no leaf module owns) on
    # a non-square size that is no power of two
    m = _lazy("resnet18")
    shape = (2, 3, 96, 136)
    est = m.estimate_activation_memory(shape)
    x = _zeros(*shape)
    limit(est // 2)
    with pytest.raises(ValueError, match=r"^resnet18: a forward pass on input shape "
                                         r"\(2, 3, 96, 136\) would hold about "
                                         f"{est:,} bytes of activations \\(estimated; "
                                         r".*more than the memory limit of "
                                         f"{est // 2:,} bytes"):
        m(x)
    limit(est * 3 // 2)               # still under the trigger: the estimate is checked
    assert x.data.nbytes * _memory.TRIGGER_RATIO > est * 3 // 2
    leaves, out = _leaf_outputs(m, x)
    assert out.shape == (2, 1000)
    held = _held_by_graph(out, m, x)
    # the graph holds what the estimate counts (within rounding at the deepest layers);
    # the leaf modules' outputs miss the functional ReLUs and additions
    assert 0.9 < est / held < 1.15, (est, held)
    assert leaves < held < 2 * leaves, (leaves, held)


def test_the_estimate_matches_the_real_graph_for_other_models():
    for name, shape in [("vgg11_bn", (1, 3, 72, 40)), ("googlenet", (1, 3, 100, 75)),
                        ("alexnet", (1, 3, 100, 90))]:
        m = _lazy(name)
        est = m.estimate_activation_memory(shape)
        x = _zeros(*shape)
        leaves, out = _leaf_outputs(m, x)       # training mode: with dropout's outputs
        held = _held_by_graph(out, m, x)
        assert 0.85 < est / held < 1.2, (name, est, held)
        # leaf modules' outputs alone miss GoogLeNet's functional ReLUs, concatenations
        # and max-pool indices: about half of what it holds
        assert leaves < est < 2.5 * leaves, (name, est, leaves)


def test_no_grad_needs_less_and_is_accepted_where_recording_is_refused(limit):
    m = _lazy("resnet18")
    shape = (1, 3, 64, 96)
    grad = m.estimate_activation_memory(shape, grad=True)
    nograd = m.estimate_activation_memory(shape, grad=False)
    assert 0 < nograd < grad / 2
    x = _zeros(*shape)
    limit(int((grad * nograd) ** 0.5))      # between the two
    with pytest.raises(ValueError, match="^resnet18: .* autograd keeps every result"):
        m(x)
    with cc.no_grad():
        assert m(x).shape == (1, 1000)
    # nothing records either when no parameter and not the input requires grad
    m.requires_grad_(False)
    assert m(x).shape == (1, 1000)
    x.requires_grad = True
    with pytest.raises(ValueError, match="^resnet18: "):
        m(x)


def test_ordinary_inputs_never_run_the_estimate(probes):
    lenet = models.lenet5(input_size=28)
    for n in (1, 64, 256):
        assert lenet(_zeros(n, 1, 28, 28)).shape == (n, 10)
    r = _lazy("resnet18")
    assert r(_zeros(1, 3, 64, 64)).shape == (1, 1000)
    assert probes == []
    assert "_activation_estimates" not in lenet.__dict__
    assert "_activation_estimates" not in r.__dict__


def test_the_estimate_is_cached_per_sample_shape(limit, probes):
    m = _lazy("resnet18")
    limit(4 << 20)                           # every input below triggers the estimate
    with pytest.raises(ValueError, match=r"^resnet18: .*\(1, 3, 96, 96\)"):
        m(_zeros(1, 3, 96, 96))
    assert probes == [(3, 32, 32), (3, 64, 64)]
    with pytest.raises(ValueError, match=r"^resnet18: .*\(4, 3, 96, 96\)"):
        m(_zeros(4, 3, 96, 96))              # another batch size: the same sample shape
    with cc.no_grad(), pytest.raises(ValueError, match=r"\(estimated; without autograd "
                                                      r"recording\)"):
        m(_zeros(40, 3, 96, 96))             # no_grad: cached with the same probes
    assert len(probes) == 2
    assert list(m._activation_estimates) == [((3, 96, 96), "<f4")]
    one = m.estimate_activation_memory((1, 3, 96, 96))
    assert m.estimate_activation_memory((5, 3, 96, 96)) == 5 * one
    assert len(probes) == 2
    m.clear_activation_estimates()
    m.estimate_activation_memory((1, 3, 96, 96))
    assert len(probes) == 4


def test_probes_leave_the_model_and_other_hooks_alone(limit, probes):
    m = _lazy("resnet18")
    m.train()
    m.bn1.eval()                             # a mixed mode is restored as it was
    mean = m.layer1[0].bn1.running_mean.data.copy()
    calls = []
    hook = lambda module, inputs, out: calls.append(module)   # noqa: E731
    _module._forward_hooks.append(hook)
    try:
        limit(4 << 20)
        with pytest.raises(ValueError, match="^resnet18: "):
            m(_zeros(1, 3, 96, 96))
    finally:
        _module._forward_hooks.remove(hook)
    assert probes and calls == []
    assert m.training and m.layer1[0].bn1.training and not m.bn1.training
    assert np.array_equal(m.layer1[0].bn1.running_mean.data, mean)


def test_without_a_probe_that_runs_the_forward_reports_its_own_error(limit, probes):
    m = models.lenet5()                      # takes exactly 32 x 32
    # at its own size, one probe is the real sample: the estimate is exact
    est = m.estimate_activation_memory((3, 1, 32, 32))
    x = _zeros(1, 1, 32, 32)
    _, out = _leaf_outputs(m, x)
    assert probes == [(1, 32, 32)] and est == 3 * _held_by_graph(out, m, x)
    limit(1 << 16)
    with pytest.raises(ValueError, match=r"^LeNet5: expected input \(N, 1, 32, 32\)"):
        m(_zeros(1, 1, 100, 100))
    assert m._activation_estimates[((1, 100, 100), "<f4")] is None


def test_the_error_names_each_model_as_the_models_module_does():
    for name in models.MODELS:
        assert _lazy(name).model_name == name
    with nn.init.skip_init():
        assert models.ResNet(models.resnet.BasicBlock, [1, 1, 1, 1]).model_name == "ResNet"
