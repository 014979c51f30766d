"""Checking a hand-derived backprop formula against symnet's derivation.

    verify(net, "W2", "dW2 = dz2 a1^T")            -> Verdict("equal", ...)
    verify(net, "delta1", "W2 delta2 * g'(z1)")    -> Verdict("not equal", shape message, note)

The formula is parsed by `symnet.verify.parser` (user text is never executed)
and resolved against a symbol table built from the network, for every layer
kind: per example, vectors are columns (a_l, z_l, delta_l, b_l of shape (n_l, 1);
x = a_0, y, yhat and p), feature maps are (C, H, W), parameters have PyTorch's
shapes (W_l (n_l, n_{l-1}) or (F, C, k_h, k_w)); batch norm adds gamma, beta,
xhat, mu, var and the running statistics, dropout its mask D_l; n, m are the
batch size and s the stride of the target's layer. Four stages decide:

1. shapes: a missing transpose or a product in the wrong order is a "not equal"
   verdict whose message gives both shapes (conv operator forms are left to 2);
2. numbers (always): the formula is evaluated with numpy by walking its AST at
   `points` random float64 points (seeded; pre-activations kept away from the
   kinks of ReLU-like activations) with the values of `symnet.trace`, and
   compared with the derived quantity. A mismatch is a counterexample. Where the
   network has kinks, one more point puts pre-activations exactly on the kinks:
   a formula that agrees everywhere else but not there is "equal almost
   everywhere" (e.g. ReLU'(0) = 1 instead of symnet's 0);
3. symbols (per-example formulas on dense networks): the same AST walk over
   numpy object arrays of SymPy symbols (a copy at most 2 units wide), compared
   with the derivation's expressions entry by entry; `simplify` runs under a
   time limit. It can confirm equality; a difference it cannot cancel decides
   nothing alone;
4. answer notes (`symnet.verify.notes`): on "not equal", repaired formulas
   (sign, factors, g', transpose, order, a/z, layer +-1, missing sums) are checked
   by stages 1 and 2; the first that is equal names the mistake.

Batch formulas: a formula that mentions the batch size (m or n), sums over the
examples or uses the batch capitals (A, Z, X, Y, dZ, \\Delta) is evaluated on a
batch of 3 examples, one per column (Andrew Ng's layout: Z^{[l]} is (n_l, m)) or,
when only that fits, one per row (symnet's printed batch formulas); its value
must be the gradient of the batch-mean loss (W, b, x) or, for delta targets, the
per-example deltas side by side. Any other formula is checked per example (a
batch of 1; with batch norm a batch of 3, since its statistics couple the
examples). `per_example=True/False` overrides the guess.
"""
from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, fields, replace
from fractions import Fraction
from functools import lru_cache

import numpy as np
import sympy as sp

from ..errors import FormulaError, SpecError, SymnetError
from ..functions import sigmoid
from ..numeric import lambdify
from . import channels
from .parser import (BATCH_AXIS, Add, Affine, Ast, Binary, Star, Call, Compare, Const, Div, FormulaShapeError, Hadamard,
                     IndexValue, MatMul, Mul, Neg, Node, Num, Pow, ResolvedFormula, Sub, Sum, Sym,
                     SymbolInfo, Transpose, check_shapes, children, parse_formula, resolve, shape_of, walk)

STATUSES = ("equal", "equal almost everywhere", "not equal", "undecided")
BATCH_EXAMPLES = 3          # examples per point for batch formulas
KINK_MARGIN = 1e-3          # random points keep pre-activations this far from kinks
SYMBOLIC_WIDTH = 2          # units per layer of the symbolic copy
SYMBOLIC_SECONDS = 2.0      # time limit of the symbolic stage
MAX_ELEMENTS = 2_000_000    # entries of one intermediate array in element forms
RTOL, ATOL = 1e-6, 1e-8

X = sp.Symbol("x", real=True)
_EXAMPLE_AXIS = "#e"


class _Undecidable(Exception):
    """The formula cannot be evaluated this way (not the user's fault)."""


# ---------------------------------------------------------------- results

@dataclass(frozen=True)
class Counterexample:
    """Where the formula and the derivation disagree most at one point."""
    point: int                 # 0-based number of the random point ("kink" point: -1)
    seed: tuple                # the numpy seed of that point: default_rng(seed)
    index: tuple               # entry of the target (row, column) or {index letter: value}
    given: float               # the formula's value
    derived: float             # symnet's value
    abs_error: float
    rel_error: float
    note: str = ""

    def describe(self, name: str) -> str:
        where = "at the kink point" if self.point < 0 else f"at point {self.point} (seed {list(self.seed)})"
        return (f"{where}, entry {_index_text(self.index)} of {name}: the formula gives "
                f"{self.given:.6g}, symnet derives {self.derived:.6g} (abs error {self.abs_error:.3g}, "
                f"rel error {self.rel_error:.3g}){self.note}")


def _index_text(index) -> str:
    if isinstance(index, dict):
        return ", ".join(f"{k}={v}" for k, v in index.items()) if index else "(scalar)"
    return "[" + ", ".join(map(str, index)) + "]"


@dataclass(frozen=True)
class Verdict:
    status: str                      # one of STATUSES
    message: str                     # one paragraph, starts with the status
    target: str                      # "W2", "delta1", "x"
    counterexample: Counterexample | None = None
    derived_latex: str = ""          # symnet's formula for the target
    given_latex: str = ""            # the formula as read
    reason: str = ""                 # "shape", "numeric", "kink", "symbolic", "no values"
    symbolic: str = "skipped"        # "equal", "different", "timeout", "skipped"
    points: int = 0                  # random points compared
    batch: bool = False              # evaluated as a batch formula
    layout: str = ""                 # how a batch formula's matrices were read
    names: tuple = ()                # each numbered name and the layer it was resolved to
    note: str = ""                   # the mistake that explains a "not equal", when one does

    @property
    def ok(self) -> bool:
        return self.status in ("equal", "equal almost everywhere")

    def __bool__(self) -> bool:
        return self.ok

    def as_data(self) -> dict:
        """The verdict as JSON-ready data (symnet verify --json)."""
        from dataclasses import asdict
        data = asdict(self)
        data["ok"] = self.ok
        cex = data.get("counterexample")
        if cex is not None:
            cex["index"] = cex["index"] if isinstance(cex["index"], dict) else list(cex["index"])
            cex["seed"] = list(cex["seed"])
            for k in ("given", "derived", "abs_error", "rel_error"):
                if cex[k] != cex[k] or cex[k] in (float("inf"), float("-inf")):
                    cex[k] = None       # JSON has no nan or inf
        return data

    def report(self) -> str:
        lines = [f"verdict: {self.message}"]
        if self.note:
            lines.append(f"note:    {self.note}")
        if self.given_latex:
            lines.append(f"given:   {self.given_latex}" + (f"   (read as a batch, {self.layout})" if self.layout else ""))
        if self.names:
            lines.append(f"names:   {'; '.join(self.names)}")
        if self.derived_latex:
            lines.append(f"derived: {self.derived_latex}")
        return "\n".join(lines)

    __str__ = report


# ---------------------------------------------------------------- the network's symbols

@dataclass
class _Net:
    net: object
    derivation: object
    sizes: dict            # dense layer position -> units; 0 -> inputs
    L: int                 # position of the last dense layer
    softmax_position: int | None   # a separate softmax layer's position
    categorical: bool
    symbols: dict
    kinks: dict            # layer -> sorted kink points of g and g'
    shapes: dict = None    # layer position -> per-example output shape (0: the input)
    dense_only: bool = True
    strides: dict = None           # conv/pool layer position -> stride (`s` in index expressions)
    batch_norm: bool = False       # examples are coupled: every formula is read on a batch
    vectors: frozenset = frozenset()   # keys whose quantity is a vector (a column in the table)
    training: bool = True          # False: dropout off, batch norm through its running statistics
    n_outputs: bool = False        # n is the number of outputs per example, not the batch size
    channels: object = None        # batch norm's per-channel letters (channels.Channels), per formula

    @property
    def outputs(self) -> int:
        return int(np.prod(self.symbols["y"].shape))

    @property
    def placed(self) -> dict:
        return {p.position: p for p in self.net.placed}

    def batch_symbols(self, rows: bool) -> dict:
        """The table for a batch formula: the example axis has its own size BATCH_AXIS
        (m), one example per column (Andrew Ng) or per row (symnet's batch formulas:
        \\frac{1}{m} (\\Delta^{(1)})^T A^{(0)})."""
        out = {}
        for k, v in self.symbols.items():
            if k == "ones":
                out[k] = SymbolInfo(v.kind, (BATCH_AXIS, 1))
            elif v.kind not in ("param", "scalar") and not _NO_EXAMPLE.fullmatch(k) \
                    and len(v.shape) == 2 and v.shape[1] == 1:
                out[k] = SymbolInfo(v.kind, (BATCH_AXIS, v.shape[0]) if rows else (v.shape[0], BATCH_AXIS))
            else:
                out[k] = v
        return out

    def dims(self, key) -> tuple:
        """The index ranges of a quantity: one for a vector, else its shape."""
        shape = self.symbols[key].shape
        return shape[:1] if key in self.vectors else shape


_DERIVATIONS: dict = {}
_LOCK = threading.Lock()


def _derivation(net):
    from ..derive import derive
    key = net.fingerprint() if hasattr(net, "fingerprint") else id(net)
    with _LOCK:
        if key not in _DERIVATIONS:
            if len(_DERIVATIONS) > 32:
                _DERIVATIONS.clear()
            _DERIVATIONS[key] = derive(net)
        return _DERIVATIONS[key]


_PREACT = ("dense", "conv2d", "batchnorm")


def _col(shape) -> tuple:
    """Per-example shape in the symbol table: vectors are columns (n, 1)."""
    return (shape[0], 1) if len(shape) == 1 else tuple(shape)


def _describe_net(net) -> _Net:
    from ..network import Network
    if not isinstance(net, Network):
        raise SpecError(f"verify needs a symnet Network (from symnet.load or Network(...)), "
                        f"got {type(net).__name__}")
    placed = list(net.placed)
    softmax_position = placed[-1].position if placed[-1].layer.type == "softmax" else None
    body = placed[:-1] if softmax_position else placed
    d = _derivation(net)
    dense_only = len(net.input_shape) == 1 and all(p.layer.type == "dense" for p in body)
    sizes = {0: net.input_shape[0]} if dense_only else {}
    shapes = {0: tuple(net.input_shape)}
    for p in placed:
        shapes[p.position] = tuple(p.out_shape)
        if dense_only and p.layer.type == "dense":
            sizes[p.position] = p.out_shape[0]
    L = body[-1].position
    out = _col(body[-1].out_shape)
    symbols = {"x": SymbolInfo("data", _col(net.input_shape)), "y": SymbolInfo("data", out),
               "yhat": SymbolInfo("activation", out),
               "n": SymbolInfo("scalar", ()), "m": SymbolInfo("scalar", ())}
    symbols["ones"] = SymbolInfo("data", (1, 1))       # \mathbf{1}: one entry per example
    if net.loss.is_categorical:
        symbols["p"] = SymbolInfo("activation", out)
        symbols[f"p{L}"] = SymbolInfo("activation", out)    # the document's p^{(L)}
    strides = {p.position: p.layer.stride for p in placed if p.layer.type in ("conv2d", "maxpool2d", "avgpool2d")}
    if strides:
        symbols["s"] = SymbolInfo("scalar", ())
    for p in placed:
        l, shape = p.position, _col(p.out_shape)
        symbols[f"a{l}"] = SymbolInfo("activation", shape)
        for name, pshape in p.param_shapes.items():
            symbols[name] = SymbolInfo("param", _col(pshape))
        for name, pshape in p.state_shapes.items():
            symbols[name] = SymbolInfo("data", _col(pshape))
        if p.layer.type in _PREACT:
            symbols[f"z{l}"] = SymbolInfo("preact", shape)
            symbols[f"delta{l}"] = SymbolInfo("delta", shape)
            symbols[f"Delta{l}"] = SymbolInfo("delta", shape)
        if p.layer.type == "batchnorm":
            c = _col((p.out_shape[0],))
            symbols[f"mu{l}"] = SymbolInfo("data", c)
            symbols[f"var{l}"] = SymbolInfo("data", c)
            symbols[f"xhat{l}"] = SymbolInfo("data", shape)
        if p.layer.type == "maxpool2d":     # the argmax row / column of each window (r^{(l)}, t^{(l)})
            symbols[f"argmax{l}"] = SymbolInfo("data", shape)
        if p.layer.type == "dropout":
            for name in (f"mask{l}", f"D{l}", f"d{l}"):     # Andrew Ng writes the mask D^{[l]}
                symbols[name] = SymbolInfo("data", shape)
            symbols[f"rate{l}"] = SymbolInfo("scalar", ())     # the document's p
    kinks = {l: _kinks(math.g, math.dg) for l, math in d.activations.items()}
    vectors = {k for k, v in symbols.items() if len(v.shape) == 2 and v.shape[1] == 1}
    for p in placed:
        vectors -= {k for k, shape in p.param_shapes.items() if len(shape) == 2}   # W (n, 1) is a matrix
    return _Net(net, d, sizes, L, softmax_position, net.loss.is_categorical, symbols,
                {l: k for l, k in kinks.items() if k}, shapes, dense_only,
                strides, bool(net.state_shapes), frozenset(vectors))


def _is_param(info: _Net, key: str) -> bool:
    return info.symbols.get(key, SymbolInfo("data", ())).kind == "param"


# Quantities without an example axis: parameters, running and batch statistics.
_NO_EXAMPLE = re.compile(r"(W|b|gamma|beta|running_mean|running_var|mu|var|rate)\d+")


@lru_cache(maxsize=None)
def _kinks(*exprs) -> tuple[float, ...]:
    """Where a piecewise activation switches: roots of its conditions' linear sides."""
    points = set()
    for expr in exprs:
        sides = []
        for node in sp.preorder_traversal(expr):
            if isinstance(node, sp.Piecewise):
                for _, cond in node.args:
                    sides += [r.lhs - r.rhs for r in cond.atoms(sp.core.relational.Relational)]
            elif isinstance(node, (sp.Abs, sp.Heaviside, sp.sign)):
                sides.append(node.args[0])
            elif isinstance(node, (sp.Max, sp.Min)):
                sides.append(node.args[0] - node.args[1])
        for side in sides:
            try:
                poly = sp.Poly(side, X)
            except sp.PolynomialError:
                continue
            if poly.degree() == 1:
                c1, c0 = poly.all_coeffs()
                points.add(float(-c0 / c1))
    return tuple(sorted(points))


# ---------------------------------------------------------------- target and formula

def _resolve_target(target, info: _Net, layer) -> tuple[str, bool]:
    """(key, gradient flag) of the target; delta keys carry no flag."""
    if not isinstance(target, str) or not target.strip():
        raise FormulaError(f"target must be a name such as W2, b1, delta2 or x, not {target!r}")
    try:
        parsed = parse_formula(target.strip())
        if parsed.lhs is not None or not isinstance(parsed.rhs, Node):
            raise FormulaError("")
        sym = resolve(parsed, info.symbols, layer=layer).rhs
    except FormulaError as exc:
        detail = f" ({exc})" if str(exc) else ""
        raise FormulaError(f"target {target!r}: expected a name such as W2, b1, delta2 or x{detail}") from None
    if not isinstance(sym, Sym) or sym.indices:
        raise FormulaError(f"target {target!r}: expected one name such as W2, b1, delta2 or x")
    key = sym.key
    if key.startswith("Delta"):
        key = "delta" + key[5:]
    kind = info.symbols[key].kind
    if kind == "delta":
        return key, False
    if kind == "param" or key == "x" or (sym.d and re.fullmatch(r"a\d+", key) and key in info.symbols):
        if re.fullmatch(r"a\d+", key) and int(key[1:]) == info.softmax_position:
            raise FormulaError(f"target {target!r}: no gradient of the softmax output here")
        return key, True
    raise FormulaError(f"target {target!r}: {key} is not a parameter, an error term or the input; "
                       "expected W2, b1, delta2, x or da1")


def is_gradient_target(sym: Sym, info: _Net) -> bool:
    """Whether a left side names what verify checks: delta, dW, db, dgamma, dx, da."""
    key = "delta" + sym.key[5:] if sym.key.startswith("Delta") else sym.key
    kind = info.symbols[key].kind
    return kind == "delta" or (sym.d and (kind == "param" or key == "x" or re.fullmatch(r"a\d+", key) is not None))


def _letters(indices) -> set:
    """The index letters of a subscript, inside index expressions too."""
    out = set()
    for ix in indices:
        out |= set(ix.letters) if isinstance(ix, Affine) else {ix}
    return out


def _free_indices(node: Node, bound=frozenset()) -> set:
    stack, free = [(node, bound)], set()
    while stack:
        n, b = stack.pop()
        if isinstance(n, Sym):
            free |= _letters(n.indices) - b
        elif isinstance(n, IndexValue):
            free |= {n.letter} - b
        elif isinstance(n, Sum):
            stack.append((n.body, b | {n.index}))
        else:
            stack.extend((c, b) for c in children(n))
    return free


def _stride(info: _Net, key: str, grad: bool):
    """The stride `s` stands for: that of the target's layer (of the layer above for
    the gradient of an activation or of x)."""
    digits = re.search(r"\d+$", key)
    layer = int(digits.group()) if digits else 0
    if grad and (key == "x" or key.startswith("a")):
        layer += 1
    return (info.strides or {}).get(layer)


def _names_read(resolved: ResolvedFormula, info: _Net) -> tuple:
    """'W_3 = W3 (layer 3, dense)' for each distinct numbered name of the formula."""
    out, seen = [], set()
    placed = info.placed
    for root in (resolved.lhs, resolved.rhs):
        if root is None:
            continue
        for n in sorted((n for n in walk(root) if isinstance(n, Sym)), key=lambda n: n.span):
            raw = re.sub(r"_\{[^}]*\}$|_[a-z]$", "", resolved.source[n.span[0]:n.span[1]].strip())
            mt = re.search(r"(\d+)$", n.key)
            if not mt or (raw, n.key) in seen:
                continue
            seen.add((raw, n.key))
            l = int(mt.group(1))
            where = f"layer {l}, {placed[l].layer.type}" if l in placed else "the input"
            out.append(f"{raw} = {'d' if n.d else ''}{n.key} ({where})")
    return tuple(out)


def _summed(result, expected):
    """A per-example result (example axis last) summed over the examples."""
    result = np.asarray(result, dtype=np.float64)
    if result.ndim == expected.ndim + 1 or (result.ndim == expected.ndim and result.shape[-1] != expected.shape[-1]
                                            and expected.shape[-1] == 1):
        return result.sum(axis=-1, keepdims=result.ndim == expected.ndim)
    return result


def _check_target_shape(resolved: ResolvedFormula, symbols: dict, key: str, name: str, element: bool):
    if element:         # entries: the indices decide (in the numeric stage)
        shape_of(resolved.rhs, symbols)
        return
    check_shapes(resolved, symbols)
    if not element:
        rhs_shape = shape_of(resolved.rhs, symbols)
        want = symbols[key].shape
        if rhs_shape is not None and rhs_shape != want and not (rhs_shape == () and want == (1, 1)):
            hint = "; a transpose missing?" if rhs_shape == want[::-1] else ""
            raise FormulaShapeError(f"the right side has shape {rhs_shape}; {name} has shape {want}{hint}")


def _ranges(resolved: ResolvedFormula, info: _Net, key: str) -> dict:
    """How many values each index letter takes: from its plain uses (W_{f,c,m,n}) and the left side."""
    ranges = {}
    nodes = list(walk(resolved.rhs))
    if isinstance(resolved.lhs, Sym):
        nodes.append(Sym(key, resolved.lhs.indices, span=resolved.lhs.span))
    for n in nodes:
        if isinstance(n, Sym) and n.indices and n.key in info.symbols:
            for ix, size in zip(n.indices, _index_dims(info, n)):
                if isinstance(ix, str):
                    ranges.setdefault(ix, size)
    for n in nodes:         # \sum_{q=0}^{1} with q only inside index expressions: its bounds
        if isinstance(n, Sum) and n.index not in ranges and (n.lower or "").strip("{} ") == "0" \
                and (n.upper or "").strip("{} ").isdigit() and int(n.upper.strip("{} ")) < 10_000:
            ranges[n.index] = int(n.upper.strip("{} ")) + 1
    return ranges


def _conv_above(info: _Net, key: str, what: str):
    """The conv layer that takes a^{(l)} (or x) as its input: \\tilde{a}^{(l)} is padded for it."""
    l = 0 if key == "x" else int(key[1:])
    p = info.placed.get(l + 1)
    if not re.fullmatch(r"x|a\d+", key) or p is None or p.layer.type != "conv2d":
        raise FormulaError(f"{what}: expected \\tilde{{a}}^{{(l)}}, the zero-padded input of a conv layer l + 1")
    return p


def _conv_of(info: _Net, key: str, what: str):
    """The conv layer whose error \\check{\\delta}^{(l)} is dilated by its stride."""
    mt = re.fullmatch(r"(?:delta|Delta)(\d+)", key)
    p = info.placed.get(int(mt.group(1))) if mt else None
    if p is None or p.layer.type != "conv2d":
        raise FormulaError(f"{what}: expected \\check{{\\delta}}^{{(l)}}, the error of a conv layer l dilated by its stride")
    return p


def _index_dims(info: _Net, node: Sym) -> tuple:
    """The index ranges of a (possibly padded or dilated) quantity."""
    dims = info.dims(node.key)
    where = f"'{node.key}' at column {node.span[0] + 1}"
    if node.tilde:
        (ph, pw) = _conv_above(info, node.key, where).layer.pads
        dims = (dims[0], dims[1] + 2 * ph, dims[2] + 2 * pw)
    if node.check:
        s = _conv_of(info, node.key, where).layer.stride
        dims = (dims[0], s * (dims[1] - 1) + 1, s * (dims[2] - 1) + 1)
    return dims


def _mapped(node: Node, f) -> Node:
    """node with f applied to every Sym below it (f returns the Sym or a new one)."""
    if isinstance(node, Sym):
        return f(node)
    changes = {}
    for fl in fields(node):
        v = getattr(node, fl.name)
        if isinstance(v, Node):
            changes[fl.name] = _mapped(v, f)
        elif isinstance(v, tuple) and v and isinstance(v[0], Node):
            changes[fl.name] = tuple(_mapped(x, f) for x in v)
    return replace(node, **changes) if changes else node


def _one_based(resolved: ResolvedFormula, info: _Net, ranges: dict) -> tuple[ResolvedFormula, tuple]:
    """W_{k, 9 c + 3 i + j + 1}: an index expression into a vector or a dense layer's matrix whose
    values run exactly from 1 to N on an axis of N entries counts from 1 (the documents' dense
    positions beside 0-based c, i, j; feature maps and kernels count from 0);
    it is read shifted to count from 0, and the verdict says so."""
    said = []

    def shift(sym: Sym) -> Sym:
        if not any(isinstance(ix, Affine) for ix in sym.indices) or sym.tilde or sym.check \
                or sym.key not in info.symbols or len(info.dims(sym.key)) > 2:      # feature maps count from 0
            return sym
        out = []
        for ix, size in zip(sym.indices, _index_dims(info, sym)):
            if isinstance(ix, Affine) and ix.divisor == 1 and all(not t[1] and (not t[2] or t[2] in ranges)
                                                                   for t in ix.terms):
                low = sum(c if not x else c * (0 if c > 0 else ranges[x] - 1) for c, _, x in ix.terms)
                high = sum(c if not x else c * (ranges[x] - 1 if c > 0 else 0) for c, _, x in ix.terms)
                if low == 1 and high == size:
                    terms = tuple((c - 1, "", "") if not x else (c, sy, x) for c, sy, x in ix.terms)
                    new = Affine(tuple(t for t in terms if t[0] or t[2]))
                    said.append(f"{ix} counts from 1 (values 1 to {size}): read as {new} from 0")
                    ix = new
            out.append(ix)
        return replace(sym, indices=tuple(out))
    rhs = _mapped(resolved.rhs, shift)
    return replace(resolved, rhs=rhs), tuple(dict.fromkeys(said))


def _uses_indices(node: Node) -> bool:
    return any(isinstance(n, Sym) and n.indices for n in walk(node))


def _looks_batch(resolved: ResolvedFormula, n_outputs: bool = False) -> bool:
    for root in (resolved.lhs, resolved.rhs):
        if root is None:
            continue
        for n in walk(root):
            if isinstance(n, Sym):
                raw = resolved.source[n.span[0]:n.span[1]]
                if n.key == "m" or (n.key == "n" and not n_outputs) or n.sample or re.match(r"d?(?:[AZXY]|\\?Delta)", raw):
                    return True
            elif isinstance(n, Sum) and n.index not in _free_indices(n.body):
                return True
    return False


# ---------------------------------------------------------------- the AST walk

class _Indexed:
    """An element-form value: an array whose axes are named by index letters
    (and '#e' for the example)."""
    __slots__ = ("arr", "axes")

    def __init__(self, arr, axes):
        self.arr, self.axes = arr, tuple(axes)


class _Product:
    """A product of element-form factors not multiplied out yet: a sum over some of
    its letters contracts it at once (numpy.einsum), so a conv's input gradient in
    index form never holds every combination of its letters."""
    __slots__ = ("factors", "coef")

    def __init__(self, factors, coef=1.0):
        self.factors, self.coef = list(factors), coef

    @property
    def axes(self) -> tuple:
        return tuple(dict.fromkeys(ax for f in self.factors for ax in f.axes))

    def contract(self, keep, node: Node) -> _Indexed:
        """The product summed over every axis not in `keep`."""
        sizes = {}
        for f in self.factors:
            for ax, n in zip(f.axes, f.arr.shape):
                if sizes.setdefault(ax, n) != n:
                    what = "the example" if ax == _EXAMPLE_AXIS else f"index {ax}"
                    raise FormulaShapeError(f"{what} ranges over {sizes[ax]} values on one side and {n} on the "
                                            f"other at column {getattr(node, 'op_pos', node.span[0]) + 1}")
        keep = [ax for ax in self.axes if ax in keep]
        if int(np.prod([sizes[ax] for ax in keep])) > MAX_ELEMENTS:
            raise _Undecidable(f"the element form needs {int(np.prod([sizes[ax] for ax in keep]))} entries at once; "
                               "too many to evaluate")
        letter = {ax: chr(ord("a") + k) if k < 26 else chr(ord("A") + k - 26) for k, ax in enumerate(self.axes)}
        spec = ",".join("".join(letter[ax] for ax in f.axes) for f in self.factors) + "->" \
            + "".join(letter[ax] for ax in keep)
        arrays = [f.arr for f in self.factors]
        path, _ = np.einsum_path(spec, *arrays, optimize=("greedy", MAX_ELEMENTS))
        return _Indexed(self.coef * np.einsum(spec, *arrays, optimize=path), keep)


def _sum_chain(node: Sum):
    """The directly nested sums \\sum_j \\sum_i ...: outermost first."""
    while isinstance(node, Sum) and node.index:
        yield node
        node = node.body


def _is_scalar(v) -> bool:
    return not isinstance(v, _Indexed) and np.ndim(v) == 0


def _align(a: _Indexed, b: _Indexed, node: Node):
    for ax in set(a.axes) & set(b.axes):
        na, nb = a.arr.shape[a.axes.index(ax)], b.arr.shape[b.axes.index(ax)]
        if na != nb:
            what = "the example" if ax == _EXAMPLE_AXIS else f"index {ax}"
            raise FormulaShapeError(f"{what} ranges over {na} values on one side and {nb} on the "
                                    f"other at column {getattr(node, 'op_pos', node.span[0]) + 1}")
    axes = a.axes + tuple(x for x in b.axes if x not in a.axes)

    def expand(t):
        present = [ax for ax in axes if ax in t.axes]
        arr = np.transpose(t.arr, [t.axes.index(ax) for ax in present]) if t.arr.ndim else t.arr
        shape = [t.arr.shape[t.axes.index(ax)] if ax in t.axes else 1 for ax in axes]
        return np.reshape(arr, shape)
    size = 1
    for ax in axes:
        size *= max(a.arr.shape[a.axes.index(ax)] if ax in a.axes else 1,
                    b.arr.shape[b.axes.index(ax)] if ax in b.axes else 1)
    if size > MAX_ELEMENTS:
        raise _Undecidable(f"the element form needs {size} entries at once; too many to evaluate")
    return expand(a), expand(b), axes


class _Evaluator:
    """Evaluates a resolved AST. `values(key, d)` gives matrices (columns are
    examples); `funcs` maps (name, prime, layer) to an element-wise function."""

    def __init__(self, backend, values, element: bool, ranges=None):
        self.backend = backend
        self.values = values
        self.element = element
        self.ranges = ranges or {}      # index letter -> number of values

    def eval(self, node: Node):
        value = self.lazy(node)
        return value.contract(value.axes, node) if isinstance(value, _Product) else value

    def lazy(self, node: Node):
        """The value of node; a product of element-form factors stays a _Product."""
        method = getattr(self, "_" + type(node).__name__)
        return method(node)

    def _Num(self, node: Num):
        return self.backend.number(node.value)

    def _Sym(self, node: Sym):
        if node.sample and node.d and hasattr(self.values, "example_gradients") \
                and _is_param(self.values.info, node.key):
            value = self.values.example_gradients(node.key)     # \partial \ell_e / \partial W: one per example
            return self.indexed(node, value) if node.indices else value
        if node.key.startswith("argmax"):
            if not node.role:
                raise FormulaError(f"the argmax position at column {node.span[0] + 1}: compare it with the row or "
                                   "column index of the left side, as in \\mathbb{1}[i = r^{(2)}_{cpq}, j = t^{(2)}_{cpq}]")
            return self.indexed(node, self.values.argmax(int(node.key[6:]), node.role))
        value = self.values(node.key, node.d)
        if node.check:      # s - 1 zeros between the entries of delta^{(l)}
            s = _conv_of(self.values.info, node.key, f"'{node.key}' at column {node.span[0] + 1}").layer.stride
            out = np.zeros((value.shape[0], s * (value.shape[1] - 1) + 1, s * (value.shape[2] - 1) + 1)
                           + value.shape[3:])
            out[:, ::s, ::s] = value
            value = out
        if node.summed and node.d:
            if not _is_param(self.values.info, node.key):
                raise FormulaError(f"\\partial \\mathcal{{L}} at column {node.span[0] + 1}: the summed loss is "
                                   "written for parameters; expected \\partial L or \\partial \\ell")
            value = value * self.values.batch_size()
        if not node.indices:
            if self.element and np.ndim(value) != 0:
                raise FormulaError(f"'{node.key}' at column {node.span[0] + 1} has no index while the "
                                   "formula uses element indices; expected indices such as a_i or W_{k,i}")
            return value
        return self.indexed(node, value)

    def indexed(self, node: Sym, value):
        if np.ndim(value) == 0:
            raise FormulaError(f"'{node.key}' at column {node.span[0] + 1} is a scalar; expected no index")
        dims = _index_dims(self.values.info, node)
        has_example = self.values.has_example(node.key, node.d)
        ch = self.values.info.channels
        if ch and len(node.indices) == 1 and node.indices[0] in ch.letters and has_example:
            return _Indexed(np.reshape(value, (ch.count, -1)), (ch.axis, node.indices[0]))   # a channel's batch values
        if node.tilde and not node.d:      # indices on the zero-padded input: shifted by the padding
            ph, pw = _conv_above(self.values.info, node.key, "").layer.pads
            return self.gather(node, value, self.values.info.dims(node.key), (_EXAMPLE_AXIS,) if has_example else (),
                               shift=(0, -ph, -pw))
        if node.check:
            return self.gather(node, value, dims, (_EXAMPLE_AXIS,) if has_example else ())
        if dims != self.values.shape(node.key):
            value = value if has_example else value[:, 0]       # a column: one index
        if len(node.indices) != len(dims):
            what = {1: "a vector", 2: "a matrix"}.get(len(dims), f"an array with {len(dims)} axes")
            raise FormulaShapeError(f"'{node.key}' at column {node.span[0] + 1} is {what}; "
                                    f"expected {len(dims)} indices, got {len(node.indices)}")
        plain = [ix for ix in node.indices if not isinstance(ix, Affine)]
        if len(set(plain)) != len(plain):
            raise FormulaError(f"repeated index in '{node.key}' at column {node.span[0] + 1}; "
                               "expected distinct letters such as W_{k,i}")
        tail = (_EXAMPLE_AXIS,) if has_example else ()
        if len(plain) == len(node.indices):
            return _Indexed(value, tuple(node.indices) + tail)
        return self.gather(node, value, dims, tail)

    def gather(self, node: Sym, value, dims, tail, shift=None):
        """x_{c, s i + m, s j + n}: entries at index expressions; outside the array 0 (padding);
        \\frac{u}{s}: only where s divides u; `shift` moves positions (a padded input)."""
        letters = []
        for ix in node.indices:
            for letter in (ix.letters if isinstance(ix, Affine) else (ix,)):
                if letter not in letters:
                    letters.append(letter)
        grids = {}
        for k, letter in enumerate(letters):
            if letter not in self.ranges:
                raise FormulaError(f"index {letter} in '{node.key}' at column {node.span[0] + 1} has no "
                                   "range; expected it also as a plain index (like W_{f,c,m,n}) or on the left side")
            shape = [1] * len(letters)
            shape[k] = self.ranges[letter]
            grids[letter] = np.arange(self.ranges[letter]).reshape(shape)
        where, valid = [], np.ones([1] * len(letters), dtype=bool)
        if len(node.indices) != len(dims):
            raise FormulaShapeError(f"'{node.key}' at column {node.span[0] + 1} has {len(dims)} axes; "
                                    f"expected {len(dims)} indices, got {len(node.indices)}")
        for axis, (ix, size) in enumerate(zip(node.indices, dims)):
            if isinstance(ix, Affine):
                pos = 0
                for coef, sym, letter in ix.terms:
                    if sym:
                        if self.values.stride is None:
                            raise FormulaError(f"'s' at column {node.span[0] + 1}: the target's layer has no "
                                               "stride; expected the stride as a number, like 2 i + m")
                        coef = coef * self.values.stride
                    pos = pos + coef * (grids[letter] if letter else 1)
                if ix.divisor != 1:
                    if not ix.floor:
                        valid = valid & (np.mod(pos, ix.divisor) == 0)
                    pos = np.floor_divide(pos, ix.divisor)
            else:
                pos = grids[ix]
            if shift:
                pos = pos + shift[axis]
            valid = valid & (pos >= 0) & (pos < size)
            where.append(np.clip(pos, 0, size - 1))
        picked = value[tuple(where)]
        mask = valid.reshape(valid.shape + (1,) * len(tail))
        return _Indexed(np.where(mask, picked, 0 * picked), tuple(letters) + tail)

    def _IndexValue(self, node: IndexValue):
        if node.letter not in self.ranges:
            raise FormulaError(f"index {node.letter} at column {node.span[0] + 1} has no range; expected "
                               "it as a plain index of a quantity too")
        return _Indexed(np.arange(self.ranges[node.letter]).astype(np.float64), (node.letter,))

    def _Const(self, node: Const):
        return self.backend.const(node.name)

    def _Compare(self, node: Compare):
        a, b = self.eval(node.left), self.eval(node.right)
        f = lambda x, y: self.backend.compare(node.op, x, y)      # noqa: E731
        if isinstance(a, _Indexed) or isinstance(b, _Indexed):
            if _is_scalar(a):
                return _Indexed(f(a, b.arr), b.axes)
            if _is_scalar(b):
                return _Indexed(f(a.arr, b), a.axes)
            if not (isinstance(a, _Indexed) and isinstance(b, _Indexed)):
                raise FormulaError(f"column {node.span[0] + 1} compares an indexed entry with a whole "
                                   "matrix; expected indices on both sides")
            x, y, axes = _align(a, b, node)
            return _Indexed(f(x, y), axes)
        return f(a, b)

    def _Transpose(self, node):
        v = self.eval(node.expr)
        if isinstance(v, _Indexed) or _is_scalar(v):
            return v
        return v.T

    def _Neg(self, node):
        return self.unary(self.eval(node.expr), lambda a: -a)

    def _Pow(self, node):
        e = node.exponent
        return self.unary(self.eval(node.base), lambda a: self.backend.power(a, e))

    def _Call(self, node: Call):
        arg = self.eval(node.args[0])
        if node.func == "softmax":
            if node.prime:
                raise FormulaError(f"softmax' at column {node.span[0] + 1} is a Jacobian, not an "
                                   "element-wise function; expected p - y or the Jacobian written out")
            if isinstance(arg, _Indexed) or _is_scalar(arg):
                raise FormulaError(f"softmax at column {node.span[0] + 1} needs a whole vector; "
                                   "expected softmax(z2) without indices")
            return self.backend.softmax(arg)
        if node.func.split(":")[0] in ("full", "rot180", "route", "reshape", "crop", "spread", "dilate"):
            return self.map_operator(node, arg)
        if node.func == "diag":
            if node.prime or isinstance(arg, _Indexed) or _is_scalar(arg) or np.shape(arg)[1:] != (1,):
                raise FormulaError(f"diag at column {node.span[0] + 1}: expected one example's column vector, "
                                   "as in diag(g'(z2)) W3^T delta3 (per example)")
            return self.backend.diag(arg)
        layer = self.layer_of(node) if node.func == "g" else None
        f = self.backend.function(node.func, node.prime, layer)
        return self.unary(arg, f)

    def _layer_in(self, node: Node):
        """The Placed layer of the first numbered quantity in `node` (delta3 -> layer 3)."""
        for n in walk(node):
            if isinstance(n, Sym):
                mt = re.search(r"(\d+)$", n.key)
                if mt:
                    return self.values.info.placed.get(int(mt.group(1)))
        return None

    def _conv(self, node: Node, what: str):
        p = self._layer_in(node)
        if p is None or p.layer.type != "conv2d":
            raise FormulaError(f"{what} at column {node.span[0] + 1}: expected a conv layer's "
                               "quantity inside, like \\delta^{(3)} or W^{(3)}")
        return p

    def map_operator(self, node: Call, arg):
        if isinstance(arg, _Indexed) or _is_scalar(arg) or not isinstance(arg, np.ndarray):
            raise FormulaError(f"{node.func} at column {node.span[0] + 1} needs a whole array, not an entry")
        func = node.func.split(":")[0]
        if func == "rot180":
            return arg[..., ::-1, ::-1]
        if func == "dilate":        # delta\uparrow_{s}: s - 1 zeros between entries (dilate(X): X's conv stride)
            s = int(node.func.split(":")[1]) if ":" in node.func else self._conv(node, "dilate").layer.stride
            F, Ho, Wo = arg.shape[:3]
            out = np.zeros((F, s * (Ho - 1) + 1, s * (Wo - 1) + 1) + arg.shape[3:])
            out[:, ::s, ::s] = arg
            return out
        if func == "full":          # pad by k - 1 on every side: the full convolution's input
            p = self._conv(node, "full")
            kh, kw = p.layer.kernel
            return np.pad(arg, ((0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1)) + ((0, 0),) * (arg.ndim - 3))
        if func == "spread":        # average pooling's backward map without its 1/(k k)
            return self.values.spread(arg, int(node.func.split(":")[1]))
        if func == "crop":
            ph, _, pw = node.func.split(":")[1].partition(",")
            ph, pw = int(ph), int(pw or ph)
            if arg.ndim < 3 or arg.shape[1] <= 2 * ph or arg.shape[2] <= 2 * pw:
                raise FormulaShapeError(f"crop at column {node.span[0] + 1}: nothing left of {arg.shape[:3]}")
            return arg[:, ph:arg.shape[1] - ph, pw:arg.shape[2] - pw]
        if func == "reshape":
            dims = tuple(int(d) for d in node.func.split(":")[1].split("x"))
            if np.shape(arg)[0] != int(np.prod(dims)):
                raise FormulaShapeError(f"reshape at column {node.span[0] + 1}: {np.shape(arg)[0]} values "
                                        f"do not fill {node.func.split(':')[1]}")
            return arg.reshape(dims + arg.shape[1:])
        return self.values.route(arg)      # route_{argmax}

    def correlate(self, node: Binary, a, b):
        from numpy.lib.stride_tricks import sliding_window_view
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)) or a.ndim != 4 or b.ndim != 4:
            raise FormulaShapeError(f"column {node.op_pos + 1}: \\star and \\ast combine feature maps "
                                    "and kernels; expected a^{(l-1)} \\star \\delta^{(l)} or "
                                    "full(\\delta^{(l)}) \\ast rot180(W^{(l)})")
        if isinstance(node, Star):      # dW[f,c,m,n] = sum_ij a~[c, s i + m, s j + n] delta[f,i,j]
            p = self._conv(node.right, "\\star")
            (kh, kw), s, (ph, pw) = p.layer.kernel, p.layer.stride, p.layer.pads
            _, Ho, Wo = p.out_shape
            Hb, Wb = b.shape[1:3]
            if (Hb, Wb) == (Ho, Wo):
                step = s
            elif (Hb, Wb) == (s * (Ho - 1) + 1, s * (Wo - 1) + 1):
                step = 1        # \check\delta: the error already dilated by the stride
            else:
                raise FormulaShapeError(f"column {node.op_pos + 1}: \\star with an error of {Hb}x{Wb} positions; "
                                        f"layer {p.position}'s error has {Ho}x{Wo}")
            ap = np.pad(a, ((0, 0), (ph, ph), (pw, pw)) + ((0, 0),) * (a.ndim - 3))
            win = sliding_window_view(ap, (kh, kw), axis=(1, 2))[:, ::step, ::step][:, :Hb, :Wb]
            return np.einsum("cijemn,fije->fcmne", win, b, optimize=True)
        p = self._conv(node.right, "\\ast")     # dx~[c,u,v] = sum_f sum_mn full(delta)[f,u+m,v+n] rot180(W)[f,c,m,n]
        kh, kw = b.shape[2:4]
        win = sliding_window_view(a, (kh, kw), axis=(1, 2))
        out = np.einsum("fuvemn,fcmn->cuve", win, b, optimize=True)
        (ph, pw), (_, H, W) = p.layer.pads, p.in_shape
        padded = np.zeros((out.shape[0], H + 2 * ph, W + 2 * pw, out.shape[3]))    # rows no window reached stay 0
        h, w = min(out.shape[1], padded.shape[1]), min(out.shape[2], padded.shape[2])
        padded[:, :h, :w] = out[:, :h, :w]
        return padded       # the gradient at the padded input: crop_{p} removes the padding

    def layer_of(self, node: Call) -> int:
        arg = node.args[0]
        layers = self.values.activation_layers()
        if isinstance(arg, Sym) and re.fullmatch(r"[za]\d+", arg.key) and int(arg.key[1:]) in layers:
            return int(arg.key[1:])
        maths = {(layers[l].g, layers[l].dg) for l in layers}
        if len(maths) == 1:
            return next(iter(layers))
        raise FormulaError(f"g at column {node.span[0] + 1}: the layers have different activations; "
                           "expected g'(z2) naming the layer's pre-activation")

    def unary(self, v, f):
        if isinstance(v, _Indexed):
            return _Indexed(f(v.arr), v.axes)
        return f(v)

    def _Sum(self, node: Sum):
        letters, inner = [], node      # \sum_j \sum_i \sum_f: contracted at once
        while isinstance(inner, Sum) and inner.index:
            letters.append(inner.index)
            inner = inner.body
        if isinstance(self.backend, _NumericBackend) and letters:
            body = self.lazy(inner)
            if isinstance(body, _Product) and set(letters) <= set(body.axes):
                return body.contract([ax for ax in body.axes if ax not in letters], node)
            if isinstance(body, _Product):
                body = body.contract(body.axes, node)
            for letter, sum_node in zip(reversed(letters), reversed(list(_sum_chain(node)))):
                body = self.summed(sum_node, body)
            return body
        return self.summed(node, self.eval(node.body))

    def summed(self, node: Sum, body):
        """body (the value of node.body) summed over node's index.""" 
        if isinstance(body, _Indexed) and node.index in body.axes:
            axis = body.axes.index(node.index)
            return _Indexed(body.arr.sum(axis=axis), body.axes[:axis] + body.axes[axis + 1:])
        # An index the summand does not use: the sum over the examples.
        if isinstance(body, _Indexed):
            if _EXAMPLE_AXIS not in body.axes:
                return _Indexed(body.arr * self.values.batch_size(), body.axes)
            axis = body.axes.index(_EXAMPLE_AXIS)
            return _Indexed(body.arr.sum(axis=axis), body.axes[:axis] + body.axes[axis + 1:])
        if _is_scalar(body):
            return body * self.values.batch_size()
        return body.sum(axis=-1, keepdims=True)

    def _Binary(self, node: Binary):
        if isinstance(node, (Mul, MatMul, Hadamard)) and self.element and isinstance(self.backend, _NumericBackend):
            a, b = self.lazy(node.left), self.lazy(node.right)
            if any(isinstance(v, (_Indexed, _Product)) for v in (a, b)) and all(
                    isinstance(v, (_Indexed, _Product)) or _is_scalar(v) for v in (a, b)):
                factors, coef = [], 1.0
                for v in (a, b):
                    if isinstance(v, _Product):
                        factors += v.factors
                        coef = coef * v.coef
                    elif isinstance(v, _Indexed):
                        factors.append(v)
                    else:
                        coef = coef * v
                return _Product(factors, coef)
            a, b = (v.contract(v.axes, node) if isinstance(v, _Product) else v for v in (a, b))
        else:
            a, b = self.eval(node.left), self.eval(node.right)
        if isinstance(node, (Star, Ast)):
            return self.correlate(node, a, b)
        op = {Add: lambda x, y: x + y, Sub: lambda x, y: x - y, Hadamard: lambda x, y: x * y,
              Mul: lambda x, y: x * y, Div: self.backend.divide,
              MatMul: self.backend.matmul}[type(node)]
        if isinstance(a, _Indexed) or isinstance(b, _Indexed):
            if isinstance(node, MatMul):
                op = lambda x, y: x * y     # noqa: E731  (products of entries)
            if _is_scalar(a):
                return _Indexed(op(a, b.arr), b.axes)
            if _is_scalar(b):
                return _Indexed(op(a.arr, b), a.axes)
            if not (isinstance(a, _Indexed) and isinstance(b, _Indexed)):
                raise FormulaError(f"column {node.op_pos + 1} combines an indexed entry with a whole "
                                   "matrix; expected indices on every vector and matrix")
            x, y, axes = _align(a, b, node)
            return _Indexed(op(x, y), axes)
        if isinstance(node, MatMul) and (_is_scalar(a) or _is_scalar(b)):
            return a * b
        if isinstance(node, MatMul) and a.shape[1] != b.shape[0]:
            raise FormulaShapeError(f"matrix product at column {node.op_pos + 1}: {a.shape} times "
                                    f"{b.shape} do not fit (with the examples as columns)")
        if not isinstance(node, MatMul) and not _is_scalar(a) and not _is_scalar(b):
            try:
                np.broadcast_shapes(a.shape, b.shape)
            except ValueError:
                raise FormulaShapeError(f"column {node.op_pos + 1}: {a.shape} and {b.shape} differ "
                                        "(with the examples as columns)") from None
        return op(a, b)

    _Add = _Sub = _Hadamard = _Mul = _Div = _MatMul = _Star = _Ast = _Binary


# ---------------------------------------------------------------- backends

_FUNCTIONS = {"sigma": sigmoid(X), "tanh": sp.tanh(X), "exp": sp.exp(X), "log": sp.log(X),
              "sqrt": sp.sqrt(X), "relu": sp.Piecewise((X, X > 0), (0, True)), "sign": sp.sign(X),
              "erf": sp.erf(X), "sech": sp.sech(X), "id": X}
_COMPARE = {">": np.greater, "<": np.less, ">=": np.greater_equal, "<=": np.less_equal,
            "==": np.equal, "!=": np.not_equal, "|": lambda a, b: np.mod(b, a) == 0}
_RELATIONS = {">": sp.StrictGreaterThan, "<": sp.StrictLessThan, ">=": sp.GreaterThan,
              "<=": sp.LessThan, "==": sp.Eq, "!=": sp.Ne, "|": lambda a, b: sp.Eq(sp.Mod(b, a), 0)}


class _Backend:
    def __init__(self, activations):
        self.activations = activations

    def math(self, name: str, prime: bool, layer) -> sp.Expr:
        """The element-wise function as SymPy; derivatives by SymPy, never typed."""
        if name == "g":
            m = self.activations[layer]
            return m.dg if prime else m.g
        expr = _FUNCTIONS[name]
        return _derivative(expr) if prime else expr


@lru_cache(maxsize=None)
def _derivative(expr):
    return sp.diff(expr, X)


@lru_cache(maxsize=None)
def _numeric_function(expr):
    f = lambdify(X, expr)
    return lambda a: f(a) * np.ones_like(a)


class _NumericBackend(_Backend):
    def number(self, value: Fraction):
        return np.float64(value.numerator / value.denominator)

    def power(self, a, e):
        return np.power(a, float(e))

    def divide(self, a, b):
        return np.divide(a, b)

    def matmul(self, a, b):
        return a @ b

    def softmax(self, z):
        e = np.exp(z - z.max(axis=0, keepdims=True))
        return e / e.sum(axis=0, keepdims=True)

    def const(self, name):
        return np.float64(np.pi)

    def compare(self, op, a, b):
        return _COMPARE[op](a, b).astype(np.float64)

    def diag(self, v):
        return np.diagflat(v)

    def function(self, name, prime, layer):
        return _numeric_function(self.math(name, prime, layer))


class _SymbolicBackend(_Backend):
    def number(self, value: Fraction):
        return sp.Rational(value.numerator, value.denominator)

    def power(self, a, e):
        return a ** sp.Integer(e)

    def divide(self, a, b):
        return a / b

    def matmul(self, a, b):
        return np.matmul(a, b)

    def softmax(self, z):
        e = np.frompyfunc(sp.exp, 1, 1)(z)
        return e / e.sum(axis=0, keepdims=True)

    def const(self, name):
        return sp.pi

    def compare(self, op, a, b):
        f = np.frompyfunc(lambda x, y: sp.Piecewise((1, _RELATIONS[op](x, y)), (0, True)), 2, 1)
        return f(a, b)

    def diag(self, v):
        return np.diagflat(np.asarray(v, dtype=object).ravel())

    def function(self, name, prime, layer):
        expr = self.math(name, prime, layer)
        f = np.frompyfunc(lambda v: expr.xreplace({X: v}), 1, 1)
        return lambda a: f(a) if isinstance(a, np.ndarray) else expr.xreplace({X: a})


# ---------------------------------------------------------------- values of the symbols

class _NumericValues:
    """Values at one point from symnet.trace (batch rows -> the example axis last:
    columns (n, m) for vectors, (C, H, W, m) for feature maps)."""

    def __init__(self, info: _Net, params, ev, stride=None, rows=False):
        self.info, self.params, self.ev = info, params, ev
        self.m = ev.values["x"].shape[0]
        self.stride = stride
        self.rows = rows        # batch matrices with one example per row

    def orient(self, arr):
        return arr.T if self.rows and arr.ndim == 2 else arr

    def shape(self, key):
        return self.info.symbols[key].shape

    def has_example(self, key, d=False):
        return not _NO_EXAMPLE.fullmatch(key)

    def batch_size(self):
        return np.float64(self.m)

    def activation_layers(self):
        return self.info.derivation.activations

    def column(self, key):
        info, v = self.info, self.ev.values
        if key.startswith("Delta"):
            key = "delta" + key[5:]
        if re.fullmatch(r"[Dd]\d+", key):
            key = "mask" + key[1:]
        if key in (f"a{info.softmax_position}", "p", f"p{info.L}"):
            key = "p"
        if key == "ones":
            return np.ones((self.m, 1))
        if key not in v:
            raise _Undecidable(f"{key} has no value at this point")
        return self.orient(np.moveaxis(v[key], 0, -1))

    def __call__(self, key, d):
        if key in ("m", "n"):
            if d:
                raise FormulaError(f"d{key}: the batch size has no gradient")
            return np.float64(self.info.outputs if key == "n" and self.info.n_outputs else self.m)
        if key.startswith("rate"):
            if d:
                raise FormulaError("dp: the dropout rate has no gradient")
            return np.float64(self.info.net.placed[int(key[4:]) - 1].layer.rate)
        if key == "s":
            if d:
                raise FormulaError("ds: the stride has no gradient")
            if self.stride is None:
                raise FormulaError("s: the target's layer has no stride; expected the stride as a number")
            return np.float64(self.stride)
        if d:
            return self.gradient(key)
        if _NO_EXAMPLE.fullmatch(key):
            p = self.params[key] if key in self.params else self.ev.values[key]
            return p.reshape(-1, 1) if p.ndim == 1 else p
        return self.column(key)

    def gradient(self, key):
        """Parameter gradients (batch mean); da_l and dx per example (example axis last)."""
        info, ev = self.info, self.ev
        if _is_param(info, key):
            g = ev.grads[key]
            return g.reshape(-1, 1) if g.ndim == 1 else g
        if key in ("x", "a0"):
            key = "a0"
        m = re.fullmatch(r"a(\d+)", key)
        if not m:
            raise FormulaError(f"d{key}: expected the gradient of a parameter, an activation or x")
        l = int(m.group(1))
        if l == info.L or l == info.softmax_position:
            return self.orient(self.output_gradient())
        return self.orient(np.moveaxis(ev.values[f"da{l}"], 0, -1))

    def route(self, g):
        """Max pooling's backward map of g (the gradient at a pooling layer's output,
        example axis last): to the first maximum of each window, as symnet.trace routes."""
        from ..trace import _LAYERS
        shape = g.shape[:-1]
        pools = [p for p in self.info.net.placed if p.layer.type == "maxpool2d" and tuple(p.out_shape) == shape]
        if len(pools) != 1:
            raise FormulaError("route_{argmax}: expected the gradient at one max-pooling layer's output "
                               f"(shape {shape} matches {len(pools)} such layers)")
        p = pools[0]
        fwd, bwd = _LAYERS["maxpool2d"]
        st = {}
        fwd(p, self.ev.values[f"a{p.position - 1}"], {}, st, {})
        _, back = bwd(p, np.moveaxis(g, -1, 0), {}, st, {})
        return np.moveaxis(back, 0, -1)

    def argmax(self, l: int, role: str):
        """The row (or column) of the input position where each window of max-pooling layer l
        peaks, ties to the first maximum in row-major order as symnet.trace; example axis last."""
        from ..trace import _LAYERS
        p = self.info.placed[l]
        st = {}
        _LAYERS["maxpool2d"][0](p, self.ev.values[f"a{l - 1}"], {}, st, {})
        k, s = st["k"], st["s"]
        _, _, ho, wo = st["arg"].shape
        offset = st["arg"] // k if role == "row" else st["arg"] % k
        start = s * np.arange(ho if role == "row" else wo)
        start = start[None, None, :, None] if role == "row" else start[None, None, None, :]
        return np.moveaxis((start + offset).astype(np.float64), 0, -1)

    def spread(self, g, k: int):
        """Each window's value added to every input of its window (the pooling layer
        whose output has g's shape and whose window is k)."""
        from ..trace import _scatter_windows
        shape = g.shape[:-1]
        pools = [p for p in self.info.net.placed if p.layer.type in ("avgpool2d", "maxpool2d")
                 and tuple(p.out_shape) == shape and p.layer.size == k]
        if len(pools) != 1:
            raise FormulaError(f"spread_{{{k}}}: expected the gradient at one pooling layer's output "
                               f"with {k}x{k} windows (shape {shape} matches {len(pools)})")
        p = pools[0]
        rows = np.moveaxis(g, -1, 0)
        per_window = np.broadcast_to(rows[..., None, None], rows.shape + (k, k))
        back = _scatter_windows((rows.shape[0], *p.in_shape), per_window, p.layer.stride)
        return np.moveaxis(back, 0, -1)

    def example_gradients(self, key):
        """Each example's own gradient of a parameter (its loss alone), example axis last."""
        from ..trace import trace
        v, masks = self.ev.values, getattr(self.ev, "masks", {}) or {}
        # The same batch (same rounding of every z; with batch norm the same batch statistics),
        # the loss weighted to one example: m * e-th row.
        grads = [trace(self.info.derivation, self.params, v["x"], v["y"], masks=masks, training=self.info.training,
                       weights=self.m * np.eye(self.m)[e]).grads[key] for e in range(self.m)]
        g = np.stack(grads, axis=-1)
        return g if g.ndim > 2 else g.reshape(g.shape[0], 1, -1)[:, 0]

    def output_gradient(self):
        from ..derive.core import N_OUT
        from ..losses import Y, YHAT
        info = self.info
        if info.categorical:
            raise _Undecidable("the gradient of the softmax output is a Jacobian product; "
                               "write delta with p - y instead")
        if info.net.loss.kind == "margin":   # scores: a = z, so dloss/da^(L) is delta^(L)
            return self.ev.values[f"delta{info.L}"].T
        f = _loss_gradient(info.net.loss.expr, YHAT, Y, N_OUT)
        a, y = self.ev.values[f"a{info.L}"], self.ev.values["y"]
        return (f(a, y, a.shape[1]) * np.ones_like(a)).T


@lru_cache(maxsize=None)
def _loss_gradient(expr, yhat, y, n):
    return lambdify((yhat, y, n), sp.diff(expr, yhat) / n)


class _SymbolicValues:
    """Per example, a copy of the network at most SYMBOLIC_WIDTH units wide:
    W, b, x, y and every z_l are symbols; a_l = g(z_l); deltas as derived."""

    def __init__(self, info: _Net):
        from ..derive.core import N_OUT, P, Y, Z
        self.info = info
        d = info.derivation
        sizes = {l: min(n, SYMBOLIC_WIDTH) for l, n in info.sizes.items()}
        self.sizes = sizes
        layers = sorted(sizes)
        sym = lambda name, shape: np.array(                                   # noqa: E731
            [[sp.Symbol(f"{name}_{i}{j}", real=True) for j in range(shape[1])] for i in range(shape[0])],
            dtype=object)
        v = {"x": sym("x", (sizes[0], 1)), "y": sym("y", (sizes[info.L], 1))}
        v["a0"] = v["x"]
        backend = _SymbolicBackend(d.activations)
        self.backend = backend
        for l in layers[1:]:
            prev = max(q for q in layers if q < l)
            v[f"W{l}"] = sym(f"W{l}", (sizes[l], sizes[prev]))
            v[f"b{l}"] = sym(f"b{l}", (sizes[l], 1))
            v[f"z{l}"] = sym(f"z{l}", (sizes[l], 1))
            if l in d.activations:
                v[f"a{l}"] = backend.function("g", False, l)(v[f"z{l}"])
        zL = v[f"z{info.L}"]
        out = d.output
        if info.categorical:
            v["p"] = backend.softmax(zL)
            v[f"a{info.L}"] = v["p"]
            delta = np.frompyfunc(lambda p, y: out.delta.xreplace({P: p, Y: y}), 2, 1)(v["p"], v["y"])
        elif out.kind == "multiclass_hinge":   # its delta couples the classes: numbers only
            raise _Undecidable("the multi-class hinge's delta is checked numerically")
        else:
            nL = sp.Integer(info.sizes[info.L])
            delta = np.frompyfunc(lambda z, y: out.delta.xreplace({Z: z, Y: y, N_OUT: nL}), 2, 1)(zL, v["y"])
        if info.softmax_position is not None:
            v[f"a{info.softmax_position}"] = v["p"]
        v["yhat"] = v[f"a{info.L}"]
        v[f"delta{info.L}"] = delta
        for l in reversed(layers[1:-1]):
            above = min(q for q in layers if q > l)
            upstream = v[f"W{above}"].T @ v[f"delta{above}"]
            v[f"da{l}"] = upstream
            v[f"delta{l}"] = backend.function("g", True, l)(v[f"z{l}"]) * upstream
        v["da0"] = v["W" + str(layers[1])].T @ v["delta" + str(layers[1])]
        self.v = v

    stride = None

    def shape(self, key):
        return self.info.symbols[key].shape

    def has_example(self, key, d=False):
        return not (re.fullmatch(r"[Wb]\d+", key))

    def batch_size(self):
        return sp.Integer(1)

    def activation_layers(self):
        return self.info.derivation.activations

    def __call__(self, key, d):
        if key in ("m", "n"):
            if d:
                raise FormulaError(f"d{key}: the batch size has no gradient")
            return sp.Integer(self.info.outputs if key == "n" and self.info.n_outputs else 1)
        if key.startswith("Delta"):
            key = "delta" + key[5:]
        if key == "p" and "p" not in self.v:
            raise _Undecidable("no softmax output")
        if not d:
            return self.v[key]
        if re.fullmatch(r"W\d+", key):
            l = int(key[1:])
            return self.v[f"delta{l}"] @ self.v[f"a{l - 1}"].T
        if re.fullmatch(r"b\d+", key):
            return self.v[f"delta{key[1:]}"]
        if key == "x":
            return self.v["da0"]
        if f"d{key}" in self.v:
            return self.v[f"d{key}"]
        raise _Undecidable(f"d{key} has no symbolic form here")

    def derived(self, key, grad):
        if not grad:
            return self.v[key]
        return self(key, True)


# ---------------------------------------------------------------- comparison

def _expected(key: str, grad: bool, values: _NumericValues, batch: bool):
    """symnet's value of the target at one point, the example axis last: parameter
    gradients of the batch-mean loss; activation and input gradients per example,
    divided by m for a batch formula (the gradient of the batch mean)."""
    if not grad:
        return values.column(key)
    if _is_param(values.info, key):
        return values.gradient(key)
    return values.gradient(key) / (values.m if batch else 1)


def _finish_element(result, resolved: ResolvedFormula, key: str, grad: bool, m: int, info: _Net,
                    keep_examples: bool = False):
    """An element-form result as an array in the target's layout."""
    if not isinstance(result, _Indexed):
        result = _Indexed(np.asarray(result), ())
    lhs_indices = tuple(resolved.lhs.indices) if isinstance(resolved.lhs, Sym) else ()
    if any(isinstance(ix, Affine) for ix in lhs_indices):
        raise FormulaError("the left side has an index expression; expected plain letters, like "
                           "dW_{f,c,m,n} or \\delta_{f,i,j}")
    free = [ax for ax in result.axes if ax != _EXAMPLE_AXIS]
    symbol = info.symbols[key].shape
    dims = info.dims(key)
    want = len(dims)
    if not lhs_indices and want > 2 and len(free) == want:
        raise FormulaShapeError(f"the right side has free indices {', '.join(sorted(free))}; write the left "
                                f"side with them in order, like d{key}_{{{','.join('fcmn'[:want])}}} = ...")
    order = list(lhs_indices) if lhs_indices else sorted(free)
    param = grad and _is_param(info, key)
    if set(order) != set(free) or len(order) != want:
        if lhs_indices and set(lhs_indices) != set(free):
            raise FormulaShapeError(f"the left side has indices {', '.join(lhs_indices) or 'none'}, the right "
                                    f"side free indices {', '.join(sorted(free)) or 'none'}")
        what = {1: "a vector", 2: "a matrix"}.get(want, f"an array with {want} axes")
        raise FormulaShapeError(f"the right side has free indices {', '.join(sorted(free)) or 'none'}; "
                                f"an entry of {what} needs {want} (like {'_i' if want == 1 else '_{i,j}'})")
    arr, axes = result.arr, list(result.axes)
    if _EXAMPLE_AXIS not in axes:
        arr, axes = arr[..., None], axes + [_EXAMPLE_AXIS]
    arr = np.transpose(arr, [axes.index(ax) for ax in order + [_EXAMPLE_AXIS]])
    if not param or keep_examples:
        return arr if arr.shape[-1] == m else np.broadcast_to(arr, arr.shape[:-1] + (m,)), order
    if arr.shape[-1] != 1:
        raise FormulaShapeError("the right side still has one value per example; a batch gradient "
                                "averages over the examples (\\frac{1}{m} \\sum ...)"
                                + ("; with batch norm every formula is read on a batch"
                                   if info.batch_norm else ""))
    arr = arr[..., 0]
    return (arr[:, None] if symbol != dims else arr), order


def _compare(given, expected, order, point, seed, batch: bool):
    """None when equal, else a Counterexample; raises _Undecidable without finite values."""
    given = np.asarray(given, dtype=np.float64)
    if given.ndim == expected.ndim + 1 and given.shape[-1] == 1:
        given = given[..., 0]       # a per-example operator result for one example, or summed over them
    if given.shape != expected.shape:
        given = np.broadcast_to(given, expected.shape) if given.ndim == 0 else given
    if given.shape != expected.shape:
        raise FormulaShapeError(f"the formula gives shape {given.shape}, symnet {expected.shape}"
                                + (" (examples as columns)" if batch else ""))
    finite = np.isfinite(given) & np.isfinite(expected)
    if not finite.any():
        raise _Undecidable("the formula has no finite value at the test point")
    err = np.where(finite, np.abs(given - expected), 0.0)
    scale = float(np.max(np.abs(expected[finite])))
    tol = ATOL * max(1.0, scale) + RTOL * np.abs(expected)
    excess = np.where(finite, err - tol, -np.inf)
    worst = np.unravel_index(int(np.argmax(excess)), given.shape)
    if excess[worst] <= 0:
        if not finite.all() and np.isfinite(expected).all():
            bad = np.unravel_index(int(np.argmin(finite)), given.shape)
            raise _Undecidable(f"the formula has no finite value at entry {_index_text(bad)}")
        return None
    g, e = float(given[worst]) + 0.0, float(expected[worst]) + 0.0     # + 0.0: no -0 in messages
    index = tuple(int(i) for i in worst)
    if order is not None:
        names = list(order) + (["example"] if batch and len(index) > len(order) else [])
        index = {n: i for n, i in zip(names, index)}
    elif not batch and len(index) == 2 and expected.shape[1] == 1:
        index = (index[0], 0)
    return Counterexample(point, seed, index, g, e, abs(g - e), abs(g - e) / abs(e) if e else float("inf"))


# ---------------------------------------------------------------- points

def _random_point(info: _Net, rng, m: int, avoid_kinks=True):
    """Parameters, a batch of m examples, dropout masks and their trace (ev.masks)."""
    from ..check import random_batch
    from ..trace import trace
    net = info.net
    for _ in range(50 if info.dense_only else 3):     # wide feature maps always have a unit near a kink
        params = {}
        for name, shape in net.param_shapes.items():
            if len(shape) > 1:
                params[name] = rng.normal(size=shape) * (1.5 / np.sqrt(np.prod(shape[1:])))
            elif name.startswith("gamma"):
                params[name] = 1 + 0.3 * rng.normal(size=shape)
            else:
                params[name] = rng.normal(size=shape) * 0.5
        for name, shape in net.state_shapes.items():
            params[name] = (rng.uniform(0.5, 1.5, shape) if name.startswith("running_var")
                            else rng.normal(size=shape) * 0.5)
        X_, Y_ = random_batch(net, m, rng)
        masks = {p.position: (rng.random((m, *p.out_shape)) >= p.layer.rate).astype(np.float64)
                 for p in net.placed if p.layer.type == "dropout"}
        if not info.training:
            masks = {}
        ev = trace(info.derivation, params, X_, Y_, masks=masks, training=info.training)
        ev.masks = masks
        near = any(np.any(np.abs(ev.values[f"z{l}"] - k) < KINK_MARGIN)
                   for l, ks in info.kinks.items() for k in ks)
        if not (avoid_kinks and near):
            break
    return params, X_, Y_, ev


def _kink_point(info: _Net, rng, m: int):
    """A point whose pre-activations sit exactly on kinks in every kinked dense
    layer (half of the units, example 0)."""
    from ..trace import trace
    params, X_, Y_, ev = _random_point(info, rng, m)
    masks = ev.masks
    for l in sorted(info.kinks):
        if f"W{l}" not in params or params[f"W{l}"].ndim != 2:
            continue
        k = info.kinks[l][0]
        W, b = params[f"W{l}"], params[f"b{l}"].copy()
        s = ev.values[f"a{l - 1}"] @ W.T
        units = np.arange(0, b.size, 2)
        b[units] = k - s[0, units]
        params[f"b{l}"] = b
        ev = trace(info.derivation, params, X_, Y_, masks=masks, training=info.training)
        ev.masks = masks
    return params, X_, Y_, ev


# ---------------------------------------------------------------- LaTeX

def _sym_latex(node: Sym) -> str:
    m = re.fullmatch(r"([A-Za-z_]+?)(\d*)", node.key)
    base, layer = m.groups() if m else (node.key, "")
    base = {"delta": r"\delta", "Delta": r"\Delta", "yhat": r"\hat{y}", "gamma": r"\gamma",
            "beta": r"\beta", "mu": r"\mu", "xhat": r"\hat{x}", "mask": "D", "var": r"\mathrm{var}",
            "running_mean": r"\mathrm{running\_mean}", "running_var": r"\mathrm{running\_var}",
            "ones": r"\mathbf{1}"}.get(base, base)
    if base == "argmax":        # max pooling's argmax position: its row or column
        base = rf"\mathrm{{argmax\,{node.role or 'row'}}}"
    if node.tilde or node.check:
        base = rf"\{'tilde' if node.tilde else 'check'}{{{base}}}"
    text = base + (f"^{{({layer})}}" if layer else "")
    if node.indices:
        text += "_{" + ",".join(str(ix) for ix in node.indices) + "}"
    if node.d and node.summed:      # the gradient of the summed loss m L
        return rf"\frac{{\partial \mathcal{{L}}}}{{\partial {text}}}"
    return (r"\mathrm{d}" + text) if node.d else text


_PREC = {Add: 1, Sub: 1, Hadamard: 2, Div: 2, Mul: 3, MatMul: 3}


def to_latex(node: Node | None) -> str:
    """A readable LaTeX rendering of a resolved formula's AST."""
    if node is None:
        return ""

    def go(n: Node, parent: int = 0) -> str:
        if isinstance(n, Num):
            v = n.value
            return str(v.numerator) if v.denominator == 1 else rf"\frac{{{v.numerator}}}{{{v.denominator}}}"
        if isinstance(n, Sym):
            return _sym_latex(n)
        if isinstance(n, IndexValue):
            return n.letter
        if isinstance(n, Const):
            return r"\pi"
        if isinstance(n, Compare):
            op = {">": ">", "<": "<", ">=": r"\geq", "<=": r"\leq", "==": "=", "!=": r"\neq", "|": r"\mid"}[n.op]
            return rf"\mathbb{{1}}\left[{go(n.left)} {op} {go(n.right)}\right]"
        if isinstance(n, Transpose):
            bare = isinstance(n.expr, Sym) and not n.expr.indices and not re.search(r"\d", n.expr.key)
            return f"{go(n.expr)}^{{T}}" if bare and not n.expr.d else f"\\left({go(n.expr)}\\right)^{{T}}"
        if isinstance(n, Neg):
            inner = go(n.expr, 3)
            return f"\\left(-{inner}\\right)" if parent else f"-{inner}"
        if isinstance(n, Pow):
            return f"\\left({go(n.base)}\\right)^{{{n.exponent}}}"
        if isinstance(n, Call) and n.func == "dilate":
            return rf"\operatorname{{dilate}}\left({go(n.args[0])}\right)"
        if isinstance(n, Call) and n.func.startswith("dilate:"):
            return rf"{go(n.args[0], 3)}\uparrow_{{{n.func.partition(':')[2]}}}"
        if isinstance(n, Call) and n.func.split(":")[0] in ("full", "rot180", "route", "reshape", "crop", "spread"):
            sub = {"route": r"_{\operatorname{argmax}}", "reshape": "_{%s}" % n.func.partition(":")[2],
                   "crop": "_{%s}" % n.func.partition(":")[2], "spread": "_{%s}" % n.func.partition(":")[2]}
            return rf"\operatorname{{{n.func.split(':')[0]}}}{sub.get(n.func.split(':')[0], '')}\left({go(n.args[0])}\right)"
        if isinstance(n, (Star, Ast)):
            op = r" \star " if isinstance(n, Star) else r" \ast "
            return go(n.left, 3) + op + go(n.right, 3)
        if isinstance(n, Call):
            name = {"sigma": r"\sigma", "tanh": r"\tanh", "exp": r"\exp", "log": r"\log",
                    "sqrt": r"\sqrt", "relu": r"\operatorname{ReLU}",
                    "softmax": r"\operatorname{softmax}", "g": "g", "sign": r"\operatorname{sign}",
                    "erf": r"\operatorname{erf}", "sech": r"\operatorname{sech}",
                    "diag": r"\operatorname{diag}", "id": r"\operatorname{id}"}[n.func]
            return f"{name}{chr(39) if n.prime else ''}\\left({go(n.args[0])}\\right)"
        if isinstance(n, Sum):
            text = (f"\\sum_{{{n.index}}} " if n.index else "\\sum ") + go(n.body, 2)
            return f"\\left({text}\\right)" if parent > 2 else text
        if isinstance(n, Div):
            return f"\\frac{{{go(n.left)}}}{{{go(n.right)}}}"
        if isinstance(n, Binary):
            prec = _PREC[type(n)]
            op = {Add: " + ", Sub: " - ", Hadamard: r" \odot ", Mul: " ", MatMul: " "}[type(n)]
            text = go(n.left, prec) + op + go(n.right, prec + 1 if isinstance(n, Sub) else prec)
            return f"\\left({text}\\right)" if prec < parent else text
        return "?"

    return go(node)


def _derived_latex(info: _Net, key: str, grad: bool, batch: bool) -> str:
    try:
        return _derived_step_latex(info, key, grad, batch)
    except (KeyError, ValueError, TypeError, AttributeError):     # a form the document does not print
        return ""


def _derived_step_latex(info: _Net, key: str, grad: bool, batch: bool) -> str:
    from ..derive.notation import column, indexed
    from ..derive.core import I
    from ..render import latex
    d = info.derivation
    if grad and (_is_param(info, key) or key == "x"):
        g = d.gradients[key]
        step = g.batch if batch else g.matrix
        return f"{latex(step.lhs)} = {latex(step.rhs)}"
    if grad:
        name = r"\frac{\partial \ell}{\partial a^{(%s)}}" % key[1:]
        for s in d.steps:
            if s.form == "matrix" and isinstance(s.lhs, sp.Symbol) and s.lhs.name == name:
                return f"{latex(s.lhs)} = {latex(s.rhs)}"
        return ""
    l = int(key[5:])
    targets = (column(r"\delta", l), indexed(r"\delta", l)[I])
    texts = {str(t) for t in targets}
    found = [s for s in d.steps if s.form in ("matrix", "element") and str(s.lhs) in texts]
    matrix = [s for s in found if s.form == "matrix"]
    s = (matrix or found or [None])[-1]
    if s is None:
        return ""
    rhs = s.rhs
    if l == info.L and isinstance(rhs, sp.Basic):     # n in the loss is the output count, not m
        from ..derive.core import N_OUT
        rhs = rhs.subs(N_OUT, info.symbols["y"].shape[0])
    return f"{latex(s.lhs)} = {latex(rhs)}"


# ---------------------------------------------------------------- symbolic stage

MAX_SYMBOLIC_OPS = 120      # larger differences are not simplified at all


def _limited(fn, arg, timeout: float):
    """fn(arg) in a daemon thread (never blocks interpreter exit); TimeoutError
    after `timeout` seconds. SymPy cannot be interrupted, so the size limit
    MAX_SYMBOLIC_OPS keeps an abandoned simplify short."""
    box = {}

    def run():
        try:
            box["value"] = fn(arg)
        except Exception as exc:        # noqa: BLE001  (reported to the caller)
            box["error"] = exc
    worker = threading.Thread(target=run, daemon=True, name="symnet-verify-simplify")
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError
    if "error" in box:
        raise box["error"]
    return box["value"]


def _symbolic(info: _Net, resolved: ResolvedFormula, key: str, grad: bool, element: bool,
              deadline: float) -> tuple[str, bool]:
    """('equal' | 'different' | 'timeout' | 'skipped', difference is piecewise)."""
    try:
        values = _SymbolicValues(info)
        result = _Evaluator(values.backend, values, element).eval(resolved.rhs)
        expected = values.derived(key, grad)
        if element:
            result, _ = _finish_element(result, resolved, key, grad, 1, info)
        result = np.broadcast_to(np.asarray(result, dtype=object), expected.shape)
    except (SymnetError, _Undecidable, ValueError, TypeError, KeyError, ZeroDivisionError):
        return "skipped", False
    status, piecewise = "equal", False
    for g, e in zip(result.ravel(), expected.ravel()):
        diff = sp.Integer(0) + g - e        # both are symnet's own SymPy objects
        if diff == 0:
            continue
        if sp.count_ops(diff) > MAX_SYMBOLIC_OPS:
            return "timeout", False
        left = deadline - time.monotonic()
        if left <= 0:
            return "timeout", False
        try:
            zero, pw = _limited(_simplify_zero, diff, left)
        except Exception:       # noqa: BLE001  (a timeout or SymPy failing decides nothing)
            return "timeout", False
        if not zero:
            status, piecewise = "different", piecewise or pw
    return status, piecewise


def _simplify_zero(diff) -> tuple[bool, bool]:
    simple = sp.simplify(diff.rewrite(sp.exp) if diff.has(sigmoid) else diff)
    if simple == 0:
        return True, False
    return False, simple.has(sp.Piecewise, sp.Heaviside)


# ---------------------------------------------------------------- verify

NOTE_POINTS = 2             # random points each repaired formula must match


def _note(info, resolved, key, grad, element, batch, m, ranges, stride, seed, points) -> str:
    """The common mistake that explains the difference, or a line saying none does."""
    from .notes import TRIED, candidates
    backend = _NumericBackend(info.derivation.activations)
    lhs_indices = tuple(resolved.lhs.indices) if isinstance(resolved.lhs, Sym) else ()
    free = _free_indices(resolved.rhs)
    samples = []
    for k in range(min(points, NOTE_POINTS)):
        params, _, _, ev = _random_point(info, np.random.default_rng([seed, k]), m)
        samples.append((params, ev))
    deadline = time.monotonic() + 0.5
    for note, alt in candidates(resolved.rhs, info, key, grad, lhs_indices, batch, free):
        if time.monotonic() > deadline:
            break
        fixed = ResolvedFormula(resolved.lhs, alt, resolved.source, resolved.layer)
        if _repairs(info, fixed, key, grad, element, batch, m, ranges, stride, backend, samples):
            return note
    return "no common mistake explains the difference (tried " + ", ".join(TRIED) + ")"


def _repairs(info, fixed, key, grad, element, batch, m, ranges, stride, backend, samples) -> bool:
    tables = [info.batch_symbols(False), info.batch_symbols(True)] if batch and not element else [info.symbols]
    for rows, table in enumerate(tables):
        try:
            _check_target_shape(fixed, table, key, "", element)
        except (FormulaShapeError, KeyError):
            continue
        try:
            with np.errstate(all="ignore"):
                for params, ev in samples:
                    values = _NumericValues(info, params, ev, stride, bool(rows))
                    result = _Evaluator(backend, values, element, ranges).eval(fixed.rhs)
                    order = None
                    if element:
                        result, order = _finish_element(result, fixed, key, grad, m, info)
                    if _compare(result, _expected(key, grad, values, batch), order, 0, (0,), batch) is not None:
                        return False
            return True
        except (SymnetError, _Undecidable, ValueError, TypeError, KeyError, IndexError):
            continue
    return False


def verify(net, target, formula, *, per_example=None, layer=None, seed=0, points=5, training=True,
           n="batch") -> Verdict:
    """Compare a hand-derived formula for `target` (W2, b1, delta2, x, da1) with
    symnet's derivation of `net`. Returns a Verdict; user errors raise SymnetError.
    training=False: evaluation mode (dropout off, batch norm through running_mean<l>,
    running_var<l>). n="outputs": a bare n is the number of outputs per example (as
    symnet's documents declare it), not the batch size."""
    if n not in ("batch", "outputs"):
        raise SpecError(f"n must be 'batch' or 'outputs', not {n!r}")
    info = _describe_net(net)
    info.n_outputs = n == "outputs"
    if training not in (True, False):
        raise SpecError(f"training must be True or False, not {training!r}")
    info.training = training
    info.batch_norm = info.batch_norm and training     # running statistics do not couple the examples
    if isinstance(points, bool) or not isinstance(points, int) or not 1 <= points <= 100:
        raise SpecError(f"points must be a whole number from 1 to 100, not {points!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SpecError(f"seed must be a non-negative whole number, not {seed!r}")
    if per_example not in (None, True, False):
        raise SpecError(f"per_example must be True, False or None, not {per_example!r}")
    if layer is not None and (isinstance(layer, bool) or not isinstance(layer, int)):
        raise FormulaError(f"layer must be a whole number, not {layer!r}")
    resolved = resolve(parse_formula(formula), info.symbols, layer=layer)

    lhs = resolved.lhs
    if target is None:
        if not isinstance(lhs, Sym):
            raise FormulaError("no target given and the formula has no left side such as dW2 = ...; "
                               "expected a target (W2, b1, delta2, x)")
        target = ("d" if lhs.d and lhs.key[0] != "d" else "") + lhs.key
    key, grad = _resolve_target(target, info, layer)
    name = ("d" + key) if grad else key
    if lhs is not None:
        lkey = "delta" + lhs.key[5:] if isinstance(lhs, Sym) and lhs.key.startswith("Delta") else getattr(lhs, "key", None)
        if not isinstance(lhs, Sym) or lkey != key or (lhs.d and not grad):
            raise FormulaError(f"the left side at column {lhs.span[0] + 1} "
                               f"({resolved.source[lhs.span[0]:lhs.span[1]].strip()}) is not the target {name}; "
                               f"expected {name} = ... or the right side alone")

    element = _uses_indices(resolved.rhs)
    said = ()
    if element:     # batch norm's per-channel sums over the batch: a batch formula of the summed
        resolved, info.channels, said = channels.read(resolved, info, key, grad)    # or the mean loss
    batch = _looks_batch(resolved, info.n_outputs) if per_example is None else not per_example
    batch = batch or info.channels is not None
    # Batch norm couples the examples (one example alone has no statistics): always a batch.
    m = BATCH_EXAMPLES if batch or info.batch_norm else 1
    ranges = _ranges(resolved, info, key) if element else {}
    counted_from_1 = said
    if element:
        resolved, more = _one_based(resolved, info, ranges)
        counted_from_1 += more
    stride = _stride(info, key, grad)
    # With batch norm a per-example formula for a parameter is read on the batch and summed
    # over its examples (each example's d ell_e / dW, as the document writes it).
    summed_examples = info.batch_norm and not batch and grad and _is_param(info, key)
    given_latex = (to_latex(lhs) + " = " if lhs is not None else "") + to_latex(resolved.rhs)
    names = _names_read(resolved, info) + counted_from_1
    derived_latex = _derived_latex(info, key, grad, batch)
    make = lambda status, message, **kw: Verdict(status, f"{status}: {message}", name,       # noqa: E731
                                                 derived_latex=derived_latex, given_latex=given_latex,
                                                 batch=batch, names=names, **kw)

    # 1. shapes (a batch formula that fits only with one example per row is read that way, and says so)
    rows = False
    try:
        _check_target_shape(resolved, info.batch_symbols(False) if batch else info.symbols, key, name, element)
    except FormulaShapeError as exc:
        try:
            if not batch or element:
                raise exc
            _check_target_shape(resolved, info.batch_symbols(True), key, name, element)
            rows = True
        except FormulaShapeError:
            return make("not equal", f"shapes differ: {str(exc).replace(str(BATCH_AXIS), 'm')}", reason="shape",
                        note=_note(info, resolved, key, grad, element, batch, m, ranges, stride, seed, points))
    layout = ""
    if batch and not element:
        layout = ("one example per row (symnet's batch matrices)" if rows
                  else "one example per column (Andrew Ng's layout)")
        make = lambda status, message, **kw: Verdict(status, f"{status}: {message}", name,       # noqa: E731
                                                     derived_latex=derived_latex, given_latex=given_latex,
                                                     batch=batch, layout=layout, names=names, **kw)

    # 2. numbers
    backend = _NumericBackend(info.derivation.activations)
    compared, worst, undecidable = 0, None, ""
    with np.errstate(all="ignore"):
        for k in range(points):
            point_seed = (seed, k)
            rng = np.random.default_rng(list(point_seed))
            params, _, _, ev = _random_point(info, rng, m)
            values = _NumericValues(info, params, ev, stride, rows)
            try:
                result = _Evaluator(backend, values, element, ranges).eval(resolved.rhs)
                order = None
                if element:
                    result, order = _finish_element(result, resolved, key, grad, m, info, summed_examples)
                expected = _expected(key, grad, values, batch)
                if batch and getattr(lhs, "summed", False):
                    expected = expected * m         # \partial \mathcal{L}: the summed loss m L
                if summed_examples:
                    result, expected = _summed(result, expected), expected * m
                cex = _compare(result, expected, order, k, point_seed, batch)
            except FormulaShapeError as exc:
                return make("not equal", f"shapes differ: {exc}", reason="shape",
                            note=_note(info, resolved, key, grad, element, batch, m, ranges, stride, seed, points))
            except _Undecidable as exc:
                undecidable = str(exc)
                continue
            compared += 1
            if cex is not None and (worst is None or cex.rel_error > worst.rel_error):
                worst = cex
        if worst is not None:
            return make("not equal", worst.describe(name), counterexample=worst, reason="numeric",
                        points=compared,
                        note=_note(info, resolved, key, grad, element, batch, m, ranges, stride, seed, points))
        kink_cex = None
        if compared and info.kinks:
            rng = np.random.default_rng([seed, points, 1])
            params, _, _, ev = _kink_point(info, rng, m)
            values = _NumericValues(info, params, ev, stride, rows)
            try:
                result = _Evaluator(backend, values, element, ranges).eval(resolved.rhs)
                order = None
                if element:
                    result, order = _finish_element(result, resolved, key, grad, m, info, summed_examples)
                expected = _expected(key, grad, values, batch)
                if batch and getattr(lhs, "summed", False):
                    expected = expected * m         # \partial \mathcal{L}: the summed loss m L
                if summed_examples:
                    result, expected = _summed(result, expected), expected * m
                kink_cex = _compare(result, expected, order, -1, (seed, points, 1), batch)
            except _Undecidable as exc:
                kink_cex = Counterexample(-1, (seed, points, 1), (), float("nan"), float("nan"),
                                          float("nan"), float("nan"), str(exc))

    # 3. symbols (per example only; at most SYMBOLIC_SECONDS)
    symbolic, piecewise = "skipped", False
    if not batch and info.dense_only:
        symbolic, piecewise = _symbolic(info, resolved, key, grad, element,
                                        time.monotonic() + SYMBOLIC_SECONDS)

    kinks = ", ".join(f"z{l} = {info.kinks[l][0]:g}" for l in sorted(info.kinks))
    if compared:
        checked = f"at {compared} random point{'s' if compared > 1 else ''}"
        if batch:
            checked += f" (batches of {m} examples)"
        elif summed_examples:
            checked += (f" (batches of {m} examples: with batch norm the per-example formula is summed "
                        "over the batch and compared with m dL/d" + key + ")")
        if kink_cex is not None:
            if kink_cex.abs_error != kink_cex.abs_error:        # nan: no value at the kink
                detail = kink_cex.note
            else:
                detail = kink_cex.describe(name)
            return make("equal almost everywhere",
                        f"agrees {checked} away from the kinks, not on them ({kinks}): {detail}; "
                        "at a kink symnet takes the derivative its piecewise definition gives "
                        "(ReLU'(0) = 0, as PyTorch and JAX do)",
                        counterexample=kink_cex, reason="kink", symbolic=symbolic, points=compared)
        if symbolic == "different" and piecewise and not info.kinks:
            return make("equal almost everywhere",
                        f"agrees {checked}; symbolically the difference is piecewise, nonzero only on a "
                        "set of measure zero", reason="symbolic", symbolic=symbolic, points=compared)
        how = {"equal": "; SymPy simplifies the difference to 0",
               "different": "; SymPy could not simplify the difference to 0 (numbers decide)",
               "timeout": "; the symbolic check ran out of time"}.get(symbolic, "")
        return make("equal", f"agrees with symnet's derivation {checked}{how}",
                    reason="numeric", symbolic=symbolic, points=compared)
    if symbolic == "equal":
        return make("equal", f"SymPy simplifies the difference to 0 (no numeric check: {undecidable})",
                    reason="symbolic", symbolic=symbolic)
    return make("undecided", f"neither numbers nor symbols decide: {undecidable or 'no values'}"
                + ("; SymPy could not simplify the difference to 0" if symbolic == "different" else ""),
                reason="no values", symbolic=symbolic)
