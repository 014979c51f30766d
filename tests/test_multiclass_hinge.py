"""Multi-class hinge (SVM) loss: derived by SymPy, printed into the kernels, evaluated by
symnet.trace; checked against float64 central differences and torch.nn.MultiMarginLoss."""
from __future__ import annotations

import numpy as np
import pytest

from symnet import Dense, Network, ShapeError, SpecError
from symnet.codegen import generate
from symnet.derive import derive
from symnet.trace import trace

RNG = np.random.default_rng(7)
N_CLASSES = 4


def _net(name="mc_hinge", dtype="float64"):
    return Network(3, [Dense(5, "tanh"), Dense(N_CLASSES)], loss="multiclass_hinge", name=name, dtype=dtype)


def _params(net, seed=0, scale=0.8):
    rng = np.random.default_rng(seed)
    return {name: scale * rng.standard_normal(shape) for name, shape in net.param_shapes.items()}


def _batch(m=8, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, 3)), np.eye(N_CLASSES)[rng.integers(0, N_CLASSES, m)]


def _reference_loss(z, Y):
    """(1/n) sum_{j != y} max(0, 1 + z_j - z_y), mean over the batch (numpy, written from the definition)."""
    zy = (z * Y).sum(axis=1, keepdims=True)
    return float((np.maximum(0.0, 1.0 + z - zy) * (1 - Y)).sum(axis=1).mean() / z.shape[1])


def _margins(z, Y):
    zy = (z * Y).sum(axis=1, keepdims=True)
    return (1.0 + z - zy)[Y == 0]


@pytest.fixture(scope="module")
def kernel(kernel_dir):
    net = _net()
    return net, generate(net, kernel_dir)


def test_loss_and_gradients_match_central_differences(kernel):
    net, mod = kernel
    X, Y = _batch()
    d = derive(net)
    for seed in range(3):
        params = _params(net, seed)
        ev = trace(d, params, X, Y)
        z = ev.values["z2"]
        margins = _margins(z, Y)
        assert (margins > 0).any() and (margins < 0).any(), "both sides of the kink must occur"
        assert np.abs(margins).min() > 1e-4, "central differences need points away from the kinks"
        assert ev.loss == pytest.approx(_reference_loss(z, Y), rel=1e-12)
        loss, grads = mod.loss_and_grads(params, X, Y)
        assert loss == pytest.approx(ev.loss, rel=1e-12)
        eps = 1e-6
        for name, p in params.items():
            num = np.zeros_like(p)
            for idx in np.ndindex(p.shape):
                old = p[idx]
                p[idx] = old + eps
                lp = mod.loss(params, X, Y)
                p[idx] = old - eps
                lm = mod.loss(params, X, Y)
                p[idx] = old
                num[idx] = (lp - lm) / (2 * eps)
            scale = max(np.abs(num).max(), 1e-3)
            assert np.abs(grads[name] - num).max() / scale < 1e-6, name
            assert np.abs(ev.grads[name] - num).max() / scale < 1e-6, name


def test_matches_torch_multimarginloss(kernel):
    torch = pytest.importorskip("torch", reason="torch is the optional reference for MultiMarginLoss")
    net, mod = kernel
    X, Y = _batch(m=16, seed=3)
    params = _params(net, 5)
    ev = trace(derive(net), params, X, Y)
    z = torch.tensor(ev.values["z2"], requires_grad=True)
    ref = torch.nn.MultiMarginLoss()(z, torch.tensor(Y.argmax(axis=1)))
    ref.backward()
    loss, grads = mod.loss_and_grads(params, X, Y)
    assert loss == pytest.approx(ref.item(), rel=1e-12)
    # delta^(L) (per example, 1/m included) against torch's gradient of the scores
    a1 = np.tanh(X @ params["W1"].T + params["b1"])
    np.testing.assert_allclose(grads["b2"], z.grad.numpy().sum(axis=0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads["W2"], z.grad.numpy().T @ a1, rtol=1e-10, atol=1e-12)


def test_tie_at_the_kink_gives_zero_gradient(kernel):
    # Scores with z_j - z_y = -1 exactly: margin 0, derivative taken as 0 (as ReLU, and as PyTorch).
    net = Network(2, [Dense(3)], loss="multiclass_hinge", name="tie")
    params = {"W1": np.zeros((3, 2)), "b1": np.array([1.0, 0.0, -3.0])}
    X, Y = np.zeros((1, 2)), np.array([[1.0, 0.0, 0.0]])
    ev = trace(derive(net), params, X, Y)
    assert ev.loss == 0.0
    np.testing.assert_array_equal(ev.grads["b1"], np.zeros(3))
    # the kernel: a^(1) = tanh(0) = 0, so z = b2; class 1 sits exactly on the margin of class 0
    net, mod = kernel
    params = {name: np.zeros(shape) for name, shape in net.param_shapes.items()}
    params["b2"] = np.array([1.0, 0.0, -3.0, -5.0])
    loss, grads = mod.loss_and_grads(params, np.ones((2, 3)), np.array([[1.0, 0, 0, 0], [1.0, 0, 0, 0]]))
    assert loss == 0.0
    for g in grads.values():
        np.testing.assert_array_equal(g, np.zeros_like(g))


def test_spec_errors():
    with pytest.raises(SpecError, match="no activation"):
        Network(3, [Dense(4, "sigmoid")], loss="multiclass_hinge")
    from symnet import Softmax
    with pytest.raises(SpecError, match="softmax"):
        Network(3, [Dense(4), Softmax()], loss="multiclass_hinge")
    with pytest.raises(ShapeError, match="at least 2 classes"):
        Network(3, [Dense(1)], loss="multiclass_hinge")


def test_derivation_document_shows_delta():
    import shutil
    from symnet.render import build_pdf, overfull_pt, to_latex, to_markdown
    d = derive(_net())
    md, tex = to_markdown(d), to_latex(d)
    for text in (md, tex):
        assert "multi-class hinge" in text
        for raw in ("Piecewise", "KroneckerDelta", r"\operatorname{Max}", "Heaviside"):
            assert raw not in text
    loss_part = md[md.index("Loss and output error"):md.index("Backpropagation in general")]
    assert r"\delta^{(2)}_{i} = \frac{1}{n}" in loss_part          # delta^(L) of the loss
    assert r"\max\left(0," in loss_part and r"\mathbb{1}_{j}" in loss_part
    if shutil.which("pdflatex"):
        pdf, log = build_pdf(tex)
        assert pdf.startswith(b"%PDF")
        assert not [x for x in overfull_pt(log) if x > 2.0], "overfull lines (tests/test_documents.py's bound)"


def test_verify_evaluates_the_delta_target():
    from symnet.verify import verify
    net = _net()
    assert verify(net, "W2", "dW2 = delta2 a1^T").ok
    assert verify(net, "W2", r"dW2 = \frac{\partial \ell}{\partial a^{(2)}} a1^T").ok
    wrong = verify(net, "delta2", "delta2 = (yhat - y)/4")     # the softmax form does not fit the hinge
    assert not wrong.ok and wrong.counterexample is not None
    # the lecture's delta written by hand (one example, a column; 1 - y + y is a column of ones)
    violated = "(1 + z2 - (1 - y + y)(y^T z2) > 0)"
    right = f"delta2 = ((1 - y) * {violated} - y ((1 - y)^T {violated})) / 4"
    assert verify(net, "delta2", right, per_example=True).ok
    sign_slip = f"delta2 = ((1 - y) * {violated} + y ((1 - y)^T {violated})) / 4"
    assert not verify(net, "delta2", sign_slip, per_example=True).ok


def test_delta_from_the_definition():
    # delta_i = (1/n)(1[i violates] - y_i * #violations), written here from the lecture, vs the derived one
    net = _net()
    X, Y = _batch()
    ev = trace(derive(net), _params(net), X, Y)
    z = ev.values["z2"]
    zy = (z * Y).sum(axis=1, keepdims=True)
    violated = ((1 + z - zy) > 0) & (Y == 0)
    expected = (violated - Y * violated.sum(axis=1, keepdims=True)) / N_CLASSES
    np.testing.assert_allclose(ev.values["delta2"], expected, rtol=1e-12, atol=1e-15)


def test_training_on_digits_reaches_sensible_accuracy(kernel_dir):
    from symnet.data import load_dataset
    from symnet.train import train
    data = load_dataset("digits", seed=0)
    net = Network(64, [Dense(32, "relu"), Dense(10)], loss="multiclass_hinge", name="digits_mc_hinge",
                  dtype="float32")
    result = train(net, data, epochs=15, lr=0.05, optimizer="adam", batch_size=64, seed=0, progress=False,
                   kernel=generate(net, kernel_dir))
    assert result.test["accuracy"] > 0.9, result.test
