"""Classification metrics in plain numpy.

They agree with scikit-learn's functions of the same names, including its
``zero_division=0`` convention: a precision or recall whose denominator is zero
counts as 0 (for example a class that is never predicted).
"""

from __future__ import annotations

import numpy as np

from .errors import DataError

_AVERAGES = ("binary", "macro")


def _labels(y_true, y_pred):
    """Both arrays as 1-D ints of equal length, plus the sorted union of labels."""
    y_true = np.asarray(y_true).ravel()
    y_pred = np.asarray(y_pred).ravel()
    if y_true.shape != y_pred.shape:
        raise DataError(
            f"metrics: y_true has {y_true.size} labels but y_pred has {y_pred.size}"
        )
    if y_true.size == 0:
        raise DataError("metrics: y_true is empty")
    return y_true, y_pred, np.union1d(y_true, y_pred)


def _check_average(average: str) -> None:
    if average not in _AVERAGES:
        raise DataError(
            f"metrics: unknown average={average!r}; valid: {', '.join(_AVERAGES)}"
        )


def _safe_div(num, den):
    """num / den element-wise, 0 where den is 0 (sklearn's zero_division=0)."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    out = np.zeros_like(num)
    np.divide(num, den, out=out, where=den != 0)
    return out


def confusion_matrix(y_true, y_pred, labels=None) -> np.ndarray:
    """Counts C[i, j] of samples with true label i predicted as j.

    Rows and columns follow ``labels`` (default: sorted union of both arrays).
    """
    y_true, y_pred, found = _labels(y_true, y_pred)
    labels = found if labels is None else np.asarray(labels)
    n = len(labels)
    t = (y_true[:, None] == labels[None, :]).argmax(axis=1)
    p = (y_pred[:, None] == labels[None, :]).argmax(axis=1)
    # Samples whose labels are not listed are left out, as in sklearn.
    keep = np.isin(y_true, labels) & np.isin(y_pred, labels)
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (t[keep], p[keep]), 1)
    return cm


def accuracy(y_true, y_pred) -> float:
    """Fraction of samples whose predicted label equals the true one."""
    y_true, y_pred, _ = _labels(y_true, y_pred)
    return float(np.mean(y_true == y_pred))


def _per_class(y_true, y_pred, average: str, pos_label=1):
    """(tp, fp, fn) per class: one entry for 'binary', one per label for 'macro'."""
    _check_average(average)
    y_true, y_pred, labels = _labels(y_true, y_pred)
    if average == "binary":
        if len(labels) > 2:
            raise DataError(
                f"metrics: average='binary' needs at most 2 classes, got {len(labels)}; "
                "use average='macro'"
            )
        labels = np.array([pos_label])
    t = y_true[:, None] == labels[None, :]
    p = y_pred[:, None] == labels[None, :]
    tp = np.sum(t & p, axis=0)
    fp = np.sum(~t & p, axis=0)
    fn = np.sum(t & ~p, axis=0)
    return tp, fp, fn


def precision(y_true, y_pred, average: str = "binary", pos_label=1) -> float:
    """TP / (TP + FP), per class then averaged ('macro') or of pos_label ('binary')."""
    tp, fp, _ = _per_class(y_true, y_pred, average, pos_label)
    return float(np.mean(_safe_div(tp, tp + fp)))


def recall(y_true, y_pred, average: str = "binary", pos_label=1) -> float:
    """TP / (TP + FN), per class then averaged ('macro') or of pos_label ('binary')."""
    tp, _, fn = _per_class(y_true, y_pred, average, pos_label)
    return float(np.mean(_safe_div(tp, tp + fn)))


def f1(y_true, y_pred, average: str = "binary", pos_label=1) -> float:
    """Harmonic mean of precision and recall: 2 TP / (2 TP + FP + FN) per class."""
    tp, fp, fn = _per_class(y_true, y_pred, average, pos_label)
    return float(np.mean(_safe_div(2 * tp, 2 * tp + fp + fn)))


def roc_curve(y_true, y_score, pos_label=1):
    """False and true positive rates at each distinct score threshold.

    Returns ``(fpr, tpr, thresholds)`` like ``sklearn.metrics.roc_curve`` with
    ``drop_intermediate=False``: thresholds decrease and start with +inf, so
    the curve starts at (0, 0).
    """
    y_true = np.asarray(y_true).ravel()
    y_score = np.asarray(y_score, dtype=float).ravel()
    if y_true.shape != y_score.shape:
        raise DataError(
            f"metrics: y_true has {y_true.size} labels but y_score has {y_score.size}"
        )
    positive = y_true == pos_label
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise DataError("metrics: roc_curve needs both positive and negative samples in y_true")
    order = np.argsort(-y_score, kind="mergesort")
    score = y_score[order]
    pos = positive[order]
    # Tied scores form one threshold: keep only the last index of each run.
    last = np.r_[np.nonzero(np.diff(score))[0], score.size - 1]
    tps = np.cumsum(pos)[last]
    fps = (last + 1) - tps
    tpr = np.r_[0.0, tps / n_pos]
    fpr = np.r_[0.0, fps / n_neg]
    thresholds = np.r_[np.inf, score[last]]
    return fpr, tpr, thresholds


def auc(x, y) -> float:
    """Area under the curve through points (x, y), by the trapezoidal rule."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    return float(abs(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0)))


def roc_auc(y_true, y_score, pos_label=1) -> float:
    """Area under the ROC curve (sklearn's roc_auc_score for binary labels)."""
    fpr, tpr, _ = roc_curve(y_true, y_score, pos_label)
    return auc(fpr, tpr)


def _positive_score(y_score) -> np.ndarray:
    """Score of label 1 from a (n,), (n, 1) or (n, 2) array of scores."""
    y_score = np.asarray(y_score, dtype=float)
    if y_score.ndim == 2 and y_score.shape[1] == 2:
        return y_score[:, 1]
    return y_score.ravel()


def classification_report(y_true, y_pred, y_score=None) -> dict:
    """All metrics in one dict.

    Keys: accuracy, precision_macro, recall_macro, f1_macro, confusion_matrix;
    for two-class problems also precision, recall, f1 (of label 1) and, when
    ``y_score`` (score of label 1, or an (n, 2) array of class scores) is given and both classes occur, auc.
    """
    y_true, y_pred, labels = _labels(y_true, y_pred)
    report = {
        "accuracy": accuracy(y_true, y_pred),
        "precision_macro": precision(y_true, y_pred, "macro"),
        "recall_macro": recall(y_true, y_pred, "macro"),
        "f1_macro": f1(y_true, y_pred, "macro"),
        "confusion_matrix": confusion_matrix(y_true, y_pred),
    }
    binary = len(labels) <= 2 and set(labels.tolist()) <= {0, 1}
    if binary:
        report["precision"] = precision(y_true, y_pred, "binary")
        report["recall"] = recall(y_true, y_pred, "binary")
        report["f1"] = f1(y_true, y_pred, "binary")
        if y_score is not None and len(np.unique(y_true)) == 2:
            report["auc"] = roc_auc(y_true, _positive_score(y_score))
    return report
