"""symnet.attack: FGSM from the input gradient, run_attack on a trained run, `symnet attack`.

Most tests use FakeKernel, a pure-numpy stand-in (softmax regression, or one
tanh hidden layer) with a hand-written input gradient; it lives in this file
only. The tests at the end use the generated kernels' ``loss_and_input_grad``
(derived by SymPy) and are skipped while the kernels lack it.
"""

import json

import numpy as np
import pytest

from symnet import Dense, Network
from symnet.attack import AttackError, fgsm, format_report, input_gradient, run_attack
from symnet.cli import main
from symnet.data import Normalizer, load_dataset
from symnet.errors import ShapeError, SymnetError
from symnet.train import train

pytest.importorskip("sklearn", reason="bundled data sets come from scikit-learn")


class FakeKernel:
    """TEST STAND-IN: softmax cross entropy on softmax(W x + b), optionally after a tanh layer.

    Parameters W1, b1 (and W2, b2 with a hidden layer); the loss is the mean over the batch.
    """

    DTYPE = np.float64

    def _forward(self, params, X):
        X = X.reshape(len(X), -1)
        if "W2" in params:
            a1 = np.tanh(X @ params["W1"].T + params["b1"])
            z = a1 @ params["W2"].T + params["b2"]
        else:
            a1, z = None, X @ params["W1"].T + params["b1"]
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return a1, e / e.sum(axis=1, keepdims=True)

    def forward(self, params, X):
        return self._forward(params, X)[1]

    def _backward(self, params, X, Y):
        a1, p = self._forward(params, X)
        B = len(X)
        loss = -np.sum(Y * np.log(p + 1e-300)) / B
        dz = (p - Y) / B
        if "W2" not in params:
            return loss, dz, None, dz @ params["W1"]
        dz1 = (dz @ params["W2"]) * (1 - a1**2)
        return loss, dz, (a1, dz1), dz1 @ params["W1"]

    def loss_and_grads(self, params, X, Y):
        loss, dz, hidden, _ = self._backward(params, X, Y)
        Xf = X.reshape(len(X), -1)
        if hidden is None:
            return float(loss), {"W1": dz.T @ Xf, "b1": dz.sum(0)}
        a1, dz1 = hidden
        return float(loss), {"W2": dz.T @ a1, "b2": dz.sum(0), "W1": dz1.T @ Xf, "b1": dz1.sum(0)}

    def loss_and_input_grad(self, params, X, Y):
        loss, _, _, dX = self._backward(params, X, Y)
        return float(loss), dX.reshape(X.shape)


class NoInputGrad:
    def forward(self, params, X):
        return X


def two_class_params():
    # Class 0 has weights w0 = (1, -2), class 1 has w1 = (0, 0).
    return {"W1": np.array([[1.0, -2.0], [0.0, 0.0]]), "b1": np.zeros(2)}


# --------------------------------------------------------------------------
# fgsm and input_gradient on the stand-in


def test_fgsm_hand_checked_sign_step():
    # dL/dx = (p - y) W / B. For target class 0: (p0 - 1) w0 + p1 w1 = p1 (w1 - w0) = p1 (-1, 2),
    # so sign = (-1, +1); for target class 1 the sign flips to (+1, -1).
    X = np.array([[0.5, 0.5], [0.5, 0.5], [0.2, -0.3]])
    Y = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    adv = fgsm(FakeKernel(), two_class_params(), X, Y, 0.1)
    np.testing.assert_allclose(adv, [[0.4, 0.6], [0.6, 0.4], [0.1, -0.2]], rtol=0, atol=1e-15)
    assert adv.dtype == X.dtype and adv.shape == X.shape
    # The loss goes up for every example.
    k, p = FakeKernel(), two_class_params()
    for i in range(len(X)):
        assert k.loss_and_grads(p, adv[i:i + 1], Y[i:i + 1])[0] > k.loss_and_grads(p, X[i:i + 1], Y[i:i + 1])[0]
    # eps = 0 changes nothing.
    np.testing.assert_array_equal(fgsm(k, p, X, Y, 0.0), X)


def test_fgsm_clipping():
    X = np.array([[0.95, 0.02], [0.05, 0.98]])
    Y = np.array([[0.0, 1.0], [1.0, 0.0]])
    # Row 0 (class 1) moves by (+1, -1) * 0.1, row 1 (class 0) by (-1, +1) * 0.1.
    adv = fgsm(FakeKernel(), two_class_params(), X, Y, 0.1, clip=(0.0, 1.0))
    np.testing.assert_allclose(adv, [[1.0, 0.0], [0.0, 1.0]], atol=1e-15)
    # Per-feature bounds broadcast over the rows.
    adv = fgsm(FakeKernel(), two_class_params(), X, Y, 0.1, clip=(np.array([0.0, 0.0]), np.array([0.97, 1.0])))
    np.testing.assert_allclose(adv, [[0.97, 0.0], [0.0, 1.0]], atol=1e-15)
    with pytest.raises(AttackError):
        fgsm(FakeKernel(), two_class_params(), X, Y, 0.1, clip=(1.0, 0.0))


def test_fgsm_is_per_example_whatever_the_batching():
    rng = np.random.default_rng(0)
    params = {"W1": rng.normal(size=(5, 4)), "b1": rng.normal(size=5),
              "W2": rng.normal(size=(3, 5)), "b2": rng.normal(size=3)}
    X = rng.normal(size=(23, 4))
    Y = np.eye(3)[rng.integers(0, 3, 23)]
    k = FakeKernel()
    ref = fgsm(k, params, X, Y, 0.05, batch_size=1000)
    for bs in (1, 4, 7):
        np.testing.assert_array_equal(fgsm(k, params, X, Y, 0.05, batch_size=bs), ref)
    # The gradient's sign beats random signs of the same size at raising the loss.
    loss = lambda Z: k.loss_and_grads(params, Z, Y)[0]  # noqa: E731
    random = [loss(X + 0.05 * rng.choice([-1.0, 1.0], size=X.shape)) for _ in range(20)]
    assert loss(ref) > max(random) > 0
    # The gradient is of the mean over all of X: batch size does not rescale it.
    l1, g1 = input_gradient(k, params, X, Y, batch_size=5)
    l2, g2 = input_gradient(k, params, X, Y, batch_size=100)
    assert l1 == pytest.approx(l2, rel=1e-12)
    np.testing.assert_allclose(g1, g2, rtol=1e-12, atol=1e-15)


def _central_differences(f, X, h=1e-6):
    g = np.zeros_like(X)
    for idx in np.ndindex(X.shape):
        Xp, Xm = X.copy(), X.copy()
        Xp[idx] += h
        Xm[idx] -= h
        g[idx] = (f(Xp) - f(Xm)) / (2 * h)
    return g


def test_gradient_chained_through_normaliser_matches_finite_differences():
    rng = np.random.default_rng(1)
    params = {"W1": rng.normal(size=(6, 3)), "b1": rng.normal(size=6),
              "W2": rng.normal(size=(4, 6)), "b2": rng.normal(size=4)}
    raw = rng.uniform(0, 16, size=(9, 3))
    Y = np.eye(4)[rng.integers(0, 4, 9)]
    norm = Normalizer(mean=np.array([8.0, 3.0, -1.0]), std=np.array([4.0, 0.5, 2.0]))
    k = FakeKernel()
    loss, g = input_gradient(k, params, raw, Y, normalizer=norm, batch_size=4)
    fd = _central_differences(lambda Z: k.loss_and_grads(params, norm(Z), Y)[0], raw)
    assert loss == pytest.approx(k.loss_and_grads(params, norm(raw), Y)[0], rel=1e-12)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-9)


def test_gradient_of_image_shaped_input_through_normaliser():
    # X (batch, C, H, W): the normaliser's flat statistics are reshaped to one sample's shape.
    rng = np.random.default_rng(2)
    params = {"W1": rng.normal(size=(5, 18)), "b1": rng.normal(size=5),
              "W2": rng.normal(size=(3, 5)), "b2": rng.normal(size=3)}
    raw = rng.uniform(0, 16, size=(4, 2, 3, 3))
    Y = np.eye(3)[[0, 2, 1, 1]]
    norm = Normalizer.fit(rng.uniform(0, 16, size=(30, 2, 3, 3)))
    k = FakeKernel()
    _, g = input_gradient(k, params, raw, Y, normalizer=norm, batch_size=3)
    assert g.shape == raw.shape
    fd = _central_differences(lambda Z: k.loss_and_grads(params, norm(Z), Y)[0], raw)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-9)


def test_fgsm_errors():
    X, Y = np.zeros((2, 2)), np.eye(2)
    p = two_class_params()
    for bad in (-0.1, float("nan"), float("inf"), "0.1"):
        with pytest.raises(AttackError, match="eps"):
            fgsm(FakeKernel(), p, X, Y, bad)
    with pytest.raises(AttackError, match="loss_and_input_grad"):
        fgsm(NoInputGrad(), p, X, Y, 0.1)
    with pytest.raises(ShapeError):
        fgsm(FakeKernel(), p, X, Y[:1], 0.1)
    with pytest.raises(AttackError, match="batch_size"):
        fgsm(FakeKernel(), p, X, Y, 0.1, batch_size=0)


# --------------------------------------------------------------------------
# run_attack and the CLI on a run trained with the stand-in


def digits_logistic():
    return Network(input=[64], layers=[Dense(10)], loss="softmax_cross_entropy", name="digits_logistic")


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("fake_run")
    net = digits_logistic()
    data = load_dataset("digits", seed=3)
    res = train(net, data, kernel=FakeKernel(), lr=0.05, batch_size=64, epochs=8, seed=3, out=out,
                progress=False)
    return net, out, res


def test_run_attack_with_stand_in(fake_run):
    net, out, res = fake_run
    metrics = json.loads((out / "metrics.json").read_text())
    report = run_attack(net, out, eps=0.1, kernel=FakeKernel())
    # Data set and seed come from the checkpoint.
    assert report["data"] == "digits" and report["seed"] == 3 and report["data_and_seed_from_checkpoint"]
    assert report["clean_accuracy"] == metrics["test_accuracy"]
    assert report["clean_loss"] == pytest.approx(metrics["test_loss"], rel=1e-12)
    assert report["perturbed_accuracy"] < report["clean_accuracy"]
    assert report["perturbed_loss"] > report["clean_loss"]
    assert report["n_test"] == int(np.asarray(res.test["confusion_matrix"]).sum())
    assert report["data_range"] == [0.0, 16.0] and report["eps_raw"] == pytest.approx(1.6)
    assert report["max_abs_change_raw"] == pytest.approx(1.6)
    assert 0 < report["flipped"] <= report["n_test"]
    assert report["correct_to_wrong"] <= report["flipped"]
    # eps = 0: nothing moves, nothing flips.
    zero = run_attack(net, out / "checkpoint.npz", data="digits", eps=0.0, seed=3, kernel=FakeKernel())
    assert zero["perturbed_accuracy"] == zero["clean_accuracy"] and zero["flipped"] == 0
    # A larger step hurts more.
    big = run_attack(net, out, eps=0.25, kernel=FakeKernel())
    assert big["perturbed_accuracy"] < report["perturbed_accuracy"]
    # Per-feature ranges: constant pixels (range 0) never move.
    feat = run_attack(net, out, eps=0.1, range_mode="feature", kernel=FakeKernel())
    assert feat["eps_raw"] is None and feat["perturbed_accuracy"] < feat["clean_accuracy"]
    assert "clean accuracy:" in format_report(report)


def test_run_attack_mismatches(fake_run, tmp_path):
    net, out, _ = fake_run
    with pytest.raises(AttackError, match="trained on 'digits'"):
        run_attack(net, out, data="iris", eps=0.1, kernel=FakeKernel())
    with pytest.raises(AttackError, match="seed"):
        run_attack(net, out, seed=0, eps=0.1, kernel=FakeKernel())
    with pytest.raises(AttackError, match="not found"):
        run_attack(net, tmp_path / "nowhere", eps=0.1, kernel=FakeKernel())
    with pytest.raises(AttackError, match="no checkpoint.npz"):
        run_attack(net, tmp_path, eps=0.1, kernel=FakeKernel())
    other = Network(input=[64], layers=[Dense(12, "tanh"), Dense(10)], loss="softmax_cross_entropy",
                    name="digits_logistic")
    with pytest.raises(SymnetError, match="different network spec"):
        run_attack(other, out, eps=0.1, kernel=FakeKernel())
    with pytest.raises(AttackError, match="loss_and_input_grad"):
        run_attack(net, out, eps=0.1, kernel=NoInputGrad())


def _one_line_error(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("symnet: error: ") and err.count("\n") == 1
    return err


def test_cli_with_stand_in(fake_run, tmp_path, monkeypatch, capsys):
    net, out, _ = fake_run
    spec = tmp_path / "digits_logistic.toml"
    spec.write_text('name = "digits_logistic"\ninput = [64]\nloss = "softmax_cross_entropy"\n'
                    'dtype = "float64"\n\n[[layers]]\ntype = "dense"\nunits = 10\n')
    import symnet.train
    from symnet.spec import load

    assert load(spec).fingerprint() == net.fingerprint()

    monkeypatch.setattr(symnet.train, "_default_kernel", lambda net, **kw: FakeKernel())
    report_path = tmp_path / "reports" / "fgsm.json"
    assert main(["attack", str(spec), "--checkpoint", str(out), "--data", "digits", "--eps", "0.1",
                 "--out", str(report_path)]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    clean = [ln for ln in lines if ln.startswith("clean accuracy: ")]
    pert = [ln for ln in lines if ln.startswith("perturbed accuracy: ")]
    assert len(clean) == 1 and len(pert) == 1
    report = json.loads(report_path.read_text())
    assert f"{report['clean_accuracy']:.4f}" in clean[0] and f"{report['perturbed_accuracy']:.4f}" in pert[0]
    assert report["eps"] == 0.1 and report["data"] == "digits"

    err = _one_line_error(capsys, ["attack", str(spec), "--checkpoint", str(out), "--eps", "-0.1"])
    assert "eps" in err
    _one_line_error(capsys, ["attack", str(spec), "--checkpoint", str(tmp_path / "missing"), "--eps", "0.1"])
    _one_line_error(capsys, ["attack", str(spec), "--checkpoint", str(out), "--data", "iris"])
    bad_spec = tmp_path / "wide.toml"
    bad_spec.write_text('name = "wide"\ninput = [64]\nloss = "softmax_cross_entropy"\n'
                        'dtype = "float64"\n\n[[layers]]\ntype = "dense"\nunits = 16\n'
                        '[[layers]]\ntype = "dense"\nunits = 10\n')
    err = _one_line_error(capsys, ["attack", str(bad_spec), "--checkpoint", str(out)])
    assert "different network spec" in err


def test_shape_mismatch_is_a_shape_error(fake_run, tmp_path):
    net, out, _ = fake_run
    from symnet.runs import load_checkpoint, save_checkpoint

    ck = load_checkpoint(out)
    params = dict(ck.params)
    params["W1"] = params["W1"][:, :60]
    meta = dict(ck.meta)
    meta["config"] = {k: v for k, v in ck.meta["config"].items() if k != "fingerprint"}
    save_checkpoint(tmp_path, params, {}, ck.epoch, None, Normalizer(ck.norm_mean, ck.norm_std), meta)
    with pytest.raises(ShapeError, match="W1"):
        run_attack(net, tmp_path, eps=0.1, kernel=FakeKernel())


# --------------------------------------------------------------------------
# The generated kernels' input gradient (derived by SymPy)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """generate(net), with kernel files kept out of ~/.cache; skips while kernels lack the input gradient."""
    from symnet.codegen import generate
    from symnet.spec import load

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SYMNET_CACHE", str(tmp_path_factory.mktemp("kernels")))
        if not hasattr(generate(load("examples/digits_mlp.toml")), "loss_and_input_grad"):
            pytest.skip("generated kernels have no loss_and_input_grad yet")
        yield generate


def test_generated_input_gradient_matches_finite_differences(generated):
    from symnet.spec import from_dict

    net = from_dict({"name": "attack_fd", "input": [5], "loss": "softmax_cross_entropy", "dtype": "float64",
                     "layers": [{"type": "dense", "units": 7, "activation": "tanh"},
                                {"type": "dense", "units": 4}]})
    k = generated(net)
    rng = np.random.default_rng(5)
    params = {n: np.ascontiguousarray(v) for n, v in net.init_params(seed=5).items()}
    X = rng.normal(size=(6, 5))
    Y = np.eye(4)[rng.integers(0, 4, 6)]
    loss, dX = k.loss_and_input_grad(params, X, Y)
    assert np.asarray(dX).shape == X.shape
    assert float(loss) == pytest.approx(float(k.loss_and_grads(params, X, Y)[0]), rel=1e-12)
    fd = _central_differences(lambda Z: float(k.loss_and_grads(params, Z, Y)[0]), X)
    np.testing.assert_allclose(dX, fd, rtol=1e-6, atol=1e-9)
    # And through a normaliser, in raw units.
    norm = Normalizer(mean=rng.normal(size=5), std=rng.uniform(0.5, 2.0, size=5))
    raw = norm.inverse(X)
    _, g_raw = input_gradient(k, params, raw, Y, normalizer=norm, batch_size=4)
    fd_raw = _central_differences(lambda Z: float(k.loss_and_grads(params, norm(Z), Y)[0]), raw)
    np.testing.assert_allclose(g_raw, fd_raw, rtol=1e-6, atol=1e-9)


def test_end_to_end_digits_mlp(generated, tmp_path, capsys):
    from symnet.spec import load

    net = load("examples/digits_mlp.toml")
    data = load_dataset("digits", seed=0, dtype=net.dtype)
    out = tmp_path / "run"
    train(net, data, epochs=5, batch_size=32, lr=3e-3, out=out, progress=False)
    metrics = json.loads((out / "metrics.json").read_text())
    report_path = tmp_path / "fgsm.json"
    assert main(["attack", "examples/digits_mlp.toml", "--checkpoint", str(out), "--data", "digits",
                 "--eps", "0.1", "--out", str(report_path)]) == 0
    printed = capsys.readouterr().out
    report = json.loads(report_path.read_text())
    assert report["clean_accuracy"] == metrics["test_accuracy"]
    assert report["perturbed_accuracy"] < report["clean_accuracy"]
    assert report["flipped"] > 0
    assert f"clean accuracy: {report['clean_accuracy']:.4f}" in printed
    assert f"perturbed accuracy: {report['perturbed_accuracy']:.4f}" in printed
