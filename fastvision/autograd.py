"""Reverse-mode automatic differentiation: Function nodes on a tape, a topological sort.

A Function subclass defines two static methods over NumPy arrays, like torch.autograd.Function:

    class Square(Function):
        @staticmethod
        def forward(ctx, x):            # Tensors arrive as their float32 arrays
            ctx.save_for_backward(x)
            return x * x
        @staticmethod
        def backward(ctx, grad):        # one gradient (or None) per forward argument
            (x,) = ctx.saved_tensors
            return 2 * x * grad

    y = Square.apply(t)                 # a Tensor, with a node when t requires grad

forward may also return a tuple (array, extra, ...): apply then returns (Tensor, extra, ...)
and the extras (e.g. max-pool indices) are not differentiated. ctx.needs_input_grad tells
backward which gradients are wanted. Tensor.backward() walks the nodes reachable from the
output in reverse topological order, sums the gradients flowing into each tensor, and adds
them into the .grad of leaves that require grad (accumulating across calls, as torch).

A leaf without a .grad gets a copy of its gradient, unless the engine knows the array is its
own to give: a sum the engine made, or an array returned by a Function that sets
`fresh_grads = True` (its backward returns new arrays it keeps no reference to, like the
kernels' outputs) and returned for that input only. Then the array itself becomes .grad, as
torch's AccumulateGrad takes a gradient nothing else holds: the reference model's ten
parameter gradients are not copied every step.
"""

import numpy as np

_grad_enabled = True


def is_grad_enabled() -> bool:
    return _grad_enabled


class no_grad:
    """Context manager (or decorator) that disables recording: results do not require grad."""

    def __enter__(self):
        global _grad_enabled
        self._prev, _grad_enabled = _grad_enabled, False
        return self

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._prev
        return False

    def __call__(self, fn):
        def wrapper(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)
        wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
        return wrapper


class Context:
    """Per-call scratch space shared by forward and backward."""

    saved_tensors = ()
    needs_input_grad = ()

    def save_for_backward(self, *arrays):
        self.saved_tensors = arrays


class Node:
    __slots__ = ("fn", "ctx", "parents")

    def __init__(self, fn, ctx, parents):
        self.fn, self.ctx, self.parents = fn, ctx, parents

    def __repr__(self):
        return f"<{self.fn.__name__.lstrip('_')}Backward>"


class Function:
    fresh_grads = False  # see the module docstring: backward's arrays may become leaves' .grad

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs):
        Tensor = _tensor_class()
        parents, values, needs = [], [], []
        for a in args:  # one pass: this runs for every op of every step
            if isinstance(a, Tensor):
                parents.append(a)
                values.append(a.data)
                needs.append(a.requires_grad)
            else:
                parents.append(None)
                values.append(a)
                needs.append(False)
        ctx = Context()
        ctx.needs_input_grad = tuple(needs)
        out = cls.forward(ctx, *values, **kwargs)
        extras = ()
        if isinstance(out, tuple):
            out, extras = out[0], out[1:]
        track = _grad_enabled and any(needs)
        result = Tensor(out, requires_grad=track)
        if track:
            result._node = Node(cls, ctx, tuple(parents))
        return (result,) + tuple(extras) if extras else result


_Tensor = None


def _tensor_class():
    global _Tensor
    if _Tensor is None:
        from fastvision.tensor import Tensor  # tensor.py imports this module
        _Tensor = Tensor
    return _Tensor


def _topological_order(root):
    """Tensors reachable from root through nodes, each after everything it depends on."""
    order, seen, stack = [], set(), [(root, False)]
    while stack:  # iterative post-order DFS: deep nets must not hit the recursion limit
        t, expanded = stack.pop()
        if expanded:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        if t._node is not None:
            for p in t._node.parents:
                if p is not None and p.requires_grad and id(p) not in seen:
                    stack.append((p, False))
    return order


def _owns_memory(a):
    """A writeable C-contiguous array that is not a view (what a leaf's .grad may be). The
    kernels' bigger outputs come from fastvision's buffer cache: their base is the capsule that
    returns the buffer when the array dies, not another array (a view's base is an array)."""
    return ((a.base is None or type(a.base).__name__ == "PyCapsule")
            and a.flags.c_contiguous and a.flags.writeable)


def backward(root, grad=None):
    """Accumulate d(root)/d(leaf) (times grad) into every reachable leaf's .grad."""
    from fastvision.tensor import Tensor
    if not root.requires_grad:
        raise RuntimeError("backward: the tensor does not require grad and has no grad_fn")
    if grad is None:
        if root.data.size != 1:
            raise RuntimeError(f"backward: grad can be implicitly created only for scalar "
                               f"outputs, got shape {root.shape}")
        grad = np.ones_like(root.data)
    else:
        grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=np.float32)
        if grad.shape != root.shape:
            raise ValueError(f"backward: grad must have shape {root.shape}, got {grad.shape}")
    grads = {id(root): (grad, False)}  # id(tensor) -> (gradient, whether the engine owns it)
    for t in reversed(_topological_order(root)):
        g, owned = grads.pop(id(t), (None, False))
        if g is None:
            continue
        if t._node is None:  # a leaf: accumulate, as torch
            if t.grad is None:
                t.grad = Tensor(g if owned else np.array(g, dtype=np.float32, order="C"))
            else:
                t.grad.data += g
            continue
        node = t._node
        gin = node.fn.backward(node.ctx, g)
        if not isinstance(gin, tuple):
            gin = (gin,)
        fresh = node.fn.fresh_grads
        if fresh:  # arrays returned for more than one input are not the engine's to give
            seen, shared = set(), set()
            for gp in gin:
                if gp is not None:
                    (shared if id(gp) in seen else seen).add(id(gp))
        for p, gp in zip(node.parents, gin):
            if p is None or not p.requires_grad or gp is None:
                continue
            g32 = np.asarray(gp, dtype=np.float32)
            if g32.shape != p.shape:
                raise RuntimeError(f"{node.fn.__name__}.backward returned a gradient of shape "
                                   f"{g32.shape} for an input of shape {p.shape}")
            if id(p) in grads:
                grads[id(p)] = (grads[id(p)][0] + g32, True)  # a new array
            else:  # owned: a fresh float32 array given to this input only
                given = fresh and g32 is gp and id(gp) not in shared
                grads[id(p)] = (g32, given and _owns_memory(g32))
