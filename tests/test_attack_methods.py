"""symnet attack --method gradient and --source-checkpoint (transfer), with a stand-in kernel."""
import numpy as np
import pytest

from symnet import Dense, Network
from symnet.attack import AttackError, fgsm, gradient_step, run_attack
from symnet.cli import main
from symnet.data import load_dataset
from symnet.train import evaluate, train

pytest.importorskip("sklearn")


class Softmax:
    """TEST STAND-IN: softmax regression z = W1 x + b1 with hand-written gradients."""

    def _p(self, params, X):
        z = X.reshape(len(X), -1) @ params["W1"].T + params["b1"]
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def forward(self, params, X):
        return self._p(params, X)

    def loss_and_grads(self, params, X, Y):
        p = self._p(params, X)
        dz = (p - Y) / len(X)
        return float(-np.sum(Y * np.log(p + 1e-300)) / len(X)), {"W1": dz.T @ X, "b1": dz.sum(0)}

    def loss_and_input_grad(self, params, X, Y):
        p = self._p(params, X)
        return float(-np.sum(Y * np.log(p + 1e-300)) / len(X)), (p - Y) / len(X) @ params["W1"]


def net():
    return Network(input=[64], layers=[Dense(10)], loss="softmax_cross_entropy", name="digits_logistic")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    data = load_dataset("digits", seed=3)
    for name, init_seed_lr in (("a", 0.05), ("b", 0.02)):
        train(net(), data, kernel=Softmax(), lr=init_seed_lr, epochs=4, seed=3, out=base / name, progress=False)
    train(net(), load_dataset("digits", seed=4), kernel=Softmax(), lr=0.05, epochs=1, seed=4, out=base / "other",
          progress=False)
    return base, data


def test_gradient_step_has_fgsms_l2_length_along_the_gradient():
    rng = np.random.default_rng(0)
    params = {"W1": rng.normal(size=(3, 4)), "b1": np.zeros(3)}
    X, Y = rng.normal(size=(5, 4)), np.eye(3)[[0, 1, 2, 0, 1]]
    adv = gradient_step(Softmax(), params, X, Y, 0.1)
    _, g = Softmax().loss_and_input_grad(params, X, Y)
    step = adv - X
    np.testing.assert_allclose(np.linalg.norm(step, axis=1), 0.1 * np.sqrt(4))    # = ||fgsm step||
    np.testing.assert_allclose(step / np.linalg.norm(step, axis=1, keepdims=True),
                               g / np.linalg.norm(g, axis=1, keepdims=True))
    assert np.linalg.norm(fgsm(Softmax(), params, X, Y, 0.1) - X, axis=1) == pytest.approx(0.2)


def test_gradient_method_on_a_run(runs):
    base, _ = runs
    fg = run_attack(net(), base / "a", eps=0.1, kernel=Softmax())
    gr = run_attack(net(), base / "a", eps=0.1, kernel=Softmax(), method="gradient")
    assert gr["attack"] == "gradient" and gr["clean_accuracy"] == fg["clean_accuracy"]
    assert gr["perturbed_accuracy"] < gr["clean_accuracy"]
    with pytest.raises(AttackError, match="method"):
        run_attack(net(), base / "a", kernel=Softmax(), method="pgd")


def test_transfer_attack_uses_the_source_models_examples(runs):
    from symnet.runs import load_checkpoint

    base, data = runs
    report = run_attack(net(), base / "b", eps=0.1, kernel=Softmax(), source_checkpoint=base / "a",
                        source_kernel=Softmax())
    assert report["source_checkpoint"].endswith("checkpoint.npz")
    # By hand: FGSM on model a (raw units, through a's normaliser), evaluated by model b.
    a, b = load_checkpoint(base / "a"), load_checkpoint(base / "b")
    raw = load_dataset("digits", seed=3, normalize=False)
    adv = fgsm(Softmax(), a.params, raw.X_test, data.Y_test, 1.6, clip=(0.0, 16.0), normalizer=data.normalizer)
    _, acc, _ = evaluate(Softmax(), b.params, data.normalizer(adv), data.Y_test, data.y_test)
    assert report["perturbed_accuracy"] == pytest.approx(acc)
    white = run_attack(net(), base / "b", eps=0.1, kernel=Softmax())
    assert report["perturbed_accuracy"] != white["perturbed_accuracy"]
    with pytest.raises(AttackError, match="same data and split"):
        run_attack(net(), base / "b", kernel=Softmax(), source_checkpoint=base / "other", source_kernel=Softmax())


def test_cli_arguments(runs, monkeypatch, capsys):
    base, _ = runs
    monkeypatch.setattr("symnet.train._default_kernel", lambda n, **kw: Softmax())
    spec = base / "net.toml"
    spec.write_text('name = "digits_logistic"\ninput = [64]\nloss = "softmax_cross_entropy"\ndtype = "float64"\n'
                    '[[layers]]\ntype = "dense"\nunits = 10\n')
    assert main(["attack", str(spec), "--checkpoint", str(base / "b"), "--source-checkpoint", str(base / "a"),
                 "--method", "gradient"]) == 0
    assert "gradient method (transfer: examples crafted on" in capsys.readouterr().out


def test_attack_on_a_minmax_run(tmp_path):
    from symnet.runs import load_checkpoint

    data = load_dataset("digits", seed=3, normalize="minmax")
    train(net(), data, kernel=Softmax(), lr=0.05, epochs=2, seed=3, out=tmp_path, progress=False)
    report = run_attack(net(), tmp_path, eps=0.1, kernel=Softmax())     # the run's normaliser kind is reused
    _, acc, _ = evaluate(Softmax(), load_checkpoint(tmp_path).params, data.X_test, data.Y_test, data.y_test)
    assert report["clean_accuracy"] == pytest.approx(acc) and report["perturbed_accuracy"] < acc
