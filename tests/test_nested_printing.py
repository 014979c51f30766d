"""Nested stable forms (sigmoid, softplus, sinc, small powers) print each argument once:
a kernel's text grows linearly with the nesting depth of a custom activation, and the
generated functions' values and SymPy-derived derivatives match float64 references and
central differences, finite at +-1000 in float32 and float64.

Only the small element-wise functions of the generated modules are called here (each
compiles in a fraction of a second); whole-network gradients of nested activations are
checked in tests/test_codegen.py (case "nested")."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from symnet import Dense, Network
from symnet.activations import X, make_activation
from symnet.codegen import generate
from symnet.numba_printer import NumbaPrinter, numba_code
from symnet.numeric import lambdify

# One level of nesting each; "{}" is the formula inside.
LEVELS = {
    "sigmoid": "sigmoid({})",
    "softplus": "softplus({})",
    "sinc": "sinc({})",
    "tanh_log_exp": "tanh(log(1+exp({})))",
    "cube": "(1+({})^3)",
    "sigmoid_softplus": "sigmoid(2*softplus({}) - 1)",
}


def nest(level: str, depth: int) -> str:
    formula = "x"
    for _ in range(depth):
        formula = level.format(formula)
    return formula


def printed_size(formula: str) -> int:
    """Characters of the kernel text of g and g' (as print_function prints them)."""
    act = make_activation(formula)
    printer = NumbaPrinter({"dtype": "float32"})
    blocks = [printer.print_block(e) for e in (act.expr, act.derivative)]
    return sum(len("\n".join(b.lines)) + len(b.result) for b in blocks)


@pytest.mark.parametrize("level", LEVELS.values(), ids=LEVELS.keys())
def test_kernel_text_grows_linearly_with_nesting(level):
    sizes = {d: printed_size(nest(level, d)) for d in (2, 4, 8, 16)}
    # linear: the same text per level from depth 2 to 4, 4 to 8 and 8 to 16 (where each level
    # printed its argument 4 times, the text per level grew 16x, then 256x)
    per_level = [(sizes[2 * d] - sizes[d]) / d for d in (2, 4, 8)]
    assert 0 < min(per_level) and max(per_level) <= 1.2 * min(per_level), sizes
    assert sizes[16] < 12_000, sizes


def test_the_size_measure_sees_repeated_arguments():
    """Printed without temporaries (numba_code, one expression), nesting multiplies the text:
    the bound above is a real check."""
    one = {d: len(numba_code(make_activation(nest(LEVELS["sigmoid"], d)).expr)) for d in (2, 3, 4)}
    assert (one[4] - one[3]) > 1.2 * (one[3] - one[2]), one


def test_repeated_argument_is_a_temporary_evaluated_once():
    printer = NumbaPrinter({"dtype": "float64"})
    block = printer.print_block(make_activation("sigmoid(sigmoid(softplus(sinc(x^2))))").expr)
    # x^2 for sinc, sinc for softplus, softplus for the inner sigmoid, the inner sigmoid for the outer one
    assert [line.split(" = ")[0] for line in block.lines] == ["u0", "u1", "u2", "u3"]
    assert block.lines[0] == "u0 = (x*x)"
    assert block.result.count("u3") == 4 and "u2" not in block.result
    # a symbol stays inline: nothing to evaluate
    assert printer.print_block(make_activation("sigmoid").expr).lines == []


# Custom nested activations and symnet's stable built-ins, one per layer.
FORMULAS = [
    nest(LEVELS["sigmoid"], 5),
    nest(LEVELS["tanh_log_exp"], 8),
    nest("log(1+exp({}))", 3),          # SymPy folds it into log(3+exp(x)): softplus(x - log 3) + log 3
    nest(LEVELS["sinc"], 3),
    nest(LEVELS["sigmoid_softplus"], 4),
    "x*sigmoid(softplus(x)^2)",
    "sigmoid", "softplus", "log_sigmoid", "swish", "mish",
]


def _functions(mod) -> dict[str, tuple]:
    """layer description -> (g, g') of a generated module, read from the functions' labels."""
    text = Path(mod.path).read_text()
    found = {}
    for m in re.finditer(r"\n# layer \d+ \(dense\): (the derivative of )?activation (.*); \d+ ops\n@njit\(.*\)\n"
                         r"def (\w+)\(", text):
        found.setdefault(m[2], {})["dg" if m[1] else "g"] = getattr(mod, m[3])
    return {k: (v["g"], v["dg"]) for k, v in found.items() if "dg" in v}   # the output layer's identity has no g' here


@pytest.fixture(scope="module")
def modules(kernel_dir):
    built = {}
    for dtype in ("float64", "float32"):
        net = Network(1, [Dense(1, f) for f in FORMULAS] + [Dense(1)], name=f"nested_{dtype[-2:]}", dtype=dtype)
        built[dtype] = _functions(generate(net, kernel_dir))
        assert len(built[dtype]) == len(FORMULAS)
    return built


def _key(formula):
    act = make_activation(formula)
    return act.describe(), act


@pytest.mark.parametrize("formula", FORMULAS)
def test_values_and_derivatives_match_float64_references(modules, formula):
    key, act = _key(formula)
    g, dg = modules["float64"][key]
    reference = lambdify(X, act.expr)             # scipy's expit/logaddexp, not the kernel printer
    h = 1e-5
    for x in np.linspace(-6.0, 6.0, 48):      # not 0: SymPy's sinc'(x) = cos(x)/x - sin(x)/x^2 is 0/0 there
        a = g(x)
        assert a == pytest.approx(float(reference(x)), rel=1e-12, abs=1e-14), x
        central = (g(x + h) - g(x - h)) / (2 * h)
        assert dg(x, a) == pytest.approx(central, rel=1e-6, abs=1e-9), x


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("formula", FORMULAS)
def test_stable_forms_are_finite_at_extreme_inputs(modules, formula, dtype):
    key, act = _key(formula)
    g, dg = modules[dtype][key]
    reference = lambdify(X, act.expr)
    for value in (-1000.0, -100.0, 100.0, 1000.0):
        x = np.dtype(dtype).type(value)
        a = g(x)
        d = dg(x, x.dtype.type(a))
        assert np.isfinite(a) and np.isfinite(d), (value, a, d)
        assert float(a) == pytest.approx(float(reference(value)), rel=1e-5, abs=1e-6), value
    for f in (g, dg):   # float32 kernels compute in float32 (Numba returns Python floats, so ask its types)
        assert {str(s.return_type) for s in f.nopython_signatures} == {dtype}, f
