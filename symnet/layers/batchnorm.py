"""Batch normalisation z = gamma * (x - mu) / sqrt(var + eps) + beta, a = g(z).

A vector input (features,) is normalised per feature over the batch, like
torch.nn.BatchNorm1d; a (channels, height, width) input per channel over the
batch and the image, like torch.nn.BatchNorm2d. The output has the input's
shape. gamma and beta have shape (C,) (C = features or channels) and start at
1 and 0. Training normalises with the batch mean and the biased batch variance
and updates the running statistics as PyTorch does:

    running_mean = (1 - momentum) * running_mean + momentum * batch_mean
    running_var  = (1 - momentum) * running_var  + momentum * unbiased_batch_var

Evaluation normalises with the running statistics. Those are state, not
parameters: `state_shapes` names them running_mean<l>, running_var<l>.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..activations import Activation, make_activation
from ..errors import ShapeError, SpecError
from .base import Layer, register


def _number(value, key: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpecError(f"{where}: {key!r} must be a number, got {value!r}")
    return float(value)


@register
@dataclass(frozen=True, init=False)
class BatchNorm(Layer):
    activation: Activation = None   # identity when omitted
    eps: float = 1e-5
    momentum: float = 0.1

    type = "batchnorm"
    roles = ("gamma", "beta")
    state_roles = ("running_mean", "running_var")

    def __init__(self, activation=None, eps: float = 1e-5, momentum: float = 0.1, *,
                 where: str = "batchnorm layer"):
        eps = _number(eps, "eps", where)
        if eps <= 0:
            raise SpecError(f"{where}: 'eps' must be positive, got {eps!r}")
        if momentum is None:
            raise SpecError(f"{where}: 'momentum' must be a number in [0, 1] (a cumulative average, "
                            "PyTorch's momentum=None, is not supported)")
        momentum = _number(momentum, "momentum", where)
        if not 0.0 <= momentum <= 1.0:
            raise SpecError(f"{where}: 'momentum' must be in [0, 1], got {momentum!r}")
        object.__setattr__(self, "activation", make_activation(activation, where))
        if self.activation.is_softmax:
            raise SpecError(f"{where}: softmax is not an element-wise activation for a batchnorm layer "
                            "(add a softmax layer after it)")
        object.__setattr__(self, "eps", eps)
        object.__setattr__(self, "momentum", momentum)

    @staticmethod
    def channels(in_shape) -> int:
        """C: the number of features (1-D input) or channels (C, H, W input)."""
        return in_shape[0]

    @staticmethod
    def is_spatial(in_shape) -> bool:
        """True for a (C, H, W) input (BatchNorm2d), False for a vector (BatchNorm1d)."""
        return len(in_shape) == 3

    def output_shape(self, in_shape, where):
        if len(in_shape) not in (1, 3):
            raise ShapeError(f"{where}: a batchnorm layer needs an input of rank 1 (features) or 3 "
                             f"(channels, height, width), got shape {tuple(in_shape)}")
        return tuple(in_shape)

    def param_shapes(self, in_shape):
        c = self.channels(in_shape)
        return {"gamma": (c,), "beta": (c,)}

    def state_shapes(self, in_shape):
        c = self.channels(in_shape)
        return {"running_mean": (c,), "running_var": (c,)}

    def describe(self):
        return f"batchnorm eps={self.eps:g}, momentum={self.momentum:g}, {self.activation.describe()}"

    def to_spec(self):
        return {"type": self.type, "activation": self.activation.spec_value(),
                "eps": self.eps, "momentum": self.momentum}
