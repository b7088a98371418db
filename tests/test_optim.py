"""cnncore.optim: update rules (by hand and against torch), state dicts, schedulers."""
import math

import numpy as np
import pytest

import cnncore as cc
from cnncore import nn, optim


def quadratic_steps(opt_fn, steps=5, dtype=np.float64):
    """Run ``steps`` updates on L = sum(w * g_t) with known gradients g_t."""
    w = nn.Parameter(np.array([1.0, -2.0, 0.5], dtype=dtype))
    opt = opt_fn([w])
    grads = [np.array([0.5, -1.0, 2.0]) * (t + 1) ** 0.5 for t in range(steps)]
    for g in grads:
        opt.zero_grad()
        (w * cc.tensor(g.astype(dtype))).sum().backward()
        opt.step()
    return w.numpy().copy(), grads, opt


def test_sgd_plain_and_weight_decay():
    w, grads, _ = quadratic_steps(lambda p: optim.SGD(p, lr=0.1, weight_decay=0.01), steps=3)
    ref = np.array([1.0, -2.0, 0.5])
    for g in grads:
        ref = ref - 0.1 * (g + 0.01 * ref)
    np.testing.assert_allclose(w, ref)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_by_hand(nesterov):
    w, grads, _ = quadratic_steps(lambda p: optim.SGD(p, lr=0.1, momentum=0.9,
                                                      nesterov=nesterov))
    ref, buf = np.array([1.0, -2.0, 0.5]), None
    for g in grads:
        buf = g.copy() if buf is None else 0.9 * buf + g
        ref = ref - 0.1 * (g + 0.9 * buf if nesterov else buf)
    np.testing.assert_allclose(w, ref)


def test_adam_by_hand():
    w, grads, _ = quadratic_steps(lambda p: optim.Adam(p, lr=0.01))
    ref = np.array([1.0, -2.0, 0.5])
    m = v = 0
    for t, g in enumerate(grads, 1):
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        ref = ref - 0.01 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    np.testing.assert_allclose(w, ref)


OPTS = {
    "sgd": (lambda p: optim.SGD(p, lr=0.05), "SGD", dict(lr=0.05)),
    "sgd-momentum-wd": (lambda p: optim.SGD(p, lr=0.05, momentum=0.8, weight_decay=0.1,
                                            dampening=0.1), "SGD",
                        dict(lr=0.05, momentum=0.8, weight_decay=0.1, dampening=0.1)),
    "sgd-nesterov": (lambda p: optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True), "SGD",
                     dict(lr=0.05, momentum=0.9, nesterov=True)),
    "adam": (lambda p: optim.Adam(p, lr=0.02, betas=(0.8, 0.99)), "Adam",
             dict(lr=0.02, betas=(0.8, 0.99))),
    "adam-wd-amsgrad": (lambda p: optim.Adam(p, lr=0.02, weight_decay=0.1, amsgrad=True),
                        "Adam", dict(lr=0.02, weight_decay=0.1, amsgrad=True)),
    "adamw": (lambda p: optim.AdamW(p, lr=0.02, weight_decay=0.3), "AdamW",
              dict(lr=0.02, weight_decay=0.3)),
}


@pytest.mark.parametrize("name", sorted(OPTS))
def test_matches_torch(name):
    torch = pytest.importorskip("torch")
    ours, tname, kw = OPTS[name]
    w, grads, _ = quadratic_steps(ours, steps=6)
    tw = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
    topt = getattr(torch.optim, tname)([tw], **kw)
    for g in grads:
        topt.zero_grad()
        (tw * torch.from_numpy(g)).sum().backward()
        topt.step()
    np.testing.assert_allclose(w, tw.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_float32_parameters_stay_float32():
    w, _, opt = quadratic_steps(lambda p: optim.Adam(p, lr=0.01), dtype=np.float32)
    assert w.dtype == np.float32
    assert opt.state_dict()["state"][0]["exp_avg"].dtype == np.float32


def test_state_dict_round_trip_continues_identically():
    def make():
        cc.manual_seed(0)
        model = nn.Linear(3, 2)
        return model, optim.Adam(model.parameters(), lr=0.01)

    x = cc.tensor(np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32))

    def step(model, opt):
        opt.zero_grad()
        (model(x) ** 2).mean().backward()
        opt.step()

    m1, o1 = make()
    for _ in range(3):
        step(m1, o1)
    m2, o2 = make()
    m2.load_state_dict(m1.state_dict())
    o2.load_state_dict(o1.state_dict())
    assert o2.state_dict()["state"][0]["step"] == 3
    for _ in range(2):
        step(m1, o1)
        step(m2, o2)
    np.testing.assert_array_equal(m1.weight.numpy(), m2.weight.numpy())


def test_state_dict_layout_and_mismatch_errors():
    a = nn.Parameter(np.ones(3))
    b = nn.Parameter(np.ones(2))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1, momentum=0.9)
    (a.sum() + b.sum()).backward()
    opt.step()
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1]]
    assert [g["lr"] for g in sd["param_groups"]] == [0.1, 0.5]
    np.testing.assert_array_equal(sd["state"][1]["momentum_buffer"], np.ones(2))
    other = optim.SGD([nn.Parameter(np.ones(3))], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="2 parameter groups"):
        other.load_state_dict(sd)


def test_argument_checks():
    p = [nn.Parameter(np.ones(2))]
    with pytest.raises(ValueError, match="learning rate"):
        optim.SGD(p, lr=-1)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD(p, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam(p, betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="empty"):
        optim.Adam([])


def test_schedulers():
    p = [nn.Parameter(np.ones(1))]
    opt = optim.SGD(p, lr=1.0)
    s = optim.StepLR(opt, step_size=2, gamma=0.5)
    lrs = []
    for _ in range(5):
        lrs.append(opt.param_groups[0]["lr"])
        s.step()
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.25]
    opt = optim.SGD(p, lr=0.1)
    c = optim.CosineAnnealingLR(opt, T_max=4, eta_min=0.01)
    got = []
    for _ in range(5):
        got.append(c.get_last_lr()[0])
        c.step()
    expect = [0.01 + 0.09 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(5)]
    np.testing.assert_allclose(got, expect)
    opt = optim.SGD(p, lr=1.0)
    m = optim.lr_scheduler.MultiStepLR(opt, [1, 3], gamma=0.1)
    for _ in range(3):
        m.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01)


def test_training_reduces_loss():
    cc.manual_seed(0)
    rng = np.random.default_rng(0)
    x = cc.tensor(rng.standard_normal((64, 4)).astype(np.float32))
    y = cc.tensor((x.numpy() @ np.array([1.0, -1.0, 0.5, 0.0]) > 0).astype(np.int64))
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    for opt in (optim.SGD(model.parameters(), lr=0.2, momentum=0.9),
                optim.AdamW(model.parameters(), lr=0.02)):
        first = None
        for _ in range(60):
            loss = nn.CrossEntropyLoss()(model(x), y)
            first = first if first is not None else loss.item()
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert loss.item() < 0.5 * first


# --- hand-computed sequences, no torch (guards lines the torch comparison alone would miss) ---


def test_sgd_dampening_by_hand():
    w, grads, _ = quadratic_steps(lambda p: optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.5))
    ref, buf = np.array([1.0, -2.0, 0.5]), None
    for g in grads:
        # the first step stores g undamped (torch's rule); later ones add (1 - dampening) * g
        buf = g.copy() if buf is None else 0.9 * buf + 0.5 * g
        ref = ref - 0.1 * buf
    np.testing.assert_allclose(w, ref)


def test_adamw_decoupled_decay_by_hand():
    w, grads, _ = quadratic_steps(lambda p: optim.AdamW(p, lr=0.01, weight_decay=0.1))
    ref = np.array([1.0, -2.0, 0.5])
    m = v = 0
    for t, g in enumerate(grads, 1):
        ref = ref * (1 - 0.01 * 0.1)                 # decay first, not through the gradient
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        ref = ref - 0.01 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    np.testing.assert_allclose(w, ref)
    # and it differs from Adam's L2 decay with the same coefficient
    w_l2, _, _ = quadratic_steps(lambda p: optim.Adam(p, lr=0.01, weight_decay=0.1))
    assert np.abs(w_l2 - w).max() > 1e-6


def _lrs(make, n, lr=1.0):
    opt = optim.SGD([nn.Parameter(np.ones(1))], lr=lr)
    s = make(opt)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        s.step()
    return out


def test_exponential_lr_sequence():
    np.testing.assert_allclose(_lrs(lambda o: optim.lr_scheduler.ExponentialLR(o, gamma=0.5), 4),
                               [1.0, 0.5, 0.25, 0.125])


def test_linear_warmup_sequence():
    got = _lrs(lambda o: optim.lr_scheduler.LinearWarmup(o, warmup=4, start_factor=0.2), 7)
    np.testing.assert_allclose(got, [0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 1.0])


def test_cosine_stays_at_eta_min_after_t_max():
    got = _lrs(lambda o: optim.CosineAnnealingLR(o, T_max=2, eta_min=0.1), 6)
    np.testing.assert_allclose(got, [1.0, 0.55, 0.1, 0.1, 0.1, 0.1])


def test_param_groups_and_their_errors():
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(3))
    opt = optim.SGD([{"params": a}, {"params": [b], "lr": 0.5}], lr=0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert all(g["momentum"] == 0.9 and g["dampening"] == 0.0 for g in opt.param_groups)
    assert opt.param_groups[0]["params"] == [a]                   # a bare Tensor becomes a list
    with pytest.raises(ValueError, match="SGD: a parameter appears in more than one group"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(TypeError, match="SGD: parameters must be Tensors, got ndarray"):
        optim.SGD([np.ones(2)], lr=0.1)
    frozen = cc.tensor(np.ones(2))
    with pytest.raises(ValueError, match="SGD: a parameter does not require grad"):
        optim.SGD([frozen], lr=0.1)
    for kw, msg in ((dict(lr=-1.0), "invalid learning rate -1.0"),
                    (dict(lr=0.1, momentum=-0.5), "invalid momentum -0.5"),
                    (dict(lr=0.1, weight_decay=-1.0), "invalid weight_decay -1.0")):
        with pytest.raises(ValueError, match="SGD: " + msg):
            optim.SGD([nn.Parameter(np.ones(1))], **kw)
    for kw, msg in ((dict(betas=(1.0, 0.9)), r"betas must be in \[0, 1\)"),
                    (dict(betas=(0.9, -0.1)), r"betas must be in \[0, 1\)"),
                    (dict(eps=-1e-8), "invalid eps")):
        with pytest.raises(ValueError, match="Adam: " + msg):
            optim.Adam([nn.Parameter(np.ones(1))], **kw)
        with pytest.raises(ValueError, match="AdamW: " + msg):
            optim.AdamW([nn.Parameter(np.ones(1))], **kw)


def test_load_state_dict_rejects_mismatched_layouts():
    w = nn.Parameter(np.ones(2))
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    (w * cc.tensor(np.ones(2))).sum().backward()
    opt.step()
    state = opt.state_dict()
    two = optim.SGD([nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="a saved group has 1 parameters, this optimiser's has 2"):
        two.load_state_dict(state)
    split = optim.SGD([{"params": [nn.Parameter(np.ones(2))]},
                       {"params": [nn.Parameter(np.ones(2))]}], lr=0.1)
    with pytest.raises(ValueError, match="the saved state has 1 parameter groups, this "
                                         "optimiser has 2"):
        split.load_state_dict(state)
    bad = dict(state, state={5: state["state"][0]})
    with pytest.raises(ValueError, match="state for unknown parameter index 5"):
        optim.SGD([nn.Parameter(np.ones(2))], lr=0.1, momentum=0.9).load_state_dict(bad)
    fresh_w = nn.Parameter(np.ones(2))
    fresh = optim.SGD([fresh_w], lr=0.1, momentum=0.9)
    fresh.load_state_dict(state)
    np.testing.assert_array_equal(fresh.state[id(fresh_w)]["momentum_buffer"], np.ones(2))
    assert fresh.param_groups[0]["lr"] == 0.1
