"""Inverted dropout, derived like every layer: the forward map in training is
a_i = xi_i a_i^(l-1) / (1 - rho) with the mask xi_i in {0, 1} (1 with probability 1 - rho),
the rate rho (not p: p is the softmax output),
and SymPy differentiates it for the backward step. At evaluation a = a^(l-1).
"""
from __future__ import annotations

import sympy as sp

from .core import I, Step
from .notation import dim, indexed

MASK = sp.IndexedBase(r"\xi", real=True)     # not m: m is the batch size
RATE = sp.Symbol(r"\rho", positive=True)     # the document keeps the rate a symbol: 1/(1 - rho), not 10/7


def _forward_expr(placed):
    return MASK[I] * indexed("a", placed.position - 1)[I] / (1 - RATE)


def dropout_forward(placed, ctx):
    l = placed.position
    return [Step(indexed("a", l)[I], _forward_expr(placed),
                 f"inverted dropout in training with rate $\\rho = {placed.layer.rate:g}$: the mask entry "
                 f"$\\xi_i = 1$ with probability $1 - \\rho = {1 - placed.layer.rate:g}$, else 0; "
                 "at evaluation the layer is the identity", "forward", l)]


def dropout_backward(placed, ctx, upstream):
    l = placed.position
    local = sp.diff(_forward_expr(placed), indexed("a", l - 1)[I])
    up = upstream["element"] if upstream is not None else indexed(r"\delta", l)[I]
    el = local * up
    name = r"\frac{\partial \ell}{\partial a^{(%d)}_{i}}" % (l - 1)
    steps = [Step(sp.Symbol(name), el, "chain rule: the kept entries pass the gradient, scaled", "element", l)]
    above = r"\delta^{(%d)}" % l if upstream is None else sp.latex(upstream["matrix"])
    # A column like the dense layers' quantities, so the delta step below can multiply by g'.
    mx = sp.MatrixSymbol(r"\frac{1}{1 - \rho}\, \xi \odot %s" % above, dim(l - 1), 1)
    steps.append(Step(sp.Symbol(r"\frac{\partial \ell}{\partial a^{(%d)}}" % (l - 1)), mx, "matrix form", "matrix", l))
    return steps, {"element": el, "matrix": mx, "batch": sp.Symbol(r"\Xi \odot \text{(the same, per example)}")}


def _register():
    from . import LayerRule, register_rule
    register_rule("dropout", LayerRule(dropout_forward, dropout_backward, False))


_register()


def kept_scale(rate) -> sp.Expr:
    """Code generation's interface: the factor a kept entry (m_i = 1) is multiplied by,
    d a_i / d a_i^(l-1) of the forward map above, for the given rate."""
    a, p = sp.Symbol("a", real=True), sp.nsimplify(rate)
    return sp.diff(MASK[I] * a / (1 - p), a).subs(MASK[I], 1)
