"""Batch normalisation, derived by SymPy from its forward definition.

Per feature (1-D input) or channel (C, H, W input) c, over the m values
x_1..x_m of that channel in the batch (m = batch size, or batch * H * W):

    mu    = (1/m) sum_j x_j
    var   = (1/m) sum_j (x_j - mu)^2              (biased, as PyTorch normalises)
    xhat_j = (x_j - mu) / sqrt(var + eps)
    z_j   = gamma xhat_j + beta,   a_j = g(z_j)

Batch normalisation couples the examples of a batch, so the backward pass
differentiates the summed loss calL = sum_e ell_e = m J, whose gradient at z_j
is delta_j (the per-example error of the example value j belongs to). The
multivariate chain rule runs through the computational graph x -> mu -> var ->
xhat -> z; every local derivative is `sp.diff` of the definitions above:

    dcalL/dxhat_j = sum_k delta_k dz_k/dxhat_j
    dcalL/dgamma  = sum_k delta_k dz_k/dgamma,      dcalL/dbeta = sum_k delta_k dz_k/dbeta
    dcalL/dvar    = sum_k dcalL/dxhat_k dxhat_k/dvar
    dcalL/dmu     = sum_k dcalL/dxhat_k dxhat_k/dmu + dcalL/dvar dvar/dmu   (dvar/dmu = 0, since sum_j x_j = m mu)
    dcalL/dx_i    = dcalL/dxhat_i dxhat_i/dx_i + dcalL/dvar dvar/dx_i + dcalL/dmu dmu/dx_i

Substituting x_k - mu = xhat_k sqrt(var + eps) and factoring (SymPy) gives the
compact form gamma/(m sqrt(var + eps)) (m delta_i - sum_j delta_j - xhat_i sum_j delta_j xhat_j),
in which the two sums are dcalL/dbeta and dcalL/dgamma.

`kernel_math()` exports the same pieces in plain scalar symbols for the
kernel generator.
"""
from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import sympy as sp
from sympy.simplify.simplify import factor_sum

from .conv import _in_range
from .core import I, J, K, M, Gradient, Step
from .notation import d_batch, dim, indexed

# ---------------------------------------------------------------- generic symbols
_x = sp.IndexedBase("x", real=True)           # the channel's m input values
_xh = sp.IndexedBase("xhat", real=True)       # their normalised values
_d = sp.IndexedBase("delta", real=True)       # dcalL/dz_j
MU = sp.Symbol("mu", real=True)
VAR = sp.Symbol("var", nonnegative=True)      # the biased batch variance sigma^2
EPS = sp.Symbol("eps", positive=True)
GAMMA = sp.Symbol("gamma", real=True)
BETA = sp.Symbol("beta", real=True)
MB = sp.Symbol("m", integer=True, positive=True)   # values per channel (batch, or batch*H*W)


def _pull(expr):
    """Expand, split sums over their terms, move factors that do not depend on
    the summation index out of each sum, and evaluate sums of constants."""
    def split(s):
        return sp.Add(*[factor_sum(sp.Sum(t, *s.limits)) for t in sp.Add.make_args(sp.expand(s.function))])
    expr = sp.expand(expr).replace(lambda e: isinstance(e, sp.Sum), split)
    return sp.expand(expr.replace(lambda e: isinstance(e, sp.Sum) and not e.function.has(sp.Indexed),
                                  lambda e: e.doit()))


def _through_xhat(expr, std):
    """Write x_k through xhat_k: x_k = mu + xhat_k sqrt(var + eps) (the definition of xhat, solved)."""
    return expr.replace(lambda e: isinstance(e, sp.Indexed) and e.base == _x,
                        lambda e: MU + _xh[e.indices] * std)


@lru_cache(maxsize=None)
def generic_batchnorm() -> dict:
    """The forward definitions of one channel and every backward piece, by SymPy.

    Keys: forward "mu", "var", "std", "xhat" (of x_i, mu, var), "z" (of xhat_i),
    "var_unbiased" (of var, m); backward "dxhat", "dgamma", "dbeta", "dvar_raw",
    "dvar", "dvar_dmu_raw", "dvar_dmu", "dmu_raw", "dmu", "local" (the three local
    derivatives of x_i), "dx_raw", "dx_expanded", "dx" (the compact form, in the
    sums "dbeta" and "dgamma"); "dx_eval" (evaluation: mu and var are the running
    statistics, constants, so x_i reaches z_i through xhat_i alone).
    """
    sum_x = sp.Sum(_x[J], (J, 1, MB))
    mu = sum_x / MB
    sum_sq = sp.Sum((_x[J] - MU) ** 2, (J, 1, MB))
    var = sum_sq / MB
    std = sp.sqrt(VAR + EPS)
    xhat = (_x[I] - MU) / std
    z = GAMMA * _xh[I] + BETA
    # Solving the definitions for their sums: sum_j x_j = m mu, sum_j (x_j - mu)^2 = m var.
    s = sp.Dummy("s")
    sum_x_value, = sp.solve(sp.Eq(MU, mu.subs(sum_x, s)), s)
    sum_sq_value, = sp.solve(sp.Eq(VAR, var.subs(sum_sq, s)), s)
    # The unbiased variance divides the same sum by m - 1 (PyTorch's running_var).
    var_unbiased = sum_sq_value / (MB - 1)

    def over_k(e):
        return e.subs(I, K)

    # z_k depends on xhat_k, gamma and beta.
    dxhat = _in_range(sp.Sum(_d[K] * sp.diff(over_k(z), _xh[I]), (K, 1, MB)).doit())
    dgamma = sp.Sum(_d[K] * sp.diff(over_k(z), GAMMA), (K, 1, MB))
    dbeta = sp.Sum(_d[K] * sp.diff(over_k(z), BETA), (K, 1, MB))
    # var feeds every xhat_k.
    dvar_raw = sp.Sum(over_k(dxhat) * sp.diff(over_k(xhat), VAR), (K, 1, MB))
    dvar = sp.factor(_pull(_through_xhat(dvar_raw, std)))
    # mu feeds every xhat_k and var; dvar/dmu vanishes because sum_j x_j = m mu.
    dvar_dmu_raw = sp.diff(var, MU)
    dvar_dmu = sp.simplify(_pull(dvar_dmu_raw.doit()).subs(sum_x, sum_x_value))
    dmu_via_xhat = _pull(sp.Sum(over_k(dxhat) * sp.diff(over_k(xhat), MU), (K, 1, MB)).doit())
    dmu_raw = dmu_via_xhat + dvar_raw * dvar_dmu_raw
    dmu = dmu_via_xhat + dvar_raw * dvar_dmu
    # x_i feeds xhat_i, var and mu.
    local = {"xhat": sp.diff(xhat, _x[I]),
             "var": _in_range(sp.diff(var, _x[I]).doit()),
             "mu": _in_range(sp.diff(mu, _x[I]).doit())}
    dx_raw = dxhat * local["xhat"] + dvar_raw * local["var"] + dmu * local["mu"]
    dx_expanded = _pull(_through_xhat(dx_raw, std))
    sums = {dbeta: sp.Dummy("sum_delta"), dgamma: sp.Dummy("sum_delta_xhat")}
    collected = dx_expanded.xreplace(sums)
    if collected.has(sp.Sum):     # pragma: no cover - a SymPy change would show here
        raise AssertionError(f"batchnorm: sums left after collecting: {collected}")
    dx = sp.factor(collected).xreplace({v: k for k, v in sums.items()})
    dx_eval = _d[I] * sp.diff(z.xreplace({_xh[I]: xhat}), _x[I])
    return {"mu": mu, "var": var, "std": std, "xhat": xhat, "z": z, "sum_x": sum_x, "sum_sq": sum_sq,
            "var_unbiased": var_unbiased, "dxhat": dxhat, "dgamma": dgamma, "dbeta": dbeta,
            "dvar_raw": dvar_raw, "dvar": dvar, "dvar_dmu_raw": dvar_dmu_raw, "dvar_dmu": dvar_dmu,
            "dmu_raw": dmu_raw, "dmu": dmu, "local": local, "dx_raw": dx_raw,
            "dx_expanded": dx_expanded, "dx": dx, "dx_eval": dx_eval}


# ---------------------------------------------------------------- kernel math
class KernelExpr(NamedTuple):
    """One scalar formula for a kernel: `expr` in the symbols `args`, in order."""
    args: tuple
    expr: sp.Expr


@lru_cache(maxsize=None)
def kernel_math() -> dict[str, KernelExpr]:
    """The batch-norm formulas a kernel evaluates inside its loops, each a
    SymPy expression in plain real scalar symbols (names as below), derived or
    built from the same forward definitions as the document.

    Symbols: x (an input value), mu (the channel mean), var (the biased channel
    variance), eps, inv_std = 1/sqrt(var + eps), xhat, gamma, beta, delta (dcalL/dz
    of a value: the error there, any common scale), sum_x (sum of the channel's
    x), sum_sq_dev (sum of (x - mu)^2), sum_delta (sum of the channel's delta),
    sum_delta_xhat (sum of delta*xhat), m (values per channel: batch size for a
    vector input, batch*H*W for (C, H, W)), momentum, running_mean, running_var,
    mean (a batch mean), var_biased (a biased batch variance).

    Keys, with argument order:
      mean(sum_x, m)                      mu = sum_x / m
      sq_dev(x, mu)                       (x - mu)^2, the summand of var
      var(sum_sq_dev, m)                  the biased variance
      inv_std(var, eps)                   1/sqrt(var + eps)
      xhat(x, mu, inv_std)                (x - mu) inv_std (training: batch mu, var;
                                          evaluation: running_mean, running_var)
      z(xhat, gamma, beta)                gamma xhat + beta (then the layer's activation)
      dgamma_term(delta, xhat)            summand of dL/dgamma (sum over the channel)
      dbeta_term(delta)                   summand of dL/dbeta
      dx(delta, xhat, sum_delta, sum_delta_xhat, gamma, inv_std, m)
                                          gamma inv_std (m delta - sum_delta - xhat sum_delta_xhat) / m
      dx_eval(delta, gamma, inv_std)      delta dz/dx with mu, var fixed (evaluation: the running
                                          statistics are constants): gamma inv_std delta
      var_unbiased(var_biased, m)         var_biased m / (m - 1)
      running_mean_update(running_mean, mean, momentum)
      running_var_update(running_var, var_biased, m, momentum)

    dx is linear in delta: fed with dL/dz (batch mean loss) it gives dL/dx; fed
    with per-example errors it gives the per-example adjoint m_batch dL/dx.
    """
    g = generic_batchnorm()
    s = {name: sp.Symbol(name, real=True) for name in (
        "x", "mu", "xhat", "gamma", "beta", "delta", "sum_x", "sum_delta", "sum_delta_xhat",
        "running_mean", "running_var", "mean")}
    s.update({name: sp.Symbol(name, nonnegative=True) for name in ("var", "sum_sq_dev", "var_biased")})
    s.update({name: sp.Symbol(name, positive=True) for name in ("eps", "inv_std", "m")})
    s["momentum"] = sp.Symbol("momentum", nonnegative=True)
    x, mu, var, eps, inv_std, m = (s[k] for k in ("x", "mu", "var", "eps", "inv_std", "m"))
    plain = {MU: mu, VAR: var, EPS: eps, GAMMA: s["gamma"], BETA: s["beta"], MB: m,
             _x[I]: x, _xh[I]: s["xhat"], _d[I]: s["delta"]}

    def per_element(e):
        return e.xreplace(plain)

    # inv_std names 1/sqrt(var + eps) of the xhat definition: write var through it.
    through_inv_std = {var: 1 / inv_std ** 2 - eps}
    inv_std_expr = per_element(1 / g["std"])
    xhat = sp.simplify(per_element(g["xhat"]).subs(through_inv_std))
    dx = g["dx"].xreplace({g["dbeta"]: s["sum_delta"], g["dgamma"]: s["sum_delta_xhat"]})
    dx = sp.simplify(per_element(dx).subs(through_inv_std))
    dx_eval = sp.simplify(per_element(g["dx_eval"]).subs(through_inv_std))
    term = lambda total: per_element(total.function.subs(K, I))     # noqa: E731 - the summand, at i
    running = lambda old, new: (1 - s["momentum"]) * old + s["momentum"] * new   # noqa: E731 - PyTorch's rule
    var_unbiased = per_element(g["var_unbiased"]).subs(var, s["var_biased"])
    out = {
        "mean": ((s["sum_x"], m), per_element(g["mu"].subs(g["sum_x"], s["sum_x"]))),
        "sq_dev": ((x, mu), per_element(g["sum_sq"].function.subs(J, I))),
        "var": ((s["sum_sq_dev"], m), per_element(g["var"].subs(g["sum_sq"], s["sum_sq_dev"]))),
        "inv_std": ((var, eps), inv_std_expr),
        "xhat": ((x, mu, inv_std), xhat),
        "z": ((s["xhat"], s["gamma"], s["beta"]), per_element(g["z"])),
        "dgamma_term": ((s["delta"], s["xhat"]), term(g["dgamma"])),
        "dbeta_term": ((s["delta"],), term(g["dbeta"])),
        "dx": ((s["delta"], s["xhat"], s["sum_delta"], s["sum_delta_xhat"], s["gamma"], inv_std, m), dx),
        "dx_eval": ((s["delta"], s["gamma"], inv_std), dx_eval),
        "var_unbiased": ((s["var_biased"], m), var_unbiased),
        "running_mean_update": ((s["running_mean"], s["mean"], s["momentum"]), running(s["running_mean"], s["mean"])),
        "running_var_update": ((s["running_var"], s["var_biased"], m, s["momentum"]),
                               running(s["running_var"], var_unbiased)),
    }
    result = {}
    for key, (args, expr) in out.items():
        extra = expr.free_symbols - set(args)
        if extra:     # pragma: no cover - guards the contract above
            raise AssertionError(f"kernel_math {key}: unexpected symbols {extra}")
        result[key] = KernelExpr(tuple(args), expr)
    return result


# ---------------------------------------------------------------- notation
def _sym(text: str) -> sp.Symbol:
    return sp.Symbol(text)


def _dcal(q: str) -> sp.Symbol:
    return _sym(r"\frac{\partial \mathcal{L}}{\partial %s}" % q)


def _dL(q: str) -> sp.Symbol:
    return d_batch(q)


def _count(placed):
    """The number of values per channel, as printed: m (the batch) or \\bar{m} = m H W."""
    if len(placed.in_shape) == 3:
        return sp.Symbol(r"\bar{m}", integer=True, positive=True)
    return M


def _names(placed) -> dict:
    """Generic symbols -> this layer's notation (channel c fixed, index j over its values)."""
    l, k = placed.position, placed.trainable_index
    return {_x: sp.IndexedBase("u", real=True), _xh: sp.IndexedBase(r"\hat{u}", real=True),
            _d: indexed(r"\delta", l), MU: _sym(r"\mu_{c}"), VAR: _sym(r"\sigma^{2}_{c}"), EPS: _sym(r"\epsilon"),
            GAMMA: _sym(r"\gamma^{(%d)}_{c}" % k), BETA: _sym(r"\beta^{(%d)}_{c}" % k), MB: _count(placed),
            K: J}      # the documents sum over j (k is the kernel size there); the scopes do not nest


def _doc(expr, placed):
    return expr.xreplace(_names(placed))


def _values_note(placed) -> str:
    l = placed.position
    if len(placed.in_shape) == 3:
        c, h, w = placed.in_shape
        return (r"fix a channel c (of %d): $u_1, \dots, u_{\bar m}$ are its $\bar m = m H W = %d m$ values "
                r"$a^{(%d)}_{c,h,w}$ in all m examples of the batch (like BatchNorm2d); in this layer's steps "
                r"i and j run over those values" % (c, h * w, l - 1))
    return (r"fix a feature c (of %d): $u_1, \dots, u_m$ are its values $a^{(%d)}_{c}$ in the m examples "
            r"of the batch (like BatchNorm1d); in this layer's steps i and j run over the examples"
            % (placed.in_shape[0], l - 1))


def _fix_shape_steps(placed, ctx):
    """The driver names parameters by their letters (gamma^{(k)}); print the Greek
    letters instead, and list the running statistics (state, not parameters)."""
    steps = ctx.derivation.steps
    k, l = placed.trainable_index, placed.position
    greek = {"gamma^{(%d)}" % k: r"\gamma^{(%d)}" % k, "beta^{(%d)}" % k: r"\beta^{(%d)}" % k}
    out_at = None
    for n, s in enumerate(steps):
        if s.form == "shape" and s.layer == l and isinstance(s.lhs, str):
            if s.lhs in greek:
                steps[n] = Step(greek[s.lhs], s.rhs, s.why, s.form, s.layer)
            elif s.lhs.startswith("a^{"):
                out_at = n
    if out_at is not None:
        rows = [Step(r"\mu^{(%d)}_{\text{run}}, \sigma^{2\,(%d)}_{\text{run}}" % (k, k),
                     str(next(iter(placed.state_shapes.values()))),
                     "state %s (not trained)" % ", ".join(placed.state.values()), "shape", l)]
        steps[out_at:out_at] = rows


# ---------------------------------------------------------------- the rule
def batchnorm_forward(placed, ctx):
    l, k = placed.position, placed.trainable_index
    layer = placed.layer
    g = generic_batchnorm()
    if placed.state:
        _fix_shape_steps(placed, ctx)
    x, xh, z = sp.IndexedBase("u", real=True), sp.IndexedBase(r"\hat{u}", real=True), indexed("z", l)
    mu, var = _sym(r"\mu_{c}"), _sym(r"\sigma^{2}_{c}")
    m = _count(placed)
    count, count_1 = (r"$\bar m$", r"$\bar m - 1$") if len(placed.in_shape) == 3 else ("m", "m - 1")
    steps = []
    if len(placed.in_shape) == 3:
        steps.append(Step(x[J], _sym(r"a^{(%d)}_{c,h,w} \text{ of an example}" % (l - 1)), _values_note(placed),
                          "forward", l))
        steps.append(Step(m, M * (placed.in_shape[1] * placed.in_shape[2]),
                          "values per channel: the batch size times H W", "forward", l))
    else:
        steps.append(Step(x[J], _sym(r"a^{(%d)}_{c} \text{ of example } j" % (l - 1)), _values_note(placed),
                          "forward", l))
    steps += [
        Step(mu, _doc(g["mu"], placed), "batch mean of the channel (training)", "forward", l),
        Step(var, _doc(g["var"], placed), "batch variance, biased (divided by %s, not %s), as PyTorch "
             "normalises" % (count, count_1), "forward", l),
        Step(xh[I], _doc(g["xhat"], placed),
             f"normalise; epsilon = {layer.eps:g} keeps the division finite", "forward", l),
        Step(z[I], _doc(g["z"], placed),
             "scale and shift by the learnable gamma, beta (initialised to 1 and 0)", "forward", l),
    ]
    act = layer.activation
    steps.append(Step(indexed("a", l)[I], act(z[I]), f"activation {act.describe()}", "forward", l))
    km = kernel_math()
    run_mean, run_var = _sym(r"\mu^{(%d)}_{\text{run},c}" % k), _sym(r"\sigma^{2\,(%d)}_{\text{run},c}" % k)
    names = placed.state
    mom = sp.Symbol(r"\kappa")
    rm = km["running_mean_update"]
    steps.append(Step(run_mean, rm.expr.xreplace(dict(zip(rm.args, (run_mean, mu, mom)))),
                      f"running mean (state {names.get('running_mean', '')}, starts at 0), updated once per "
                      f"training step with momentum $\\kappa = {layer.momentum:g}$, as PyTorch", "forward", l))
    rv = km["running_var_update"]
    steps.append(Step(run_var, rv.expr.xreplace(dict(zip(rv.args, (run_var, var, m, mom)))),
                      f"running variance (state {names.get('running_var', '')}, starts at 1) takes the unbiased "
                      "batch variance: the sum of squares of the definition divided by %s" % count_1, "forward", l))
    steps.append(Step(_sym(r"\hat{u}_{i}\ \text{(evaluation)}"),
                      _doc(g["xhat"], placed).xreplace({mu: run_mean, var: run_var}),
                      "evaluation normalises with the running statistics instead of the batch's", "forward", l))
    return steps


def batchnorm_backward(placed, ctx, upstream):
    l, k = placed.position, placed.trainable_index
    g = generic_batchnorm()
    doc = lambda e: _doc(e, placed)    # noqa: E731
    gamma_name, beta_name = placed.params["gamma"], placed.params["beta"]
    gk, bk = r"\gamma^{(%d)}" % k, r"\beta^{(%d)}" % k
    var_tex = r"\sigma^{2}_{c}"
    steps = []
    # Parameter gradients first (each a Gradient, like dense and conv).
    g_el = Step(_dcal(gk + "_{c}"), doc(g["dgamma"]),
                r"chain rule, $\sum_j \delta_j \partial z_j / \partial \gamma$. Batch normalisation "
                r"couples the examples, so its gradients are of the summed loss $\mathcal{L} = \sum_e \ell_e = m J$, "
                r"whose gradient at $z_j$ is $\delta^{(%d)}_j$" % l, "element", l)
    b_el = Step(_dcal(bk + "_{c}"), doc(g["dbeta"]), r"chain rule: $\beta_c$ is added to every $z_j$ of channel c",
                "element", l)
    over = r"\sum_{j}"      # over the channel's values (examples, rows and columns)
    g_mx = Step(_dcal(gk), _sym(r"%s \delta^{(%d)}_{j} \odot \hat{u}_{j}" % (over, l)),
                "vector form: every channel at once", "matrix", l)
    b_mx = Step(_dcal(bk), _sym(r"%s \delta^{(%d)}_{j}" % (over, l)), "vector form", "matrix", l)
    g_b = Step(_dL(gk), _sym(r"\frac{1}{m} \frac{\partial \mathcal{L}}{\partial %s}" % gk),
               r"the batch loss is $J = \mathcal{L} / m$", "batch", l)
    b_b = Step(_dL(bk), _sym(r"\frac{1}{m} \frac{\partial \mathcal{L}}{\partial %s}" % bk),
               r"the batch loss is $J = \mathcal{L} / m$", "batch", l)
    steps += [g_el, b_el, g_mx, b_mx, g_b, b_b]
    ctx.add_gradient(Gradient(gamma_name, placed.param_shapes[gamma_name], l, g_el, g_mx, g_b))
    ctx.add_gradient(Gradient(beta_name, placed.param_shapes[beta_name], l, b_el, b_mx, b_b))

    # The input gradient, through xhat, var and mu.
    steps.append(Step(_dcal(r"\hat{u}_{i}"), doc(g["dxhat"]),
                      r"chain rule: $\hat u_i$ feeds $z_i$ only", "element", l))
    steps.append(Step(_dcal(var_tex), doc(g["dvar_raw"]),
                      r"chain rule: $\sigma^2$ feeds every $\hat u_j$", "element", l))
    steps.append(Step(_dcal(var_tex), doc(g["dvar"]),
                      r"substitute $u_j - \mu = \hat u_j \sqrt{\sigma^2 + \epsilon}$", "element", l))
    steps.append(Step(sp.Derivative(_sym(var_tex), _sym(r"\mu_{c}")), doc(g["dvar_dmu_raw"]),
                      r"differentiate the definition of $\sigma^2$", "element", l))
    steps.append(Step(sp.Derivative(_sym(var_tex), _sym(r"\mu_{c}")), doc(g["dvar_dmu"]),
                      r"since $\sum_j u_j = m \mu$, from the definition of $\mu$", "element", l))
    steps.append(Step(_dcal(r"\mu_{c}"), doc(g["dmu"]),
                      r"chain rule: $\mu$ feeds every $\hat u_j$ (and $\sigma^2$, which does not change with it)",
                      "element", l))
    xi = _sym("u_{i}")
    inner = {"xhat": _sym(r"\hat{u}_{i}"), "var": _sym(var_tex), "mu": _sym(r"\mu_{c}")}
    chain = sp.Add(*[_dcal(q.name) * sp.Derivative(q, xi) for q in inner.values()])
    steps.append(Step(_dcal("u_{i}"), chain, r"chain rule: $u_i$ feeds $\hat u_i$, $\sigma^2$ and $\mu$",
                      "element", l))
    for key, q in inner.items():
        steps.append(Step(sp.Derivative(q, xi), doc(g["local"][key]),
                          "differentiate the definition of %s" % {"xhat": r"$\hat u$", "var": r"$\sigma^2$",
                                                                    "mu": r"$\mu$"}[key], "element", l))
    steps.append(Step(_dcal("u_{i}"), doc(g["dx_expanded"]),
                      r"insert the three gradients and substitute $u_j - \mu = \hat u_j \sqrt{\sigma^2 + \epsilon}$",
                      "element", l))
    dx = doc(g["dx"])
    steps.append(Step(_dcal("u_{i}"), dx,
                      r"collect the terms; the sums are $\partial \mathcal{L} / \partial \beta_c$ and "
                      r"$\partial \mathcal{L} / \partial \gamma_c$", "element", l))
    running = {MU: _sym(r"\mu^{(%d)}_{\text{run},c}" % k), VAR: _sym(r"\sigma^{2\,(%d)}_{\text{run},c}" % k)}
    steps.append(Step(_sym(r"\left.\frac{\partial \mathcal{L}}{\partial u_{i}}\right|_{\text{evaluation}}"),
                      doc(g["dx_eval"].xreplace(running)), r"in evaluation the running statistics are constants: "
                      r"$u_i$ feeds $\hat u_i$ alone (the input gradient of an attack on the trained network)",
                      "element", l))

    # Pass the gradient down: per example, as the layers below expect.
    bar = indexed(r"\bar{u}", l)
    if len(placed.in_shape) == 3:
        from .conv import C_
        element = bar[C_, I, J]
        value, note = r"a^{(%d)}_{c,i,j}" % (l - 1), ""
    else:
        element = bar[I]
        value, note = r"a^{(%d)}_{i}" % (l - 1), " (feature i is the channel c)"
    # at the entry itself (the values' own indices i, j are not the entry's row and column)
    steps.append(Step(element, _sym(r"\frac{\partial \mathcal{L}}{\partial %s}" % value),
                      r"the gradient passed down: $\partial \mathcal{L} / \partial u$ at the batch value $u$ that is "
                      r"$%s$ of one example%s; as $\mathcal{L} = m J = \sum_e \ell_e$ it is that example's "
                      r"$\partial \ell / \partial a$, a per-example gradient like $\delta$" % (value, note), "element", l))
    matrix = sp.MatrixSymbol(r"\bar{u}^{(%d)}" % l, dim(l - 1), 1)
    steps.append(Step(_sym(r"\frac{\partial \ell}{\partial a^{(%d)}}" % (l - 1)), matrix,
                      "matrix form: one entry per input of the example", "matrix", l))
    batch = _sym(r"\frac{1}{m}\,\bar{U}^{(%d)}" % l)
    return steps, {"element": element, "matrix": matrix, "batch": batch}


# ---------------------------------------------------------------- registration
def _register():
    from . import LayerRule, register_rule
    register_rule("batchnorm", LayerRule(batchnorm_forward, batchnorm_backward, True))


_register()

__all__ = ["generic_batchnorm", "kernel_math", "KernelExpr", "batchnorm_forward", "batchnorm_backward"]
