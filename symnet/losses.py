"""Losses as SymPy expressions of the prediction `yhat` and the target `y`.

Every loss is reduced as PyTorch reduces it by default: element-wise losses
average over all elements of the batch, cross entropies sum over classes and
average over the batch. Per example, symnet writes an element-wise loss as the
mean over the n outputs, so the batch loss is always the mean of per-example
losses.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .budget import is_zero_almost_everywhere, require_size, short
from .errors import FormulaError, NotDifferentiableError, SpecError
from .formula import parse_formula

YHAT = sp.Symbol("yhat", real=True)
Y = sp.Symbol("y", real=True)

ELEMENTWISE = {
    "mse": ((YHAT - Y) ** 2, "mean squared error"),
    "l1": (sp.Abs(YHAT - Y), "mean absolute error"),
    "bce": (-(Y * sp.log(YHAT) + (1 - Y) * sp.log(1 - YHAT)), "binary cross entropy"),
    "hinge": (sp.Piecewise((1 - Y * YHAT, Y * YHAT < 1), (0, True)), "hinge loss, targets -1 or +1"),
}
CATEGORICAL = {
    "softmax_cross_entropy": "softmax cross entropy on logits",
    "cross_entropy": "cross entropy after a softmax layer",
}
# Margin losses on class scores (logits, no softmax), one-hot targets. multiclass_hinge:
# (1/n) sum_{j != y} max(0, 1 + z_j - z_y) per example, torch.nn.MultiMarginLoss's default
# (p=1, margin=1, divided by the n classes); the CS231n lecture's sum is n times it.
MARGIN = {
    "multiclass_hinge": "multi-class hinge (SVM) loss on scores",
}
REJECTED = {
    "zero_one": "the 0-1 loss is piecewise constant: its gradient is zero almost everywhere and "
                "undefined at the jumps, so backprop cannot learn from it; use hinge or bce",
    "0-1": None,
}
REJECTED["0-1"] = REJECTED["zero_one"]


@dataclass(frozen=True)
class Loss:
    name: str
    kind: str                     # "elementwise", "categorical" (softmax) or "margin"
    expr: sp.Expr | None          # per-element loss in yhat, y (elementwise kinds)
    title: str
    source: str | None = None     # formula text of a custom loss

    @property
    def is_categorical(self) -> bool:
        return self.kind == "categorical"

    @property
    def one_hot(self) -> bool:
        """Targets are one-hot classes, predictions the argmax (softmax and margin losses)."""
        return self.kind in ("categorical", "margin")

    def check_differentiable(self):
        d = sp.diff(self.expr, YHAT)
        if self.source is not None:
            require_size(d, "loss", self.source)
        if self.expr.has(YHAT) and is_zero_almost_everywhere(d, [YHAT, Y]):
            raise NotDifferentiableError(
                f"loss {self.name!r}: its derivative with respect to yhat is zero almost everywhere, "
                "so backprop cannot learn from it")


def make_loss(spec) -> Loss:
    if isinstance(spec, Loss):
        return spec
    if not isinstance(spec, str):
        raise SpecError(f"loss: must be a name or a formula in yhat and y, got {short(repr(spec))}")
    name = spec.strip()
    if name in REJECTED:
        raise NotDifferentiableError(f"loss {name!r}: {REJECTED[name]}")
    if name in ELEMENTWISE:
        expr, title = ELEMENTWISE[name]
        return Loss(name, "elementwise", expr, title)
    if name in CATEGORICAL:
        return Loss(name, "categorical", None, CATEGORICAL[name])
    if name in MARGIN:
        return Loss(name, "margin", None, MARGIN[name])
    if name.isidentifier():
        known = ", ".join(sorted(list(ELEMENTWISE) + list(CATEGORICAL) + list(MARGIN)))
        raise SpecError(f"loss: unknown loss {short(name)} (known: {known}; or a formula in yhat and y)")
    try:
        expr = parse_formula(name, ["yhat", "y"])
    except FormulaError as exc:
        raise FormulaError(f"loss formula: {exc}") from None
    except RecursionError:
        raise FormulaError(f"loss {short(name)} nests too deeply; nest it less deeply") from None
    if not expr.has(YHAT):
        raise SpecError(f"loss: the formula {short(name)} does not depend on yhat")
    loss = Loss("custom", "elementwise", expr, "custom loss", source=name)
    try:
        loss.check_differentiable()
    except RecursionError:
        raise FormulaError(f"loss {short(name)} nests too deeply for the derivation; "
                           "nest it less deeply") from None
    return loss
