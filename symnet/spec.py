"""Reading a network spec file (TOML) into a Network."""
from __future__ import annotations

import tomllib
from pathlib import Path

from .errors import SpecError
from .layers import LAYER_TYPES
from .network import Network

TOP_KEYS = {"name", "input", "loss", "dtype", "layers"}


def load(path) -> Network:
    """Load a TOML spec file; every error names the file and the key or layer."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the spec file ({exc.strerror})") from None
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None
    try:
        return from_dict(table, default_name=path.stem)
    except SpecError as exc:
        raise type(exc)(f"{path}: {exc}") from None


def from_dict(table: dict, default_name: str = "net") -> Network:
    unknown = set(table) - TOP_KEYS
    if unknown:
        raise SpecError(f"unknown key {sorted(unknown)[0]!r} (valid: {', '.join(sorted(TOP_KEYS))})")
    for key in ("input", "layers"):
        if key not in table:
            raise SpecError(f"missing key {key!r}")
    layers_spec = table["layers"]
    if not isinstance(layers_spec, list):
        raise SpecError("layers: must be an array of tables ([[layers]])")
    layers = []
    for i, entry in enumerate(layers_spec, 1):
        where = f"layer {i}"
        if not isinstance(entry, dict):
            raise SpecError(f"{where}: must be a table with a 'type' key")
        kind = entry.get("type")
        if kind is None:
            raise SpecError(f"{where}: missing key 'type' (one of {', '.join(sorted(LAYER_TYPES))})")
        if kind not in LAYER_TYPES:
            raise SpecError(f"{where}: unknown layer type {kind!r} (known: {', '.join(sorted(LAYER_TYPES))})")
        layers.append(LAYER_TYPES[kind].from_spec(entry, f"{where} ({kind})"))
    return Network(input=table["input"], layers=layers, loss=table.get("loss", "mse"),
                   name=table.get("name", default_name), dtype=table.get("dtype", "float64"))
