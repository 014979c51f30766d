"""generate(net): derive, print, render, write and import a Numba kernel module.

The element-wise math (activations, their derivatives, the loss and delta^(L))
comes from the Derivation and is printed by NumbaPrinter; one emitter per layer
kind builds the kernel program (symnet.codegen.emitters, .program) and the Jinja
templates in `symnet.templates` print it. One `.py` file per network, named
`<name>_<hash12>.py`, where the hash is of the file's own text (and of the
symnet.runtime source it imports), so it cannot go stale; the default cache
folder is per Numba and NumPy version, and its index lets a warm start skip the
derivation when none of its inputs changed. `standalone=True` inlines the runtime.
The first conv network generated into the default cache folder on a machine starts
compiling symnet.runtime in a background process (runtime_link.precompile_in_background;
`python -m symnet.runtime.precompile` does it up-front); the two processes split the
runtime's kernels between them (symnet.runtime.claims).
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import sys
import time
from pathlib import Path

from ..fileio import write_atomic
from .context import context

TEMPLATE = "network.py.jinja"
KERNEL_TEMPLATES = ("kernels.jinja", "macros.jinja", "network.py.jinja")   # what kernels are rendered from


# ----------------------------------------------------------------- templates
def _template_files() -> dict[str, bytes]:
    """name -> bytes of the kernel templates (installed as package symnet.templates)."""
    from ..templating import template_files
    return template_files(KERNEL_TEMPLATES)


def runtime_text(standalone: bool = False, entries=(), calls=()) -> str:
    """What the generated module holds of symnet.runtime: import lines, or its source inlined."""
    from . import runtime_link
    return runtime_link.inline() if standalone else runtime_link.imports(entries, calls)


def render(net, derivation=None, templates: dict[str, bytes] | None = None, standalone: bool = False) -> str:
    """The kernel module's source text (deterministic bytes for a given network)."""
    from ..derive import derive
    from ..templating import environment
    templates = templates if templates is not None else _template_files()
    derivation = derivation if derivation is not None else derive(net)
    ctx = context(net, derivation, "")
    ctx["runtime"] = runtime_text(standalone, ctx["entries"], ctx["runtime_calls"])
    ctx["runtime_where"] = "symnet.runtime, inlined below (--standalone)" if standalone else "symnet.runtime"
    return environment(templates).get_template(TEMPLATE).render(**ctx)


def content_hash(text: str, standalone: bool = False) -> str:
    """The key of a kernel file: its own text and, unless standalone, the source of the
    runtime it imports (Numba's cache of a caller does not notice a changed callee).
    Nothing else can change what the file computes; the Numba and NumPy versions
    name the cache folder instead (kernel_path), so golden files keep their names."""
    from . import runtime_link
    h = hashlib.sha256(text.encode("utf-8"))
    if not standalone:
        for name, source in runtime_link.sources().items():
            h.update(b"\0" + name.encode() + b"\0" + source.encode("utf-8"))
    return h.hexdigest()


# --------------------------------------------------------------- file & import
def default_cache_dir() -> Path:
    env = os.environ.get("SYMNET_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "symnet" / "kernels"


def versioned_cache_dir() -> Path:
    """The default cache folder for this Numba and NumPy (their compiled code is not shared)."""
    import numba
    import numpy
    return default_cache_dir() / f"numba-{numba.__version__}_numpy-{numpy.__version__}"


def kernel_path(net, out_dir=None, templates=None, text=None, standalone=False) -> Path:
    """Where the kernel file of `net` lives: named by the network and the hash of its text."""
    out_dir = Path(out_dir) if out_dir is not None else versioned_cache_dir()
    text = text if text is not None else render(net, templates=templates, standalone=standalone)
    return out_dir / f"{net.name}_{content_hash(text, standalone)[:12]}.py"


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


@functools.lru_cache(maxsize=1)
def _sources_digest() -> bytes:
    """Every source that can change a kernel's text: symnet's own modules and templates, and
    the versions of the libraries that derive and print it."""
    import jinja2
    import sympy
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256(f"sympy {sympy.__version__} jinja2 {jinja2.__version__}".encode())
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    for name, data in _template_files().items():
        h.update(name.encode() + b"\0" + data + b"\0")
    return h.digest()


def _index_path(net, out_dir: Path, standalone: bool) -> Path:
    """The cache's note of which file a network's inputs gave (so that a warm start skips
    derive and render): keyed by the network and every input that can change the text."""
    key = hashlib.sha256(_sources_digest() + net.fingerprint().encode() + bytes([standalone])).hexdigest()
    return out_dir / "index" / f"{net.name}_{key[:24]}"


def write(net, out_dir=None, force: bool = False, standalone: bool = False) -> Path:
    """Write the kernel file of `net` (skipped when a file of the same text exists). In the
    default cache folder an index remembers which file the same inputs gave last time."""
    from ..derive import derive
    index = _index_path(net, versioned_cache_dir(), standalone) if out_dir is None and not force else None
    if index is not None and index.exists():
        path = index.parent.parent / index.read_text(encoding="utf-8").strip()
        if path.name and path.exists():
            TIMINGS.update(derive=0.0, render=0.0, write=0.0)
            return path
    t0 = time.perf_counter()
    derivation = derive(net)
    t1 = time.perf_counter()
    text = render(net, derivation, standalone=standalone)
    t2 = time.perf_counter()
    path = kernel_path(net, out_dir, text=text, standalone=standalone)
    if force or not path.exists():
        write_atomic(path, text)
    if index is not None:
        write_atomic(index, path.name)
    TIMINGS.update(derive=t1 - t0, render=t2 - t1, write=time.perf_counter() - t2)
    return path


def _python_entries(net) -> bool:
    """Whether the network's entry points call the shared runtime from Python (conv networks)."""
    from .context import CONV_KINDS, python_entries
    return python_entries(any(p.layer.type in CONV_KINDS for p in net.placed))


def generate(net, out_dir=None):
    """Derive, print, render and import the kernel module of `net`.

    The module has `.path`, `forward(params, X)`, `loss(params, X, Y)`,
    `loss_and_grads(params, X, Y)` and `train_step(params, X, Y, lr)`.
    """
    note = None
    if out_dir is None and _python_entries(net):   # the shared runtime, compiled once per machine
        from .runtime_link import precompile_in_background
        note = precompile_in_background(net.dtype, versioned_cache_dir())
        if note is not None:   # this process and the background split the runtime's kernels
            from ..runtime.precompile import share_with_background
            share_with_background(note)
    path = write(net, out_dir)
    if note is not None:   # the background takes this network's kernels first
        from ..runtime.precompile import tell_background
        tell_background(note, path)
    t0 = time.perf_counter()
    mod = load_module(path)
    TIMINGS["import"] = time.perf_counter() - t0
    return mod


def cli_generate(spec, output=None, standalone: bool = False) -> str:
    """`symnet generate SPEC -o DIR [--standalone]`: write the kernel file; returns its path."""
    from ..spec import load
    net = load(spec)
    path = write(net, output if output is not None else "generated", standalone=standalone)
    return str(path)


def main_generate(args) -> int:
    """argparse entry: args.spec, args.output."""
    print(cli_generate(args.spec, getattr(args, "output", None), getattr(args, "standalone", False)))
    return 0


__all__ = ["generate", "render", "write", "load_module", "kernel_path", "default_cache_dir",
           "cli_generate", "main_generate", "content_hash"]
