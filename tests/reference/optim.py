"""Optimizer step references: float64 transcriptions of torch.optim's single-tensor formulas
(SGD, Adam/AdamW, RMSprop). Each updates the given float64 arrays in place."""

import numpy as np


def _lerp(x, y, w):
    return x + w * (y - x) if w < 0.5 else y - (y - x) * (1.0 - w)


def sgd_step(param, grad, buf, *, lr, momentum=0.0, dampening=0.0, nesterov=False,
             weight_decay=0.0, first_step=False):
    d = grad + weight_decay * param if weight_decay != 0 else grad.copy()
    if momentum != 0:
        if first_step:
            buf[...] = d
        else:
            buf[...] = momentum * buf + (1 - dampening) * d
        d = d + momentum * buf if nesterov else buf
    param -= lr * d


def adam_step(param, grad, m, v, *, step, lr, beta1, beta2, eps, weight_decay=0.0,
              amsgrad=False, v_max=None, decoupled_weight_decay=False):
    g = grad
    if weight_decay != 0:
        if decoupled_weight_decay:
            param *= 1 - lr * weight_decay
        else:
            g = grad + weight_decay * param
    m[...] = _lerp(m, g, 1 - beta1)
    v[...] = beta2 * v + (1 - beta2) * g * g
    bc1 = 1 - beta1 ** step
    bc2 = 1 - beta2 ** step
    if amsgrad:
        v_max[...] = np.maximum(v_max, v)
        vv = v_max
    else:
        vv = v
    denom = np.sqrt(vv) / np.sqrt(bc2) + eps
    param -= (lr / bc1) * m / denom


def rmsprop_step(param, grad, square_avg, *, lr, alpha, eps, momentum=0.0, momentum_buf=None,
                 centered=False, grad_avg=None, weight_decay=0.0):
    g = grad + weight_decay * param if weight_decay != 0 else grad
    square_avg[...] = alpha * square_avg + (1 - alpha) * g * g
    if centered:
        grad_avg[...] = _lerp(grad_avg, g, 1 - alpha)
        avg = np.sqrt(square_avg - grad_avg * grad_avg)
    else:
        avg = np.sqrt(square_avg)
    avg = avg + eps
    if momentum > 0:
        momentum_buf[...] = momentum * momentum_buf + g / avg
        param -= lr * momentum_buf
    else:
        param -= lr * g / avg
