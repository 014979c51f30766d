"""Convolution, pooling and flatten layers, derived in index form by SymPy.

The generic layer (symbolic sizes, stride s, 0-based indices) is differentiated
once; each placed layer instantiates the result by renaming (xreplace), so the
cost does not grow with the image or the number of filters:

    z[f,i,j] = b[f] + sum_c sum_q sum_r W[f,c,q,r] x~[c, s i + q, s j + r]

(x~ is the zero-padded input). SymPy gives dL/dW (a correlation of the input
with delta), dL/db, and dL/dx~ in scatter form; summing over the kernel offset
instead of the output position (i = (u - q)/s) gives the lectures' "full
convolution of delta with the flipped kernel"; with a stride s > 1 the rule
`dilate` writes delta at (u - q)/s as the dilated error check-delta at u - q
(integer subscripts); padding crops.

Index letters (the notation table lists them): f filter, c channel, i, j output
row and column, q, r kernel (window) offsets, u, v the other position of a
backward step (the input position of conv's input gradient, the pooled position
summed over in pooling's).

Max pooling routes the gradient to the argmax of each window (ties: the first
maximum in row-major order, as PyTorch); average pooling spreads it as
delta/(k_h k_w); flatten reshapes in C, H, W order.
"""
from __future__ import annotations

from functools import lru_cache

import sympy as sp

from .core import I, J, Gradient, Step
from .notation import d_batch, dim, indexed

# 0-based indices of the generic derivation: filter, channel, kernel offsets, the other position.
F_, C_, MI, NI, U, V = sp.symbols("f c q r u v", integer=True, nonnegative=True)
# Differentiation targets W[p,q,r,t], x[q,u,v]: dummies, renamed to the letters above before printing.
P_, Q_, R_, T_ = sp.symbols("p_ q_ r_ t_", cls=sp.Dummy, integer=True, nonnegative=True)
# Symbolic sizes.
S = sp.Symbol("s", integer=True, positive=True)                 # stride
KH, KW = sp.symbols("k_h k_w", integer=True, positive=True)     # kernel / window
CIN, FOUT = sp.symbols("C F", integer=True, positive=True)      # channels in / filters
HO, WO = sp.symbols("H_o W_o", integer=True, positive=True)     # output size

_W = sp.IndexedBase("W", real=True)
_b = sp.IndexedBase("b", real=True)
_x = sp.IndexedBase("x", real=True)      # the (padded) input of the layer
_d = sp.IndexedBase("d", real=True)      # delta of the layer (or the gradient from above)

INDEX_NOTE = "indices from 0; output rows i, columns j; kernel offsets q, r"


def _in_range(expr):
    """Drop SymPy's 'index inside its range' conditions (true for every valid index)."""
    return expr.replace(lambda e: isinstance(e, sp.Piecewise), lambda e: e.args[0][0])


def _flat_piecewise(expr):
    """A nested Piecewise((Piecewise((v, c1), (0, True)), c2), (0, True)) as (v, c1 & c2)."""
    conds = []
    while isinstance(expr, sp.Piecewise):
        (value, cond), rest = expr.args[0], expr.args[1:]
        assert all(r[0] == 0 for r in rest), expr
        conds.append(cond)
        expr = value
    return expr, sp.And(*conds)


# ---------------------------------------------------------------- generic math
@lru_cache(maxsize=None)
def generic_conv():
    """The generic conv layer and its gradients, by SymPy. Returns a dict of
    z (forward), dW[p,q,r,t], db[p], dx_scatter[q,u,v] (sum over output
    positions), dx[q,u,v] (sum over kernel offsets)."""
    z = _b[F_] + sp.Sum(_W[F_, C_, MI, NI] * _x[C_, S * I + MI, S * J + NI],
                        (C_, 0, CIN - 1), (MI, 0, KH - 1), (NI, 0, KW - 1))
    out_sum = ((F_, 0, FOUT - 1), (I, 0, HO - 1), (J, 0, WO - 1))
    dW = _in_range(sp.Sum(_d[F_, I, J] * sp.diff(z, _W[P_, Q_, R_, T_]).doit(), *out_sum).doit())
    db = _in_range(sp.Sum(_d[F_, I, J] * sp.diff(z, _b[P_]).doit(), *out_sum).doit())
    # dz[f,i,j]/dx[q,u,v]: SymPy keeps the conditions 0 <= u - s i <= k_h - 1 etc.
    dzdx = sp.diff(z, _x[Q_, U, V]).doit()
    value, cond = _flat_piecewise(sp.piecewise_fold(dzdx))
    cond = sp.And(*[c for c in sp.And.make_args(cond) if not c.has(CIN)])   # q <= C - 1 holds
    scatter = sp.Sum(_d[F_, I, J] * sp.Piecewise((value, cond), (0, True)), *out_sum)
    # Sum over the kernel offsets instead: q = u - s i, r = v - s j.
    move = {I: (U - MI) / S, J: (V - NI) / S}
    summand = (_d[F_, I, J] * value).subs(move)
    valid = sp.And(sp.Eq(sp.Mod(U - MI, S), 0), sp.Eq(sp.Mod(V - NI, S), 0),
                   *[sp.And(0 <= e, e <= top) for e, top in ((move[I], HO - 1), (move[J], WO - 1))])
    gather = sp.Sum(sp.Piecewise((summand, valid), (0, True)),
                    (F_, 0, FOUT - 1), (MI, 0, KH - 1), (NI, 0, KW - 1))
    return {"z": z, "dW": dW, "db": db, "dzdx": dzdx, "dx_scatter": scatter, "dx": gather}


@lru_cache(maxsize=None)
def generic_avgpool():
    """z[c,i,j] = (1/(k_h k_w)) sum_q sum_r x[c, s i + q, s j + r]; the gradient
    to the input, and the factor every input in a window receives."""
    z = sp.Sum(_x[C_, S * I + MI, S * J + NI], (MI, 0, KH - 1), (NI, 0, KW - 1)) / (KH * KW)
    dzdx = sp.diff(z, _x[C_, U, V]).doit()
    value, cond = _flat_piecewise(sp.piecewise_fold(dzdx))
    dx = sp.Sum(_d[C_, I, J] * sp.Piecewise((value, cond), (0, True)), (I, 0, HO - 1), (J, 0, WO - 1))
    # The factor of one input inside its window (u = s i, v = s j):
    factor = sp.simplify(value)
    return {"z": z, "dzdx": dzdx, "dx": dx, "factor": factor}


@lru_cache(maxsize=None)
def max_derivative(k: int = 2):
    """d max(x_1..x_k^2)/d x_1 by SymPy: Heaviside factors, 1 exactly at the argmax."""
    xs = sp.symbols("x_1:%d" % (k * k + 1), real=True)
    return xs, sp.diff(sp.Max(*xs), xs[0])


def avgpool_factor_code(dtype: str, size: str = "size") -> str:
    """The derived factor 1/(k_h k_w) as kernel source, for a size x size window."""
    k = sp.Symbol(size, integer=True, positive=True)
    factor = generic_avgpool()["factor"].xreplace({KH: k, KW: k})
    from ..numba_printer import numba_code   # a leaf module: derive imports nothing from codegen
    return numba_code(factor, dtype)


# ---------------------------------------------------------------- dilation
DILATED = r"\check{\delta}"
ARGMAX = (r"\hat{i}", r"\hat{j}")      # max pooling's argmax row and column (in the layer's input)      # the dilated error, defined in the document's operators paragraph


def dilate(expr, delta, dilated, s: int):
    """A rule on the gathered input gradient of a stride-s convolution: every
    delta[f, e1/s, e2/s] guarded by "s divides e1, s divides e2" becomes
    dilated[f, e1, e2] (the dilated error: delta[f, u/s, v/s] where s divides
    u and v, else 0), the divisibility guards are dropped (the dilation holds
    them) and the range guards 0 <= e/s <= t are multiplied by s. Subscripts
    stay integers."""
    def rule(pw):
        (value, cond), rest = pw.args[0], pw.args[1:]
        if any(r[0] != 0 for r in rest):       # pragma: no cover - the gather has one guarded value
            return pw
        scaled = {}

        def to_dilated(e):
            idx = [sp.expand(i * s) for i in e.indices[1:]]
            scaled.update({sp.Eq(sp.Mod(i, s), 0): True for i in idx})
            return dilated[(e.indices[0], *idx)]

        value = value.replace(lambda e: isinstance(e, sp.Indexed) and e.base == delta, to_dilated)
        kept = []
        for c in sp.And.make_args(cond):
            if isinstance(c, sp.Eq) and c in scaled:
                continue
            if isinstance(c, sp.core.relational.Relational) and not isinstance(c, sp.Eq):
                c = c.func(sp.expand(c.lhs * s), sp.expand(c.rhs * s))     # s > 0 keeps the direction
            kept.append(c)
        return sp.Piecewise((value, sp.And(*kept)), (0, True))
    return expr.replace(lambda e: isinstance(e, sp.Piecewise), rule)


# ---------------------------------------------------------------- notation
def _sym(text: str) -> sp.Symbol:
    return sp.Symbol(text)


def _mat(text: str, l: int) -> sp.MatrixSymbol:
    """A matrix-form quantity of layer l's output, named by its LaTeX, shaped like
    the dense layers' columns (n^{(l)}, 1) so the driver's Hadamard step accepts it."""
    return sp.MatrixSymbol(text, dim(l), 1)


def dl(q: str) -> sp.Symbol:
    return _sym(r"\frac{\partial \ell}{\partial %s}" % q)


def dL(q: str) -> sp.Symbol:
    return d_batch(q)


def _below(placed):
    return indexed("a", placed.position - 1)


def _padded(placed):
    l = placed.position
    return sp.IndexedBase(r"\tilde{a}^{(%d)}" % (l - 1), real=True) if any(placed.layer.pads) else _below(placed)


def _sizes(placed):
    c, h, w = placed.in_shape
    return c, h, w, placed.out_shape[1], placed.out_shape[2]


def _upstream_below(placed, ctx, upstream, steps):
    """The gradient arriving at this layer's output as an indexed symbol with free
    indices (c, i, j): delta^(l) when the loss reads this layer, else the adjoint
    abar^(l) = dl/da^(l), defined by a step (keeps the formulas short)."""
    l = placed.position
    if upstream is None:     # this layer's output is what the loss reads
        return indexed(r"\delta", l)
    bar = indexed(r"\bar{a}", l)
    steps.append(Step(bar[C_, I, J], upstream["element"],
                      r"name the gradient arriving from above, $\bar a = \partial \ell / \partial a$", "element", l))
    return bar


# ---------------------------------------------------------------- conv rule
def conv_forward(placed, ctx):
    l, k = placed.position, placed.trainable_index
    layer = placed.layer
    c, h, w, ho, wo = _sizes(placed)
    kh, kw = layer.kernel
    ph, pw = layer.pads
    padded = bool(ph or pw)
    g = generic_conv()
    names = {_W: indexed("W", k), _b: indexed("b", k), _x: _padded(placed),
             S: layer.stride, CIN: c, KH: kh, KW: kw}
    steps = []
    if padded:
        steps.append(Step(r"\tilde{a}^{(%d)}_{c,u,v}" % (l - 1),
                          r"a^{(%d)}_{c,u-%d,v-%d} \text{ if } %d \le u < %d,\ %d \le v < %d \text{, else } 0"
                          % (l - 1, ph, pw, ph, h + ph, pw, w + pw),
                          f"zero padding of {ph} above and below, {pw} left and right" if ph != pw
                          else f"zero padding of {ph} on every side", "forward", l))
    z = indexed("z", l)[F_, I, J]
    steps.append(Step(z, g["z"].xreplace(names),
                      f"definition (conv2d layer, a cross-correlation as in PyTorch; {INDEX_NOTE})", "forward", l))
    steps.append(Step(_sym("z^{(%d)}" % l),
                      _sym(r"W^{(%d)} \star %s^{(%d)} + b^{(%d)}" % (k, r"\tilde{a}" if padded else "a", l - 1, k)),
                      f"shape ({layer.filters}, {ho}, {wo}): f < {layer.filters}, i < {ho}, j < {wo}", "forward", l))
    act = layer.activation
    steps.append(Step(indexed("a", l)[F_, I, J], act(z), f"activation {act.describe()}", "forward", l))
    return steps


def conv_backward(placed, ctx, upstream):
    l, k = placed.position, placed.trainable_index
    layer = placed.layer
    c, h, w, ho, wo = _sizes(placed)
    kh, kw = layer.kernel
    (ph, pw), s = layer.pads, layer.stride
    padded = bool(ph or pw)
    g = generic_conv()
    delta = indexed(r"\delta", l)
    names = {_W: indexed("W", k), _b: indexed("b", k), _x: _padded(placed), _d: delta,
             S: s, CIN: c, FOUT: layer.filters, KH: kh, KW: kw, HO: ho, WO: wo}
    W_name, b_name = placed.params["W"], placed.params["b"]
    Wk, bk = "W^{(%d)}" % k, "b^{(%d)}" % k
    xa = (r"\tilde{a}" if padded else "a") + "^{(%d)}" % (l - 1)
    steps = []
    gW_el = Step(dl(Wk + "_{f,c,q,r}"), g["dW"].xreplace(names).xreplace({P_: F_, Q_: C_, R_: MI, T_: NI}),
                 "chain rule: W_{f,c,q,r} meets the input at (c, s i + q, s j + r) in every output "
                 "(i, j) of filter f; a correlation of the input with delta", "element", l)
    gb_el = Step(dl(bk + "_{f}"), g["db"].xreplace(names).xreplace({P_: F_}),
                 "chain rule: b_f is added to every output of filter f", "element", l)
    error = r"\delta^{(%d)}" % l if s == 1 else DILATED + "^{(%d)}" % l
    gW_mx = Step(dl(Wk), _sym(r"%s \star %s" % (xa, error)),
                 "matrix form: correlate each input channel with each delta map"
                 + ("" if s == 1 else f" dilated by the stride {s}"), "matrix", l)
    gb_mx = Step(dl(bk), _sym(r"\textstyle\sum_{i,j} \delta^{(%d)}_{:,i,j}" % l), "matrix form", "matrix", l)
    gW_b = Step(dL(Wk), _sym(r"\frac{1}{m} \sum_{e=1}^{m} \frac{\partial \ell_e}{\partial %s}" % Wk),
                "average over the batch of m examples", "batch", l)
    gb_b = Step(dL(bk), _sym(r"\frac{1}{m} \sum_{e=1}^{m} \frac{\partial \ell_e}{\partial %s}" % bk),
                "average over the batch", "batch", l)
    steps += [gW_el, gb_el, gW_mx, gb_mx, gW_b, gb_b]
    ctx.add_gradient(Gradient(W_name, placed.param_shapes[W_name], l, gW_el, gW_mx, gW_b))
    ctx.add_gradient(Gradient(b_name, placed.param_shapes[b_name], l, gb_el, gb_mx, gb_b))

    # The input gradient: scatter form (SymPy's), then summed over kernel offsets;
    # printed with the channel letter c (the dummy Q_ only kept it apart from z's own c).
    scatter = g["dx_scatter"].xreplace(names).xreplace({Q_: C_})
    steps.append(Step(dl(xa + "_{c,u,v}"), scatter,
                      "chain rule: $%s_{c,u,v}$ feeds $z_{f,i,j}$ through $W_{f,c,u-s i,v-s j}$ where that offset "
                      "lies inside the kernel" % xa, "element", l))
    gather = g["dx"].xreplace(names).xreplace({Q_: C_})
    why = ("substitute q = u - s i, r = v - s j: sum over kernel offsets; only positions where "
           "u - q, v - r are s times an output position count")
    if s == 1:
        why += (": the full convolution of delta (zero-padded by k - 1) with the kernel flipped "
                "in both axes")
    else:
        gather = dilate(gather, delta, indexed(DILATED, l), s)
        why += (f"; with stride {s} the dilated error $%s$ (defined above) is nonzero only there"
                % (DILATED + "^{(%d)}" % l))
    steps.append(Step(dl(xa + "_{c,u,v}"), gather, why, "element", l))
    # Rename to the indices of the layer below: (c, i, j).
    below = gather.xreplace({U: I + ph, V: J + pw})
    if padded:
        steps.append(Step(dl("a^{(%d)}_{c,i,j}" % (l - 1)), below,
                          f"padding crops: $a_{{c,i,j}}$ sits at (c, i + {ph}, j + {pw}) of the padded input",
                          "element", l))
    else:
        steps.append(Step(dl("a^{(%d)}_{c,i,j}" % (l - 1)), below, "rename u, v to i, j", "element", l))
    full = r"\operatorname{full}\left(%s\right) \ast \operatorname{rot180}(W^{(%d)})" % (error, k)
    crop = str(ph) if ph == pw else f"{ph},{pw}"
    matrix = _mat(r"\operatorname{crop}_{%s}\left(%s\right)" % (crop, full) if padded else full, l - 1)
    steps.append(Step(dl("a^{(%d)}" % (l - 1)), matrix, "matrix form (summed over the filters f)", "matrix", l))
    batch = _sym(r"\frac{1}{m}\,%s \text{ per example}" % matrix.name)
    return steps, {"element": below, "matrix": matrix, "batch": batch}


# ---------------------------------------------------------------- pooling
def _pool_window(placed, name: str):
    l, layer = placed.position, placed.layer
    return (r"\%s_{0 \le q, r < %d} a^{(%d)}_{c,\,%d i + q,\,%d j + r}"
            % (name, layer.size, l - 1, layer.stride, layer.stride))


def maxpool_forward(placed, ctx):
    l = placed.position
    return [Step(indexed("a", l)[C_, I, J], _sym(_pool_window(placed, "max")),
                 f"definition (max pooling {placed.layer.size}x{placed.layer.size}, stride {placed.layer.stride})",
                 "forward", l),
            Step(r"(%s_{c,i,j}, %s_{c,i,j})" % (ARGMAX[0] + "^{(%d)}" % l, ARGMAX[1] + "^{(%d)}" % l),
                 r"\operatorname{argmax}",
                 "the row and column in $a^{(%d)}$ of that maximum, kept for the backward pass " % (l - 1) +
                 "(ties: the first maximum in row-major order, as PyTorch)", "forward", l)]


def maxpool_backward(placed, ctx, upstream):
    l = placed.position
    steps = []
    up = _upstream_below(placed, ctx, upstream, steps)
    xs, dmax = max_derivative(2)
    # SymPy leaves the value at a tie open; symnet (like PyTorch) routes it to the first maximum.
    first_max = dmax.replace(lambda e: isinstance(e, sp.Heaviside), lambda e: sp.Heaviside(e.args[0], 1))
    # the document names a window's values omega_k (x is the network's input)
    ws = sp.symbols(r"\omega_1:%d" % (len(xs) + 1), real=True)
    first_max = first_max.xreplace(dict(zip(xs, ws)))
    steps += [Step(sp.Derivative(sp.Max(*ws), ws[0]), first_max,
                  r"for a 2x2 window with values $\omega_1, \dots, \omega_4$: 1 where $\omega_1$ is the maximum, "
                  "0 elsewhere; at a tie the first "
                  "maximum in row-major order takes the gradient (as PyTorch)", "element", l)]
    row, col = indexed(ARGMAX[0], l), indexed(ARGMAX[1], l)
    ho, wo = placed.out_shape[1], placed.out_shape[2]
    # summed over the pooled positions (u, v); (i, j) is the input position, as in the layer below
    routed = sp.Sum(up[C_, U, V] * sp.KroneckerDelta(I, row[C_, U, V])
                    * sp.KroneckerDelta(J, col[C_, U, V]), (U, 0, ho - 1), (V, 0, wo - 1))
    steps.append(Step(dl("a^{(%d)}_{c,i,j}" % (l - 1)), routed,
                      r"chain rule: the gradient of each window (u, v) goes to its argmax "
                      r"$(%s_{c,u,v}, %s_{c,u,v})$; overlapping windows add" % ARGMAX, "element", l))
    matrix = _mat(r"\operatorname{route}_{\operatorname{argmax}}\left(%s\right)" % _upstream_matrix(placed, upstream), l - 1)
    steps.append(Step(dl("a^{(%d)}" % (l - 1)), matrix, "matrix form", "matrix", l))
    return steps, {"element": routed, "matrix": matrix, "batch": _sym(r"\text{per example, as above}")}


def avgpool_forward(placed, ctx):
    l, layer = placed.position, placed.layer
    g = generic_avgpool()
    names = {_x: _below(placed), S: layer.stride, KH: layer.size, KW: layer.size}
    return [Step(indexed("a", l)[C_, I, J], g["z"].xreplace(names),
                 f"definition (average pooling {layer.size}x{layer.size}, stride {layer.stride})", "forward", l)]


def avgpool_backward(placed, ctx, upstream):
    l, layer = placed.position, placed.layer
    g = generic_avgpool()
    steps = []
    up = _upstream_below(placed, ctx, upstream, steps)
    ho, wo = placed.out_shape[1], placed.out_shape[2]
    names = {S: layer.stride, KH: layer.size, KW: layer.size, HO: ho, WO: wo}
    steps += [Step(sp.Derivative(indexed("a", l)[C_, I, J], _below(placed)[C_, U, V]),
                  g["dzdx"].xreplace(names).xreplace({_x: _below(placed)}),
                  "differentiate the definition: 1/(k k) inside the window, 0 outside", "element", l)]
    dx = g["dx"].xreplace(names)
    # summed over the pooled positions (u, v); (i, j) is the input position (one xreplace swaps them)
    summand = dx.function.xreplace({I: U, J: V, U: I, V: J}).xreplace({_d: up})
    spread = sp.Sum(summand, (U, 0, ho - 1), (V, 0, wo - 1))
    steps.append(Step(dl("a^{(%d)}_{c,i,j}" % (l - 1)), spread,
                      "chain rule: each window spreads its gradient evenly, delta/(k k); overlapping windows add",
                      "element", l))
    if layer.stride == layer.size:
        steps.append(Step(dl("a^{(%d)}_{c,i,j}" % (l - 1)), _one_window(summand, U, V, layer.size, placed.in_shape),
                          "windows do not overlap (stride = size): input (i, j) lies in exactly one window, "
                          "the one at $u = \\lfloor i/k \\rfloor$, $v = \\lfloor j/k \\rfloor$", "element", l))
    matrix = _mat(r"\operatorname{spread}_{%d}\left(%s\right) / %d" % (layer.size, _upstream_matrix(placed, upstream),
                                                                    layer.size * layer.size), l - 1)
    steps.append(Step(dl("a^{(%d)}" % (l - 1)), matrix, "matrix form", "matrix", l))
    return steps, {"element": spread, "matrix": matrix, "batch": _sym(r"\text{per example, as above}")}


def _one_window(summand, p, q, k: int, in_shape):
    """The summand at the one window that holds (i, j), u = floor(i/k), v = floor(j/k):
    checked to be the only p (and q) whose window condition holds, for every row (column)."""
    factors = [f for f in sp.Mul.make_args(summand) if isinstance(f, sp.Piecewise)]
    cond = sp.And(*[f.args[0][1] for f in factors])
    value = summand.replace(lambda e: isinstance(e, sp.Piecewise), lambda e: e.args[0][0])
    for n, (var, idx) in zip(in_shape[1:], ((p, I), (q, J))):
        for x in range(n):
            holds = [pv for pv in range(n // k + 1)
                     if cond.xreplace({var: pv, idx: x}).xreplace({p: 0, q: 0, I: 0, J: 0}) is sp.true]
            if holds != [x // k]:     # pragma: no cover - a SymPy change would show here
                raise AssertionError(f"avgpool: the windows of {x} are {holds}, not floor({x}/{k})")
    return value.xreplace({p: sp.floor(I / k), q: sp.floor(J / k)})


def _upstream_matrix(placed, upstream):
    if upstream is None:
        return r"\delta^{(%d)}" % placed.position
    mx = upstream["matrix"]
    if isinstance(mx, (sp.Symbol, sp.MatrixSymbol)):
        return str(mx.name)
    if isinstance(mx, str):
        return mx
    return sp.latex(mx)


# ---------------------------------------------------------------- flatten
def flatten_forward(placed, ctx):
    l = placed.position
    if len(placed.in_shape) != 3:
        return [Step(indexed("a", l)[I], _below(placed)[I], "flatten (already a vector)", "forward", l)]
    c, h, w = placed.in_shape
    flat = (C_ * h + I) * w + J + 1
    return [Step(indexed("a", l)[flat], _below(placed)[C_, I, J],
                 f"flatten in C, H, W order (torch.flatten(x, 1)); the vector is indexed from 1 "
                 f"like the dense layers, c < {c}, i < {h}, j < {w}", "forward", l)]


def flatten_backward(placed, ctx, upstream):
    l = placed.position
    up = upstream["element"] if upstream is not None else indexed(r"\delta", l)[I]
    if len(placed.in_shape) != 3:
        el = up
    else:
        c, h, w = placed.in_shape
        el = up.xreplace({I: (C_ * h + I) * w + J + 1})
    steps = [Step(dl("a^{(%d)}_{c,i,j}" % (l - 1)), el, "flatten is a reshape: each entry moves, its "
                  "gradient moves back", "element", l)]
    mx = _mat(r"\operatorname{reshape}_{%s}\left(%s\right)" % (r" \times ".join(map(str, placed.in_shape)),
                                                            _upstream_matrix(placed, upstream)), l - 1)
    steps.append(Step(dl("a^{(%d)}" % (l - 1)), mx, "matrix form", "matrix", l))
    return steps, {"element": el, "matrix": mx, "batch": _sym(r"\operatorname{reshape}\ \text{per example}")}


# ---------------------------------------------------------------- worked examples
def worked_example_1d(x=(1, 1, 1, 0, 0), theta=(1, 0, 1)) -> list[Step]:
    """The lecture's 1-D example: (theta * x)_i = sum_j theta_j x_{i+j}."""
    th, xx = sp.IndexedBase(r"\theta"), sp.IndexedBase("x")
    k, n = len(theta), len(x)
    definition = sp.Sum(th[J] * xx[I + J], (J, 0, k - 1))
    expanded = definition.doit()
    values = {**{th[q]: v for q, v in enumerate(theta)}, **{xx[q]: v for q, v in enumerate(x)}}
    result = [expanded.xreplace({I: q}).xreplace(values) for q in range(n - k + 1)]
    lhs = sp.Symbol(r"(\theta \ast x)_{i}")
    steps = [Step(lhs, definition, "definition (1-D, indices from 0)", "example"),
             Step(lhs, expanded, "expand the sum", "example"),
             Step(sp.Symbol(r"x, \theta"), sp.Symbol(r"%s,\ %s" % (list(x), list(theta))), "the example's data",
                  "example")]
    for q, r in enumerate(result):
        steps.append(Step(sp.Symbol(r"(\theta \ast x)_{%d}" % q), r,
                          " + ".join(f"{theta[j]}*{x[q + j]}" for j in range(k)), "example"))
    steps.append(Step(sp.Symbol(r"\theta \ast x"), sp.Matrix([result]).T, "the result", "example"))
    return steps


def worked_example_2d(image=((1, 1, 1, 0, 0), (0, 1, 1, 1, 0), (0, 0, 1, 1, 1), (0, 0, 1, 1, 0), (0, 1, 1, 0, 0)),
                      kernel=((1, 0, 1), (0, 1, 0), (1, 0, 1))) -> list[Step]:
    """The lecture's 5x5 binary image with a 3x3 filter: a 3x3 feature map."""
    Wb, xb = sp.IndexedBase("W"), sp.IndexedBase("x")
    kh, kw = len(kernel), len(kernel[0])
    definition = sp.Sum(Wb[MI, NI] * xb[I + MI, J + NI], (MI, 0, kh - 1), (NI, 0, kw - 1))
    values = {**{Wb[a, b]: kernel[a][b] for a in range(kh) for b in range(kw)},
              **{xb[a, b]: image[a][b] for a in range(len(image)) for b in range(len(image[0]))}}
    expanded = definition.doit()
    ho, wo = len(image) - kh + 1, len(image[0]) - kw + 1
    out = sp.Matrix(ho, wo, lambda i, j: expanded.xreplace({I: i, J: j}).xreplace(values))
    lhs = sp.Symbol(r"(W \star x)_{i,j}")
    return [Step(lhs, definition, "definition (2-D cross-correlation, indices from 0)", "example"),
            Step(sp.Symbol(r"(W \star x)_{0,0}"), expanded.xreplace({I: 0, J: 0}), "top-left position", "example"),
            Step(sp.Symbol(r"(W \star x)_{0,0}"), out[0, 0], "the example's image and filter", "example"),
            Step(sp.Symbol(r"W \star x"), out, "every position", "example")]


# ---------------------------------------------------------------- registration
def _register():
    from . import LayerRule, register_rule
    register_rule("conv2d", LayerRule(conv_forward, conv_backward, True))
    register_rule("maxpool2d", LayerRule(maxpool_forward, maxpool_backward, False))
    register_rule("avgpool2d", LayerRule(avgpool_forward, avgpool_backward, False))
    register_rule("flatten", LayerRule(flatten_forward, flatten_backward, False))


_register()

__all__ = ["generic_conv", "generic_avgpool", "max_derivative", "avgpool_factor_code",
           "worked_example_1d", "worked_example_2d"]
