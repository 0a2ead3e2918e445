"""sgd_step, adam_step, rmsprop_step against float64 transcriptions of torch.optim, at every
ISA level; torch.optim itself as an oracle when importable."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

import fastvision as fv
from fastvision import _C
from reference import optim as ref
from tolerances import assert_close

SIZES = [1, 7, 8, 9, 15, 16, 17, 31, 33, 65]

CONFIGS = [
    ("sgd", dict(lr=0.1)),
    ("sgd", dict(lr=0.05, momentum=0.9)),
    ("sgd", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-2)),
    ("sgd", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=1e-3)),
    ("adam", dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8)),
    ("adam", dict(lr=1e-2, beta1=0.9, beta2=0.99, eps=1e-6, weight_decay=1e-2)),
    ("adam", dict(lr=1e-2, beta1=0.8, beta2=0.999, eps=1e-8, amsgrad=True)),
    ("adam", dict(lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=1e-2,
                  decoupled_weight_decay=True)),
    ("adam", dict(lr=1e-2, beta1=0.3, beta2=0.5, eps=1e-8, weight_decay=1e-1,
                  decoupled_weight_decay=True, amsgrad=True)),  # lerp's large-weight branch
    ("adam", dict(lr=1e-2, beta1=0.0, beta2=0.0, eps=1e-3)),
    ("rmsprop", dict(lr=1e-2, alpha=0.99, eps=1e-8)),
    ("rmsprop", dict(lr=1e-2, alpha=0.9, eps=1e-8, momentum=0.9, weight_decay=1e-2)),
    ("rmsprop", dict(lr=1e-3, alpha=0.99, eps=1e-8, centered=True)),
    ("rmsprop", dict(lr=1e-3, alpha=0.3, eps=1e-6, centered=True, momentum=0.5)),
]
IDS = [f"{o}{i}" for i, (o, _) in enumerate(CONFIGS)]


def make_state(opt, kw, n, dtype):
    z = lambda: np.zeros(n, dtype)  # noqa: E731
    if opt == "sgd":
        return {"momentum_buf": z() if kw.get("momentum", 0) else None}
    if opt == "adam":
        return {"m": z(), "v": z(), "v_max": z() if kw.get("amsgrad") else None}
    return {"square_avg": z(), "momentum_buf": z() if kw.get("momentum", 0) > 0 else None,
            "grad_avg": z() if kw.get("centered") else None}


def do_step(mod, opt, p, g, state, kw, t):
    """One step of `opt` from module `mod` (fastvision.ops or the reference); t is 1-based."""
    if opt == "sgd":
        mod.sgd_step(p, g, state["momentum_buf"], first_step=t == 1, **kw)
    elif opt == "adam":
        mod.adam_step(p, g, state["m"], state["v"], v_max=state["v_max"], step=t, **kw)
    else:
        mod.rmsprop_step(p, g, state["square_avg"], momentum_buf=state["momentum_buf"],
                         grad_avg=state["grad_avg"], **kw)


def run(opt, kw, p0, grads):
    """fp32 kernel and float64 reference over the same grads; returns both final params and
    states and what the rounding errors scale with: each step rounds the new param (error
    ~eps |param|, systematic with AdamW's rounded decay factor) and the update (error a few eps
    |change|, carried on through the fp32 state), so the sum over steps of both."""
    p, p64 = p0.copy(), p0.astype(np.float64)
    st32, st64 = make_state(opt, kw, p0.size, np.float32), make_state(opt, kw, p0.size, np.float64)
    path = np.abs(p64).copy()
    for t, g in enumerate(grads, 1):
        do_step(fv.ops, opt, p, g, st32, kw, t)
        before = p64.copy()
        do_step(ref, opt, p64, g.astype(np.float64), st64, kw, t)
        path += np.abs(p64 - before) + np.abs(p64)
    return p, p64, st32, st64, path


def check_run(opt, kw, n, steps, seed):
    r = np.random.default_rng(seed)
    p0 = r.standard_normal(n).astype(np.float32)
    grads = [r.standard_normal(n).astype(np.float32) for _ in range(steps)]
    p, p64, st32, st64, path = run(opt, kw, p0, grads)
    assert_close(p, p64, op="optim", abs_sum=path)
    for name, buf in st32.items():
        if buf is not None:
            scale = np.abs(st64[name]).max() + 1e-30
            np.testing.assert_allclose(buf, st64[name], rtol=0, atol=1e-4 * scale, err_msg=name)


@pytest.mark.parametrize("opt,kw", CONFIGS, ids=IDS)
@pytest.mark.parametrize("n", [1, 17, 65, 40000])
def test_optim_200_steps_match_reference(isa, opt, kw, n):
    check_run(opt, kw, n, 200 if n < 1000 else 10, seed=n)


@given(cfg=st.sampled_from(range(len(CONFIGS))), n=st.sampled_from(SIZES),
       seed=st.integers(0, 2**16))
def test_optim_property(cfg, n, seed):
    opt, kw = CONFIGS[cfg]
    for level in fv.available_isas():
        fv.set_isa(level)
        check_run(opt, kw, n, 20, seed)
    fv.set_isa(fv.detected_isa())


def final_bits(opt, kw, n, steps, seed):
    r = np.random.default_rng(seed)
    p = r.standard_normal(n).astype(np.float32)
    state = make_state(opt, kw, n, np.float32)
    for t in range(1, steps + 1):
        do_step(fv.ops, opt, p, r.standard_normal(n).astype(np.float32), state, kw, t)
    return [p.tobytes()] + [b.tobytes() for b in state.values() if b is not None]


@pytest.mark.parametrize("opt,kw", CONFIGS, ids=IDS)
def test_optim_bit_identical_across_isas(opt, kw):
    """No FMA, correctly rounded sqrt and division: every level gives the same bits, for any
    input (not only small integers)."""
    outs = []
    for level in fv.available_isas():
        fv.set_isa(level)
        outs.append(final_bits(opt, kw, 67, 5, seed=7))
    fv.set_isa(fv.detected_isa())
    assert all(o == outs[0] for o in outs[1:])


@pytest.mark.parametrize("opt,kw", CONFIGS[1::3], ids=IDS[1::3])
def test_optim_threads_bitwise(isa, threads, opt, kw):
    res = []
    for t in (1, 2):
        threads(t)
        res.append(final_bits(opt, kw, 100003, 2, seed=3))
    assert res[0] == res[1]


def _torch_run(torch, opt, kw, p0, grads):
    pt = torch.nn.Parameter(torch.tensor(p0))
    if opt == "sgd":
        o = torch.optim.SGD([pt], **kw)
    elif opt == "adam":
        kw = dict(kw)
        betas = (kw.pop("beta1"), kw.pop("beta2"))
        cls = torch.optim.AdamW if kw.pop("decoupled_weight_decay", False) else torch.optim.Adam
        o = cls([pt], betas=betas, weight_decay=kw.pop("weight_decay", 0.0), **kw)
    else:
        o = torch.optim.RMSprop([pt], **kw)
    for g in grads:
        pt.grad = torch.tensor(g)
        o.step()
    return pt.detach().numpy()


@pytest.mark.parametrize("opt,kw", CONFIGS, ids=IDS)
def test_optim_matches_torch(isa, opt, kw):
    torch = pytest.importorskip("torch")
    r = np.random.default_rng(11)
    n, steps = 33, 100
    p0 = r.standard_normal(n).astype(np.float32)
    grads = [r.standard_normal(n).astype(np.float32) for _ in range(steps)]
    p, _, _, _, path = run(opt, kw, p0, grads)
    want = _torch_run(torch, opt, kw, p0, grads)
    # torch's vectorised CPU kernels fuse some a + alpha * b into FMAs: a few ulps per step.
    assert_close(p, want, op="optim", k=3, abs_sum=path)


# ---- errors: type, message, and nothing written ----

def _arrays(n=5):
    return [np.ones(n, np.float32) for _ in range(5)]


def _assert_unchanged(arrays):
    for a in arrays:
        assert np.all(a == 1.0)


@pytest.mark.parametrize("call,exc,msg", [
    (lambda a: fv.ops.sgd_step(a[0], a[1], a[2], lr=-0.1), ValueError, r"sgd_step: lr must be >= 0, got -0.1"),
    (lambda a: fv.ops.sgd_step(a[0], a[1], a[2], lr=float("nan")), ValueError, r"sgd_step: lr must be >= 0, got nan"),
    (lambda a: fv.ops.sgd_step(a[0], a[1], a[2], lr=0.1, momentum=-1), ValueError, r"sgd_step: momentum must be >= 0, got -1"),
    (lambda a: fv.ops.sgd_step(a[0], a[1], a[2], lr=0.1, weight_decay=-1), ValueError, r"sgd_step: weight_decay must be >= 0"),
    (lambda a: fv.ops.sgd_step(a[0], a[1], a[2], lr=0.1, nesterov=True), ValueError,
     r"sgd_step: nesterov momentum requires momentum > 0 and dampening = 0, got momentum = 0, dampening = 0"),
    (lambda a: fv.ops.sgd_step(a[0], a[1], a[2], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
     ValueError, r"sgd_step: nesterov momentum requires"),
    (lambda a: fv.ops.sgd_step(a[0], a[1], None, lr=0.1, momentum=0.9), ValueError,
     r"sgd_step: momentum_buf must be an array when momentum != 0, got None"),
    (lambda a: fv.ops.sgd_step(a[0], a[1], a[2][:4], lr=0.1, momentum=0.9), ValueError,
     r"sgd_step: momentum_buf shape \(4,\) must equal param shape \(5,\)"),
    (lambda a: fv.ops.sgd_step(a[0], np.ones(6), a[2], lr=0.1), ValueError,
     r"sgd_step: grad shape \(6,\) must equal param shape \(5,\)"),
    (lambda a: fv.ops.sgd_step(a[0], a[1], a[0], lr=0.1, momentum=0.9), ValueError,
     r"sgd_step: param and momentum_buf must not overlap in memory"),
    (lambda a: fv.ops.sgd_step(a[0].astype(np.float64), a[1], a[2], lr=0.1), TypeError,
     r"sgd_step: param is updated in place and must have dtype float32, got float64"),
    (lambda a: fv.ops.sgd_step(a[0], a[1], a[2], lr=0.1, nesterov=1), TypeError, r"sgd_step: nesterov must be a bool"),
    (lambda a: fv.ops.adam_step(a[0], a[1], a[2], a[3], step=0, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8),
     ValueError, r"adam_step: step must be >= 1, got 0"),
    (lambda a: fv.ops.adam_step(a[0], a[1], a[2], a[3], step=1.0, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8),
     TypeError, r"adam_step: step must be an int, got float"),
    (lambda a: fv.ops.adam_step(a[0], a[1], a[2], a[3], step=1, lr=1e-3, beta1=1.0, beta2=0.999, eps=1e-8),
     ValueError, r"adam_step: beta1 must be in \[0, 1\), got 1"),
    (lambda a: fv.ops.adam_step(a[0], a[1], a[2], a[3], step=1, lr=1e-3, beta1=0.9, beta2=-0.1, eps=1e-8),
     ValueError, r"adam_step: beta2 must be in \[0, 1\), got -0.1"),
    (lambda a: fv.ops.adam_step(a[0], a[1], a[2], a[3], step=1, lr=1e-3, beta1=0.9, beta2=0.999, eps=-1e-8),
     ValueError, r"adam_step: eps must be >= 0, got -1e-08"),
    (lambda a: fv.ops.adam_step(a[0], a[1], a[2], a[3], step=1, lr=-1e-3, beta1=0.9, beta2=0.999, eps=1e-8),
     ValueError, r"adam_step: lr must be >= 0"),
    (lambda a: fv.ops.adam_step(a[0], a[1], a[2], a[3], step=1, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
                                weight_decay=-1), ValueError, r"adam_step: weight_decay must be >= 0"),
    (lambda a: fv.ops.adam_step(a[0], a[1], a[2], a[3], step=1, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
                                amsgrad=True), ValueError, r"adam_step: v_max must be an array when amsgrad is True"),
    (lambda a: fv.ops.adam_step(a[0], a[1], a[2], a[2], step=1, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8),
     ValueError, r"adam_step: m and v must not overlap in memory"),
    (lambda a: fv.ops.adam_step(a[0], a[1], a[2], a[3].reshape(1, 5), step=1, lr=1e-3, beta1=0.9, beta2=0.999,
                                eps=1e-8), ValueError, r"adam_step: v shape \(1, 5\) must equal param shape \(5,\)"),
    (lambda a: fv.ops.adam_step(a[0], a[1], a[2], list(a[3]), step=1, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8),
     TypeError, r"adam_step: v is updated in place and must be a numpy.ndarray, got list"),
    (lambda a: fv.ops.rmsprop_step(a[0], a[1], a[2], lr=1e-2, alpha=-0.1, eps=1e-8), ValueError,
     r"rmsprop_step: alpha must be >= 0, got -0.1"),
    (lambda a: fv.ops.rmsprop_step(a[0], a[1], a[2], lr=1e-2, alpha=0.9, eps=-1.0), ValueError,
     r"rmsprop_step: eps must be >= 0, got -1"),
    (lambda a: fv.ops.rmsprop_step(a[0], a[1], a[2], lr=1e-2, alpha=0.9, eps=1e-8, momentum=0.5), ValueError,
     r"rmsprop_step: momentum_buf must be an array when momentum > 0, got None"),
    (lambda a: fv.ops.rmsprop_step(a[0], a[1], a[2], lr=1e-2, alpha=0.9, eps=1e-8, centered=True), ValueError,
     r"rmsprop_step: grad_avg must be an array when centered is True, got None"),
    (lambda a: fv.ops.rmsprop_step(a[0], a[1], a[2], lr=1e-2, alpha=0.9, eps=1e-8, momentum=-0.5,
                                   momentum_buf=a[3]), ValueError, r"rmsprop_step: momentum must be >= 0"),
    (lambda a: fv.ops.rmsprop_step(a[0], a[1], a[2], lr=1e-2, alpha=0.9, eps=1e-8, centered=True,
                                   grad_avg=a[2]), ValueError,
     r"rmsprop_step: square_avg and grad_avg must not overlap in memory"),
])
def test_optim_errors_write_nothing(call, exc, msg):
    arrays = _arrays()
    with pytest.raises(exc, match=msg):
        call(arrays)
    _assert_unchanged(arrays)


def test_optim_inplace_layout_errors():
    a = _arrays(8)
    ro = np.ones(8, np.float32)
    ro.flags.writeable = False
    with pytest.raises(TypeError, match=r"sgd_step: param is updated in place and must be writeable"):
        fv.ops.sgd_step(ro, a[1], None, lr=0.1)
    with pytest.raises(TypeError, match=r"adam_step: m is updated in place and must be C-contiguous"):
        fv.ops.adam_step(a[0], a[1], np.ones(16, np.float32)[::2], a[3], step=1, lr=1e-3, beta1=0.9,
                         beta2=0.999, eps=1e-8)
    # the compiled functions re-check in-place arguments themselves
    with pytest.raises(TypeError, match=r"rmsprop_step: square_avg is updated in place and must be writeable"):
        _C.rmsprop_step(a[0], a[1], ro, lr=1e-2, alpha=0.9, eps=1e-8)
    with pytest.raises(TypeError, match=r"sgd_step: param must have dtype float32, got float64"):
        _C.sgd_step(np.ones(8), a[1], None, lr=0.1)
    _assert_unchanged(a)


def test_optim_grad_is_converted_and_shapes_kept(isa):
    p = np.ones((3, 4), np.float32)
    g = np.arange(12, dtype=np.float64).reshape(4, 3).T.copy().T.reshape(3, 4)  # float64
    fv.ops.sgd_step(p, g, None, lr=0.5)
    np.testing.assert_array_equal(p, 1 - 0.5 * g.astype(np.float32))
    assert p.shape == (3, 4) and p.dtype == np.float32
    fv.ops.sgd_step(np.ones(0, np.float32), np.ones(0), None, lr=0.1)  # empty: a no-op


def test_sgd_small_integers_exact(isa):
    """Dyadic hyper-parameters and small-integer data: every operation is exact."""
    p = np.arange(-8, 9, dtype=np.float32)
    g = np.arange(17, dtype=np.float32)[::-1].copy()
    buf = np.zeros(17, np.float32)
    fv.ops.sgd_step(p, g, buf, lr=0.5, momentum=0.5, first_step=True)
    fv.ops.sgd_step(p, g, buf, lr=0.5, momentum=0.5, weight_decay=0.25, nesterov=True)
    p64, b64 = np.arange(-8, 9, dtype=np.float64), np.zeros(17)
    ref.sgd_step(p64, g.astype(np.float64), b64, lr=0.5, momentum=0.5, first_step=True)
    ref.sgd_step(p64, g.astype(np.float64), b64, lr=0.5, momentum=0.5, weight_decay=0.25, nesterov=True)
    np.testing.assert_array_equal(p, p64)
    np.testing.assert_array_equal(buf, b64)


ADAM = [kw for o, kw in CONFIGS if o == "adam"]


@pytest.mark.parametrize("kw", ADAM, ids=[f"adam{i}" for i in range(len(ADAM))])
def test_adam_step_foreach_equals_adam_step_bitwise(isa, kw):
    """One call over a list of tensors (sizes across the vector widths, each with its own step
    count and eps) updates every tensor with adam_step's bits."""
    rng = np.random.default_rng(5)
    kw = dict(kw)
    eps = kw.pop("eps")
    amsgrad = kw.get("amsgrad", False)
    sizes = SIZES + [40000]  # one tensor longer than a thread's piece (32k floats)
    ours = [make_state("adam", dict(amsgrad=amsgrad), n, np.float32) for n in sizes]
    theirs = [make_state("adam", dict(amsgrad=amsgrad), n, np.float32) for n in sizes]
    p_ours = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    p_theirs = [p.copy() for p in p_ours]
    for t in range(1, 4):
        grads = [rng.standard_normal(n).astype(np.float32) for n in sizes]
        steps = [t + i % 3 for i in range(len(sizes))]
        epss = [eps * (1 + i) for i in range(len(sizes))]
        fv.ops.adam_step_foreach(p_ours, grads, [s["m"] for s in ours], [s["v"] for s in ours],
                                 steps=steps, eps=epss,
                                 v_maxs=[s["v_max"] for s in ours] if amsgrad else None, **kw)
        for i, (p, g, s) in enumerate(zip(p_theirs, grads, theirs)):
            fv.ops.adam_step(p, g, s["m"], s["v"], v_max=s["v_max"], step=steps[i], eps=epss[i],
                             **kw)
    for a, b in zip(p_ours + [x for s in ours for x in s.values() if x is not None],
                    p_theirs + [x for s in theirs for x in s.values() if x is not None]):
        np.testing.assert_array_equal(a.view(np.uint32), b.view(np.uint32))


def _foreach(a, **kw):
    """adam_step_foreach over two tensors: (a[0], a[1], a[2], a[3]) and (a[4], a[5], a[6], a[7])."""
    args = dict(steps=1, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8)
    args.update(kw)
    return fv.ops.adam_step_foreach([a[0], a[4]], [a[1], a[5]], [a[2], a[6]], [a[3], a[7]], **args)


@pytest.mark.parametrize("call,exc,msg", [
    (lambda a: _foreach(a, steps=[1]), ValueError,
     r"adam_step_foreach: steps must have one entry per param \(2\), got 1"),
    (lambda a: fv.ops.adam_step_foreach([a[0], a[4]], [a[1]], [a[2], a[6]], [a[3], a[7]], steps=1,
                                        lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8),
     ValueError, r"adam_step_foreach: grads must have one entry per param \(2\), got 1"),
    (lambda a: _foreach(a, steps=[1, 0]), ValueError, r"adam_step_foreach: step must be >= 1, got 0"),
    (lambda a: _foreach(a, steps=[1, 2.0]), TypeError, r"adam_step_foreach: steps\[1\] must be an int"),
    (lambda a: _foreach(a, eps=[1e-8, -1.0]), ValueError, r"adam_step_foreach: eps must be >= 0"),
    (lambda a: _foreach(a, amsgrad=True), ValueError,
     r"adam_step_foreach: v_maxs must be a list of arrays when amsgrad is True"),
    (lambda a: _foreach(a[:6] + [a[6].astype(np.float64), a[7]]), TypeError,
     r"adam_step_foreach: ms\[1\] must have dtype float32"),
    (lambda a: _foreach(a[:6] + [a[6], a[7][:3]]), ValueError,
     r"adam_step_foreach: vs\[1\] shape \(3,\) must equal param shape \(5,\)"),
    (lambda a: _foreach(a[:4] + [a[2]] + a[5:]), ValueError,  # tensor 1's param is tensor 0's m
     r"adam_step_foreach: (ms\[0\] and params\[1\]|params\[1\] and ms\[0\]) must not overlap"),
    (lambda a: fv.ops.adam_step_foreach(a[0], [a[1]], [a[2]], [a[3]], steps=1, lr=1e-3, beta1=0.9,
                                        beta2=0.999, eps=1e-8),
     TypeError, r"adam_step_foreach: params must be a list of arrays, got ndarray"),
])
def test_adam_step_foreach_errors_write_nothing(call, exc, msg):
    """Every tensor is checked before any is written: an error in the second tensor leaves the
    first unchanged too."""
    arrays = _arrays() + _arrays()
    with pytest.raises(exc, match=msg):
        call(arrays)
    _assert_unchanged(arrays)


def test_adam_step_foreach_allows_a_shared_gradient():
    """Gradients are only read: two tensors may share one (nothing else may overlap)."""
    a = _arrays()
    b = _arrays()
    fv.ops.adam_step_foreach([a[0], b[0]], [a[1], a[1]], [a[2], b[2]], [a[3], b[3]], steps=1,
                             lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], np.ones(5, np.float32))
