"""The layer interface: shape inference, parameters and spec parsing.

A layer class knows its own shapes and parameters; its symbolic forward map and
backward steps live in derive.py (per layer type), so this module stays free
of SymPy.
"""
from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import ClassVar

from ..errors import ShapeError, SpecError

LAYER_TYPES: dict[str, type["Layer"]] = {}


def register(cls):
    """Class decorator: make a layer type available to spec files."""
    LAYER_TYPES[cls.type] = cls
    return cls


class Layer:
    type: ClassVar[str] = ""
    # parameter roles in order, e.g. ("W", "b"); names become W1, b1, ...
    roles: ClassVar[tuple[str, ...]] = ()

    @property
    def trainable(self) -> bool:
        return bool(self.roles)

    def output_shape(self, in_shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        raise NotImplementedError

    def param_shapes(self, in_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        """Shapes by role ('W', 'b', ...)."""
        return {}

    def state_shapes(self, in_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        """Shapes of non-trainable state by role (batch norm's 'running_mean',
        'running_var'); names become running_mean<l>, ... with l the layer's position, as in W<l>."""
        return {}

    def describe(self) -> str:
        return self.type

    def to_spec(self) -> dict:
        """The spec-file table of this layer (used for hashing and round trips)."""
        table = {"type": self.type}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                table[f.name] = value.spec_value() if hasattr(value, "spec_value") else value
        return table

    @classmethod
    def from_spec(cls, table: dict, where: str) -> "Layer":
        """Build from a spec table; every layer's __init__ takes `where` by keyword."""
        known = {f.name for f in fields(cls)}
        unknown = set(table) - known - {"type"}
        if unknown:
            valid = ", ".join(sorted(known)) or "none"
            raise SpecError(f"{where}: unknown key {sorted(unknown)[0]!r} for a {cls.type} layer (valid: {valid})")
        missing = [f.name for f in fields(cls) if f.name not in table and f.default is MISSING]
        if missing:
            raise SpecError(f"{where}: a {cls.type} layer needs the key {missing[0]!r}")
        return cls(**{k: v for k, v in table.items() if k != "type"}, where=where)


def positive_int(value, key: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise SpecError(f"{where}: {key!r} must be a positive integer, got {value!r}")
    return value


def expect_rank(in_shape, rank: int, layer: str, where: str, hint: str = ""):
    if len(in_shape) != rank:
        raise ShapeError(f"{where}: a {layer} layer needs an input of rank {rank}, got shape {in_shape}{hint}")


@dataclass(frozen=True)
class Placed:
    """A layer placed in a network: its position, shapes and parameter names."""
    position: int                          # 1-based among all layers
    layer: Layer
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    params: dict[str, str]                 # role -> name, e.g. {"W": "W2", "b": "b2"}
    param_shapes: dict[str, tuple[int, ...]]   # name -> shape
    trainable_index: int | None            # l in W<l> (the layer's position) for layers with parameters, else None
    state: dict[str, str] = field(default_factory=dict)        # role -> name, e.g. {"running_mean": "running_mean2"}
    state_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)   # name -> shape

    @property
    def where(self) -> str:
        return f"layer {self.position} ({self.layer.type})"

    @property
    def n_params(self) -> int:
        total = 0
        for shape in self.param_shapes.values():
            size = 1
            for s in shape:
                size *= s
            total += size
        return total
