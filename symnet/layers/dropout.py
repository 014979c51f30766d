"""Inverted dropout: in training each entry is kept with probability 1 - rate
and scaled by 1/(1 - rate); at evaluation the layer is the identity."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import SpecError
from .base import Layer, register


@register
@dataclass(frozen=True, init=False)
class Dropout(Layer):
    rate: float

    type = "dropout"

    def __init__(self, rate: float, *, where: str = "dropout layer"):
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate) \
                or not 0 <= rate < 1:
            raise SpecError(f"{where}: 'rate' must be a number in [0, 1), got {rate!r}")
        object.__setattr__(self, "rate", float(rate))

    def output_shape(self, in_shape, where):
        return tuple(in_shape)

    def describe(self):
        return f"dropout {self.rate:g}"
