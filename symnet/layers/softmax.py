"""An explicit softmax layer p = softmax(a), for `cross_entropy` after it."""
from __future__ import annotations

from dataclasses import dataclass

from .base import Layer, expect_rank, register


@register
@dataclass(frozen=True)
class Softmax(Layer):
    where: str = "softmax layer"

    type = "softmax"

    def output_shape(self, in_shape, where):
        expect_rank(in_shape, 1, "softmax", where)
        return in_shape

    def to_spec(self):
        return {"type": self.type}
