"""Every activation's and loss's derived derivative against float64 central
differences, and the simplified output error delta^(L) of each loss/output pair."""
import numpy as np
import pytest
import sympy as sp

import symnet
from symnet.activations import BUILTIN, X, make_activation
from symnet.derive.core import A, N_OUT, Y, Z
from symnet.derive.output import elementwise_output, softmax_output
from symnet.derive import _activation_math
from symnet.errors import FormulaError, NotDifferentiableError, SpecError
from symnet.losses import make_loss
from symnet.numeric import lambdify

RNG = np.random.default_rng(0)
SMOOTH = sorted(set(BUILTIN) - {"step"})


def central_difference(f, x, h=1e-6):
    return (f(x + h) - f(x - h)) / (2 * h)


def points_away_from_kinks(n=50, scale=3.0):
    x = RNG.uniform(-scale, scale, n)
    return x[np.abs(x) > 1e-2]            # relu, elu, leaky_relu kink at 0


@pytest.mark.parametrize("name", SMOOTH + ["x*tanh(log(1+exp(x)))", "x/(1+x^2)", "sin(x)^2 + 0.1x"])
def test_activation_derivative_matches_central_differences(name):
    act = make_activation(name)
    f, df = lambdify(X, act.expr), lambdify(X, act.derivative)
    x = points_away_from_kinks()
    np.testing.assert_allclose(df(x) * np.ones_like(x), central_difference(f, x), rtol=1e-6, atol=1e-8)


def test_relu_derivative_at_zero_is_zero_as_in_pytorch():
    assert lambdify(X, make_activation("relu").derivative)(0.0) == 0.0


def test_activation_parameters():
    act = make_activation({"name": "leaky_relu", "slope": 0.2})
    assert lambdify(X, act.expr)(-1.0) == pytest.approx(-0.2)
    assert lambdify(X, make_activation({"name": "elu", "alpha": 2.0}).expr)(-50.0) == pytest.approx(-2.0)
    assert make_activation("leaky_relu").params == (("slope", sp.Rational(1, 100)),)


def test_custom_activation_log_one_plus_exp_is_stabilised_as_softplus():
    act = make_activation("x*tanh(log(1+exp(x)))")
    assert act.expr == make_activation("mish").expr


@pytest.mark.parametrize("name", ["step", "heaviside(x)", "step(x) + 1"])
def test_step_is_rejected_by_derive(name):
    net = symnet.Network((3,), [symnet.Dense(4, activation=name), symnet.Dense(1)], loss="mse")
    with pytest.raises(NotDifferentiableError, match="layer 1.*zero derivative almost everywhere"):
        symnet.derive(net)


@pytest.mark.parametrize("name", ["zero_one", "0-1"])
def test_zero_one_loss_is_rejected(name):
    with pytest.raises(NotDifferentiableError, match="0-1 loss"):
        make_loss(name)


def test_unknown_activation_names_the_layer():
    with pytest.raises(SpecError, match="layer 2.*unknown activation 'rleu'"):
        symnet.from_dict({"input": [3], "layers": [{"type": "dense", "units": 2},
                                                   {"type": "dense", "units": 1, "activation": "rleu"}]})


def test_custom_activation_with_unknown_name_points_at_position():
    with pytest.raises(FormulaError, match="column 3"):
        make_activation("x*y")


PAIRS = [("mse", "identity"), ("mse", "sigmoid"), ("mse", "tanh"), ("l1", "identity"), ("bce", "sigmoid"),
         ("hinge", "identity"), ("y*log(yhat) + (1-y)*log(1-yhat)", "sigmoid"), ("(yhat-y)^4", "softplus")]


@pytest.mark.parametrize("loss,activation", PAIRS)
def test_output_delta_matches_central_differences(loss, activation):
    loss_obj, act = make_loss(loss), make_activation(activation)
    output, _ = elementwise_output(loss_obj, _activation_math(act, "layer 1"), 1)
    n = 3
    per_element = lambdify((Z, Y), output.loss_value)
    delta = lambdify((Z, Y, N_OUT), output.delta)
    z = points_away_from_kinks(40)
    y = RNG.choice([-1.0, 1.0], z.size) if loss == "hinge" else RNG.uniform(0.05, 0.95, z.size)
    if loss == "hinge":
        z = z[np.abs(y * z - 1) > 1e-2]
        y = y[: z.size]
    if loss == "l1":
        y = y + 0.5                        # keep away from yhat == y
    fd = central_difference(lambda zz: per_element(zz, y) / n, z)
    np.testing.assert_allclose(delta(z, y, n) * np.ones_like(z), fd, rtol=1e-6, atol=1e-9)


def test_lecture_simplifications():
    sig = _activation_math(make_activation("sigmoid"), "")
    out, _ = elementwise_output(make_loss("bce"), sig, 2)
    assert sp.simplify(out.delta_in_a - (A - Y) / N_OUT) == 0          # sigmoid + BCE: a - y
    ident = _activation_math(make_activation("identity"), "")
    out, _ = elementwise_output(make_loss("mse"), ident, 2)
    assert sp.simplify(out.delta_in_a - 2 * (A - Y) / N_OUT) == 0      # identity + MSE: scaled difference
    for name in ("softmax_cross_entropy", "cross_entropy"):
        out, _ = softmax_output(make_loss(name), 2)
        assert out.delta == sp.Symbol("p", real=True) - Y                # softmax + CE: p - y


def test_bce_loss_value_is_finite_for_extreme_logits():
    out, _ = elementwise_output(make_loss("bce"), _activation_math(make_activation("sigmoid"), ""), 1)
    value = lambdify((Z, Y), out.loss_value)
    z = np.array([-1e4, 1e4, 0.0])
    assert np.all(np.isfinite(value(z, np.array([1.0, 0.0, 1.0]))))
    assert value(1e4, 0.0) == pytest.approx(1e4)


def test_softmax_cross_entropy_delta_numerically():
    out, _ = softmax_output(make_loss("softmax_cross_entropy"), 1)
    z = RNG.normal(size=5)
    y = np.eye(5)[2]
    loss = lambda zz: np.log(np.exp(zz).sum()) - y @ zz   # noqa: E731
    fd = np.array([(loss(z + h) - loss(z - h)) / 2e-6 for h in np.eye(5) * 1e-6])
    p = np.exp(z) / np.exp(z).sum()
    delta = lambdify((sp.Symbol("p", real=True), Y), out.delta)(p, y)
    np.testing.assert_allclose(delta, fd, rtol=1e-6)
