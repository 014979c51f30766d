"""Forward map and backward steps of a dense layer, derived in index form.

The generic layer z_i = sum_j W_ij a_j + b_i is differentiated once by SymPy
(with symbolic widths); each layer instantiates the result by renaming, so the
cost of a derivation grows with depth, not width.
"""
from __future__ import annotations

from functools import lru_cache

import sympy as sp

from .core import I, J, K, M, Gradient, Step
from .notation import d_batch, batch_matrix, column, dim, elementwise, indexed, matrix

# Generic quantities of "this" layer (l) and the one below (l-1).
_W = sp.IndexedBase("W", real=True)
_b = sp.IndexedBase("b", real=True)
_a = sp.IndexedBase("a", real=True)
_d = sp.IndexedBase("d", real=True)
_n_in = sp.Symbol("n_in", integer=True, positive=True)
_n_out = sp.Symbol("n_out", integer=True, positive=True)
_P, _Q = sp.symbols("p q", integer=True, nonnegative=True)


def _in_range(expr):
    return expr.replace(lambda e: isinstance(e, sp.Piecewise), lambda e: e.args[0][0])


@lru_cache(maxsize=None)
def generic_dense():
    """dz_i/dW_pq, dz_i/db_p, and the input gradient sum_i d_i dz_i/da_q, by SymPy."""
    z_i = sp.Sum(_W[I, J] * _a[J], (J, 1, _n_in)) + _b[I]
    dW = sp.Sum(_d[I] * _in_range(sp.diff(z_i, _W[_P, _Q]).doit()), (I, 1, _n_out)).doit()
    db = sp.Sum(_d[I] * _in_range(sp.diff(z_i, _b[_P]).doit()), (I, 1, _n_out)).doit()
    da = sp.Sum(_d[K] * _in_range(sp.diff(z_i.subs(I, K), _a[_Q]).doit()), (K, 1, _n_out))
    return z_i, _in_range(dW), _in_range(db), _in_range(da.doit())


def forward_steps(placed, l: int, W: str, b: str) -> list[Step]:
    z_i, *_ = generic_dense()
    k = placed.trainable_index
    names = {_W: indexed("W", k), _b: indexed("b", k), _a: indexed("a", l - 1),
             _n_in: dim(l - 1)}
    z = indexed("z", l)[I]
    steps = [Step(z, z_i.xreplace(names), "definition (dense layer, element form)", "forward", l)]
    Wm, bm = matrix("W", k, dim(l), dim(l - 1)), column("b", k)
    steps.append(Step(column("z", l), Wm * column("a", l - 1) + bm, "definition (matrix form)", "forward", l))
    return steps


def backward(placed, l: int, ctx) -> tuple[list[Step], dict]:
    """Steps for the parameter gradients and the input gradient of layer l,
    given that delta^(l) is known. Returns the steps and the input gradient
    (element expression in index i, matrix expression) for the layer below."""
    _, dW, db, da = generic_dense()
    k = placed.trainable_index
    delta = indexed(r"\delta", l)
    names = {_d: delta, _a: indexed("a", l - 1), _W: indexed("W", k), _n_out: dim(l)}
    W_name, b_name = placed.params["W"], placed.params["b"]
    Wm = matrix("W", k, dim(l), dim(l - 1))
    dcol, acol = column(r"\delta", l), column("a", l - 1)
    m = M
    dL = d_batch
    dl = lambda q: sp.Symbol(r"\frac{\partial \ell}{\partial %s}" % q)  # noqa: E731
    Wk, bk = "W^{(%d)}" % k, "b^{(%d)}" % k

    steps = []
    gW_el = Step(dl(Wk + "_{ij}"), dW.xreplace(names).subs({_P: I, _Q: J}), "chain rule: z_i depends on W_ij only", "element", l)
    gb_el = Step(dl(bk + "_{i}"), db.xreplace(names).subs(_P, I), "chain rule", "element", l)
    gW_mx = Step(dl(Wk), dcol * acol.T, r"matrix form: outer product $\delta a^T$", "matrix", l)
    gb_mx = Step(dl(bk), dcol, "matrix form", "matrix", l)
    Dm, Am = batch_matrix(r"\Delta", l, m), batch_matrix("A", l - 1, m)
    gW_b = Step(dL(Wk), Dm.T * Am / m, r"average over the batch of m examples (rows of $\Delta$, $A$)", "batch", l)
    ones = sp.MatrixSymbol(r"\mathbf{1}", m, 1)
    gb_b = Step(dL(bk), Dm.T * ones / m, "average over the batch", "batch", l)
    steps += [gW_el, gb_el, gW_mx, gb_mx, gW_b, gb_b]
    ctx.add_gradient(Gradient(W_name, placed.param_shapes[W_name], l, gW_el, gW_mx, gW_b))
    ctx.add_gradient(Gradient(b_name, placed.param_shapes[b_name], l, gb_el, gb_mx, gb_b))

    # The gradient passed to layer l-1: sum_h delta_h W_hi (then g' there).
    input_element = da.xreplace(names).subs(_Q, I)
    input_matrix = Wm.T * dcol
    steps.append(Step(dl("a^{(%d)}_{i}" % (l - 1)), input_element, "chain rule: $a_i$ feeds every $z_h$", "element", l))
    steps.append(Step(dl("a^{(%d)}" % (l - 1)), input_matrix, "matrix form", "matrix", l))
    return steps, {"element": input_element, "matrix": input_matrix, "batch": Dm * Wm / m}


def delta_steps(l: int, act_name: str, am, upstream: dict, index=None) -> list[Step]:
    """delta^(l) = g'(z^(l)) (.) upstream: the lectures' recursion, after the
    activation's derivative (in z, and through a = g(z) where SymPy can write it
    so). `index`: the element's indices, (i,) for a vector, (c, i, j) for a feature
    map. An identity layer has no g' factor."""
    from .output import lecture_form
    index = index if index is not None else (I,)
    z_i = indexed("z", l)[index]
    d_i = indexed(r"\delta", l)[index]
    x = sp.Symbol("x", real=True)
    if am.g == x:
        return [Step(d_i, upstream["element"], r"no activation ($a = z$): the error is the gradient arriving "
                     "from above", "element", l),
                Step(column(r"\delta", l), upstream["matrix"], "matrix form", "matrix", l)]
    zs, a_l = sp.Symbol("z", real=True), indexed("a", l)[index]
    steps = [Step(sp.Function("%s'" % act_name)(zs), am.dg.subs(x, zs),
                  "derivative of $%s$ (SymPy differentiates its formula)" % act_name, "element", l)]
    if am.dg_in_a is not None:
        steps.append(Step(sp.Function("%s'" % act_name)(z_i), lecture_form(am.dg_in_a).subs(sp.Symbol("a", real=True), a_l),
                          r"the same, written through $a = %s(z)$" % act_name, "element", l))
    gprime = sp.Function(r"%s'" % act_name)(z_i)
    steps.append(Step(d_i, sp.Mul(gprime, upstream["element"], evaluate=False), "chain rule through $a = g(z)$",
                      "element", l))
    steps.append(Step(column(r"\delta", l), sp.HadamardProduct(elementwise(act_name + "'", l), upstream["matrix"]),
                      "matrix form (element-wise product)", "matrix", l))
    return steps
