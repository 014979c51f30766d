"""Scale-out on Dask: data-parallel throughput and sweep time, 1 vs 2 local workers.

    python benchmarks/bench_cluster.py                    # both parts
    python benchmarks/bench_cluster.py --only steps       # data-parallel throughput
    python benchmarks/bench_cluster.py --only sweep       # the 12-run sweep

Data-parallel: examples per second of training steps (gradients + Adam step, no
evaluation) on LeNet-5 (batch 512, 6000 synthetic 28x28 images) and the digits
MLP (batch 64), in this process alone (the kernel's default threads) and on a
LocalCluster of 1 and 2 single-threaded worker processes. Each figure is the
median over --repeats epochs after one warm-up epoch. The sweep: 12 runs of the
digits CNN (lr x batch_size x l2, 4 epochs each) on 1 and 2 workers, median of
--sweep-repeats, cluster start-up excluded.
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


def epoch_rate(grads, params, n, batch, repeats):
    """Median examples/s over `repeats` epochs of gradients + Adam steps."""
    from symnet.data import iterate_minibatches
    from symnet.optim import make_optimizer

    opt = make_optimizer("adam", 1e-4)
    rng = np.random.default_rng(0)
    rates = []
    for r in range(repeats + 1):
        t0 = time.perf_counter()
        for idx in iterate_minibatches(n, batch, rng):
            _, g = grads(params, idx)
            opt.step({k: params[k] for k in g}, g)
        if r:   # the first epoch warms up
            rates.append(n / (time.perf_counter() - t0))
    return float(np.median(rates))


def bench_steps(repeats):
    import symnet
    from distributed import Client, LocalCluster
    from symnet.cluster import DataParallel

    rows = []
    for label, net, data, batch in (lenet_case(), mlp_case()):
        kernel = symnet.generate(net)
        X, Y = data.X_train, data.Y_train
        params0 = {k: np.ascontiguousarray(v, np.float32) for k, v in net.init_params(seed=0).items()}
        here = epoch_rate(lambda p, idx: kernel.loss_and_grads(p, X[idx], Y[idx]), dict(params0), len(X), batch, repeats)
        row = {"case": label, "single process (default threads)": here}
        for workers in (1, 2):
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                              dashboard_address=":0") as cluster, Client(cluster) as client:
                dp = DataParallel(client, net, kernel, X, Y, advise=False)
                t0 = time.perf_counter()
                row[f"{workers} worker(s)"] = epoch_rate(dp.loss_and_grads, {k: v.copy() for k, v in params0.items()},
                                                         len(X), batch, repeats)
                wall = time.perf_counter() - t0
                busy = dp.busy_time()
                steps = busy[0][0]
                step, kernel_wall = wall / steps, max(w for _, w, _ in busy) / steps
                print(f"  {workers} worker(s): {steps} steps, {step * 1e3:.2f} ms a step, of which "
                      f"{(step - kernel_wall) * 1e3:.2f} ms outside the slowest worker's kernel; kernel per worker "
                      "and step: " + ", ".join(f"{w / n * 1e3:.2f} ms wall / {c / n * 1e3:.2f} ms CPU"
                                               for n, w, c in busy), flush=True)
        rows.append(row)
        print(f"{label}: " + ", ".join(f"{k} {v:,.0f} ex/s" for k, v in row.items() if k != "case")
              + f"; 2 workers / 1 worker = {row['2 worker(s)'] / row['1 worker(s)']:.2f}x", flush=True)
    return rows


def bench_sweep(repeats):
    import symnet
    from distributed import Client, LocalCluster
    from symnet.sweep import sweep

    net = symnet.load(ROOT / "examples" / "digits_cnn.toml")
    grid = {"lr": [1e-3, 3e-3, 1e-2], "batch_size": [32, 64], "l2": [0.0, 1e-4]}
    options = {"epochs": 4}
    times = {}
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=":0") as cluster, Client(cluster) as client:
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
    parser.add_argument("--repeats", type=int, default=5, help="timed epochs per data-parallel figure")
    parser.add_argument("--sweep-repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}; cpus: {len(os.sched_getaffinity(0))}", flush=True)
    if args.only in (None, "steps"):
        bench_steps(args.repeats)
    if args.only in (None, "sweep"):
        bench_sweep(args.sweep_repeats)
    print(f"load average after: {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
