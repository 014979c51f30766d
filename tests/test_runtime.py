"""symnet.runtime: the static half of every generated module, tested as ordinary source
(threads, workspaces, checks, matrix products), and what a generated module may not do
at import (allocate)."""
from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from symnet import ShapeError
from symnet.runtime import arrays, checks, threads, workspace


def test_shares_cover_the_batch_without_gaps():
    for rows in (1, 2, 7, 64, 1000):
        for n in (1, 2, 3, 8):
            parts = threads.shares(rows, 1e9, True, n)
            assert parts[0][0] == 0 and parts[-1][1] == rows
            assert all(a < b for a, b in parts) and all(p[1] == q[0] for p, q in zip(parts, parts[1:]))
            assert len(parts) == min(n, rows)
    assert threads.shares(64, 1e9, False, 8) == ((0, 64),)
    assert threads.shares(64, 10.0, True, 8) == ((0, 64),)   # too little work to hand off
    with pytest.raises(ValueError):
        threads.checked_threads(0)


def test_pool_runs_shares_and_forgets_its_threads():
    pool = threads.Pool()
    seen = pool.run(lambda a, b: (a, b, threading.get_native_id()), ((0, 1), (1, 2), (2, 3)))
    assert [s[:2] for s in seen] == [(0, 1), (1, 2), (2, 3)]
    assert seen[0][2] == threading.get_native_id() and len(pool.workers) == 2
    workers = pool.workers
    pool.forget()   # what a forked child does
    assert pool.workers is workers and not workers
    assert pool.run(lambda a, b: b - a, ((0, 2), (2, 5))) == [2, 3]


def test_workspace_is_kept_per_thread_and_grows():
    local = threading.local()
    work, iwork = workspace.workspace(local, 4, 10, 3, np.float32)
    assert work.dtype == np.float32 and work.size == 40 and iwork.dtype == np.int64 and iwork.size == 12
    again, _ = workspace.workspace(local, 2, 10, 3, np.float32)
    assert again is work
    bigger, _ = workspace.workspace(local, 8, 10, 3, np.float32)
    assert bigger.size == 80 and local.work is bigger


def test_strides_are_computed_like_numpy():
    for shape in ((), (3,), (2, 5), (6, 1, 5, 5)):
        for dtype in (np.float32, np.float64):
            assert checks.c_strides(shape, dtype) == np.empty(shape, dtype).strides


def test_param_checks_convert_or_refuse():
    shapes = {"W1": (2, 3), "b1": (2,), "rm": (2,)}
    table = checks.param_checks(("W1", "b1", "rm"), shapes, np.float32)
    good = {"W1": np.ones((2, 3), np.float32), "b1": np.ones(2, np.float32), "rm": np.zeros(2, np.float32)}
    out = checks.param_arrays(good, table, 2, np.float32, exact=True, exact_state=True)
    assert all(a is good[k] for a, k in zip(out, ("W1", "b1", "rm")))
    converted = checks.param_arrays({**good, "W1": np.ones((2, 3))}, table, 2, np.float32)
    assert converted[0].dtype == np.float32
    with pytest.raises(ShapeError, match="W1 must be a C-contiguous float32"):
        checks.param_arrays({**good, "W1": np.ones((2, 3))}, table, 2, np.float32, exact=True)
    with pytest.raises(ShapeError, match="b1 must have shape"):
        checks.param_arrays({**good, "b1": np.ones(3)}, table, 2, np.float32)
    with pytest.raises(ShapeError, match="missing parameter 'rm'.*init_state"):
        checks.param_arrays({"W1": good["W1"], "b1": good["b1"]}, table, 2, np.float32)
    with pytest.raises(ShapeError, match=r"Y: 3 rows for 2 rows of X"):
        checks.batches(np.ones((2, 4)), np.ones((3, 1)), (4,), 1, np.float64)


def test_dropout_masks_scale_kept_entries():
    rng = np.random.default_rng(0)
    (mask,) = checks.draw_dropout_masks(rng, 1000, ((0.25, (8,), 4 / 3),), np.float32)
    assert mask.shape == (1000, 8) and set(np.unique(mask)) == {np.float32(0), np.float32(4 / 3)}
    assert abs((mask > 0).mean() - 0.75) < 0.03
    with pytest.raises(ShapeError, match=r"masks\[0\]: 3 rows for 2 rows of X"):
        checks.masks_in_order([np.ones((3, 8))], 2, ((0.25, (8,), 4 / 3),), np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matrix_products_match_numpy(dtype):
    rng = np.random.default_rng(1)
    A, B, C = (rng.standard_normal(s).astype(dtype) for s in ((5, 7), (3, 7), (5, 3)))
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    for small in (False, True):
        suffix = "_small" if small else ""
        out = np.empty((5, 3), dtype)
        getattr(arrays, "mm_abt" + suffix)(A, B, out)
        np.testing.assert_allclose(out, A @ B.T, **tol)
        out = np.empty((5, 7), dtype)
        getattr(arrays, "mm_ab" + suffix)(C, B, out)
        np.testing.assert_allclose(out, C @ B, **tol)
        out = np.empty((3, 7), dtype)
        getattr(arrays, "mm_atb" + suffix)(C, A, out)
        np.testing.assert_allclose(out, C.T @ A, **tol)
        assert out.dtype == dtype
    from symnet.runtime import optim
    W, gW = A.copy(), np.ascontiguousarray(A[::-1])
    kind, h = optim.plain_sgd(0.5)
    empty = np.empty(0, dtype)
    optim.fused_update(W, gW, empty, empty, kind, h, np.array([0.2, 0.1]))   # with an L2 and L1 term
    np.testing.assert_allclose(W, A - 0.5 * (gW + 0.2 * A + 0.1 * np.sign(A)), **tol)
    assert W.dtype == dtype


def test_blocked_products_match_numpy_past_their_blocks():
    """mm_ab_small / mm_atb_small work in blocks of 2 rows by 4 terms, mm_abt_small in blocks
    of 2 by 4 dot products: odd rows and remainders on every path."""
    rng = np.random.default_rng(2)
    for M, K, P in ((5, 9, 7), (64, 120, 13), (1, 4, 1)):
        A, B = rng.standard_normal((M, K)), rng.standard_normal((K, P))
        out = np.empty((M, P))
        arrays.mm_ab_small(A, B, out)
        np.testing.assert_allclose(out, A @ B, rtol=1e-12, atol=1e-12)
        arrays.mm_atb_small(np.ascontiguousarray(A.T), B, out)
        np.testing.assert_allclose(out, A @ B, rtol=1e-12, atol=1e-12)
        arrays.mm_abt_small(A, np.ascontiguousarray(B.T), out)
        np.testing.assert_allclose(out, A @ B, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n, c, size, f, k", [(2, 8, 20, 33, 3),   # products past BLAS's one-thread size
                                            (6, 3, 10, 4, 3)])  # dW over groups of 4 examples, 2 left over
def test_conv_kernels_match_reference_sums(n, c, size, f, k):
    """Convolutions whose products OpenBLAS would thread (m n k >= 2^18) run in loops, small
    planes sum dW over groups of examples: the same results as the reference sums."""
    from numpy.lib.stride_tricks import sliding_window_view

    from symnet.runtime import conv
    rng = np.random.default_rng(3)
    x, W, b = rng.standard_normal((n, c, size, size)), rng.standard_normal((f, c, k, k)), rng.standard_normal(f)
    o = size - k + 1
    out = np.empty((n, f, o, o))
    conv.conv2d_forward(x, W, b, 1, 0, 0, out)
    windows = sliding_window_view(x, (k, k), axis=(2, 3))   # (n, c, i, j, m, q)
    tol = dict(rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(out, np.einsum("ncijmq,fcmq->nfij", windows, W) + b[:, None, None], **tol)
    dz = rng.standard_normal(out.shape)
    dW, db, dx = np.empty_like(W), np.empty_like(b), np.empty_like(x)
    conv.conv2d_backward(x, W, dz, 1, 0, 0, dW, db, dx)
    expected = np.zeros_like(x)
    for m in range(k):
        for q in range(k):
            expected[:, :, m:m + o, q:q + o] += np.einsum("nfij,fc->ncij", dz, W[:, :, m, q])
    np.testing.assert_allclose(dx, expected, **tol)
    np.testing.assert_allclose(dW, np.einsum("ncijmq,nfij->fcmq", windows, dz), **tol)
    np.testing.assert_allclose(db, dz.sum(axis=(0, 2, 3)), **tol)


def test_conv_size_rules():
    from symnet.runtime import conv
    assert 33 * 8 * 9 * 18 * 18 >= conv._BLAS_ONE_THREAD_MNK > 4 * 27 * 64   # the cases above take both paths
    assert conv._DW_COLUMNS // 64 == 4 and conv._DW_COLUMNS // (18 * 18) == 0


def test_generated_module_import_allocates_nothing(tmp_path):
    """A network far larger than memory: generating and importing it must not allocate
    (the module checks shapes from computed strides)."""
    from symnet import Dense, Network
    from symnet.codegen import generate
    net = Network(2, [Dense(200_000, "tanh"), Dense(200_000)], loss="mse", name="huge")   # W2: 160 GB
    mod = generate(net, tmp_path)
    assert mod.PARAM_SHAPES["W2"] == (200_000, 200_000)
    item = np.dtype(mod.DTYPE).itemsize
    assert mod._api.checks[2] == ("W2", (200_000, 200_000), (200_000 * item, item))


def test_runtime_modules_import_nothing_of_symnet_but_errors():
    import ast
    from pathlib import Path

    from symnet.runtime import MODULES
    root = Path(threads.__file__).parent
    for name in MODULES:
        tree = ast.parse((root / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:   # a sibling (--standalone inlines it first)
                assert node.module in MODULES[:MODULES.index(name)], (name, node.module)
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0 and node.module in (None, "numpy", "numba", "concurrent.futures",
                                                           "symnet.errors"), (name, node.module)
    assert os.path.exists(root / "__init__.py")


# -- the Python API (symnet.runtime.api), on a linear model's kernels written in numpy
def _linear_api(calls):
    """A NetworkAPI over numpy kernels of z = X W^T + b with the loss mean((z - y)^2) over
    the batch; `calls` records which kernel ran on how many rows."""
    from symnet.runtime.api import NetworkAPI
    from symnet.runtime.optim import fused_update

    def evaluate(X, Y, m, with_loss, work, iwork, W, b):
        calls.append(("evaluate", len(X)))
        assert work.size >= len(X) * 3 and iwork.size >= len(X)   # the workspace asked for
        Z = X @ W.T + b
        return Z, (float(np.sum((Z - Y) ** 2)) / m if with_loss else 0.0)

    def grads_of(X, Y, DX, m, W, b, gW, gb):
        D = 2 * (X @ W.T + b - Y) / m
        gW[...], gb[...] = D.T @ X, D.sum(0)
        if DX.size:
            DX[...] = D @ W
        return float(np.sum((X @ W.T + b - Y) ** 2)) / m

    def loss_and_grads(X, Y, DX, batch_stats, update, m, work, iwork, W, b, gW, gb):
        calls.append(("grads", len(X)))
        return grads_of(X, Y, DX, m, W, b, gW, gb)

    def train_step(X, Y, DX, batch_stats, update, kind, h, reg, noreg, m, work, iwork, W, b, S1W, S2W, S1b, S2b):
        calls.append(("step", len(X)))
        gW, gb = np.empty_like(W), np.empty_like(b)
        value = grads_of(X, Y, DX, m, W, b, gW, gb)
        fused_update(W, gW, S1W, S2W, kind, h, reg)
        fused_update(b, gb, S1b, S2b, kind, h, noreg)
        return value

    return NetworkAPI(evaluate, loss_and_grads, train_step, dtype=np.float64, in_shape=(4,), n_out=2,
                      param_shapes={"W1": (2, 4), "b1": (2,)}, state_shapes={}, penalised=(True, False),
                      dropout=(), flops_per_row=(16, 48), split=(True, True), work_per_row=(3, 3, 1))


def test_network_api_binds_the_kernels_and_splits_batches():
    calls = []
    api = _linear_api(calls)
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((7, 4)), rng.standard_normal((7, 2))
    params = {"W1": rng.standard_normal((2, 4)), "b1": rng.standard_normal(2)}
    Z = X @ params["W1"].T + params["b1"]
    D = 2 * (Z - Y) / 7
    assert np.allclose(api.forward(params, X), Z)
    assert api.loss(params, X, Y) == pytest.approx(np.mean(np.sum((Z - Y) ** 2, 1)))
    value, grads = api.loss_and_grads(params, X, Y)
    assert np.allclose(grads["W1"], D.T @ X) and np.allclose(grads["b1"], D.sum(0))
    assert np.allclose(api.loss_and_input_grad(params, X, Y)[1], D @ params["W1"])
    api.min_share_flops, api.threads = 1, 3   # the same results from 3 shares in threads
    calls.clear()
    outputs, split_value = api.forward_and_loss(params, X, Y)
    assert np.allclose(outputs, Z) and split_value == pytest.approx(value)
    split_grads = api.loss_and_grads(params, X, Y)[1]
    assert all(np.allclose(split_grads[k], grads[k]) for k in grads)
    assert sorted(calls) == [("evaluate", 2), ("evaluate", 2), ("evaluate", 3), ("grads", 2), ("grads", 2), ("grads", 3)]
    # train_step: one fused kernel for one share, else the gradients of the shares then the update
    for threads_, kernel in ((1, "step"), (3, "grads")):
        api.threads, stepped = threads_, {k: v.copy() for k, v in params.items()}
        calls.clear()
        assert api.train_step(stepped, X, Y, 0.5, penalty=(0.1, 0.0)) == pytest.approx(value)
        assert {name for name, _ in calls} == {kernel}
        assert np.allclose(stepped["W1"], params["W1"] - 0.5 * (grads["W1"] + 0.1 * params["W1"]))
        assert np.allclose(stepped["b1"], params["b1"] - 0.5 * grads["b1"])   # biases: no penalty
    assert api.get_num_threads() == 3
    with pytest.raises(ShapeError, match="W1 must be a C-contiguous float64 array of shape"):
        api.train_step({"W1": params["W1"].T.copy().T, "b1": params["b1"]}, X, Y, 0.1)
    with pytest.raises(ShapeError, match="missing parameter 'b1'"):
        api.forward({"W1": params["W1"]}, X)
    with pytest.raises(ShapeError, match="X: expected a non-empty array of shape"):
        api.forward(params, X[:, :3])
    with pytest.raises(ValueError):
        api.set_num_threads(0)
