"""The weight penalty of a spec's [train] table (l2, l1, or both: the elastic
net) for the document's parameter-updates section: the penalty R added to the
batch loss J, its gradient (SymPy's derivative of R, never typed here), and the
update rule with that gradient added, in the document's symbols."""
from __future__ import annotations

import sympy as sp

from .printer import latex

# The penalised parameters' symbol in the update rule (weights W^{(l)}; biases are not penalised).
_W = sp.Symbol("W^{(l)}", real=True)


def _number(v) -> str:
    """%.6g with its exponent in LaTeX: 0.0005 stays, 1e-05 is 1 \\cdot 10^{-5}."""
    mantissa, _, exponent = ("%.6g" % float(v)).partition("e")
    return mantissa + (r" \cdot 10^{%d}" % int(exponent) if exponent else "")


def penalty(train: dict | None) -> dict | None:
    """The penalty's equations and prose, or None when the [train] table sets no l2 or l1."""
    from ..train import Regularizer
    train = train or {}
    reg = Regularizer(l2=train.get("l2", 0.0), l1=train.get("l1", 0.0))
    if not reg:
        return None
    w, expr, values = reg.expression()
    name = reg.name + (" (L1 and L2 together)" if len(reg.terms) == 2 else "")
    lams = sorted(values, key=str)                       # lambda_1 before lambda_2
    # one derivative per penalty term (SymPy's), printed coefficient, lambda, then w
    parts = [(lam, sp.diff(expr.coeff(lam) * lam, w)) for lam in lams]
    assert sp.simplify(sum(d for _, d in parts) - sp.diff(expr, w)) == 0
    split = [(lam,) + d.as_coeff_Mul() for lam, d in parts]          # (lambda, number, lambda * f(w))

    def terms(at, numeric=False):
        out = []
        for lam, c, rest in split:
            f = latex((rest / lam).xreplace({w: at}))
            out.append("%s %s" % (_number(c * values[lam]), f) if numeric else
                       ("%s %s %s" % (latex(c), latex(lam), f) if c != 1 else "%s %s" % (latex(lam), f)))
        return " + ".join(out)

    given = ", ".join(r"%s = %s" % (latex(lam), _number(values[lam])) for lam in lams)
    equations = [
        r"R = \sum_{w} \left(%s\right), \qquad %s"
        % (" + ".join(latex(expr.coeff(lam) * lam) for lam in lams), given),
        r"\frac{\partial R}{\partial w} = %s = %s" % (terms(w), terms(w, numeric=True)),
        r"W^{(l)} \leftarrow W^{(l)} - \eta \left(\nabla_{W^{(l)}} J + %s\right)" % terms(_W),
    ]
    text = (f"Regularisation ([train] of the spec): the {name} penalty $R$ is added to the batch loss, "
            f"so training minimises $J + R$. $R$ sums over every weight $w$ of the weight matrices $W^{{(l)}}$ "
            f"(biases and batch norm's $\\gamma$, $\\beta$ are not penalised); its gradient is SymPy's derivative "
            f"of $R$ (with $\\operatorname{{sgn}}(0) = 0$). Every rule below then uses "
            f"$\\nabla_{{W^{{(l)}}}} J + \\partial R / \\partial W^{{(l)}}$ in place of $\\nabla_{{\\theta}} J$ "
            f"for the weights; plain gradient descent, for example:")
    return {"name": name, "text": text, "equations": equations,
            "coefficients": {str(lam): v for lam, v in values.items()}}


__all__ = ["penalty"]
