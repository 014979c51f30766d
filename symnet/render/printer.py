"""SymnetLatexPrinter: LaTeX in the lectures' notation (a SymPy LatexPrinter
subclass, `_print_X` overrides only), and `latex()`, which first applies the
notation rules of notation.py."""
from __future__ import annotations

import sympy as sp
from sympy.core.function import AppliedUndef
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE

from .notation import Indicator, textbook


def _is_simple(expr) -> bool:
    """Atoms a lecture writes without brackets after a function name (log p_k)."""
    return isinstance(expr, (sp.Symbol, sp.Indexed, sp.MatrixSymbol)) or (expr.is_Number and expr >= 0)


class SymnetLatexPrinter(LatexPrinter):
    """LaTeX in the lectures' notation: z^{(2)}_{i}, W^{(2)}_{ki}, \\odot,
    (W^{(2)})^{T}, partial derivatives, piecewise functions as cases."""

    printmethod = "_latex"

    def __init__(self, settings=None):
        settings = dict(settings or {})
        settings.setdefault("mul_symbol", None)
        super().__init__(settings)

    # -- indexed quantities
    def _print_Indexed(self, expr):
        base = self._print(expr.base)
        indices = [self._print(i) for i in expr.indices]
        joined = "".join(indices) if all(len(i) == 1 for i in indices) else ",".join(indices)
        return "%s_{%s}" % (base, joined)

    def _print_IndexedBase(self, expr):
        return self._print(expr.label)

    def _print_Symbol(self, expr, style="plain"):
        name = expr.name
        if "\\" in name or "{" in name:     # already LaTeX (derivation names)
            return name
        return super()._print_Symbol(expr, style=style)

    def _print_MatrixSymbol(self, expr):
        name = expr.name
        if "\\" in name or "{" in name:
            return name
        return super()._print_MatrixSymbol(expr)

    # -- matrices
    def _print_HadamardProduct(self, expr):
        return r" \odot ".join(self.parenthesize(a, PRECEDENCE["Pow"], strict=True) for a in expr.args)

    def _print_Transpose(self, expr):
        arg = expr.arg
        inner = self._print(arg)
        if isinstance(arg, sp.MatrixSymbol) and ("^" in arg.name or "\\" in arg.name) or not isinstance(arg, sp.MatrixSymbol):
            return r"\left(%s\right)^{T}" % inner
        return "%s^{T}" % inner

    # -- calculus
    def _print_Derivative(self, expr):
        (var, count), = expr.variable_count if len(expr.variable_count) == 1 else [(None, None)]
        if var is None:
            return super()._print_Derivative(expr)
        power = "" if count == 1 else "^{%s}" % count
        numer = expr.expr
        wrt = self._print(var)
        if _is_simple(numer):
            return r"\frac{\partial%s %s}{\partial %s%s}" % (power, self._print(numer), wrt, power)
        return r"\frac{\partial%s}{\partial %s%s} \left(%s\right)" % (power, wrt, power, self._print(numer))

    def _print_Piecewise(self, expr):
        rows = []
        for e, c in expr.args:
            if c == sp.true:
                rows.append(r"%s & \text{otherwise}" % self._print(e))
            else:
                rows.append(r"%s & \text{if } %s" % (self._print(e), self._print(c)))
        return r"\begin{cases} %s \end{cases}" % r" \\ ".join(rows)

    def _print_Sum(self, expr):
        tex = ""
        for var, lo, hi in reversed(expr.limits):
            tex += r"\sum_{%s=%s}^{%s} " % (self._print(var), self._print(lo), self._print(hi))
        body = expr.function
        inner = self._print(body)
        if body.is_Add or body.could_extract_minus_sign():
            inner = r"\left(%s\right)" % inner
        return tex + inner

    # -- functions
    def _print_Function(self, expr, exp=None):
        if isinstance(expr, AppliedUndef):
            name = expr.func.__name__
            args = ", ".join(self._print(a) for a in expr.args)
            head = name if ("\\" in name or "'" in name) else self._hprint_Function(name)
            plain = all(isinstance(a, sp.Symbol) for a in expr.args)      # g'(z), no stretchy brackets
            tex = (r"%s(%s)" if plain else r"%s\left(%s\right)") % (head, args)
            return tex if exp is None else r"\left(%s\right)^{%s}" % (tex, exp)
        return super()._print_Function(expr, exp=exp)

    def _function_call(self, name, arg, exp=None):
        head = name if exp is None else "%s^{%s}" % (name, exp)
        if _is_simple(arg):
            return r"%s %s" % (head, self._print(arg))
        return r"%s\left(%s\right)" % (head, self._print(arg))

    def _print_log(self, expr, exp=None):
        return self._function_call(r"\log", expr.args[0], exp)

    def _print_tanh(self, expr, exp=None):
        return self._function_call(r"\tanh", expr.args[0], exp)

    def _print_sinh(self, expr, exp=None):
        return self._function_call(r"\sinh", expr.args[0], exp)

    def _print_cosh(self, expr, exp=None):
        return self._function_call(r"\cosh", expr.args[0], exp)

    def _print_sin(self, expr, exp=None):
        return self._function_call(r"\sin", expr.args[0], exp)

    def _print_cos(self, expr, exp=None):
        return self._function_call(r"\cos", expr.args[0], exp)

    def _print_Max(self, expr, exp=None):
        tex = r"\max\left(%s\right)" % ", ".join(self._print(a) for a in expr.args)
        return tex if exp is None else r"%s^{%s}" % (tex, exp)

    def _print_Min(self, expr, exp=None):
        tex = r"\min\left(%s\right)" % ", ".join(self._print(a) for a in expr.args)
        return tex if exp is None else r"%s^{%s}" % (tex, exp)

    # -- indicators and conditions (from notation.textbook)
    def _print_Indicator(self, expr, exp=None):
        cond = expr.args[0]
        parts = self._conditions(cond)
        tex = r"\mathbb{1}\left[%s\right]" % r",\ ".join(parts)
        return tex if exp is None else r"%s^{%s}" % (tex, exp)

    def _conditions(self, cond) -> list[str]:
        """The conjuncts of a condition, each printed; a lower bound 0 <= e and an
        upper bound e <= t as one chain 0 <= e <= t (a comma reads as "and")."""
        args = list(cond.args) if isinstance(cond, sp.And) else [cond]

        def lower(c):      # (number, strict, e) of "number <= e", else None
            if isinstance(c, (sp.Ge, sp.Gt)) and c.rhs.is_number:
                return c.rhs, isinstance(c, sp.Gt), c.lhs
            if isinstance(c, (sp.Le, sp.Lt)) and c.lhs.is_number:
                return c.lhs, isinstance(c, sp.Lt), c.rhs
            return None

        def upper(c):      # (e, strict, bound) of "e <= bound" with a symbolic e, else None
            if isinstance(c, (sp.Le, sp.Lt)) and not c.lhs.is_number:
                return c.lhs, isinstance(c, sp.Lt), c.rhs
            if isinstance(c, (sp.Ge, sp.Gt)) and not c.rhs.is_number and not c.lhs.is_number:
                return c.rhs, isinstance(c, sp.Gt), c.lhs
            return None

        lows = {lower(c)[2]: (c, lower(c)) for c in args if lower(c)}
        out, used = [], set()
        for c in args:
            if lower(c):
                continue
            up = upper(c)
            if up and up[0] in lows and up[0] not in used:
                used.add(up[0])
                lo = lows[up[0]][1]
                out.append(self._chain(lo[0], lo[1], up[0], up[1], up[2]))
            else:
                out.append(self._print(c))
        out += [self._print(c) for e, (c, _) in lows.items() if e not in used]
        return out

    def _chain(self, lo, lo_strict, e, hi_strict, hi) -> str:
        """lo <= e <= hi in the form a lecture reads: e with a positive leading
        term, no fractions, lower bound 0 (-1/2 <= (i - m)/2 <= 7/2 as
        0 <= i + 1 - m <= 8)."""
        if hi.is_number:
            if hi <= 0 or e.could_extract_minus_sign():
                lo, lo_strict, e, hi_strict, hi = -hi, hi_strict, -e, lo_strict, -lo
            den = sp.fraction(sp.together(e))[1]
            if den.is_Integer and den > 1:
                lo, e, hi = lo * den, sp.expand(e * den), hi * den
            if lo != 0 and not lo_strict:
                e, hi, lo = e - lo, hi - lo, sp.S.Zero
        return "%s %s %s %s %s" % (self._print(lo), "<" if lo_strict else r"\le", self._print(e),
                                   "<" if hi_strict else r"\le", self._print(hi))

    def _print_sign(self, expr, exp=None):
        # sgn(w) with its brackets: "sgn w" runs together in MathML
        arg = expr.args[0]
        tex = (r"\operatorname{sgn}(%s)" if _is_simple(arg) else r"\operatorname{sgn}\left(%s\right)") % self._print(arg)
        return tex if exp is None else r"\left(%s\right)^{%s}" % (tex, exp)

    def _print_Equality(self, expr):
        lhs, rhs = expr.args
        if isinstance(lhs, sp.Mod) and rhs == 0:       # s | e: the stride divides the offset
            return r"%s \mid %s" % (self._print(lhs.args[1]), self.parenthesize(lhs.args[0], PRECEDENCE["Mul"]))
        return super()._print_Relational(expr)

    def _needs_mul_brackets(self, expr, first=False, last=False) -> bool:
        if isinstance(expr, Indicator):      # its brackets are its own (SymPy brackets anything with Mod)
            return False
        return super()._needs_mul_brackets(expr, first=first, last=last)

    def _print_And(self, expr):
        return r",\ ".join(self._conditions(expr))

    def _helper_print_standard_power(self, expr, template: str) -> str:
        # z^{(1)}_{i} squared is (z^{(1)}_{i})^{2}: a superscript on a superscript does not compile
        base = self.parenthesize(expr.base, PRECEDENCE["Pow"])
        if "^" in base and not base.startswith(r"\left("):
            base = r"\left(%s\right)" % base
        elif expr.base.is_Float:
            base = r"{%s}" % base
        return template % (base, self._print(expr.exp))

    # -- sums and products in the lectures' order
    @staticmethod
    def _term_rank(term) -> tuple:
        # positive terms first; within them sums before the rest (sum_j W_ij a_j + b_i)
        return (bool(term.could_extract_minus_sign()), not term.has(sp.Sum))

    def _print_Add(self, expr, order=None):
        terms = sorted(self._as_ordered_terms(expr, order=order), key=self._term_rank)
        tex = ""
        for i, term in enumerate(terms):
            if i == 0:
                pass
            elif term.could_extract_minus_sign():
                tex += " - "
                term = -term
            else:
                tex += " + "
            term_tex = self._print(term)
            if self._needs_add_brackets(term):
                term_tex = r"\left(%s\right)" % term_tex
            tex += term_tex
        return tex

    @staticmethod
    def _factor_rank(factor) -> tuple:
        # matrices before vectors (W_ij a_j), plain factors before brackets,
        # functions and sums last (y_k log p_k, g'(z_i) sum_k ...)
        base = factor.base if factor.is_Pow else factor
        if isinstance(base, sp.Indexed):
            return (0, -len(base.indices))
        if isinstance(base, sp.Symbol):
            return (0, 0)
        if factor.is_Add:
            return (1, 0)
        if isinstance(factor, sp.Sum):
            return (3, 0)
        return (2, 0)

    def _print_Mul(self, expr):
        if not isinstance(expr, sp.Mul) or not expr.is_commutative:
            return super()._print_Mul(expr)
        args = expr.args
        if args and (args[0] is sp.S.One or any(isinstance(a, sp.Number) for a in args[1:])):
            return super()._print_Mul(expr)     # deliberately unevaluated
        coeff, factors = expr.as_coeff_mul()
        factors = list(factors)
        # -(u - v) w  ->  (v - u) w: a lecture writes a - y, not -(-a + y)
        if coeff == -1:
            numer = [f for f in factors if not (f.is_Pow and f.exp.is_negative)]
            for k, f in enumerate(factors):
                if f.is_Add and (len(numer) == 1 or any(t.is_Number and t.is_negative for t in f.args)):
                    factors[k] = sp.Add(*[-t for t in f.args])
                    coeff = sp.S.One
                    break
        numer = [f for f in factors if not (f.is_Pow and f.exp.is_negative)]
        denom = [1 / f for f in factors if f.is_Pow and f.exp.is_negative]
        if denom and any(f.has(sp.Sum) for f in numer) and not any(f.has(sp.Sum) for f in denom):
            # (1/n) sum_i ..., the way a mean is written
            sign = "- " if coeff.is_negative else ""
            c = abs(coeff)
            head = r"\frac{%s}{%s}" % (self._print(c.p), self._print(sp.Mul(c.q, *denom)))
            return sign + head + " " + self._print(sp.Mul(*numer)) if len(numer) != 1 or not numer[0].is_Add \
                else sign + head + r" \left(%s\right)" % self._print(numer[0])
        if any(f.is_Pow and f.exp.is_negative for f in factors) or coeff.is_Rational and not coeff.is_Integer:
            if coeff == expr.as_coeff_mul()[0]:
                return super()._print_Mul(expr)
            return super()._print_Mul(sp.Mul(coeff, *factors, evaluate=False) if coeff != 1
                                      else sp.Mul(*factors, evaluate=False))
        factors.sort(key=self._factor_rank)
        tex = ""
        if coeff.is_negative:
            tex, coeff = "- ", -coeff
        parts = [] if coeff == 1 else [self._print(coeff)]
        for k, f in enumerate(factors):
            ft = self._print(f)
            if self._needs_mul_brackets(f, first=(k == 0 and not parts), last=(k == len(factors) - 1)):
                ft = r"\left(%s\right)" % ft
            parts.append(ft)
        return tex + " ".join(parts)


_PRINTER = SymnetLatexPrinter()


def latex(obj) -> str:
    """LaTeX of a SymPy object in symnet's notation; strings are LaTeX already."""
    if isinstance(obj, str):
        return obj
    return _PRINTER.doprint(textbook(obj))

