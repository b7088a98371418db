"""The core's fused optimiser passes (``_core.sgd_update`` / ``_core.adam_update``) against
the NumPy formulas they replace (``_update_numpy``), and their argument checks."""
import numpy as np
import pytest

import cnncore as cc
from cnncore import _core, optim

SGD_CASES = [dict(momentum=0.0), dict(momentum=0.9), dict(momentum=0.9, dampening=0.3),
             dict(momentum=0.8, nesterov=True, weight_decay=1e-2), dict(weight_decay=5e-4)]
ADAM_CASES = [(optim.Adam, dict()), (optim.Adam, dict(weight_decay=1e-2, amsgrad=True)),
              (optim.AdamW, dict()), (optim.AdamW, dict(amsgrad=True, betas=(0.8, 0.99)))]


def _run(make, dtype, fused, steps=4, shape=(37, 5)):
    rng = np.random.default_rng(0)
    p = cc.Tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True)
    opt = make([p])
    for k in range(steps):
        p.grad = cc.Tensor(rng.standard_normal(shape).astype(dtype) * (k + 1))
        if fused:
            opt.step()
        else:
            for group in opt.param_groups:
                st = opt.state.setdefault(id(p), {})
                opt._update_numpy(p.data, p.grad.data, st, group)
    return p.data, opt.state[id(p)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kw", SGD_CASES)
def test_sgd_fused_equals_numpy(dtype, kw):
    make = lambda ps: optim.SGD(ps, lr=0.05, **kw)  # noqa: E731
    (w1, s1), (w2, s2) = _run(make, dtype, True), _run(make, dtype, False)
    np.testing.assert_array_equal(w1, w2)
    assert w1.dtype == dtype
    if kw.get("momentum"):
        np.testing.assert_array_equal(s1["momentum_buffer"], s2["momentum_buffer"])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls,kw", ADAM_CASES)
def test_adam_fused_matches_numpy(dtype, cls, kw):
    make = lambda ps: cls(ps, lr=0.01, **kw)  # noqa: E731
    (w1, s1), (w2, s2) = _run(make, dtype, True), _run(make, dtype, False)
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(w1, w2, rtol=tol, atol=tol)
    for k in ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if kw.get("amsgrad") else ()):
        np.testing.assert_allclose(s1[k], s2[k], rtol=tol, atol=tol)
    assert s1["step"] == s2["step"] == 4


def test_non_contiguous_parameter_takes_the_numpy_path():
    base = np.arange(40, dtype=np.float32).reshape(5, 8)
    p = cc.Tensor(base, requires_grad=True)
    p.data = base[:, ::2]  # a strided view: updated in place through NumPy
    p.grad = cc.Tensor(np.ones((5, 4), np.float32))
    optim.SGD([p], lr=0.5, momentum=0.9).step()
    np.testing.assert_array_equal(base[:, ::2], np.arange(40, dtype=np.float32).reshape(5, 8)[:, ::2] - 0.5)


def test_nan_in_the_second_moment_spreads_like_numpy_maximum():
    p = cc.Tensor(np.ones(3, np.float32), requires_grad=True)
    opt = optim.Adam([p], amsgrad=True)
    p.grad = cc.Tensor(np.array([1.0, np.nan, 2.0], np.float32))
    opt.step()
    assert np.isnan(opt.state[id(p)]["max_exp_avg_sq"][1]) and np.isnan(p.data[1])
    assert np.isfinite(p.data[[0, 2]]).all()


def test_core_updates_check_their_arguments():
    w, g = np.zeros(4, np.float32), np.ones(4, np.float32)
    with pytest.raises(ValueError, match="momentum_buffer has shape"):
        _core.sgd_update(w, g, np.zeros(3, np.float32), 0.1, 0.9, 0.0, 0.0, False, False)
    with pytest.raises(TypeError, match="grad"):
        _core.sgd_update(w, g.astype(np.float64), None, 0.1, 0.0, 0.0, 0.0, False, False)
    with pytest.raises(ValueError, match="in place"):
        _core.sgd_update(np.zeros(8, np.float32)[::2], g, None, 0.1, 0.0, 0.0, 0.0, False, False)
    ro = np.zeros(4, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="weight must be a writable"):
        _core.sgd_update(ro, g, None, 0.1, 0.0, 0.0, 0.0, False, False)
    with pytest.raises(ValueError, match="lr must be a finite non-negative"):
        _core.sgd_update(w, g, None, float("nan"), 0.0, 0.0, 0.0, False, False)
    with pytest.raises(ValueError, match="nesterov needs momentum"):
        _core.sgd_update(w, g, None, 0.1, 0.0, 0.0, 0.0, True, False)
    m, v = np.zeros(4, np.float32), np.zeros(4, np.float32)
    with pytest.raises(ValueError, match="betas must be in"):
        _core.adam_update(w, g, m, v, None, 0.1, 1.0, 0.9, 1e-8, 0.0, False, False, 1)
    with pytest.raises(ValueError, match="step counts from 1"):
        _core.adam_update(w, g, m, v, None, 0.1, 0.9, 0.9, 1e-8, 0.0, False, False, 0)
    with pytest.raises(ValueError, match="max_exp_avg_sq has shape"):
        _core.adam_update(w, g, m, v, np.zeros(2, np.float32), 0.1, 0.9, 0.9, 1e-8, 0.0, False, True, 1)
    np.testing.assert_array_equal(w, 0)  # nothing was written by a refused call
