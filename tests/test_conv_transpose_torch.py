"""conv_transpose1d/2d/3d against torch.nn.functional (skips without torch)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from cnncore import ops  # noqa: E402


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("kw", [
    dict(),
    dict(stride=2, padding=1, output_padding=1),
    dict(stride=3, dilation=2, padding=2, output_padding=1),
    dict(stride=1, dilation=3, output_padding=2),
    dict(groups=2, stride=2, padding=1),
])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matches_torch(nd, kw, dtype):
    rng = np.random.default_rng(nd)
    size = {1: (7,), 2: (5, 6), 3: (3, 4, 5)}[nd]
    k = {1: (3,), 2: (3, 2), 3: (2, 3, 2)}[nd]
    x = rng.standard_normal((2, 4, *size)).astype(dtype)
    w = rng.standard_normal((4, 3, *k)).astype(dtype)
    b = rng.standard_normal(3 * kw.get("groups", 1)).astype(dtype)
    tf = getattr(F, f"conv_transpose{nd}d")
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = tf(xt, wt, bt, **kw)
    g = rng.standard_normal(tuple(yt.shape)).astype(dtype)
    yt.backward(torch.tensor(g))
    y = getattr(ops, f"conv_transpose{nd}d")(x, w, b, **kw)
    grads = getattr(ops, f"conv_transpose{nd}d_backward")(g, x, w, **kw)
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(y, yt.detach().numpy(), **tol)
    for ours, theirs in zip(grads, (xt.grad, wt.grad, bt.grad)):
        np.testing.assert_allclose(ours, theirs.numpy(), **tol)


@pytest.mark.parametrize("nd", [1, 3])
def test_conv1d_conv3d_match_torch(nd):
    rng = np.random.default_rng(10 + nd)
    size = {1: (11,), 3: (5, 6, 4)}[nd]
    x = rng.standard_normal((2, 4, *size))
    w = rng.standard_normal((6, 2, *([3] * nd)))
    b = rng.standard_normal(6)
    kw = dict(stride=2, padding=1, dilation=1, groups=2)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = getattr(F, f"conv{nd}d")(xt, wt, bt, **kw)
    g = rng.standard_normal(tuple(yt.shape))
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(getattr(ops, f"conv{nd}d")(x, w, b, **kw), yt.detach().numpy(),
                               rtol=1e-10, atol=1e-10)
    for ours, theirs in zip(getattr(ops, f"conv{nd}d_backward")(g, x, w, **kw),
                            (xt.grad, wt.grad, bt.grad)):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-10, atol=1e-10)
