"""Answer notes: each common mistake, built into a formula, is named in v.note
and in the CLI output; an unexplained difference says so and keeps the
counterexample."""
import pytest

import symnet
from symnet.verify import verify

NOTES = [
    ("W2", r"dW2 = -delta2 a1^T", "sign is flipped"),
    ("W2", r"dW^{[2]} = \frac{1}{m^2} dZ^{[2]} A^{[1]T}", "1/m times"),
    ("W2", r"dW^{[2]} = dZ^{[2]} A^{[1]T}", "m times symnet's value (per-example against batch average"),
    ("W2", r"dW2 = 2 delta2 a1^T", "2 times"),
    ("W2", r"dW2 = \frac{1}{2} delta2 a1^T", "1/2 times"),
    ("delta1", r"delta1 = W2^T delta2", "g'(z^{(1)}) is missing"),
    ("delta1", r"delta1 = W2^T delta2 * g'(z1) * g'(z1)", "extra factor g'(z^{(1)})"),
    ("W2", r"dW2 = a1 delta2^T", "transpose"),
    ("W2", r"dW2 = a1^T delta2", "wrong order"),
    ("W2", r"dW2 = delta2 z1^T", "z^{(1)} is used where a^{(1)} belongs"),
    ("delta1", r"delta1 = W2^T delta2 * g'(a1)", "a^{(1)} is used where z^{(1)} belongs"),
    ("delta1", r"delta1 = W3^T delta2 * g'(z1)", "off-by-one layer: W^{(3)} is used where W^{(2)} belongs"),
    ("b2", r"db^{[2]} = \frac{1}{m} dZ^{[2]}", "sum over the examples is missing"),
]


@pytest.fixture(scope="module")
def tiny():
    return symnet.load(__import__("pathlib").Path(__file__).parent.parent / "examples" / "tiny.toml")


@pytest.fixture(scope="module")
def wide_out():
    return symnet.Network([3], [symnet.Dense(4, activation="tanh"), symnet.Dense(3)], loss="mse", name="three")


@pytest.mark.parametrize("target,formula,words", NOTES)
def test_each_mistake_is_named(tiny, target, formula, words):
    v = verify(tiny, target, formula)
    assert v.status == "not equal" and words in v.note, v.report()
    assert f"note:    {v.note}" in v.report()


def test_factor_n_of_the_mean_over_outputs(wide_out):
    # mse averages over the n outputs: delta = (2/n)(a - y); forgetting 1/n leaves a factor n
    assert verify(wide_out, "delta2", r"\delta^{(2)} = \frac{2}{3} (a^{(2)} - y)")
    v = verify(wide_out, "delta2", r"\delta^{(2)} = 2 (a^{(2)} - y)")
    assert v.status == "not equal" and "n (n = 3 outputs)" in v.note, v.report()


def test_missing_sum_over_positions():
    net = symnet.Network([1, 5, 5], [symnet.Conv2D(2, 3, activation="tanh"), symnet.Flatten(), symnet.Dense(2)],
                         loss="mse", name="c")
    v = verify(net, "b1", r"db^{(1)}_f = \delta^{(1)}_{f,i,j}")
    assert v.status == "not equal" and "sum over i, j is missing" in v.note, v.report()


def test_unexplained_difference_keeps_the_counterexample(tiny):
    v = verify(tiny, "W2", r"dW2 = delta2 a1^T + 1")
    assert v.status == "not equal" and v.counterexample is not None
    assert v.note.startswith("no common mistake explains the difference")


def test_equal_verdicts_have_no_note(tiny):
    assert verify(tiny, "W2", r"dW2 = delta2 a1^T").note == ""


def test_cli_prints_the_note(tmp_path, capsys):
    from symnet.cli import main
    spec = __import__("pathlib").Path(__file__).parent.parent / "examples" / "tiny.toml"
    assert main(["verify", str(spec), "--formula", "dW2 = -delta2 a1^T"]) == 1
    assert "note:    the sign is flipped" in capsys.readouterr().out
