"""NumbaPrinter: SymPy expressions -> Python source that Numba compiles in one dtype.

Only `_print_X` overrides of SymPy's PythonCodePrinter. Strict: anything it
cannot print raises `PrintMethodNotImplementedError` rather than emitting code
that would fail (or silently upcast) inside a kernel.

Every number is printed as a literal of the kernel's dtype (`np.float32(0.5)`
in float32 kernels) so that Numba keeps float32 math in float32: a bare `2`
or `0.5` would be typed int64/float64 and promote the whole expression.
`sigmoid` and `softplus` print overflow-free forms. With the setting
`tanh_helper` (a name), float32 tanh prints as a call of that function, which the
caller defines from `symnet.approximants.tanh_float32` (vectorisable, unlike the C
library's scalar tanhf); `helpers_used` collects the helper names printed.

Some printed forms use an argument more than once (the stable sigmoid four
times, softplus twice, sinc three times, a small integer power as a product).
`print_block` prints such an argument once, into a temporary, so a kernel's
text grows linearly with the nesting of a formula; `numba_code` (one
expression, no temporaries) writes it out at each use and is meant for small
expressions only.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import count

import sympy as sp
from sympy.printing.codeprinter import PrintMethodNotImplementedError
from sympy.printing.pycode import PythonCodePrinter

from .functions import sigmoid, softplus

# SymPy function name -> Numba-supported callable that keeps float32 as float32.
_FUNCTIONS = {
    "exp": "np.exp",
    "log": "np.log",
    "sin": "np.sin",
    "cos": "np.cos",
    "tan": "np.tan",
    "asin": "np.arcsin",
    "acos": "np.arccos",
    "atan": "np.arctan",
    "sinh": "np.sinh",
    "cosh": "np.cosh",
    "tanh": "np.tanh",
    "asinh": "np.arcsinh",
    "acosh": "np.arccosh",
    "atanh": "np.arctanh",
    "erf": "math.erf",
    "erfc": "math.erfc",
    "sign": "np.sign",
    "log1p": "np.log1p",
    "expm1": "np.expm1",
}


@dataclass
class Block:
    """An expression printed as assignments and a result expression."""
    lines: list[str]    # "t0 = ...": common subexpressions and repeated arguments, in order
    result: str
    ops: int            # sympy.count_ops of the expression after common-subexpression elimination


class NumbaPrinter(PythonCodePrinter):
    """Print element-wise kernel math for a Numba `@njit` function.

    Settings: `dtype` ("float32" or "float64"); `strict` is always on.
    """

    printmethod = "_numbacode"
    language = "Python (Numba)"
    _default_settings = dict(PythonCodePrinter._default_settings, dtype="float64", strict=True, tanh_helper=None)

    def __init__(self, settings=None):
        settings = dict(settings or {})
        settings["strict"] = True
        if settings.get("dtype", "float64") not in ("float32", "float64"):
            raise ValueError(f"NumbaPrinter: dtype must be float32 or float64, got {settings.get('dtype')!r}")
        super().__init__(settings)
        self._block = None      # inside print_block: (lines, name by printed text, fresh names)
        self.helpers_used: set[str] = set()

    # -- blocks: every subexpression evaluated once
    def print_block(self, expr, temps: str = "t", repeated: str = "u") -> Block:
        """`expr` as assignments and a result. SymPy's `cse` names the common
        subexpressions (`temps`0, ...); an argument that a printed form uses
        more than once is assigned to a temporary (`repeated`0, ...) where it
        is printed, so it is evaluated once and printed once."""
        expr = sp.Integer(expr) if isinstance(expr, int) else expr      # derived constants such as 0
        replacements, (reduced,) = sp.cse(expr, symbols=sp.numbered_symbols(temps, real=True), optimizations=None)
        lines: list[str] = []
        self._block = (lines, {}, (f"{repeated}{k}" for k in count()))
        try:
            for sym, value in replacements:
                text = self.doprint(value)          # may append the temporaries it uses
                lines.append(f"{sym} = {text}")
            result = self.doprint(reduced)
        finally:
            self._block = None
        ops = int(sum(sp.count_ops(v) for _, v in replacements) + sp.count_ops(reduced))
        return Block(lines, result, ops)

    def _repeated(self, expr, prec=None) -> str:
        """`expr` printed for a form that uses it several times: in a block, a
        temporary (short arguments stay inline); else the text, parenthesized
        at precedence `prec`."""
        if self._block is None or _short(expr):
            return self._print(expr) if prec is None else self.parenthesize(expr, prec)
        text = self._print(expr)
        lines, names, fresh = self._block
        if text not in names:
            names[text] = next(fresh)
            lines.append(f"{names[text]} = {text}")
        return names[text]

    # -- numbers: always literals of the kernel dtype
    def _literal(self, value) -> str:
        text = repr(float(value))
        if text in ("inf", "-inf", "nan"):
            raise PrintMethodNotImplementedError(f"NumbaPrinter: non-finite constant {value}")
        if self._settings["dtype"] == "float32":
            return "np.float32(%s)" % text
        return text if not text.startswith("-") else "(%s)" % text

    def _print_Number(self, expr):
        return self._literal(sp.Float(expr, 17))

    _print_Integer = _print_Number
    _print_Rational = _print_Number
    _print_Float = _print_Number
    _print_Half = _print_Number
    _print_One = _print_Number
    _print_Zero = _print_Number
    _print_NegativeOne = _print_Number

    def _print_NumberSymbol(self, expr):
        return self._literal(expr.evalf(17))

    _print_Pi = _print_NumberSymbol
    _print_Exp1 = _print_NumberSymbol
    _print_EulerGamma = _print_NumberSymbol
    _print_GoldenRatio = _print_NumberSymbol

    def _print_Infinity(self, expr):
        raise PrintMethodNotImplementedError("NumbaPrinter: infinity in kernel math")

    _print_NegativeInfinity = _print_Infinity
    _print_ComplexInfinity = _print_Infinity
    _print_NaN = _print_Infinity

    def _print_ImaginaryUnit(self, expr):
        raise PrintMethodNotImplementedError("NumbaPrinter: complex numbers in kernel math")

    # -- arithmetic
    def _print_Mul(self, expr):
        if expr.is_number:
            return self._literal(expr.evalf(17))
        return super()._print_Mul(expr)

    def _print_Add(self, expr, order=None):
        if expr.is_number:
            return self._literal(expr.evalf(17))
        return super()._print_Add(expr, order=order)

    def _print_Pow(self, expr, rational=False):
        base, e = expr.args
        if expr.is_number:
            return self._literal(expr.evalf(17))
        PREC = sp.printing.precedence.precedence(expr)
        if e.is_Integer and 1 <= abs(e) <= 4:
            b = self._repeated(base, PREC) if abs(e) > 1 else self.parenthesize(base, PREC)
            product = "*".join([b] * abs(int(e)))
            return "(%s)" % product if e > 0 else "(%s/(%s))" % (self._print(sp.S.One), product)
        b = self.parenthesize(base, PREC)
        if e == sp.S.Half:
            return "np.sqrt(%s)" % self._print(base)
        if e == -sp.S.Half:
            return "(%s/np.sqrt(%s))" % (self._print(sp.S.One), self._print(base))
        return "%s**%s" % (b, self.parenthesize(e, PREC))

    # -- functions
    def _print_Function(self, expr):
        name = expr.func.__name__
        if name in _FUNCTIONS:
            return "%s(%s)" % (_FUNCTIONS[name], ", ".join(self._print(a) for a in expr.args))
        raise PrintMethodNotImplementedError(f"NumbaPrinter: cannot print the function {name}")

    def _print_exp(self, expr):
        return self._print_Function(expr)

    _print_log = _print_exp
    _print_sin = _print_exp
    _print_cos = _print_exp
    _print_tan = _print_exp
    _print_asin = _print_exp
    _print_acos = _print_exp
    _print_atan = _print_exp
    _print_sinh = _print_exp
    _print_cosh = _print_exp

    def _print_tanh(self, expr):
        helper = self._settings["tanh_helper"]
        if helper is None or self._settings["dtype"] != "float32":
            return self._print_Function(expr)
        self.helpers_used.add(helper)
        return "%s(%s)" % (helper, self._print(expr.args[0]))

    _print_asinh = _print_exp
    _print_acosh = _print_exp
    _print_atanh = _print_exp
    _print_erf = _print_exp
    _print_erfc = _print_exp
    _print_sign = _print_exp

    def _print_Abs(self, expr):
        return "abs(%s)" % self._print(expr.args[0])

    def _print_sqrt(self, expr):
        return "np.sqrt(%s)" % self._print(expr.args[0])

    def _print_Max(self, expr):
        return self._minmax("max", expr.args)

    def _print_Min(self, expr):
        return self._minmax("min", expr.args)

    def _minmax(self, fn, args):
        text = self._print(args[0])
        for a in args[1:]:
            text = "%s(%s, %s)" % (fn, text, self._print(a))
        return text

    def _print_sigmoid(self, expr):
        # Overflow-free on both sides: exp of a non-positive number only.
        u = self._repeated(expr.args[0])
        one = self._print(sp.S.One)
        return ("(%(one)s/(%(one)s + np.exp(-(%(u)s))) if (%(u)s) >= %(zero)s "
                "else np.exp(%(u)s)/(%(one)s + np.exp(%(u)s)))") % {"u": u, "one": one, "zero": self._print(sp.S.Zero)}

    def _print_softplus(self, expr):
        # log(1 + exp(u)) = max(u, 0) + log1p(exp(-|u|)), finite for any u.
        u = self._repeated(expr.args[0])
        return "(max(%s, %s) + np.log1p(np.exp(-abs(%s))))" % (u, self._print(sp.S.Zero), u)

    def _print_sinc(self, expr):
        u = self._repeated(expr.args[0])
        return "(np.sin(%s)/(%s) if (%s) != %s else %s)" % (u, u, u, self._print(sp.S.Zero), self._print(sp.S.One))

    # -- conditionals (ReLU, hinge, sinc's derivative)
    def _print_Piecewise(self, expr):
        if expr.args[-1].cond != True:  # noqa: E712 (SymPy's true)
            raise PrintMethodNotImplementedError("NumbaPrinter: a Piecewise needs a default (True) branch")
        text = self._print(expr.args[-1].expr)
        for e, c in reversed(expr.args[:-1]):
            text = "(%s if %s else %s)" % (self._print(e), self._print(c), text)
        return text

    def _print_Relational(self, expr):
        ops = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
        if expr.rel_op not in ops:
            raise PrintMethodNotImplementedError(f"NumbaPrinter: cannot print the relation {expr.rel_op}")
        return "(%s %s %s)" % (self._print(expr.lhs), ops[expr.rel_op], self._print(expr.rhs))

    def _print_BooleanTrue(self, expr):
        return "True"

    def _print_BooleanFalse(self, expr):
        return "False"

    # -- refuse what a kernel cannot compute
    def _print_Heaviside(self, expr):
        raise PrintMethodNotImplementedError("NumbaPrinter: Heaviside has no useful gradient")

    def _print_DiracDelta(self, expr):
        raise PrintMethodNotImplementedError("NumbaPrinter: DiracDelta in kernel math")

    def _print_Derivative(self, expr):
        raise PrintMethodNotImplementedError("NumbaPrinter: an unevaluated derivative")

    def _print_Subs(self, expr):
        raise PrintMethodNotImplementedError("NumbaPrinter: an unevaluated substitution")

    def _print_Indexed(self, expr):
        raise PrintMethodNotImplementedError("NumbaPrinter: indexed quantities belong to the templates")

    def _print_Sum(self, expr):
        raise PrintMethodNotImplementedError("NumbaPrinter: sums belong to the templates")

    def _print_re(self, expr):
        raise PrintMethodNotImplementedError("NumbaPrinter: complex parts in kernel math")

    _print_im = _print_re


# PythonCodePrinter registers printers (math.gamma, ...) for many functions;
# those not in the whitelist above are refused, keeping the printer strict.
for _name in list(vars(PythonCodePrinter)):
    if _name.startswith("_print_") and _name[len("_print_"):] in PythonCodePrinter._kf \
            and _name not in vars(NumbaPrinter):
        setattr(NumbaPrinter, _name, NumbaPrinter._print_Function)
del _name


def _short(expr) -> bool:
    """A symbol, a number or its negation: as cheap to repeat as a temporary's name."""
    return expr.is_Atom or (expr.is_Mul and len(expr.args) == 2 and expr.args[0] == -1 and expr.args[1].is_Atom)


def numba_code(expr, dtype: str = "float64") -> str:
    """Print one small expression as one expression (repeated arguments written
    out at each use); kernels print with `NumbaPrinter.print_block`."""
    return NumbaPrinter({"dtype": dtype}).doprint(expr)


__all__ = ["Block", "NumbaPrinter", "numba_code", "sigmoid", "softplus"]
