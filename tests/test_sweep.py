"""Hyper-parameter sweeps: grids, results, resume, a worker killed mid-sweep."""
import csv
import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import symnet
from symnet.cli import main
from symnet.data import load_dataset
from symnet.sweep import SweepError, configurations, parse_grid, run_name, sweep
from symnet.train import train

pytest.importorskip("sklearn", reason="bundled data sets come from scikit-learn")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def mlp():
    return symnet.load(EXAMPLES / "digits_mlp.toml")


def test_grid_parsing_and_configurations(mlp):
    grid = parse_grid(["lr=1e-3, 3e-3", "batch_size=32,64,32", "units1=16,32", "optimizer=sgd,adam"], mlp)
    assert grid == {"lr": [1e-3, 3e-3], "batch_size": [32, 64], "units1": [16, 32], "optimizer": ["sgd", "adam"]}
    every = configurations(grid)
    assert len(every) == 16 and len({json.dumps(c, sort_keys=True) for c in every}) == 16
    some = configurations(grid, random=5, seed=3)
    assert len(some) == 5 and all(c in every for c in some) and some == configurations(grid, random=5, seed=3)
    assert len(configurations(grid, random=100)) == 16
    assert run_name(7, {"lr": 0.003, "batch_size": 32}) == "run007_lr=0.003_batch_size=32"
    for items, message in ((["lr"], r"write KEY=V1,V2"), (["momentum=0.9"], r"unknown key 'momentum'"),
                           (["batch_size=3.5"], r"'3.5' is not an int value for batch_size"),
                           (["lr=nan"], "not a finite number"), (["units2=8"], "layer 2 is digits_mlp's output layer"),
                           (["units3=8"], "layer 3 of digits_mlp is not"), ([], "at least one --grid"),
                           (["lr=1", "lr=2"], "swept twice")):
        with pytest.raises(SweepError, match=message):
            parse_grid(items, mlp)
    with pytest.raises(SweepError, match="--random 0"):
        configurations(grid, random=0)


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_sweep_on_the_cluster_resume_and_results(dask_client, mlp, tmp_path, capsys):
    out = tmp_path / "sweep"
    grid = {"lr": [1e-3, 1e-2], "units1": [16, 32]}
    options = {"epochs": 2, "batch_size": 64}
    result = sweep(mlp, "digits", grid, out, options=options, client=dask_client)
    rows = result["rows"]
    assert [r["run"] for r in rows] == [run_name(i, c) for i, c in enumerate(configurations(grid))]
    assert all(r["error"] is None for r in rows)
    best = max(rows, key=lambda r: (r["best_val_acc"], -r["best_val_loss"]))
    assert result["best"] == best
    saved = json.loads((out / "results.json").read_text())
    assert saved["best_config"] == {k: best[k] for k in grid} and len(saved["runs"]) == 4
    table = _rows(out / "results.csv")
    assert [float(t["best_val_acc"]) for t in table] == pytest.approx([r["best_val_acc"] for r in rows])
    assert (out / "validation.png").stat().st_size > 10_000
    for r in rows:   # each run folder is what `symnet train --out` writes
        assert {"checkpoint.npz", "metrics.json", "loss.png", "run.json"} <= {p.name for p in (out / r["run"]).iterdir()}
    assert "best configuration: " + ", ".join(f"{k}={best[k]}" for k in grid) in capsys.readouterr().err

    # A run on a worker is the run in this process: same metrics.
    config = configurations(grid)[3]
    net = symnet.load(EXAMPLES / "digits_mlp.toml")
    from symnet.sweep import network_for
    data = load_dataset("digits", seed=0, dtype="float32")
    here = train(network_for(net.to_spec(), config, options), data, lr=config["lr"], progress=False, **options)
    assert rows[3]["final_val_loss"] == pytest.approx(here.history["val_loss"][-1], rel=1e-5)

    # --resume skips finished runs; a run without run.json is trained again.
    (out / rows[1]["run"] / "run.json").unlink()
    again = sweep(mlp, "digits", grid, out, options=options, client=dask_client, resume=True)
    assert "3 finished before, 1 to run" in capsys.readouterr().err
    assert [r["best_val_acc"] for r in again["rows"]] == [r["best_val_acc"] for r in rows]
    assert again["rows"][1]["resumed"] is True   # from its checkpoint: nothing left to train
    with pytest.raises(SweepError, match="already holds a sweep: pass --resume"):
        sweep(mlp, "digits", grid, out, options=options, client=dask_client)
    with pytest.raises(SweepError, match="--resume with a different grid"):
        sweep(mlp, "digits", {"lr": [1e-3]}, out, options=options, client=dask_client, resume=True)


def test_cli_sweep_in_process_records_failed_runs(tmp_path, capsys):
    out = tmp_path / "s"
    argv = ["sweep", str(EXAMPLES / "digits_mlp.toml"), "--data", "digits", "--grid", "lr=1e-3,1e9",
            "--epochs", "1", "--optimizer", "sgd", "--out", str(out)]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "lr=1000000000.0: failed: epoch 1, step" in err and "best configuration: lr=0.001" in err
    table = _rows(out / "results.csv")
    assert "training diverged" in table[1]["error"] and table[1]["best_val_acc"] == ""


def test_killed_worker_is_retried_and_the_sweep_completes(dask_client, mlp, tmp_path):
    out = tmp_path / "sweep"
    grid = {"lr": [1e-3, 3e-3], "batch_size": [16, 32]}
    options = {"epochs": 12}
    pids = dask_client.run(os.getpid)
    killed = []

    def kill_a_worker_mid_run():
        deadline = time.time() + 120
        while time.time() < deadline and not killed:
            for run in out.glob("run*"):
                if (run / "checkpoint.npz").exists() and not (run / "run.json").exists():
                    # the worker running it (task keys name their run)
                    running = [w for w, keys in dask_client.processing().items()
                               if any(f"-{run.name}-" in str(k) for k in keys)]
                    if running:
                        os.kill(pids[running[0]], signal.SIGKILL)
                        killed.append(run.name)
                        return
            time.sleep(0.005)

    killer = threading.Thread(target=kill_a_worker_mid_run)
    killer.start()
    try:
        result = sweep(mlp, "digits", grid, out, options=options, client=dask_client, progress=False)
    finally:
        killer.join()
        dask_client.wait_for_workers(2, timeout=60)
    assert killed, "no run was in progress to kill"
    rows = result["rows"]
    assert len(rows) == 4 and all(r["error"] is None and r["epochs_run"] == 12 for r in rows)
    assert {r["run"]: r["resumed"] for r in rows}[killed[0]]   # continued from its checkpoint elsewhere
    # Resuming is exact: the killed run ends where an uninterrupted one does.
    again = sweep(mlp, "digits", grid, tmp_path / "clean", options=options, progress=False)
    np.testing.assert_allclose([r["final_val_loss"] for r in rows],
                               [r["final_val_loss"] for r in again["rows"]], rtol=1e-6)
