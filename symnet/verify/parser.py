"""Parser for hand-derived backprop formulas, written in LaTeX or plain text.

    \\delta^{(2)} = (W^{(3)})^T \\delta^{(3)} \\odot \\sigma'(z^{(2)})
    delta2 = W3^T delta3 * sigma'(z2)
    dz2 = W3.T @ dz3 * g'(z2)

Three steps, each its own function:

1. `parse_formula(text)`: a hand-written tokenizer and a precedence-climbing
   parser build a small immutable AST (the dataclasses below). Notation is
   canonicalised here: `\\Theta` is `W`, `yhat`/`\\hat{y}` is `y` with a hat,
   `a^{(2)}`, `a^{[2]}`, `a_2` and `a2` all carry layer 2, `dW` carries a `d`
   flag, letters i, j, k in subscripts are element indices.
2. `resolve(parsed, symbols, layer=None)`: every Name becomes a Sym naming a
   key of the caller's symbol table (`W2`, `delta3`, `yhat`, ...); a symbolic
   layer `l` is bound to a number; products with a scalar side become Mul.
3. `shape_of(node, symbols)`: shapes by numpy-like rules, with a message that
   names both shapes and the operator's column when they do not fit.

User text is never executed: no eval, exec, sympify or parse_expr. Limits on
length, nesting, tree height and exponents make hostile text fail fast with
a FormulaError.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from fractions import Fraction
from typing import Iterator, Union

from ..errors import FormulaError, ShapeError

MAX_LENGTH = 2000        # characters of formula text
MAX_DEPTH = 50           # nested brackets, arguments and unary signs while parsing
MAX_TREE_HEIGHT = 200    # AST height; keeps recursive walkers far from Python's limit
MAX_EXPONENT = 100       # |n| in x^n, also for stacked powers (x^a)^b
MAX_NUMBER_CHARS = 30    # digits of one number literal
MAX_NUMBER_E = 300       # |e| in 1e-3 style literals

INDEX_LETTERS = "ijk"
KINDS = ("param", "activation", "preact", "delta", "data", "scalar")


class FormulaShapeError(FormulaError, ShapeError):
    """Shapes in a formula do not fit; caught as either parent class."""


# ---------------------------------------------------------------- tokens

@dataclass(frozen=True)
class Token:
    kind: str   # "num", "word", "cmd" (LaTeX command, no backslash), "sym", "end"
    text: str
    pos: int    # 0-based; messages say column pos + 1
    end: int


_TOKEN = re.compile(r"""
    (?P<space>\s+ | \\[,;:!\ ] | \$)
  | (?P<num>(?:\d+(?:\.\d+)? | \.\d+)(?:[eE][+-]?\d+)?)
  | (?P<word>[A-Za-z][A-Za-z0-9]*)
  | (?P<cmd>\\[A-Za-z]+)
  | (?P<sym>\\[{}] | \.\* | \*\* | [-+*/^_@=',.()\[\]{}])
""", re.VERBOSE)

# Commands that only size or space things: dropped like whitespace.
_IGNORED = {"left", "right", "big", "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl",
            "Bigr", "biggl", "biggr", "Biggl", "Biggr", "quad", "qquad",
            "displaystyle", "textstyle", "limits", "nolimits"}

# Unicode people paste from slides, as the tokens their LaTeX spelling gives.
_UNICODE = {
    "δ": [("cmd", "delta")], "Δ": [("cmd", "Delta")], "σ": [("cmd", "sigma")],
    "Θ": [("cmd", "Theta")], "θ": [("cmd", "theta")], "⊙": [("cmd", "odot")],
    "∘": [("cmd", "circ")], "·": [("cmd", "cdot")], "⋅": [("cmd", "cdot")],
    "×": [("cmd", "times")], "∑": [("cmd", "sum")], "′": [("sym", "'")],
    "−": [("sym", "-")], "ᵀ": [("sym", "^"), ("word", "T")],
}


def tokenize(text: str) -> list[Token]:
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"formula is {len(text)} characters long; the limit is {MAX_LENGTH}")
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos] in _UNICODE:
            tokens += [Token(kind, t, pos, pos + 1) for kind, t in _UNICODE[text[pos]]]
            pos += 1
            continue
        m = _TOKEN.match(text, pos)
        if not m:
            raise FormulaError(f"unexpected character {text[pos]!r} at column {pos + 1}; "
                               "expected a name, a number, an operator or a LaTeX command")
        kind, tok_text = m.lastgroup, m.group()
        if kind == "cmd":
            tok_text = tok_text[1:]
            if tok_text in _IGNORED:
                kind = "space"
        if kind == "num" and len(tok_text) > MAX_NUMBER_CHARS:
            raise FormulaError(f"number at column {pos + 1} has more than {MAX_NUMBER_CHARS} "
                               "characters; expected a shorter number")
        if kind != "space":
            tokens.append(Token(kind, tok_text, pos, m.end()))
        pos = m.end()
    tokens.append(Token("end", "", len(text), len(text)))
    return tokens


def _describe(tok: Token) -> str:
    if tok.kind == "end":
        return "end of formula"
    return repr("\\" + tok.text if tok.kind == "cmd" else tok.text)


# ---------------------------------------------------------------- AST

@dataclass(frozen=True)
class LayerRef:
    """A symbolic layer such as l, l+1, L-1; `resolve` turns it into a number."""
    symbol: str      # "l" (bound by resolve's layer=) or "L" (the last layer)
    offset: int = 0


@dataclass(frozen=True)
class Node:
    # Source span (start, end), 0-based; left out of == so that notations compare.
    span: tuple[int, int] = field(default=(0, 0), compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Num(Node):
    value: Fraction


@dataclass(frozen=True)
class Name(Node):
    """A parsed name: base letters (canonical: W, b, z, a, delta, x, y, ...)."""
    base: str
    layer: Union[int, LayerRef, None] = None
    indices: tuple[str, ...] = ()
    hat: bool = False
    d: bool = False          # Andrew Ng's dW / db / da / dz


@dataclass(frozen=True)
class Sym(Node):
    """A resolved name: a key of the symbol table."""
    key: str
    indices: tuple[str, ...] = ()
    d: bool = False          # the gradient of `key` (dW2), not `key` itself


@dataclass(frozen=True)
class Transpose(Node):
    expr: Node


@dataclass(frozen=True)
class Neg(Node):
    expr: Node


@dataclass(frozen=True)
class Pow(Node):
    base: Node
    exponent: int


@dataclass(frozen=True)
class Call(Node):
    func: str                # sigma, tanh, exp, log, sqrt, relu, softmax, g
    args: tuple[Node, ...]
    prime: bool = False      # the derivative: sigma'(z), g'(z)


@dataclass(frozen=True)
class Sum(Node):
    index: str
    body: Node
    lower: str | None = None     # bounds kept as source text, never resolved
    upper: str | None = None


@dataclass(frozen=True)
class Binary(Node):
    left: Node
    right: Node
    op_pos: int = field(default=0, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Add(Binary):
    pass


@dataclass(frozen=True)
class Sub(Binary):
    pass


@dataclass(frozen=True)
class MatMul(Binary):
    """Juxtaposition, \\cdot, \\times or @."""


@dataclass(frozen=True)
class Hadamard(Binary):
    """\\odot, \\circ, .* or * (people mean * element-wise)."""


@dataclass(frozen=True)
class Mul(Binary):
    """A product with a scalar side: 2(a - y), \\frac{1}{n} \\sum ..., a_i b_i."""


@dataclass(frozen=True)
class Div(Binary):
    """a / b and \\frac{a}{b}."""


def children(node: Node) -> Iterator[Node]:
    for f in fields(node):
        value = getattr(node, f.name)
        if isinstance(value, Node):
            yield value
        elif isinstance(value, tuple):
            yield from (v for v in value if isinstance(v, Node))


@dataclass(frozen=True)
class ParsedFormula:
    lhs: Node | None     # the claimed target of `lhs = rhs`, if written
    rhs: Node
    source: str


# ---------------------------------------------------------------- parser

_PREC_ADD, _PREC_ELEM, _PREC_MATMUL = 1, 2, 3
_OPENERS = {"(": ")", "[": "]", "{": "}", "\\{": "\\}"}
_SYM_OPS = {"+": (Add, _PREC_ADD), "-": (Sub, _PREC_ADD), "*": (Hadamard, _PREC_ELEM),
            ".*": (Hadamard, _PREC_ELEM), "/": (Div, _PREC_ELEM), "@": (MatMul, _PREC_MATMUL)}
_CMD_OPS = {"odot": (Hadamard, _PREC_ELEM), "circ": (Hadamard, _PREC_ELEM),
            "cdot": (MatMul, _PREC_MATMUL), "times": (MatMul, _PREC_MATMUL)}
_NOT_ATOMS = set(_CMD_OPS) | {"top", "intercal", "prime"}

_FUNCTIONS = {"sigma": "sigma", "sigmoid": "sigma", "tanh": "tanh", "exp": "exp",
              "log": "log", "ln": "log", "sqrt": "sqrt", "relu": "relu", "ReLU": "relu",
              "softmax": "softmax", "g": "g", "f": "g"}
_NAME_COMMANDS = {"delta", "Delta", "Theta", "theta"}
_WRAPPERS = {"mathbf", "boldsymbol", "bm", "mathrm", "mathit", "operatorname", "text",
             "vec", "mathsf", "rm", "sf"}
_SYNONYMS = {"Theta": "W", "theta": "W"}
_D_BASES = {"z", "Z", "W", "w", "b", "a", "A", "x", "X", "Theta", "theta"}
_MODULES_HINT = "math such as W3^T delta3 or W3.T @ delta3"


def _canonical(letters: str) -> tuple[str, bool, bool]:
    """(base, hat, d) of a name's letters: yhat -> (y, hat), dW -> (W, d)."""
    hat = d = False
    if letters.endswith("hat") and len(letters) > 3:
        letters, hat = letters[:-3], True
    if letters != "delta" and letters[:1] == "d" and letters[1:] in _D_BASES:
        letters, d = letters[1:], True
    return _SYNONYMS.get(letters, letters), hat, d


def _is_number(node: Node) -> bool:
    """Literal numbers only (no recursion: chains may be long before the height check)."""
    if isinstance(node, Neg):
        node = node.expr
    if isinstance(node, Div):
        return isinstance(node.left, Num) and isinstance(node.right, Num)
    return isinstance(node, Num)


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0

    # -- helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def peek(self, k: int = 1) -> Token:
        return self.tokens[min(self.i + k, len(self.tokens) - 1)]

    def advance(self) -> Token:
        tok = self.tok
        if tok.kind != "end":
            self.i += 1
        return tok

    @property
    def last_end(self) -> int:
        return self.tokens[self.i - 1].end if self.i else 0

    @staticmethod
    def is_sym(tok: Token, *texts: str) -> bool:
        return tok.kind == "sym" and tok.text in texts

    def fail(self, pos: int, what: str, expected: str | None = None) -> FormulaError:
        message = f"{what} at column {pos + 1}"
        return FormulaError(message + (f"; expected {expected}" if expected else ""))

    def expect_sym(self, text: str, opened: Token | None = None) -> Token:
        if not self.is_sym(self.tok, text):
            want = f"{text!r}" + (f" to close {opened.text!r} from column {opened.pos + 1}" if opened else "")
            raise self.fail(self.tok.pos, f"found {_describe(self.tok)}", want)
        return self.advance()

    @contextmanager
    def nested(self, tok: Token):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(tok.pos, f"formula nested deeper than {MAX_DEPTH} levels",
                            "a flatter formula")
        try:
            yield
        finally:
            self.depth -= 1

    def starts_atom(self, tok: Token) -> bool:
        if tok.kind in ("num", "word"):
            return True
        if tok.kind == "cmd":
            return tok.text not in _NOT_ATOMS
        return self.is_sym(tok, *_OPENERS)

    # -- formula and binary operators
    def parse(self) -> ParsedFormula:
        if self.tok.kind == "end":
            raise FormulaError("the formula is empty; expected an expression such as W2^T delta2")
        first = self.expression()
        lhs = None
        if self.is_sym(self.tok, "="):
            lhs = first
            self.advance()
            first = self.expression()
        if self.tok.kind != "end":
            if self.is_sym(self.tok, "="):
                raise self.fail(self.tok.pos, "a second '='", "one equation, lhs = rhs")
            raise self.fail(self.tok.pos, f"unexpected {_describe(self.tok)}",
                            "an operator or the end of the formula")
        return ParsedFormula(lhs, first, self.text)

    def expression(self) -> Node:
        return self.binary(_PREC_ADD)

    def operator(self) -> tuple[type, int, bool] | None:
        """(node class, precedence, consumes a token) of the operator ahead."""
        tok = self.tok
        if tok.kind == "sym" and tok.text in _SYM_OPS:
            return (*_SYM_OPS[tok.text], True)
        if tok.kind == "cmd" and tok.text in _CMD_OPS:
            return (*_CMD_OPS[tok.text], True)
        if self.starts_atom(tok):
            return MatMul, _PREC_MATMUL, False      # juxtaposition: W^T delta, 2(a - y)
        return None

    def binary(self, min_prec: int) -> Node:
        left = self.unary()
        while (op := self.operator()) and op[1] >= min_prec:
            kind, prec, consumes = op
            op_tok = self.advance() if consumes else self.tok
            if self.tok.kind == "end":
                raise self.fail(op_tok.pos, f"nothing after {_describe(op_tok)}", "an operand")
            right = self.binary(prec + 1)
            if kind is MatMul and (_is_number(left) or _is_number(right)):
                kind = Mul
            left = kind(left, right, span=(left.span[0], right.span[1]), op_pos=op_tok.pos)
        return left

    def unary(self) -> Node:
        tok = self.tok
        if self.is_sym(tok, "-", "+"):
            self.advance()
            with self.nested(tok):
                operand = self.binary(_PREC_MATMUL)
            if tok.text == "+":
                return operand
            return Neg(operand, span=(tok.pos, operand.span[1]))
        return self.postfix(self.atom())

    # -- atoms
    def atom(self) -> Node:
        tok = self.tok
        with self.nested(tok):
            if tok.kind == "num":
                return self.number()
            if tok.kind == "word":
                return self.word(self.advance())
            if tok.kind == "cmd":
                return self.command(self.advance())
            if self.is_sym(tok, *_OPENERS):
                return self.group()
            raise self.fail(tok.pos, f"unexpected {_describe(tok)}",
                            "a name, a number or an opening bracket")

    def number(self) -> Num:
        tok = self.advance()
        exp10 = tok.text.lower().partition("e")[2]
        if exp10 and abs(int(exp10)) > MAX_NUMBER_E:
            raise self.fail(tok.pos, f"number {tok.text} is out of range", "a smaller exponent")
        # Fraction reads the literal exactly; the regex allowed digits only.
        return Num(Fraction(tok.text), span=(tok.pos, tok.end))

    def group(self) -> Node:
        opened = self.advance()
        close = _OPENERS[opened.text]
        if self.is_sym(self.tok, close):
            raise self.fail(self.tok.pos, f"empty {opened.text}{close}", "an expression inside")
        expr = self.expression()
        self.expect_sym(close, opened)
        return expr

    def word(self, tok: Token) -> Node:
        nxt, after = self.tok, self.peek()
        if self.is_sym(nxt, ".") and after.kind == "word" and after.text != "T":
            raise self.fail(tok.pos, f"'{tok.text}.{after.text}': module and method calls are "
                            "not allowed", _MODULES_HINT)
        m = re.fullmatch(r"([A-Za-z]+)(\d*)", tok.text)
        if not m:
            raise self.fail(tok.pos, f"name {tok.text!r}",
                            "letters then an optional layer number, like W2 or delta3")
        letters, digits = m.groups()
        if not digits and letters == "sum":
            return self.sum(tok)
        if not digits and letters in _FUNCTIONS:
            return self.call(tok, _FUNCTIONS[letters])
        return self.name(tok, letters, digits)

    def command(self, tok: Token) -> Node:
        name = tok.text
        if name in _FUNCTIONS:
            return self.call(tok, _FUNCTIONS[name])
        if name in _NAME_COMMANDS:
            digits = ""
            if self.tok.kind == "num" and self.tok.pos == tok.end and self.tok.text.isdigit():
                digits = self.advance().text        # δ2, \delta2: a layer, as in delta2
            return self.name(tok, name, digits)
        if name in ("frac", "dfrac", "tfrac"):
            return self.frac(tok)
        if name == "sum":
            return self.sum(tok)
        if name in ("hat", "widehat"):
            return self.hat(tok)
        if name in _WRAPPERS:
            return self.wrapped(tok)
        raise self.fail(tok.pos, f"unknown command \\{name}",
                        "a command such as \\delta, \\sigma, \\frac, \\sum, \\odot or \\top")

    def wrapped(self, tok: Token) -> Node:
        """\\mathbf{W}, \\operatorname{relu}: the braces hold one name."""
        opened = self.expect_sym("{")
        inner = self.advance()
        if inner.kind not in ("word", "cmd"):
            raise self.fail(inner.pos, f"{_describe(inner)} inside \\{tok.text}", "a name")
        self.expect_sym("}", opened)
        return self.word(inner) if inner.kind == "word" else self.command(inner)

    def hat(self, tok: Token) -> Node:
        opened = self.advance() if self.is_sym(self.tok, "{") else None
        inner = self.advance()
        if inner.kind != "word" or not inner.text.isalpha():
            raise self.fail(inner.pos, f"{_describe(inner)} under \\{tok.text}", "a name such as y")
        if opened:
            self.expect_sym("}", opened)
        return self.name(tok, inner.text, "", hat=True)

    def frac(self, tok: Token) -> Div:
        parts = []
        for _ in range(2):
            if not self.is_sym(self.tok, "{"):
                raise self.fail(self.tok.pos, f"found {_describe(self.tok)}",
                                f"'{{' after \\{tok.text}, as in \\frac{{1}}{{n}}")
            parts.append(self.group())
        return Div(parts[0], parts[1], span=(tok.pos, self.last_end), op_pos=tok.pos)

    # -- names, sub- and superscripts
    def name(self, tok: Token, letters: str, digits: str, hat: bool = False) -> Node:
        base, word_hat, d = _canonical(letters)
        hat = hat or word_hat
        layer: int | LayerRef | None = int(digits) if digits else None
        indices: tuple[str, ...] = ()
        pending = []        # transposes and powers, applied after the name is complete
        seen_sub = False
        while self.is_sym(self.tok, "_", "^"):
            mark = self.advance()
            if mark.text == "_":
                if seen_sub:
                    raise self.fail(mark.pos, "a second subscript", "one subscript, like _{k,i}")
                seen_sub = True
                items = self.subscript()
            else:
                items = self.superscript()
            for kind, value, pos in items:
                if kind == "layer":
                    if layer is not None or pending:
                        raise self.fail(pos, "a second layer on one name", "one layer, like W^{(2)}")
                    layer = value
                elif kind == "index":
                    indices += value
                elif kind == "hat":
                    hat = True
                elif kind == "prime":
                    raise self._prime_error(pos)
                else:
                    pending.append((kind, value, pos))
        node = Name(base, layer, indices, hat, d, span=(tok.pos, self.last_end))
        return self.apply_superscripts(node, pending)

    def subscript(self) -> list[tuple]:
        if not self.is_sym(self.tok, "{"):
            return [self.subscript_part(braced=False)]
        opened = self.advance()
        items = [self.subscript_part(braced=True)]
        while self.is_sym(self.tok, ","):
            self.advance()
            items.append(self.subscript_part(braced=True))
        self.expect_sym("}", opened)
        return items

    def subscript_part(self, braced: bool) -> tuple:
        tok = self.tok
        if tok.kind == "num" and tok.text.isdigit():
            self.advance()
            return "layer", int(tok.text), tok.pos
        if tok.kind == "word" and tok.text in ("l", "L"):
            return "layer", self.layer_symbol(braced), tok.pos
        if tok.kind == "word" and tok.text == "hat":
            self.advance()
            return "hat", True, tok.pos
        if tok.kind == "word" and set(tok.text) <= set(INDEX_LETTERS):
            self.advance()
            return "index", tuple(tok.text), tok.pos
        raise self.fail(tok.pos, f"subscript {_describe(tok)}",
                        "a layer number, l, l+1, or index letters i, j, k")

    def layer_symbol(self, braced: bool) -> LayerRef:
        """l, L, and inside brackets l+1, l-1, L-1."""
        symbol = self.advance().text
        if braced and self.is_sym(self.tok, "+", "-") and self.peek().kind == "num":
            sign = 1 if self.advance().text == "+" else -1
            number = self.advance()
            if not number.text.isdigit():
                raise self.fail(number.pos, f"layer offset {number.text}", "a whole number")
            return LayerRef(symbol, sign * int(number.text))
        return LayerRef(symbol)

    def superscript(self) -> list[tuple]:
        if not self.is_sym(self.tok, "{"):
            return [self.superscript_item(braced=False)]
        opened = self.advance()
        items = []
        while not self.is_sym(self.tok, "}"):
            if self.tok.kind == "end":
                self.expect_sym("}", opened)
            items.append(self.superscript_item(braced=True))
        if not items:
            raise self.fail(opened.pos, "empty superscript", "T, a layer or a power")
        self.advance()
        return items

    def superscript_item(self, braced: bool) -> tuple:
        tok = self.tok
        if (tok.kind == "word" and tok.text == "T") or (tok.kind == "cmd" and tok.text in ("top", "intercal")):
            self.advance()
            return "T", None, tok.pos
        if (tok.kind == "cmd" and tok.text == "prime") or self.is_sym(tok, "'"):
            self.advance()
            return "prime", None, tok.pos
        if tok.kind == "cmd" and tok.text in _WRAPPERS and self.is_sym(self.peek(), "{") \
                and self.peek(2).text == "T" and self.is_sym(self.peek(3), "}"):
            for _ in range(4):              # \mathsf{T}
                self.advance()
            return "T", None, tok.pos
        if self.is_sym(tok, "(", "["):
            return "layer", self.bracketed_layer(), tok.pos
        if tok.kind == "word" and tok.text in ("l", "L"):
            return "layer", self.layer_symbol(braced), tok.pos
        if tok.kind == "num" or (self.is_sym(tok, "-") and self.peek().kind == "num"):
            return "power", self.power_exponent(), tok.pos
        raise self.fail(tok.pos, f"superscript {_describe(tok)}",
                        "T, \\top, a layer such as (2), [l] or (l+1), or a whole-number power")

    def bracketed_layer(self) -> int | LayerRef:
        opened = self.advance()
        tok = self.tok
        if tok.kind == "num" and tok.text.isdigit():
            self.advance()
            layer: int | LayerRef = int(tok.text)
        elif tok.kind == "word" and tok.text in ("l", "L"):
            layer = self.layer_symbol(braced=True)
        else:
            raise self.fail(tok.pos, f"layer {_describe(tok)}",
                            "a layer number, l, l+1, l-1 or L (sample indices like (i) are not supported)")
        self.expect_sym(_OPENERS[opened.text], opened)
        return layer

    def power_exponent(self) -> int:
        sign = -1 if self.is_sym(self.tok, "-") and self.advance() else 1
        tok = self.advance()
        if not tok.text.isdigit():
            raise self.fail(tok.pos, f"exponent {tok.text}", "a whole number")
        if len(tok.text) > 4 or int(tok.text) > MAX_EXPONENT:
            raise self.fail(tok.pos, f"exponent {tok.text} is too large", f"at most {MAX_EXPONENT}")
        return sign * int(tok.text)

    def apply_superscripts(self, node: Node, items: list[tuple]) -> Node:
        for kind, value, pos in items:
            end = max(self.last_end, node.span[1])
            if kind == "T":
                node = Transpose(node, span=(node.span[0], end))
            elif kind == "power":
                if isinstance(node, Pow):       # (x^a)^b is x^(ab): one size check
                    node, value = node.base, node.exponent * value
                    if abs(value) > MAX_EXPONENT:
                        raise self.fail(pos, "stacked powers are too large",
                                        f"a total exponent of at most {MAX_EXPONENT}")
                node = Pow(node, value, span=(node.span[0], end))
            elif kind == "layer":
                raise self.fail(pos, "a layer superscript on an expression",
                                "the layer right after the name, like W^{(3)}")
            elif kind == "prime":
                raise self._prime_error(pos)
            else:
                raise self.fail(pos, f"superscript {kind}", "T or a power")
        return node

    def _prime_error(self, pos: int) -> FormulaError:
        return self.fail(pos, "a prime is not a transpose",
                         "^T or \\top (a prime only marks a derivative, as in g'(z) or \\sigma'(z))")

    def postfix(self, node: Node) -> Node:
        while True:
            tok = self.tok
            if self.is_sym(tok, "^"):
                self.advance()
                node = self.apply_superscripts(node, self.superscript())
            elif self.is_sym(tok, "**"):
                self.advance()
                node = self.apply_superscripts(node, [("power", self.power_exponent(), tok.pos)])
            elif self.is_sym(tok, ".") and self.peek().kind == "word" and self.peek().text == "T":
                self.advance()
                self.advance()
                node = Transpose(node, span=(node.span[0], self.last_end))
            elif self.is_sym(tok, "."):
                raise self.fail(tok.pos, "unexpected '.'", ".T (transpose) or .* (element-wise product)")
            elif self.is_sym(tok, "'"):
                raise self._prime_error(tok.pos)
            elif self.is_sym(tok, "_"):
                raise self.fail(tok.pos, "a subscript on an expression",
                                "subscripts right after a name, like a_i")
            else:
                return node

    # -- functions and sums
    def call(self, tok: Token, func: str) -> Node:
        prime, powers = False, []
        while self.is_sym(self.tok, "'", "^"):
            mark = self.advance()
            items = [("prime", None, mark.pos)] if mark.text == "'" else self.superscript()
            for kind, value, pos in items:
                if kind == "prime":
                    if prime:
                        raise self.fail(pos, "a second derivative", "at most one prime")
                    prime = True
                elif kind == "power":
                    powers.append((kind, value, pos))
                elif not (kind == "layer" and func == "g"):     # g^{[l]}: layer l's activation
                    raise self.fail(pos, f"superscript {kind} on {tok.text}",
                                    "a prime or a power, as in \\sigma'(z) or \\tanh^2(z)")
        if func == "sqrt" and self.is_sym(self.tok, "["):
            raise self.fail(self.tok.pos, "\\sqrt[n] roots are not supported", "\\sqrt{x}")
        if self.is_sym(self.tok, *_OPENERS):
            arg = self.group()
        elif self.tok.kind in ("num", "word") or self.tok.kind == "cmd" and self.starts_atom(self.tok):
            arg = self.postfix(self.atom())         # \log x, \exp z_i
        else:
            raise self.fail(self.tok.pos, f"found {_describe(self.tok)}",
                            f"an argument of {tok.text}, as in {tok.text}(z)")
        node = Call(func, (arg,), prime, span=(tok.pos, self.last_end))
        return self.apply_superscripts(node, powers)

    def sum(self, tok: Token) -> Sum:
        index = lower = upper = None
        while self.is_sym(self.tok, "_", "^"):
            mark = self.advance()
            if mark.text == "_" and index is None:
                index, lower = self.sum_index()
            elif mark.text == "^" and upper is None:
                upper = self.raw_group()
            else:
                raise self.fail(mark.pos, f"a second {mark.text!r} on \\sum", "\\sum_{k=1}^{n}")
        if index is None:
            raise self.fail(tok.pos, "a sum without an index", "\\sum_k or \\sum_{k=1}^{n}")
        if not self.starts_atom(self.tok) and not self.is_sym(self.tok, "-"):
            raise self.fail(self.tok.pos, f"found {_describe(self.tok)}", "the summand after \\sum")
        body = self.binary(_PREC_ELEM)
        return Sum(index, body, lower, upper, span=(tok.pos, body.span[1]))

    def sum_index(self) -> tuple[str, str | None]:
        opened = self.advance() if self.is_sym(self.tok, "{") else None
        tok = self.advance()
        if tok.kind != "word" or len(tok.text) != 1 or tok.text not in INDEX_LETTERS:
            raise self.fail(tok.pos, f"sum index {_describe(tok)}", "one of the letters i, j, k")
        lower = None
        if opened:
            if self.is_sym(self.tok, "="):
                self.advance()
                lower = self.raw_until(opened)
            else:
                self.expect_sym("}", opened)
        return tok.text, lower

    def raw_group(self) -> str:
        """A bound's source text: {...} or one token."""
        if self.is_sym(self.tok, "{"):
            opened = self.advance()
            return self.raw_until(opened)
        tok = self.advance()
        if tok.kind not in ("num", "word"):
            raise self.fail(tok.pos, f"sum bound {_describe(tok)}", "a number or a name such as n")
        return tok.text

    def raw_until(self, opened: Token) -> str:
        start, level = self.tok.pos, 0
        while not (level == 0 and self.is_sym(self.tok, "}")):
            if self.tok.kind == "end":
                self.expect_sym("}", opened)
            level += self.is_sym(self.tok, "{") - self.is_sym(self.tok, "}")
            self.advance()
        text = self.text[start:self.tok.pos].strip()
        self.advance()
        if not text:
            raise self.fail(start, "empty sum bound", "a number or a name such as n")
        return text


def _check_height(root: Node) -> None:
    """Iteratively, since long chains (a+b+c+...) make deep left-leaning trees."""
    stack = [(root, 1)]
    while stack:
        node, height = stack.pop()
        if height > MAX_TREE_HEIGHT:
            raise FormulaError(f"more than {MAX_TREE_HEIGHT} chained operations at column "
                               f"{node.span[0] + 1}; expected a shorter formula")
        stack.extend((child, height + 1) for child in children(node))


def parse_formula(text: str) -> ParsedFormula:
    """Parse `text` (LaTeX or plain text) into an AST; `lhs = ` is split off."""
    if not isinstance(text, str):
        raise FormulaError(f"formula must be a string, not {type(text).__name__}")
    try:
        parsed = _Parser(text).parse()
    except RecursionError:      # a backstop: MAX_DEPTH should stop nesting first
        raise FormulaError(f"formula nested too deeply at column 1; expected at most "
                           f"{MAX_DEPTH} levels") from None
    for node in (parsed.lhs, parsed.rhs):
        if node is not None:
            _check_height(node)
    return parsed


# ---------------------------------------------------------------- resolver

@dataclass(frozen=True)
class SymbolInfo:
    kind: str                  # one of KINDS
    shape: tuple[int, ...]

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"symbol kind {self.kind!r}; expected one of {', '.join(KINDS)}")


@dataclass(frozen=True)
class ResolvedFormula:
    lhs: Node | None
    rhs: Node
    source: str
    layer: int | None = None


class _Resolver:
    def __init__(self, source: str, symbols: dict[str, SymbolInfo], layer: int | None):
        self.source = source
        self.symbols = symbols
        self.layer = layer

    def fail(self, node: Node, what: str, expected: str) -> FormulaError:
        return FormulaError(f"{what} at column {node.span[0] + 1}; {expected}")

    def resolve(self, node: Node) -> tuple[Node, bool]:
        """(resolved node, whether it is a scalar)."""
        if isinstance(node, Name):
            sym = self.name(node)
            return sym, bool(sym.indices) or self.symbols[sym.key].shape == ()
        if isinstance(node, Num):
            return node, True
        changes, scalars = {}, []
        for f in fields(node):
            value = getattr(node, f.name)
            if isinstance(value, Node):
                changes[f.name], scalar = self.resolve(value)
                scalars.append(scalar)
            elif isinstance(value, tuple) and value and isinstance(value[0], Node):
                pairs = [self.resolve(v) for v in value]
                changes[f.name] = tuple(p[0] for p in pairs)
                scalars += [p[1] for p in pairs]
        new = replace(node, **changes)
        if isinstance(new, (MatMul, Hadamard)) and any(scalars):
            new = Mul(new.left, new.right, span=new.span, op_pos=new.op_pos)
        return new, all(scalars)

    def name(self, node: Name) -> Sym:
        layer = self.layer_number(node)
        base, d = node.base, node.d
        if d and base in ("z", "Z"):        # Ng's dz^{[l]} is delta^{(l)}
            base, d = "delta", False
        if node.hat:
            base += "hat"
        key = base + ("" if layer is None else str(layer))
        candidates = [key]
        if base in ("Z", "A", "X", "Y"):    # batch capitals of the same quantity
            candidates.append(key.lower())
        if base == "a" and layer == 0:      # a^{(0)} is the input
            candidates.append("x")
        for candidate in candidates:
            if candidate in self.symbols:
                return Sym(candidate, node.indices, d, span=node.span)
        raw = self.source[node.span[0]:node.span[1]]
        read = "" if raw == key else f" (read as {key})"
        known = list(self.symbols)
        listed = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "")
        raise self.fail(node, f"unknown name '{raw}'{read}", f"known: {listed or 'none'}")

    def layer_number(self, node: Name) -> int | None:
        layer = node.layer
        if not isinstance(layer, LayerRef):
            return layer
        if layer.symbol == "l":
            if self.layer is None:
                raise self.fail(node, "the formula uses the symbolic layer l",
                                "give the layer number to check, e.g. layer=2")
            return self.layer + layer.offset
        last = [int(k[1:]) for k in self.symbols if re.fullmatch(r"W\d+", k)]
        if not last:
            raise self.fail(node, "the formula uses the last layer L",
                            "a symbol table with weights W1, W2, ...")
        return max(last) + layer.offset


def resolve(parsed: ParsedFormula, symbols: dict[str, SymbolInfo],
            layer: int | None = None) -> ResolvedFormula:
    """Map every Name to a key of `symbols`; bind the symbolic layer l to `layer`."""
    if layer is not None and (not isinstance(layer, int) or isinstance(layer, bool)):
        raise FormulaError(f"layer must be a whole number, not {layer!r}")
    resolver = _Resolver(parsed.source, symbols, layer)
    lhs = resolver.resolve(parsed.lhs)[0] if parsed.lhs is not None else None
    return ResolvedFormula(lhs, resolver.resolve(parsed.rhs)[0], parsed.source, layer)


# ---------------------------------------------------------------- shapes

_OP_NAMES = {Add: "addition", Sub: "subtraction", Hadamard: "element-wise product",
             Mul: "product", Div: "division"}


def _as_matrix(shape: tuple[int, ...], node: Binary) -> tuple[int, int]:
    if len(shape) == 1:
        return shape[0], 1          # column vector
    if len(shape) != 2:
        raise FormulaShapeError(f"matrix product at column {node.op_pos + 1}: {shape} has "
                                f"{len(shape)} axes; expected a matrix or a vector")
    return shape


def _matmul(a: tuple, b: tuple, node: Binary) -> tuple:
    if a == () or b == ():
        return b or a
    ma, mb = _as_matrix(a, node), _as_matrix(b, node)
    if ma[1] == mb[0]:
        return ma[0], mb[1]
    if ma == mb and 1 in ma:
        hint = "; an element-wise product (\\odot or *) meant?"
    elif ma[0] == mb[0] or ma[1] == mb[1]:
        hint = "; a transpose missing?"
    else:
        hint = ""
    raise FormulaShapeError(f"matrix product at column {node.op_pos + 1}: {a} times {b} "
                            f"do not fit{hint}")


def _elementwise(a: tuple, b: tuple, node: Binary) -> tuple:
    if a == b or b == ():
        return a
    if a == ():
        return b
    hint = "; a transpose missing?" if a == b[::-1] else ""
    raise FormulaShapeError(f"{_OP_NAMES[type(node)]} at column {node.op_pos + 1}: "
                            f"{a} and {b} differ{hint}")


def shape_of(node: Node | ResolvedFormula, symbols: dict[str, SymbolInfo]) -> tuple[int, ...]:
    """The shape of a resolved node (of the right side, given a ResolvedFormula)."""
    if isinstance(node, ResolvedFormula):
        node = node.rhs
    if isinstance(node, Num):
        return ()
    if isinstance(node, Sym):
        return () if node.indices else tuple(symbols[node.key].shape)
    if isinstance(node, Name):
        raise TypeError("shape_of needs a resolved formula; call resolve() first")
    if isinstance(node, Transpose):
        shape = shape_of(node.expr, symbols)
        if len(shape) > 2:
            raise FormulaShapeError(f"transpose at column {node.span[0] + 1}: {shape} has "
                                    f"{len(shape)} axes; expected a matrix or a vector")
        return shape[::-1] if len(shape) == 2 else shape
    if isinstance(node, (Neg, Pow)):
        return shape_of(node.expr if isinstance(node, Neg) else node.base, symbols)
    if isinstance(node, Call):
        return shape_of(node.args[0], symbols)      # all functions act element-wise
    if isinstance(node, Sum):
        return shape_of(node.body, symbols)
    if isinstance(node, Binary):
        a, b = shape_of(node.left, symbols), shape_of(node.right, symbols)
        return _matmul(a, b, node) if isinstance(node, MatMul) else _elementwise(a, b, node)
    raise TypeError(f"not a formula node: {node!r}")


def check_shapes(resolved: ResolvedFormula, symbols: dict[str, SymbolInfo]) -> tuple[int, ...]:
    """The right side's shape, after checking that it matches the claimed left side."""
    rhs = shape_of(resolved.rhs, symbols)
    if resolved.lhs is not None:
        lhs = shape_of(resolved.lhs, symbols)
        if lhs != rhs:
            raise FormulaShapeError(f"right side at column {resolved.rhs.span[0] + 1} has shape "
                                    f"{rhs}; expected {lhs}, the shape of the left side")
    return rhs
