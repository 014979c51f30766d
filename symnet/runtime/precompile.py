"""Compile symnet.runtime ahead of the first network, once per machine (Numba's cache keeps it).

The runtime's kernels (convolution, pooling, dense linear algebra, optimiser updates)
are the same for every network; compiled lazily they make the first conv network's
first step slower (LeNet-5's reaches ~6 s of CPU of their compile; docs/performance.md).

    python -m symnet.runtime.precompile            # float32 and float64
    python -m symnet.runtime.precompile float32

Each kernel is called once on tiny arrays with the argument types the generated entry
points pass (C-contiguous arrays, int64 geometry, flat views for the element-wise and
optimiser kernels), so that exactly those signatures land in the cache. symnet.codegen.generate
also starts this in a background process the first time a conv network is generated on a
machine (runtime_link.precompile_in_background), and the two processes split the kernels
through claim files (symnet.runtime.claims): the background takes them in the reverse of
the order the network's first training step reaches them (generate() writes that order
once it has rendered the kernels: reach_order), the network's process in that order, and
neither compiles a kernel the other claimed (the network's process waits for it and loads
it from the cache). The kernels the network does not call come last, at low priority
(nice 19): its training, started by then, keeps both cores. Without an order (none came
within a second) calls()'s own order holds: LeNet-like networks' kernels first.
"""
from __future__ import annotations

import os
import re
import sys
import time

import numpy as np


def calls(dtype) -> list:
    """(kernel, arguments) of every runtime call a generated conv network makes, in dtype."""
    from . import arrays, conv, optim

    def f(*shape):
        return np.zeros(shape, dtype)

    x, W, b, z = f(1, 1, 4, 4), f(1, 1, 3, 3), f(1), f(1, 1, 2, 2)
    index = np.zeros((1, 1, 2, 2), np.int64)
    a, w, v = f(1, 2), f(2, 2), f(2)
    scale = np.dtype(dtype).type(0.25)
    hyper, penalty = np.ones(8), np.zeros(2)
    return [   # the reverse of a conv network's first step (see the module docstring)
        (conv.conv2d_backward_small, (x, W, z, 1, 0, 0, f(1, 1, 3, 3), f(1), f(1, 1, 4, 4))),
        (conv.maxpool2d_backward, (z, index, x)),
        (optim.fused_update, (v, v.copy(), f(0), f(0), 0, hyper, penalty)),
        (arrays.mul_inplace, (v, v.copy())),
        (arrays.dense_grads_small, (a, a, w, w.copy(), v, a.copy())),
        (arrays.dense_linear_small, (a, w, v, a.copy())),
        (conv.flatten_forward, (z,)),
        (conv.maxpool2d_forward, (x, 2, 2, z, index)),
        (conv.conv2d_forward_small, (x, W, b, 1, 0, 0, z)),
        # the rest (RARE): layers a LeNet-like first step does not reach
        (conv.conv2d_backward, (x, W, z, 1, 0, 0, f(1, 1, 3, 3), f(1), f(1, 1, 4, 4))),   # strided, padded
        (conv.conv2d_forward, (x, W, b, 1, 0, 0, z)),                                   # or large layers
        (conv.avgpool2d_scaled_backward, (z, 2, 2, scale, x)),
        (conv.avgpool2d_scaled_forward, (x, 2, 2, scale, z)),
        (arrays.mul_into, (a, a, a.copy())),     # dropout after a dense layer
        (arrays.mul_into, (z, z, z.copy())),     # and after a conv layer
        (conv.flatten_backward, (f(1, 4), z)),
        (arrays.dense_grads, (a, a, w, w.copy(), v, a.copy())),
        (arrays.dense_linear, (a, w, v, a.copy())),
    ]


RARE = "conv2d_backward"   # the first kernel of calls()'s rest: a background compiles it at low priority


def kernels() -> dict:
    """name -> dispatcher of every kernel calls() compiles."""
    return {kernel.py_func.__name__: kernel for kernel, _ in calls("float64")}


def share_with_background(note) -> None:
    """From now on this process compiles the runtime's kernels through the claims of the
    background compile that `note` (runtime_link.precompile_in_background) stands for."""
    from .claims import folder_for, share
    share(kernels(), folder_for(note))


def reach_order(text: str) -> list[str]:
    """The runtime kernels a generated conv network's training step reaches, in the order of
    their first calls: its _loss_and_grads, then fused_update ([] if it calls none)."""
    start = text.find("\ndef _loss_and_grads(")
    if start < 0:
        return []
    end = text.find("\ndef ", start + 1)
    names, seen = kernels(), []
    for match in re.finditer(r"\b(\w+)\(", text[start:end if end > 0 else len(text)]):
        if match.group(1) in names and match.group(1) not in seen:
            seen.append(match.group(1))
    if seen and "fused_update" not in seen:   # from Python, after the batch's shares
        seen.append("fused_update")
    return seen


def tell_background(note, kernel_file) -> None:
    """Give the background compile of `note` the network's kernels, the last reached first."""
    from pathlib import Path

    from .claims import Claims, folder_for
    try:
        text = Path(kernel_file).read_text(encoding="utf-8")
    except OSError:
        return
    Claims(folder_for(note)).set_order(reversed(reach_order(text)))


def compile_runtime(dtypes=("float32", "float64"), claims=None, nice_rest=False) -> float:
    """Compile (or load from Numba's cache) the runtime for `dtypes`; returns CPU seconds.
    With claims (symnet.runtime.claims.Claims), only the kernels no other process claimed;
    with nice_rest, the kernels from RARE on at the lowest priority (a background process)."""
    start = time.process_time()
    niced = False
    for dtype in dtypes:
        groups = {}   # name -> its calls, in order of first appearance
        for kernel, args in calls(dtype):
            groups.setdefault(kernel.py_func.__name__, []).append((kernel, args))
        left = list(groups)
        while left:
            first = [n for n in (claims.order() if claims is not None else []) if n in left]
            name = (first or left)[0]   # the network's kernels first, once it says which
            left.remove(name)
            if nice_rest and not niced and not first and (claims.order() or name == RARE) and hasattr(os, "nice"):
                os.nice(19)   # a background's rest yields the CPU to the network's training
                niced = True
            if claims is not None and not claims.claim(name):
                continue
            for kernel, args in groups[name]:
                kernel(*args)
            if claims is not None:
                claims.finish(name)
    return time.process_time() - start


def _await_order(claims, timeout=1.0) -> None:
    """A background's start: Numba's first compile initialises it (~0.5 s of CPU, needed
    anyway), meanwhile the network's process derives and renders its kernels and writes
    their order; then wait for that order (at most timeout seconds)."""
    from numba import njit
    njit(lambda x: x + 1)(1)
    deadline = time.monotonic() + timeout
    while not claims.order() and time.monotonic() < deadline:
        time.sleep(0.01)


# The background's command line (python -c BOOTSTRAP ARGS): main() without running symnet's
# __init__, which imports SymPy (0.3 s of CPU the background would spend before compiling);
# the modules keep their names, so that the kernels land under the names Numba's cache
# gives them in the network's process. argv[1]: the folder holding the symnet package.
BOOTSTRAP = ("import sys, types; package = types.ModuleType('symnet'); "
             "package.__path__ = [sys.argv.pop(1) + '/symnet']; sys.modules['symnet'] = package; "
             "from symnet.runtime.precompile import main; sys.exit(main(sys.argv[1:]))")


def main(argv=None) -> int:
    """python -m symnet.runtime.precompile [--note PATH] [DTYPE ...]: with --note, PATH
    (symnet.codegen.runtime_link's note that a background compile started) is rewritten
    with "done <CPU seconds of the process>" at the end, and the kernels are claimed in
    PATH.claims."""
    args = list(argv if argv is not None else sys.argv[1:])
    note = None
    if args[:1] == ["--note"]:
        note, args = args[1], args[2:]
    dtypes = tuple(args) or ("float32", "float64")
    claims = None
    if note is not None:   # a background compile: share the work with the network's process
        from .claims import Claims, folder_for
        claims = Claims(folder_for(note))
        _await_order(claims)
    seconds = compile_runtime(dtypes, claims, nice_rest=note is not None)
    if note is not None:   # all of this process's CPU, its start-up included
        from ..fileio import write_atomic
        write_atomic(note, f"done {time.process_time():.2f}\n")
    print(f"symnet.runtime compiled for {', '.join(dtypes)}: {seconds:.1f} s of CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
