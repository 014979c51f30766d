"""generate(net): derive, print, render, write and import a Numba kernel module.

The element-wise math (activations, their derivatives, the loss and delta^(L))
comes from the Derivation and is printed by NumbaPrinter; the Jinja templates
in `symnet.templates` own signatures, loops, memory and BLAS calls. One
self-contained `.py` file per network (numpy + numba only), named
`<name>_<hash12>.py`, where the hash covers the network's fingerprint, the
template and code-generator sources and the symnet version.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import time
from pathlib import Path

from ..fileio import write_atomic
from .context import CONV_KINDS, context

TEMPLATE = "network.py.jinja"
KERNEL_TEMPLATES = ("macros.jinja", "network.py.jinja")   # what kernels are rendered from (and hashed)
CONV_TEMPLATE = "conv_ops.py.jinja"   # hashed too for networks with conv/pool/flatten layers


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
    wanted = KERNEL_TEMPLATES + (CONV_TEMPLATE,)
    out = {}
    for entry in sorted(entries, key=lambda e: e.name):
        if entry.name in wanted:
            out[entry.name] = entry.read_bytes()
    if set(out) != set(wanted):
        raise FileNotFoundError(f"symnet templates: {TEMPLATE} not found in {root}")
    return out


def _environment(templates: dict[str, bytes]):
    import jinja2
    loader = jinja2.DictLoader({k: v.decode("utf-8") for k, v in templates.items()})
    return jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined, trim_blocks=True,
                              lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)


def _uses_conv(net) -> bool:
    return any(p.layer.type in CONV_KINDS for p in net.placed)


def _used_templates(net, templates: dict[str, bytes]) -> dict[str, bytes]:
    """The templates a network's kernel is rendered from (conv's only where it has such layers)."""
    return {k: v for k, v in templates.items() if k != CONV_TEMPLATE or _uses_conv(net)}


def _codegen_sources(net) -> bytes:
    here = Path(__file__).resolve().parent
    names = ("generate.py", "printer.py", "context.py") + (("conv_ops.py",) if _uses_conv(net) else ())
    return b"".join((here / f).read_bytes() for f in names)


def content_hash(net, templates: dict[str, bytes] | None = None) -> str:
    from .. import __version__
    templates = templates if templates is not None else _template_files()
    h = hashlib.sha256()
    for part in (net.fingerprint().encode(), __version__.encode(), _codegen_sources(net)):
        h.update(part)
        h.update(b"\0")
    h.update(template_hash(_used_templates(net, templates)).encode())
    return h.hexdigest()


def template_hash(templates: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for name, data in templates.items():
        h.update(name.encode() + b"\0" + data + b"\0")
    return h.hexdigest()


def render(net, derivation=None, templates: dict[str, bytes] | None = None) -> str:
    """The kernel module's source text (deterministic bytes for a given network)."""
    from ..derive import derive
    templates = templates if templates is not None else _template_files()
    derivation = derivation if derivation is not None else derive(net)
    ctx = context(net, derivation, template_hash(_used_templates(net, templates)))
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
