"""symnet graph with --let definitions, several outputs, --symbolic, and the picture."""
import sys

import pytest
import sympy as sp

from symnet.cli import main
from symnet.errors import FormulaError
from symnet.graph import walk
from symnet.graph_chain import build, format_symbolic, substituted_output

S = {n: sp.Symbol(n, real=True) for n in ("x", "y", "x1", "x2", "x3", "y1", "y2")}


def _same(a, b):
    return sp.simplify(a - b) == 0


def test_lecture_example_4x_both_routes():
    chain = build(["y = x^2"], ["z = 2y + 1"])
    x, y = S["x"], S["y"]
    assert chain.local[("z", "y")] == 2 and _same(chain.local[("y", "x")], 2 * x)
    assert [(g, d) for g, d, _ in chain.backward[("z", "x")]] == [(2, 2 * x)]
    assert _same(chain.grad[("z", "x")], 4 * x) and _same(chain.substituted[("z", "x")], 4 * x)
    text = format_symbolic(chain, {"x": 3.0})
    assert "dz/dx = (2)(2*x) = 4*x" in text          # chain rule route
    assert "substitution route" in text and "grad z = (12)" in text


def test_lecture_multivariate_chain_rule():
    chain = build(["y1 = x1 + x2^2", "y2 = x2 + x3^2"], ["z = y1^2 + y2^2"])
    x1, x2, x3, y1, y2 = (S[k] for k in ("x1", "x2", "x3", "y1", "y2"))
    grad = [chain.grad[("z", k)] for k in ("x1", "x2", "x3")]
    for got, want in zip(grad, (2 * y1, 4 * y1 * x2 + 2 * y2, 4 * y2 * x3)):
        assert _same(got, want)
    # two parents of x2: (dz/dy1)(dy1/dx2) + (dz/dy2)(dy2/dx2)
    terms = {p: (g, d) for g, d, p in chain.backward[("z", "x2")]}
    assert terms == {"y1": (2 * y1, 2 * x2), "y2": (2 * y2, 1)}
    text = format_symbolic(chain)
    assert "dz/dx2 = (2*y1)(2*x2) + (2*y2)(1) = 4*x2*y1 + 2*y2" in text
    assert "(2*y1, 4*x2*y1 + 2*y2, 4*x3*y2)" in text
    # the substituted gradient is the derivative of the whole formula
    full = (x1 + x2**2) ** 2 + (x2 + x3**2) ** 2
    assert _same(chain.substituted[("z", "x2")], sp.diff(full, x2))


def test_jacobian_of_vector_outputs_matches_sympy():
    chain = build(["y = x1*x2"], ["u = y + x1", "v = sin(y)"])
    x1, x2 = S["x1"], S["x2"]
    want = sp.Matrix([x1 * x2 + x1, sp.sin(x1 * x2)]).jacobian([x1, x2])
    assert sp.simplify(chain.jacobian(in_inputs=True) - want) == sp.zeros(2, 2)
    text = format_symbolic(chain, {"x1": 1, "x2": 2})
    assert "Jacobian d(u, v)/d(x1, x2)" in text and "[x2*cos(y), x1*cos(y)]" in text


def test_errors():
    with pytest.raises(FormulaError, match="before it is defined"):
        build(["a = b + x", "b = x^2"], ["z = a"])
    with pytest.raises(FormulaError, match="name = formula"):
        build(["x^2"], ["z = x"])
    with pytest.raises(FormulaError, match="defined twice"):
        build(["y = x", "y = x^2"], ["z = y"])
    with pytest.raises(FormulaError, match="missing values for x2"):
        format_symbolic(build([], ["z = x1*x2"]), {"x1": 1.0})


def test_cli_symbolic_and_numeric(capsys):
    assert main(["graph", "--let", "y = x^2", "z = 2*y + 1", "--symbolic"]) == 0
    assert "dz/dx = (2)(2*x) = 4*x" in capsys.readouterr().out
    assert main(["graph", "--let", "y = x^2", "z = 2*y + 1", "--at", "x=3"]) == 0
    out = capsys.readouterr().out
    assert "z = 2*x**2 + 1" in out and "19" in out
    assert main(["graph", "a*b + c"]) == 2
    assert "--at" in capsys.readouterr().err


def test_picture_edges_carry_values_and_gradients(tmp_path):
    pytest.importorskip("graphviz")
    import shutil
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot program is not installed")
    out = tmp_path / "g.svg"
    assert main(["graph", "--let", "y1 = x1 + x2^2", "--let", "y2 = x2 + x3^2", "z = y1^2 + y2^2",
                 "--at", "x1=1,x2=2,x3=-1", "--format", "svg", "-o", str(out)]) == 0
    svg = out.read_text()
    chain = build(["y1 = x1 + x2^2", "y2 = x2 + x3^2"], ["z = y1^2 + y2^2"])
    nodes = {n.name: n for n in walk(substituted_output(chain, "z"), {"x1": 1, "x2": 2, "x3": -1})}
    assert nodes["x2"].grad == 46
    assert "value 2, grad 46" in svg and "value 34, grad 1" in svg
    assert "y1 = x1 + x2**2" in svg and "y2 = x2 + x3**2" in svg      # --let names label their nodes
    # the two edges out of x2 carry 40 and 6 back (their sum is x2's gradient)
    assert ">40<" in svg and ">6<" in svg
    png = tmp_path / "g.png"
    assert main(["graph", "a*b + c", "--at", "a=3,b=2,c=-4", "--format", "png", "-o", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_missing_graphviz_names_the_package(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "graphviz", None)
    assert main(["graph", "a*b", "--at", "a=1,b=2", "--format", "png"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'graphviz'" in err and "pip install graphviz" in err
