"""fastvision.nn: functional ops' gradients vs float64 central differences and torch, the
reference CNN vs torch (outputs, loss, every gradient), Module API, state_dict round trips
and failures, init schemes, seeded reproducible training, errors naming the layer."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference import conv as rconv
from reference import loss as rloss
from reference import pool as rpool

import fastvision as fv
from fastvision import nn
from fastvision.nn import functional as F
from test_tensor import check_grads

def _weighted(out_shape, rng):
    return rng.standard_normal(out_shape)


def _case(name, rng):
    """(inputs, f_tensor(*tensors) -> scalar Tensor, f64(*arrays) -> float)."""
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    if name in ("conv2d", "conv2d_relu", "conv2d_strided"):
        x, w, b = f32(2, 3, 7, 9), f32(4, 3, 3, 3), f32(4)
        s, p, d = ((2, 1), (1, 2), (1, 2)) if name == "conv2d_strided" else ((1, 1), (1, 1), (1, 1))
        fn = F.conv2d_relu if name == "conv2d_relu" else F.conv2d
        ref = lambda x, w, b: rconv.conv2d(x, w, b, s, (p[0], p[0], p[1], p[1]), d)  # noqa: E731
        if name == "conv2d_relu":
            ref0 = ref
            ref = lambda x, w, b: np.maximum(ref0(x, w, b), 0)  # noqa: E731
        r = _weighted(ref(x, w, b).shape, rng)
        return [x, w, b], (lambda x, w, b: (fn(x, w, b, s, p, d) * r).sum()), \
            (lambda x, w, b: (ref(x, w, b) * r).sum())
    if name == "conv2d_relu_max_pool2d":
        x, w, b = f32(2, 3, 7, 9), f32(4, 3, 3, 3), f32(4)

        def ref(x, w, b):
            y = np.maximum(rconv.conv2d(x, w, b, (1, 1), (1, 1, 1, 1), (1, 1)), 0)
            return rpool.max_pool2d(y, (3, 3), (2, 2), (1, 1))[0]

        r = _weighted(ref(x, w, b).shape, rng)
        return [x, w, b], (lambda x, w, b: (_ours_fn(name)(x, w, b) * r).sum()), \
            (lambda x, w, b: (ref(x, w, b) * r).sum())
    if name in ("linear", "linear_relu"):
        x, w, b = f32(5, 7), f32(3, 7), f32(3)
        act = (lambda y: np.maximum(y, 0)) if name == "linear_relu" else (lambda y: y)
        fn = getattr(F, name)
        r = _weighted((5, 3), rng)
        return [x, w, b], (lambda x, w, b: (fn(x, w, b) * r).sum()), \
            (lambda x, w, b: (act(x @ w.T + b) * r).sum())
    if name == "relu":
        x, r = f32(4, 9), _weighted((4, 9), rng)
        return [x], (lambda x: (F.relu(x) * r).sum()), (lambda x: (np.maximum(x, 0) * r).sum())
    if name == "max_pool2d":
        x, r = f32(2, 3, 7, 9), _weighted((2, 3, 3, 4), rng)
        return [x], (lambda x: (F.max_pool2d(x, 2) * r).sum()), \
            (lambda x: (rpool.max_pool2d(x, (2, 2), (2, 2), (0, 0))[0] * r).sum())
    if name == "avg_pool2d":
        x, r = f32(2, 3, 7, 9), _weighted((2, 3, 4, 5), rng)
        return [x], (lambda x: (F.avg_pool2d(x, 3, 2, 1) * r).sum()), \
            (lambda x: (rpool.avg_pool2d(x, (3, 3), (2, 2), (1, 1)) * r).sum())
    if name == "log_softmax":
        x, r = f32(5, 10), _weighted((5, 10), rng)
        return [x], (lambda x: (F.log_softmax(x, dim=1) * r).sum()), \
            (lambda x: (rloss.log_softmax(x) * r).sum())
    if name.startswith("cross_entropy"):
        red = name.split("_")[-1]
        x, labels, r = f32(6, 10), rng.integers(0, 10, 6), _weighted((6,), rng)
        w = r if red == "none" else 1.0
        return [x], (lambda x: (F.cross_entropy(x, labels, reduction=red, label_smoothing=0.1)
                                * w).sum()), \
            (lambda x: (rloss.softmax_cross_entropy(x, labels, red, 0.1)[0] * w).sum())
    if name == "mse_loss":
        x, t = f32(3, 5), f32(3, 5)
        return [x, t], (lambda x, t: F.mse_loss(x, t) * 3), \
            (lambda x, t: ((x - t) ** 2).mean() * 3)
    raise KeyError(name)


OPS = ["conv2d", "conv2d_relu", "conv2d_strided", "conv2d_relu_max_pool2d", "linear", "linear_relu", "relu",
       "max_pool2d", "avg_pool2d", "log_softmax", "cross_entropy_mean", "cross_entropy_sum",
       "cross_entropy_none", "mse_loss"]


@pytest.mark.parametrize("name", OPS)
def test_functional_grads_vs_finite_differences(name, isa, rng):
    arrays, f, f64 = _case(name, rng)
    check_grads(f, f64, arrays, rng)


def _torch_fn(name, torch):
    tf = torch.nn.functional
    return {
        "conv2d": lambda x, w, b: tf.conv2d(x, w, b, 1, 1),
        "conv2d_relu": lambda x, w, b: tf.relu(tf.conv2d(x, w, b, 1, 1)),
        "conv2d_strided": lambda x, w, b: tf.conv2d(x, w, b, (2, 1), (1, 2), (1, 2)),
        "conv2d_relu_max_pool2d": lambda x, w, b: tf.max_pool2d(
            tf.relu(tf.conv2d(x, w, b, 1, 1)), 3, 2, 1),
        "linear": tf.linear, "linear_relu": lambda x, w, b: tf.relu(tf.linear(x, w, b)),
        "relu": tf.relu, "max_pool2d": lambda x: tf.max_pool2d(x, 2),
        "avg_pool2d": lambda x: tf.avg_pool2d(x, 3, 2, 1),
        "log_softmax": lambda x: tf.log_softmax(x, dim=1), "mse_loss": tf.mse_loss,
    }[name]


def _ours_fn(name):
    return {
        "conv2d": lambda x, w, b: F.conv2d(x, w, b, 1, 1),
        "conv2d_relu": lambda x, w, b: F.conv2d_relu(x, w, b, 1, 1),
        "conv2d_strided": lambda x, w, b: F.conv2d(x, w, b, (2, 1), (1, 2), (1, 2)),
        "conv2d_relu_max_pool2d": lambda x, w, b: F.conv2d_relu_max_pool2d(
            x, w, b, 1, 1, kernel_size=3, pool_stride=2, pool_padding=1),
        "linear": F.linear, "linear_relu": F.linear_relu, "relu": F.relu,
        "max_pool2d": lambda x: F.max_pool2d(x, 2),
        "avg_pool2d": lambda x: F.avg_pool2d(x, 3, 2, 1),
        "log_softmax": lambda x: F.log_softmax(x, dim=1), "mse_loss": F.mse_loss,
    }[name]


@pytest.mark.parametrize("name", [n for n in OPS if not n.startswith("cross")])
def test_functional_vs_torch(name, rng):
    torch = pytest.importorskip("torch")
    arrays = _case(name, rng)[0]
    ours = [fv.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, yt = _ours_fn(name)(*ours), _torch_fn(name, torch)(*theirs)
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-5, atol=1e-5)
    g = rng.standard_normal(y.shape).astype(np.float32)
    y.backward(g)
    yt.backward(torch.tensor(g))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.data, b.grad.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_vs_torch(reduction, rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((9, 7)).astype(np.float32)
    labels = rng.integers(0, 7, 9)
    ours, theirs = fv.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y = F.cross_entropy(ours, labels, reduction=reduction, label_smoothing=0.2)
    yt = torch.nn.functional.cross_entropy(theirs, torch.tensor(labels), reduction=reduction,
                                           label_smoothing=0.2)
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-5)
    g = rng.standard_normal(y.shape).astype(np.float32)
    y.backward(g)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-5, atol=1e-7)


def reference_model(**kw):
    return nn.Sequential(nn.Conv2d(1, 32, 3, **kw), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, **kw), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(64, 64, 3, **kw), nn.ReLU(), nn.Flatten(),
                         nn.Linear(576, 64, **kw), nn.ReLU(), nn.Linear(64, 10, **kw))


def torch_reference_model(torch):
    t = torch.nn
    return t.Sequential(t.Conv2d(1, 32, 3), t.ReLU(), t.MaxPool2d(2), t.Conv2d(32, 64, 3),
                        t.ReLU(), t.MaxPool2d(2), t.Conv2d(64, 64, 3), t.ReLU(), t.Flatten(),
                        t.Linear(576, 64), t.ReLU(), t.Linear(64, 10))


def test_reference_model_matches_torch(rng):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    tm = torch_reference_model(torch)
    model = reference_model()
    assert repr(model) == repr(tm)
    model.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    x = rng.standard_normal((8, 1, 28, 28)).astype(np.float32)
    labels = rng.integers(0, 10, 8)
    logits = model(x)
    loss = F.cross_entropy(logits, labels)
    tlogits = tm(torch.tensor(x))
    tloss = torch.nn.functional.cross_entropy(tlogits, torch.tensor(labels))
    np.testing.assert_allclose(logits.data, tlogits.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-5)
    loss.backward()
    tloss.backward()
    tparams = dict(tm.named_parameters())
    for k, p in model.named_parameters():
        want = tparams[k].grad.numpy()
        np.testing.assert_allclose(p.grad.data, want, rtol=1e-3,
                                   atol=1e-4 * np.abs(want).max(), err_msg=k)


def test_fused_sequential_equals_layer_by_layer(rng):
    fv.manual_seed(3)
    model = reference_model()
    x = rng.standard_normal((2, 1, 28, 28)).astype(np.float32)
    y = fv.Tensor(x)
    for layer in model:
        y = layer(y)
    np.testing.assert_array_equal(model(x).data, y.data)


@pytest.mark.parametrize("pool", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                  dict(kernel_size=3, stride=2, ceil_mode=True),
                                  dict(kernel_size=2, stride=1, dilation=2)])
@pytest.mark.parametrize("width", [10, 19])
@pytest.mark.parametrize("channels", [3, 16])
def test_fused_conv_relu_pool_gradients_equal_layer_by_layer(rng, pool, width, channels):
    """Sequential runs Conv2d, ReLU, MaxPool2d as one node whose backward masks the pooled
    gradient instead of the full-size one: the gradients must be those of the three layers
    run one by one, bit for bit (overlapping and padded windows included). Inputs with ties at
    0 (relu zeros pooled together) and NaN are in the batch. The 2x2 pool keeps window codes
    (ops.max_pool2d_2x2; width 19 drops the odd last column); with 16 channels the conv runs
    as Winograd F(4x4), whose output transform does that pool."""
    fv.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(**pool),
                          nn.Flatten())
    x = rng.standard_normal((2, channels, 9, width)).astype(np.float32)
    x[0, :, :4, :4] = -5.0  # a corner where every relu output (and the pooled max) is 0 ...
    model[0].bias.data[:] = np.where(np.arange(16) % 2 == 0, -3.0, 0.1)  # ... in half the maps
    x[1, 0, 5, 6] = np.nan  # NaN through the conv: it wins its pool windows
    g = None
    grads = []
    for fused in (True, False):
        xt = fv.Tensor(x.copy(), requires_grad=True)
        model.zero_grad()
        if fused:
            y = model(xt)
        else:
            y = xt
            for layer in model:
                y = layer(y)
        if g is None:
            g = rng.standard_normal(y.shape).astype(np.float32)
        y.backward(g)
        grads.append([y.data, xt.grad.data] + [p.grad.data for p in model.parameters()])
    assert (grads[0][0] == 0).any()  # the zero ties happened
    assert np.isnan(grads[0][0]).any()  # and the NaN reached the output
    for a, b in zip(*grads):
        np.testing.assert_array_equal(a.view(np.uint32), b.view(np.uint32))


def test_pool_with_indices_is_not_fused(rng):
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2, return_indices=True))
    y, idx = model(rng.standard_normal((1, 1, 6, 6)).astype(np.float32))
    assert y.shape == (1, 2, 2, 2) and idx.shape == (1, 2, 2, 2)


def test_module_api():
    fv.manual_seed(0)
    model = reference_model()
    names = [k for k, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "3.weight", "3.bias", "6.weight", "6.bias",
                     "9.weight", "9.bias", "11.weight", "11.bias"]
    assert sum(p.numel() for p in model.parameters()) == 93322
    assert len(model) == 12 and isinstance(model[-1], nn.Linear) and len(model[:3]) == 3
    assert len(list(model.children())) == 12 and len(list(model.modules())) == 13
    model.eval()
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    model.append(nn.Dropout(0.1))
    assert len(model) == 13 and "(12): Dropout(p=0.1, inplace=False)" in repr(model)
    lin = nn.Linear(3, 2, bias=False)
    assert lin.bias is None and [k for k, _ in lin.named_parameters()] == ["weight"]
    assert repr(lin) == "Linear(in_features=3, out_features=2, bias=False)"
    with pytest.raises(IndexError):
        model[13]


def test_zero_grad_and_custom_module():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
            self.head = nn.Linear(3, 2)

        def forward(self, x):
            return self.head(self.body(x))

    net = Net()
    assert list(net.state_dict()) == ["body.0.weight", "body.0.bias", "head.weight", "head.bias"]
    net(np.ones((2, 4), np.float32)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(not p.grad.data.any() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_state_dict_roundtrip_and_failures_leave_model_unchanged():
    fv.manual_seed(1)
    a, b = reference_model(), reference_model()
    before = b.state_dict()
    other = nn.Sequential(nn.Conv2d(1, 16, 3), nn.ReLU(), nn.Flatten(), nn.Linear(10816, 10))
    with pytest.raises(nn.StateDictError, match=r"size mismatch for '0.weight'.*\(16, 1, 3, 3\)"):
        b.load_state_dict(other.state_dict())
    sd = a.state_dict()
    sd["extra.weight"] = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="Unexpected key.*'extra.weight'"):
        b.load_state_dict(sd)
    del sd["extra.weight"], sd["11.bias"]
    with pytest.raises(RuntimeError, match="Missing key.*'11.bias'"):
        b.load_state_dict(sd)
    sd2 = a.state_dict()
    sd2["9.bias"] = sd2["9.bias"].astype(np.int64)
    with pytest.raises(nn.StateDictError, match="'9.bias'.*dtype int64"):
        b.load_state_dict(sd2)
    for k, v in b.state_dict().items():        # every failure above wrote nothing
        np.testing.assert_array_equal(v, before[k])
    res = b.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["11.bias"] and res.unexpected_keys == []
    np.testing.assert_array_equal(b[0].weight.data, a[0].weight.data)
    b.load_state_dict(a.state_dict())
    x = np.ones((1, 1, 28, 28), np.float32)
    np.testing.assert_array_equal(a(x).data, b(x).data)


def test_init_schemes():
    fv.manual_seed(5)
    conv = nn.Conv2d(8, 16, 3)
    bound = 1 / np.sqrt(8 * 9)
    assert np.abs(conv.weight.data).max() <= bound and np.abs(conv.bias.data).max() <= bound
    assert np.abs(conv.weight.data).max() > 0.8 * bound
    k = nn.Linear(20, 30, init="keras")
    assert not k.bias.data.any()
    assert np.abs(k.weight.data).max() <= np.sqrt(6 / 50)
    model = nn.init.keras_(reference_model())
    assert not model[0].bias.data.any() and np.abs(model[0].weight.data).max() <= np.sqrt(6 / 297)
    fv.manual_seed(5)
    again = nn.Conv2d(8, 16, 3)
    np.testing.assert_array_equal(conv.weight.data, again.weight.data)
    with pytest.raises(ValueError, match="init must be one of"):
        nn.Linear(2, 2, init="xavier")


def test_dropout():
    fv.manual_seed(0)
    x = fv.ones(200, 50, requires_grad=True)
    y = F.dropout(x, 0.3)
    kept = y.data != 0
    assert abs(kept.mean() - 0.7) < 0.02
    np.testing.assert_allclose(y.data[kept], 1 / 0.7, rtol=1e-6)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, y.data)
    layer = nn.Dropout(0.5).eval()
    assert layer(x) is x or np.array_equal(layer(x).data, x.data)
    with pytest.raises(ValueError, match="probability"):
        nn.Dropout(1.5)


def test_layer_shape_errors_name_the_layer():
    model = reference_model()
    with pytest.raises(ValueError, match=r"layer 0: Conv2d\(1, 32.*\(N, 1, H, W\), "
                                         r"got shape \(8, 3, 28, 28\)"):
        model(np.zeros((8, 3, 28, 28), np.float32))
    with pytest.raises(ValueError,
                       match=r"layer 9: Linear\(in_features=576.*got shape \(2, 1024\)"):
        model(np.zeros((2, 1, 32, 32), np.float32))
    with pytest.raises(ValueError, match=r"labels\[1\].*out of range"):
        F.cross_entropy(fv.zeros(2, 10), np.array([0, 10]))
    with pytest.raises(TypeError, match="integer dtype"):
        nn.CrossEntropyLoss()(fv.zeros(2, 10), fv.zeros(2))


def _train(steps, seed):
    fv.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Dropout(0.2), nn.Linear(4 * 6 * 6, 10))
    opt = fv.optim.Adam(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((16, 1, 14, 14)).astype(np.float32)
    y = rng.integers(0, 10, 16)
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return model.state_dict(), losses


def test_training_is_bitwise_reproducible(threads):
    threads(1)
    sd1, l1 = _train(200, 42)
    threads(2)
    sd2, l2 = _train(200, 42)
    assert l1 == l2 and l1[-1] < l1[0]
    for k in sd1:
        np.testing.assert_array_equal(sd1[k], sd2[k])


@given(n=st.sampled_from([1, 2]), c=st.sampled_from([1, 3, 8]), o=st.sampled_from([1, 7, 9]),
       h=st.sampled_from([5, 7, 9]), w=st.sampled_from([6, 15, 16, 17]), k=st.sampled_from([1, 3]),
       pad=st.sampled_from([0, 1]))
def test_conv_relu_pool_linear_chain_grads_property(n, c, o, h, w, k, pad):
    """Conv2d -> ReLU -> MaxPool2d -> Flatten -> Linear over shapes around the vector width:
    every parameter's gradient vs float64 central differences."""
    rng = np.random.default_rng(n * 1000 + c * 100 + o * 10 + h + w + k + pad)
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    x, cw, cb = f32(n, c, h, w), f32(o, c, k, k), f32(o)
    oh, ow = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    feat = o * (oh // 2) * (ow // 2)
    lw, lb = f32(3, feat), f32(3)
    r = rng.standard_normal((n, 3))

    def f(x, cw, cb, lw, lb):
        y = F.max_pool2d(F.relu(F.conv2d(x, cw, cb, 1, pad)), 2)
        return (F.linear(F.flatten(y), lw, lb) * r).sum()

    def f64(x, cw, cb, lw, lb):
        y = np.maximum(rconv.conv2d(x, cw, cb, (1, 1), (pad,) * 4), 0)
        y = rpool.max_pool2d(y, (2, 2), (2, 2), (0, 0))[0]
        return ((y.reshape(n, -1) @ lw.T + lb) * r).sum()

    check_grads(f, f64, [x, cw, cb, lw, lb], rng, rtol=2e-3)


def test_small_integer_model_is_bit_exact_on_every_isa():
    """Small integers are exact in fp32, so every ISA level must give the float64 result."""
    rng = np.random.default_rng(9)
    model = nn.Sequential(nn.Conv2d(2, 9, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(9 * 3 * 8, 17), nn.ReLU(), nn.Linear(17, 5))
    for p in model.parameters():
        p.data[...] = rng.integers(-2, 3, p.shape)
    x = rng.integers(0, 4, (3, 2, 7, 17)).astype(np.float32)
    labels = rng.integers(0, 5, 3)
    before = fv.isa()
    outs, grads = [], []
    try:
        for level in fv.available_isas():
            fv.set_isa(level)
            model.zero_grad()
            y = model(x)
            (y * 2).sum().backward()
            outs.append(y.data.copy())
            grads.append([p.grad.data.copy() for p in model.parameters()])
    finally:
        fv.set_isa(before)
    for o, g in zip(outs[1:], grads[1:]):
        np.testing.assert_array_equal(o, outs[0])
        for a, b in zip(g, grads[0]):
            np.testing.assert_array_equal(a, b)
    ref = np.maximum(rconv.conv2d(x, model[0].weight.data, model[0].bias.data, (1, 1),
                                  (1, 1, 1, 1)), 0)
    ref = rpool.max_pool2d(ref, (2, 2), (2, 2), (0, 0))[0].reshape(3, -1)
    ref = np.maximum(ref @ model[4].weight.data.T + model[4].bias.data, 0)
    np.testing.assert_array_equal(outs[0], ref @ model[6].weight.data.T + model[6].bias.data)
    assert labels.shape == (3,)


def test_failed_steps_leave_model_and_optimizer_unchanged():
    fv.manual_seed(2)
    model = nn.Sequential(nn.Linear(4, 3))
    opt = fv.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    before = model.state_dict()
    x = np.ones((2, 4), np.float32)
    with pytest.raises(ValueError, match="out of range"):
        F.cross_entropy(model(x), np.array([0, 3])).backward()
    assert all(p.grad is None for p in model.parameters())
    model[0].weight.grad = fv.ones(3, 4)
    model[0].bias.grad = fv.ones(4)                # wrong shape: nothing may move
    with pytest.raises(ValueError, match=r"params\[1\]\.grad"):
        opt.step()
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    assert opt.state == {}


def test_reprs_and_raw_torch_state_dict(rng):
    torch = pytest.importorskip("torch")
    t = torch.nn
    tm = t.Sequential(t.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), t.ReLU(),
                      t.AvgPool2d(2), t.Dropout(0.25), t.Flatten(), t.Linear(32, 4))
    model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), nn.ReLU(),
                          nn.AvgPool2d(2), nn.Dropout(0.25), nn.Flatten(), nn.Linear(32, 4))
    assert repr(model) == repr(tm)
    model.load_state_dict(tm.state_dict())       # torch tensors as they are
    tm.eval()
    model.eval()
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    with torch.no_grad():
        want = tm(torch.tensor(x)).numpy()
    np.testing.assert_allclose(model(x).data, want, rtol=1e-5, atol=1e-6)
