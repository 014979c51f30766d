"""symnet.metrics against scikit-learn, plus the lecture's tumour example."""

import numpy as np
import pytest

from symnet import metrics
from symnet.errors import DataError

skm = pytest.importorskip("sklearn.metrics", reason="scikit-learn is the reference for the metrics")


def _cases():
    """(y_true, y_pred) pairs: random binary and multi-class, plus edge cases."""
    rng = np.random.default_rng(0)
    cases = []
    for n, k in [(20, 2), (50, 2), (30, 3), (100, 5), (7, 4)]:
        cases.append((rng.integers(0, k, n), rng.integers(0, k, n)))
    cases.append((np.array([0, 1, 1, 0, 1]), np.zeros(5, int)))  # positive never predicted
    cases.append((np.array([0, 1, 2, 2, 1]), np.array([0, 0, 0, 0, 0])))  # only one class predicted
    cases.append((np.array([0, 0, 0, 0]), np.array([0, 1, 0, 1])))  # positive never true
    cases.append((np.array([2, 0, 1, 2]), np.array([2, 0, 1, 2])))  # perfect
    cases.append((np.array([0, 1, 2, 3]), np.array([3, 2, 1, 0])))  # all wrong
    return cases


@pytest.mark.parametrize("y_true,y_pred", _cases())
def test_matches_sklearn(y_true, y_pred):
    assert metrics.accuracy(y_true, y_pred) == pytest.approx(skm.accuracy_score(y_true, y_pred))
    np.testing.assert_array_equal(
        metrics.confusion_matrix(y_true, y_pred), skm.confusion_matrix(y_true, y_pred)
    )
    averages = ["macro"]
    if len(np.union1d(y_true, y_pred)) <= 2:
        averages.append("binary")
    for avg in averages:
        kw = dict(average=avg, zero_division=0)
        assert metrics.precision(y_true, y_pred, avg) == pytest.approx(skm.precision_score(y_true, y_pred, **kw))
        assert metrics.recall(y_true, y_pred, avg) == pytest.approx(skm.recall_score(y_true, y_pred, **kw))
        assert metrics.f1(y_true, y_pred, avg) == pytest.approx(skm.f1_score(y_true, y_pred, **kw))


@pytest.mark.parametrize("seed", range(5))
def test_roc_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 40)
    y[:2] = [0, 1]
    # Rounded scores make ties, which must collapse to one threshold.
    score = np.round(rng.random(40) + 0.3 * y, 1)
    fpr, tpr, thr = metrics.roc_curve(y, score)
    sfpr, stpr, sthr = skm.roc_curve(y, score, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sfpr)
    np.testing.assert_allclose(tpr, stpr)
    np.testing.assert_allclose(thr[1:], sthr[1:])
    assert metrics.roc_auc(y, score) == pytest.approx(skm.roc_auc_score(y, score))
    assert metrics.auc(fpr, tpr) == pytest.approx(skm.auc(sfpr, stpr))


def test_tumour_example():
    # TP 1, FP 1, FN 8, TN 90: accurate-looking but misses most tumours.
    y_true = np.array([1] * 1 + [0] * 1 + [1] * 8 + [0] * 90)
    y_pred = np.array([1] * 1 + [1] * 1 + [0] * 8 + [0] * 90)
    assert round(metrics.accuracy(y_true, y_pred), 2) == 0.91
    assert round(metrics.precision(y_true, y_pred), 2) == 0.5
    assert round(metrics.recall(y_true, y_pred), 2) == 0.11
    np.testing.assert_array_equal(metrics.confusion_matrix(y_true, y_pred), [[90, 1], [8, 1]])


def test_classification_report_binary_and_multiclass():
    y_true = np.array([0, 1, 1, 0, 1, 0])
    y_pred = np.array([0, 1, 0, 0, 1, 1])
    score = np.array([0.1, 0.9, 0.4, 0.2, 0.8, 0.6])
    r = metrics.classification_report(y_true, y_pred, score)
    assert r["accuracy"] == pytest.approx(4 / 6)
    assert r["precision"] == pytest.approx(skm.precision_score(y_true, y_pred))
    assert r["f1_macro"] == pytest.approx(skm.f1_score(y_true, y_pred, average="macro"))
    assert r["auc"] == pytest.approx(skm.roc_auc_score(y_true, score))
    # A (n, 2) score array uses the column of class 1.
    r2 = metrics.classification_report(y_true, y_pred, np.c_[1 - score, score])
    assert r2["auc"] == pytest.approx(r["auc"])

    r3 = metrics.classification_report([0, 1, 2, 2], [0, 2, 2, 1])
    assert "precision" not in r3 and "auc" not in r3
    assert r3["recall_macro"] == pytest.approx(skm.recall_score([0, 1, 2, 2], [0, 2, 2, 1], average="macro"))


def test_errors_are_data_errors():
    with pytest.raises(DataError, match="y_pred"):
        metrics.accuracy([0, 1], [0, 1, 1])
    with pytest.raises(DataError, match="average"):
        metrics.precision([0, 1], [0, 1], average="micro")
    with pytest.raises(DataError, match="macro"):
        metrics.f1([0, 1, 2], [0, 1, 2], average="binary")
    with pytest.raises(DataError, match="positive and negative"):
        metrics.roc_curve([1, 1], [0.2, 0.3])
