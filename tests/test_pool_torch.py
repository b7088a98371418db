"""Pooling against PyTorch (CPU) as an independent oracle, where torch has the op.

Forward values, max indices and the input gradient (torch autograd) of max, average, Lp
and adaptive average/max pooling over 1-3 spatial axes, in float64 (tight) and float32,
over a hypothesis draw of kernel, stride, symmetric padding, dilation, ceil mode,
count_include_pad and divisor_override. Lp is compared where torch's definition agrees
with ours (docs/ops.md): torch raises x to the power p without |.|, so the inputs are
positive, and it rescales partial ceil-mode windows, so ceil_mode is off and there is no
padding (torch's lp_pool takes none).
"""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from hypothesis import given, strategies as st  # noqa: E402

from cnncore import ops  # noqa: E402
from helpers import SEEDS  # noqa: E402

torch.set_num_threads(1)
TOL = {np.float64: dict(rtol=1e-12, atol=1e-12), np.float32: dict(rtol=2e-5, atol=2e-6)}


@st.composite
def windowed(draw, kinds=("max", "avg", "lp")):
    kind = draw(st.sampled_from(kinds))
    nd = draw(st.integers(1, 3))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    k = [draw(st.integers(1, 4)) for _ in range(nd)]
    d = [draw(st.integers(1, 2)) if kind == "max" else 1 for _ in range(nd)]
    spans = [di * (ki - 1) + 1 for ki, di in zip(k, d)]
    # torch allows padding up to half the undilated kernel (we allow half the dilated one)
    pad = [draw(st.integers(0, ki // 2)) if kind != "lp" else 0 for ki in k]
    s = [draw(st.integers(1, 3)) for _ in range(nd)]
    top = 3 if nd == 3 else 6
    # torch's avg_pool3d wants the input at least as large as the kernel, padding or not
    low = [sp if (kind, nd) == ("avg", 3) else max(1, sp - 2 * p) for sp, p in zip(spans, pad)]
    sizes = [draw(st.integers(lo, sp + top)) for lo, sp in zip(low, spans)]
    shape = (draw(st.integers(1, 2)), draw(st.sampled_from([1, 3])), *sizes)
    kw = dict(kernel_size=tuple(k), stride=tuple(s))
    if kind == "max":
        kw.update(padding=tuple(pad), dilation=tuple(d), ceil_mode=draw(st.booleans()))
    elif kind == "avg":
        kw.update(padding=tuple(pad), ceil_mode=draw(st.booleans()),
                  count_include_pad=draw(st.booleans()))
        if nd > 1:
            kw["divisor_override"] = draw(st.one_of(st.none(), st.integers(1, 6)))
    else:
        kw["norm_type"] = draw(st.sampled_from([1.0, 2.0, 3.0, 1.5]))
    return kind, nd, dtype, shape, kw


def _torch_forward(kind, nd, xt, kw, return_indices=False):
    if kind == "lp":
        kw = dict(kw)
        if nd == 1:  # torch's lp_pool1d takes ints only
            kw = {k: v if k == "norm_type" else v[0] for k, v in kw.items()}
        return getattr(F, f"lp_pool{nd}d")(xt, kw.pop("norm_type"), **kw)
    if kind == "max":
        return getattr(F, f"max_pool{nd}d")(xt, return_indices=return_indices, **kw)
    return getattr(F, f"{kind}_pool{nd}d")(xt, **kw)


def _ours(kind, nd, x, kw, backward=None, **extra):
    kw = dict(kw)
    name = f"{kind}_pool{nd}d"
    args = (kw.pop("norm_type"),) if kind == "lp" else ()
    if backward is not None:
        return getattr(ops, name + "_backward")(backward, x, *args, **kw, **extra)
    return getattr(ops, name)(x, *args, **kw, **extra)


@given(case=windowed(), seed=SEEDS)
def test_windowed_pooling_matches_torch(case, seed):
    kind, nd, dtype, shape, kw = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    if kind == "lp":
        x = np.abs(x) + 0.1  # torch's x**p is |x|**p only for x > 0
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    yt = _torch_forward(kind, nd, xt, kw)
    y = _ours(kind, nd, x, kw)
    assert y.shape == tuple(yt.shape) and y.dtype == dtype
    np.testing.assert_allclose(y, yt.detach().numpy(), **TOL[dtype])
    all_padding = False
    if kind == "max":
        _, it = _torch_forward(kind, nd, torch.from_numpy(x), kw, return_indices=True)
        _, i = _ours(kind, nd, x, kw, return_indices=True)
        # a dilated window that reads only padding: ours -inf and index -1, torch -inf
        # and an index outside the plane (its backward then aborts the process)
        inside = i >= 0
        all_padding = not inside.all()
        assert np.all(y[~inside] == -np.inf)
        np.testing.assert_array_equal(i[inside], it.numpy()[inside])
    g = rng.standard_normal(y.shape).astype(dtype)
    if y.size and not all_padding:
        yt.backward(torch.from_numpy(g))
        np.testing.assert_allclose(_ours(kind, nd, x, kw, backward=g), xt.grad.numpy(),
                                   **TOL[dtype])


@st.composite
def adaptive(draw):
    kind = draw(st.sampled_from(["avg", "max"]))
    nd = draw(st.integers(1, 3))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    top = 5 if nd == 3 else 10
    sizes = [draw(st.integers(1, top)) for _ in range(nd)]
    out = tuple(draw(st.integers(1, top + 2)) for _ in range(nd))
    return kind, nd, dtype, (draw(st.integers(1, 2)), draw(st.sampled_from([1, 3])), *sizes), out


@given(case=adaptive(), seed=SEEDS)
def test_adaptive_pooling_matches_torch(case, seed):
    kind, nd, dtype, shape, out = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    fwd = getattr(ops, f"adaptive_{kind}_pool{nd}d")
    bwd = getattr(ops, f"adaptive_{kind}_pool{nd}d_backward")
    yt = getattr(F, f"adaptive_{kind}_pool{nd}d")(xt, out)
    y = fwd(x, out)
    np.testing.assert_allclose(y, yt.detach().numpy(), **TOL[dtype])
    g = rng.standard_normal(y.shape).astype(dtype)
    if y.size:
        yt.backward(torch.from_numpy(g))
        np.testing.assert_allclose(bwd(g, x, out), xt.grad.numpy(), **TOL[dtype])
    if kind == "max":
        _, it = getattr(F, f"adaptive_max_pool{nd}d")(torch.from_numpy(x), out, True)
        np.testing.assert_array_equal(fwd(x, out, True)[1], it.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_resnet_stem_and_vgg_layers_match_torch(rng, dtype):
    x = rng.standard_normal((2, 8, 32, 32)).astype(dtype)
    xt = torch.from_numpy(x)
    for k, s, p in ((3, 2, 1), (2, 2, 0)):
        y, i = ops.max_pool2d(x, k, s, p, return_indices=True)
        yt, it = F.max_pool2d(xt, k, s, p, return_indices=True)
        np.testing.assert_array_equal(y, yt.numpy())
        np.testing.assert_array_equal(i, it.numpy())
        g = rng.standard_normal(y.shape).astype(dtype)
        gt = torch.ops.aten.max_pool2d_with_indices_backward(
            torch.from_numpy(g), xt, [k, k], [s, s], [p, p], [1, 1], False, it)
        np.testing.assert_array_equal(ops.max_pool2d_backward(g, x, k, s, p, indices=i),
                                      gt.numpy())
        np.testing.assert_allclose(ops.avg_pool2d(x, k, s, p),
                                   F.avg_pool2d(xt, k, s, p).numpy(), **TOL[dtype])
    np.testing.assert_allclose(ops.global_avg_pool2d(x),
                               F.adaptive_avg_pool2d(xt, 1).numpy(), **TOL[dtype])


@pytest.mark.parametrize("p", [1.0, 1.5, 2.0, 3.0])
def test_lp_pool_differs_from_torch_only_where_documented(p):
    # a window of zeros: our gradient is 0 (older torch releases give NaN there)
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 2:, 2:] = [[1.0, 2.0], [3.0, 4.0]]
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    F.lp_pool2d(xt, p, 2).sum().backward()
    gx = ops.lp_pool2d_backward(np.ones((1, 1, 2, 2)), x, p, 2)
    assert np.all(np.isfinite(gx)) and np.all(gx[0, 0, :2] == 0) and np.all(gx[0, 0, :, :2] == 0)
    np.testing.assert_allclose(gx[0, 0, 2:, 2:], xt.grad.numpy()[0, 0, 2:, 2:], rtol=1e-12)
    # negative inputs with odd p: torch sums x**3 (signed), we sum |x|**3
    x = np.array([[[-1.0, 2.0]]])
    assert ops.lp_pool1d(x, 3, 2)[0, 0, 0] == pytest.approx(9 ** (1 / 3), rel=1e-14)
    assert F.lp_pool1d(torch.from_numpy(x), 3, 2)[0, 0, 0].item() == pytest.approx(
        7 ** (1 / 3), rel=1e-14)
    # p = inf is max |x|; torch has no such norm_type
    assert ops.lp_pool1d(x, math.inf, 2)[0, 0, 0] == 2.0
