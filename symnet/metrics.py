"""Classification metrics: thin, checked wrappers around scikit-learn.

scikit-learn computes every metric it has (accuracy, confusion matrix,
precision/recall/F1 with ``zero_division=0``, ROC, AUC, likelihood ratios);
this module checks the inputs (one-line :class:`DataError` messages) and adds
the lecture's whole binary confusion-matrix table (:func:`binary_table`), whose
remaining entries are complements or ratios of those.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from sklearn import metrics as skm

from .errors import DataError

_AVERAGES = ("binary", "macro")

# The lecture's table, in its order: key -> (abbreviation, name).
BINARY_TABLE = {
    "prevalence": ("prevalence", "(TP + FN) / total"),
    "accuracy": ("ACC", "accuracy"),
    "ppv": ("PPV", "precision, positive predictive value"),
    "fdr": ("FDR", "false discovery rate"),
    "for": ("FOR", "false omission rate"),
    "npv": ("NPV", "negative predictive value"),
    "tpr": ("TPR", "recall, sensitivity"),
    "fpr": ("FPR", "false positive rate, fall-out"),
    "fnr": ("FNR", "false negative rate, miss rate"),
    "tnr": ("TNR", "specificity"),
    "lr_plus": ("LR+", "positive likelihood ratio TPR / FPR"),
    "lr_minus": ("LR-", "negative likelihood ratio FNR / TNR"),
    "dor": ("DOR", "diagnostic odds ratio LR+ / LR-"),
    "f1": ("F1", "harmonic mean of PPV and TPR"),
}


def _labels(y_true, y_pred):
    """Both arrays as 1-D of equal length, plus the sorted union of labels."""
    y_true = np.asarray(y_true).ravel()
    y_pred = np.asarray(y_pred).ravel()
    if y_true.shape != y_pred.shape:
        raise DataError(
            f"metrics: y_true has {y_true.size} labels but y_pred has {y_pred.size}"
        )
    if y_true.size == 0:
        raise DataError("metrics: y_true is empty")
    return y_true, y_pred, np.union1d(y_true, y_pred)


def _check_average(average: str, labels) -> None:
    if average not in _AVERAGES:
        raise DataError(
            f"metrics: unknown average={average!r}; valid: {', '.join(_AVERAGES)}"
        )
    if average == "binary" and len(labels) > 2:
        raise DataError(
            f"metrics: average='binary' needs at most 2 classes, got {len(labels)}; "
            "use average='macro'"
        )


def confusion_matrix(y_true, y_pred, labels=None) -> np.ndarray:
    """Counts C[i, j] of samples with true label i predicted as j."""
    y_true, y_pred, _ = _labels(y_true, y_pred)
    return skm.confusion_matrix(y_true, y_pred, labels=labels).astype(np.int64)


def accuracy(y_true, y_pred) -> float:
    """Fraction of samples whose predicted label equals the true one."""
    y_true, y_pred, _ = _labels(y_true, y_pred)
    return float(skm.accuracy_score(y_true, y_pred))


def _score(fn, y_true, y_pred, average, pos_label):
    y_true, y_pred, labels = _labels(y_true, y_pred)
    _check_average(average, labels)
    if average == "binary" and pos_label not in labels:
        # sklearn refuses a pos_label absent from both arrays; its zero_division=0 answer is 0.
        return 0.0
    kw = {"pos_label": pos_label} if average == "binary" else {}
    return float(fn(y_true, y_pred, average=average, zero_division=0, **kw))


def precision(y_true, y_pred, average: str = "binary", pos_label=1) -> float:
    """TP / (TP + FP), per class then averaged ('macro') or of pos_label ('binary')."""
    return _score(skm.precision_score, y_true, y_pred, average, pos_label)


def recall(y_true, y_pred, average: str = "binary", pos_label=1) -> float:
    """TP / (TP + FN), per class then averaged ('macro') or of pos_label ('binary')."""
    return _score(skm.recall_score, y_true, y_pred, average, pos_label)


def f1(y_true, y_pred, average: str = "binary", pos_label=1) -> float:
    """Harmonic mean of precision and recall: 2 TP / (2 TP + FP + FN) per class."""
    return _score(skm.f1_score, y_true, y_pred, average, pos_label)


def roc_curve(y_true, y_score, pos_label=1):
    """``(fpr, tpr, thresholds)`` of sklearn's roc_curve with every threshold kept."""
    y_true = np.asarray(y_true).ravel()
    y_score = np.asarray(y_score, dtype=float).ravel()
    if y_true.shape != y_score.shape:
        raise DataError(
            f"metrics: y_true has {y_true.size} labels but y_score has {y_score.size}"
        )
    positive = y_true == pos_label
    if positive.all() or not positive.any():
        raise DataError("metrics: roc_curve needs both positive and negative samples in y_true")
    return skm.roc_curve(positive.astype(int), y_score, pos_label=1, drop_intermediate=False)


def auc(x, y) -> float:
    """Area under the curve through points (x, y), by the trapezoidal rule."""
    return float(skm.auc(np.asarray(x, dtype=float), np.asarray(y, dtype=float)))


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


def _ratio(num, den):
    """num / den, or None when it is undefined (0/0) or infinite."""
    if den == 0:
        return None
    return float(num / den)


def binary_table(y_true, y_pred, pos_label=1) -> dict:
    """The lecture's confusion-matrix table of a two-class task.

    Keys: tp, fp, fn, tn and those of :data:`BINARY_TABLE`. Accuracy, PPV, NPV
    (precision of the negative class), TPR, TNR (recall of the negative class),
    F1 and the likelihood ratios come from scikit-learn; FDR, FOR, FPR and FNR
    are their complements; DOR = LR+ / LR-. A ratio with a zero denominator is
    None (JSON null).
    """
    y_true, y_pred, labels = _labels(y_true, y_pred)
    _check_average("binary", labels)
    t, p = (y_true == pos_label).astype(int), (y_pred == pos_label).astype(int)
    tn, fp, fn, tp = (int(v) for v in skm.confusion_matrix(t, p, labels=[0, 1]).ravel())
    both = {"zero_division": np.nan}

    def rate(fn_, label, den):   # sklearn's value, None where its denominator is 0
        return float(fn_(t, p, pos_label=label, **both)) if den else None

    ppv, npv = rate(skm.precision_score, 1, tp + fp), rate(skm.precision_score, 0, tn + fn)
    tpr, tnr = rate(skm.recall_score, 1, tp + fn), rate(skm.recall_score, 0, tn + fp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # undefined ratios come back as nan: we report None
        lr_plus, lr_minus = (float(v) for v in skm.class_likelihood_ratios(t, p, labels=[0, 1]))
    lr_plus = lr_plus if math.isfinite(lr_plus) else None
    lr_minus = lr_minus if math.isfinite(lr_minus) else None

    def comp(v):
        return None if v is None else 1.0 - v

    table = {
        "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        "prevalence": (tp + fn) / t.size,
        "accuracy": float(skm.accuracy_score(t, p)),
        "ppv": ppv, "fdr": comp(ppv), "for": comp(npv), "npv": npv,
        "tpr": tpr, "fpr": comp(tnr), "fnr": comp(tpr), "tnr": tnr,
        "lr_plus": lr_plus, "lr_minus": lr_minus,
        "dor": None if lr_plus is None or not lr_minus else lr_plus / lr_minus,
        "f1": float(skm.f1_score(t, p, zero_division=0)),
    }
    return table


def format_binary_table(table: dict) -> str:
    """The table as aligned text lines, one metric a line."""
    lines = [f"TP {table['tp']}, FP {table['fp']}, FN {table['fn']}, TN {table['tn']}"]
    for key, (abbr, name) in BINARY_TABLE.items():
        v = table.get(key)
        lines.append(f"{abbr:>10}  {'undefined' if v is None else format(v, '.4g'):>9}  {name}")
    return "\n".join(lines)


def classification_report(y_true, y_pred, y_score=None) -> dict:
    """All metrics in one dict.

    Keys: accuracy, precision_macro, recall_macro, f1_macro, confusion_matrix;
    for two-class problems also precision, recall, f1 (of label 1), the
    lecture's table under "binary_table" and, when ``y_score`` (score of label
    1, or an (n, 2) array of class scores) is given and both classes occur, auc.
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
        report["binary_table"] = binary_table(y_true, y_pred)
        if y_score is not None and len(np.unique(y_true)) == 2:
            report["auc"] = roc_auc(y_true, _positive_score(y_score))
    return report
