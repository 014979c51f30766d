"""Max and average pooling over size x size windows (no parameters, no padding).

The stride defaults to the window size. Max pooling routes the gradient to the
first maximum of each window in row-major order (the one PyTorch picks).
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import Layer, expect_rank, positive_int, register
from .conv import window_output


class _Pool2D(Layer):
    def __init__(self, size: int, stride=None, *, where: str = "pooling layer"):
        object.__setattr__(self, "size", positive_int(size, "size", where))
        object.__setattr__(self, "stride", self.size if stride is None else positive_int(stride, "stride", where))

    def output_shape(self, in_shape, where):
        expect_rank(in_shape, 3, self.type, where + " (input is channels, height, width)")
        c, h, w = in_shape
        return (c, window_output(h, self.size, 0, self.stride, where, "height"),
                window_output(w, self.size, 0, self.stride, where, "width"))

    def describe(self):
        extra = "" if self.stride == self.size else f", stride {self.stride}"
        return f"{self.type} {self.size}x{self.size}{extra}"

    def to_spec(self):
        return {"type": self.type, "size": self.size, "stride": self.stride}


@register
@dataclass(frozen=True, init=False)
class MaxPool2D(_Pool2D):
    size: int
    stride: int = None

    type = "maxpool2d"
    __init__ = _Pool2D.__init__


@register
@dataclass(frozen=True, init=False)
class AvgPool2D(_Pool2D):
    size: int
    stride: int = None

    type = "avgpool2d"
    __init__ = _Pool2D.__init__
