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

BATCH_AXIS = 1_000_003     # the example axis of batch shape tables (engine): no layer has this size
INDEX_LETTERS = "ijkfcmnpqrtuvh"    # in subscripts and under \\sum (m, n elsewhere: the batch size)
SAMPLE_LETTERS = "ie"                # x^{(i)}: example i (Andrew Ng's sample superscript)
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
  | (?P<sym>\\[{}_] | \.\* | \*\* | >= | <= | != | [-+*/^_@=',.()\[\]{}<>:])
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
    "−": [("sym", "-")], "ᵀ": [("sym", "^"), ("word", "T")], "≤": [("cmd", "le")],
    "≥": [("cmd", "ge")], "≠": [("cmd", "neq")], "∂": [("cmd", "partial")], "π": [("cmd", "pi")],
    "★": [("cmd", "star")],
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
        if kind == "sym" and tok_text == "\\_":       # running\_var: an escaped underscore
            tok_text = "_"
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
class Affine:
    """An index expression in a subscript: x_{c, s i + m} has terms ((1, 's', 'i'),
    (1, '', 'm')); a constant term has letter ''; coefficient symbol 's' is the stride.
    \\frac{i + 1 - m}{2} has divisor 2: an entry only where 2 divides the numerator."""
    terms: tuple
    divisor: int = 1
    floor: bool = False      # \\lfloor u/2 \\rfloor: rounded down, an entry for every u

    @property
    def letters(self) -> tuple:
        return tuple(t[2] for t in self.terms if t[2])

    def __str__(self) -> str:
        out = ""
        for coef, sym, letter in self.terms:
            text = ((str(abs(coef)) if abs(coef) != 1 or not (sym or letter) else "")
                    + (sym + " " if sym else "") + letter).strip()
            out += (" - " if coef < 0 else " + ") + text if out else ("-" if coef < 0 else "") + text
        if self.divisor == 1:
            return out
        return f"\\lfloor {out}/{self.divisor} \\rfloor" if self.floor else f"\\frac{{{out}}}{{{self.divisor}}}"


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
    sample: bool = field(default=False, compare=False)   # dZ^{[2](i)}: one example's column
    bar: bool = False        # \\bar{a}^{(l)}: the gradient arriving at a^{(l)}; \\bar{x}^{(l)}: at layer l's input
    summed: bool = False     # \\partial \\mathcal{L}: the summed loss m L
    tilde: bool = False      # \\tilde{a}^{(l)}: zero-padded as the next conv layer's input
    check: bool = False      # \\check{\\delta}^{(l)}: dilated by layer l's stride


@dataclass(frozen=True)
class Sym(Node):
    """A resolved name: a key of the symbol table."""
    key: str
    indices: tuple = ()      # index letters, or Affine index expressions
    d: bool = False          # the gradient of `key` (dW2), not `key` itself
    sample: bool = field(default=False, compare=False)
    summed: bool = False     # the gradient of the summed loss m L (\\partial \\mathcal{L})
    tilde: bool = False      # indexed on the zero-padded input (Name.tilde)
    check: bool = False      # dilated by its layer's stride (Name.check)
    role: str = ""           # an argmax position of max pooling: "row" or "col"


@dataclass(frozen=True)
class IndexValue(Node):
    """An index letter used as a number, as in \\mathbb{1}[0 \\le u - 2i \\le 1]."""
    letter: str


@dataclass(frozen=True)
class Const(Node):
    name: str                # "pi"


@dataclass(frozen=True)
class Compare(Node):
    """An Iverson bracket: 1 where `left op right` holds, else 0."""
    op: str                  # ">", "<", ">=", "<=", "==", "!="
    left: Node
    right: Node


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
    func: str                # sigma, tanh, exp, log, sqrt, relu, softmax, g, sign, erf, sech, diag
    args: tuple[Node, ...]
    prime: bool = False      # the derivative: sigma'(z), g'(z)


@dataclass(frozen=True)
class Sum(Node):
    index: str               # "" for a bare \\sum: over the examples
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
class Star(Binary):
    """\\star: the correlation of a layer's (zero-padded) input with its delta maps, giving dW."""


@dataclass(frozen=True)
class Ast(Binary):
    """\\ast: full(delta) correlated with rot180(W) over the filters, giving the input gradient
    (cropped by the layer's padding)."""


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


def walk(node: Node) -> Iterator[Node]:
    """node and every node below it."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(children(n))


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
            "cdot": (MatMul, _PREC_MATMUL), "times": (MatMul, _PREC_MATMUL),
            "star": (Star, _PREC_ELEM), "ast": (Ast, _PREC_ELEM)}
_MAP_FUNCTIONS = {"full", "rot180", "route", "reshape", "crop", "spread", "dilate"}     # the conv/pooling operator words
_COMPARE_SYMS = {">": ">", "<": "<", ">=": ">=", "<=": "<=", "!=": "!=", "=": "=="}
_COMPARE_CMDS = {"gt": ">", "lt": "<", "ge": ">=", "geq": ">=", "geqslant": ">=", "le": "<=",
                 "leq": "<=", "leqslant": "<=", "neq": "!=", "ne": "!=", "mid": "|"}
_NOT_ATOMS = set(_CMD_OPS) | set(_COMPARE_CMDS) | {"top", "intercal", "prime", "uparrow"}
_LOSS_LETTERS = {"C", "L", "J", "E", "ell", "l"}     # \frac{\partial C}{\partial w}

_FUNCTIONS = {"sigma": "sigma", "sigmoid": "sigma", "tanh": "tanh", "exp": "exp",
              "log": "log", "ln": "log", "sqrt": "sqrt", "relu": "relu", "ReLU": "relu",
              "softmax": "softmax", "g": "g", "f": "g", "sign": "sign", "sgn": "sign",
              "erf": "erf", "sech": "sech", "diag": "diag", "id": "id"}
_NAME_COMMANDS = {"delta", "Delta", "Theta", "theta", "gamma", "beta", "mu", "xi", "rho"}
_WRAPPERS = {"mathbf", "boldsymbol", "bm", "mathrm", "mathit", "operatorname", "text",
             "vec", "mathsf", "rm", "sf", "mathbb", "mathcal", "mathds", "mathbbm"}
_INDICATOR_WRAPPERS = {"mathbb", "mathbf", "mathds", "mathbbm", "boldsymbol", "bm", "mathrm"}
_SYNONYMS = {"Theta": "W", "theta": "W", "w": "W", "ell": "l", "xi": "mask", "rho": "rate"}   # \xi: the dropout mask, \rho its rate
_D_BASES = {"z", "Z", "W", "w", "b", "a", "A", "x", "X", "Theta", "theta", "gamma", "beta"}
_MODULES_HINT = "math such as W3^T delta3 or W3.T @ delta3"
_NUMPY = {"sum"}
# Per-layer data a layer-free name may stand for when only one layer has it.
_ONE_LAYER_DATA = {"xhat", "mask", "mu", "var", "rate"}


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
        # Letters bound by a \\sum or written in a subscript of the left side are index
        # letters whatever they are (q, r, w, ...); before the left side's '=' every
        # lowercase subscript letter but l is one.
        self.declared: set[str] = set()
        self.lhs_end = self._lhs_end()

    def _lhs_end(self) -> int:
        """Position of the '=' that ends the left side (-1: none)."""
        level = 0
        for tok in self.tokens:
            if tok.kind == "sym" and tok.text in ("(", "[", "{", "\\{"):
                level += 1
            elif tok.kind == "sym" and tok.text in (")", "]", "}", "\\}"):
                level -= 1
            elif tok.kind == "sym" and tok.text == "=" and level == 0:
                return tok.pos
        return -1

    def index_letters(self, text: str, pos: int) -> bool:
        """Whether every letter of `text` (at `pos`) is an index letter here."""
        if set(text) <= set(INDEX_LETTERS) | self.declared:
            return True
        if pos < self.lhs_end and text.isascii() and text.isalpha() and text.islower() and "l" not in text:
            self.declared |= set(text)
            return True
        return False

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
            if kind in (Star, Ast) and self.is_sym(self.tok, "_"):      # \star_{\text{dilation } 2}: a note
                self.advance()
                self.raw_group()
            if self.tok.kind == "end":
                raise self.fail(op_tok.pos, f"nothing after {_describe(op_tok)}", "an operand")
            grouped = self.is_sym(self.tok, *_OPENERS)
            right = self.binary(prec + 1)
            if kind is Div and consumes and isinstance(right, (MatMul, Mul)) \
                    and not (grouped and self.text[right.span[1]:right.span[1] + 1] in ")]}"):
                # 1/m dZ2 A1^T: people mean (1/m) dZ2 A1^T, the precedence says 1/(m dZ2 A1^T)
                raise self.fail(op_tok.pos, f"'{self.text[left.span[0]:right.span[1]].strip()}' is ambiguous",
                                "\\frac{1}{m} dZ2 A1^T or (1/m) dZ2 A1^T for a factor, or a/(b c) for a quotient")
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

    def group(self, conditions: bool = False) -> Node:
        opened = self.advance()
        close = _OPENERS[opened.text]
        if self.is_sym(self.tok, close):
            raise self.fail(self.tok.pos, f"empty {opened.text}{close}", "an expression inside")
        expr = self.comparison(self.expression())
        while conditions and self.is_sym(self.tok, ","):       # [i = r, j = t]: both hold
            comma = self.advance()
            more = self.comparison(self.expression())
            expr = Mul(expr, more, span=(expr.span[0], more.span[1]), op_pos=comma.pos)
        self.expect_sym(close, opened)
        return expr

    def compare_op(self) -> str | None:
        tok = self.tok
        if tok.kind == "sym" and tok.text in _COMPARE_SYMS:
            return _COMPARE_SYMS[tok.text]
        if tok.kind == "cmd" and tok.text in _COMPARE_CMDS:
            return _COMPARE_CMDS[tok.text]
        return None

    def comparison(self, left: Node) -> Node:
        """left, or the Iverson bracket of a (chained) comparison: 0 <= u - 2i <= 1."""
        result = None
        while (op := self.compare_op()) is not None:
            op_tok = self.advance()
            right = self.expression()
            cmp = Compare(op, left, right, span=(left.span[0], right.span[1]))
            result = cmp if result is None else Mul(result, cmp, span=(result.span[0], cmp.span[1]),
                                                    op_pos=op_tok.pos)
            left = right
        return left if result is None else result

    def indicator(self, tok: Token) -> Node:
        """\\mathbb{1}[z > 0], \\mathbb{1}_{z > 0}, \\mathbf{1}\\{...\\}: the condition's Iverson bracket."""
        if self.is_sym(self.tok, "_"):
            self.advance()
            if not self.is_sym(self.tok, "{"):
                raise self.fail(self.tok.pos, f"found {_describe(self.tok)}", "a condition such as 1_{z > 0}")
            cond = self.group(conditions=True)
        elif self.is_sym(self.tok, *_OPENERS):
            cond = self.group(conditions=True)
        else:
            raise self.fail(self.tok.pos, f"found {_describe(self.tok)}", "a condition such as \\mathbb{1}[z > 0]")
        def compares(n):        # a comparison, or a product of them ([a <= b, c = d])
            return isinstance(n, Compare) or isinstance(n, Mul) and all(map(compares, children(n)))
        if not compares(cond):
            raise self.fail(tok.pos, "an indicator without a comparison", "a condition such as \\mathbb{1}[z > 0]")
        return cond

    def word(self, tok: Token) -> Node:
        nxt, after = self.tok, self.peek()
        if tok.text in ("np", "numpy") and self.is_sym(nxt, ".") and after.text in _NUMPY:
            return self.numpy_call(tok)
        if tok.text in _MAP_FUNCTIONS:
            return self.map_function(tok)
        if self.is_sym(nxt, ".") and after.kind == "word" and after.text != "T":
            raise self.fail(tok.pos, f"'{tok.text}.{after.text}': module and method calls are "
                            "not allowed", _MODULES_HINT)
        if tok.text == "running" and self.is_sym(nxt, "_") and after.kind == "word" \
                and re.fullmatch(r"(mean|var)\d*", after.text) and after.pos == nxt.end:
            self.advance()
            self.advance()          # running_mean2, running\_var^{(2)}: batch norm's running statistics
            tok = Token("word", "running_" + after.text, tok.pos, after.end)
        m = re.fullmatch(r"([A-Za-z_]+?)(\d*)", tok.text) if tok.text.startswith("running_") else \
            re.fullmatch(r"([A-Za-z]+)(\d*)", tok.text)
        if not m:
            raise self.fail(tok.pos, f"name {tok.text!r}",
                            "letters then an optional layer number, like W2 or delta3")
        letters, digits = m.groups()
        if letters == "d" and not digits and self.tok.kind == "cmd" and self.tok.pos == tok.end \
                and self.tok.text in ("gamma", "beta"):     # d\gamma^{(2)}
            name = self.command(self.advance())
            return replace(name, d=True, span=(tok.pos, name.span[1])) if isinstance(name, Name) else name
        if not digits and letters == "sum":
            return self.sum(tok)
        if tok.text == "e" and self.is_sym(nxt, "^") and not (self.is_sym(after, "(", "[") or after.text == "T"):
            return self.euler_power(tok)
        if not digits and letters in _FUNCTIONS:
            return self.call(tok, _FUNCTIONS[letters])
        return self.name(tok, letters, digits)

    def euler_power(self, tok: Token) -> Node:
        """e^{z_i}, e^{-z}: exp of the exponent (softmax and sigmoid written out)."""
        self.advance()          # ^
        if self.is_sym(self.tok, "{"):
            arg = self.group()
        else:
            arg = self.atom()
        return Call("exp", (arg,), span=(tok.pos, self.last_end))

    def map_function(self, tok: Token) -> Node:
        """full(delta), rot180(W), route_{argmax}(g), reshape_{16x4x4}(v)."""
        func = tok.text
        if func in ("route", "reshape", "crop", "spread") or (func == "dilate" and self.is_sym(self.tok, "_")):
            if not self.is_sym(self.tok, "_"):
                raise self.fail(self.tok.pos, f"{func} without a subscript",
                                "route_{argmax}(...)" if func == "route" else "reshape_{16x4x4}(...)")
            self.advance()
            opened = self.expect_sym("{")
            start, level = self.tok.pos, 0
            while level or not self.is_sym(self.tok, "}"):
                if self.tok.kind == "end":
                    self.expect_sym("}", opened)
                level += self.is_sym(self.tok, "{") - self.is_sym(self.tok, "}")
                self.advance()
            text = re.sub(r"\\(?:operatorname|mathrm|text)|[{}\s]", "", self.text[start:self.tok.pos])
            text = re.sub(r"\\times|\u00d7", "x", text)      # reshape_{16\times4\times4}, as documents print it
            self.advance()
            if func == "route":
                if text != "argmax":
                    raise self.fail(start, f"route_{{{text}}}", "route_{argmax}: max pooling's routing")
            elif func == "dilate":
                if not text.isdigit() or not 1 <= int(text) <= 64:
                    raise self.fail(start, f"dilate_{{{text}}}", "the stride, as in dilate_{2}")
                func = "dilate:" + text
            elif func == "spread":
                if not text.isdigit():
                    raise self.fail(start, f"spread_{{{text}}}", "the window size, as in spread_{2}")
                func = "spread:" + text
            elif func == "crop":
                if not re.fullmatch(r"\d+(?:,\d+)?", text):
                    raise self.fail(start, f"crop_{{{text}}}", "the padding to remove, as in crop_{1} or crop_{1,2}")
                func = "crop:" + text
            else:
                dims = re.fullmatch(r"(\d+)x(\d+)x(\d+)", text)
                if not dims:
                    raise self.fail(start, f"reshape_{{{text}}}", "the map's sizes, as in reshape_{16x4x4}")
                func = "reshape:" + text
        if not self.is_sym(self.tok, *_OPENERS):
            raise self.fail(self.tok.pos, f"found {_describe(self.tok)}", f"an argument of {tok.text}, as in {tok.text}(...)")
        arg = self.group()
        return Call(func, (arg,), span=(tok.pos, self.last_end))

    def numpy_call(self, tok: Token) -> Node:
        """np.sum(dZ2, axis=1, keepdims=True) (examples are columns), np.dot(A, B),
        np.multiply(A, B): read as the math they compute, never run."""
        self.advance()
        func = self.advance().text
        opened = self.expect_sym("(")
        args = [self.expression()]
        keywords = {}
        while self.is_sym(self.tok, ","):
            self.advance()
            if self.tok.kind == "word" and self.is_sym(self.peek(), "="):
                key = self.advance()
                self.advance()
                value = self.advance()
                keywords[key.text] = (value.text, value.pos)
            else:
                args.append(self.expression())
        self.expect_sym(")", opened)
        span = (tok.pos, self.last_end)
        want = 1 if func == "sum" else 2
        if len(args) != want:
            raise self.fail(tok.pos, f"np.{func} with {len(args)} argument(s)", f"{want}")
        if func == "sum":
            axis = keywords.pop("axis", (None, tok.pos))
            keywords.pop("keepdims", None)
            if axis[0] != "1":
                raise self.fail(axis[1], f"np.sum with axis={axis[0]}",
                                "axis=1, keepdims=True: the sum over the examples (columns)")
            if keywords:
                raise self.fail(tok.pos, f"np.sum argument {next(iter(keywords))!r}", "axis=1, keepdims=True")
            return Sum("", args[0], span=span)
        if keywords:
            raise self.fail(tok.pos, f"np.{func} argument {next(iter(keywords))!r}", "two arrays")
        kind = MatMul if func == "dot" else Hadamard
        return kind(args[0], args[1], span=span, op_pos=tok.pos)

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
        if name == "pi":
            return Const("pi", span=(tok.pos, tok.end))
        if name == "partial":
            raise self.fail(tok.pos, "\\partial outside a fraction",
                            "a left side such as \\frac{\\partial L}{\\partial W^{(2)}}")
        if name == "sum":
            return self.sum(tok)
        if name in ("hat", "widehat"):
            return self.hat(tok)
        if name in ("tilde", "widetilde"):      # \tilde{a}: the zero-padded input, as \star pads it
            return self.hat(tok, hat=False, tilde=True)
        if name == "check":                     # \check{\delta}^{(l)}: the error dilated by the stride
            return self.hat(tok, hat=False, check=True)
        if name == "nabla":
            return self.nabla(tok)
        if name in ("bar", "overline"):         # \bar{a}^{(4)}: the gradient arriving from above
            return self.hat(tok, hat=False, bar=True)
        if name in _WRAPPERS:
            return self.wrapped(tok)
        raise self.fail(tok.pos, f"unknown command \\{name}",
                        "a command such as \\delta, \\sigma, \\frac, \\sum, \\odot or \\top")

    def wrapped(self, tok: Token) -> Node:
        """\\mathbf{W}, \\operatorname{relu}: the braces hold one name."""
        opened = self.expect_sym("{")
        inner = self.advance()
        if inner.kind == "num" and inner.text == "1" and tok.text in _INDICATOR_WRAPPERS:
            self.expect_sym("}", opened)
            if not (self.is_sym(self.tok, "_") or self.is_sym(self.tok, *_OPENERS)):
                return Name("ones", span=(tok.pos, self.last_end))     # \mathbf{1}: a column of ones
            return self.indicator(tok)
        if inner.kind == "word" and inner.text == "rot" and self.tok.kind == "num" and self.tok.text == "180":
            self.advance()
            inner = Token("word", "rot180", inner.pos, self.last_end)
        if inner.kind not in ("word", "cmd"):
            raise self.fail(inner.pos, f"{_describe(inner)} inside \\{tok.text}", "a name")
        self.expect_sym("}", opened)
        return self.word(inner) if inner.kind == "word" else self.command(inner)

    def hat(self, tok: Token, hat: bool = True, **marks) -> Node:
        opened = self.advance() if self.is_sym(self.tok, "{") else None
        inner = self.advance()
        if not (inner.kind == "word" and inner.text.isalpha() or inner.kind == "cmd" and inner.text in _NAME_COMMANDS):
            raise self.fail(inner.pos, f"{_describe(inner)} under \\{tok.text}", "a name such as y")
        if opened:
            self.expect_sym("}", opened)
        return self.name(tok, inner.text, "", hat=hat, **marks)

    def nabla(self, tok: Token) -> Node:
        """\\nabla_{W^{(2)}} J: the gradient of the loss with respect to a name, as dW2."""
        if not self.is_sym(self.tok, "_"):
            raise self.fail(self.tok.pos, "\\nabla without a subscript", "\\nabla_{W^{(2)}} J")
        self.advance()
        opened = self.advance() if self.is_sym(self.tok, "{") else None
        inner = self.atom()
        if opened:
            self.expect_sym("}", opened)
        if not isinstance(inner, Name) or inner.d:
            raise self.fail(tok.pos, "\\nabla of something that is not one name", "\\nabla_{W^{(2)}} J")
        summed = self.loss_letter()
        return replace(inner, d=True, summed=summed, span=(tok.pos, self.last_end))

    def loss_letter(self) -> bool:
        """Reads the loss (C, L, J, E, \\ell or \\mathcal{L}); True for the summed loss \\mathcal{L}."""
        loss = self.advance()
        summed = False
        if loss.kind == "cmd" and loss.text in _WRAPPERS and self.is_sym(self.tok, "{"):
            summed = loss.text == "mathcal"     # \mathcal{L} = m L, the summed loss (batch norm's documents)
            inner_open = self.advance()
            loss = self.advance()
            self.expect_sym("}", inner_open)
        if loss.kind not in ("word", "cmd") or loss.text not in _LOSS_LETTERS:
            raise self.fail(loss.pos, f"\\partial {_describe(loss)} in the numerator",
                            "the loss: \\partial L, \\partial C, \\partial J, \\partial E or \\partial \\ell")
        return summed

    def frac(self, tok: Token) -> Node:
        if self.is_sym(self.tok, "{") and self.peek().kind == "cmd" and self.peek().text == "partial":
            return self.partial(tok)
        parts = []
        for _ in range(2):
            if not self.is_sym(self.tok, "{"):
                raise self.fail(self.tok.pos, f"found {_describe(self.tok)}",
                                f"'{{' after \\{tok.text}, as in \\frac{{1}}{{n}}")
            parts.append(self.group())
        return Div(parts[0], parts[1], span=(tok.pos, self.last_end), op_pos=tok.pos)

    def partial(self, tok: Token) -> Node:
        """\\frac{\\partial L}{\\partial W^{[2]}}: the gradient of the loss (C, L, J, E, \\ell,
        \\mathcal{L}) with respect to a name, read as dW2 (dz2 is delta2)."""
        opened = self.advance()
        self.advance()          # \partial
        if self.tok.kind == "word" and self.tok.text not in _LOSS_LETTERS:
            return self.activation_derivative(tok, opened)
        summed = self.loss_letter()
        sample = False
        if self.is_sym(self.tok, "_"):          # \partial \ell_e: the loss of example e
            self.advance()
            opened_e = self.advance() if self.is_sym(self.tok, "{") else None
            e = self.advance()
            if e.kind != "word" or e.text not in SAMPLE_LETTERS:
                raise self.fail(e.pos, f"loss subscript {_describe(e)}", "an example index, as in \\ell_e")
            if opened_e:
                self.expect_sym("}", opened_e)
            sample = True
        self.expect_sym("}", opened)
        opened = self.expect_sym("{")
        mark = self.tok
        if not (mark.kind == "cmd" and mark.text == "partial"):
            raise self.fail(mark.pos, f"found {_describe(mark)}", "\\partial and a name in the denominator")
        self.advance()
        inner = self.atom()
        self.expect_sym("}", opened)
        if not isinstance(inner, Name) or inner.d:
            raise self.fail(mark.pos, "the denominator is not one name",
                            "\\partial followed by a name such as W^{(2)} or z^{(2)}_{i}")
        return replace(inner, d=True, sample=inner.sample or sample, summed=summed, span=(tok.pos, self.last_end))

    def activation_derivative(self, tok: Token, opened: Token) -> Node:
        """\\frac{\\partial a^{(2)}_{i}}{\\partial z^{(2)}_{i}}: the activation's derivative g'(z^{(2)}_i)."""
        top = self.atom()
        self.expect_sym("}", opened)
        opened = self.expect_sym("{")
        if not (self.tok.kind == "cmd" and self.tok.text == "partial"):
            raise self.fail(self.tok.pos, f"found {_describe(self.tok)}", "\\partial and a name in the denominator")
        self.advance()
        bottom = self.atom()
        self.expect_sym("}", opened)
        if not (isinstance(top, Name) and isinstance(bottom, Name) and top.base == "a" and bottom.base == "z"
                and top.layer == bottom.layer and top.indices == bottom.indices and not (top.d or bottom.d)):
            raise self.fail(tok.pos, "a derivative that is not of the loss nor d a / d z of one layer",
                            "the loss in the numerator (\\partial L, \\partial \\ell), or "
                            "\\frac{\\partial a^{(2)}_{i}}{\\partial z^{(2)}_{i}}")
        return Call("g", (bottom,), True, span=(tok.pos, self.last_end))

    # -- names, sub- and superscripts
    def name(self, tok: Token, letters: str, digits: str, hat: bool = False, **marks) -> Node:
        """A name and its sub- and superscripts; marks: bar, tilde, check (from \\bar{a} etc.)."""
        base, word_hat, d = _canonical(letters)
        hat = hat or word_hat
        layer: int | LayerRef | None = int(digits) if digits else None
        indices: tuple[str, ...] = ()
        pending = []        # transposes and powers, applied after the name is complete
        seen_sub = sample = False
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
                elif kind == "sample":
                    sample = True
                elif kind == "prime":
                    raise self._prime_error(pos)
                else:
                    pending.append((kind, value, pos))
        node = Name(base, layer, indices, hat, d, sample, span=(tok.pos, self.last_end), **marks)
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
        if len(items) > 1:      # x_{0,i,j}: a number among indices is a constant index
            items = [("index", (Affine(((v, "", ""),)),), p) if k == "layer" and isinstance(v, int) else (k, v, p)
                     for k, v, p in items]
        return items

    def subscript_part(self, braced: bool) -> tuple:
        tok = self.tok
        if braced and tok.kind == "cmd" and tok.text in ("frac", "dfrac", "tfrac"):
            return "index", (self.fraction_index(),), tok.pos
        if braced and tok.kind == "cmd" and tok.text == "lfloor":
            return "index", (self.floor_index(),), tok.pos
        if braced and self.affine_ahead():
            return "index", (self.affine(),), tok.pos
        if tok.kind == "num" and tok.text.isdigit():
            self.advance()
            return "layer", int(tok.text), tok.pos
        if tok.kind == "word" and tok.text in ("l", "L"):
            return "layer", self.layer_symbol(braced), tok.pos
        if tok.kind == "word" and tok.text == "hat":
            self.advance()
            return "hat", True, tok.pos
        if self.is_sym(tok, ":"):        # delta_{:,i,j}: every value of this axis
            self.advance()
            return "index", (":",), tok.pos
        if tok.kind == "word" and self.index_letters(tok.text, tok.pos):
            self.advance()
            return "index", tuple(tok.text), tok.pos
        raise self.fail(tok.pos, f"subscript {_describe(tok)}",
                        "a layer number, l, l+1, or index letters i, j, k")

    def affine_ahead(self) -> bool:
        """An index expression (s i + m, 2j + n, i - m) rather than a letter or a layer."""
        k, tok = 0, self.tok
        if self.is_sym(tok, "-"):
            return True
        while True:
            t = self.peek(k)
            if t.kind == "end" or self.is_sym(t, ",", "}"):
                return False
            if self.is_sym(t, "+", "-"):
                return not (k == 1 and tok.kind == "word" and tok.text in ("l", "L"))
            if t.kind == "num" and k == 0 and self.peek(1).kind == "word":
                return True
            k += 1

    def fraction_index(self) -> Affine:
        """\\frac{i + 1 - m}{2}: an index expression divided by a whole number (a strided
        conv's input gradient); entries exist only where the division leaves no remainder."""
        frac = self.advance()
        opened = self.expect_sym("{")
        top = self.affine()
        self.expect_sym("}", opened)
        opened = self.expect_sym("{")
        den = self.advance()
        if den.kind != "num" or not den.text.isdigit() or not 1 <= int(den.text) <= 64:
            raise self.fail(den.pos, f"index divisor {_describe(den)}", "a whole number such as 2, as in \\frac{i + 1 - m}{2}")
        self.expect_sym("}", opened)
        if top.divisor != 1:
            raise self.fail(frac.pos, "a fraction inside an index fraction", "one \\frac{...}{s}")
        return Affine(top.terms, int(den.text))

    def floor_index(self) -> Affine:
        """\\lfloor u/2 \\rfloor, \\lfloor \\frac{u}{2} \\rfloor: an index expression divided by a
        whole number and rounded down (average pooling's window of position u)."""
        opened = self.advance()
        if self.tok.kind == "cmd" and self.tok.text in ("frac", "dfrac", "tfrac"):
            inner = self.fraction_index()
        else:
            top = self.affine()
            slash = self.expect_sym("/")
            den = self.advance()
            if den.kind != "num" or not den.text.isdigit() or not 1 <= int(den.text) <= 64:
                raise self.fail(slash.pos, f"index divisor {_describe(den)}", "a whole number, as in \\lfloor u/2 \\rfloor")
            inner = Affine(top.terms, int(den.text))
        if not (self.tok.kind == "cmd" and self.tok.text == "rfloor"):
            raise self.fail(self.tok.pos, f"found {_describe(self.tok)}", f"\\rfloor to close \\lfloor from column {opened.pos + 1}")
        self.advance()
        return replace(inner, floor=True)

    def affine(self) -> Affine:
        terms, sign = [], 1
        if self.is_sym(self.tok, "-"):
            self.advance()
            sign = -1
        while True:
            tok = self.tok
            coef, sym, letter = 1, "", ""
            if tok.kind == "num":
                if not tok.text.isdigit():
                    raise self.fail(tok.pos, f"index coefficient {tok.text}", "a whole number")
                coef = int(self.advance().text)
            if self.tok.kind == "word":
                word = self.advance()
                text = word.text
                if text.startswith("s") and len(text) == 2:
                    sym, text = "s", text[1:]
                elif text == "s" and self.tok.kind == "word":
                    sym, text = "s", self.advance().text
                if len(text) != 1 or not self.index_letters(text, word.pos):
                    raise self.fail(word.pos, f"index {word.text!r}",
                                    f"one index letter ({', '.join(INDEX_LETTERS)}), as in s i + m")
                letter = text
            elif tok.kind != "num":
                raise self.fail(tok.pos, f"found {_describe(tok)}", "an index expression such as s i + m")
            terms.append((sign * coef, sym, letter))
            if not self.is_sym(self.tok, "+", "-"):
                return Affine(tuple(terms))
            sign = 1 if self.advance().text == "+" else -1

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
        if self.is_sym(tok, "(") and self.peek().kind == "word" and self.peek().text in SAMPLE_LETTERS \
                and self.is_sym(self.peek(2), ")"):
            for _ in range(3):
                self.advance()
            return "sample", None, tok.pos
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
            elif tok.kind == "cmd" and tok.text == "uparrow":     # \delta\uparrow_{2}: dilated by the stride
                self.advance()
                self.expect_sym("_")
                factor = self.raw_group()
                if not factor.isdigit() or not 1 <= int(factor) <= 64:
                    raise self.fail(tok.pos, f"\\uparrow_{{{factor}}}", "a whole-number stride, as in \\uparrow_{2}")
                node = Call("dilate:" + factor, (node,), span=(node.span[0], self.last_end))
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
        if not self.starts_atom(self.tok) and not self.is_sym(self.tok, "-"):
            raise self.fail(self.tok.pos, f"found {_describe(self.tok)}", "the summand after \\sum")
        body = self.binary(_PREC_ELEM)
        indices = index if index is not None else ("",)     # a bare \sum: over the examples
        for letter in reversed(indices):
            body = Sum(letter, body, lower, upper, span=(tok.pos, body.span[1]))
        return body

    def sum_index(self) -> tuple[tuple, str | None]:
        opened = self.advance() if self.is_sym(self.tok, "{") else None
        letters = []
        while True:
            tok = self.advance()
            if tok.kind != "word" or not (tok.text.isascii() and tok.text.islower()) or "l" in tok.text \
                    or (len(tok.text) > 1 and not opened):
                raise self.fail(tok.pos, f"sum index {_describe(tok)}",
                                "lowercase index letters other than l, as in \\sum_k or \\sum_{i,j}")
            letters += list(tok.text)
            self.declared |= set(tok.text)
            if not (opened and self.is_sym(self.tok, ",")):
                break
            self.advance()
        if len(set(letters)) != len(letters):
            raise self.fail(tok.pos, "a repeated sum index", "distinct letters, as in \\sum_{i,j}")
        lower = None
        if opened:
            if self.is_sym(self.tok, "="):
                self.advance()
                lower = self.raw_until(opened)
            else:
                self.expect_sym("}", opened)
        return tuple(letters), lower

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
    # Prose such as \text{ per example} is blanked (same length: columns stay right).
    text = re.sub(r"\\text\{[^{}]*\s[^{}]*\}", lambda mt: " " * len(mt.group()), text)
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
        self.comparing = 0      # inside an Iverson bracket, index letters are numbers
        self.bound = []         # sum indices and the left side's indices in scope (m, n there are indices)
        self.root = None        # the right side (does it name the dropout mask?)
        self.lhs_indices = ()   # the left side's index letters (an argmax position's axis)

    def fail(self, node: Node, what: str, expected: str) -> FormulaError:
        return FormulaError(f"{what} at column {node.span[0] + 1}; {expected}")

    def resolve(self, node: Node) -> tuple[Node, bool]:
        """(resolved node, whether it is a scalar)."""
        if isinstance(node, Name):
            if self.is_index_value(node):
                return IndexValue(node.base, span=node.span), True
            sym = self.name(node)
            return sym, bool(sym.indices) or self.symbols[sym.key].shape == ()
        if isinstance(node, (Num, Const)):
            return node, True
        changes, scalars = {}, []
        self.comparing += isinstance(node, Compare)
        if isinstance(node, Sum):
            self.bound.append(node.index)
        for f in fields(node):
            value = getattr(node, f.name)
            if isinstance(value, Node):
                changes[f.name], scalar = self.resolve(value)
                scalars.append(scalar)
            elif isinstance(value, tuple) and value and isinstance(value[0], Node):
                pairs = [self.resolve(v) for v in value]
                changes[f.name] = tuple(p[0] for p in pairs)
                scalars += [p[1] for p in pairs]
        self.comparing -= isinstance(node, Compare)
        if isinstance(node, Sum):
            self.bound.pop()
        new = replace(node, **changes)
        if isinstance(new, Compare) and new.op == "==":
            new = self.argmax_axis(new)
        if isinstance(new, (MatMul, Hadamard)) and any(scalars):
            new = Mul(new.left, new.right, span=new.span, op_pos=new.op_pos)
        return new, all(scalars)

    def argmax_axis(self, node: Compare) -> Compare:
        """i = r^{(2)}_{cpq}: r is the row of the maximum when i is the left side's row index
        (its second index, after the channel), the column when it is the third."""
        for side, other, field_name in ((node.left, node.right, "left"), (node.right, node.left, "right")):
            if isinstance(side, Sym) and side.key.startswith("argmax") and isinstance(other, IndexValue):
                axis = self.lhs_indices.index(other.letter) if other.letter in self.lhs_indices else -1
                role = {1: "row", 2: "col"}.get(axis)
                if not role:
                    raise self.fail(side, f"the argmax position '{self.source[side.span[0]:side.span[1]]}'",
                                    "compare it with the row or the column index of the left side, as in "
                                    "\\mathbb{1}[i = r^{(2)}_{cpq}, j = t^{(2)}_{cpq}] for \\delta^{(1)}_{c,i,j}")
                return replace(node, **{field_name: replace(side, role=role)})
        return node

    def is_index_value(self, node: Name) -> bool:
        """u in \\mathbb{1}[0 \\le u - 2i \\le 1]: an index letter the table does not name."""
        return (self.comparing and len(node.base) == 1 and node.layer is None
                and (node.base in INDEX_LETTERS and node.base not in self.symbols or node.base in self.bound)
                and not node.indices
                and not node.d and not node.hat)

    def name(self, node: Name) -> Sym:
        layer = self.layer_number(node)
        base, d = node.base, node.d
        if node.bar:        # \bar a^{(l)} = d ell / d a^{(l)}; \bar x^{(l)}, \bar u^{(l)}: at layer l's input, a^{(l-1)}
            if base not in ("a", "x", "u") or layer is None or d:
                raise self.fail(node, "a bar on this name", "\\bar{a}^{(l)} or \\bar{u}^{(l)}, a gradient from above")
            base, d = "a", True
            layer = layer - (node.base in ("x", "u"))
        if node.hat and base == "u":        # batch norm's normalised values: \hat{u} (documents), \hat{x}
            base = "x"
        if d and base in ("z", "Z"):        # Ng's dz^{[l]} is delta^{(l)}
            base, d = "delta", False
        if node.hat:
            base += "hat"
        key = base + ("" if layer is None else str(layer))
        candidates = [key]
        if base in ("Z", "A", "X", "Y"):    # batch capitals of the same quantity
            candidates.append(key.lower())
        if base in ("a", "A") and layer == 0:      # a^{(0)}, A^{[0]} are the input
            candidates.append("x")
        if base == "p" and not (node.indices or d or node.hat):
            candidates[:0] = self.dropout_rate(layer)
        if layer is None and base in _ONE_LAYER_DATA:     # \hat{x}, \xi: the net's one batch norm / dropout
            owners = [k for k in self.symbols if re.fullmatch(re.escape(base) + r"\d+", k)]
            candidates += owners[:1] if len(owners) == 1 else []
        if layer is not None and node.indices and not (d or node.bar or node.tilde or node.check) \
                and f"argmax{layer}" in self.symbols and key not in self.symbols:
            candidates.append(f"argmax{layer}")     # r^{(2)}_{cpq}, \\hat{i}^{(2)}_{cqr}: where a window peaks
        for candidate in candidates:
            if candidate in self.symbols:
                return Sym(candidate, node.indices, d, node.sample, node.summed, tilde=node.tilde,
                           check=node.check, span=node.span)
        raw = self.source[node.span[0]:node.span[1]]
        read = "" if raw == key else f" (read as {key})"
        known = list(self.symbols)
        listed = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "")
        raise self.fail(node, f"unknown name '{raw}'{read}", f"known: {listed or 'none'}")

    def dropout_rate(self, layer: int | None) -> list[str]:
        """p^{(l)} at a dropout layer is its rate; a layer-free p is the net's one rate when
        there is no softmax output p, or when the formula names the dropout mask beside it."""
        if layer is not None:
            return [f"rate{layer}"] if f"rate{layer}" in self.symbols else []
        rates = [k for k in self.symbols if re.fullmatch(r"rate\d+", k)]
        if len(rates) != 1:
            return []
        return rates if "p" not in self.symbols or self.names_mask(self.root) else []

    def names_mask(self, node) -> bool:
        if isinstance(node, Name):
            return _canonical(node.base)[0] in ("mask", "D") and not node.d
        return any(self.names_mask(v) for f in fields(node) for v in
                   (getattr(node, f.name) if isinstance(getattr(node, f.name), tuple) else (getattr(node, f.name),))
                   if isinstance(v, Node))

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
    resolver.root = parsed.rhs
    lhs = resolver.resolve(parsed.lhs)[0] if parsed.lhs is not None else None
    if isinstance(lhs, Sym):
        resolver.lhs_indices = tuple(ix for ix in lhs.indices if isinstance(ix, str))
        resolver.bound += [ix for ix in lhs.indices if isinstance(ix, str)]
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
    if a is None or b is None:
        return None
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
    if a is None or b is None:
        return None if a != () and b != () else (a if b == () else b)
    if a == b or b == ():
        return a
    if a == ():
        return b
    if len(a) == len(b) and all(x == y or {x, y} == {1, BATCH_AXIS} for x, y in zip(a, b)):
        return tuple(max(x, y) for x, y in zip(a, b))     # a per-unit column against a batch (broadcast)
    hint = "; a transpose missing?" if a == b[::-1] else ""
    raise FormulaShapeError(f"{_OP_NAMES[type(node)]} at column {node.op_pos + 1}: "
                            f"{a} and {b} differ{hint}")


def shape_of(node: Node | ResolvedFormula, symbols: dict[str, SymbolInfo]) -> tuple[int, ...]:
    """The shape of a resolved node (of the right side, given a ResolvedFormula)."""
    if isinstance(node, ResolvedFormula):
        node = node.rhs
    if isinstance(node, (Num, Const, IndexValue)):
        return ()
    if isinstance(node, Compare):
        a, b = shape_of(node.left, symbols), shape_of(node.right, symbols)
        return _elementwise(a, b, Sub(node.left, node.right, span=node.span, op_pos=node.span[0]))
    if isinstance(node, Sym):
        return () if node.indices else tuple(symbols[node.key].shape)
    if isinstance(node, Name):
        raise TypeError("shape_of needs a resolved formula; call resolve() first")
    if isinstance(node, Transpose):
        shape = shape_of(node.expr, symbols)
        if shape is None:
            return None
        if len(shape) > 2:
            raise FormulaShapeError(f"transpose at column {node.span[0] + 1}: {shape} has "
                                    f"{len(shape)} axes; expected a matrix or a vector")
        return shape[::-1] if len(shape) == 2 else shape
    if isinstance(node, (Neg, Pow)):
        return shape_of(node.expr if isinstance(node, Neg) else node.base, symbols)
    if isinstance(node, (Star, Ast)) or (isinstance(node, Call) and node.func.split(":")[0] in _MAP_FUNCTIONS):
        for child in children(node):
            shape_of(child, symbols)
        return None         # the layer's sizes decide: the numeric stage checks these
    if isinstance(node, Call):
        shape = shape_of(node.args[0], symbols)
        if shape is None:
            return None
        if node.func == "diag":
            if len(shape) != 2 or shape[1] != 1:
                raise FormulaShapeError(f"diag at column {node.span[0] + 1}: {shape} is not a column vector")
            return shape[0], shape[0]
        return shape      # the other functions act element-wise
    if isinstance(node, Sum):      # over the examples: the batch axis (BATCH_AXIS) goes
        shape = shape_of(node.body, symbols)
        return None if shape is None else tuple(1 if n == BATCH_AXIS else n for n in shape)
    if isinstance(node, Binary):
        a, b = shape_of(node.left, symbols), shape_of(node.right, symbols)
        return _matmul(a, b, node) if isinstance(node, MatMul) else _elementwise(a, b, node)
    raise TypeError(f"not a formula node: {node!r}")


def check_shapes(resolved: ResolvedFormula, symbols: dict[str, SymbolInfo]) -> tuple[int, ...]:
    """The right side's shape, after checking that it matches the claimed left side."""
    rhs = shape_of(resolved.rhs, symbols)
    if resolved.lhs is not None and rhs is not None:
        lhs = shape_of(resolved.lhs, symbols)
        if lhs != rhs:
            raise FormulaShapeError(f"right side at column {resolved.rhs.span[0] + 1} has shape "
                                    f"{rhs}; expected {lhs}, the shape of the left side")
    return rhs
