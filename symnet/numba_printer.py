"""NumbaPrinter: SymPy expressions -> Python source that Numba compiles in one dtype.

Only `_print_X` overrides of SymPy's PythonCodePrinter. Strict: anything it
cannot print raises `PrintMethodNotImplementedError` rather than emitting code
that would fail (or silently upcast) inside a kernel.

Every number is printed as a literal of the kernel's dtype (`np.float32(0.5)`
in float32 kernels) so that Numba keeps float32 math in float32: a bare `2`
or `0.5` would be typed int64/float64 and promote the whole expression.
`sigmoid` and `softplus` print overflow-free forms.
"""
from __future__ import annotations

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


class NumbaPrinter(PythonCodePrinter):
    """Print element-wise kernel math for a Numba `@njit` function.

    Settings: `dtype` ("float32" or "float64"); `strict` is always on.
    """

    printmethod = "_numbacode"
    language = "Python (Numba)"
    _default_settings = dict(PythonCodePrinter._default_settings, dtype="float64", strict=True)

    def __init__(self, settings=None):
        settings = dict(settings or {})
        settings["strict"] = True
        if settings.get("dtype", "float64") not in ("float32", "float64"):
            raise ValueError(f"NumbaPrinter: dtype must be float32 or float64, got {settings.get('dtype')!r}")
        super().__init__(settings)

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
        b = self.parenthesize(base, PREC)
        if e.is_Integer and 1 <= e <= 4:
            return "(" + "*".join([b] * int(e)) + ")"
        if e.is_Integer and -4 <= e <= -1:
            return "(%s/(%s))" % (self._print(sp.S.One), "*".join([b] * int(-e)))
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
    _print_tanh = _print_exp
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
        u = self._print(expr.args[0])
        one = self._print(sp.S.One)
        return ("(%(one)s/(%(one)s + np.exp(-(%(u)s))) if (%(u)s) >= %(zero)s "
                "else np.exp(%(u)s)/(%(one)s + np.exp(%(u)s)))") % {"u": u, "one": one, "zero": self._print(sp.S.Zero)}

    def _print_softplus(self, expr):
        # log(1 + exp(u)) = max(u, 0) + log1p(exp(-|u|)), finite for any u.
        u = self._print(expr.args[0])
        return "(max(%s, %s) + np.log1p(np.exp(-abs(%s))))" % (u, self._print(sp.S.Zero), u)

    def _print_sinc(self, expr):
        u = self._print(expr.args[0])
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


def numba_code(expr, dtype: str = "float64") -> str:
    """Print one expression (convenience for tests and templates' callers)."""
    return NumbaPrinter({"dtype": dtype}).doprint(expr)


__all__ = ["NumbaPrinter", "numba_code", "sigmoid", "softplus"]
