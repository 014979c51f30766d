"""symnet's own parser for scalar formulas (custom activations, custom losses,
the computational-graph walkthrough).

User text never reaches eval/exec/sympify/parse_expr: this module tokenises it
and builds SymPy objects itself, from a closed list of functions and the
variables the caller allows. Limits on length, nesting and exponent size keep
hostile text from hanging the process.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import sympy as sp

from .budget import short
from .errors import FormulaError
from .functions import FUNCTIONS, CONSTANTS

MAX_LENGTH = 2000
MAX_DEPTH = 100
MAX_EXPONENT = 1000       # |n| in x^n; larger powers swell expressions
MAX_DIGITS = 300          # a number literal's magnitude, in decimal digits

_TOKEN = re.compile(r"""
    (?P<num>(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z_0-9]*)
  | (?P<op>\*\*|[-+*/^(),])
  | (?P<space>\s+)
""", re.VERBOSE)


@dataclass(frozen=True)
class Token:
    kind: str      # "num", "name", "op", "end"
    text: str
    pos: int       # 0-based column


def tokenize(text: str) -> list[Token]:
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"formula is {len(text)} characters long; the limit is {MAX_LENGTH}")
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise FormulaError(f"unexpected character {text[pos]!r} at column {pos + 1} of {short(text)}")
        if m.lastgroup != "space":
            tokens.append(Token(m.lastgroup, m.group(), pos))
        pos = m.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


def _number(text: str, pos: int) -> sp.Rational:
    """An exact rational from a literal, built without sympify."""
    mantissa, _, exponent = text.lower().partition("e")
    whole, _, frac = mantissa.partition(".")
    exp10 = int(exponent) if exponent else 0
    if abs(exp10) > MAX_DIGITS or len(whole) > MAX_DIGITS:
        raise FormulaError(f"number {text!r} at column {pos + 1} is too large")
    value = sp.Rational(int(whole or "0") * 10 ** len(frac) + int(frac or "0"), 10 ** len(frac))
    return value * sp.Rational(10) ** exp10


class _Parser:
    """Precedence climbing: sum < product < unary minus < power (right-assoc)."""

    def __init__(self, text: str, variables: dict[str, sp.Symbol], free: bool = False):
        self.text = text
        self.free = free        # unknown names become new variables
        self.tokens = tokenize(text)
        self.i = 0
        self.variables = variables
        self.depth = 0

    # -- helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def fail(self, message: str, tok: Token | None = None) -> FormulaError:
        tok = tok or self.tok
        return FormulaError(f"{message} at column {tok.pos + 1} of {short(self.text)}")

    def expect(self, text: str) -> Token:
        if self.tok.text != text:
            found = repr(self.tok.text) if self.tok.kind != "end" else "end of formula"
            raise self.fail(f"expected {text!r} but found {found}")
        tok = self.tok
        self.i += 1
        return tok

    def enter(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"formula nests deeper than {MAX_DEPTH} levels")

    # -- grammar
    def parse(self) -> sp.Expr:
        if self.tok.kind == "end":
            raise FormulaError("formula is empty")
        expr = self.sum()
        if self.tok.kind != "end":
            raise self.fail(f"unexpected {short(self.tok.text)}")
        return expr

    def sum(self) -> sp.Expr:
        expr = self.product()
        while self.tok.text in ("+", "-"):
            op = self.tok.text
            self.i += 1
            rhs = self.product()
            expr = expr + rhs if op == "+" else expr - rhs
        return expr

    def product(self) -> sp.Expr:
        expr = self.unary()
        while True:
            if self.tok.text in ("*", "/"):
                op = self.tok.text
                self.i += 1
                rhs = self.unary()
                expr = expr * rhs if op == "*" else expr / rhs
            elif self.tok.kind in ("num", "name") or self.tok.text == "(":
                expr = expr * self.unary()      # juxtaposition: 2x, 2(x+1)
            else:
                return expr

    def unary(self) -> sp.Expr:
        if self.tok.text in ("-", "+"):
            op = self.tok.text
            self.i += 1
            self.enter()
            operand = self.unary()
            self.depth -= 1
            return -operand if op == "-" else operand
        return self.power()

    def power(self) -> sp.Expr:
        base = self.atom()
        if self.tok.text in ("^", "**"):
            op_tok = self.tok
            self.i += 1
            self.enter()
            exponent = self.unary()
            self.depth -= 1
            return self.checked_power(base, exponent, op_tok)
        return base

    def checked_power(self, base, exponent, tok: Token) -> sp.Expr:
        if exponent.is_number:
            if not exponent.is_finite:
                raise self.fail("exponent is not a finite number", tok)
            if abs(exponent) > MAX_EXPONENT:
                raise self.fail(f"exponent {exponent} is too large (limit {MAX_EXPONENT})", tok)
            if base.is_number and base != 0 and abs(exponent) * math.log10(abs(float(base)) + 1) > MAX_DIGITS:
                raise self.fail("power is too large", tok)
        return sp.Pow(base, exponent)

    def atom(self) -> sp.Expr:
        tok = self.tok
        if tok.kind == "num":
            self.i += 1
            return _number(tok.text, tok.pos)
        if tok.text == "(":
            self.i += 1
            self.enter()
            expr = self.sum()
            self.depth -= 1
            self.expect(")")
            return expr
        if tok.kind == "name":
            self.i += 1
            if self.tok.text == "(" and (tok.text in FUNCTIONS or tok.text not in self.variables):
                return self.call(tok)
            if tok.text in self.variables:
                return self.variables[tok.text]
            if tok.text in CONSTANTS:
                return CONSTANTS[tok.text]
            if self.free and tok.text not in FUNCTIONS:
                return self.variables.setdefault(tok.text, sp.Symbol(tok.text, real=True))
            if tok.text in FUNCTIONS:
                raise self.fail(f"function {tok.text!r} needs arguments in parentheses", tok)
            known = ", ".join(sorted(self.variables)) or "none"
            raise self.fail(f"unknown name {tok.text!r} (variables allowed here: {known})", tok)
        found = repr(tok.text) if tok.kind != "end" else "end of formula"
        raise self.fail(f"expected a number, a name or '(' but found {found}")

    def call(self, name_tok: Token) -> sp.Expr:
        spec = FUNCTIONS.get(name_tok.text)
        if spec is None:
            known = ", ".join(sorted(FUNCTIONS))
            raise self.fail(f"unknown function {name_tok.text!r} (known: {known})", name_tok)
        self.expect("(")
        self.enter()
        args = [self.sum()]
        while self.tok.text == ",":
            self.i += 1
            args.append(self.sum())
        self.depth -= 1
        self.expect(")")
        if len(args) not in spec.arities:
            want = " or ".join(str(a) for a in spec.arities)
            raise self.fail(f"{name_tok.text}() takes {want} argument(s), got {len(args)}", name_tok)
        return spec.build(*args)


def parse_formula(text: str, variables: list[str] | tuple[str, ...] | None) -> sp.Expr:
    """Parse `text` into a SymPy expression of the given real variables;
    with `variables=None` every name that is not a function is a variable."""
    if not isinstance(text, str):
        raise FormulaError(f"formula must be a string, not {type(text).__name__}")
    symbols = {name: sp.Symbol(name, real=True) for name in (variables or ())}
    return _Parser(text, symbols, free=variables is None).parse()
