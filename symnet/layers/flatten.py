"""Flatten (channels, height, width) to a vector in C, H, W order (torch.flatten(x, 1))."""
from __future__ import annotations

from dataclasses import dataclass

from .base import Layer, register


@register
@dataclass(frozen=True, init=False)
class Flatten(Layer):
    type = "flatten"

    def __init__(self, *, where: str = "flatten layer"):
        pass

    def output_shape(self, in_shape, where):
        size = 1
        for s in in_shape:
            size *= s
        return (size,)

    def to_spec(self):
        return {"type": self.type}
