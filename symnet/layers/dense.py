"""Fully connected layer z = W a + b, a' = g(z); W is (n_out, n_in) as in PyTorch."""
from __future__ import annotations

from dataclasses import dataclass

from ..activations import Activation, make_activation
from .base import Layer, expect_rank, positive_int, register


@register
@dataclass(frozen=True, init=False)
class Dense(Layer):
    units: int
    activation: Activation = None   # set by __init__; identity when omitted

    type = "dense"
    roles = ("W", "b")

    def __init__(self, units: int, activation=None, *, where: str = "dense layer"):
        object.__setattr__(self, "units", positive_int(units, "units", where))
        object.__setattr__(self, "activation", make_activation(activation, where))

    def output_shape(self, in_shape, where):
        expect_rank(in_shape, 1, "dense", where, "; put a flatten layer before it")
        return (self.units,)

    def param_shapes(self, in_shape):
        return {"W": (self.units, in_shape[0]), "b": (self.units,)}

    def describe(self):
        return f"dense {self.units}, {self.activation.describe()}"

    def to_spec(self):
        return {"type": self.type, "units": self.units, "activation": self.activation.spec_value()}
