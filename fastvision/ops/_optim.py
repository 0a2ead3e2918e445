"""Optimizer updates, in place, with torch.optim's formulas (single-tensor CPU path).

param and the state buffers (momentum_buf, m, v, v_max, square_avg, grad_avg) are updated in
place and must be float32, C-contiguous and writeable numpy arrays (TypeError otherwise: they
are never converted, since an update to a copy would be lost); grad is read-only and converted
if needed. All arrays must have param's shape and must not overlap in memory (ValueError).
Hyper-parameters follow torch.optim's rules (lr, eps, momentum, weight_decay >= 0, betas in
[0, 1), ...; ValueError). Everything is checked before anything is written. The state is
kept by the caller: the buffers start as zeros (torch's initial state), the step count is
passed explicitly. Elementwise, so results do not depend on the thread count, and the
kernels use no FMA, so they do not depend on the ISA level either.
"""

import numpy as np

from fastvision import _C
from fastvision.ops._args import as_f32, as_float, as_int, check_inplace_f32


def _flag(op, name, v):
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be a bool, got {type(v).__name__}")
    return bool(v)


def _buf(op, name, x):
    return None if x is None else check_inplace_f32(op, name, x)


def sgd_step(param, grad, momentum_buf, *, lr, momentum=0.0, dampening=0.0, nesterov=False,
             weight_decay=0.0, first_step=False):
    """One torch.optim.SGD step:

        d = grad + weight_decay * param
        if momentum != 0:
            buf = d if first_step else momentum * buf + (1 - dampening) * d
            d = d + momentum * buf if nesterov else buf
        param -= lr * d

    torch creates the momentum buffer on the first step (buf = d, no dampening); here the
    caller owns the buffer, so pass first_step=True on the first call (the buffer's previous
    contents are then ignored and overwritten). momentum_buf may be None when momentum == 0.
    """
    op = "sgd_step"
    _C.sgd_step(check_inplace_f32(op, "param", param), as_f32(op, "grad", grad),
                _buf(op, "momentum_buf", momentum_buf), lr=as_float(op, "lr", lr),
                momentum=as_float(op, "momentum", momentum),
                dampening=as_float(op, "dampening", dampening),
                nesterov=_flag(op, "nesterov", nesterov),
                weight_decay=as_float(op, "weight_decay", weight_decay),
                first_step=_flag(op, "first_step", first_step))


def adam_step(param, grad, m, v, *, step, lr, beta1, beta2, eps, weight_decay=0.0,
              amsgrad=False, v_max=None, decoupled_weight_decay=False):
    """One torch.optim.Adam step (torch.optim.AdamW with decoupled_weight_decay=True).

        if weight_decay: param *= 1 - lr * wd (decoupled)   or   grad += wd * param
        m = lerp(m, grad, 1 - beta1);  v = beta2 * v + (1 - beta2) * grad^2
        if amsgrad: v_max = max(v_max, v), used below in place of v
        denom = sqrt(v) / sqrt(1 - beta2^step) + eps
        param -= lr / (1 - beta1^step) * m / denom

    step is the 1-based count of this update (torch's state['step'] after incrementing); m, v
    (and v_max) start as zeros.

    Keras's epsilon convention: Keras (and the Adam paper's "efficient" form) computes
    lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t) and param -= lr_t * m / (sqrt(v) + eps_hat),
    i.e. eps_hat is added to the *uncorrected* sqrt(v). Dividing through by sqrt(1 - beta2^t)
    shows it equals torch's update with eps = eps_hat / sqrt(1 - beta2^t) (a per-step value);
    conversely torch's eps corresponds to Keras's eps_hat = eps * sqrt(1 - beta2^t). So the same
    number used as eps in both gives different updates while sqrt(v) is comparable to eps
    (early steps, tiny gradients) and practically equal ones afterwards.
    """
    op = "adam_step"
    _C.adam_step(check_inplace_f32(op, "param", param), as_f32(op, "grad", grad),
                 check_inplace_f32(op, "m", m), check_inplace_f32(op, "v", v),
                 step=as_int(op, "step", step), lr=as_float(op, "lr", lr),
                 beta1=as_float(op, "beta1", beta1), beta2=as_float(op, "beta2", beta2),
                 eps=as_float(op, "eps", eps), weight_decay=as_float(op, "weight_decay", weight_decay),
                 amsgrad=_flag(op, "amsgrad", amsgrad), v_max=_buf(op, "v_max", v_max),
                 decoupled_weight_decay=_flag(op, "decoupled_weight_decay", decoupled_weight_decay))


def _per_tensor(op, name, v, n, check):
    """A scalar repeated n times, or a sequence of n values, each through check."""
    if isinstance(v, (list, tuple)):
        if len(v) != n:
            raise ValueError(f"{op}: {name} must have one entry per param ({n}), got {len(v)}")
        return [check(op, f"{name}[{i}]", x) for i, x in enumerate(v)]
    v = check(op, name, v)
    return [v] * n


def _seq(op, name, xs):
    if isinstance(xs, np.ndarray) or not isinstance(xs, (list, tuple)):
        raise TypeError(f"{op}: {name} must be a list of arrays, got {type(xs).__name__}")
    return xs


def adam_step_foreach(params, grads, ms, vs, *, steps, lr, beta1, beta2, eps, weight_decay=0.0,
                      amsgrad=False, v_maxs=None, decoupled_weight_decay=False):
    """adam_step over lists of tensors in one call (torch's foreach=True): params[i], grads[i],
    ms[i], vs[i] (and v_maxs[i]) are one tensor's arrays, updated exactly as adam_step would,
    bit for bit. steps and eps are one value for all tensors or a list with one per tensor.
    Everything is checked before anything is written (the in-place arrays in C++, with the
    same rules and messages as adam_step's, indexed: "params[3]"; arrays of different tensors
    must not overlap either, gradients aside); the small tensors of a network share one
    parallel region instead of one call each."""
    op = "adam_step_foreach"
    n = len(_seq(op, "params", params))
    grads = [as_f32(op, f"grads[{i}]", g) for i, g in enumerate(_seq(op, "grads", grads))]
    _C.adam_step_foreach(
        params, grads, _seq(op, "ms", ms), _seq(op, "vs", vs),
        steps=_per_tensor(op, "steps", steps, n, as_int), lr=as_float(op, "lr", lr),
        beta1=as_float(op, "beta1", beta1), beta2=as_float(op, "beta2", beta2),
        eps=_per_tensor(op, "eps", eps, n, as_float),
        weight_decay=as_float(op, "weight_decay", weight_decay),
        amsgrad=_flag(op, "amsgrad", amsgrad),
        v_maxs=None if v_maxs is None else _seq(op, "v_maxs", v_maxs),
        decoupled_weight_decay=_flag(op, "decoupled_weight_decay", decoupled_weight_decay))


def rmsprop_step(param, grad, square_avg, *, lr, alpha, eps, momentum=0.0, momentum_buf=None,
                 centered=False, grad_avg=None, weight_decay=0.0):
    """One torch.optim.RMSprop step:

        g = grad + weight_decay * param
        square_avg = alpha * square_avg + (1 - alpha) * g^2
        if centered: grad_avg = lerp(grad_avg, g, 1 - alpha); avg = sqrt(square_avg - grad_avg^2)
        else: avg = sqrt(square_avg)
        avg += eps
        if momentum > 0: buf = momentum * buf + g / avg; param -= lr * buf
        else: param -= lr * g / avg

    Buffers start as zeros; momentum_buf is needed when momentum > 0, grad_avg when centered.
    """
    op = "rmsprop_step"
    _C.rmsprop_step(check_inplace_f32(op, "param", param), as_f32(op, "grad", grad),
                    check_inplace_f32(op, "square_avg", square_avg), lr=as_float(op, "lr", lr),
                    alpha=as_float(op, "alpha", alpha), eps=as_float(op, "eps", eps),
                    momentum=as_float(op, "momentum", momentum),
                    momentum_buf=_buf(op, "momentum_buf", momentum_buf),
                    centered=_flag(op, "centered", centered), grad_avg=_buf(op, "grad_avg", grad_avg),
                    weight_decay=as_float(op, "weight_decay", weight_decay))
