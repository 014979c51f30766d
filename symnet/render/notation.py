"""Textbook notation by construction: rules on SymPy expressions (never string
edits) that turn what SymPy returns into what a lecture writes.

    Heaviside(u)             -> 1[u > 0]         (ReLU' at 0 is 0, as in PyTorch)
    Heaviside(u, 1)          -> 1[u >= 0]        (a tie counts: max pooling's first maximum)
    KroneckerDelta(i, r)     -> 1[i = r]         (no second delta beside the error delta)
    Piecewise((v, c), (w, True)) -> v 1[c] + w 1[not c]   (no cases blocks, no Piecewise)
    (2a - 2y)/n              -> 2(a - y)/n       (numeric content of a sum pulled out)
    index (u - m)/2          -> one fraction     (not u/2 - m/2)

The printer (printer.py) prints `Indicator` as \\mathbb{1}[...] with its
conditions joined by commas (0 <= e and e <= t as 0 <= e <= t), and
Eq(Mod(e, s), 0) as "s divides e". `textbook(expr)` applies every rule.
"""
from __future__ import annotations

import sympy as sp


class Indicator(sp.Function):
    """1[cond]: 1 where the condition holds, 0 elsewhere (printing only)."""
    nargs = 1
    is_real = True
    is_nonnegative = True

    @classmethod
    def eval(cls, cond):
        if cond is sp.true:
            return sp.S.One
        if cond is sp.false:
            return sp.S.Zero
        return None


def _heaviside(expr):
    u = expr.args[0]
    at_zero = expr.args[1] if len(expr.args) > 1 else sp.S.Zero
    return Indicator(sp.Ge(u, 0, evaluate=False) if at_zero == 1 else sp.Gt(u, 0, evaluate=False))


def _piecewise(expr):
    """Piecewise((v1, c1), (v2, c2), ..., (vk, True)) as v1 1[c1] + v2 1[not c1, c2] + ..."""
    total, before = sp.S.Zero, []
    for value, cond in expr.args:
        guard = sp.And(*[sp.Not(c) for c in before], cond) if before else cond
        guard = sp.simplify_logic(guard) if guard.has(sp.Not) else guard
        if value != 0:
            total += value * Indicator(guard)
        before.append(cond)
    return total


def _kronecker(expr):
    i, j = expr.args
    return Indicator(sp.Eq(i, j, evaluate=False))


def _pull_content(expr):
    """(2a - 2y) -> 2 (a - y), unevaluated, when every term shares the number."""
    content, prim = expr.primitive()
    if content.is_Integer and content > 1 and prim.is_Add:
        return sp.Mul(content, prim, evaluate=False)
    return expr


def _one_fraction(index):
    together = sp.together(index)
    return together if together != index and sp.count_ops(together) <= sp.count_ops(index) + 1 else index


def _sides(rel):
    """u - v > 0 -> u > v: positive terms on the left, the rest on the right."""
    lhs, rhs = rel.args
    if rhs == 0 and isinstance(lhs, sp.Add):
        neg = [t for t in lhs.args if t.could_extract_minus_sign()]
        pos = [t for t in lhs.args if not t.could_extract_minus_sign()]
        if neg and pos:
            return rel.func(sp.Add(*pos), -sp.Add(*neg), evaluate=False)
    return rel


def _merge_indicators(mul):
    """1[c1] 1[c2] -> 1[c1, c2]: one indicator per product."""
    inds = [f for f in mul.args if isinstance(f, Indicator)]
    if len(inds) < 2:
        return mul
    rest = [f for f in mul.args if not isinstance(f, Indicator)]
    return sp.Mul(*rest, Indicator(sp.And(*[f.args[0] for f in inds], evaluate=False)))


def textbook(expr):
    """Apply every rule; strings (LaTeX already) pass through."""
    if not isinstance(expr, sp.Basic):
        return expr
    expr = expr.replace(lambda e: isinstance(e, sp.Heaviside), _heaviside)
    expr = expr.replace(lambda e: isinstance(e, sp.KroneckerDelta), _kronecker)
    expr = expr.replace(lambda e: isinstance(e, sp.Piecewise), _piecewise)
    expr = expr.replace(lambda e: isinstance(e, sp.Indexed),
                        lambda e: e.base[tuple(_one_fraction(i) for i in e.indices)])
    # a single comparison reads u > v; bounds inside a conjunction stay chains (printer)
    expr = expr.replace(lambda e: isinstance(e, Indicator) and isinstance(e.args[0], (sp.Gt, sp.Ge, sp.Lt, sp.Le)),
                        lambda e: Indicator(_sides(e.args[0])))
    expr = expr.replace(lambda e: isinstance(e, sp.Mul), _merge_indicators)
    expr = expr.replace(lambda e: isinstance(e, sp.Add), _pull_content)
    return expr


__all__ = ["Indicator", "textbook"]
