"""Fused softmax cross-entropy, log_softmax and its backward, on (N, C) float32 logits.

`softmax_cross_entropy` returns the loss and its gradient in one call (one pass per row in
C++): there is no separate backward to call, which keeps the per-step overhead of small
batches (MNIST: 64 x 10) low.
"""

import numpy as np

from fastvision import _C
from fastvision.ops._args import as_f32, as_float

_LABEL_KINDS = "iu"


def _as_labels(op, labels):
    """labels as int64 C-contiguous; int32 (and other integer dtypes) are converted, floats and
    bools raise TypeError (a float label is almost always a bug, as in torch)."""
    if isinstance(labels, np.ndarray) and labels.dtype == np.int64 and labels.flags.c_contiguous:
        return labels  # the common case: no copy, no checks beyond those in C++
    if isinstance(labels, (str, bytes)) or labels is None:
        raise TypeError(f"{op}: labels must be an array of integers, got {type(labels).__name__}")
    arr = np.asarray(labels)
    if arr.dtype.kind not in _LABEL_KINDS:
        raise TypeError(f"{op}: labels must have an integer dtype (int64 or int32), got {arr.dtype}")
    if arr.dtype == np.uint64 and arr.size and arr.max() > np.iinfo(np.int64).max:
        # would wrap to negative in int64; report the value as given
        i = int(np.argmax(arr.reshape(-1) > np.iinfo(np.int64).max))
        raise ValueError(f"{op}: labels[{i}] = {arr.reshape(-1)[i]} is out of range [0, C)")
    return np.ascontiguousarray(arr, dtype=np.int64)


def softmax_cross_entropy(logits, labels, reduction="mean", label_smoothing=0.0):
    """Cross-entropy of softmax(logits) against integer class labels, and its gradient.

    As torch.nn.functional.cross_entropy(logits, labels, reduction=..., label_smoothing=...)
    for 2-D logits (N, C) and class-index labels (N,) in [0, C); the target is
    (1 - label_smoothing) * onehot(label) + label_smoothing / C.

    Returns (loss, grad_logits):
      reduction="mean": loss a Python float (the per-row losses summed in float64 in row
                        order, divided by N); grad = (softmax - target) / N
      reduction="sum":  loss a Python float; grad = softmax - target
      reduction="none": loss a float32 array (N,); grad = softmax - target, i.e. the gradient
                        of loss.sum() (multiply row i by the upstream gradient of loss[i]).
    Raises ValueError for labels out of range (naming the first bad one), a bad reduction or
    label_smoothing outside [0, 1]; TypeError for float or bool labels.
    """
    op = "softmax_cross_entropy"
    if not isinstance(reduction, str):
        raise TypeError(f"{op}: reduction must be a str, got {type(reduction).__name__}")
    return _C.softmax_cross_entropy(as_f32(op, "logits", logits), _as_labels(op, labels),
                                    reduction, as_float(op, "label_smoothing", label_smoothing))


def log_softmax(x, dim=-1):
    """log(softmax(x)) along dim of a 2-D (N, C) array (dim must be -1 or 1), as
    torch.nn.functional.log_softmax: x - max - log(sum(exp(x - max)))."""
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"log_softmax: dim must be an int, got {type(dim).__name__}")
    return _C.log_softmax(as_f32("log_softmax", "x", x), int(dim))


def log_softmax_backward(grad_y, y):
    """Gradient of log_softmax: grad_x = grad_y - exp(y) * sum(grad_y) per row, where y is
    log_softmax's output (N, C)."""
    op = "log_softmax_backward"
    return _C.log_softmax_backward(as_f32(op, "grad_y", grad_y), as_f32(op, "y", y))
