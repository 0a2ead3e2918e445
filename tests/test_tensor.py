"""fastvision.Tensor and the autograd engine: wrapping, NumPy interop, gradients of every
Tensor op against central differences of a float64 NumPy version (and against torch when
installed), broadcasting, accumulation, no_grad, seeded factories."""

import numpy as np
import pytest

import fastvision as fv
from fastvision.autograd import Function


def directional_fd(f64, arrays, i, direction, h=1e-6):
    """Central difference of scalar f64(*arrays) along `direction` in argument i (float64)."""
    plus = [a.astype(np.float64) for a in arrays]
    minus = [a.astype(np.float64) for a in arrays]
    plus[i] = plus[i] + h * direction
    minus[i] = minus[i] - h * direction
    return (f64(*plus) - f64(*minus)) / (2 * h)


def check_grads(f_tensor, f64, arrays, rng, rtol=1e-3):
    """Kernel gradient (fp32, from backward) dotted with a random direction equals the
    float64 directional derivative, for every argument. The bound is relative to the
    derivative and, with a small weight, to the magnitude of its terms (sum |g_i d_i|): a
    directional derivative whose terms cancel to near 0 cannot be checked more finely than the
    difference quotient's error on those terms (one wrong element still shows: its term is
    about sum/n, far above 1e-5 of the sum)."""
    ts = [fv.tensor(a, requires_grad=True) for a in arrays]
    out = f_tensor(*ts)
    out.backward()
    for i, t in enumerate(ts):
        d = rng.standard_normal(arrays[i].shape)
        want = directional_fd(f64, arrays, i, d)
        terms = t.grad.data.astype(np.float64) * d
        got, scale = float(np.sum(terms)), float(np.sum(np.abs(terms)))
        assert abs(got - want) <= rtol * (abs(want) + 1e-3 + 1e-5 * scale), (i, got, want)


def test_wraps_without_copy_and_numpy_interop():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = fv.Tensor(a)
    assert t.data is a and np.asarray(t) is a and t.numpy() is a
    assert np.shares_memory(np.asarray(t), a)
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    assert not np.shares_memory(np.array(t, copy=True), a)
    assert t.shape == (2, 3) and t.ndim == 2 and t.dtype == np.float32 and t.numel() == 6
    c = fv.tensor(a)                      # fv.tensor copies, as torch.tensor
    assert not np.shares_memory(c.data, a)
    assert fv.Tensor([1, 2]).dtype == np.float32
    assert fv.tensor([[2.5]]).item() == 2.5
    with pytest.raises(ValueError, match="one-element"):
        t.item()


def test_repr_and_detach():
    t = fv.tensor([1.0, 2.0], requires_grad=True)
    assert repr(t) == "tensor([1., 2.], requires_grad=True)"
    assert repr(fv.tensor([1.0])) == "tensor([1.])"
    y = t * 2
    assert "grad_fn=<MulBackward>" in repr(y)
    d = y.detach()
    assert not d.requires_grad and d.is_leaf and np.shares_memory(d.data, y.data)


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "mixed"])
def test_broadcast_binary_grads(name, rng):
    a = rng.standard_normal((3, 1, 4)).astype(np.float32)
    b = (rng.uniform(0.5, 2.0, (2, 4)) * rng.choice([-1, 1], (2, 4))).astype(np.float32)
    fns = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
           "div": lambda x, y: x / y, "mixed": lambda x, y: (x * y - y / (x * x + 1)) + 2 - x}
    f = fns[name]
    w = rng.standard_normal((3, 2, 4))
    check_grads(lambda x, y: (f(x, y) * w).sum(), lambda x, y: (f(x, y) * w).sum(), [a, b], rng)


def test_unary_reduce_reshape_grads(rng):
    a = rng.uniform(0.5, 2.0, (2, 3, 4)).astype(np.float32)
    w = rng.standard_normal((4, 6))

    def f(x):
        y = (-x) ** 3 + x ** 0.5
        z = y.sum(1, keepdim=True) * y.mean(dim=2)[:, :, None] + y.mean()
        return (z.reshape(4, 6) * w).sum() + z.flatten()[5] * 3 + z.view(-1, 2)[[0, 0, 1]].sum()

    def f64(x):
        y = (-x) ** 3 + x ** 0.5
        z = y.sum(1, keepdims=True) * y.mean(axis=2)[:, :, None] + y.mean()
        return ((z.reshape(4, 6) * w).sum() + z.reshape(-1)[5] * 3
                + z.reshape(-1, 2)[[0, 0, 1]].sum())

    check_grads(f, f64, [a], rng)


def test_matmul_grads(isa, rng):
    a = rng.standard_normal((5, 7)).astype(np.float32)
    b = rng.standard_normal((7, 3)).astype(np.float32)
    w = rng.standard_normal((5, 3))
    check_grads(lambda x, y: ((x @ y) * w).sum(), lambda x, y: ((x @ y) * w).sum(), [a, b], rng)
    with pytest.raises(ValueError, match="2-D"):
        fv.tensor(np.ones(3)) @ fv.tensor(np.ones(3))


def test_ndarray_operands_and_reflected_ops(rng):
    t = fv.tensor([1.0, 2.0], requires_grad=True)
    y = np.array([3.0, 4.0]) * t + 1.0 - (2 / t)     # ndarray/scalar on the left
    assert isinstance(y, fv.Tensor) and y.dtype == np.float32
    y.sum().backward()
    np.testing.assert_allclose(t.grad.data, [3 + 2 / 1, 4 + 2 / 4])


def test_gradients_accumulate_and_shared_subexpressions():
    x = fv.tensor([2.0, -1.0], requires_grad=True)
    y = x * x
    (y + y * 3).sum().backward()                      # y used twice: grads sum
    np.testing.assert_array_equal(x.grad.data, 8 * np.array([2.0, -1.0], np.float32))
    (x * 1).sum().backward()                          # accumulates, as torch
    np.testing.assert_array_equal(x.grad.data, [17.0, -7.0])
    assert x.grad.dtype == np.float32


def _scale_function(fresh, keep=False, same_for_both=False, view=False):
    """A Function of (a, b) -> 2a + 2b whose backward returns new arrays (declared fresh or
    not), optionally keeping one, giving one array to both inputs, or giving views."""
    made = []

    class Scale(Function):
        fresh_grads = fresh

        @staticmethod
        def forward(ctx, a, b):
            return 2 * a + 2 * b

        @staticmethod
        def backward(ctx, grad):
            ga = grad * np.float32(2)
            gb = ga if same_for_both else grad * np.float32(2)
            if view:
                ga, gb = ga.reshape(-1).reshape(ga.shape), gb.reshape(-1).reshape(gb.shape)
            if keep:
                ctx.kept = ga
            made[:] = [ga, gb]
            return ga, gb

    return Scale, made


def test_leaf_grad_takes_a_fresh_gradient_without_copying_it_and_copies_any_other():
    """A leaf's first .grad is the backward's own array where the Function declares
    fresh_grads and gives that array to one input (no copy, as torch takes a gradient nothing
    else holds); otherwise a copy, so writing into one .grad never changes anything else."""
    def run(fn):
        a = fv.tensor([1.0, 2.0], requires_grad=True)
        b = fv.tensor([3.0, 4.0], requires_grad=True)
        out = fn.apply(a, b)
        out.sum().backward()
        np.testing.assert_array_equal(a.grad.data, [2.0, 2.0])
        np.testing.assert_array_equal(b.grad.data, [2.0, 2.0])
        return a, b, out

    fn, made = _scale_function(fresh=True)
    a, b, _ = run(fn)
    assert a.grad.data is made[0] and b.grad.data is made[1]

    fn, made = _scale_function(fresh=False)  # the default: not declared
    a, b, _ = run(fn)
    assert not np.shares_memory(a.grad.data, made[0])

    fn, made = _scale_function(fresh=True, same_for_both=True)
    a, b, _ = run(fn)
    assert not np.shares_memory(a.grad.data, b.grad.data)

    fn, made = _scale_function(fresh=True, view=True)
    a, b, _ = run(fn)
    assert not np.shares_memory(a.grad.data, made[0])
    a.grad.data += 1
    np.testing.assert_array_equal(made[0], [2.0, 2.0])

    # a gradient summed by the engine is its own: the leaf takes the sum
    x = fv.tensor([1.0, 2.0], requires_grad=True)
    (x * 2 + x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [5.0, 5.0])
    assert x.grad.data.flags.c_contiguous and x.grad.data.base is None


def test_leaf_grad_takes_a_kernel_array_from_the_buffer_cache():
    """The kernels' bigger outputs live in fastvision's buffer cache (their base is the capsule
    that gives the buffer back, not an array): a fresh one is taken as .grad like any other,
    a view of one is copied."""
    from fastvision.nn import functional as F
    x = fv.tensor(np.ones((2, 64, 5, 5), np.float32))
    w = fv.tensor(np.full((64, 64, 3, 3), 0.01, np.float32), requires_grad=True)
    F.conv2d(x, w).sum().backward()
    assert type(w.grad.data.base).__name__ == "PyCapsule"  # the kernel's array, not a copy

    made = []

    class ViewOfKernelArray(Function):  # declares fresh, but returns a view
        fresh_grads = True

        @staticmethod
        def forward(ctx, w):
            return w * 1

        @staticmethod
        def backward(ctx, grad):
            _, gw, _ = fv.ops.conv2d_backward(np.ones((2, 64, 3, 3), np.float32), x.data,
                                              grad, need_input_grad=False)
            made[:] = [gw]
            return gw.reshape(-1).reshape(gw.shape)

    v = fv.tensor(np.zeros((64, 64, 3, 3), np.float32), requires_grad=True)
    ViewOfKernelArray.apply(v).sum().backward()
    assert type(made[0].base).__name__ == "PyCapsule"
    assert not np.shares_memory(v.grad.data, made[0])


def test_backward_errors():
    x = fv.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar"):
        (x * 2).backward()
    with pytest.raises(RuntimeError, match="does not require grad"):
        fv.tensor([1.0]).backward()
    with pytest.raises(ValueError, match="shape"):
        (x * 2).backward(np.ones(3))
    (x * 2).backward(np.array([1.0, 10.0]))
    np.testing.assert_array_equal(x.grad.data, [2.0, 20.0])


def test_no_grad():
    x = fv.tensor([1.0], requires_grad=True)
    assert fv.is_grad_enabled()
    with fv.no_grad():
        assert not fv.is_grad_enabled()
        y = x * 2
    assert fv.is_grad_enabled() and not y.requires_grad and y.grad_fn is None

    @fv.no_grad()
    def f(t):
        return t + 1
    assert not f(x).requires_grad and fv.is_grad_enabled()


def test_custom_function_and_deep_graph():
    class Square(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return 2 * x * grad

    x = fv.tensor([3.0], requires_grad=True)
    Square.apply(x).backward()
    assert x.grad.item() == 6.0
    y = x
    for _ in range(3000):                     # deeper than Python's recursion limit
        y = y + 0.0
    y.sum().backward()
    assert x.grad.item() == 7.0


def test_factories_and_seeding():
    assert fv.zeros(2, 3).shape == (2, 3) and fv.ones((4,)).data.sum() == 4
    assert fv.zeros(1, requires_grad=True).requires_grad
    fv.manual_seed(7)
    a = fv.randn(3, 4)
    fv.manual_seed(7)
    b = fv.randn(3, 4)
    np.testing.assert_array_equal(a.data, b.data)
    assert a.dtype == np.float32
    np.testing.assert_array_equal(fv.randn(5, generator=3).data, fv.randn(5, generator=3).data)
    g = np.random.default_rng(1)
    assert fv.randn(2, generator=g).shape == (2,)
    with pytest.raises(TypeError):
        fv.zeros(2.5)


def test_against_torch(rng):
    torch = pytest.importorskip("torch")
    a = rng.standard_normal((3, 4)).astype(np.float32)
    b = rng.uniform(0.5, 2, (4,)).astype(np.float32)
    m = rng.standard_normal((4, 2)).astype(np.float32)

    def f(x, y, z, lib_pow):
        u = (x * y - x / y + 1) @ z
        return lib_pow(u, 2).mean() + (-u).sum()

    ts = [fv.tensor(v, requires_grad=True) for v in (a, b, m)]
    f(*ts, lambda u, e: u ** e).backward()
    tt = [torch.tensor(v, requires_grad=True) for v in (a, b, m)]
    f(*tt, lambda u, e: u ** e).backward()
    for ours, theirs in zip(ts, tt):
        np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-5, atol=1e-6)
