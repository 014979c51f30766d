"""Hyper-parameter sweeps: one training per configuration, as Dask tasks.

``symnet sweep SPEC --grid lr=1e-3,3e-3 --grid batch_size=32,64 --out runs/NAME``
trains every configuration of the grid (or ``--random N`` of them, drawn with
``--seed``) and writes::

    runs/NAME/sweep.json       the grid and the options shared by every run
    runs/NAME/<run>/           the run folder `symnet train --out` writes, plus run.json
    runs/NAME/results.csv      one row per run: configuration, final and best
    runs/NAME/results.json     validation metrics, test accuracy, time; and the best run
    runs/NAME/validation.png   best validation accuracy against each swept parameter

Runs are Dask tasks (``--workers N`` / ``--scheduler ADDRESS``, see
:mod:`symnet.cluster`); a task whose worker dies is run again elsewhere by
Dask, resuming from the run's last checkpoint. Without a cluster the runs go
one after another in this process. ``--resume`` skips finished runs (those
with a run.json).
"""
from __future__ import annotations

import csv
import io
import json
import math
import socket
import sys
import time
from pathlib import Path

import numpy as np

from .errors import SymnetError
from .fileio import write_atomic

SWEEP = "sweep.json"
RUN = "run.json"
RESULTS = "results"
PLOT = "validation.png"

# Options a grid may sweep: name -> type (units<l> / filters<l> change layer l's width).
OPTIONS = {"lr": float, "batch_size": int, "epochs": int, "optimizer": str, "l2": float, "l1": float,
           "max_norm": float, "early_stopping": int, "schedule": str, "init": str, "seed": int,
           "dropout": float}
WIDTHS = {"units": "dense", "filters": "conv2d"}
METRICS = ("final_val_loss", "final_val_acc", "best_val_loss", "best_val_acc", "best_epoch",
           "test_accuracy", "epochs_run", "time_s")


class SweepError(SymnetError):
    """A sweep's grid or run folder is unusable."""


# --------------------------------------------------------------------------
# Grid


def parse_grid(items, net) -> dict:
    """``["lr=1e-3,3e-3", "batch_size=32,64"]`` -> {"lr": [0.001, 0.003], "batch_size": [32, 64]}."""
    grid = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key or not values.strip():
            raise SweepError(f"--grid {item!r}: write KEY=V1,V2,... (e.g. lr=1e-3,3e-3)")
        kind = _kind(key, net, item)
        parsed = []
        for text in values.split(","):
            text = text.strip()
            try:
                value = kind(text)
            except ValueError:
                raise SweepError(f"--grid {item!r}: {text!r} is not a{'n' if kind is int else ''} "
                                 f"{kind.__name__} value for {key}") from None
            if isinstance(value, float) and not math.isfinite(value):
                raise SweepError(f"--grid {item!r}: {text!r} is not a finite number")
            if value not in parsed:
                parsed.append(value)
        if key in grid:
            raise SweepError(f"--grid {item!r}: {key} is swept twice")
        grid[key] = parsed
    if not grid:
        raise SweepError("a sweep needs at least one --grid KEY=V1,V2,...")
    return grid


def _kind(key, net, item):
    if key in OPTIONS:
        return OPTIONS[key]
    for prefix, layer_type in WIDTHS.items():
        number = key[len(prefix):]
        if key.startswith(prefix) and number.isdigit():
            l = int(number)
            if not 1 <= l <= len(net.layers) or net.layers[l - 1].type != layer_type:
                raise SweepError(f"--grid {item!r}: layer {l} of {net.name} is not a {layer_type} layer")
            if all(layer.type != "dense" for layer in net.layers[l:]):
                raise SweepError(f"--grid {item!r}: layer {l} is {net.name}'s output layer; the data fix its width")
            return int
    raise SweepError(f"--grid {item!r}: unknown key {key!r} (valid: {', '.join(OPTIONS)}, "
                     "units<l>, filters<l>)")


def configurations(grid: dict, random: int | None = None, seed: int = 0) -> list[dict]:
    """Every point of the grid, or ``random`` of them drawn without replacement."""
    from sklearn.model_selection import ParameterGrid, ParameterSampler

    points = list(ParameterGrid(grid))
    if random is not None:
        if isinstance(random, bool) or not isinstance(random, int) or random < 1:
            raise SweepError(f"--random {random!r}: must be an integer >= 1")
        points = list(ParameterSampler(grid, n_iter=min(random, len(points)), random_state=seed))
    return [{k: c[k] for k in grid} for c in points]   # the grid's key order


def run_name(index: int, config: dict) -> str:
    return f"run{index:03d}_" + "_".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                         for k, v in config.items())


# --------------------------------------------------------------------------
# One run (a Dask task, or a call in this process)


def network_for(spec: dict, config: dict, options: dict):
    """The network of a configuration: the spec with its widths, plus its dropout."""
    from .spec import from_dict
    from .train import with_dropout

    spec = json.loads(json.dumps(spec))
    for key, value in config.items():
        for prefix in WIDTHS:
            if key.startswith(prefix) and key[len(prefix):].isdigit():
                spec["layers"][int(key[len(prefix):]) - 1][prefix] = value
    return with_dropout(from_dict(spec), float({**options, **config}.get("dropout") or 0.0))


def train_options(options: dict, config: dict) -> dict:
    """symnet.train's keyword arguments of a configuration."""
    merged = {**options, **{k: v for k, v in config.items() if k in OPTIONS}}
    merged.pop("dropout", None)   # a layer of the network (network_for), not a train() option
    return merged


def run_one(spec: dict, data, kernel, options: dict, config: dict, run_dir: str) -> dict:
    """Train one configuration into ``run_dir`` and return its results row.

    ``kernel`` is a module or a :class:`symnet.cluster.KernelRef` (on a worker).
    A run folder with a checkpoint but no run.json (its worker died) resumes.
    A run that fails (a loss that became nan) gets a row with its error."""
    from .runs import write_json
    from .train import train

    t0 = time.perf_counter()
    if not hasattr(kernel, "loss_and_grads"):
        from .cluster import load_kernel
        kernel = load_kernel(kernel, threads=1)
    out = Path(run_dir)
    resume = (out / "checkpoint.npz").is_file()
    try:
        result = train(network_for(spec, config, options), data, kernel=kernel, out=out, resume=resume,
                       progress=False, **train_options(options, config))
    except SymnetError as exc:
        row = {"run": out.name, **config, **{k: None for k in METRICS},
               "time_s": time.perf_counter() - t0, "error": " ".join(str(exc).split())}
        write_json(out / RUN, row)
        return row
    h = result.history
    val_loss = [v for v in h["val_loss"] if v is not None]
    val_acc = [v for v in h["val_acc"] if v is not None]
    row = {"run": out.name, **config,
           "final_val_loss": h["val_loss"][-1], "final_val_acc": h["val_acc"][-1],
           "best_val_loss": min(val_loss), "best_val_acc": max(val_acc),
           "best_epoch": int(np.argmin(h["val_loss"])) + 1 if val_loss else None,
           "test_accuracy": result.test_accuracy, "epochs_run": result.epochs_run,
           "time_s": time.perf_counter() - t0, "resumed": resume, "host": socket.gethostname(), "error": None}
    write_json(out / RUN, row)
    return row


# --------------------------------------------------------------------------
# The sweep


def sweep(net, data_name: str, grid: dict, out, *, options: dict | None = None, random: int | None = None,
          seed: int = 0, resume: bool = False, client=None, progress: bool = True) -> dict:
    """Run every configuration; write the results table and plot; return
    {"rows": [...], "best": row, "table": path}. ``options`` are symnet.train's
    keyword arguments shared by every run (``lr``, ``epochs``, ...)."""
    from .runs import write_json

    out = Path(out)
    options = dict(options or {})
    options.setdefault("seed", seed)
    configs = configurations(grid, random, seed)
    spec = net.to_spec()
    header = {"network": spec, "data": data_name, "grid": grid, "random": random, "seed": seed,
              "options": options, "runs": [run_name(i, c) for i, c in enumerate(configs)]}
    _check_folder(out, header, resume)
    write_json(out / SWEEP, header)

    rows, pending = {}, []
    for i, config in enumerate(configs):
        name = run_name(i, config)
        done = out / name / RUN
        if resume and done.is_file():
            rows[name] = json.loads(done.read_text(encoding="utf-8"))
        else:
            pending.append((name, config))
    if progress:
        print(f"sweep: {len(configs)} configuration(s), {len(rows)} finished before, {len(pending)} to run", file=sys.stderr)

    t0 = time.perf_counter()
    kernels, datasets = {}, {}
    tasks = []
    for name, config in pending:
        run_net = network_for(spec, config, options)
        seed_of = int(train_options(options, config).get("seed", 0))
        if seed_of not in datasets:
            datasets[seed_of] = _load_data(data_name, run_net, seed_of, client)
        fp = run_net.fingerprint()
        if fp not in kernels:
            kernels[fp] = _kernel(run_net, datasets[seed_of], client)
        tasks.append((name, config, kernels[fp], datasets[seed_of]))

    def report(row):
        rows[row["run"]] = row
        if progress:
            conf = ", ".join(f"{k}={row[k]}" for k in grid)
            what = (f"failed: {row['error']}" if row.get("error") else
                    f"best val acc {row['best_val_acc']:.3f}, val loss {row['best_val_loss']:.4f}")
            print(f"[{len(rows)}/{len(configs)}] {conf}: {what} ({row['time_s']:.1f} s)", file=sys.stderr)

    if client is None:
        for name, config, kernel, data in tasks:
            report(run_one(spec, data, kernel, options, config, str(out / name)))
    else:
        from .cluster import distributed
        futures = [client.submit(run_one, spec, data, kernel, options, config, str(out / name),
                                 key=f"symnet-run-{name}-{id(tasks):x}", pure=False)
                   for name, config, kernel, data in tasks]
        for future in distributed().as_completed(futures):
            report(future.result())
    elapsed = time.perf_counter() - t0

    ordered = [rows[run_name(i, c)] for i, c in enumerate(configs)]
    finished = [r for r in ordered if not r.get("error")]
    if not finished:
        raise SweepError(f"{out}: every run failed; the first: {ordered[0]['run']}: {ordered[0]['error']}")
    best = max(finished, key=lambda r: (r["best_val_acc"], -r["best_val_loss"]))
    table = write_table(out, ordered, list(grid), best, elapsed)
    plot_sweep(out / PLOT, finished, grid, best)
    if progress:
        conf = ", ".join(f"{k}={best[k]}" for k in grid)
        print(f"sweep: {len(pending)} run(s) in {elapsed:.1f} s; best configuration: {conf} "
              f"(run {best['run']}: best val acc {best['best_val_acc']:.3f}, val loss {best['best_val_loss']:.4f}); "
              f"table {table}, plot {out / PLOT}", file=sys.stderr)
    return {"rows": ordered, "best": best, "table": table, "elapsed_s": elapsed}


def _check_folder(out: Path, header: dict, resume: bool):
    old = out / SWEEP
    if not old.is_file():
        return
    if not resume:
        raise SweepError(f"{out} already holds a sweep: pass --resume to continue it, or choose another --out")
    before = json.loads(old.read_text(encoding="utf-8"))
    now = json.loads(json.dumps(header))
    for key in ("network", "data", "grid", "random", "seed", "options"):
        if before.get(key) != now.get(key):
            raise SweepError(f"{out}: --resume with a different {key} than the sweep it holds "
                             f"({before.get(key)!r} before, {now.get(key)!r} now)")


def _load_data(name, net, seed, client):
    from .data import load_dataset

    data = load_dataset(name, seed=seed, image=len(net.input_shape) == 3,
                        binary_single_output=tuple(net.output_shape) == (1,), dtype=net.dtype)
    if len(data.X_val) == 0:
        raise SweepError(f"data {data.name}: a sweep compares validation metrics, but the data set has no "
                         "validation split")
    # Scattered once; every run of this seed reads the workers' copy.
    return data if client is None else client.scatter(data, broadcast=True, hash=False)


def _kernel(net, data, client):
    """The kernel module (in this process) or its KernelRef (for workers), compiled
    here first so that workers on this machine load it from Numba's disk cache."""
    from .codegen import generate
    from .cluster import KernelRef

    kernel = generate(net)
    if client is None:
        return kernel
    rows = 2
    X = np.zeros((rows,) + tuple(net.input_shape), net.dtype)
    Y = np.zeros((rows,) + tuple(net.output_shape), net.dtype)
    params = {**net.init_params(seed=0), **net.init_state(net.dtype)}
    params = {k: np.ascontiguousarray(v, dtype=net.dtype) for k, v in params.items()}
    kernel.loss_and_grads(params, X, Y)
    kernel.forward_and_loss(params, X, Y)
    return KernelRef.of(kernel)


def write_table(out: Path, rows: list[dict], keys: list[str], best: dict, elapsed: float) -> Path:
    """results.csv and results.json; returns the CSV's path."""
    from .runs import write_json

    columns = ["run", *keys, *METRICS, "error"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    path = out / f"{RESULTS}.csv"
    write_atomic(path, buf.getvalue())
    write_json(out / f"{RESULTS}.json", {"runs": [{c: r.get(c) for c in columns} for r in rows],
                                         "best": {c: best.get(c) for c in columns},
                                         "best_config": {k: best[k] for k in keys},
                                         "elapsed_s": elapsed})
    return path


def plot_sweep(path: Path, rows: list[dict], grid: dict, best: dict) -> Path:
    """Best validation accuracy of every run against each swept parameter."""
    from .runs import _figure, _save_figure

    keys = list(grid)
    fig = _figure(3.6 * len(keys) + 0.6, 3.4)
    for n, key in enumerate(keys):
        ax = fig.add_subplot(1, len(keys), n + 1)
        values = grid[key]
        numeric = all(isinstance(v, (int, float)) for v in values)
        position = (lambda v: v) if numeric else (lambda v: values.index(v))
        xs = [position(r[key]) for r in rows]
        ys = [r["best_val_acc"] for r in rows]
        ax.plot(xs, ys, "o", alpha=0.6, label="runs")
        seen = [position(v) for v in values if position(v) in xs]
        top = [max(y for x, y in zip(xs, ys) if x == p) for p in seen]
        ax.plot(seen, top, "-", color="grey", linewidth=1, label="best at value")
        ax.plot([position(best[key])], [best["best_val_acc"]], "*", markersize=14, color="C3", label="best run")
        if numeric and min(values) > 0 and max(values) / min(values) >= 10:
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(range(len(values)), labels=[str(v) for v in values])
        elif len(values) <= 6:
            ax.set_xticks(values, labels=[f"{v:g}" for v in values])
            ax.minorticks_off()
        ax.set_xlabel(key)
        if n == 0:
            ax.set_ylabel("best validation accuracy")
            ax.legend(fontsize=7, loc="lower right")
        ax.grid(alpha=0.3)
    fig.suptitle(f"sweep: {len(rows)} runs; best " + ", ".join(f"{k}={best[k]}" for k in keys), fontsize=9)
    return _save_figure(fig, path)


# --------------------------------------------------------------------------
# Command line


def add_sweep_arguments(parser):
    from .cluster import add_cluster_arguments
    from .train import add_train_arguments

    add_train_arguments(parser)
    helps = {"out": "the sweep's folder (a run folder per configuration, results.csv/json, validation.png)",
             "resume": "continue the sweep in --out: finished runs are skipped"}
    for action in parser._actions:   # the train options' help, for a sweep
        action.help = helps.get(action.dest, action.help)
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                        help="a swept option (lr, batch_size, epochs, optimizer, l2, l1, max_norm, "
                             "early_stopping, schedule, init, seed, dropout, units<l>, filters<l>); repeat it")
    parser.add_argument("--random", type=int, default=None, metavar="N",
                        help="run N configurations drawn from the grid (with --seed) instead of all")
    add_cluster_arguments(parser)
    return parser


def cli_sweep(args) -> int:
    from .cluster import open_client
    from .spec import load_with_settings
    from .train import settings_from

    if args.out is None:
        raise SweepError("symnet sweep needs --out DIR (the sweep's folder)")
    net, spec_settings = load_with_settings(args.spec)
    grid = parse_grid(args.grid, net)
    options = settings_from(args, spec_settings)     # flags, else the spec's [train] table, else defaults
    common = {k: v for k, v in options.items() if k not in grid}
    kwargs = dict(options=common, random=args.random, seed=options["seed"], resume=args.resume, progress=args.progress)
    if args.workers is None and args.scheduler is None:
        sweep(net, args.data, grid, args.out, **kwargs)
    else:
        with open_client(args.workers, args.scheduler) as client:
            sweep(net, args.data, grid, args.out, client=client, **kwargs)
    return 0
