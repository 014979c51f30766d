"""generate(net): derive, print, render, write and import a Numba kernel module.

The element-wise math (activations, their derivatives, the loss and delta^(L))
comes from the Derivation and is printed by NumbaPrinter; the Jinja templates
in `symnet.templates` own signatures, loops, memory and BLAS calls. One
self-contained `.py` file per network (numpy + numba only), named
`<name>_<hash12>.py`, where the hash covers the network's fingerprint, the
template and code-generator sources and the symnet version.
"""
from __future__ import annotations

from ..fileio import write_atomic

import hashlib
import importlib.util
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import sympy as sp

from ..errors import SpecError

TEMPLATE = "mlp.py.jinja"
KERNEL_TEMPLATES = ("macros.jinja", "mlp.py.jinja")   # what kernels are rendered from (and hashed)
# Layers this size or smaller use plain loops instead of BLAS calls (call
# overhead dominates there); measured in benchmarks/bench_train_step.py.
SMALL_LAYER = 64 * 64
FASTMATH = ("nsz", "arcp", "contract", "reassoc")   # no nnan/ninf: inf/nan keep IEEE meaning


# ----------------------------------------------------------------- templates
def _template_files() -> dict[str, bytes]:
    """name -> bytes of the kernel templates (installed as package symnet.templates)."""
    try:
        from importlib.resources import files
        root = files("symnet.templates")
        entries = list(root.iterdir())
    except (ModuleNotFoundError, FileNotFoundError, TypeError):
        # A source checkout: templates/ lies beside the package.
        root = Path(__file__).resolve().parents[2] / "templates"
        entries = list(root.iterdir())
    out = {}
    for entry in sorted(entries, key=lambda e: e.name):
        if entry.name in KERNEL_TEMPLATES:
            out[entry.name] = entry.read_bytes()
    if set(out) != set(KERNEL_TEMPLATES):
        raise FileNotFoundError(f"symnet templates: {TEMPLATE} not found in {root}")
    return out


def _environment(templates: dict[str, bytes]):
    import jinja2
    loader = jinja2.DictLoader({k: v.decode("utf-8") for k, v in templates.items()})
    return jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined, trim_blocks=True,
                              lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)


def _codegen_sources() -> bytes:
    here = Path(__file__).resolve().parent
    return b"".join((here / f).read_bytes() for f in ("generate.py", "printer.py"))


def content_hash(net, templates: dict[str, bytes] | None = None) -> str:
    from .. import __version__
    templates = templates if templates is not None else _template_files()
    h = hashlib.sha256()
    for part in (net.fingerprint().encode(), __version__.encode(), _codegen_sources()):
        h.update(part)
        h.update(b"\0")
    for name, data in templates.items():
        h.update(name.encode() + b"\0" + data + b"\0")
    return h.hexdigest()


def template_hash(templates: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for name, data in templates.items():
        h.update(name.encode() + b"\0" + data + b"\0")
    return h.hexdigest()


# ---------------------------------------------------------- printed functions
@dataclass
class Function:
    """One small @njit function of printed math: name(args) -> expr."""
    name: str
    args: tuple[str, ...]
    doc: str
    lines: list[str] = field(default_factory=list)   # CSE assignments
    result: str = ""
    ops: int = 0


def _print_function(printer, name, args, expr, doc, where) -> Function:
    from sympy.printing.codeprinter import PrintMethodNotImplementedError
    expr = sp.Integer(expr) if isinstance(expr, int) else expr   # derived constants such as 0
    temps = sp.numbered_symbols("t", real=True)
    replacements, (reduced,) = sp.cse(expr, symbols=temps, optimizations=None)
    try:
        lines = [f"{sym} = {printer.doprint(value)}" for sym, value in replacements]
        result = printer.doprint(reduced)
    except PrintMethodNotImplementedError as exc:
        raise SpecError(f"{where}: cannot be compiled ({str(exc).splitlines()[0]})") from None
    ops = sum(sp.count_ops(v) for _, v in replacements) + sp.count_ops(reduced)
    return Function(name, args, doc, lines, result, int(ops))


class _Names:
    """Unique function names per distinct expression (act_tanh, act_custom1, ...)."""

    def __init__(self):
        self.by_key: dict[tuple, str] = {}
        self.used: set[str] = set()
        self.custom = 0

    def get(self, prefix, act_name, key):
        if key in self.by_key:
            return self.by_key[key], False
        if act_name == "custom":
            self.custom += 1
            base = f"{prefix}_custom{self.custom}"
        else:
            base = f"{prefix}_{act_name}"
        name, k = base, 1
        while name in self.used:
            k += 1
            name = f"{base}_{k}"
        self.used.add(name)
        self.by_key[key] = name
        return name, True


def _doc(expr) -> str:
    return sp.sstr(expr).replace("\\", "/").replace('"', "'")


# ------------------------------------------------------------------- context
def _context(net, derivation, templates) -> dict:
    from .. import __version__
    from ..derive.core import A, N_OUT, P, Y, Z
    from .printer import NumbaPrinter

    printer = NumbaPrinter({"dtype": net.dtype})
    x = sp.Symbol("x", real=True)
    out = derivation.output
    placed = list(net.placed)
    softmax_layer = placed[-1].layer.type == "softmax"
    dense = placed[:-1] if softmax_layer else placed
    for p in dense:
        if p.layer.type != "dense":
            raise SpecError(f"{p.where}: the kernel generator handles dense layers (and a final softmax) only")
    if len(net.input_shape) != 1:
        raise SpecError(f"input: the kernel generator needs a vector input, got shape {net.input_shape}")

    functions: list[Function] = []
    act_names, dact_names = _Names(), _Names()
    layers = []
    n_layers = len(dense)
    for idx, p in enumerate(dense):
        k = p.trainable_index
        is_output = idx == n_layers - 1
        n_in, n_out = p.in_shape[0], p.out_shape[0]
        prev = "X" if idx == 0 else f"A{idx}"
        layer = {"k": k, "where": p.where, "describe": p.layer.describe(), "n_in": n_in, "n_out": n_out,
                 "W": p.params["W"], "b": p.params["b"], "A_in": prev, "A": f"A{idx + 1}",
                 "D": f"D{idx + 1}", "G": f"G{idx + 1}", "D_in": f"D{idx}", "G_in": f"G{idx}",
                 "first": idx == 0, "output": is_output, "small": n_in * n_out <= SMALL_LAYER}
        if not is_output or out.kind == "elementwise":
            am = derivation.activations[p.position]
            name, new = act_names.get("act", am.name, ("act", sp.srepr(am.g)))
            if new:
                functions.append(_print_function(printer, name, ("x",), am.g,
                                                 f"activation {am.name}: g(x) = {_doc(am.g)}",
                                                 f"{p.where}: activation {p.layer.activation.describe()}"))
            layer["act"] = name
            layer["identity"] = am.g == x
            if not is_output:
                if am.dg_in_a is not None:
                    dexpr, key, how = am.dg_in_a, ("a", sp.srepr(am.dg_in_a)), "written in a = g(x)"
                else:
                    dexpr, key, how = am.dg, ("x", sp.srepr(am.dg)), "in x"
                dname, new = dact_names.get("dact", am.name, key)
                if new:
                    functions.append(_print_function(
                        printer, dname, ("x", "a"), dexpr,
                        f"activation {am.name}: g'(x) {how}, derived by SymPy: {_doc(dexpr)}",
                        f"{p.where}: the derivative of activation {p.layer.activation.describe()}"))
                layer["dact"] = dname
        layers.append(layer)

    n_out = dense[-1].out_shape[0]
    if out.kind == "elementwise":
        loss_fn = _print_function(printer, "loss_elem", ("z", "y"), out.loss_value,
                                  f"loss {net.loss.name}: per output element, stable form: {_doc(out.loss_value)}",
                                  f"loss {net.loss.name}")
        use_a = out.delta_in_a is not None and sp.count_ops(out.delta_in_a) <= sp.count_ops(out.delta)
        dexpr = (out.delta_in_a if use_a else out.delta).subs(N_OUT, n_out)
        delta_fn = _print_function(printer, "delta_elem", ("z", "a", "y"), dexpr,
                                   f"loss {net.loss.name}: delta = dloss/dz per element (1/n included), "
                                   f"by SymPy: {_doc(out.delta_in_a if use_a else out.delta)}", f"loss {net.loss.name}")
        functions += [loss_fn, delta_fn]
        if out.loss_value.free_symbols - {Z, Y} or dexpr.free_symbols - {Z, A, Y}:
            raise SpecError(f"loss {net.loss.name}: the kernel math uses unknown symbols")
    else:
        delta_fn = _print_function(printer, "delta_softmax", ("p", "y"), out.delta,
                                   f"loss {net.loss.name}: delta = dloss/dz of softmax cross entropy, "
                                   f"by SymPy: {_doc(out.delta)}", f"loss {net.loss.name}")
        functions.append(delta_fn)
        if out.delta.free_symbols - {P, Y}:
            raise SpecError(f"loss {net.loss.name}: the kernel math uses unknown symbols")

    for f in functions:   # names reaching the file are generated identifiers
        assert f.name.isidentifier(), f.name
    return {
        "version": __version__,
        "name": net.name,
        "fingerprint": net.fingerprint(),
        "templates_hash": template_hash(templates)[:12],
        "summary": net.summary().splitlines(),
        "dtype": net.dtype,
        "np_dtype": f"np.{net.dtype}",
        "fastmath": "{" + ", ".join(repr(f) for f in sorted(FASTMATH)) + "}",
        "functions": functions,
        "n_ops": sum(f.ops for f in functions),
        "layers": layers,
        "hidden": layers[:-1],
        "out": layers[-1],
        "uses_blas": not all(layer["small"] for layer in layers),
        "uses_small": any(layer["small"] for layer in layers),
        "kind": out.kind,
        "loss_name": net.loss.name,
        "n_in": net.input_shape[0],
        "n_out": n_out,
        "param_names": [name for p in dense for name in (p.params["W"], p.params["b"])],
        "param_shapes": [(name, shape) for p in dense for name, shape in
                         ((p.params["W"], p.param_shapes[p.params["W"]]), (p.params["b"], p.param_shapes[p.params["b"]]))],
    }


def render(net, derivation=None, templates: dict[str, bytes] | None = None) -> str:
    """The kernel module's source text (deterministic bytes for a given network)."""
    from ..derive import derive
    templates = templates if templates is not None else _template_files()
    derivation = derivation if derivation is not None else derive(net)
    ctx = _context(net, derivation, templates)
    return _environment(templates).get_template(TEMPLATE).render(**ctx)


# --------------------------------------------------------------- file & import
def default_cache_dir() -> Path:
    env = os.environ.get("SYMNET_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "symnet" / "kernels"


def kernel_path(net, out_dir=None, templates=None) -> Path:
    out_dir = Path(out_dir) if out_dir is not None else default_cache_dir()
    return out_dir / f"{net.name}_{content_hash(net, templates)[:12]}.py"


def load_module(path):
    """Import a generated file, registered in sys.modules before it runs (Numba's cache needs that)."""
    path = Path(path).resolve()
    name = "symnet_kernel_" + "".join(c if c.isalnum() or c == "_" else "_" for c in path.stem)
    mod = sys.modules.get(name)
    if mod is not None and getattr(mod, "path", None) == path:
        return mod
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    mod.path = path
    return mod


TIMINGS: dict[str, float] = {}   # seconds of the last generate(): derive, render, write, import


def write(net, out_dir=None, force: bool = False) -> Path:
    """Write the kernel file of `net` (skipped when a file of the same hash exists)."""
    templates = _template_files()
    path = kernel_path(net, out_dir, templates)
    if force or not path.exists():
        from ..derive import derive
        t0 = time.perf_counter()
        derivation = derive(net)
        t1 = time.perf_counter()
        text = render(net, derivation, templates)
        t2 = time.perf_counter()
        write_atomic(path, text)
        TIMINGS.update(derive=t1 - t0, render=t2 - t1, write=time.perf_counter() - t2)
    else:
        TIMINGS.update(derive=0.0, render=0.0, write=0.0)
    return path


def generate(net, out_dir=None):
    """Derive, print, render and import the kernel module of `net`.

    The module has `.path`, `forward(params, X)`, `loss(params, X, Y)`,
    `loss_and_grads(params, X, Y)` and `train_step(params, X, Y, lr)`.
    """
    path = write(net, out_dir)
    t0 = time.perf_counter()
    mod = load_module(path)
    TIMINGS["import"] = time.perf_counter() - t0
    return mod


def cli_generate(spec, output=None) -> str:
    """`symnet generate SPEC -o DIR`: write the kernel file; returns its path."""
    from ..spec import load
    net = load(spec)
    path = write(net, output if output is not None else "generated")
    return str(path)


def main_generate(args) -> int:
    """argparse entry: args.spec, args.output."""
    print(cli_generate(args.spec, getattr(args, "output", None)))
    return 0


__all__ = ["generate", "render", "write", "load_module", "kernel_path", "default_cache_dir",
           "cli_generate", "main_generate", "content_hash"]
