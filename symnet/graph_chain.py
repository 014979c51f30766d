"""The graph walkthrough in symbols: intermediate definitions, several outputs,
local and backward gradients as formulas, the gradient vector and the Jacobian
(``symnet graph --let 'y = x^2' 'z = 2*y + 1' --symbolic``).

Definitions are named formulas of the inputs and of earlier names. Each local
gradient d v / d c is SymPy's derivative of v's formula with respect to one of
the names it uses; each backward gradient d out / d c is the lecture's
multivariate chain rule, the sum over c's parents p of (d out / d p)(d p / d c),
shown as that sum of products and then multiplied out. The other route,
substituting every definition and differentiating the result, is shown beside
it and must agree.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import sympy as sp

from .errors import FormulaError
from .formula import parse_formula

_NAME = re.compile(r"\s*([A-Za-z_][A-Za-z_0-9]*)\s*=(?!=)(.*)\Z", re.S)


def parse_definition(text: str, what: str) -> tuple[str, sp.Expr]:
    """'y1 = x1 + x2^2' -> ('y1', x1 + x2**2); a bare formula gets no name (None)."""
    m = _NAME.match(text)
    if m is None:
        return None, parse_formula(text, None)
    name, rhs = m.group(1), m.group(2)
    if not rhs.strip():
        raise FormulaError(f"{what} {text!r}: nothing after '='")
    try:
        return name, parse_formula(rhs, None)
    except FormulaError as e:
        raise FormulaError(f"{what} {name}: {e}") from None


@dataclass
class Chain:
    definitions: dict            # name -> formula (SymPy) in inputs and earlier names, in order
    outputs: list                # output names (a subset of definitions' keys, the last ones)
    inputs: list                 # input symbols, sorted by name
    local: dict = field(default_factory=dict)      # (v, c) -> d v / d c
    backward: dict = field(default_factory=dict)   # (out, c) -> list of (d out / d p, d p / d c, p)
    grad: dict = field(default_factory=dict)       # (out, c) -> d out / d c in intermediate names
    substituted: dict = field(default_factory=dict)  # (out, x) -> d out / d x in inputs only

    def symbol(self, name):
        return sp.Symbol(name, real=True)

    def jacobian(self, in_inputs: bool = False) -> sp.Matrix:
        """Rows outputs, columns inputs: in intermediate names, or in the inputs only."""
        table = self.substituted if in_inputs else self.grad
        return sp.Matrix([[table[(o, x.name)] for x in self.inputs] for o in self.outputs])


def build(lets: list[str], outputs: list[str]) -> Chain:
    """The chain of ``--let`` definitions and output formulas (bare ones are named
    z, or z1, z2, ... with several outputs)."""
    if not outputs:
        raise FormulaError("graph: give at least one output formula, e.g. 'z = y^2'")
    defs: dict[str, sp.Expr] = {}
    for text in lets:
        name, expr = parse_definition(text, "--let")
        if name is None:
            raise FormulaError(f"--let {text!r}: write it as name = formula, e.g. y = x^2")
        if name in defs:
            raise FormulaError(f"--let {name}: defined twice")
        defs[name] = expr
    out_names = []
    for k, text in enumerate(outputs, 1):
        name, expr = parse_definition(text, "output")
        name = name or ("z" if len(outputs) == 1 else f"z{k}")
        if name in defs:
            raise FormulaError(f"output {name}: the name is already defined")
        defs[name] = expr
        out_names.append(name)
    # A definition may use only inputs and earlier names: the graph has no cycles.
    seen = set()
    for name, expr in defs.items():
        later = sorted(s.name for s in expr.free_symbols if s.name in defs and s.name not in seen)
        if later:
            raise FormulaError(f"{name} uses {', '.join(later)} before it is defined (define it first, "
                               "or the graph has a cycle)")
        seen.add(name)
    inputs = sorted({s for e in defs.values() for s in e.free_symbols if s.name not in defs},
                    key=lambda s: s.name)
    if not inputs:
        raise FormulaError("graph: the formulas have no input variables")
    chain = Chain(defs, out_names, inputs)
    _differentiate(chain)
    return chain


def _differentiate(chain: Chain) -> None:
    defs = chain.definitions
    names = list(defs)
    for v, expr in defs.items():
        for c in sorted(expr.free_symbols, key=lambda s: s.name):
            chain.local[(v, c.name)] = sp.diff(expr, c)
    full = {}
    for v, expr in defs.items():        # every definition in the inputs only
        full[v] = expr.xreplace({chain.symbol(n): full[n] for n in full})
    for out in chain.outputs:
        grads = {out: sp.Integer(1)}
        # Reverse order: every parent's gradient is complete before its children use it.
        for c in list(reversed(names[: names.index(out)])) + [x.name for x in chain.inputs]:
            parents = [p for p in names[: names.index(out) + 1] if (p, c) in chain.local and p in grads]
            if not parents:
                continue
            terms = [(grads[p], chain.local[(p, c)], p) for p in parents]
            chain.backward[(out, c)] = terms
            grads[c] = sp.expand_mul(sp.Add(*[g * d for g, d, _ in terms]))
        for x in chain.inputs:
            chain.grad[(out, x.name)] = grads.get(x.name, sp.Integer(0))
            chain.substituted[(out, x.name)] = sp.expand_mul(sp.diff(full[out], x))
            check = sp.simplify(chain.grad[(out, x.name)].xreplace(
                {chain.symbol(n): full[n] for n in full}) - chain.substituted[(out, x.name)])
            if check != 0:   # pragma: no cover - the two routes are the same mathematics
                raise FormulaError(f"d{out}/d{x.name}: chain rule and substitution disagree ({check})")
        for c in names[: names.index(out)]:
            if c in grads:
                chain.grad[(out, c)] = grads[c]


def _s(expr) -> str:
    """SymPy's text, with ** as ^ as the lectures write powers."""
    return sp.sstr(expr).replace("**", "^")


def _factor(expr) -> str:
    return f"({_s(expr)})"


def format_symbolic(chain: Chain, at: dict | None = None) -> str:
    """The walkthrough as text: definitions, local gradients, backward gradients
    by the chain rule, the substitution route, gradient vector / Jacobian."""
    lines = ["definitions:"]
    lines += [f"  {v} = {_s(e)}" for v, e in chain.definitions.items()]
    lines.append("local gradients (each node with respect to what it uses):")
    lines += [f"  d{v}/d{c} = {_s(d)}" for (v, c), d in chain.local.items()]
    for out in chain.outputs:
        lines.append(f"backward gradients of {out} (chain rule: sum over parents of "
                     f"d{out}/dparent * dparent/dnode):")
        for (o, c), terms in chain.backward.items():
            if o != out:
                continue
            products = " + ".join(f"{_factor(g)}{_factor(d)}" for g, d, _ in terms)
            via = ", ".join(p for _, _, p in terms)
            lines.append(f"  d{out}/d{c} = {products} = {_s(chain.grad[(out, c)])}    (via {via})")
        lines.append(f"substitution route ({out} written in the inputs, then differentiated):")
        for x in chain.inputs:
            lines.append(f"  d{out}/d{x.name} = {_s(chain.substituted[(out, x.name)])}")
    xs = ", ".join(x.name for x in chain.inputs)
    if len(chain.outputs) == 1:
        out = chain.outputs[0]
        lines.append(f"gradient vector grad {out} = (d{out}/d{xs.replace(', ', f', d{out}/d')}):")
        lines.append("  (" + ", ".join(_s(chain.grad[(out, x.name)]) for x in chain.inputs) + ")")
        lines.append("  = (" + ", ".join(_s(chain.substituted[(out, x.name)]) for x in chain.inputs) + ")")
    else:
        lines.append(f"Jacobian d({', '.join(chain.outputs)})/d({xs}) (rows outputs, columns inputs):")
        for row in chain.jacobian().tolist():
            lines.append("  [" + ", ".join(_s(v) for v in row) + "]")
        lines.append("in the inputs only:")
        for row in chain.jacobian(True).tolist():
            lines.append("  [" + ", ".join(_s(v) for v in row) + "]")
    if at:
        values = _values(chain, at)
        lines.append("at " + ", ".join(f"{k}={v:g}" for k, v in at.items()) + ":")
        lines += [f"  {v} = {values[v]:.6g}" for v in chain.definitions]
        for out in chain.outputs:
            lines.append("  grad " + out + " = (" + ", ".join(
                f"{float(chain.substituted[(out, x.name)].xreplace(_point(at))):.6g}" for x in chain.inputs) + ")")
    return "\n".join(lines)


def _point(at: dict) -> dict:
    return {sp.Symbol(k, real=True): sp.Float(v, 17) for k, v in at.items()}


def _values(chain: Chain, at: dict) -> dict:
    names = {x.name for x in chain.inputs}
    missing, extra = sorted(names - set(at)), sorted(set(at) - names)
    if missing or extra:
        raise FormulaError("--at: " + "; ".join(
            ([f"missing values for {', '.join(missing)}"] if missing else [])
            + ([f"values for names that are not inputs: {', '.join(extra)}"] if extra else [])))
    point = _point(at)
    values = {}
    for v, e in chain.definitions.items():
        val = e.xreplace(point).evalf()
        if not val.is_real or not val.is_finite:
            raise FormulaError(f"{v} is not a finite real number at the given point")
        values[v] = float(val)
        point[sp.Symbol(v, real=True)] = sp.Float(values[v], 17)
    return values


def substituted_output(chain: Chain, out: str) -> sp.Expr:
    """``out`` written in the inputs only (for the numeric walkthrough and the picture)."""
    full = {}
    for v, expr in chain.definitions.items():
        full[v] = expr.xreplace({chain.symbol(n): full[n] for n in full})
    return full[out]
