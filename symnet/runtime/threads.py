"""Threads: a large batch is cut into row ranges run at once in Python threads (the
entry kernels release the GIL); each share's loss and gradients already carry the
whole batch's 1/m, so the shares are just added up."""
import os
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor

MIN_SHARE_FLOPS = 8e6   # a thread's hand-off costs ~20 us; smaller shares lose (LeNet-5, measured)


def cpus():
    """The CPUs this process may run on."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:   # no affinity calls (macOS, Windows)
        return list(range(os.cpu_count() or 1))


def default_threads():
    """SYMNET_NUM_THREADS, else the number of CPUs this process may run on."""
    return int(os.environ.get("SYMNET_NUM_THREADS") or 0) or len(cpus())


def checked_threads(n):
    """n as a thread count, or ValueError."""
    if int(n) < 1:
        raise ValueError(f"set_num_threads: n must be at least 1, got {n}")
    return int(n)


def shares(rows, flops_per_row, split, threads, min_flops=MIN_SHARE_FLOPS):
    """Row ranges [a, b) of a batch: one per thread, each worth at least min_flops."""
    n = min(threads, rows, int(rows * flops_per_row // min_flops)) if split else 1
    if n <= 1:
        return ((0, rows),)
    return tuple((t * rows // n, (t + 1) * rows // n) for t in range(n))


def _current_cpu_reader():
    try:
        import ctypes
        return ctypes.CDLL(None, use_errno=True).sched_getcpu
    except (OSError, AttributeError, TypeError):   # no C library to ask (Windows)
        return None


_current_cpu = _current_cpu_reader()
_pools = weakref.WeakSet()


class Pool:
    """A thread pool started on first need; `workers` lists its threads' native ids
    (one list object for the pool's life, so a module can export it)."""

    def __init__(self):
        self.workers = []
        self._executor = None
        self._pinned_for = None
        _pools.add(self)

    def forget(self):
        """In a forked child the pool's threads do not exist: start anew when needed."""
        self._executor, self._pinned_for = None, None
        self.workers.clear()

    def _register_worker(self):
        self.workers.append(threading.get_native_id())

    def _pin_workers(self):
        """Keep each worker on a CPU of its own, away from the calling thread's CPU: a woken
        thread otherwise starts on its waker's CPU, and a ~1 ms share ends before Linux
        moves it, so both shares would run on one core."""
        if _current_cpu is None or not hasattr(os, "sched_setaffinity"):
            return
        here = _current_cpu()
        if here == self._pinned_for:
            return
        others = [cpu for cpu in cpus() if cpu != here] or [here]
        for k, tid in enumerate(self.workers):
            try:
                os.sched_setaffinity(tid, {others[k % len(others)]})
            except OSError:
                return
        self._pinned_for = here

    def run(self, task, row_shares):
        """[task(a, b) for (a, b) in row_shares], the first share in this thread, the others in the pool."""
        if len(row_shares) == 1:
            return [task(*row_shares[0])]
        if len(self.workers) < len(row_shares) - 1:
            if self._executor is not None:
                self._executor.shutdown(wait=False)
            self.workers.clear()
            self._pinned_for = None
            self._executor = ThreadPoolExecutor(len(row_shares) - 1, thread_name_prefix="symnet",
                                                initializer=self._register_worker)
            for future in [self._executor.submit(time.sleep, 0.001) for _ in row_shares[1:]]:   # start them all
                future.result()
        self._pin_workers()
        futures = [self._executor.submit(task, a, b) for a, b in row_shares[1:]]
        first = task(*row_shares[0])
        return [first] + [f.result() for f in futures]


def _forget_pools():
    for pool in list(_pools):
        pool.forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools)
