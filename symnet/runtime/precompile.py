"""Compile symnet.runtime ahead of the first network, once per machine (Numba's cache keeps it).

The runtime's kernels (convolution, pooling, dense linear algebra, optimiser updates)
are the same for every network; compiled lazily they make the first conv network's
first step ~6 s slower (LeNet-5: 8.5 s of CPU instead of 2.3 s; docs/performance.md).

    python -m symnet.runtime.precompile            # float32 and float64
    python -m symnet.runtime.precompile float32

Each kernel is called once on tiny arrays with the argument types the generated entry
points pass (C-contiguous arrays, int64 geometry, flat views for the element-wise and
optimiser kernels), so that exactly those signatures land in the cache. symnet.codegen.generate
also starts this in a background process the first time a conv network is generated on a
machine (runtime_link.precompile_in_background): the kernels a first training step reaches
last come first, so that the two processes compile different kernels and the network's
process loads the background's from the cache when it gets there.
"""
from __future__ import annotations

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
    return [   # backward first: a network's first step needs these last (see the module docstring)
        (optim.fused_update, (v, v.copy(), f(0), f(0), 0, hyper, penalty)),
        (conv.conv2d_backward, (x, W, z, 1, 0, 0, f(1, 1, 3, 3), f(1), f(1, 1, 4, 4))),
        (conv.maxpool2d_backward, (z, index, x)),
        (conv.avgpool2d_scaled_backward, (z, 2, 2, scale, x)),
        (conv.flatten_backward, (f(1, 4), z)),
        (arrays.mul_inplace, (v, v.copy())),
        (arrays.dense_grads_small, (a, a, w, w.copy(), v, a.copy())),
        (arrays.dense_grads, (a, a, w, w.copy(), v, a.copy())),
        (arrays.mul_into, (a, a, a.copy())),     # dropout after a dense layer
        (arrays.mul_into, (z, z, z.copy())),     # and after a conv layer
        (arrays.dense_linear_small, (a, w, v, a.copy())),
        (arrays.dense_linear, (a, w, v, a.copy())),
        (conv.flatten_forward, (z,)),
        (conv.avgpool2d_scaled_forward, (x, 2, 2, scale, z)),
        (conv.maxpool2d_forward, (x, 2, 2, z, index)),
        (conv.conv2d_forward, (x, W, b, 1, 0, 0, z)),
    ]


def compile_runtime(dtypes=("float32", "float64")) -> float:
    """Compile (or load from Numba's cache) the runtime for `dtypes`; returns CPU seconds."""
    start = time.process_time()
    for dtype in dtypes:
        for kernel, args in calls(dtype):
            kernel(*args)
    return time.process_time() - start


def main(argv=None) -> int:
    """python -m symnet.runtime.precompile [--note PATH] [DTYPE ...]: with --note, PATH
    (symnet.codegen.runtime_link's note that a background compile started) is rewritten
    with "done <CPU seconds>" at the end."""
    args = list(argv if argv is not None else sys.argv[1:])
    note = None
    if args[:1] == ["--note"]:
        note, args = args[1], args[2:]
    dtypes = tuple(args) or ("float32", "float64")
    seconds = compile_runtime(dtypes)
    if note is not None:
        from ..fileio import write_atomic
        write_atomic(note, f"done {seconds:.2f}\n")
    print(f"symnet.runtime compiled for {', '.join(dtypes)}: {seconds:.1f} s of CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
