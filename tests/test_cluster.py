"""Data-parallel training on a Dask LocalCluster: the same weights as one process."""
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import symnet
from symnet.cli import main
from symnet.cluster import ClusterError, DataParallel, KernelRef, load_kernel
from symnet.data import load_dataset
from symnet.train import train, with_dropout

pytest.importorskip("sklearn", reason="bundled data sets come from scikit-learn")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0, dtype="float32")


def _same(a, b, atol):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=atol, err_msg=k)


def test_mlp_matches_one_process_and_resumes(dask_client, digits, kernel_dir, tmp_path, capsys):
    net = symnet.load(EXAMPLES / "digits_mlp.toml")
    kernel = symnet.generate(net, kernel_dir)
    opts = dict(kernel=kernel, batch_size=64, lr=3e-3, seed=1)
    local = train(net, digits, epochs=2, progress=False, **opts)
    out = tmp_path / "run"
    first = train(net, digits, epochs=1, out=out, client=dask_client, **opts)
    err = capsys.readouterr().err
    # The measured advice: a 64-row step of this MLP is far cheaper than a round trip.
    assert "data-parallel: 2 worker(s)" in err and "scale-out does not pay" in err
    assert first.epochs_run == 1
    both = train(net, digits, epochs=2, out=out, resume=True, client=dask_client, progress=False, **opts)
    _same(local.params, both.params, atol=1e-5)
    assert both.history["epoch"] == [1, 2]
    np.testing.assert_allclose(both.history["train_loss"], local.history["train_loss"], rtol=1e-5)
    assert (out / "metrics.json").is_file() and (out / "loss.png").is_file()
    # Compiled here first, the workers loaded the machine code from Numba's disk cache.
    stats = dask_client.run(_worker_compile_stats, Path(kernel.__file__).name)
    assert len(stats) == 2 and all(hits > 0 and misses == 0 for hits, misses in stats.values()), stats


def _worker_compile_stats(name):
    from symnet.cluster import _LOADED
    s = _LOADED[name]._loss_and_grads.stats
    return sum(s.cache_hits.values()), sum(s.cache_misses.values())


def test_cnn_and_dropout_match_one_process(dask_client, digits, kernel_dir):
    cnn = symnet.load(EXAMPLES / "digits_cnn.toml")
    images = load_dataset("digits", seed=0, dtype="float32", image=True)
    kernel = symnet.generate(cnn, kernel_dir)
    opts = dict(kernel=kernel, batch_size=128, epochs=1, lr=3e-3, progress=False)
    _same(train(cnn, images, **opts).params, train(cnn, images, client=dask_client, **opts).params, atol=1e-5)

    # Dropout masks are drawn here from the run's rng and sent with the rows.
    mlp = with_dropout(symnet.load(EXAMPLES / "digits_mlp.toml"), 0.3)
    kernel = symnet.generate(mlp, kernel_dir)
    opts = dict(kernel=kernel, batch_size=100, epochs=1, progress=False)
    _same(train(mlp, digits, **opts).params, train(mlp, digits, client=dask_client, **opts).params, atol=1e-5)


def test_batch_norm_is_refused_with_its_reason(dask_client):
    net = symnet.Network([4], [symnet.Dense(3, "relu"), symnet.BatchNorm(), symnet.Dense(2)],
                         loss="softmax_cross_entropy")
    with pytest.raises(ClusterError, match=r"refuses batch norm .*running_mean2.*whole batch's"):
        DataParallel(dask_client, net, None, None, None)


def test_kernel_reaches_a_worker_as_text(kernel_dir, tmp_path, monkeypatch):
    """Where the caller's file is missing, the text is written into this machine's cache."""
    net = symnet.load(EXAMPLES / "digits_mlp.toml")
    ref = KernelRef.of(symnet.generate(net, kernel_dir))
    moved = KernelRef(ref.name, str(tmp_path / "elsewhere" / ref.name), ref.text)
    monkeypatch.setenv("SYMNET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("symnet.cluster._LOADED", {})
    mod = load_kernel(moved, threads=1)
    assert Path(mod.__file__) == tmp_path / "cache" / ref.name
    assert (tmp_path / "cache" / ref.name).read_text() == ref.text and mod.get_num_threads() == 1
    assert load_kernel(moved) is mod   # imported once per process


def test_lost_worker_stops_at_the_last_checkpoint(dask_client, digits, kernel_dir, tmp_path):
    net = symnet.load(EXAMPLES / "digits_mlp.toml")
    kernel = symnet.generate(net, kernel_dir)
    out = tmp_path / "run"
    victim = next(iter(dask_client.run(os.getpid).values()))   # a worker process's pid

    def kill_after_first_checkpoint():
        deadline = time.time() + 60
        while not (out / "checkpoint.npz").exists() and time.time() < deadline:
            time.sleep(0.005)
        os.kill(victim, signal.SIGKILL)

    killer = threading.Thread(target=kill_after_first_checkpoint)
    killer.start()
    try:
        with pytest.raises(ClusterError, match=r"a Dask worker was lost .*holds epoch \d+: rerun the same "
                                               r"command with --resume"):
            train(net, digits, kernel=kernel, batch_size=16, epochs=200, out=out, client=dask_client,
                  progress=False)
    finally:
        killer.join()
        dask_client.wait_for_workers(2, timeout=60)   # the nanny restarts it


def test_cli_errors_are_one_line(tmp_path, capsys, monkeypatch):
    spec = str(EXAMPLES / "digits_mlp.toml")
    monkeypatch.setattr("symnet.cluster.CONNECT_TIMEOUT_S", 1)
    assert main(["train", spec, "--epochs", "1", "--scheduler", "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("symnet: error: --scheduler tcp://127.0.0.1:9: cannot reach the Dask scheduler")
    assert "\n" not in err

    monkeypatch.setitem(sys.modules, "distributed", None)   # as if not installed
    for argv in (["train", spec, "--workers", "2"],
                 ["sweep", spec, "--grid", "lr=1e-3", "--out", str(tmp_path / "s"), "--workers", "2"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err == ("symnet: error: --workers/--scheduler need Dask distributed, which is not installed: "
                       "pip install 'symnet[cluster]'")


def test_transports_and_flat_buffers_agree(dask_client, digits, kernel_dir):
    """The direct comms (default) and Dask actor calls through the client give the
    gradients of one process: one flat buffer each way, views in the kernel's shapes."""
    net = symnet.load(EXAMPLES / "digits_mlp.toml")
    kernel = symnet.generate(net, kernel_dir)
    params = {k: np.ascontiguousarray(v, np.float32) for k, v in net.init_params(seed=3).items()}
    idx = np.random.default_rng(0).permutation(len(digits.X_train))[:101]   # uneven shares: 51 + 50
    loss, grads = kernel.loss_and_grads(params, digits.X_train[idx], digits.Y_train[idx])
    direct = DataParallel(dask_client, net, kernel, digits.X_train, digits.Y_train, advise=False)
    relayed = DataParallel(dask_client, net, kernel, digits.X_train, digits.Y_train, advise=False, direct=False)
    assert direct.direct is not None and relayed.direct is None
    for dp in (direct, relayed):
        got_loss, got = dp.loss_and_grads(params, idx)
        assert got_loss == pytest.approx(float(loss), rel=1e-5)
        _same(got, grads, atol=1e-6)
        assert all(g.flags.c_contiguous and g.flags.writeable for g in got.values())
    layout = direct.layout
    flat = layout.flatten(params)
    assert flat.shape == (sum(v.size for v in params.values()),)
    assert all(np.array_equal(v, params[k]) for k, v in layout.views(flat).items())
    direct.close()
    with pytest.raises(Exception):   # closed: no more steps over its comms
        direct.direct.call("loss_and_grads", [])


def test_interrupted_cluster_closes_at_once_and_quietly(capfd):
    """Ctrl-C while a task runs: the cluster symnet started closes without the
    nanny's 4 s wait and 'Worker process still alive ... killing' warning."""
    from symnet.cluster import open_client

    t0 = None
    with pytest.raises(KeyboardInterrupt):
        with open_client(1, announce=False) as client:
            task = client.submit(time.sleep, 60, pure=False)
            deadline = time.time() + 60
            while not any(client.processing().values()):
                assert time.time() < deadline and task.status == "pending", task
                time.sleep(0.05)
            t0 = time.perf_counter()
            raise KeyboardInterrupt
    closed = time.perf_counter() - t0
    err = capfd.readouterr().err
    assert "still alive" not in err and "Restarting worker" not in err and "CancelledError" not in err, err
    assert closed < 30   # the task alone would hold it for 60 s
