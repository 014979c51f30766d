"""Computational-graph walkthrough of a scalar formula (lecture 3, CS231n style).

`walk("a*b + c", {"a": 3, "b": 2, "c": -4})` builds the expression DAG from
the SymPy tree (one node per distinct subexpression, inputs first, then the
operations in topological order), computes every node's value in float64, and
runs reverse accumulation: each node's gradient is the sum over its parents of
(parent's gradient) x (local gradient). Local gradients are SymPy's derivative
of the node's expression with respect to each child, evaluated at the point;
none is typed by hand.

Subtraction and division appear as SymPy represents them: a - b is
a + (-1)*b and a / b is a * b^(-1); the gate labels say so.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

import sympy as sp

from .errors import FormulaError
from .formula import parse_formula


@dataclass
class Node:
    name: str                    # the input's name, or the node's expression as text
    expr: sp.Expr
    value: float = math.nan
    local: dict[str, float] = field(default_factory=dict)   # child name -> d node / d child
    grad: float = 0.0            # d output / d node
    gate: str = ""
    children: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)

    @property
    def is_input(self) -> bool:
        return isinstance(self.expr, sp.Symbol)


# --------------------------------------------------------------------------- --at

_NAME = re.compile(r"[A-Za-z_][A-Za-z_0-9]*\Z")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\Z")


def parse_at(text: str) -> dict[str, float]:
    """'a=3,b=2,c=-4' -> {'a': 3.0, 'b': 2.0, 'c': -4.0}; only plain decimal numbers."""
    if not isinstance(text, str) or not text.strip():
        raise FormulaError("--at: give values as name=number pairs, e.g. a=3,b=2,c=-4")
    values: dict[str, float] = {}
    for item in text.split(","):
        item = item.strip()
        name, eq, number = (part.strip() for part in item.partition("="))
        if not eq or not _NAME.match(name):
            raise FormulaError(f"--at: {item!r} is not name=number (e.g. a=3)")
        if not _NUMBER.match(number):
            raise FormulaError(f"--at: value of {name} is {number!r}, not a decimal number")
        if name in values:
            raise FormulaError(f"--at: {name} is given twice")
        value = float(number)
        if not math.isfinite(value):
            raise FormulaError(f"--at: value of {name} is not finite")
        values[name] = value
    return values


# --------------------------------------------------------------------------- the graph

def _children(expr) -> list:
    """The distinct non-constant subexpressions a node is built from. Containers
    that are not expressions (Piecewise's (expr, cond) pairs, relations) are
    looked through."""
    out = []

    def visit(arg):
        if isinstance(arg, sp.Expr) and not isinstance(arg, sp.Tuple):
            if arg.free_symbols and arg not in out:
                out.append(arg)
        elif isinstance(arg, sp.Basic):
            for a in arg.args:
                visit(a)

    for arg in expr.args:
        visit(arg)
    return out


def _fmt(x) -> str:
    return format(float(x), ".6g")


def _gate(expr, n_children: int) -> str:
    if isinstance(expr, sp.Symbol):
        return "input"
    if isinstance(expr, sp.Add):
        return "add: distributes"
    if isinstance(expr, sp.Mul):
        coeff, _ = expr.as_coeff_mul()
        if n_children == 1 and coeff == -1:
            return "negate: flips sign"
        if n_children == 1:
            return f"scale by {_fmt(coeff)}"
        return "mul: switches"
    if isinstance(expr, sp.Max):
        return "max: routes"
    if isinstance(expr, sp.Min):
        return "min: routes"
    if isinstance(expr, sp.Piecewise):
        return "piecewise: routes"
    if isinstance(expr, sp.exp):
        return "exp"
    if isinstance(expr, sp.Pow):
        if expr.exp == -1:
            return "pow: 1/x (division)"
        if expr.exp == sp.Rational(1, 2):
            return "pow: sqrt"
        return "pow" if expr.exp.free_symbols else f"pow: x^{expr.exp}"
    if isinstance(expr, sp.Function):
        return f"function: {type(expr).__name__}"
    return type(expr).__name__


def _real(value, what: str) -> float:
    try:
        number = complex(sp.N(value, 17))
    except (TypeError, ValueError):
        raise FormulaError(f"{what} is not a number at the given point") from None
    if abs(number.imag) > 1e-12 * max(1.0, abs(number.real)) or not math.isfinite(number.real):
        raise FormulaError(f"{what} is not a finite real number at the given point")
    return float(number.real)


def walk(formula, at: dict[str, float]) -> list[Node]:
    """The nodes of the formula's graph (inputs first, output last) with forward
    values and gradients d output / d node. ``formula``: text, or an expression
    symnet built (graph_chain's outputs with the definitions substituted)."""
    expr = formula if isinstance(formula, sp.Expr) else parse_formula(formula, None)
    names = {s.name for s in expr.free_symbols}
    missing = sorted(names - set(at))
    extra = sorted(set(at) - names)
    if missing or extra:
        parts = []
        if missing:
            parts.append("missing values for " + ", ".join(missing))
        if extra:
            parts.append("values for names not in the formula: " + ", ".join(extra))
        raise FormulaError(f"--at: {'; '.join(parts)} (formula {formula!r})")
    if not expr.free_symbols:
        raise FormulaError(f"formula {formula!r} has no variables")

    # Post-order DFS: every node after its children, each distinct subexpression once.
    order: list = []
    kids: dict = {}

    def visit(e):
        if e in kids:
            return
        kids[e] = [] if isinstance(e, sp.Symbol) else _children(e)
        for c in kids[e]:
            visit(c)
        order.append(e)

    visit(expr)
    inputs = sorted((e for e in order if isinstance(e, sp.Symbol)), key=lambda s: list(at).index(s.name))
    order = inputs + [e for e in order if not isinstance(e, sp.Symbol)]
    name_of = {e: (e.name if isinstance(e, sp.Symbol) else str(e)) for e in order}
    nodes = {e: Node(name_of[e], e, children=[name_of[c] for c in kids[e]]) for e in order}
    for e in order:
        for c in kids[e]:
            nodes[c].parents.append(name_of[e])

    # Forward: each node from its children's values, through its own local expression.
    local_exprs = {}
    for e in order:
        node = nodes[e]
        if isinstance(e, sp.Symbol):
            node.value = float(at[e.name])
            continue
        dummies = {c: sp.Dummy("c%d" % k, real=True) for k, c in enumerate(kids[e])}
        local = e.xreplace(dummies)
        local_exprs[e] = (local, dummies)
        point = {d: sp.Float(nodes[c].value, 17) for c, d in dummies.items()}
        node.value = _real(local.xreplace(point), f"node {node.name}")
        for c, d in dummies.items():
            derivative = sp.diff(local, d)
            node.local[name_of[c]] = _real(derivative.xreplace(point), f"the local gradient of {node.name} "
                                                                       f"with respect to {name_of[c]}")

    # Backward: reverse accumulation from the output.
    nodes[expr].grad = 1.0
    for e in reversed(order):
        node = nodes[e]
        for c in kids[e]:
            nodes[c].grad += node.grad * node.local[name_of[c]]

    for e in order:
        node = nodes[e]
        node.gate = _gate(e, len(kids[e]))
        if len(node.parents) > 1:
            node.gate = "copy: adds" if node.is_input else node.gate + "; copy: adds"
    return [nodes[e] for e in order]


# --------------------------------------------------------------------------- formats

def _ids(nodes: list[Node]) -> dict[str, str]:
    """Short references for the local-gradient column: inputs by name, the
    other nodes by their row number (#4)."""
    return {n.name: (n.name if n.is_input else "#%d" % k) for k, n in enumerate(nodes, 1)}


def _local_text(node: Node, ids: dict[str, str]) -> str:
    return ", ".join(f"{ids[c]}: {_fmt(v)}" for c, v in node.local.items()) or "-"


def format_table(nodes: list[Node]) -> str:
    """A plain-text table: row, node, gate, value, local gradients (by child), gradient."""
    ids = _ids(nodes)
    rows = [("#", "node", "gate", "value", "local gradient", "grad")]
    for k, n in enumerate(nodes, 1):
        rows.append((str(k), n.name, n.gate, _fmt(n.value), _local_text(n, ids), _fmt(n.grad)))
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    right = (0, 3, 5)
    lines = []
    for k, r in enumerate(rows):
        lines.append("  ".join(r[i].rjust(widths[i]) if i in right else r[i].ljust(widths[i])
                               for i in range(6)).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def to_records(nodes: list[Node]) -> list[dict]:
    """JSON-ready dicts: name, expr, gate, value, grad, local, children."""
    return [{"name": n.name, "expr": str(n.expr), "gate": n.gate, "value": float(n.value),
             "grad": float(n.grad), "local": {c: float(v) for c, v in n.local.items()},
             "children": list(n.children)} for n in nodes]


def to_json(nodes: list[Node]) -> str:
    """The nodes as a JSON list of dicts (values and gradients as floats)."""
    return json.dumps(to_records(nodes), indent=2)


def _md_cell(text: str) -> str:
    return text.replace("|", r"\|")


def _tex(node: Node) -> str:
    from .render import latex
    return latex(node.expr)


def _ref_tex(ref: str) -> str:
    return ref.replace("#", r"\#") if ref.startswith("#") else "$%s$" % ref


def to_markdown(nodes: list[Node]) -> str:
    """A Markdown table; local gradients name the child by input name or row number."""
    ids = _ids(nodes)
    lines = ["| # | node | gate | value | local gradient | grad |", "|---:|---|---|---:|---|---:|"]
    for k, n in enumerate(nodes, 1):
        lines.append(f"| {k} | ${_tex(n)}$ | {_md_cell(n.gate)} | {_fmt(n.value)} | "
                     f"{_md_cell(_local_text(n, ids))} | {_fmt(n.grad)} |")
    return "\n".join(lines)


def to_latex(nodes: list[Node]) -> str:
    """A LaTeX tabular of the walkthrough (plain LaTeX, amsmath for the cases of max/relu)."""
    from .render import tex_escape
    ids = _ids(nodes)
    lines = [r"\begin{tabular}{rlllll}", r"\hline",
             r"\# & node & gate & value & local gradient & gradient \\", r"\hline"]
    for k, n in enumerate(nodes, 1):
        local = ", ".join("%s: $%s$" % (_ref_tex(ids[c]), _fmt(v)) for c, v in n.local.items()) or "--"
        lines.append(r"%d & $%s$ & %s & $%s$ & %s & $%s$ \\" % (k, _tex(n), tex_escape(n.gate), _fmt(n.value),
                                                               local, _fmt(n.grad)))
    lines += [r"\hline", r"\end{tabular}"]
    return "\n".join(lines)


GRAPH_FORMATS = ("table", "json", "md", "tex")


def cli_graph(formula: str, at_text: str, fmt: str = "table") -> str:
    """`symnet graph FORMULA --at a=3,b=2 --format table|json|md|tex`: the text to print."""
    if fmt not in GRAPH_FORMATS:
        raise FormulaError(f"format {fmt!r} is not one of {', '.join(GRAPH_FORMATS)}")
    nodes = walk(formula, parse_at(at_text))
    if fmt == "json":
        return to_json(nodes)
    if fmt == "md":
        return to_markdown(nodes)
    if fmt == "tex":
        return to_latex(nodes)
    return format_table(nodes)


def cli_graph_args(args) -> str:
    """`symnet graph OUTPUT... [--let NAME=FORMULA]... [--at ...] [--symbolic] [--format ...]`."""
    from .graph_chain import build, format_symbolic, substituted_output

    fmt = args.format
    lets = list(args.let or [])
    at = parse_at(args.at) if args.at else None
    if fmt in ("png", "svg"):
        from .graph_picture import write_picture
        if at is None:
            raise FormulaError("--format png/svg: give the point with --at, e.g. --at x=3")
        chain = build(lets, args.formula)
        graphs = [(o, walk(substituted_output(chain, o), at)) for o in chain.outputs]
        names = {substituted_output(chain, v): v for v in chain.definitions}    # y1 labels x1 + x2**2
        path = write_picture(graphs, fmt, args.output, names)
        return f"wrote {path}"
    if args.symbolic or lets or len(args.formula) > 1:
        chain = build(lets, args.formula)
        if args.symbolic or at is None:
            return format_symbolic(chain, at)
        parts = []
        for o in chain.outputs:
            text = cli_graph(str(substituted_output(chain, o)), args.at, fmt)
            parts.append(f"{o} = {substituted_output(chain, o)}\n{text}" if fmt == "table" else text)
        return "\n\n".join(parts)
    if at is None:
        raise FormulaError("--at: give the point, e.g. --at a=3,b=2 (or --symbolic for formulas)")
    return cli_graph(args.formula[0], args.at, fmt)


__all__ = ["Node", "walk", "parse_at", "format_table", "to_json", "to_records", "to_markdown",
           "to_latex", "cli_graph"]
