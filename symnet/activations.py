"""Activation functions as SymPy expressions of one variable.

Each activation is a formula in `x`; its derivative is always SymPy's
derivative of that formula (never typed here). A user's custom activation is a
formula string read by symnet's own parser.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import sympy as sp

from .budget import is_zero_almost_everywhere, optional, require_size, short
from .errors import FormulaError, NotDifferentiableError, SpecError
from .formula import parse_formula
from .functions import sigmoid, softplus

X = sp.Symbol("x", real=True)


def _relu(x):
    return sp.Piecewise((x, x > 0), (0, True))


def _leaky_relu(x, slope=sp.Rational(1, 100)):
    return sp.Piecewise((x, x > 0), (slope * x, True))


def _elu(x, alpha=1):
    return sp.Piecewise((x, x > 0), (alpha * (sp.exp(x) - 1), True))


# name -> (builder of the expression, default parameters, LaTeX name)
BUILTIN = {
    "identity": (lambda x: x, {}, r"\mathrm{id}"),
    "linear": (lambda x: x, {}, r"\mathrm{id}"),
    "sigmoid": (sigmoid, {}, r"\sigma"),
    "tanh": (sp.tanh, {}, r"\tanh"),
    "relu": (_relu, {}, r"\mathrm{ReLU}"),
    "leaky_relu": (_leaky_relu, {"slope": sp.Rational(1, 100)}, r"\mathrm{LeakyReLU}"),
    "elu": (_elu, {"alpha": sp.Integer(1)}, r"\mathrm{ELU}"),
    "gelu": (lambda x: x / 2 * (1 + sp.erf(x / sp.sqrt(2))), {}, r"\mathrm{GELU}"),
    "gelu_tanh": (lambda x: x / 2 * (1 + sp.tanh(sp.sqrt(2 / sp.pi) * (x + sp.Rational(44715, 1000000) * x**3))),
                  {}, r"\mathrm{GELU}_{\tanh}"),
    "softplus": (softplus, {}, r"\operatorname{softplus}"),
    "swish": (lambda x: x * sigmoid(x), {}, r"\mathrm{swish}"),
    "mish": (lambda x: x * sp.tanh(softplus(x)), {}, r"\mathrm{mish}"),
    "softsign": (lambda x: x / (1 + sp.Abs(x)), {}, r"\mathrm{softsign}"),
    "log_sigmoid": (lambda x: -softplus(-x), {}, r"\log\sigma"),
    "sinc": (sp.sinc, {}, r"\operatorname{sinc}"),
    "step": (lambda x: sp.Heaviside(x, 0), {}, r"\mathrm{step}"),
}
VECTOR = ("softmax",)


@dataclass(frozen=True)
class Activation:
    """An element-wise activation g(x) (or the vector activation softmax)."""
    name: str
    expr: sp.Expr | None          # None for softmax
    latex_name: str
    params: tuple = ()
    source: str | None = None     # the formula text of a custom activation
    where: str = ""               # e.g. "layer 2", for error messages

    @property
    def is_softmax(self) -> bool:
        return self.name == "softmax"

    @property
    def is_identity(self) -> bool:
        return self.expr == X

    @cached_property
    def derivative(self) -> sp.Expr:
        """g'(x) as derived by SymPy; rejects functions useless for gradients."""
        if self.is_softmax:
            raise ValueError("softmax is a vector function; its Jacobian is derived in derive.py")
        try:
            d = _derivative(self.expr)
        except RecursionError:
            raise FormulaError(f"{self.where or 'activation'}: activation {short(self.source or self.name)} "
                               "nests too deeply for the derivation; nest it less deeply") from None
        if d is None:
            raise NotDifferentiableError(
                f"{self.where or 'activation'}: {self.name} has zero derivative almost everywhere "
                "(and none at its jump), so no gradient flows through it; use sigmoid or relu instead")
        if self.source is not None:
            require_size(d, f"{self.where or 'activation'}: activation", self.source)
        return d

    def describe(self) -> str:
        if self.source is not None:
            return f"custom({self.source})"
        if self.params:
            return f"{self.name}(" + ", ".join(f"{k}={v}" for k, v in self.params) + ")"
        return self.name

    def spec_value(self):
        """How a spec file writes this activation."""
        if self.source is not None:
            return self.source
        if self.params:
            return {"name": self.name, **{k: float(v) for k, v in self.params}}
        return self.name

    def __call__(self, arg: sp.Expr) -> sp.Expr:
        return self.expr.subs(X, arg)


@lru_cache(maxsize=None)
def _derivative(expr: sp.Expr) -> sp.Expr | None:
    """SymPy's derivative, or None when it is zero almost everywhere (a step)."""
    d = sp.diff(expr, X)
    if expr.has(X) and is_zero_almost_everywhere(d, [X]):
        return None
    return d


def defined_everywhere(d: sp.Expr) -> sp.Expr:
    """d with a value at each removable singularity, for numeric evaluation (kernels,
    the float64 trace): SymPy writes sinc'(x) = cos(x)/x - sin(x)/x^2, which is 0/0
    at x = 0 (a zero-padded conv border), where its limit is 0. Each real root of the
    denominator with a finite limit becomes a Piecewise branch holding that limit;
    documents keep SymPy's form. Bounded: past the time budget d is returned as it is."""
    return optional(_fill_removable_singularities, d, d)


def _fill_removable_singularities(d: sp.Expr) -> sp.Expr:
    den = sp.denom(sp.together(d))
    if not den.has(X) or not den.is_polynomial(X):
        return d
    branches = []
    for root in sp.Poly(den, X).real_roots():
        limit = sp.limit(d, X, root)
        if limit.is_finite:
            branches.append((limit, sp.Eq(X, root)))
    return sp.Piecewise(*branches, (d, True)) if branches else d


def _number_param(value, key, where):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"{where}: activation parameter {key!r} must be a number, got {value!r}")
    return sp.nsimplify(value, rational=True) if isinstance(value, float) else sp.Integer(value)


def make_activation(spec, where: str = "") -> Activation:
    """Build an Activation from a name, a {name=..., param=...} table, a
    formula string in x, or an existing Activation."""
    if isinstance(spec, Activation):
        return spec
    if spec is None:
        spec = "identity"
    params = {}
    if isinstance(spec, dict):
        params = dict(spec)
        if "name" not in params:
            raise SpecError(f"{where}: an activation table needs a 'name' key")
        spec = params.pop("name")
    if not isinstance(spec, str):
        raise SpecError(f"{where}: activation must be a name or a formula string, got {short(repr(spec))}")
    name = spec.strip()
    if name in VECTOR:
        return Activation("softmax", None, r"\operatorname{softmax}", where=where)
    if name in BUILTIN:
        builder, defaults, latex = BUILTIN[name]
        unknown = set(params) - set(defaults)
        if unknown:
            valid = ", ".join(defaults) or "none"
            raise SpecError(f"{where}: unknown parameter {sorted(unknown)[0]!r} for activation {name} (valid: {valid})")
        values = {k: _number_param(params[k], k, where) if k in params else v for k, v in defaults.items()}
        return Activation(name, builder(X, **values), latex, tuple(values.items()), where=where)
    if name.isidentifier() and name != "x":
        known = ", ".join(sorted(list(BUILTIN) + list(VECTOR)))
        raise SpecError(f"{where}: unknown activation {short(name)} (known: {known}; or a formula in x such as 'x*tanh(x)')")
    if params:
        raise SpecError(f"{where}: a custom activation formula takes no parameters")
    try:
        expr = stable_forms(parse_formula(name, ["x"]))
    except FormulaError as exc:
        raise FormulaError(f"{where or 'activation'}: activation formula: {exc}") from None
    except RecursionError:
        raise FormulaError(f"{where or 'activation'}: activation {short(name)} nests too deeply; "
                           "nest it less deeply") from None
    return Activation("custom", expr, "g", source=name, where=where)


def stable_forms(expr: sp.Expr) -> sp.Expr:
    """Name log(1+exp(u)) and 1/(1+exp(-u)) as softplus and sigmoid (identities),
    so kernels print their overflow-free forms and derivatives stay finite.
    log(c+exp(u)) with a number c > 0 becomes softplus(u - log c) + log c: SymPy
    folds log(1+exp(log(1+exp(u)))) into log(2+exp(u)) as it parses."""
    w = sp.Wild("w")
    c = sp.Wild("c", properties=[lambda c: c.is_number and c.is_positive])
    expr = expr.replace(sp.log(sp.exp(w) + c), lambda w, c: softplus(w - sp.log(c)) + sp.log(c))
    return expr.replace(1 / (sp.exp(-w) + 1), lambda w: sigmoid(w))
