"""symnet.verify: hand-derived formulas from the lectures, right and wrong,
against symnet's derivation; the CLI's exit codes; hostile input."""
import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from symnet import Dense, Network
from symnet.errors import FormulaError, SymnetError
from symnet.verify import Verdict, verify

TINY_SPEC = """
name = "tiny_verify"
input = [3]
loss = "bce"
dtype = "float64"

[[layers]]
type = "dense"
units = 2
activation = "sigmoid"

[[layers]]
type = "dense"
units = 1
activation = "sigmoid"
"""


@pytest.fixture(scope="module")
def bce():
    """3-2-1, sigmoid hidden and output, binary cross entropy (the lectures' network)."""
    return Network([3], [Dense(2, "sigmoid"), Dense(1, "sigmoid")], loss="bce")


@pytest.fixture(scope="module")
def relu_net():
    return Network([4], [Dense(3, "relu"), Dense(2)], loss="mse")


@pytest.fixture(scope="module")
def softmax_net():
    return Network([4], [Dense(3, "tanh"), Dense(3)], loss="softmax_cross_entropy")


def status(net, target, formula, **kw):
    return verify(net, target, formula, **kw).status


# ---------------------------------------------------------------- the lectures, correct

def test_bce_sigmoid_output_delta_is_a_minus_y(bce):
    v = verify(bce, "delta2", "delta2 = a2 - y")
    assert v.status == "equal" and v.ok and v.points == 5
    assert v.symbolic == "equal"
    assert v.given_latex == r"\delta^{(2)} = a^{(2)} - y"
    assert "a^{(2)}_{i} - y_{i}" in v.derived_latex


def test_log_likelihood_custom_loss_gives_y_minus_a():
    net = Network([3], [Dense(2, "sigmoid"), Dense(1, "sigmoid")],
                  loss="y*log(yhat) + (1-y)*log(1-yhat)")
    assert status(net, "delta2", r"\delta^{(2)} = y - a^{(2)}") == "equal"
    assert status(net, "delta2", "delta2 = a2 - y") == "not equal"


@pytest.mark.parametrize("target, formula", [
    ("W2", "dW2 = dz2 a1^T"),                                   # Andrew Ng
    ("b2", "db2 = dz2"),
    ("W1", "dW^{[1]} = dz^{[1]} x^T"),
    ("delta1", "delta1 = W2^T delta2 * g'(z1)"),
    ("delta1", "dz1 = W2^T dz2 * g'(z1)"),
    ("delta1", r"\delta^{(1)} = (W^{(2)})^T \delta^{(2)} \odot \sigma'(z^{(1)})"),
    ("delta1", r"\delta^{(1)} = (W^{(2)})^T \delta^{(2)} \odot a^{(1)} \odot (1 - a^{(1)})"),
    ("x", "dx = W1^T delta1"),
    ("delta1", r"\delta_i^{(1)} = a_i^{(1)}(1-a_i^{(1)}) \sum_k \delta_k^{(2)} W_{k,i}^{(2)}"),
    ("W2", r"dW_{ij}^{(2)} = \delta_i^{(2)} a_j^{(1)}"),
    ("delta1", r"\delta^{(l)} = (W^{(l+1)})^T \delta^{(l+1)} \odot \sigma'(z^{(l)})"),
])
def test_lecture_formulas_are_equal(bce, target, formula):
    v = verify(bce, target, formula, layer=1)
    assert v.status == "equal", v.message


def test_theta_numbering(bce):
    """The parser reads \\Theta^{(l)} as W^{(l)}; a lecture whose Theta^{(l)} maps
    layer l to l+1 must be renumbered: its Theta^{(1)} is symnet's W^{(2)}."""
    assert status(bce, "delta1", r"\delta^{(1)} = (\Theta^{(2)})^T \delta^{(2)} \odot g'(z^{(1)})") == "equal"
    literal = verify(bce, "delta1", r"\delta^{(1)} = (\Theta^{(1)})^T \delta^{(2)} \odot g'(z^{(1)})")
    assert literal.status == "not equal" and literal.reason == "shape"


def test_batch_formula_with_average(bce):
    v = verify(bce, "W2", r"dW^{[2]} = \frac{1}{m} dZ^{[2]} A^{[1]T}")
    assert v.status == "equal" and v.batch
    assert status(bce, "b2", r"db2 = \frac{1}{m} \sum_i dZ2") == "equal"
    assert status(bce, "x", r"dX = \frac{1}{m} W1^T dZ1") == "equal"


def test_softmax_cross_entropy(softmax_net):
    assert status(softmax_net, "delta2", "delta2 = p - y") == "equal"
    assert status(softmax_net, "delta2", "delta2 = y - p") == "not equal"
    assert status(softmax_net, "delta1", "delta1 = W2^T (p - y) * (1 - a1^2)") == "equal"


# ---------------------------------------------------------------- classic mistakes

def test_missing_transpose_is_a_shape_message(bce):
    v = verify(bce, "delta1", "delta1 = W2 delta2 * g'(z1)")
    assert v.status == "not equal" and v.reason == "shape" and not v.ok
    assert "(1, 2) times (1, 1)" in v.message and "transpose" in v.message


def test_wrong_order_of_the_product(bce):
    v = verify(bce, "W2", "dW2 = a1^T dz2")
    assert v.status == "not equal" and v.reason == "shape"
    v = verify(bce, "W2", "dW2 = a1 dz2^T")         # fits, but (2, 1) is not W2's (1, 2)
    assert v.status == "not equal" and "(2, 1)" in v.message and "(1, 2)" in v.message


def test_missing_activation_derivative(bce):
    v = verify(bce, "delta1", "delta1 = W2^T delta2")
    assert v.status == "not equal" and v.reason == "numeric"
    c = v.counterexample
    assert c is not None and c.abs_error > 1e-3 and c.index[1] == 0
    assert c.seed[0] == 0 and f"entry [{c.index[0]}, 0] of delta1" in v.message


def test_wrong_sign_has_a_reproducible_counterexample(bce):
    v = verify(bce, "delta2", "delta2 = y - a2", seed=7)
    assert v.status == "not equal"
    c = v.counterexample
    assert c.given == pytest.approx(-c.derived) and c.rel_error == pytest.approx(2)
    assert c.seed == (7, c.point)
    assert verify(bce, "delta2", "delta2 = y - a2", seed=7).counterexample == c


def test_missing_one_over_m_in_a_batch_formula(bce):
    v = verify(bce, "W2", "dW2 = dZ2 A1^T")
    assert v.status == "not equal" and v.batch
    c = v.counterexample
    assert c.given / c.derived == pytest.approx(3)       # a sum over 3 examples, not their mean
    # The same formula, declared per example, is right.
    assert status(bce, "W2", "dW2 = dZ2 A1^T", per_example=True) == "equal"
    assert status(bce, "W2", "dW2 = dz2 a1^T", per_example=False) == "not equal"


# ---------------------------------------------------------------- kinks and undecided

def test_relu_conventions(relu_net):
    assert status(relu_net, "delta1", "delta1 = W2^T delta2 * relu'(z1)") == "equal"
    # 1 - relu'(-z) is the step with value 1 at 0: it differs only on the kink.
    v = verify(relu_net, "delta1", "delta1 = W2^T delta2 * (1 - relu'(-z1))")
    assert v.status == "equal almost everywhere" and v.ok and v.reason == "kink"
    assert v.counterexample.point == -1 and "z1 = 0" in v.message
    # a/z is relu' away from 0 and undefined at 0.
    assert status(relu_net, "delta1", "delta1 = W2^T delta2 * a1/z1") == "equal almost everywhere"


def test_undecided_when_nothing_evaluates(bce):
    v = verify(bce, "delta2", "delta2 = log(-a2^2)")
    assert v.status == "undecided" and not v.ok


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("target, formula, words", [
    ("W2", "dW1 = dz1 x^T", "not the target"),
    ("W2", "dW2 = dz2 q1^T", "unknown name"),
    ("y", "y", "not a parameter"),
    ("W9", "dW2 = dz2 a1^T", "target"),
    ("W2", "dW2 = dz2 a1^T +", "column"),
    ("delta1", "delta^{(l)} = W^{(l+1)T} delta^{(l+1)}", "layer"),
])
def test_bad_input_raises_one_line_errors(bce, target, formula, words):
    with pytest.raises(SymnetError) as info:
        verify(bce, target, formula)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_target_from_the_left_side(bce):
    assert verify(bce, None, "db2 = dz2").target == "db2"
    with pytest.raises(FormulaError):
        verify(bce, None, "dz2")


# ---------------------------------------------------------------- CLI

@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    path = tmp_path_factory.mktemp("verify") / "tiny_verify.toml"
    path.write_text(TINY_SPEC)
    return str(path)


@pytest.mark.parametrize("formula, code", [
    ("delta2 = a2 - y", 0),
    ("delta2 = y - a2", 1),
    ("delta2 = log(-a2^2)", 3),
])
def test_cli_verify_exit_codes(spec, capsys, formula, code):
    from symnet.cli import main
    assert main(["verify", spec, "--target", "delta2", "--formula", formula]) == code
    out = capsys.readouterr().out
    assert out.startswith("verdict: ") and "given:" in out and "derived:" in out


def test_cli_verify_formula_file_and_bad_input(spec, tmp_path):
    path = tmp_path / "f.tex"
    path.write_text("dW^{[2]} = dz^{[2]} a^{[1]T}\n")
    from symnet.cli import main
    assert main(["verify", spec, "--formula-file", str(path)]) == 0
    run = subprocess.run([sys.executable, "-m", "symnet", "verify", spec, "--target", "W2",
                          "--formula", "dW2 = dz2 @@ a1"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert run.stderr.startswith("symnet: error:") and "column" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_cli_check_reports_the_worst_entry(spec, capsys, monkeypatch):
    import symnet.check
    from symnet.check import ParamCheck
    from symnet.cli import main
    pytest.importorskip("symnet.codegen", reason="symnet check needs symnet.codegen.generate")
    fake = [ParamCheck("W1", 1e-9, (0, 1), 0.5, 0.5, True),
            ParamCheck("b2", 0.3, (0,), 0.7, 1.0, False)]
    monkeypatch.setattr(symnet.check, "gradient_check", lambda net, seed=0, batch=4: fake)
    assert main(["check", spec]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH" in out and "worst entry b2[0]" in out


def test_cli_check_passes_on_generated_kernels(spec, capsys):
    codegen = pytest.importorskip("symnet.codegen", reason="symnet check needs symnet.codegen.generate")
    if not hasattr(codegen, "generate"):
        pytest.skip("symnet.codegen.generate is not there yet")
    from symnet.cli import main
    assert main(["check", spec]) == 0
    assert "gradient check passed" in capsys.readouterr().out


# ---------------------------------------------------------------- hostile input

_PIECES = ["dW2", "=", "dz2", "a1", "^T", "^{T}", "delta1", "W2", "*", "@", "+", "-", "/", "(", ")",
           "{", "}", r"\frac{1}{m}", r"\sum_k", "_i", "_k", "_{k,i}", "g'(z1)", r"\sigma'", "relu(",
           "softmax(z2)", "m", "n", "2", "0", "1e300", "x", "y", "^2", "^{-3}", r"\odot", " ", "'",
           r"\hat{y}", "A1", "dZ2", "log(", "exp(", "sqrt(", r"\Delta^{(2)}", "l", "L",
           "e^{", "e^", r"\tilde{a}^{(1)}", r"\check{\delta}^{(2)}", r"\nabla_{W^{(2)}} J", r"\mid",
           r"\frac{\partial a^{(1)}_i}{\partial z^{(1)}_i}", r"\sum_{q=0}^{4}", "_{q,r}", r"_{\frac{i}{2}}",
           r"\mathbb{1}[", "]", "r^{(2)}_{q}", r"\partial J"]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.lists(st.sampled_from(_PIECES), max_size=14).map("".join),
                 st.text(max_size=40)))
def test_hostile_formulas_give_a_verdict_or_a_symnet_error(text):
    net = Network([3], [Dense(2, "sigmoid"), Dense(1, "sigmoid")], loss="bce")
    start = time.monotonic()
    try:
        result = verify(net, "W2", text, points=2)
    except SymnetError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(result, Verdict)
    assert time.monotonic() - start < 1.0


_CONV_PIECES = ["dW^{(1)}_{f,c,q,r}", "=", r"\sum_{i,j}", r"\sum_{q=0}^{2}", r"\delta^{(1)}_{f,i,j}", r"\tilde{a}^{(0)}",
                r"\check{\delta}^{(1)}", "_{c,2 i + q,2 j + r}", r"_{f,\frac{u + 1 - q}{2},v}", r"\mathbb{1}[",
                "i = ", r"r^{(2)}_{cqr}", "]", r"\mathrm{dilate}(", r"dilate_{2}(", r"\mathrm{full}(", "W^{(1)}", r"\mathrm{rot180}(", r"route_{argmax}(", r"reshape_{3x3x3}(", r"crop_{1}(",
                r"spread_{2}(", r"\star", r"\ast", r"\uparrow_{2}", "a^{(1)}", r"\delta^{(4)}", r"_{c,\lfloor u/2 \rfloor,\lfloor", r"\frac{v}{2} \rfloor}", r"2 \mid (u - q)", r"\bar{a}^{(2)}_{cqr}", "W^{(4)}_{k,9 c + 3 i + j + 1}",
                r"\frac{\partial \ell}{\partial a^{(1)}_{c,i,j}}", r"\frac{\partial J}{\partial x_{c,u,v}}", " ", "(", ")",
                r"\cdot", "+", "-", "e^{z^{(4)}_{i}}", "_{k}"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_CONV_PIECES), max_size=12).map("".join))
def test_hostile_conv_formulas_give_a_verdict_or_a_symnet_error(text):
    from symnet import Conv2D, Flatten, MaxPool2D
    net = Network([2, 7, 7], [Conv2D(3, 3, stride=2, padding=1, activation="relu"), MaxPool2D(2, stride=1),
                              Flatten(), Dense(3)], loss="softmax_cross_entropy")
    start = time.monotonic()
    try:
        result = verify(net, None, text, points=2)
    except SymnetError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(result, Verdict)
    assert time.monotonic() - start < 2.0
