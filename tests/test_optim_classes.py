"""fastvision.optim classes: 200 steps vs torch.optim on the same parameters and gradients,
the Keras epsilon convention vs a float64 Keras formula, param groups, state_dict round
trips, hyper-parameter errors; StepLR / CosineAnnealingLR vs torch's."""

import math

import numpy as np
import pytest

import fastvision as fv
from fastvision import optim
from fastvision.nn import Parameter

SHAPES = [(7,), (3, 5), (2, 3, 3, 3)]

CONFIGS = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-3)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-2)),
    ("Adam", dict()),
    ("Adam", dict(lr=1e-2, betas=(0.8, 0.99), weight_decay=1e-2, amsgrad=True)),
    ("AdamW", dict(lr=1e-2)),
    ("AdamW", dict(lr=1e-2, amsgrad=True, weight_decay=0.1)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=1e-3, momentum=0.9, centered=True, weight_decay=1e-2)),
    ("SGD", dict(lr=0.05, momentum=0.5, maximize=True)),
]


def _params(rng):
    return [rng.standard_normal(s).astype(np.float32) for s in SHAPES]


def _grads(rng, step):
    # varying scale so the moments see small and large gradients
    return [(rng.standard_normal(s) * (1 + step % 7)).astype(np.float32) for s in SHAPES]


@pytest.mark.parametrize("name,kw", CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)])
def test_200_steps_match_torch(name, kw):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    init = _params(rng)
    ours = [Parameter(a.copy()) for a in init]
    theirs = [torch.nn.Parameter(torch.tensor(a)) for a in init]
    opt, topt = getattr(optim, name)(ours, **kw), getattr(torch.optim, name)(theirs, **kw)
    for step in range(200):
        for p, tp, g in zip(ours, theirs, _grads(rng, step)):
            p.grad = fv.tensor(g)
            tp.grad = torch.tensor(g)
        opt.step()
        topt.step()
    for p, tp in zip(ours, theirs):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=2e-5, atol=2e-6)


def test_keras_eps_convention_matches_keras_formula():
    rng = np.random.default_rng(1)
    p0 = rng.standard_normal(9).astype(np.float32)
    p = Parameter(p0.copy())
    lr, b1, b2, eps = 1e-2, 0.9, 0.999, 1e-3     # a large eps makes the convention visible
    opt = optim.Adam([p], lr=lr, betas=(b1, b2), eps=eps, eps_convention="keras")
    q, m, v = p0.astype(np.float64), np.zeros(9), np.zeros(9)
    torch_like = Parameter(p0.copy())
    opt_t = optim.Adam([torch_like], lr=lr, betas=(b1, b2), eps=eps)
    for t in range(1, 31):
        g = (rng.standard_normal(9) * 1e-3).astype(np.float32)
        p.grad = torch_like.grad = fv.tensor(g)
        opt.step()
        opt_t.step()
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g.astype(np.float64) ** 2
        lr_t = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        q = q - lr_t * m / (np.sqrt(v) + eps)        # Keras: eps added to the raw sqrt(v)
    np.testing.assert_allclose(p.data, q, rtol=1e-5, atol=1e-6)
    assert np.abs(torch_like.data - q).max() > 1e-3  # the torch convention differs here
    with pytest.raises(ValueError, match="eps_convention"):
        optim.Adam([p], eps_convention="tf")


@pytest.mark.parametrize("name,kw", [
    ("Adam", dict()),
    ("Adam", dict(lr=1e-2, betas=(0.8, 0.99), weight_decay=1e-2, amsgrad=True, maximize=True)),
    ("Adam", dict(eps=1e-7, eps_convention="keras")),
    ("AdamW", dict(lr=1e-2, amsgrad=True, weight_decay=0.1)),
])
def test_adam_foreach_and_per_tensor_steps_agree_bitwise(name, kw):
    """foreach (the default) updates a group's tensors in one call; foreach=False one call per
    tensor: the same bits, a parameter without a gradient skipped either way, and the same
    per-parameter step counts (one parameter misses steps, so its count lags)."""
    rng = np.random.default_rng(4)
    init = _params(rng)
    runs = []
    for foreach in (None, False):
        ps = [Parameter(a.copy()) for a in init]
        opt = getattr(optim, name)([{"params": ps[:2]}, {"params": ps[2:], "lr": 3e-3}],
                                   foreach=foreach, **kw)
        g_rng = np.random.default_rng(5)
        for step in range(30):
            for i, (p, g) in enumerate(zip(ps, _grads(g_rng, step))):
                p.grad = None if (i == 1 and step % 4 == 0) else fv.tensor(g)
            opt.step()
        runs.append((ps, opt))
    (a, oa), (b, ob) = runs
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p.data.view(np.uint32), q.data.view(np.uint32))
    assert [oa.state[p]["step"] for p in a] == [ob.state[p]["step"] for p in b] == [30, 22, 30]
    with pytest.raises(TypeError, match="foreach must be None or a bool"):
        getattr(optim, name)(a, foreach=1)


def test_param_groups_and_skip_params_without_grad():
    a, b, c = Parameter(np.ones(3)), Parameter(np.ones(2)), Parameter(np.ones(2))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1, momentum=0.9)
    assert opt.param_groups[1]["lr"] == 0.5 and opt.param_groups[0]["momentum"] == 0.9
    assert set(opt.param_groups[0]) >= {"params", "lr", "momentum", "dampening",
                                        "weight_decay", "nesterov", "maximize"}
    opt.add_param_group({"params": c, "lr": 1.0})
    a.grad, b.grad = fv.ones(3), fv.ones(2)
    opt.step()
    np.testing.assert_allclose(a.data, 0.9)
    np.testing.assert_allclose(b.data, 0.5)
    np.testing.assert_array_equal(c.data, 1.0)       # no grad: untouched
    opt.zero_grad()
    assert a.grad is None
    with pytest.raises(ValueError, match="more than once"):
        opt.add_param_group({"params": [a]})


def test_state_dict_roundtrip_continues_identically():
    rng = np.random.default_rng(2)
    init = _params(rng)
    grads = [_grads(rng, s) for s in range(20)]

    def run(steps, opt=None, params=None):
        for gs in steps:
            for p, g in zip(params, gs):
                p.grad = fv.tensor(g)
            opt.step()

    p1 = [Parameter(a.copy()) for a in init]
    o1 = optim.Adam(p1, lr=1e-2, amsgrad=True)
    run(grads, o1, p1)
    p2 = [Parameter(a.copy()) for a in init]
    o2 = optim.Adam(p2, lr=1e-2, amsgrad=True)
    run(grads[:10], o2, p2)
    sd = o2.state_dict()
    assert sd["param_groups"][0]["params"] == [0, 1, 2] and sd["state"][0]["step"] == 10
    p3 = [Parameter(p.data.copy()) for p in p2]
    o3 = optim.Adam(p3, lr=1e-3)
    o3.load_state_dict(sd)
    assert o3.param_groups[0]["lr"] == 1e-2
    run(grads[10:], o3, p3)
    for a, b in zip(p1, p3):
        np.testing.assert_array_equal(a.data, b.data)
    bad = o2.state_dict()
    bad["state"][1]["exp_avg"] = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match="shape"):
        o3.load_state_dict(bad)


@pytest.mark.parametrize("ctor,match", [
    (lambda p: optim.SGD(p, lr=-1), "invalid lr"),
    (lambda p: optim.SGD(p, nesterov=True), "Nesterov"),
    (lambda p: optim.Adam(p, betas=(0.9, 1.0)), "beta parameter at index 1"),
    (lambda p: optim.Adam(p, eps=-1e-8), "invalid eps"),
    (lambda p: optim.RMSprop(p, alpha=-0.5), "invalid alpha"),
    (lambda p: optim.AdamW([], lr=1.0), "empty parameter list"),
])
def test_bad_hyper_parameters(ctor, match):
    with pytest.raises(ValueError, match=match):
        ctor([Parameter(np.ones(2))])


def test_rejects_non_tensor_params():
    with pytest.raises(TypeError, match="params\\[0\\] must be a Tensor"):
        optim.SGD([np.ones(2)], lr=0.1)


def _lrs(sched, opt, n):
    out = []
    for _ in range(n):
        opt.step()
        sched.step()
        out.append(sched.get_last_lr()[0])
    return out


@pytest.mark.parametrize("kind", ["step", "cosine", "cosine_eta"])
def test_schedulers_match_torch(kind):
    torch = pytest.importorskip("torch")
    ours = optim.SGD([Parameter(np.ones(2))], lr=0.1, momentum=0.9)
    theirs = torch.optim.SGD([torch.nn.Parameter(torch.ones(2))], lr=0.1, momentum=0.9)

    def make(mod, opt):
        if kind == "step":
            return mod.StepLR(opt, step_size=7, gamma=0.5)
        return mod.CosineAnnealingLR(opt, T_max=10, eta_min=0.0 if kind == "cosine" else 1e-3)

    s, ts = make(optim.lr_scheduler, ours), make(torch.optim.lr_scheduler, theirs)
    assert s.get_last_lr() == ts.get_last_lr()
    np.testing.assert_allclose(_lrs(s, ours, 45), _lrs(ts, theirs, 45), rtol=1e-12, atol=1e-15)
    assert ours.param_groups[0]["lr"] == s.get_last_lr()[0]


def test_loads_a_torch_optimizer_state_dict_and_continues_like_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    init = _params(rng)
    theirs = [torch.nn.Parameter(torch.tensor(a)) for a in init]
    topt = torch.optim.Adam(theirs, lr=1e-2, amsgrad=True)
    grads = [_grads(rng, s) for s in range(20)]
    for step, gs in enumerate(grads):
        if step == 10:
            ours = [Parameter(p.detach().numpy().copy()) for p in theirs]
            opt = optim.Adam(ours, lr=0.5)
            opt.load_state_dict(topt.state_dict())
            assert opt.param_groups[0]["lr"] == 1e-2 and opt.state[ours[0]]["step"] == 10
        for i, g in enumerate(gs):
            theirs[i].grad = torch.tensor(g)
            if step >= 10:
                ours[i].grad = fv.tensor(g)
        topt.step()
        if step >= 10:
            opt.step()
    for p, tp in zip(ours, theirs):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-5, atol=1e-6)
