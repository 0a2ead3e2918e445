"""Classification metrics on integer label arrays, with scikit-learn's semantics.

    accuracy(y_true, y_pred)
    confusion_matrix(y_true, y_pred, labels=None, normalize=None)   # rows: true, cols: pred
    precision / recall / f1_score(y_true, y_pred, labels=None, average=None, zero_division="warn")
    precision_recall_fscore_support(...)  -> (precision, recall, f1, support)
    classification_report(y_true, y_pred, labels=None, target_names=None, digits=2, ...)

labels=None means the sorted union of the labels present in y_true and y_pred. average:
None (one value per label), "macro" (unweighted mean over labels), "micro" (from the pooled
tp/fp/fn counts of the given labels; equals accuracy when every present label is included),
"weighted" (mean weighted by support). zero_division: the value used where a denominator is
0 — "warn" (0, with an UndefinedMetricWarning), 0, 1 or np.nan (nan values are left out of
the averages). All counting is one np.bincount over the (true, pred) pairs.
"""

import numbers
import warnings

import numpy as np

AVERAGES = (None, "micro", "macro", "weighted")


class UndefinedMetricWarning(UserWarning):
    """A metric was 0/0 for some label and zero_division="warn" set it to 0."""


def _labels_1d(fn, name, y):
    if isinstance(y, (str, bytes)) or y is None:
        raise TypeError(f"{fn}: {name} must be an array of integer labels, "
                        f"got {type(y).__name__}")
    arr = np.asarray(y)
    if arr.size == 0 and not isinstance(y, np.ndarray):
        arr = arr.astype(np.int64)  # np.asarray([]) is float64
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{fn}: {name} must have an integer dtype, got {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{fn}: {name} must be 1-D, got shape {arr.shape}")
    return arr


def _check_pair(fn, y_true, y_pred):
    t = _labels_1d(fn, "y_true", y_true)
    p = _labels_1d(fn, "y_pred", y_pred)
    if t.shape != p.shape:
        raise ValueError(f"{fn}: y_true and y_pred must have the same length, "
                         f"got {t.shape[0]} and {p.shape[0]}")
    if t.size == 0:
        raise ValueError(f"{fn}: y_true must not be empty")
    return t.astype(np.int64, copy=False), p.astype(np.int64, copy=False)


def _check_labels(fn, labels, t, p):
    if labels is None:
        return np.union1d(t, p)
    lab = _labels_1d(fn, "labels", labels).astype(np.int64)
    if lab.size == 0:
        raise ValueError(f"{fn}: labels must not be empty")
    uniq, counts = np.unique(lab, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"{fn}: labels must be unique, got {int(uniq[counts > 1][0])} "
                         f"{int(counts[counts > 1][0])} times")
    return lab


def _check_zero_division(fn, zero_division):
    if isinstance(zero_division, str):
        if zero_division == "warn":
            return 0.0
    elif isinstance(zero_division, numbers.Real) and not isinstance(zero_division, bool):
        if zero_division in (0, 1) or np.isnan(zero_division):
            return float(zero_division)
    raise ValueError(f"{fn}: zero_division must be 'warn', 0, 1 or nan, got {zero_division!r}")


def _counts(t, p, labels):
    """Confusion counts (L, L) over `labels`; pairs with a label outside `labels` are dropped."""
    n = labels.size
    order = np.argsort(labels, kind="stable")
    srt = labels[order]

    def index(y):
        pos = np.clip(np.searchsorted(srt, y), 0, n - 1)
        return np.where(srt[pos] == y, order[pos], -1)

    ti, pi = index(t), index(p)
    keep = (ti >= 0) & (pi >= 0)
    flat = ti[keep] * n + pi[keep]
    return np.bincount(flat, minlength=n * n).reshape(n, n)


def _sums(t, p, labels):
    """(tp, predicted, true) counts per label, float64. Unlike the confusion matrix these
    count every sample: a label's predicted count includes samples whose true label is
    outside `labels` (scikit-learn's multilabel_confusion_matrix convention)."""
    every = np.union1d(np.union1d(t, p), labels)
    ti, pi = np.searchsorted(every, t), np.searchsorted(every, p)
    m = every.size
    tp = np.bincount(ti[t == p], minlength=m)
    pred, true = np.bincount(pi, minlength=m), np.bincount(ti, minlength=m)
    idx = np.searchsorted(every, labels)
    return tp[idx].astype(np.float64), pred[idx].astype(np.float64), true[idx].astype(np.float64)


def accuracy(y_true, y_pred, normalize=True):
    """Fraction (normalize=True) or number of samples with y_pred == y_true."""
    t, p = _check_pair("accuracy", y_true, y_pred)
    hits = int(np.count_nonzero(t == p))
    return hits / t.size if normalize else hits


def confusion_matrix(y_true, y_pred, labels=None, normalize=None):
    """C[i, j] = number of samples with true label labels[i] and predicted label labels[j].

    normalize: None (counts, int64), "true" (rows sum to 1), "pred" (columns sum to 1) or
    "all" (total sums to 1); an all-zero row/column stays 0.
    """
    fn = "confusion_matrix"
    t, p = _check_pair(fn, y_true, y_pred)
    if normalize not in (None, "true", "pred", "all"):
        raise ValueError(f"{fn}: normalize must be None, 'true', 'pred' or 'all', "
                         f"got {normalize!r}")
    cm = _counts(t, p, _check_labels(fn, labels, t, p))
    if normalize is None:
        return cm
    if normalize == "true":
        den = cm.sum(axis=1, keepdims=True)
    elif normalize == "pred":
        den = cm.sum(axis=0, keepdims=True)
    else:
        den = np.array(cm.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nan_to_num(cm / den, nan=0.0)


def _divide(num, den, zd_value, warn, what):
    out = np.divide(num, den, out=np.full(num.shape, zd_value, dtype=np.float64),
                    where=den != 0)
    if warn and (den == 0).any():
        missing = {"Precision": "predicted", "Recall": "true"}.get(what, "true nor predicted")
        warnings.warn(f"{what} is ill-defined and being set to 0.0 for labels with no "
                      f"{missing} samples; use zero_division to control this",
                      UndefinedMetricWarning, stacklevel=4)
    return out


def _average(values, weights):
    """Mean ignoring nan; weights all 0 (or None) -> plain mean; all nan -> nan."""
    ok = ~np.isnan(values)
    if not ok.any():
        return float("nan")
    v = values[ok]
    if weights is not None and weights[ok].sum() > 0:
        return float(np.average(v, weights=weights[ok]))
    return float(v.mean())


def precision_recall_fscore_support(y_true, y_pred, labels=None, average=None, beta=1.0,
                                    zero_division="warn", _fn="precision_recall_fscore_support",
                                    _warn_for=("Precision", "Recall", "F-score")):
    """(precision, recall, F-beta, support): arrays over labels when average is None, else
    floats with support None (scikit-learn's convention)."""
    fn = _fn
    t, p = _check_pair(fn, y_true, y_pred)
    if average not in AVERAGES:
        raise ValueError(f"{fn}: average must be one of {AVERAGES}, got {average!r}")
    if not isinstance(beta, numbers.Real) or isinstance(beta, bool) or not beta >= 0:
        raise ValueError(f"{fn}: beta must be a number >= 0, got {beta!r}")
    zd = _check_zero_division(fn, zero_division)
    warn = isinstance(zero_division, str)
    tp, pred, true = _sums(t, p, _check_labels(fn, labels, t, p))
    support = true.astype(np.int64)
    if average == "micro":
        tp, pred, true = tp.sum(keepdims=True), pred.sum(keepdims=True), true.sum(keepdims=True)
    prec = _divide(tp, pred, zd, warn and "Precision" in _warn_for, "Precision")
    rec = _divide(tp, true, zd, warn and "Recall" in _warn_for, "Recall")
    if np.isposinf(beta):
        f = rec
    elif beta == 0:
        f = prec
    else:
        b2 = float(beta) ** 2
        # (1 + b2) tp / ((1 + b2) tp + b2 fn + fp), defined whenever tp + fn + fp > 0
        f = _divide((1 + b2) * tp, b2 * true + pred, zd, warn and "F-score" in _warn_for,
                    "F-score")
    if average is None:
        return prec, rec, f, support
    weights = true if average == "weighted" else None
    return _average(prec, weights), _average(rec, weights), _average(f, weights), None


def precision(y_true, y_pred, labels=None, average=None, zero_division="warn"):
    """tp / (tp + fp) per label (average=None) or averaged; see the module docstring."""
    return precision_recall_fscore_support(y_true, y_pred, labels, average, 1.0, zero_division,
                                           _fn="precision", _warn_for=("Precision",))[0]


def recall(y_true, y_pred, labels=None, average=None, zero_division="warn"):
    """tp / (tp + fn) per label (average=None) or averaged; see the module docstring."""
    return precision_recall_fscore_support(y_true, y_pred, labels, average, 1.0, zero_division,
                                           _fn="recall", _warn_for=("Recall",))[1]


def f1_score(y_true, y_pred, labels=None, average=None, zero_division="warn"):
    """2 tp / (2 tp + fp + fn) per label (average=None) or averaged; see the module docstring."""
    return precision_recall_fscore_support(y_true, y_pred, labels, average, 1.0, zero_division,
                                           _fn="f1_score", _warn_for=("F-score",))[2]


def classification_report(y_true, y_pred, labels=None, target_names=None, digits=2,
                          output_dict=False, zero_division="warn"):
    """Per-label precision / recall / F1 / support, then accuracy (or micro avg when some
    present label is left out of `labels`), macro avg and weighted avg rows; laid out like
    sklearn.metrics.classification_report. output_dict=True returns the same as a dict."""
    fn = "classification_report"
    t, p = _check_pair(fn, y_true, y_pred)
    labels_given = labels is not None
    lab = _check_labels(fn, labels, t, p)
    if isinstance(digits, bool) or not isinstance(digits, numbers.Integral) or digits < 0:
        raise ValueError(f"{fn}: digits must be an int >= 0, got {digits!r}")
    if target_names is None:
        target_names = [str(int(v)) for v in lab]
    else:
        target_names = [str(s) for s in target_names]
        if len(target_names) != lab.size:
            raise ValueError(f"{fn}: target_names has {len(target_names)} names but there "
                             f"are {lab.size} labels")
    micro_is_accuracy = not labels_given or set(lab.tolist()) >= set(np.union1d(t, p).tolist())
    kw = dict(labels=lab, zero_division=zero_division, _fn=fn)
    pr, rc, f1, sup = precision_recall_fscore_support(t, p, average=None, **kw)
    headers = ["precision", "recall", "f1-score", "support"]
    total = int(sup.sum())
    avgs = []
    for average in ("micro", "macro", "weighted"):
        heading = "accuracy" if average == "micro" and micro_is_accuracy else average + " avg"
        ap, ar, af, _ = precision_recall_fscore_support(t, p, average=average, **kw)
        avgs.append((heading, ap, ar, af, total))
    if output_dict:
        out = {name: dict(zip(headers, (float(a), float(b), float(c), int(d))))
               for name, a, b, c, d in zip(target_names, pr, rc, f1, sup)}
        for heading, ap, ar, af, s in avgs:
            out[heading] = af if heading == "accuracy" else dict(zip(headers, (ap, ar, af, s)))
        return out
    width = max(max(len(n) for n in target_names), len("weighted avg"), digits)
    report = ("{:>{width}s} " + " {:>9}" * 4).format("", *headers, width=width) + "\n\n"
    row = "{:>{width}s} " + " {:>9.{digits}f}" * 3 + " {:>9}\n"
    for values in zip(target_names, pr, rc, f1, sup):
        report += row.format(*values, width=width, digits=digits)
    report += "\n"
    for heading, ap, ar, af, s in avgs:
        if heading == "accuracy":
            acc_row = "{:>{width}s} " + " {:>9.{digits}}" * 2 + " {:>9.{digits}f} {:>9}\n"
            report += acc_row.format(heading, "", "", af, s, width=width, digits=digits)
        else:
            report += row.format(heading, ap, ar, af, s, width=width, digits=digits)
    return report
