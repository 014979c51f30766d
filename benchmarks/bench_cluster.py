"""Scale-out on Dask: data-parallel throughput and sweep time, 1 vs 2 local workers.

    python benchmarks/bench_cluster.py                    # both parts
    python benchmarks/bench_cluster.py --only steps       # data-parallel throughput
    python benchmarks/bench_cluster.py --only sweep       # the 12-run sweep

Data-parallel: examples per second of training steps (gradients + Adam step, no
evaluation) on LeNet-5 (batch 512, 6000 synthetic 28x28 images) and the digits
MLP (batch 64), in this process alone (the kernel's default threads) and on
LocalClusters of 1 and 2 single-threaded worker processes, started and closed
as ``symnet train --workers N`` does (:func:`symnet.cluster.open_client`).
Both clusters stay up and their epochs alternate (1, 2, 2, 1, 1, 2, ...), so a
change in the machine's load hits both alike; each pair gives one 2 / 1 ratio,
printed with the load average, and the summary is the median over --repeats
pairs after one warm-up epoch each. Per step the benchmark also prints where the
time goes: the slowest worker's kernel call (wall, measured in the worker), the
rest of the step ("outside the kernels", wall), and the CPU time of this process
(client, scheduler and nannies) and of each worker beyond its kernel call.
"Kernel" is a worker's whole computation of its shard (row gather, kernel,
flat scaled gradients), timed in the worker; "outside the kernels" is each step's
wall time less its slowest shard's computation, summed: messages, waiting for a
core, and the calling process's own work (flattening, adding, the Adam step).
The sweep: 12 runs of the digits CNN (lr x batch_size x l2, 4 epochs each) on
1 and 2 workers, median of --sweep-repeats, cluster start-up excluded.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))


def lenet_case():
    from bench_epoch import lenet_case as case

    _, net, data, _, _ = case()
    return "LeNet-5, batch 512", net, data, 512


def mlp_case():
    import symnet
    from symnet.data import load_dataset

    net = symnet.load(ROOT / "examples" / "digits_mlp.toml")
    return "digits MLP, batch 64", net, load_dataset("digits", seed=0, dtype="float32"), 64


def epoch_rate(grads, params, opt, n, batch, rng):
    """Examples/s of one epoch of gradients + Adam steps, and its number of steps."""
    from symnet.data import iterate_minibatches

    t0 = time.perf_counter()
    steps = 0
    for idx in iterate_minibatches(n, batch, rng):
        _, g = grads(params, idx)
        opt.step({k: params[k] for k in g}, g)
        steps += 1
    return n / (time.perf_counter() - t0), steps


def _cpu() -> float:
    """CPU seconds of this process, all threads (getrusage: microseconds, not clock ticks)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Setup:
    """One LocalCluster, its DataParallel, its own parameters and optimiser, and
    the processes whose CPU time a step costs."""

    def __init__(self, workers, net, kernel, X, Y, params0):
        from symnet.cluster import DataParallel, open_client
        from symnet.optim import make_optimizer

        self.workers = workers
        self._cluster = open_client(workers, announce=False)   # as `symnet train --workers N` starts it
        self.client = self._cluster.__enter__()
        self.dp = DataParallel(self.client, net, kernel, X, Y, advise=False)
        self.params = {k: v.copy() for k, v in params0.items()}
        self.opt = make_optimizer("adam", 1e-4)
        self.rng = np.random.default_rng(0)
        self.n = len(X)

    def epoch(self, batch):
        """(ex/s, breakdown per step) of one epoch."""
        self.dp.busy_time()
        self.dp.shard_wall = 0.0
        c_workers = list(self.client.run(_cpu).values())
        c_me, c_main = _cpu(), time.thread_time()
        rate, steps = epoch_rate(self.dp.loss_and_grads, self.params, self.opt, self.n, batch, self.rng)
        c_me, c_main = _cpu() - c_me, time.thread_time() - c_main
        wall = self.n / rate
        busy = self.dp.busy_time()
        c_workers = [b - a for a, b in zip(c_workers, self.client.run(_cpu).values())]
        ms = 1e3 / steps
        return rate, {
            "step": wall * ms,
            "outside": (wall - self.dp.shard_wall) * ms,   # each step less its slowest shard's computation
            "kernel wall": [w * ms for _, w, _ in busy],
            "kernel cpu": [c * ms for _, _, c in busy],
            "client cpu": c_me * ms,
            "client main thread cpu": c_main * ms,
            "worker cpu beyond kernel": [(cw - c) * ms for cw, (_, _, c) in zip(c_workers, busy)],
        }

    def close(self):
        self.dp.close()
        self._cluster.__exit__(None, None, None)


def _line(workers, rate, b):
    return (f"    {workers} worker(s): {rate:,.0f} ex/s; step {b['step']:.2f} ms, outside the kernels "
            f"{b['outside']:.2f} ms; kernel per worker " + ", ".join(
                f"{w:.2f} ms wall / {c:.2f} ms CPU" for w, c in zip(b["kernel wall"], b["kernel cpu"]))
            + f"; CPU beyond kernels: this process {b['client cpu']:.2f} ms (main thread "
            f"{b['client main thread cpu']:.2f}), workers " + ", ".join(f"{c:.2f}" for c in b["worker cpu beyond kernel"])
            + " ms")


def bench_steps(repeats):
    import symnet

    rows = []
    for label, net, data, batch in (lenet_case(), mlp_case()):
        kernel = symnet.generate(net)
        X, Y = data.X_train, data.Y_train
        params0 = {k: np.ascontiguousarray(v, np.float32) for k, v in net.init_params(seed=0).items()}
        from symnet.optim import make_optimizer
        here = []
        for _ in range(3):
            params = {k: v.copy() for k, v in params0.items()}
            here.append(epoch_rate(lambda p, idx: kernel.loss_and_grads(p, X[idx], Y[idx]), params,
                                   make_optimizer("adam", 1e-4), len(X), batch, np.random.default_rng(0))[0])
        print(f"{label}: single process (default threads, {kernel.get_num_threads()}): "
              f"{np.median(here[1:]):,.0f} ex/s", flush=True)
        setups = {w: Setup(w, net, kernel, X, Y, params0) for w in (1, 2)}
        try:
            for s in setups.values():
                s.epoch(batch)   # warm-up
            rates, ratios, breakdown = {1: [], 2: []}, [], {1: [], 2: []}
            for r in range(repeats):
                load = os.getloadavg()[0]
                got = {}
                for w in ((1, 2) if r % 2 == 0 else (2, 1)):
                    got[w] = setups[w].epoch(batch)
                    rates[w].append(got[w][0])
                    breakdown[w].append(got[w][1])
                ratios.append(got[2][0] / got[1][0])
                print(f"  pair {r + 1} (load {load:.2f}): 2 / 1 workers = {ratios[-1]:.2f}x", flush=True)
                for w in (1, 2):
                    print(_line(w, *got[w]), flush=True)
        finally:
            for s in reversed(setups.values()):   # last started first: each restores the log level it found
                s.close()
        med = {w: {k: (np.median(np.array([b[k] for b in breakdown[w]]), axis=0)) for k in breakdown[w][0]}
               for w in (1, 2)}
        print(f"{label} medians over {repeats} pairs:", flush=True)
        for w in (1, 2):
            print(_line(w, float(np.median(rates[w])), med[w]), flush=True)
        print(f"{label}: 2 workers / 1 worker = {np.median(ratios):.2f}x (median of the pairs; "
              f"range {min(ratios):.2f}-{max(ratios):.2f}x)", flush=True)
        # A model, not a measurement: what the step would take with a core per process
        # and no other load, if every overhead lay on the step's path (none overlaps).
        t = {w: max(med[w]["kernel cpu"]) + max(med[w]["worker cpu beyond kernel"]) + med[w]["client cpu"]
             for w in (1, 2)}
        print(f"{label}: on idle cores, from the CPU times above (slowest shard + its worker's overhead + this "
              f"process, all serial): {t[1]:.2f} ms a step on 1 worker, {t[2]:.2f} ms on 2 -> "
              f"{t[1] / t[2]:.2f}x (a projection; the measured ratio is the line above)", flush=True)
        rows.append({"case": label, "single": float(np.median(here[1:])), "ratio": float(np.median(ratios)),
                     **{f"{w} worker(s)": float(np.median(rates[w])) for w in (1, 2)}})
    return rows


def bench_sweep(repeats):
    import symnet
    from symnet.cluster import open_client
    from symnet.sweep import sweep

    net = symnet.load(ROOT / "examples" / "digits_cnn.toml")
    grid = {"lr": [1e-3, 3e-3, 1e-2], "batch_size": [32, 64], "l2": [0.0, 1e-4]}
    options = {"epochs": 4}
    times = {}
    for workers in (1, 2):
        with open_client(workers, announce=False) as client:   # as `symnet sweep --workers N` does
            runs = []
            for r in range(repeats + 1):
                with tempfile.TemporaryDirectory() as tmp:
                    t0 = time.perf_counter()
                    sweep(net, "digits", grid, Path(tmp) / "s", options=options, client=client, progress=False)
                    if r:   # the first loads the kernel into the workers
                        runs.append(time.perf_counter() - t0)
            times[workers] = float(np.median(runs))
            print(f"12-run sweep on {workers} worker(s): {times[workers]:.2f} s (runs: "
                  + ", ".join(f"{t:.2f}" for t in runs) + ")", flush=True)
    print(f"sweep speed-up, 2 workers vs 1: {times[1] / times[2]:.2f}x", flush=True)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("steps", "sweep"))
    parser.add_argument("--repeats", type=int, default=6, help="timed pairs of epochs (1 and 2 workers)")
    parser.add_argument("--sweep-repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min); "
          f"cpus: {len(os.sched_getaffinity(0))}", flush=True)
    if args.only in (None, "steps"):
        bench_steps(args.repeats)
    if args.only in (None, "sweep"):
        bench_sweep(args.sweep_repeats)
    print(f"load average after: {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
