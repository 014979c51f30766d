"""delta^(L): the loss and its gradient with respect to the output pre-activation,
simplified by SymPy (sigmoid + BCE gives a - y, softmax + CE gives p - y)."""
from __future__ import annotations

from functools import lru_cache

import sympy as sp

from ..budget import optional
from ..functions import sigmoid, softplus
from ..losses import YHAT, Y as LOSS_Y
from .core import A, I, J, K, N_OUT, P, Y, Z, OutputMath, Step
from .notation import indexed


def _simplify(expr: sp.Expr) -> sp.Expr:
    # Custom losses can simplify for minutes and gain little: bounded (symnet.budget).
    return optional(sp.simplify, expr, fallback=expr, max_ops=80)


def _stable_loss(expr: sp.Expr) -> sp.Expr:
    """Identities log(sigma(u)) = -softplus(-u), log(1 - sigma(u)) = -softplus(u):
    the logits form of binary cross entropy, finite for any u."""
    w = sp.Wild("w")
    expr = expr.replace(sp.log(1 - sigmoid(w)), lambda w: -softplus(w))
    return expr.replace(sp.log(sigmoid(w)), lambda w: -softplus(-w))


def in_terms_of_a(expr: sp.Expr, g: sp.Expr) -> sp.Expr | None:
    """Write expr(z) through a = g(z) where g is a single function of z (sigma, tanh)."""
    if g == Z:
        return expr.subs(Z, A)
    if isinstance(g, sp.Function) and g.args == (Z,):
        rewritten = optional(sp.factor, expr.subs(g, A), fallback=None)
        return rewritten if rewritten is not None and not rewritten.has(Z) else None
    return None


def lecture_form(expr: sp.Expr) -> sp.Expr:
    """The shorter of the factored and the expanded form (a(1 - a) for sigma',
    1 - a^2 for tanh'); the factored one at a tie."""
    factored, expanded = sp.factor(expr), sp.expand(expr)
    return expanded if sp.count_ops(expanded) + 1 < sp.count_ops(factored) else factored


def elementwise_output(loss, act_math, layer: int, n_out: int | None = None) -> tuple[OutputMath, list[Step]]:
    g = act_math.g.subs(sp.Symbol("x", real=True), Z)
    per_element = loss.expr.subs({YHAT: g, LOSS_Y: Y})
    delta = _simplify(sp.diff(per_element, Z)) / N_OUT
    delta_in_a = in_terms_of_a(delta, g)
    zL, aL, dl = (indexed(s, layer)[I] for s in ("z", "a", r"\delta"))
    yv = sp.IndexedBase("y", real=True)[I]
    ell = sp.Symbol(r"\ell", real=True)
    loss_in_a = loss.expr.subs({YHAT: aL, LOSS_Y: yv})
    identity = g == Z
    dl_da = lecture_form(sp.diff(loss_in_a, aL)) / N_OUT
    final = (delta_in_a if delta_in_a is not None else delta).subs({A: aL, Z: zL, Y: yv})
    steps = [
        Step(ell, sp.Sum(loss_in_a, (I, 1, N_OUT)) / N_OUT, f"definition of the {loss.title}, mean over the n outputs", "loss"),
        Step(dl, sp.Derivative(ell, zL), "definition of the output error", "element", layer),
    ]
    if identity:
        steps.append(Step(dl, sp.Derivative(ell, aL), r"no activation: $a = z$", "element", layer))
        steps.append(Step(dl, dl_da, "differentiate the loss", "element", layer))
    else:
        steps.append(Step(dl, sp.Derivative(ell, aL) * sp.Derivative(aL, zL), "chain rule through $a = g(z)$",
                          "element", layer))
        steps.append(Step(sp.Derivative(ell, aL), dl_da, "differentiate the loss", "element", layer))
        dg = act_math.dg.subs(sp.Symbol("x", real=True), zL)
        if act_math.dg_in_a is not None:
            dg_a = lecture_form(act_math.dg_in_a).subs(A, aL)
            steps.append(Step(sp.Derivative(aL, zL), dg_a, r"the activation's derivative, written through $a = g(z)$",
                              "element", layer))
        else:
            dg_a = dg
            steps.append(Step(sp.Derivative(aL, zL), dg, "the activation's derivative", "element", layer))
        steps.append(Step(dl, sp.Mul(dl_da, dg_a, evaluate=False), "substitute both", "element", layer))
    if not identity or sp.simplify(final - dl_da) != 0:
        steps.append(Step(dl, final, "simplify" + ("" if identity else ": common factors cancel"), "element", layer))
    if n_out == 1:
        steps.append(Step(dl, final.subs(N_OUT, 1), "this network has a single output unit: $n = 1$",
                          "element", layer))
    out = OutputMath("elementwise", _stable_loss(per_element), delta, delta_in_a, act_math)
    return out, steps


def _in_range(expr):
    """Indices range over the layer, so SymPy's range guards are true."""
    return expr.replace(lambda e: isinstance(e, sp.Piecewise), lambda e: e.args[0][0])


def softmax_output(loss, layer: int) -> tuple[OutputMath, list[Step]]:
    """Cross entropy of softmax(z), derived in index form."""
    n = N_OUT
    z, y, p = indexed("z", layer), sp.IndexedBase("y", real=True), indexed("p", layer)
    ell = sp.Symbol(r"\ell", real=True)
    denominator = sp.Sum(sp.exp(z[J]), (J, 1, n))
    softmax_k = sp.exp(z[K]) / denominator
    steps = [Step(p[K], softmax_k, "definition of softmax", "loss", layer),
             Step(ell, -sp.Sum(y[K] * sp.log(p[K]), (K, 1, n)), "definition of cross entropy", "loss")]
    log_p = z[K] - sp.log(denominator)
    steps.append(Step(sp.log(p[K]), log_p, "log of a quotient", "loss", layer))
    if loss.name == "cross_entropy":
        # Through the softmax Jacobian, as the explicit-softmax lecture does.
        jac = _in_range(sp.diff(softmax_k, z[I]).doit())
        s = sp.Dummy("S", positive=True)
        jac = jac.subs(denominator, s).replace(
            lambda e: e.func == sp.exp and isinstance(e.args[0], sp.Indexed),
            lambda e: p[e.args[0].indices[0]] * s)
        jac = sp.factor(sp.expand(jac))
        steps.append(Step(sp.Derivative(p[K], z[I]), jac, "derivative of softmax (quotient rule)", "element", layer))
        dl_dp = sp.diff(-y[K] * sp.log(p[K]), p[K])
        chain = sp.Sum(dl_dp * jac, (K, 1, n))
        steps.append(Step(sp.Derivative(ell, z[I]), chain, "chain rule through the softmax", "element", layer))
        raw = sp.expand(chain.doit())
    else:
        expanded = -sp.Sum(y[K] * log_p, (K, 1, n))
        steps.append(Step(ell, expanded, "substitute", "loss"))
        raw = _in_range(sp.diff(expanded, z[I]).doit())
        steps.append(Step(sp.Derivative(ell, z[I]), raw, "differentiate the sum", "element", layer))
        raw = raw.subs(sp.exp(z[I]) / denominator, p[I])
        raw = raw.replace(lambda e: e.func == sp.exp and e.args == (z[I],), lambda e: p[I] * denominator)
    raw = sp.expand(_in_range(raw).doit())
    steps.append(Step(indexed(r"\delta", layer)[I], raw, "collect terms", "element", layer))
    delta = sp.simplify(sp.simplify(raw).replace(
        lambda e: isinstance(e, sp.Sum) and e.function == y[e.variables[0]], lambda e: sp.Integer(1)))
    steps.append(Step(indexed(r"\delta", layer)[I], delta,
                      r"targets are one-hot: $\sum_h y_h = 1$", "element", layer))
    kernel_delta = delta.subs({p[I]: P, y[I]: Y})
    return OutputMath("softmax", None, kernel_delta, kernel_delta, None), steps


# Symbols of the softmax cross-entropy kernel's running sums (code generation's interface).
SOFTMAX_S, SOFTMAX_YZ = sp.symbols("s yz", real=True)


def softmax_kernel_loss() -> sp.Expr:
    """One example's softmax cross entropy in the two sums a stable kernel keeps,
    s = sum_k exp(u_k) and yz = sum_k y_k u_k with u_k = z_k - max(z): from
    -sum_k y_k log p_k, p_k = exp(u_k)/s, and sum_k y_k = 1 (one-hot targets)."""
    u, y = sp.symbols("u y", real=True)
    term = sp.expand(sp.expand_log(-y * sp.log(sp.exp(u) / SOFTMAX_S), force=True))   # -y u + y log s
    return term.subs(u * y, SOFTMAX_YZ).subs(y, 1)   # summed over k: sum y_k u_k = yz, sum y_k = 1


# ------------------------------------------------------- multi-class hinge (SVM)
# Symbols of the multi-class hinge kernel (code generation's and the evaluator's interface):
# z, y of one class, yz = sum_k y_k z_k (the true class's score, targets one-hot) and
# c = sum_j (1 - y_j) 1[margin_j > 0] (how many classes violate the margin).
HINGE_YZ, HINGE_C = sp.symbols("yz c", real=True)


def _hinge_parts():
    """The loss in index form and SymPy's gradient of it, the indicator kept as a placeholder
    so the sums split (SymPy cannot split a Sum of a Piecewise over KroneckerDelta)."""
    n = N_OUT
    z, y = sp.IndexedBase("z", real=True), sp.IndexedBase("y", real=True)
    true_score = sp.Sum(y[K] * z[K], (K, 1, n))
    margin = 1 + z[J] - true_score
    hinge = sp.Piecewise((margin, margin > 0), (0, True))   # max(0, u); derivative 0 at u = 0, as ReLU
    summand = (1 - y[J]) * hinge
    ind = sp.IndexedBase(r"\mathbb{1}", real=True)   # 1_j: class j violates the margin
    d = sp.diff(summand, z[I])
    d = d.replace(lambda e: isinstance(e, sp.Piecewise) and e.args[0].cond.has(z), lambda e: e.args[0].expr * ind[J])
    d = _in_range(d.doit())
    total = _in_range(sp.Sum(sp.expand(d), (J, 1, n)).doit())
    own, sums = [], []
    for term in sp.Add.make_args(sp.expand(total)):
        (sums if isinstance(term, sp.Sum) else own).append(term)
    if not sums or any(s.limits != sums[0].limits for s in sums):   # pragma: no cover - SymPy changed
        raise AssertionError("multi-class hinge: unexpected form of the derivative")
    outside, inside = sp.factor(sp.Add(*[s.function for s in sums])).as_independent(J, as_Add=False)
    if sp.expand(inside / ind[J]).subs(y[J], 0).is_negative:   # count violating classes with a plus sign
        outside, inside = -outside, -inside
    inside = sp.expand(inside / ind[J]) * ind[J]
    count = sp.Sum(inside, (J, 1, n))
    own = sp.expand(sp.Add(*own) / ind[I]) * ind[I]
    delta = (own + outside * count) / n
    indicator = lambda e: sp.Piecewise((1, (margin > 0).subs(J, e.indices[0])), (0, True))   # noqa: E731
    return dict(z=z, y=y, margin=margin, summand=summand, d_summand=d, ind=ind, indicator=indicator,
                true_score=true_score, count=count, delta=delta)


@lru_cache(maxsize=None)
def multiclass_hinge_kernel():
    """(loss per class, violation count term, delta) in Z, Y, HINGE_YZ, HINGE_C and N_OUT:
    one example's loss is the sum over classes of the first; c sums the second over classes;
    delta_i is the third (1/n included), all from the derivation above."""
    parts = _hinge_parts()
    z, y, ind = parts["z"], parts["y"], parts["ind"]
    plain = {parts["true_score"]: HINGE_YZ}
    loss = (parts["summand"] / N_OUT).xreplace(plain).subs({z[J]: Z, y[J]: Y})
    is_ind = lambda e: isinstance(e, sp.Indexed) and e.base == ind   # noqa: E731
    count = parts["count"].function.replace(is_ind, parts["indicator"]).xreplace(plain).subs({z[J]: Z, y[J]: Y})
    delta = parts["delta"].xreplace({parts["count"]: HINGE_C}).replace(is_ind, parts["indicator"])
    delta = delta.xreplace(plain).subs({z[I]: Z, y[I]: Y})
    for expr, allowed in ((loss, {Z, Y, HINGE_YZ, N_OUT}), (count, {Z, Y, HINGE_YZ}),
                          (delta, {Z, Y, HINGE_YZ, HINGE_C, N_OUT})):
        if expr.free_symbols - allowed:   # pragma: no cover - SymPy changed
            raise AssertionError(f"multi-class hinge: unexpected symbols in {expr}")
    return loss, count, delta


def multiclass_hinge_output(loss, layer: int) -> tuple[OutputMath, list[Step]]:
    """Multi-class hinge (SVM) loss on scores z, one-hot y, divided by the n classes as
    torch.nn.MultiMarginLoss does (the lecture's sum is n times this)."""
    parts = _hinge_parts()
    n, y = N_OUT, parts["y"]
    zl, dl = indexed("z", layer), indexed(r"\delta", layer)
    at = lambda e: e.subs(parts["z"], zl)   # noqa: E731  (the layer's z^(L))
    ell = sp.Symbol(r"\ell", real=True)
    written = sp.Sum((1 - y[J]) * sp.Max(0, at(parts["margin"])), (J, 1, n)) / n
    steps = [
        Step(ell, written, "definition of the multi-class hinge (SVM) loss with margin 1, divided by the $n$ classes "
             r"as in PyTorch's MultiMarginLoss (the lecture's sum is $n$ times it); one-hot $y$: the true "
             r"class's score is $\sum_h y_h z_h$ and $1 - y_j$ drops the term $j = y$", "loss"),
        Step(sp.Max(0, Z), sp.Piecewise((Z, Z > 0), (0, True)),
             "its derivative is taken as 0 at the kink $z = 0$, as for ReLU and in PyTorch", "loss"),
        Step(sp.Derivative(ell, zl[I]), sp.Sum(at(parts["d_summand"]), (J, 1, n)) / n,
             r"differentiate each term; $\partial z_j / \partial z_i = \mathbb{1}[i = j]$", "element", layer),
        Step(parts["ind"][J], at(parts["indicator"](parts["ind"][J])), "class $j$ violates the margin",
             "element", layer),
        Step(dl[I], at(parts["delta"]), "sum over $j$; one-hot $y$", "element", layer),
    ]
    loss_value, count, delta = multiclass_hinge_kernel()
    return OutputMath("multiclass_hinge", loss_value, delta, delta, None), steps
