"""SymPy functions symnet adds, and the closed list of functions formulas may call.

`sigmoid` and `softplus` are SymPy functions (not their exp forms) so that
documents print sigma(z), kernels print numerically stable forms, and
derivatives come out in the lectures' shape (sigma(1 - sigma)). Their
derivatives are not typed here: `fdiff` differentiates the definition with
SymPy and rewrites the result in terms of sigmoid by solving the definition
for exp(-x).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import sympy as sp

_t = sp.Symbol("t", real=True)


def _sigmoid_definition(x):
    return 1 / (1 + sp.exp(-x))


def _softplus_definition(x):
    return sp.log(1 + sp.exp(x))


@lru_cache(maxsize=None)
def _derivative_in_sigmoid(definition: Callable) -> sp.Expr:
    """d/dt definition(t), with exp(+-t) replaced through s = sigmoid(t)."""
    s = sp.Symbol("s", positive=True)
    derivative = sp.diff(definition(_t), _t)
    # From s = 1/(1+exp(-t)): exp(-t) = (1-s)/s, solved by SymPy.
    (exp_minus_t,) = sp.solve(sp.Eq(s, _sigmoid_definition(_t)).subs(sp.exp(-_t), sp.Symbol("u")), sp.Symbol("u"))
    rewritten = derivative.subs(sp.exp(-_t), exp_minus_t).subs(sp.exp(_t), 1 / exp_minus_t)
    rewritten = sp.factor(sp.simplify(rewritten))
    return rewritten.subs(s, sigmoid(_t))


class sigmoid(sp.Function):
    """The logistic function 1/(1+exp(-x))."""

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return sp.Rational(1, 2)

    def fdiff(self, argindex=1):
        return _derivative_in_sigmoid(_sigmoid_definition).subs(_t, self.args[0])

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return _sigmoid_definition(x)

    def _eval_is_real(self):
        return self.args[0].is_real

    def _eval_is_positive(self):
        return self.args[0].is_real

    def _latex(self, printer):
        return r"\sigma\left(%s\right)" % printer._print(self.args[0])


class softplus(sp.Function):
    """log(1 + exp(x)), kept as a function so kernels can print a stable form."""

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return sp.log(2)

    def fdiff(self, argindex=1):
        return _derivative_in_sigmoid(_softplus_definition).subs(_t, self.args[0])

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return _softplus_definition(x)

    def _eval_rewrite_as_log(self, x, **kwargs):
        return _softplus_definition(x)

    def _eval_is_real(self):
        return self.args[0].is_real

    def _latex(self, printer):
        return r"\operatorname{softplus}\left(%s\right)" % printer._print(self.args[0])


def _relu(x):
    return sp.Piecewise((x, x > 0), (0, True))


def _step(x):
    return sp.Heaviside(x, 0)


@dataclass(frozen=True)
class FunctionSpec:
    build: Callable[..., sp.Expr]
    arities: tuple[int, ...] = (1,)


FUNCTIONS: dict[str, FunctionSpec] = {
    "exp": FunctionSpec(sp.exp),
    "log": FunctionSpec(sp.log),
    "ln": FunctionSpec(sp.log),
    "sqrt": FunctionSpec(sp.sqrt),
    "abs": FunctionSpec(sp.Abs),
    "sin": FunctionSpec(sp.sin),
    "cos": FunctionSpec(sp.cos),
    "tan": FunctionSpec(sp.tan),
    "atan": FunctionSpec(sp.atan),
    "arctan": FunctionSpec(sp.atan),
    "sinh": FunctionSpec(sp.sinh),
    "cosh": FunctionSpec(sp.cosh),
    "tanh": FunctionSpec(sp.tanh),
    "erf": FunctionSpec(sp.erf),
    "sinc": FunctionSpec(sp.sinc),
    "sigmoid": FunctionSpec(sigmoid),
    "softplus": FunctionSpec(softplus),
    "relu": FunctionSpec(_relu),
    "step": FunctionSpec(_step),
    "heaviside": FunctionSpec(_step),
    "max": FunctionSpec(sp.Max, (2,)),
    "min": FunctionSpec(sp.Min, (2,)),
}

CONSTANTS: dict[str, sp.Expr] = {"pi": sp.pi, "e": sp.E}
