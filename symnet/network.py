"""A validated network: layers placed with inferred shapes and named parameters."""
from __future__ import annotations

import hashlib
import json

from .errors import ShapeError, SpecError
from .layers import Layer, Placed
from .losses import Loss, make_loss

DTYPES = ("float32", "float64")


class Network:
    """A feed-forward network: input shape, layers, loss, name and dtype.

    One numbering everywhere: layer l (counting every layer from 1) owns
    z^(l), a^(l), delta^(l) and its parameters W<l>, b<l>, ... (PyTorch's
    shapes, so weights copy across); layers without parameters leave gaps.
    """

    def __init__(self, input, layers, loss="mse", name="net", dtype="float64"):
        if not isinstance(name, str) or not name.isidentifier():
            raise SpecError(f"name: {name!r} must be an identifier (letters, digits, underscores)")
        if dtype not in DTYPES:
            raise SpecError(f"dtype: {dtype!r} is not supported (use float32 or float64)")
        self.name = name
        self.dtype = dtype
        self.input_shape = _shape(input)
        if not layers:
            raise SpecError("layers: a network needs at least one layer")
        self.layers: list[Layer] = list(layers)
        for i, layer in enumerate(self.layers, 1):
            if not isinstance(layer, Layer):
                raise SpecError(f"layer {i}: expected a symnet layer object, got {type(layer).__name__}")
        self.loss: Loss = make_loss(loss)
        self.placed: list[Placed] = self._place()
        self._check_output()

    def _place(self) -> list[Placed]:
        placed, shape = [], self.input_shape
        for position, layer in enumerate(self.layers, 1):
            where = f"layer {position} ({layer.type})"
            out = tuple(layer.output_shape(shape, where))
            roles = layer.param_shapes(shape)
            k = position
            index = position if layer.trainable else None
            names = {role: f"{role}{k}" for role in roles}
            state_roles = layer.state_shapes(shape)
            if state_roles and index is None:     # pragma: no cover - a layer-author error
                raise TypeError(f"{where}: a layer with state must have parameters (its state is named by k)")
            state = {role: f"{role}{k}" for role in state_roles}
            placed.append(Placed(position, layer, shape, out, names,
                                 {names[r]: tuple(s) for r, s in roles.items()}, index,
                                 state, {state[r]: tuple(s) for r, s in state_roles.items()}))
            shape = out
        return placed

    def _check_output(self):
        out = self.output_shape
        for p in self.placed[:-1]:   # softmax's Jacobian is derived only with the loss that follows it
            act = getattr(p.layer, "activation", None)
            if p.layer.type == "softmax" or (act is not None and act.is_softmax):
                raise SpecError(f"{p.where}: softmax is only supported as the last layer (with cross_entropy); "
                                "use another activation in hidden layers")
        if self.loss.one_hot and len(out) != 1:
            raise ShapeError(f"loss {self.loss.name}: needs a vector output, the network gives {out}")
        if self.loss.name == "cross_entropy" and not self.ends_in_softmax:
            raise SpecError("loss cross_entropy: the last layer must be softmax "
                            "(or use softmax_cross_entropy on logits)")
        if self.loss.name == "softmax_cross_entropy" and self.ends_in_softmax:
            raise SpecError("loss softmax_cross_entropy: takes logits, but the network already ends in a "
                            "softmax; use cross_entropy, or drop the softmax")
        if self.ends_in_softmax and self.loss.name != "cross_entropy":
            raise SpecError(f"loss {self.loss.name}: a softmax output goes with cross_entropy only")
        last_act = getattr(self.layers[-1], "activation", None)
        if self.loss.kind == "margin" and (last_act is None or not last_act.is_identity):
            raise SpecError(f"loss {self.loss.name}: takes the scores z, so the last layer needs no activation")
        if self.loss.kind == "margin" and len(out) == 1 and out[0] < 2:
            raise ShapeError(f"loss {self.loss.name}: needs at least 2 classes, the network gives {out}")
        if self.loss.name == "bce":
            act = getattr(self.layers[-1], "activation", None)
            if act is None or act.name != "sigmoid":
                raise SpecError("loss bce: the last layer needs activation = \"sigmoid\" "
                                "(bce is computed from its logits in a stable form)")

    # -- properties
    @property
    def ends_in_softmax(self) -> bool:
        last = self.layers[-1]
        act = getattr(last, "activation", None)
        return last.type == "softmax" or (act is not None and act.is_softmax)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.placed[-1].out_shape

    @property
    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = {}
        for p in self.placed:
            shapes.update(p.param_shapes)
        return shapes

    @property
    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """Non-trainable state (batch norm's running_mean<l>, running_var<l>) by name."""
        shapes = {}
        for p in self.placed:
            shapes.update(p.state_shapes)
        return shapes

    @property
    def n_params(self) -> int:
        return sum(p.n_params for p in self.placed)

    # -- uses
    def init_params(self, seed: int = 0, scheme: str = "he", dtype: str | None = None):
        """A dict of numpy arrays named W1, b1, ... with PyTorch's shapes."""
        from .init import init_params
        return init_params(self.param_shapes, scheme=scheme, seed=seed, dtype=dtype or self.dtype)

    def init_state(self, dtype: str | None = None):
        """A dict of numpy arrays for the state: running means 0, running variances 1
        (as PyTorch's batch norm starts), in the network's dtype."""
        import numpy as np
        dtype = np.dtype(dtype or self.dtype)
        return {name: (np.ones(shape, dtype) if name.startswith("running_var") else np.zeros(shape, dtype))
                for name, shape in self.state_shapes.items()}

    def summary(self) -> str:
        rows = [("layer", "output shape", "params")]
        rows.append(("input", str(self.input_shape), "0"))
        for p in self.placed:
            rows.append((f"{p.position}: {p.layer.describe()}", str(p.out_shape), f"{p.n_params:,}"))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        lines = [f"network {self.name} ({self.dtype}), loss {self.loss.name}"]
        for r in rows:
            lines.append(f"  {r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}")
        lines.append(f"  total parameters: {self.n_params:,}")
        return "\n".join(lines)

    def legacy_names(self) -> dict[str, str]:
        """Old checkpoint names (parameters counted over trainable layers only,
        symnet 0.1 before the one numbering) -> today's names, where they differ."""
        mapping, k = {}, 0
        for p in self.placed:
            if p.trainable_index is None:
                continue
            k += 1
            for role, name in {**p.params, **p.state}.items():
                if f"{role}{k}" != name:
                    mapping[f"{role}{k}"] = name
        return mapping

    def to_spec(self) -> dict:
        """The spec-file form (what a TOML spec holds)."""
        loss = self.loss.source if self.loss.source is not None else self.loss.name
        return {"name": self.name, "input": list(self.input_shape), "loss": loss, "dtype": self.dtype,
                "layers": [layer.to_spec() for layer in self.layers]}

    def fingerprint(self) -> str:
        """A content hash of the spec (for generated file names)."""
        text = json.dumps(self.to_spec(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def __repr__(self):
        return f"Network({self.name!r}, input={self.input_shape}, {len(self.layers)} layers, loss={self.loss.name!r})"


def _shape(value) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,)
    try:
        shape = tuple(value)
    except TypeError:
        raise SpecError(f"input: must be a list of positive integers, got {value!r}") from None
    if not shape or any(isinstance(s, bool) or not isinstance(s, int) or s <= 0 for s in shape):
        raise SpecError(f"input: must be a list of positive integers, got {list(shape)}")
    return shape
