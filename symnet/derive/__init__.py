"""derive(net): the chain rule over the layer list, as an ordered Derivation.

Each layer type contributes a rule (forward steps; backward steps given the
gradient arriving from above). The driver walks the layers forward, derives
delta^(L) of the loss/output pair, then walks backward, inserting the lectures'
delta^(l) = g'(z^(l)) (.) (upstream) for every layer with an activation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import sympy as sp

from ..activations import defined_everywhere
from ..errors import SpecError, SymnetError
from . import dense
from .core import (A, I, J, M, ActivationMath, Derivation, Gradient, OutputMath, Step,
                   Z)
from .notation import BATCH_LOSS, d_batch, indexed
from .output import elementwise_output, in_terms_of_a, multiclass_hinge_output, softmax_output

X = sp.Symbol("x", real=True)


@dataclass(frozen=True)
class LayerRule:
    forward: Callable            # (placed, ctx) -> list[Step]
    backward: Callable           # (placed, ctx, upstream) -> (list[Step], upstream below)
    has_preactivation: bool      # z^(l) exists and a^(l) = g(z^(l))


class Context:
    """What rules share while deriving: the network and the growing Derivation."""

    def __init__(self, net):
        self.net = net
        self.derivation = Derivation(net)

    def add_gradient(self, gradient: Gradient):
        self.derivation.gradients[gradient.name] = gradient

    def activation_math(self, placed) -> ActivationMath:
        act = placed.layer.activation
        return _activation_math(act, placed.where)


def _activation_math(act, where) -> ActivationMath:
    try:
        return _activation_math_cached(act)
    except SymnetError as exc:
        raise type(exc)(f"{where}: {exc}".replace(f"{where}: {where}: ", f"{where}: ")) from None


@lru_cache(maxsize=None)
def _activation_math_cached(act) -> ActivationMath:
    dg = act.derivative
    g_z = act.expr.subs(X, Z)
    dg_in_a = in_terms_of_a(dg.subs(X, Z), g_z)
    return ActivationMath(act.name, act.expr, dg, dg_in_a, defined_everywhere(dg))


def _dense_forward(placed, ctx):
    l = placed.position
    steps = dense.forward_steps(placed, l, placed.params["W"], placed.params["b"])
    act = placed.layer.activation
    if act.is_softmax:
        steps.append(Step(indexed("a", l)[I], sp.Symbol(r"\operatorname{softmax}(z^{(%d)})_i" % l),
                          "output activation", "forward", l))
    else:
        steps.append(Step(indexed("a", l)[I], act(indexed("z", l)[I]), f"activation {act.describe()}", "forward", l))
    return steps


def _dense_backward(placed, ctx, upstream):
    return dense.backward(placed, placed.position, ctx)


def _softmax_forward(placed, ctx):
    l = placed.position
    return [Step(indexed("a", l)[I], sp.Symbol(r"\operatorname{softmax}(a^{(%d)})_i" % (l - 1)),
                 "definition (softmax layer)", "forward", l)]


RULES: dict[str, LayerRule] = {
    "dense": LayerRule(_dense_forward, _dense_backward, True),
    "softmax": LayerRule(_softmax_forward, None, False),
}


def register_rule(layer_type: str, rule: LayerRule):
    """Layer modules (conv, pooling, ...) add their rules here."""
    RULES[layer_type] = rule


def _rule(placed) -> LayerRule:
    rule = RULES.get(placed.layer.type)
    if rule is None:
        raise SpecError(f"{placed.where}: symnet cannot derive a {placed.layer.type} layer yet")
    return rule


def _output_layer(net):
    """The layer whose delta the loss defines (the one before a softmax layer)."""
    placed = list(net.placed)
    if placed[-1].layer.type == "softmax":
        below = placed[-2] if len(placed) > 1 else None
        act = getattr(below.layer, "activation", None) if below else None
        if act is None or not act.is_identity:
            raise SpecError("the layer before the softmax layer must be dense with no activation")
        return placed[:-1]
    return placed


def _shape_steps(net) -> list[Step]:
    steps = [Step("x = a^{(0)}", str(net.input_shape), "input, per example", "shape")]
    for p in net.placed:
        for name, shape in p.param_shapes.items():
            sym = "%s^{(%d)}" % (name.rstrip("0123456789"), p.trainable_index)
            symbolic = ""
            if p.layer.type == "dense" and name.startswith("W"):
                symbolic = r"(n^{(%d)}, n^{(%d)}) = " % (p.position, p.position - 1)
            steps.append(Step(sym, symbolic + str(shape), f"parameter {name}", "shape", p.position))
        steps.append(Step("a^{(%d)}" % p.position, str(p.out_shape), f"output of {p.where}", "shape", p.position))
    return steps


def derive(net) -> Derivation:
    """Derive the gradient of the loss for every parameter and the input."""
    ctx = Context(net)
    d = ctx.derivation
    d.steps += _shape_steps(net)
    for p in net.placed:
        d.steps += _rule(p).forward(p, ctx)
        d.shapes["a%d" % p.position] = p.out_shape

    layers = _output_layer(net)
    out = layers[-1]
    L = out.position
    if net.loss.is_categorical:
        output, steps = softmax_output(net.loss, L)
    elif net.loss.kind == "margin":
        output, steps = multiclass_hinge_output(net.loss, L)
        d.activations[L] = ctx.activation_math(out)   # the identity: scores z
    else:
        if not _rule(out).has_preactivation:
            raise SpecError(f"{out.where}: the last layer before the loss must have an activation (dense or conv)")
        act_math = ctx.activation_math(out)
        output, steps = elementwise_output(net.loss, act_math, L, math.prod(out.out_shape))
        d.activations[L] = act_math
    d.output = output
    d.steps += steps
    d.steps.append(Step(BATCH_LOSS, sp.Sum(sp.Symbol(r"\ell_e"), (sp.Symbol("e"), 1, M)) / M,
                        "the batch loss is the mean of the per-example losses", "loss"))

    upstream = None
    for p in reversed(layers):
        rule = _rule(p)
        if rule.has_preactivation and upstream is not None:
            am = ctx.activation_math(p)
            d.activations[p.position] = am
            d.steps += dense.delta_steps(p.position, _gname(p), am, upstream, _element_index(p))
        steps, upstream = rule.backward(p, ctx, upstream)
        d.steps += steps

    x_index = "c,i,j" if len(net.input_shape) == 3 else "i"   # the indices of the element form
    ctx.add_gradient(Gradient("x", net.input_shape, 0,
                              Step(r"\frac{\partial \ell}{\partial x_{%s}}" % x_index, upstream["element"],
                                   "chain rule", "element", 0),
                              Step(r"\frac{\partial \ell}{\partial x}", upstream["matrix"], "chain rule", "matrix", 0),
                              Step(d_batch("X"), upstream["batch"], "average over the batch", "batch", 0)))
    return d


def _element_index(placed) -> tuple:
    """(i,) for a vector output, (c, i, j) for a feature map (the conv rules' indices)."""
    if len(placed.out_shape) == 3:
        from .conv import C_
        return (C_, I, J)
    return (I,)


def _gname(placed) -> str:
    act = placed.layer.activation
    return act.latex_name if act.name != "custom" else "g"


__all__ = ["derive", "Derivation", "Step", "Gradient", "OutputMath", "ActivationMath",
           "LayerRule", "register_rule", "RULES"]


# Convolution, pooling and flatten rules register themselves on import.
from . import conv  # noqa: E402,F401
from . import dropout  # noqa: E402,F401
from . import batchnorm  # noqa: E402,F401
