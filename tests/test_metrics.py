"""fastvision.metrics: hand-computed cases, validation errors, and scikit-learn as an oracle."""

import warnings

import numpy as np
import pytest
from hypothesis import given, strategies as st

from fastvision import metrics as M

# 3 classes; by hand:
#   confusion (rows true 0,1,2; cols pred):  [[2, 1, 0], [0, 1, 1], [1, 0, 2]]
Y_TRUE = np.array([0, 0, 0, 1, 1, 2, 2, 2])
Y_PRED = np.array([0, 0, 1, 1, 2, 2, 0, 2])


def test_hand_confusion_and_accuracy():
    cm = M.confusion_matrix(Y_TRUE, Y_PRED)
    assert cm.dtype == np.int64
    assert cm.tolist() == [[2, 1, 0], [0, 1, 1], [1, 0, 2]]
    assert M.accuracy(Y_TRUE, Y_PRED) == 5 / 8
    assert M.accuracy(Y_TRUE, Y_PRED, normalize=False) == 5
    assert M.confusion_matrix(Y_TRUE, Y_PRED, labels=[2, 0]).tolist() == [[2, 1], [0, 2]]
    np.testing.assert_allclose(M.confusion_matrix(Y_TRUE, Y_PRED, normalize="true"),
                               [[2 / 3, 1 / 3, 0], [0, 1 / 2, 1 / 2], [1 / 3, 0, 2 / 3]])
    np.testing.assert_allclose(M.confusion_matrix(Y_TRUE, Y_PRED, normalize="pred"),
                               [[2 / 3, 1 / 2, 0], [0, 1 / 2, 1 / 3], [1 / 3, 0, 2 / 3]])
    np.testing.assert_allclose(M.confusion_matrix(Y_TRUE, Y_PRED, normalize="all").sum(), 1.0)


def test_hand_prf():
    p = np.array([2 / 3, 1 / 2, 2 / 3])
    r = np.array([2 / 3, 1 / 2, 2 / 3])
    np.testing.assert_allclose(M.precision(Y_TRUE, Y_PRED), p)
    np.testing.assert_allclose(M.recall(Y_TRUE, Y_PRED), r)
    np.testing.assert_allclose(M.f1_score(Y_TRUE, Y_PRED), 2 * p * r / (p + r))
    assert M.precision(Y_TRUE, Y_PRED, average="macro") == pytest.approx(p.mean())
    assert M.recall(Y_TRUE, Y_PRED, average="weighted") == pytest.approx(
        (3 * 2 / 3 + 2 * 1 / 2 + 3 * 2 / 3) / 8)
    for avg_fn in (M.precision, M.recall, M.f1_score):
        assert avg_fn(Y_TRUE, Y_PRED, average="micro") == pytest.approx(5 / 8)
    # labels subset: micro pools only label 1 -> tp 1, predicted 2 (one true 0), true 2
    assert M.precision(Y_TRUE, Y_PRED, labels=[1], average="micro") == pytest.approx(1 / 2)
    _, _, _, support = M.precision_recall_fscore_support(Y_TRUE, Y_PRED)
    assert support.tolist() == [3, 2, 3]


def test_zero_division():
    t = np.array([0, 0, 1])
    pr = np.array([0, 0, 0])   # label 1 never predicted: precision 0/0
    with pytest.warns(M.UndefinedMetricWarning, match="Precision is ill-defined"):
        assert M.precision(t, pr).tolist() == [2 / 3, 0.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert M.precision(t, pr, zero_division=1).tolist() == [2 / 3, 1.0]
        got = M.precision(t, pr, zero_division=np.nan)
        assert got[0] == 2 / 3 and np.isnan(got[1])
        # nan is left out of the average
        assert M.precision(t, pr, average="macro", zero_division=np.nan) == 2 / 3
        # F1 of label 1: tp = fp = 0, fn = 1 -> 0 (defined), not zero_division
        assert M.f1_score(t, pr, zero_division=1).tolist() == pytest.approx([0.8, 0.0])
        # a label absent from both: everything 0/0
        assert M.f1_score(t, pr, labels=[0, 1, 5], zero_division=1)[2] == 1.0
        assert M.recall(t, pr, labels=[5], average="weighted", zero_division=0) == 0.0


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: M.accuracy([0, 1], [0]), ValueError,
     "accuracy: y_true and y_pred must have the same length, got 2 and 1"),
    (lambda: M.accuracy([], []), ValueError, "accuracy: y_true must not be empty"),
    (lambda: M.accuracy([[0]], [[0]]), ValueError, r"accuracy: y_true must be 1-D, got shape"),
    (lambda: M.accuracy([0.0, 1.0], [0, 1]), TypeError,
     "accuracy: y_true must have an integer dtype, got float64"),
    (lambda: M.accuracy("01", [0, 1]), TypeError, "accuracy: y_true must be an array"),
    (lambda: M.f1_score([0], [0], average="binary"), ValueError, "f1_score: average must be"),
    (lambda: M.recall([0], [0], zero_division=0.5), ValueError,
     "recall: zero_division must be 'warn', 0, 1 or nan, got 0.5"),
    (lambda: M.precision([0], [0], labels=[1, 1]), ValueError,
     "precision: labels must be unique, got 1 2 times"),
    (lambda: M.precision([0], [0], labels=[]), ValueError, "precision: labels must not be"),
    (lambda: M.confusion_matrix([0], [0], normalize="rows"), ValueError,
     "confusion_matrix: normalize must be"),
    (lambda: M.precision_recall_fscore_support([0], [0], beta=-1), ValueError,
     "beta must be a number >= 0"),
    (lambda: M.classification_report([0, 1], [0, 1], target_names=["a"]), ValueError,
     "classification_report: target_names has 1 names but there are 2 labels"),
])
def test_errors(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


def test_report_layout():
    rep = M.classification_report(Y_TRUE, Y_PRED, target_names=["zero", "one", "two"])
    lines = rep.splitlines()
    assert lines[0].split() == ["precision", "recall", "f1-score", "support"]
    assert lines[2].split() == ["zero", "0.67", "0.67", "0.67", "3"]
    assert lines[6].split() == ["accuracy", "0.62", "8"]
    assert lines[7].split()[:2] == ["macro", "avg"] and lines[8].split()[-1] == "8"
    d = M.classification_report(Y_TRUE, Y_PRED, output_dict=True)
    assert d["accuracy"] == pytest.approx(5 / 8)
    assert d["1"] == {"precision": 0.5, "recall": 0.5, "f1-score": 0.5, "support": 2}


# ---------------------------------------------------------------- scikit-learn as an oracle

def _random_case(seed, n, k):
    r = np.random.default_rng(seed)
    t = r.integers(0, k, n)
    # mostly right, sometimes a label never seen in y_true
    p = np.where(r.random(n) < 0.6, t, r.integers(0, k + 1, n))
    return t, p


@given(seed=st.integers(0, 2**31), n=st.sampled_from([1, 7, 8, 9, 17, 65, 300]),
       k=st.sampled_from([1, 2, 3, 10]),
       average=st.sampled_from([None, "macro", "micro", "weighted"]),
       zd=st.sampled_from([0, 1, np.nan]), use_labels=st.booleans())
def test_against_sklearn(seed, n, k, average, zd, use_labels):
    skm = pytest.importorskip("sklearn.metrics")
    t, p = _random_case(seed, n, k)
    # unsorted, one never present, maybe some present left out; sklearn insists one is in y_true
    labels = np.unique([t[0], 0, k + 2])[::-1] if use_labels else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # sklearn's "a single label was found", 0/0 notes
        np.testing.assert_array_equal(M.confusion_matrix(t, p, labels=labels),
                                      skm.confusion_matrix(t, p, labels=labels))
        assert M.accuracy(t, p) == skm.accuracy_score(t, p)
        for ours, theirs in [(M.precision, skm.precision_score), (M.recall, skm.recall_score),
                             (M.f1_score, skm.f1_score)]:
            np.testing.assert_allclose(ours(t, p, labels=labels, average=average,
                                            zero_division=zd),
                                       theirs(t, p, labels=labels, average=average,
                                              zero_division=zd), rtol=1e-12, atol=0)
        got = M.precision_recall_fscore_support(t, p, labels=labels, average=None)
        want = skm.precision_recall_fscore_support(t, p, labels=labels, average=None)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize("seed, labels, names, digits", [
    (0, None, None, 2), (1, None, ["cat", "dog", "a-very-long-class-name"], 4),
    (2, [2, 0], None, 3),   # a present label left out: "micro avg" instead of "accuracy"
])
def test_report_against_sklearn(seed, labels, names, digits):
    skm = pytest.importorskip("sklearn.metrics")
    t, p = _random_case(seed, 50, 3)
    p = np.minimum(p, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kw = dict(labels=labels, target_names=names, digits=digits, zero_division=0)
        assert M.classification_report(t, p, **kw) == skm.classification_report(t, p, **kw)
        ours = M.classification_report(t, p, output_dict=True, **kw)
        theirs = skm.classification_report(t, p, output_dict=True, **kw)
    assert list(ours) == list(theirs)
    for key, want in theirs.items():
        assert ours[key] == pytest.approx(want, rel=1e-12), key


def test_confusion_normalize_against_sklearn():
    skm = pytest.importorskip("sklearn.metrics")
    t, p = _random_case(5, 40, 4)
    for norm in ("true", "pred", "all"):
        np.testing.assert_allclose(M.confusion_matrix(t, p, normalize=norm),
                                   skm.confusion_matrix(t, p, normalize=norm), rtol=1e-12)
