"""Reading a network spec file (TOML) into a Network, and the training
settings of its optional [train] table."""
from __future__ import annotations

import tomllib
from pathlib import Path

from .budget import short
from .errors import SpecError, SymnetError
from .layers import LAYER_TYPES
from .network import Network

TOP_KEYS = {"name", "input", "loss", "dtype", "layers", "train"}
# [train]: the settings that reproduce an example's documented result; the
# command line's flags override them. key -> accepted Python types.
TRAIN_KEYS = {"optimizer": (str,), "lr": (int, float), "batch_size": (int,), "epochs": (int,),
              "schedule": (str,), "l2": (int, float), "l1": (int, float), "max_norm": (int, float),
              "early_stopping": (int,), "dropout": (int, float), "init": (str,), "seed": (int,)}


def read_table(path) -> dict:
    """The TOML table of a spec file; unreadable, binary or malformed files
    fail with one line naming the file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except IsADirectoryError:
        raise SpecError(f"{path}: is a folder, not a spec file") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the spec file ({exc.strerror})") from None
    if b"\0" in raw[:4096]:
        raise SpecError(f"{path}: a binary file, not a TOML spec")
    try:
        text = raw.decode("utf-8-sig")          # a byte-order mark some editors write is fine
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not UTF-8 text (invalid byte at offset {exc.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None


def load(path) -> Network:
    """Load a TOML spec file; every error names the file and the key or layer."""
    return load_with_settings(path)[0]


def load_with_settings(path) -> tuple[Network, dict]:
    """(Network, the validated [train] table or {}) of a spec file."""
    path = Path(path)
    table = read_table(path)
    try:
        net = from_dict(table, default_name=path.stem)
        for placed in net.placed:        # custom formulas: their errors name this file too
            act = getattr(placed.layer, "activation", None)
            if getattr(act, "source", None) is not None:
                act.derivative
        return net, train_settings(table)
    except SymnetError as exc:
        raise type(exc)(f"{path}: {exc}") from None


def train_settings(table: dict) -> dict:
    """The [train] table, its keys and value types checked (values are checked by train())."""
    settings = table.get("train", {})
    if not isinstance(settings, dict):
        raise SpecError("train: must be a table ([train])")
    for key, value in settings.items():
        if key not in TRAIN_KEYS:
            raise SpecError(f"train: unknown key {key!r} (valid: {', '.join(TRAIN_KEYS)})")
        if isinstance(value, bool) or not isinstance(value, TRAIN_KEYS[key]):
            kind = "a string" if TRAIN_KEYS[key] == (str,) else "a number"
            raise SpecError(f"train: {key} must be {kind}, got {short(repr(value))}")
    return dict(settings)


def from_dict(table: dict, default_name: str = "net") -> Network:
    unknown = set(table) - TOP_KEYS
    if unknown:
        raise SpecError(f"unknown key {short(sorted(unknown)[0])} (valid: {', '.join(sorted(TOP_KEYS))})")
    for key in ("input", "layers"):
        if key not in table:
            raise SpecError(f"missing key {key!r}")
    if isinstance(table["input"], str):
        raise SpecError(f"input: must be a list of positive integers such as [784], got the text "
                        f"{short(table['input'])}")
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
