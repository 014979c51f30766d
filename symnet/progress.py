"""Saying what a slow step does: one line on stderr before it starts and its
duration when it ends; on a terminal the elapsed seconds tick meanwhile.
Also the one place where commands get compiled kernels, so that demo, train,
check and attack share one kernel cache and say when they compile."""
from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def status(message: str, stream=None, enabled: bool = True):
    """`message…` now, `message… done (3.1 s)` at the end."""
    stream = stream if stream is not None else sys.stderr
    if not enabled:
        yield
        return
    tty = hasattr(stream, "isatty") and stream.isatty()
    start = time.monotonic()
    stop = threading.Event()
    stream.write(f"{message}…" + ("" if tty else "\n"))
    stream.flush()
    ticker = None
    if tty:
        def tick():
            while not stop.wait(0.5):
                stream.write(f"\r{message}… {time.monotonic() - start:.0f} s")
                stream.flush()
        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
    ok = False
    try:
        yield
        ok = True
    finally:
        stop.set()
        if ticker is not None:
            ticker.join()
        if ok:
            stream.write((f"\r{message}… " if tty else "  ") + f"done ({time.monotonic() - start:.1f} s)\n")
        elif tty:
            stream.write("\n")           # the error goes on a line of its own
        stream.flush()


def is_compiled(kernel_file) -> bool:
    """Whether Numba's on-disk cache holds compiled code for this kernel file."""
    path = Path(kernel_file)
    cache = path.parent / "__pycache__"
    return cache.is_dir() and any(cache.glob(f"{path.stem}.*.nbi"))


def compiled_kernel(net, out_dir=None, calls=("loss_and_grads", "forward_and_loss"), batch_size: int = 64,
                    show: bool = True):
    """Generate (into the shared kernel cache unless `out_dir`), import and
    JIT-compile `net`'s kernels, saying so when it takes a while. The memory a
    network needs is checked first (before the kernel module allocates)."""
    import numpy as np

    from . import memory
    from .budget import printing
    from .codegen.generate import default_cache_dir, generate, kernel_path, write
    from .errors import OutputError
    from .fileio import check_writable_dir

    memory.require(net, batch_size)
    try:
        check_writable_dir(out_dir if out_dir is not None else default_cache_dir(), "kernel folder")
    except OutputError as exc:
        if out_dir is not None:
            raise
        raise OutputError(f"kernel cache {default_cache_dir()} (SYMNET_CACHE) is not usable: {exc}; "
                          "set SYMNET_CACHE to a writable folder") from None
    path = kernel_path(net, out_dir)
    fresh = not is_compiled(path)
    what = (f"compiling kernels for {net.name} (first time; cached for later runs)" if fresh
            else f"loading the compiled kernels of {net.name}")
    with status(what, enabled=show and fresh):
        with printing(net):
            write(net, out_dir)
        kernel = generate(net, out_dir=out_dir)
        _warm_up(kernel, net, calls, np)
    return kernel


def _warm_up(kernel, net, calls, np):
    """Call each kernel function once on two zero rows: Numba compiles on first call."""
    params = net.init_params(seed=0)
    params.update(net.init_state())
    X = np.zeros((2, *net.input_shape), net.dtype)
    Y = np.zeros((2, *net.output_shape), net.dtype)
    extra = ()
    if getattr(kernel, "DROPOUT", ()):
        extra = (kernel.dropout_masks(np.random.default_rng(0), 2),)
    with np.errstate(all="ignore"):
        for name in calls:
            fn = getattr(kernel, name, None)
            if fn is not None:
                fn(params, X, Y, *extra) if name == "loss_and_grads" else fn(params, X, Y)
