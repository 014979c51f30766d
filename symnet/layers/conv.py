"""2-D convolution z = W * a + b (cross-correlation, as in PyTorch), a' = g(z).

W is (filters, in_channels, kh, kw) and b is (filters,), as in PyTorch, so
weights copy across. Inputs and outputs are (channels, height, width) per example.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..activations import Activation, make_activation
from ..errors import ShapeError, SpecError
from .base import Layer, expect_rank, positive_int, register


def pair(value, key: str, where: str) -> tuple[int, int]:
    """An int or a pair of positive ints, as (height, width)."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise SpecError(f"{where}: {key!r} must be an integer or a pair [height, width], got {list(value)!r}")
        return positive_int(value[0], key, where), positive_int(value[1], key, where)
    v = positive_int(value, key, where)
    return v, v


def window_output(n: int, f: int, p: int, s: int, where: str, axis: str) -> int:
    """(n + 2p - f)/s + 1, which must be an integer >= 1."""
    span = n + 2 * p - f
    if span < 0:
        raise ShapeError(f"{where}: the window ({f}) is larger than the {axis} of the input ({n}"
                         + (f" + 2*{p} padding" if p else "") + ")")
    if span % s:
        raise ShapeError(f"{where}: the {axis} does not fit: (n + 2p - f)/s + 1 = ({n} + 2*{p} - {f})/{s} + 1 "
                         f"= {span / s + 1:g} is not an integer")
    return span // s + 1


@register
@dataclass(frozen=True, init=False)
class Conv2D(Layer):
    filters: int
    kernel: tuple
    stride: int = 1
    padding: object = "valid"        # "valid", "same" or an int
    activation: Activation = None    # identity when omitted

    type = "conv2d"
    roles = ("W", "b")

    def __init__(self, filters: int, kernel, stride: int = 1, padding="valid", activation=None,
                 *, where: str = "conv2d layer"):
        object.__setattr__(self, "filters", positive_int(filters, "filters", where))
        kh, kw = pair(kernel, "kernel", where)
        object.__setattr__(self, "kernel", (kh, kw))
        object.__setattr__(self, "stride", positive_int(stride, "stride", where))
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise SpecError(f"{where}: padding must be \"valid\", \"same\" or an integer, got {padding!r}")
            if padding == "same":
                if kh % 2 == 0 or kw % 2 == 0:
                    raise SpecError(f"{where}: padding \"same\" needs an odd kernel, got {kh}x{kw}")
                if self.stride != 1:
                    raise SpecError(f"{where}: padding \"same\" needs stride 1, got stride {self.stride}")
        elif isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise SpecError(f"{where}: padding must be \"valid\", \"same\" or an integer >= 0, got {padding!r}")
        object.__setattr__(self, "padding", padding)
        object.__setattr__(self, "activation", make_activation(activation, where))
        if self.activation.is_softmax:
            raise SpecError(f"{where}: softmax is not an element-wise activation for a conv2d layer")

    @property
    def pads(self) -> tuple:
        """Zero padding (top and bottom, left and right), in pixels: "same" pads a
        rectangular kernel by (kh - 1)/2 rows and (kw - 1)/2 columns."""
        if self.padding == "valid":
            return 0, 0
        if self.padding == "same":
            return (self.kernel[0] - 1) // 2, (self.kernel[1] - 1) // 2
        return self.padding, self.padding

    def output_shape(self, in_shape, where):
        expect_rank(in_shape, 3, "conv2d", where + " (input is channels, height, width)")
        _, h, w = in_shape
        kh, kw = self.kernel
        ph, pw = self.pads
        return (self.filters, window_output(h, kh, ph, self.stride, where, "height"),
                window_output(w, kw, pw, self.stride, where, "width"))

    def param_shapes(self, in_shape):
        return {"W": (self.filters, in_shape[0], *self.kernel), "b": (self.filters,)}

    def describe(self):
        kh, kw = self.kernel
        extra = "" if self.stride == 1 else f", stride {self.stride}"
        extra += "" if self.padding == "valid" else f", padding {self.padding}"
        return f"conv2d {self.filters}@{kh}x{kw}{extra}, {self.activation.describe()}"

    def to_spec(self):
        kh, kw = self.kernel
        return {"type": self.type, "filters": self.filters, "kernel": kh if kh == kw else [kh, kw],
                "stride": self.stride, "padding": self.padding, "activation": self.activation.spec_value()}
