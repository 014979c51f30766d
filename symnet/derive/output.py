"""delta^(L): the loss and its gradient with respect to the output pre-activation,
simplified by SymPy (sigmoid + BCE gives a - y, softmax + CE gives p - y)."""
from __future__ import annotations

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
                      r"targets are one-hot: $\sum_k y_k = 1$", "element", layer))
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
