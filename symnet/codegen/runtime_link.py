"""How a generated module reaches symnet.runtime: import lines naming what it uses
(the default: compiled once per machine, shared by every network), or the runtime's
source inlined (`symnet generate --standalone`: one file needing only numpy and numba)."""
from __future__ import annotations

import ast
import functools
import hashlib
import os
import subprocess
import sys
from pathlib import Path

from .program import Call, flat

# What every generated module uses of the runtime besides its kernels: the Python API.
API = {"api": ("NetworkAPI",)}
RUNTIME = Path(__file__).resolve().parents[1] / "runtime"


@functools.lru_cache(maxsize=None)
def _module_names(module: str) -> frozenset[str]:
    """The public names module defines itself (not those it imports from a sibling)."""
    tree = ast.parse((RUNTIME / f"{module}.py").read_text(encoding="utf-8"))
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
    return frozenset(name for name in names if not name.startswith("_"))


def imports(entries, kernels_called=()) -> str:
    """`from symnet.runtime.X import ...` lines for the names the entries and the API use."""
    called = {s.fn for e in entries for s in flat(e.body) if isinstance(s, Call)} | set(kernels_called)
    lines = []
    from ..runtime import MODULES
    for module in MODULES:
        names = set(API.get(module, ())) | (called & _module_names(module))
        if names:
            lines.append(f"from symnet.runtime.{module} import {', '.join(sorted(names))}")
    return "\n".join(lines)


def sources() -> dict[str, str]:
    """module name -> source text of the runtime (what a kernel file's key must cover)."""
    from ..runtime import MODULES
    return {m: (RUNTIME / f"{m}.py").read_text(encoding="utf-8") for m in MODULES}


def inline() -> str:
    """The runtime's modules as one block of source: their imports hoisted and merged,
    module docstrings kept as comments."""
    hoisted, bodies = [], []
    for module, text in sources().items():
        tree = ast.parse(text)
        lines = text.splitlines()
        skip = set()
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                skip.update(range(node.lineno - 1, node.end_lineno))
                line = "\n".join(lines[node.lineno - 1:node.end_lineno])
                sibling = isinstance(node, ast.ImportFrom) and node.level == 1   # inlined above it already
                if not sibling and line not in hoisted:
                    hoisted.append(line)
        doc = ast.get_docstring(tree)
        first = tree.body[0]
        if doc is not None:
            skip.update(range(first.lineno - 1, first.end_lineno))
        body = "\n".join(line for k, line in enumerate(lines) if k not in skip).strip("\n")
        comment = "\n".join(f"# {line}".rstrip() for line in (doc or "").splitlines())
        bodies.append(f"# ==== symnet.runtime.{module} (inlined by --standalone)\n{comment}\n{body}")
    return "\n".join(hoisted) + "\n\n\n" + "\n\n\n".join(bodies)


def precompile_in_background(dtype: str, cache_dir) -> Path | None:
    """Start compiling the runtime for `dtype` in a background process (python -m
    symnet.runtime.precompile), the first time on this machine: it runs on another core
    while this process derives the network and compiles its own kernels, and the
    runtime kernels this process reaches later load from Numba's cache instead of
    compiling here. Once per runtime source, Numba cache folder and dtype: a note in
    cache_dir/runtime says it started (and, when it ends, "done <CPU seconds>").
    Returns the note's path if a process was started; SYMNET_PRECOMPILE=0 turns it off."""
    if os.environ.get("SYMNET_PRECOMPILE", "1") == "0":
        return None
    import numba
    key = hashlib.sha256("\0".join([dtype, numba.__version__, os.environ.get("NUMBA_CACHE_DIR", "")]
                                   + list(sources().values())).encode("utf-8")).hexdigest()
    note = Path(cache_dir) / "runtime" / f"{dtype}_{key[:16]}"
    try:
        note.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(note, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))   # one process starts it
    except OSError:   # started before (or the folder is not writable): compile lazily as usual
        return None
    here = str(RUNTIME.parents[1])   # the same symnet as this process's, wherever it was imported from
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")])))
    try:
        from ..runtime.precompile import BOOTSTRAP   # python -m symnet.runtime.precompile, lighter
        subprocess.Popen([sys.executable, "-c", BOOTSTRAP, here, "--note", str(note), dtype],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env=env, start_new_session=True)
    except OSError:   # no interpreter to start (embedded Python): this process compiles lazily
        return None
    return note


__all__ = ["imports", "inline", "sources", "precompile_in_background"]
