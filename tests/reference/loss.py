"""Softmax cross-entropy and log_softmax references, float64, as torch.nn.functional."""

import numpy as np


def log_softmax(x):
    x = np.asarray(x, dtype=np.float64)
    m = x.max(axis=1, keepdims=True)
    d = x - m
    return d - np.log(np.exp(d).sum(axis=1, keepdims=True))


def log_softmax_backward(grad_y, y):
    grad_y = np.asarray(grad_y, dtype=np.float64)
    return grad_y - np.exp(np.asarray(y, dtype=np.float64)) * grad_y.sum(axis=1, keepdims=True)


def target(labels, c, label_smoothing=0.0):
    """(1 - ls) * onehot + ls / C."""
    t = np.zeros((len(labels), c))
    t[np.arange(len(labels)), labels] = 1.0
    return (1.0 - label_smoothing) * t + label_smoothing / c


def cross_entropy_rows(x, labels, label_smoothing=0.0):
    """Per-row loss -sum_j target_j log softmax(x)_j."""
    x = np.asarray(x, dtype=np.float64)
    return -(target(labels, x.shape[1], label_smoothing) * log_softmax(x)).sum(axis=1)


def softmax_cross_entropy(x, labels, reduction="mean", label_smoothing=0.0):
    """(loss, d loss / d x) as torch's F.cross_entropy and its autograd (for "none", the
    gradient of loss.sum())."""
    x = np.asarray(x, dtype=np.float64)
    rows = cross_entropy_rows(x, labels, label_smoothing)
    p = np.exp(log_softmax(x))
    grad = p - target(labels, x.shape[1], label_smoothing)
    if reduction == "none":
        return rows, grad
    if reduction == "sum":
        return rows.sum(), grad
    return rows.mean(), grad / x.shape[0]


def cross_entropy_scale(x, labels, label_smoothing=0.0):
    """The magnitude the fp32 loss rounding scales with, per row: log(sum exp(x - max)) plus
    |x_y - max| plus (ls / C) * sum |x_j - max| (the loss is the sum of these three terms)."""
    x = np.asarray(x, dtype=np.float64)
    d = x - x.max(axis=1, keepdims=True)
    lse = np.log(np.exp(d).sum(axis=1))
    dy = -d[np.arange(len(labels)), labels]
    return 1.0 + lse + dy + label_smoothing / x.shape[1] * np.abs(d).sum(axis=1)
