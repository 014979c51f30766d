"""The lecture's binary confusion-matrix table (metrics.binary_table)."""
import numpy as np
import pytest

from symnet import metrics
from symnet.errors import DataError


def _labels(tp, fp, fn, tn):
    y_true = np.array([1] * tp + [0] * fp + [1] * fn + [0] * tn)
    y_pred = np.array([1] * tp + [1] * fp + [0] * fn + [0] * tn)
    return y_true, y_pred


def _by_hand(tp, fp, fn, tn):
    """The table's definitions from the four counts."""
    tpr, tnr = tp / (tp + fn), tn / (tn + fp)
    fpr, fnr = fp / (fp + tn), fn / (fn + tp)
    return {"prevalence": (tp + fn) / (tp + fp + fn + tn), "accuracy": (tp + tn) / (tp + fp + fn + tn),
            "ppv": tp / (tp + fp), "fdr": fp / (tp + fp), "for": fn / (fn + tn), "npv": tn / (fn + tn),
            "tpr": tpr, "fpr": fpr, "fnr": fnr, "tnr": tnr, "lr_plus": tpr / fpr, "lr_minus": fnr / tnr,
            "dor": (tp * tn) / (fp * fn), "f1": 2 * tp / (2 * tp + fp + fn)}


def test_tumour_example_whole_table():
    table = metrics.binary_table(*_labels(1, 1, 8, 90))
    assert (table["tp"], table["fp"], table["fn"], table["tn"]) == (1, 1, 8, 90)
    # The lecture's rounded figures.
    assert round(table["accuracy"], 2) == 0.91 and table["prevalence"] == pytest.approx(0.09)
    assert table["ppv"] == pytest.approx(0.5) and round(table["tpr"], 2) == 0.11
    assert round(table["npv"], 3) == 0.918 and round(table["tnr"], 3) == 0.989
    assert table["dor"] == pytest.approx(11.25)
    for key, value in _by_hand(1, 1, 8, 90).items():
        assert table[key] == pytest.approx(value), key
    assert set(metrics.BINARY_TABLE) <= set(table)


@pytest.mark.parametrize("counts", [(5, 3, 2, 10), (40, 7, 9, 44), (1, 9, 3, 2)])
def test_table_matches_definitions(counts):
    table = metrics.binary_table(*_labels(*counts))
    for key, value in _by_hand(*counts).items():
        assert table[key] == pytest.approx(value), key


def test_undefined_ratios_are_none():
    table = metrics.binary_table(*_labels(3, 0, 0, 5))      # perfect: FPR = FNR = 0
    assert table["fpr"] == 0.0 and table["fnr"] == 0.0
    assert table["lr_plus"] is None and table["dor"] is None
    table = metrics.binary_table(*_labels(0, 0, 4, 6))      # nothing predicted positive
    assert table["ppv"] is None and table["fdr"] is None and table["f1"] == 0.0
    with pytest.raises(DataError, match="binary"):
        metrics.binary_table([0, 1, 2], [0, 1, 2])


def test_report_and_text_carry_the_table():
    y_true, y_pred = _labels(1, 1, 8, 90)
    report = metrics.classification_report(y_true, y_pred)
    assert report["binary_table"]["dor"] == pytest.approx(11.25)
    text = metrics.format_binary_table(report["binary_table"])
    assert "TP 1, FP 1, FN 8, TN 90" in text
    for abbr, _ in metrics.BINARY_TABLE.values():
        assert abbr in text
    assert "binary_table" not in metrics.classification_report([0, 1, 2], [0, 2, 1])


def test_confusion_plot_has_the_table_panel(tmp_path, monkeypatch):
    from symnet import runs

    figures = []
    monkeypatch.setattr(runs, "_save_figure", lambda fig, path: figures.append(fig) or path)
    y_true, y_pred = _labels(1, 1, 8, 90)
    table = metrics.binary_table(y_true, y_pred)
    runs.plot_confusion_matrix(tmp_path, metrics.confusion_matrix(y_true, y_pred), ["benign", "tumour"],
                               table=table)
    (fig,) = figures
    panel = [t for ax in fig.axes for t in ax.tables]
    assert len(panel) == 1
    cells = {c.get_text().get_text() for c in panel[0].get_celld().values()}
    assert {"DOR", "11.2", "LR+", "10.1", "1 / 1", "8 / 90", "F1", "0.182"} <= cells


def test_training_run_reports_the_table(tmp_path):
    import json

    from symnet import Dense, Network
    from symnet.data import load_dataset
    from symnet.train import train

    class Logistic:   # TEST STAND-IN: sigmoid(w x + b) with binary cross entropy
        def forward(self, params, X):
            return 1 / (1 + np.exp(-(X @ params["W1"].T + params["b1"])))

        def loss_and_grads(self, params, X, Y):
            p = self.forward(params, X)
            d = (p - Y) / len(X)
            return float(-np.mean(Y * np.log(p) + (1 - Y) * np.log(1 - p))), {"W1": d.T @ X, "b1": d.sum(0)}

    net = Network(input=[30], layers=[Dense(1, "sigmoid")], loss="bce", name="bc")
    data = load_dataset("breast_cancer", seed=0, binary_single_output=True)
    res = train(net, data, kernel=Logistic(), lr=0.05, epochs=3, out=tmp_path, progress=False)
    saved = json.loads((tmp_path / "metrics.json").read_text())["test"]["binary_table"]
    pred = (res.params["W1"] @ data.X_test.T + res.params["b1"][:, None] > 0).astype(int).ravel()
    want = metrics.binary_table(data.y_test, pred)
    assert saved == pytest.approx(want)
    assert "DOR" in res.summary() and f"TP {want['tp']}, FP {want['fp']}" in res.summary()
