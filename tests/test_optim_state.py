"""cnncore.optim beyond the update rules: defaults, argument boundaries and messages,
parameter groups, zero_grad and closures, state dicts (layout, copies, dtype, every
mismatch message), the repr, and the schedulers' state, resumption and defaults."""
import re

import numpy as np
import pytest

import cnncore as cc
from cnncore import nn, optim
from cnncore.optim import lr_scheduler as S


def param(values=(1.0, -2.0), dtype=np.float64):
    return nn.Parameter(np.array(values, dtype=dtype))


def step_once(opt, p, g):
    p.grad = cc.tensor(np.asarray(g, dtype=p.dtype))
    opt.step()
    return p.numpy().copy()


# --------------------------------------------------------------------------- defaults


def test_default_hyper_parameters():
    p = param()
    np.testing.assert_allclose(step_once(optim.SGD([p]), p, [1.0, 1.0]), [1 - 1e-3, -2 - 1e-3])
    a = optim.Adam([param()])
    assert a.defaults == dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                              amsgrad=False)
    w = optim.AdamW([param()])
    assert w.defaults == dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                              amsgrad=False)
    p = param()
    step_once(optim.AdamW([p]), p, [0.0, 0.0])                 # zero gradient: decay alone
    np.testing.assert_allclose(p.numpy(), np.array([1.0, -2.0]) * (1 - 1e-3 * 1e-2))
    for cls in (optim.Adam, optim.AdamW):
        q = param()
        opt = cls([q], amsgrad=True)
        step_once(opt, q, [1.0, 2.0])
        assert set(opt.state_dict()["state"][0]) == {"step", "exp_avg", "exp_avg_sq",
                                                     "max_exp_avg_sq"}
        q = param()
        opt = cls([q])
        step_once(opt, q, [1.0, 2.0])
        assert "max_exp_avg_sq" not in opt.state_dict()["state"][0]


def test_amsgrad_keeps_the_largest_second_moment():
    p = param([0.0])
    opt = optim.Adam([p], lr=0.1, betas=(0.0, 0.5), amsgrad=True)
    step_once(opt, p, [2.0])                # v = 0.5 * 4 = 2, max 2
    step_once(opt, p, [0.0])                # v = 1, max stays 2
    st = opt.state_dict()["state"][0]
    assert st["max_exp_avg_sq"].tolist() == [2.0] and st["exp_avg_sq"].tolist() == [1.0]


# --------------------------------------------------------------------------- argument checks


def test_boundaries_accepted():
    p = [param()]
    optim.SGD(p, lr=0.0, momentum=0.0, weight_decay=0.0)
    optim.Adam(p, betas=(0.0, 0.0), eps=0.0)
    optim.AdamW(p, betas=(0.99, 0.999999))


@pytest.mark.parametrize("make, message", [
    (lambda p: optim.SGD(p, lr=-1), "SGD: invalid learning rate -1"),
    (lambda p: optim.AdamW(p, lr=-0.5), "AdamW: invalid learning rate -0.5"),
    (lambda p: optim.SGD(p, momentum=-0.5), "SGD: invalid momentum -0.5"),
    (lambda p: optim.SGD(p, weight_decay=-1), "SGD: invalid weight_decay -1"),
    (lambda p: optim.SGD(p, momentum=0.9, dampening=0.1, nesterov=True),
     "SGD: Nesterov momentum needs momentum > 0 and dampening = 0"),
    (lambda p: optim.Adam(p, betas=(1.0, 0.9)), "Adam: betas must be in [0, 1), got (1.0, 0.9)"),
    (lambda p: optim.Adam(p, betas=(-0.1, 0.9)), "Adam: betas must be in [0, 1), got (-0.1, 0.9)"),
    (lambda p: optim.AdamW(p, betas=(0.9, 1.0)), "AdamW: betas must be in [0, 1), got (0.9, 1.0)"),
    (lambda p: optim.Adam(p, betas=(0.9, -1e-3)),
     "Adam: betas must be in [0, 1), got (0.9, -0.001)"),
    (lambda p: optim.Adam(p, betas=(0.9, 1.5)), "Adam: betas must be in [0, 1), got (0.9, 1.5)"),
    (lambda p: optim.AdamW(p, eps=-1e-8), "AdamW: invalid eps -1e-08"),
    (lambda p: optim.AdamW([]), "AdamW: got an empty parameter list"),
])
def test_argument_messages(make, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        make([param()])


def test_parameter_groups():
    a, b, c = param(), param(), param()
    opt = optim.SGD([{"params": a}, {"params": (b,), "lr": 0.5}], lr=0.1, momentum=0.9)
    assert [g["params"] for g in opt.param_groups] == [[a], [b]]
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert opt.param_groups[0]["momentum"] == 0.9
    opt.add_param_group({"params": [c], "momentum": 0.0})
    assert opt.param_groups[2]["params"] == [c] and opt.param_groups[2]["lr"] == 0.1
    with pytest.raises(ValueError, match="^SGD: a parameter appears in more than one group$"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(TypeError, match="^Adam: parameters must be Tensors, got ndarray$"):
        optim.Adam([np.ones(2)])
    with pytest.raises(ValueError, match="^Adam: a parameter does not require grad$"):
        optim.Adam([cc.tensor(np.ones(2))])
    with pytest.raises(ValueError, match="^SGD: invalid learning rate -2$"):
        opt.add_param_group({"params": [param()], "lr": -2})


def test_zero_grad_and_closures():
    p, q = param(), param()
    opt = optim.SGD([p, q], lr=0.1)
    p.grad = cc.tensor(np.ones(2))
    opt.zero_grad(set_to_none=False)
    assert p.grad.numpy().tolist() == [0.0, 0.0] and q.grad is None
    assert not np.shares_memory(p.grad.numpy(), p.numpy())
    opt.zero_grad()
    assert p.grad is None
    calls = []

    def closure():
        calls.append(1)
        p.grad = cc.tensor(np.ones(2))
        return 42.0

    assert opt.step(closure) == 42.0 and calls == [1]
    np.testing.assert_allclose(p.numpy(), [0.9, -2.1])
    assert opt.step() is None
    np.testing.assert_allclose(q.numpy(), [1.0, -2.0])             # no gradient, no update


def test_momentum_buffer_keeps_the_parameter_dtype():
    p = param(dtype=np.float32)
    opt = optim.SGD([p], lr=0.1, momentum=0.5)
    p.grad = cc.tensor(np.array([1.0, 1.0]))                        # a float64 gradient
    opt.step()
    assert opt.state[id(p)]["momentum_buffer"].dtype == np.float32 and p.dtype == np.float32


def test_momentum_buffer_is_its_own_array():
    p = param()
    opt = optim.SGD([p], lr=0.1, momentum=0.5)
    g = cc.tensor(np.array([1.0, 1.0]))
    p.grad = g
    opt.step()
    buf = opt.state[id(p)]["momentum_buffer"]
    assert not np.shares_memory(buf, g.numpy())
    opt.step()                                                      # same gradient again
    assert g.numpy().tolist() == [1.0, 1.0] and buf.tolist() == [1.5, 1.5]


# --------------------------------------------------------------------------- state dicts


def trained(opt_cls=optim.SGD, **kw):
    p, q = param(), param([3.0])
    opt = opt_cls([{"params": [p]}, {"params": [q], "lr": 0.2}], lr=0.1, **kw)
    p.grad, q.grad = cc.tensor(np.ones(2)), cc.tensor(np.ones(1))
    opt.step()
    return opt, p, q


def test_state_dict_layout_and_copies():
    opt, p, q = trained(momentum=0.9)
    sd = opt.state_dict()
    assert [sorted(g) for g in sd["param_groups"]] == [
        ["dampening", "lr", "momentum", "nesterov", "params", "weight_decay"]] * 2
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1]]
    sd["state"][0]["momentum_buffer"][:] = 99
    assert opt.state[id(p)]["momentum_buffer"].tolist() == [1.0, 1.0]   # a copy


def test_load_state_dict_converts_copies_and_checks():
    opt, p, q = trained(optim.Adam, betas=[0.8, 0.9])
    sd = opt.state_dict()
    p32, q32 = param(dtype=np.float32), param([3.0], dtype=np.float32)
    new = optim.Adam([{"params": [p32]}, {"params": [q32]}], lr=0.5)
    sd["state"][0]["step"] = np.array(1)                            # 0-d: a number
    new.load_state_dict(sd)
    st = new.state[id(p32)]
    assert st["step"] == 1 and isinstance(st["step"], int)
    assert st["exp_avg"].dtype == np.float32
    sd["state"][0]["exp_avg"][:] = 7
    assert st["exp_avg"].tolist() == pytest.approx([0.2, 0.2])       # not shared
    assert [g["lr"] for g in new.param_groups] == [0.1, 0.2]
    sd = opt.state_dict()
    sd["param_groups"][0]["betas"] = saved = [0.7, 0.9]              # a list, as cc.load gives
    new.load_state_dict(sd)
    saved[0] = 0.0
    assert new.param_groups[0]["betas"] == [0.7, 0.9]                # a copy
    sd["param_groups"][1]["tags"] = tags = {"stage": ["warm"]}       # any user key, nested
    new.load_state_dict(sd)
    tags["stage"].append("cold")
    assert new.param_groups[1]["tags"] == {"stage": ["warm"]}         # a deep copy
    same = optim.Adam([{"params": [param()]}, {"params": [param([3.0])]}])
    sd = opt.state_dict()
    same.load_state_dict(sd)
    a = sd["state"][0]["exp_avg"]
    assert not np.shares_memory(same.state[id(same.param_groups[0]["params"][0])]["exp_avg"], a)
    new.step()                                                       # the loaded state runs


@pytest.mark.parametrize("edit, message", [
    (lambda sd: sd["param_groups"].pop(), "SGD.load_state_dict: the saved state has 1 "
                                          "parameter groups, this optimiser has 2"),
    (lambda sd: sd["param_groups"][1].update(params=[1, 2]),
     "SGD.load_state_dict: a saved group has 2 parameters, this optimiser's has 1"),
    (lambda sd: sd["state"].update({5: {}}), "SGD.load_state_dict: state for unknown parameter "
                                             "index 5"),
    (lambda sd: sd["state"][0].update(momentum_buffer=np.ones(3)),
     "SGD.load_state_dict: momentum_buffer of parameter 0 has shape (3,), the parameter has "
     "(2,)"),
])
def test_load_state_dict_messages(edit, message):
    opt, _, _ = trained(momentum=0.9)
    sd = opt.state_dict()
    edit(sd)
    other, _, _ = trained(momentum=0.9)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        other.load_state_dict(sd)


def test_repr_lists_groups_without_parameters():
    opt, _, _ = trained(momentum=0.9)
    assert repr(opt) == "\n".join([
        "SGD (", "Parameter Group 0", "    dampening: 0.0", "    lr: 0.1", "    momentum: 0.9",
        "    nesterov: False", "    weight_decay: 0.0", "Parameter Group 1", "    dampening: 0.0",
        "    lr: 0.2", "    momentum: 0.9", "    nesterov: False", "    weight_decay: 0.0", ")"])


# --------------------------------------------------------------------------- schedulers


def lrs(sched, opt, n):
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        sched.step()
    return out


def test_scheduler_defaults():
    opt = optim.SGD([param()], lr=1.0)
    np.testing.assert_allclose(lrs(S.StepLR(opt, 1), opt, 3), [1.0, 0.1, 0.01])
    opt = optim.SGD([param()], lr=1.0)
    np.testing.assert_allclose(lrs(S.MultiStepLR(opt, [2]), opt, 3), [1.0, 1.0, 0.1])
    opt = optim.SGD([param()], lr=1.0)
    np.testing.assert_allclose(lrs(S.CosineAnnealingLR(opt, 1), opt, 3), [1.0, 0.0, 0.0],
                               atol=1e-15)
    opt = optim.SGD([param()], lr=1.0)
    np.testing.assert_allclose(lrs(S.LinearWarmup(opt, 2), opt, 3), [0.1, 0.55, 1.0])
    opt = optim.SGD([param()], lr=1.0)
    np.testing.assert_allclose(lrs(S.MultiStepLR(opt, [3, 1], gamma=0.5), opt, 4),
                               [1.0, 0.5, 0.5, 0.25])              # milestones sorted


def test_schedulers_resume_from_last_epoch_and_initial_lr():
    for make, want in ((lambda o: S.StepLR(o, 2, 0.5, last_epoch=3), 0.25),
                       (lambda o: S.ExponentialLR(o, 0.5, last_epoch=1), 0.25),
                       (lambda o: S.MultiStepLR(o, [1, 2], 0.5, last_epoch=1), 0.25),
                       (lambda o: S.CosineAnnealingLR(o, 4, last_epoch=1), 0.5),
                       (lambda o: S.LinearWarmup(o, 4, 0.2, last_epoch=1), 0.6)):
        opt = optim.SGD([param()], lr=1.0)
        opt.param_groups[0]["initial_lr"] = 1.0
        opt.param_groups[0]["lr"] = 123.0                 # resuming: initial_lr is the base
        s = make(opt)
        assert opt.param_groups[0]["lr"] == pytest.approx(want) and s.get_last_lr() == \
            [opt.param_groups[0]["lr"]]


def test_scheduler_state_round_trip():
    opt = optim.SGD([param()], lr=1.0)
    s = S.StepLR(opt, 2, 0.5)
    for _ in range(3):
        s.step()
    sd = s.state_dict()
    assert "optimizer" not in sd and sd["last_epoch"] == 3 and sd["base_lrs"] == [1.0]
    assert sd["step_size"] == 2 and sd["gamma"] == 0.5
    opt2 = optim.SGD([param()], lr=1.0)
    s2 = S.StepLR(opt2, 5, 0.1)
    s2.load_state_dict(sd)
    assert s2.optimizer is opt2 and (s2.step_size, s2.gamma, s2.last_epoch) == (2, 0.5, 3)
    s2.step()
    assert opt2.param_groups[0]["lr"] == 0.25


def test_scheduler_argument_messages():
    opt = optim.SGD([param()], lr=1.0)
    for bad in (0, -1):
        with pytest.raises(ValueError, match=f"^StepLR: step_size must be positive, got {bad}$"):
            S.StepLR(opt, bad)
        with pytest.raises(ValueError, match=f"^CosineAnnealingLR: T_max must be positive, got "
                                             f"{bad}$"):
            S.CosineAnnealingLR(opt, bad)
