"""Scale-out on Dask distributed: clusters, kernels on workers, data-parallel steps.

- :func:`open_client` starts a ``LocalCluster`` of single-threaded worker
  processes (``--workers N``) or connects to a running scheduler
  (``--scheduler ADDRESS``) and prints the dashboard's address.
- Kernels reach a worker as their file's text (:class:`KernelRef`): the worker
  imports the generated file where it already lies (same machine, shared
  folder) or writes the text into its own kernel cache first; Numba's on-disk
  cache then compiles each kernel at most once per machine. Compiled functions
  are never pickled.
- :class:`DataParallel` is one training step spread over the workers: the
  training split is scattered once; each step sends every worker one message
  (the parameters as one flat array, its rows' indices) straight from the
  calling thread (:class:`_Direct`), and every worker answers with one flat
  array: ``loss_and_grads`` of its rows, scaled by its share of the batch, so
  the sum is the whole batch's mean gradient. The optimiser step is applied
  once, by the caller. ``docs/cluster.md`` has what each piece costs.
- Clusters symnet starts run with less background work (:data:`QUIET`) and
  are closed at once, their workers killed (:func:`_stop_workers`).
"""
from __future__ import annotations

import asyncio
import sys
import time
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import SymnetError

EXTRA = "pip install 'symnet[cluster]'"
CONNECT_TIMEOUT_S = 10
# What an idle Dask cluster does in the background, slowed down for the clusters
# symnet starts: a worker's profiler samples every 10 ms, every server checks its
# event loop every 20 ms, nannies and workers read their memory every 100 ms. On
# 2 cores that took 26 ms of CPU a second from the client's process and 22 ms from
# each worker (2-6 ms with these values), CPU that a data-parallel step waits for.
QUIET = {
    "distributed.worker.profile.enabled": False,            # the dashboard's Profile page stays empty
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
}
# A run whose data-parallel step is not at least this much faster than the step
# in this process alone is told that scale-out does not pay.
PAYS_OFF = 1.1


class ClusterError(SymnetError):
    """The cluster cannot be used: Dask missing, scheduler unreachable, a worker lost."""


def distributed():
    """The ``distributed`` package, or a one-line error naming the extra."""
    try:
        import distributed as dd
    except ImportError:
        raise ClusterError(f"--workers/--scheduler need Dask distributed, which is not installed: {EXTRA}") from None
    return dd


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


# --------------------------------------------------------------------------
# Clusters


@contextmanager
def open_client(workers: int | None = None, scheduler: str | None = None, *, announce: bool = True,
                timeout: float | None = None):
    """A dask Client on a new LocalCluster of ``workers`` single-threaded processes,
    or on the scheduler at ``scheduler``; what it started is closed on exit."""
    if (workers is None) == (scheduler is None):
        raise ClusterError("give one of --workers N or --scheduler ADDRESS")
    dd = distributed()
    if scheduler is not None:
        try:
            client = dd.Client(scheduler, timeout=timeout or CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError, TypeError) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise ClusterError(f"--scheduler {scheduler}: cannot reach the Dask scheduler ({reason})") from None
        cluster = None
    else:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ClusterError(f"--workers {workers!r}: must be an integer >= 1")
        # One thread per worker: the kernels run single-threaded there (the
        # nanny also sets OMP/MKL/OpenBLAS threads to 1), so N workers use N cores.
        cluster = local_cluster(workers)
        client = dd.Client(cluster)
    try:
        if announce:
            n = len(client.scheduler_info(n_workers=-1)["workers"])
            print(f"dask: {n} worker(s) at {client.scheduler.address}; dashboard {client.dashboard_link}",
                  file=sys.stderr)
        yield client
    finally:
        if cluster is not None:
            _stop_workers(client, cluster)
        client.close()
        if cluster is not None:
            cluster.close()


def _stop_workers(client, cluster, timeout: float = 10):
    """Stop the workers of a cluster symnet started, at once.

    Closed the usual way, each nanny asks its worker to close and waits 4 s
    before it kills it with a "Worker process still alive" warning. 4 s were
    too short twice over on a loaded machine: a worker that had run a sweep's
    trainings spent 1.5-4 s in the interpreter's final clean-up (no Python
    frame left), and a task still running (a sweep interrupted with Ctrl-C)
    never lets the worker close. Their state is of no use any more (run folders
    and checkpoints are written, atomically, before a task returns; the actors
    of data-parallel training hold copies), so: the client lets go of its data
    and tasks, each nanny is told not to restart its worker (``close_gracefully``)
    and the worker process is killed."""
    from contextlib import suppress

    with suppress(Exception):
        client.run(_abandon_tasks)
    client.close()   # the scheduler forgets the scattered data: no "lost data" error

    async def kill_all():
        # A worker being restarted (after one was lost) is left to cluster.close().
        nannies = [n for n in cluster.workers.values()
                   if getattr(getattr(getattr(n, "process", None), "status", None), "name", None) == "running"]
        for nanny in nannies:
            nanny.close_gracefully(reason="symnet-close")
            await nanny.process.process.kill()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(n.status.name not in ("closed", "failed") for n in nannies):
            await asyncio.sleep(0.02)

    with suppress(Exception):   # e.g. another Dask version's nanny: cluster.close() does it the usual way
        cluster.sync(kill_all)


def _abandon_tasks():
    """On a worker (``client.run``): its running tasks are given up on purpose, so
    no warning for each one that is cancelled."""
    import logging

    logging.getLogger("distributed.worker.state_machine").setLevel(logging.ERROR)


def local_cluster(workers: int):
    """A LocalCluster of ``workers`` single-threaded processes with :data:`QUIET` settings."""
    import dask

    with dask.config.set(QUIET):   # read when the scheduler, nannies and workers start
        return distributed().LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                          dashboard_address=":0")


def add_cluster_arguments(parser):
    """--workers / --scheduler (mutually exclusive) on an argparse (sub)parser."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--workers", type=int, default=None, metavar="N",
                       help=f"run on a local Dask cluster of N single-threaded worker processes ({EXTRA})")
    group.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="run on the Dask cluster whose scheduler is at ADDRESS, e.g. tcp://host:8786")
    return parser


def cli_train(args) -> int:
    """``symnet train``, on a Dask cluster when --workers or --scheduler is given."""
    from .train import cli_train as local

    if args.workers is None and args.scheduler is None:
        return local(args)
    with open_client(args.workers, args.scheduler) as client:
        return local(args, client=client)


# --------------------------------------------------------------------------
# Kernels on workers


@dataclass(frozen=True)
class KernelRef:
    """A generated kernel module as a worker can rebuild it: its file name, the
    path it has on the caller's machine, and its text."""

    name: str
    path: str
    text: str

    @classmethod
    def of(cls, module) -> "KernelRef":
        path = Path(module.__file__)
        return cls(path.name, str(path), path.read_text(encoding="utf-8"))


_LOADED: dict[str, object] = {}   # file name -> module, per worker process


def load_kernel(ref: KernelRef, threads: int = 1):
    """The kernel module of ``ref`` in this process, imported at most once: from the
    caller's path when that file holds the same text (one machine, shared folder),
    else from this machine's kernel cache, written there first if missing."""
    from .codegen import default_cache_dir, load_module
    from .fileio import write_atomic

    mod = _LOADED.get(ref.name)
    if mod is None:
        path = Path(ref.path)
        if not _holds(path, ref.text):
            path = default_cache_dir() / ref.name
            if not _holds(path, ref.text):
                write_atomic(path, ref.text)
        mod = _LOADED[ref.name] = load_module(path)
    mod.set_num_threads(threads)
    return mod


def _holds(path: Path, text: str) -> bool:
    try:
        return path.read_text(encoding="utf-8") == text
    except OSError:
        return False


# --------------------------------------------------------------------------
# Data-parallel steps


class _Layout:
    """Where each trainable parameter lies in one flat, contiguous buffer: a step
    sends the parameters and returns the gradients as one array each (one frame
    per message, no dict of small arrays to serialise)."""

    def __init__(self, shapes: dict, dtype):
        self.names = list(shapes)
        self.shapes = [tuple(shapes[k]) for k in self.names]
        sizes = [int(np.prod(s, dtype=np.int64)) for s in self.shapes]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self.dtype = np.dtype(dtype)

    @property
    def size(self) -> int:
        return int(self.offsets[-1])

    def flatten(self, arrays: dict) -> np.ndarray:
        flat = np.empty(self.size, self.dtype)
        for k, a, b in zip(self.names, self.offsets[:-1], self.offsets[1:]):
            flat[a:b] = np.ravel(arrays[k])
        return flat

    def views(self, flat: np.ndarray) -> dict:
        """name -> C-contiguous view of ``flat`` in its parameter's shape."""
        return {k: flat[a:b].reshape(shape)
                for k, shape, a, b in zip(self.names, self.shapes, self.offsets[:-1], self.offsets[1:])}


def _keep_freed_memory():
    """Let glibc's malloc reuse freed blocks below 32 MiB instead of unmapping them.

    Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which also
    pins glibc's mmap threshold at 128 KiB: every batch gather, workspace and
    gradient buffer of a step is then a fresh mmap, first touched page by page
    (LeNet-5, 256 rows: 304 page faults and ~1 ms of a 14.5 ms step). Without
    glibc (macOS, musl) nothing is changed."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    return bool(mallopt(M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(M_TRIM_THRESHOLD, 64 << 20))


class _Shard:
    """A Dask actor on one worker: the kernel and the training split, kept there."""

    def __init__(self, ref: KernelRef, X, Y):
        _keep_freed_memory()
        self.kernel = load_kernel(ref, threads=1)
        self.X, self.Y = X, Y
        self.layout = _Layout(self.kernel.PARAM_SHAPES, self.kernel.DTYPE)
        # The first call loads the compiled code from Numba's cache (~1 s): here, not in step 1.
        params = self.layout.views(np.zeros(self.layout.size, self.layout.dtype))
        self.kernel.loss_and_grads(params, X[:2], Y[:2])
        self.busy = [0, 0.0, 0.0]   # steps, wall and CPU seconds spent in them (for benchmarks)

    async def loss_and_grads(self, flat, idx, batch_rows, masks=None):
        """(loss, flat gradients, wall seconds) of rows ``idx``, scaled by len(idx) / batch_rows.

        A coroutine, so it runs on the worker's event loop: no hand-off to and
        from the actor thread. The loop waits for the kernel, a few milliseconds."""
        return self.compute(flat, idx, batch_rows, masks)

    def compute(self, flat, idx, batch_rows, masks=None):
        t0, c0 = time.perf_counter(), time.thread_time()
        if not flat.flags.writeable:   # a read-only array is another Numba type: a compile
            flat = flat.copy()
        loss, grads = self.kernel.loss_and_grads(self.layout.views(flat), self.X[idx], self.Y[idx], masks)
        w = len(idx) / batch_rows
        out = np.empty(self.layout.size, self.layout.dtype)
        for k, a, b in zip(self.layout.names, self.layout.offsets[:-1], self.layout.offsets[1:]):
            np.multiply(grads[k].ravel(), out.dtype.type(w), out=out[a:b])
        wall = time.perf_counter() - t0
        self.busy[0] += 1
        self.busy[1] += wall
        self.busy[2] += time.thread_time() - c0
        return float(loss) * w, out, wall

    def busy_time(self, reset=True):
        """(steps, wall s, CPU s) spent computing since the last reset."""
        busy = tuple(self.busy)
        if reset:
            self.busy = [0, 0.0, 0.0]
        return busy


class _Direct:
    """Messages from this thread straight to the shards' workers.

    An actor call goes from the calling thread to the client's event-loop thread,
    through the scheduler (unless the client was made with
    ``direct_to_workers=True``) to the worker and back the same way: on
    LeNet-5 that cost the client's process 4-8 ms of CPU a step on a 2-core
    machine. Here this thread runs its own event loop with one Dask comm per
    worker (Dask's protocol and serialisation, its ``actor_execute`` handler on
    the worker), so a step is one write and one read per worker, no thread hop.
    """

    def __init__(self, client, shards, timeout):
        self.loop = asyncio.new_event_loop()
        self.keys = [s.key for s in shards]
        self.comms = []
        dd = distributed()

        async def connect():
            return await asyncio.gather(*(dd.comm.connect(s._address, timeout=timeout, **client.connection_args)
                                          for s in shards))
        try:
            self.comms = self.loop.run_until_complete(connect())
        except BaseException:
            self.close()
            raise
        # Closed when the DataParallel goes, even if training stopped with an error.
        self._finalizer = weakref.finalize(self, _Direct._close, self.loop, self.comms)

    def call(self, function, arguments):
        """The results of ``function(*args)`` on each shard (one args tuple per shard)."""
        return self.loop.run_until_complete(self._all(function, arguments))

    async def _all(self, function, arguments):
        return await asyncio.gather(*(self._one(comm, key, function, args)
                                      for comm, key, args in zip(self.comms, self.keys, arguments)))

    @staticmethod
    async def _one(comm, key, function, args):
        from distributed.core import send_recv
        from distributed.protocol import to_serialize

        # Arrays as frames of their own; numbers and None go in the msgpack header.
        args = [a if a is None or isinstance(a, (int, float)) else to_serialize(a) for a in args]
        reply = await send_recv(comm, op="actor_execute", actor=key, function=function, args=args, kwargs={})
        if reply["status"] != "OK":
            raise reply["exception"]
        return reply["result"]

    def close(self):
        if getattr(self, "_finalizer", None) is not None:
            self._finalizer()
        else:
            _Direct._close(self.loop, self.comms)

    @staticmethod
    def _close(loop, comms):
        for comm in comms:
            comm.abort()
        loop.close()


class DataParallel:
    """``loss_and_grads`` of a batch given by row indices, summed over the workers' shares.

    ``kernel`` is the caller's module (``symnet.generate(net)``); X and Y are the
    training split, scattered to every worker once. Batch norm is refused: its
    batch statistics couple the rows, so shards would normalise with their own
    statistics (ghost batch norm) and the result would differ from one process.
    ``out``: the run directory named in the message when a worker is lost.
    ``direct``: send the steps straight to the workers from this thread
    (:class:`_Direct`); False, or where the workers cannot be reached from here
    or this thread already runs an event loop (a notebook), the steps go as
    Dask actor calls through the client.
    """

    def __init__(self, client, net, kernel, X, Y, *, out=None, advise=True, direct=True):
        distributed()
        if net.state_shapes:
            raise ClusterError(f"network {net.name}: data-parallel training refuses batch norm "
                               f"({', '.join(sorted(net.state_shapes))}): each worker would normalise with its shard's "
                               "statistics instead of the whole batch's; train it without --workers/--scheduler")
        self.client, self.kernel, self.out = client, kernel, out
        self._X, self._Y = X, Y   # for advice(): the same step in this process
        self.workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
        if not self.workers:
            raise ClusterError(f"the Dask cluster at {client.scheduler.address} has no workers")
        self.layout = _Layout(kernel.PARAM_SHAPES, kernel.DTYPE)
        ref = KernelRef.of(kernel)
        Xf, Yf = client.scatter([X, Y], broadcast=True, hash=False)
        futures = [client.submit(_Shard, ref, Xf, Yf, actor=True, workers=[w], pure=False,
                                 allow_other_workers=False) for w in self.workers]
        with client.as_current():   # the actor handles call through this client, not the default one
            self.shards = [f.result() for f in futures]
        self.direct = None
        if direct and not _loop_running():
            try:
                self.direct = _Direct(client, self.shards, CONNECT_TIMEOUT_S)
            except (OSError, TimeoutError):
                self.direct = None   # e.g. workers behind a firewall: the scheduler relays
        self._advise = advise
        self.steps = 0
        self.shard_wall = 0.0   # seconds of the slowest shard's computation, summed over steps

    def loss_and_grads(self, params, idx, masks=None):
        """(mean loss, mean gradients) over rows ``idx`` of the training split."""
        if self._advise:
            self._advise = False
            self.advice(params, idx, masks)
        parts = np.array_split(np.asarray(idx), len(self.shards))
        bounds = np.cumsum([0] + [len(p) for p in parts])
        rows = len(idx)
        flat = self.layout.flatten(params)
        calls = [(shard, (flat, part, rows, None if masks is None else [m[a:b] for m in masks]))
                 for shard, part, a, b in zip(self.shards, parts, bounds[:-1], bounds[1:])]
        try:
            if self.direct is not None:
                results = self.direct.call("loss_and_grads", [args for _, args in calls if len(args[1])])
            else:
                futures = [shard.loss_and_grads(*args) for shard, args in calls if len(args[1])]
                results = [f.result() for f in futures]
        except SymnetError:
            raise
        except Exception as exc:   # a worker died or the connection broke
            raise self._lost(exc) from None
        self.steps += 1
        self.shard_wall += max(r[2] for r in results)   # the step waited for its slowest shard
        loss, total, _ = results[0]
        if not total.flags.writeable:
            total = total.copy()
        for more_loss, more, _ in results[1:]:
            loss += more_loss
            total += more
        return loss, self.layout.views(total)

    def close(self):
        """Close the direct connections (the actors go with their futures)."""
        if self.direct is not None:
            self.direct.close()
            self.direct = None

    def busy_time(self):
        """Per worker (steps, wall s, CPU s) spent computing since the last call."""
        return [shard.busy_time().result() for shard in self.shards]

    def _lost(self, exc) -> ClusterError:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        text = f"data-parallel training stopped after {self.steps} step(s): a Dask worker was lost ({reason}); "
        ckpt = None if self.out is None else Path(self.out) / "checkpoint.npz"
        if ckpt is not None and ckpt.is_file():
            from .runs import load_checkpoint
            epoch = load_checkpoint(self.out).epoch
            text += (f"{ckpt} holds epoch {epoch}: rerun the same command with --resume "
                     f"(--out {self.out}) to continue from there")
        elif self.out is not None:
            text += f"no epoch had finished, so {self.out} has no checkpoint yet: rerun the command"
        else:
            text += "no run directory was given: rerun with --out DIR to keep a checkpoint per epoch"
        return ClusterError(text)

    def advice(self, params, idx, masks=None, repeats=3) -> str:
        """Time this batch's step here alone and on the cluster; print whether scale-out pays."""
        def median(f):
            f()
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                f()
                times.append(time.perf_counter() - t0)
            return float(np.median(times))

        self._advise = False
        local = median(lambda: self.kernel.loss_and_grads(params, self._X[idx], self._Y[idx], masks))
        dist = median(lambda: self.loss_and_grads(params, idx, masks))
        self.steps, self.shard_wall = 0, 0.0
        speed = local / dist
        line = (f"data-parallel: {len(self.shards)} worker(s), one step of {len(idx)} rows takes "
                f"{dist * 1e3:.2f} ms vs {local * 1e3:.2f} ms in this process alone ({speed:.2f}x)")
        if speed < PAYS_OFF:
            line += ("; scale-out does not pay for this network and batch size (the step is too small "
                     "for the communication it costs): train without --workers, or use a larger batch")
        print(line, file=sys.stderr)
        return line
