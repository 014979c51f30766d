"""Computational-graph walkthrough: values and gradients of the lectures'
examples, each gradient also checked against central finite differences."""
import json
import math

import pytest
import sympy as sp

from symnet.errors import FormulaError, SymnetError
from symnet.formula import parse_formula
from symnet.graph import cli_graph, format_table, parse_at, to_json, to_latex, to_markdown, walk


def _by_name(nodes):
    return {n.name: n for n in nodes}


def _central_difference(formula, at, name, h=1e-6):
    expr = parse_formula(formula, None)
    symbols = {s.name: s for s in expr.free_symbols}

    def f(point):
        return float(expr.xreplace({symbols[k]: sp.Float(v, 30) for k, v in point.items()}).evalf(30))

    up, down = dict(at), dict(at)
    up[name] += h
    down[name] -= h
    return (f(up) - f(down)) / (2 * h)


CASES = [
    ("a*b + c", {"a": 3, "b": 2, "c": -4}, 2.0, {"a": 2.0, "b": 3.0, "c": 1.0}, 9),
    ("(x+y)*z", {"x": -2, "y": 5, "z": -4}, -12.0, {"x": -4.0, "y": -4.0, "z": 3.0}, 9),
    ("1/(1+exp(-(w0*x0+w1*x1+w2)))", {"w0": 2, "x0": -1, "w1": -3, "x1": -2, "w2": -3}, 0.73,
     {"w0": -0.20, "x0": 0.39, "w1": -0.39, "x1": -0.59, "w2": 0.20}, 2),
    ("max(x, y)", {"x": 3, "y": 2}, 3.0, {"x": 1.0, "y": 0.0}, 9),
    ("x*x", {"x": 3}, 9.0, {"x": 6.0}, 9),
]


@pytest.mark.parametrize("formula, at, value, grads, places", CASES)
def test_lecture_examples(formula, at, value, grads, places):
    nodes = walk(formula, at)
    assert round(nodes[-1].value, places) == pytest.approx(value)
    assert nodes[-1].grad == 1.0
    named = _by_name(nodes)
    for name, grad in grads.items():
        assert round(named[name].grad, places) == pytest.approx(grad), name
        assert named[name].grad == pytest.approx(_central_difference(formula, at, name), abs=1e-6)


def test_inputs_first_then_topological_order():
    nodes = walk("(x+y)*z", {"x": -2, "y": 5, "z": -4})
    assert [n.name for n in nodes[:3]] == ["x", "y", "z"]
    position = {n.name: k for k, n in enumerate(nodes)}
    for n in nodes:
        for child in n.children:
            assert position[child] < position[n.name]
    assert len({n.name for n in nodes}) == len(nodes)        # one node per distinct subexpression


def test_gate_patterns():
    named = _by_name(walk("a*b + c", {"a": 3, "b": 2, "c": -4}))
    assert named["a*b + c"].gate == "add: distributes"
    assert named["a*b"].gate == "mul: switches"
    # mul switches: the local gradient of a is b's value and vice versa
    assert named["a*b"].local == {"a": 2.0, "b": 3.0}
    routes = _by_name(walk("max(x, y)", {"x": 3, "y": 2}))
    assert routes["Max(x, y)"].gate == "max: routes"
    copies = _by_name(walk("x*y + x", {"x": 3, "y": 2}))
    assert copies["x"].gate == "copy: adds"
    assert copies["x"].grad == pytest.approx(3.0)            # y + 1: the two paths add


def test_subtraction_division_and_functions_against_finite_differences():
    formula, at = "tanh(a - b/c) + log(c)*sqrt(a) - relu(b - 4)", {"a": 1.5, "b": 0.5, "c": 2.0}
    named = _by_name(walk(formula, at))
    for name in at:
        assert named[name].grad == pytest.approx(_central_difference(formula, at, name), abs=1e-6)


def test_parse_at():
    assert parse_at("a=3,b=2,c=-4") == {"a": 3.0, "b": 2.0, "c": -4.0}
    assert parse_at(" x = 1.5e-3 , y=.5") == {"x": 0.0015, "y": 0.5}
    for bad in ("a=3,b", "a=nan", "a=inf", "a=1,a=2", "a=__import__('os')", "3=1", ""):
        with pytest.raises(FormulaError):
            parse_at(bad)


def test_missing_and_extra_values_are_named():
    with pytest.raises(FormulaError, match="missing values for b"):
        walk("a*b", {"a": 1.0})
    with pytest.raises(FormulaError, match="not in the formula: c"):
        walk("a*b", {"a": 1.0, "b": 2.0, "c": 3.0})
    with pytest.raises(FormulaError):
        walk("log(a)", {"a": -1.0})
    with pytest.raises(SymnetError):
        walk("__import__('os')", {})


def test_formats():
    nodes = walk("a*b + c", {"a": 3, "b": 2, "c": -4})
    table = format_table(nodes)
    assert "add: distributes" in table and "a*b + c" in table
    records = json.loads(to_json(nodes))
    assert [r["name"] for r in records] == ["a", "b", "c", "a*b", "a*b + c"]
    assert all(isinstance(r["value"], float) and isinstance(r["grad"], float) for r in records)
    assert records[0]["grad"] == 2.0
    md = to_markdown(nodes)
    assert md.splitlines()[0].startswith("| # | node")
    assert r"\begin{tabular}" in to_latex(nodes)


def test_cli_graph():
    out = cli_graph("a*b + c", "a=3,b=2,c=-4", "json")
    assert math.isclose(json.loads(out)[-1]["value"], 2.0)
    assert "mul: switches" in cli_graph("a*b + c", "a=3,b=2,c=-4", "table")
    with pytest.raises(FormulaError):
        cli_graph("a*b + c", "a=3,b=2,c=-4", "html")
