"""symnet.train and symnet.runs: the loop, regularisation, early stopping,
NaN detection, checkpoints and resume, metrics.json and plots.

Most tests use FakeKernel, a pure-numpy one-hidden-layer network with
hand-written backprop. It lives in this file only, as a stand-in for the
generated kernels; the last test trains with symnet.codegen.generate itself.
"""

import argparse
import json

import numpy as np
import pytest

from symnet import Dense, Network
from symnet.data import load_dataset
from symnet.errors import DataError, SymnetError, TrainingError
from symnet.runs import load_checkpoint
from symnet.train import (with_dropout, BIAS_THRESHOLD, VARIANCE_GAP, Regularizer, _penalty_functions,
                          add_train_arguments, apply_max_norm, bias_variance,
                          predict_labels, train)

pytest.importorskip("sklearn", reason="bundled data sets come from scikit-learn")


class FakeKernel:
    """TEST STAND-IN: tanh hidden layer, then softmax / sigmoid / identity output."""

    def __init__(self, net):
        self.loss_name = net.loss.name

    def _forward(self, params, X):
        a1 = np.tanh(X @ params["W1"].T + params["b1"])
        z2 = a1 @ params["W2"].T + params["b2"]
        if self.loss_name == "softmax_cross_entropy":
            e = np.exp(z2 - z2.max(axis=1, keepdims=True))
            out = e / e.sum(axis=1, keepdims=True)
        elif self.loss_name == "bce":
            out = 1.0 / (1.0 + np.exp(-z2))
        else:
            out = z2
        return a1, out

    def forward(self, params, X):
        return self._forward(params, X)[1]

    def loss_and_grads(self, params, X, Y):
        a1, p = self._forward(params, X)
        B = len(X)
        eps = 1e-300
        if self.loss_name == "softmax_cross_entropy":
            loss = -np.sum(Y * np.log(p + eps)) / B
            dz2 = (p - Y) / B
        elif self.loss_name == "bce":
            loss = -np.mean(Y * np.log(p + eps) + (1 - Y) * np.log(1 - p + eps))
            dz2 = (p - Y) / Y.size
        else:
            loss = np.mean((p - Y) ** 2)
            dz2 = 2 * (p - Y) / Y.size
        da1 = dz2 @ params["W2"]
        dz1 = da1 * (1 - a1**2)
        grads = {"W2": dz2.T @ a1, "b2": dz2.sum(0), "W1": dz1.T @ X, "b1": dz1.sum(0)}
        return float(loss), grads


class NaNAfter(FakeKernel):
    """Returns a NaN loss from training step ``k`` on."""

    def __init__(self, net, k):
        super().__init__(net)
        self.k, self.calls = k, 0

    def loss_and_grads(self, params, X, Y):
        self.calls += 1
        loss, grads = super().loss_and_grads(params, X, Y)
        return (float("nan") if self.calls >= self.k else loss), grads


def iris_net():
    return Network(input=[4], layers=[Dense(8, "tanh"), Dense(3)], loss="softmax_cross_entropy", name="iris_mlp")


@pytest.fixture(scope="module")
def iris():
    return load_dataset("iris", seed=0)


def run(net, data, **kw):
    kw.setdefault("kernel", FakeKernel(net))
    kw.setdefault("progress", False)
    return train(net, data, **kw)


# --------------------------------------------------------------------------


def test_loss_decreases_on_iris(iris):
    net = iris_net()
    res = run(net, iris, lr=0.05, batch_size=16, epochs=15)
    h = res.history
    assert len(h["train_loss"]) == 15 and h["epoch"] == list(range(1, 16))
    assert h["train_loss"][-1] < 0.5 * h["train_loss"][0]
    assert h["val_loss"][-1] < h["val_loss"][0]
    assert h["train_acc"][-1] > 0.85 and h["val_acc"][-1] > 0.8
    assert h["lr"] == [0.05] * 15
    assert res.test["accuracy"] > 0.8 and res.test["confusion_matrix"].shape == (3, 3)
    assert "bias/variance" in res.diagnosis["line"]
    assert set(res.params) == {"W1", "b1", "W2", "b2"}


def test_batch_sizes_full_and_stochastic(iris):
    net = iris_net()
    full = run(net, iris, optimizer="sgd", lr=0.1, batch_size=10_000, epochs=2)
    sgd1 = run(net, iris, optimizer="sgd", lr=0.01, batch_size=1, epochs=1)
    assert all(np.isfinite(full.history["train_loss"]))
    assert np.isfinite(sgd1.history["train_loss"][0])
    with pytest.raises(TrainingError):
        run(net, iris, batch_size=0, epochs=1)


def test_l2_gradient_is_two_lambda_w(iris):
    # Derived by SymPy, not typed: d/dw (lambda w^2) = 2 lambda w, d/dw lambda|w| = lambda sign(w).
    import sympy as sp

    w, lam = sp.Symbol("w", real=True), sp.Symbol("lambda", nonnegative=True)
    assert sp.simplify(_penalty_functions("l2")[3] - 2 * lam * w) == 0
    assert sp.simplify(_penalty_functions("l1")[3] - lam * sp.sign(w)) == 0

    net = iris_net()
    params = net.init_params(seed=3)
    zeros = {k: np.zeros_like(v) for k, v in params.items()}
    lam = 0.1
    g = Regularizer(l2=lam).add_grads(params, zeros)
    for k in ("W1", "W2"):
        np.testing.assert_allclose(g[k], lam * 2 * params[k], rtol=1e-14)
    for k in ("b1", "b2"):  # biases are not penalised
        assert np.all(g[k] == 0)
    pen = Regularizer(l2=lam).penalty(params)
    assert pen == pytest.approx(lam * (np.sum(params["W1"] ** 2) + np.sum(params["W2"] ** 2)))

    g1 = Regularizer(l1=0.5).add_grads({"W1": np.array([[-2.0, 0.0, 3.0]])}, {"W1": np.zeros((1, 3))})
    assert g1["W1"].tolist() == [[-0.5, 0.0, 0.5]]  # subgradient 0 at 0

    # Through train(): one full-batch SGD step with and without l2.
    lr = 0.1
    kw = dict(optimizer="sgd", lr=lr, batch_size=10_000, epochs=1, seed=3)
    plain = run(net, iris, **kw)
    reg = run(net, iris, l2=lam, **kw)
    for k in ("W1", "W2"):
        np.testing.assert_allclose(reg.params[k] - plain.params[k], -lr * lam * 2 * params[k], atol=1e-12)
    for k in ("b1", "b2"):
        np.testing.assert_array_equal(reg.params[k], plain.params[k])
    assert reg.history["penalty"][0] == pytest.approx(pen)


def test_float32_network_keeps_float32(iris):
    net = Network(input=[4], layers=[Dense(8, "tanh"), Dense(3)], loss="softmax_cross_entropy",
                  name="f32", dtype="float32")
    res = run(net, iris, lr=0.05, epochs=2, l2=1e-3, max_norm=3.0)
    assert all(v.dtype == np.float32 for v in res.params.values())
    assert res.history["train_loss"][1] < res.history["train_loss"][0]


def test_max_norm_rescales_rows():
    W = np.array([[3.0, 4.0], [0.3, 0.4]])
    p = {"W1": W.copy(), "b1": np.array([10.0, 10.0])}
    apply_max_norm(p, 1.0)
    np.testing.assert_allclose(np.linalg.norm(p["W1"], axis=1), [1.0, 0.5])
    assert p["b1"].tolist() == [10.0, 10.0]


def test_max_norm_in_training(iris):
    net = iris_net()
    res = run(net, iris, lr=0.1, epochs=3, max_norm=0.5)
    for k in ("W1", "W2"):
        assert np.all(np.linalg.norm(res.params[k], axis=1) <= 0.5 + 1e-12)


def test_nan_loss_message(iris):
    net = iris_net()
    with pytest.raises(TrainingError) as e:
        run(net, iris, kernel=NaNAfter(net, 3), lr=1e-3, batch_size=16, epochs=2)
    assert str(e.value) == ("epoch 1, step 3: training diverged, the loss became nan; "
                            "try a lower learning rate, e.g. --lr 0.0001")
    assert isinstance(e.value, SymnetError)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_from_divergence(iris):
    net = Network(input=[4], layers=[Dense(8, "tanh"), Dense(3)], loss="mse", name="diverge")
    with pytest.raises(TrainingError, match=r"^epoch \d+, step \d+: training diverged, the loss became .*; .*--lr 10$"):
        run(net, iris, optimizer="sgd", lr=100.0, batch_size=8, epochs=50)


def test_resume_equals_uninterrupted(iris, tmp_path):
    net = iris_net()
    kw = dict(lr=0.02, batch_size=16, seed=7, l2=1e-3)
    full = run(net, iris, epochs=4, out=tmp_path / "full", **kw)
    run(net, iris, epochs=2, out=tmp_path / "part", **kw)
    assert load_checkpoint(tmp_path / "part").epoch == 2
    resumed = run(net, iris, epochs=4, out=tmp_path / "part", resume=True, **kw)
    for k in full.params:
        assert np.array_equal(full.params[k], resumed.params[k]), k
    assert full.history["train_loss"] == resumed.history["train_loss"]
    assert resumed.history["epoch"] == [1, 2, 3, 4]
    a, b = load_checkpoint(tmp_path / "full"), load_checkpoint(tmp_path / "part")
    assert a.epoch == b.epoch == 4 and a.rng_state == b.rng_state
    for k in a.optimizer:
        assert np.array_equal(a.optimizer[k], b.optimizer[k]), k


def test_resume_errors(iris, tmp_path):
    net = iris_net()
    with pytest.raises(TrainingError, match="run directory"):
        run(net, iris, resume=True)
    with pytest.raises(TrainingError, match="no checkpoint"):
        run(net, iris, out=tmp_path / "empty", resume=True)
    run(net, iris, epochs=1, out=tmp_path / "r")
    other = Network(input=[4], layers=[Dense(5, "tanh"), Dense(3)], loss="softmax_cross_entropy", name="iris_mlp")
    with pytest.raises(TrainingError, match="parameters"):
        run(other, iris, epochs=2, out=tmp_path / "r", resume=True)
    with pytest.raises(TrainingError, match="optimizer"):
        run(net, iris, optimizer="sgd", epochs=2, out=tmp_path / "r", resume=True)


def test_checkpoint_names_and_shapes(iris, tmp_path):
    net = iris_net()
    run(net, iris, epochs=2, out=tmp_path)
    with np.load(tmp_path / "checkpoint.npz", allow_pickle=False) as f:
        files = set(f.files)
        shapes = {k: f[k].shape for k in ("W1", "b1", "W2", "b2")}
        assert shapes == {"W1": (8, 4), "b1": (8,), "W2": (3, 8), "b2": (3,)}
        assert {"opt.optimizer", "opt.t", "opt.lr", "opt.m.W1", "opt.v.b2", "epoch", "rng",
                "norm.mean", "norm.std"} <= files
        assert int(f["epoch"]) == 2 and str(f["opt.optimizer"]) == "adam"
        np.testing.assert_array_equal(f["norm.mean"], iris.normalizer.mean)
        np.testing.assert_array_equal(f["norm.std"], iris.normalizer.std)
        W1, b1 = f["W1"], f["b1"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # atomic writes leave no temp
    torch = pytest.importorskip("torch")
    layer = torch.nn.Linear(4, 8, dtype=torch.float64)
    layer.load_state_dict({"weight": torch.from_numpy(W1), "bias": torch.from_numpy(b1)})
    x = iris.X_test[:5]
    np.testing.assert_allclose(layer(torch.from_numpy(x)).detach().numpy(), x @ W1.T + b1)


def test_metrics_json_and_plots_binary(tmp_path):
    data = load_dataset("breast_cancer", seed=0, binary_single_output=True)
    net = Network(input=[30], layers=[Dense(6, "tanh"), Dense(1, "sigmoid")], loss="bce", name="bc")
    res = run(net, data, lr=0.01, batch_size=64, epochs=3, out=tmp_path)
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["test_accuracy"] == pytest.approx(res.test["accuracy"]) and m["test_accuracy"] > 0.8
    assert m["test_loss"] == pytest.approx(res.test["loss"])
    assert 0.5 < m["test"]["auc"] <= 1.0
    assert np.array(m["test"]["confusion_matrix"]).shape == (2, 2)
    assert len(m["history"]["train_loss"]) == 3 and len(m["history"]["val_acc"]) == 3
    assert m["config"]["optimizer"] == "adam" and "line" in m["bias_variance"]
    for name in ("loss.png", "accuracy.png", "confusion_matrix.png", "roc.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_multiclass_run_has_no_roc(iris, tmp_path):
    run(iris_net(), iris, epochs=1, out=tmp_path)
    assert (tmp_path / "confusion_matrix.png").exists() and not (tmp_path / "roc.png").exists()


def test_early_stopping_stops_and_keeps_best(iris, tmp_path):
    # Validation targets shifted to a wrong class: the better the fit on the
    # training data, the worse the validation loss, so training must stop.
    bad = load_dataset("iris", seed=0)
    bad.Y_val = np.roll(bad.Y_val, 1, axis=1)
    bad.y_val = (bad.y_val + 1) % 3
    net = iris_net()
    res = run(net, bad, lr=0.05, batch_size=16, epochs=30, early_stopping=2, out=tmp_path)
    h = res.history
    assert res.stopped_early and res.epochs_run < 30
    assert res.epochs_run == res.best_epoch + 2
    assert res.best_epoch == int(np.argmin(h["val_loss"])) + 1
    # The returned (and checkpointed) parameters are the best epoch's.
    kern = FakeKernel(net)
    val = kern.loss_and_grads(res.params, bad.X_val, bad.Y_val)[0]
    assert val == pytest.approx(min(h["val_loss"]))
    ck = load_checkpoint(tmp_path)
    for k in res.params:
        assert np.array_equal(ck.params[k], res.params[k])
    with pytest.raises(TrainingError):
        run(net, bad, early_stopping=0)


def test_data_shape_mismatch(iris):
    net = Network(input=[4], layers=[Dense(4, "tanh"), Dense(1, "sigmoid")], loss="bce", name="b")
    with pytest.raises(DataError, match="output"):
        run(net, iris)
    wide = Network(input=[5], layers=[Dense(3)], loss="softmax_cross_entropy", name="w")
    with pytest.raises(DataError, match="expects input"):
        run(wide, iris)


def test_bias_variance_diagnosis():
    assert bias_variance(0.99, 0.98)["line"].endswith("the fit looks good")
    hb = bias_variance(1 - BIAS_THRESHOLD - 0.05, 1 - BIAS_THRESHOLD - 0.06)
    assert hb["high_bias"] and not hb["high_variance"] and "bigger network" in hb["line"]
    hv = bias_variance(1.0, 1.0 - VARIANCE_GAP - 0.01)
    assert hv["high_variance"] and not hv["high_bias"] and "regularisation" in hv["line"]


def test_predict_labels():
    assert predict_labels(np.array([[0.2], [0.7]])).tolist() == [0, 1]
    assert predict_labels(np.array([[-0.2], [0.3]]), "hinge").tolist() == [0, 1]
    assert predict_labels(np.array([[0.1, 0.7, 0.2]])).tolist() == [1]


def test_cli_arguments_and_dropout(tmp_path):
    parser = add_train_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["net.toml", "--data", "iris", "--batch-size", "8", "--dropout", "0.5",
                              "--out", str(tmp_path), "--resume", "--l2", "0.01"])
    assert (args.batch_size, args.l2, args.resume, args.data, args.dropout) == (8, 0.01, True, "iris", 0.5)
    net = Network(input=[4], layers=[Dense(8, "tanh"), Dense(6, "relu"), Dense(3)],
                  loss="softmax_cross_entropy", name="drop")
    dropped = with_dropout(net, 0.5)
    assert [p.layer.type for p in dropped.placed] == ["dense", "dropout", "dense", "dropout", "dense"]
    # one numbering: the dense layers keep their shapes at their new positions (1, 3, 5)
    assert dropped.param_shapes == {"W1": (8, 4), "b1": (8,), "W3": (6, 8), "b3": (6,), "W5": (3, 6), "b5": (3,)}
    assert with_dropout(net, 0.0) is net
    with pytest.raises(SymnetError, match=r"--dropout 1.5: 'rate' must be a number in \[0, 1\)"):
        with_dropout(net, 1.5)
    with pytest.raises(TrainingError, match="already has dropout"):
        with_dropout(dropped, 0.2)


def _codegen_generate():
    try:
        import importlib

        mod = importlib.import_module("symnet.codegen.generate")
        return mod.generate
    except (ImportError, AttributeError):
        return None


@pytest.mark.skipif(_codegen_generate() is None, reason="symnet.codegen.generate is not available yet")
def test_end_to_end_generated_kernel(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMNET_CACHE", str(tmp_path / "kernels"))  # keep generated files out of ~/.cache
    data = load_dataset("iris", seed=0)
    net = iris_net()
    # kernel=None: train() generates the kernel itself.
    res = train(net, data, lr=0.05, batch_size=16, epochs=5, out=tmp_path / "run", progress=False)
    h = res.history
    assert h["train_loss"][-1] < h["train_loss"][0]
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["test_accuracy"] > 0.6
    # The generated kernel and the numpy stand-in agree on the trained parameters.
    gen = _codegen_generate()(net)
    fake = FakeKernel(net)
    np.testing.assert_allclose(np.asarray(gen.forward(res.params, data.X_test)),
                               fake.forward(res.params, data.X_test), rtol=1e-7, atol=1e-10)
    loss_g, grads_g = gen.loss_and_grads(res.params, data.X_val, data.Y_val)
    loss_f, grads_f = fake.loss_and_grads(res.params, data.X_val, data.Y_val)
    assert loss_g == pytest.approx(loss_f, rel=1e-7)
    for k in grads_f:
        np.testing.assert_allclose(grads_g[k], grads_f[k], rtol=1e-6, atol=1e-10)


@pytest.mark.skipif(_codegen_generate() is None, reason="symnet.codegen.generate is not available yet")
def test_dropout_training_is_seeded_and_resumes_exactly(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMNET_CACHE", str(tmp_path / "kernels"))
    data = load_dataset("iris", seed=0)
    net = with_dropout(iris_net(), 0.3)
    kw = dict(lr=0.05, batch_size=16, seed=3, progress=False)
    full = train(net, data, epochs=4, out=tmp_path / "full", **kw)
    train(net, data, epochs=2, out=tmp_path / "part", **kw)
    resumed = train(net, data, epochs=4, out=tmp_path / "part", resume=True, **kw)
    plain = train(iris_net(), data, epochs=4, **kw)
    for k in full.params:
        assert np.array_equal(full.params[k], resumed.params[k]), k
    # Dropout changed the updates (the masks are not all ones) ...
    assert not np.allclose(full.params["W1"], plain.params["W1"])
    # ... and evaluation runs without it: the test loss is the loss of the returned parameters.
    kernel = _codegen_generate()(net)
    assert full.test["loss"] == pytest.approx(kernel.loss(full.params, data.X_test, data.Y_test), rel=1e-6)
