"""Generated kernels of convolution networks: every gradient and the input
gradient against float64 central finite differences, dropout masks, and
LeNet-5 against PyTorch with copied weights.

Two float64 networks cover the layer options (stride 1 and 2, padding "same"
for a square and for a rectangular kernel and 1 (valid: LeNet-5), 1 and 3 input
channels, a rectangular input, max and average pooling, flatten, dropout); each
compiles once per session.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from symnet import AvgPool2D, Conv2D, Dense, Dropout, Flatten, MaxPool2D, Network, ShapeError, load
from symnet.codegen import generate

ROOT = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(3)


def _net_a():
    # 3 channels, 7x11 input: conv stride 2 padding 1, max pool, conv "same", flatten, dropout, dense.
    return Network([3, 7, 11], [Conv2D(4, 3, stride=2, padding=1, activation="tanh"), MaxPool2D(2),
                               Conv2D(3, 3, padding="same", activation="softplus"), Flatten(), Dropout(0.3),
                               Dense(5, "sigmoid"), Dense(3)], loss="softmax_cross_entropy", name="cnn_a",
                   dtype="float64")


def _net_b():
    # 1 channel, 8x6 input: conv "same" with a rectangular kernel (padding 1 row, 0 columns), average
    # pooling, dense output with mse.
    return Network([1, 8, 6], [Conv2D(2, (3, 1), padding="same", activation="elu"), AvgPool2D(2), Flatten(),
                               Dense(2, "tanh")],
                   loss="mse", name="cnn_b", dtype="float64")


def _targets(net, rows):
    n = net.output_shape[0]
    if net.loss.name == "softmax_cross_entropy":
        return np.eye(n)[RNG.integers(0, n, rows)]
    return RNG.standard_normal((rows, n))


@pytest.fixture(scope="module")
def cnns(kernel_dir):
    out = {}
    for make in (_net_a, _net_b):
        net = make()
        X = RNG.standard_normal((4, *net.input_shape))
        out[net.name] = (net, generate(net, kernel_dir), X, _targets(net, 4))
    return out


def _params(net, seed=0, scale=0.5):
    rng = np.random.default_rng(seed)
    return {name: scale * rng.standard_normal(shape) for name, shape in net.param_shapes.items()}


def _central(f, array, eps=1e-6):
    num = np.zeros_like(array)
    for idx in np.ndindex(array.shape):
        old = array[idx]
        array[idx] = old + eps
        up = f()
        array[idx] = old - eps
        down = f()
        array[idx] = old
        num[idx] = (up - down) / (2 * eps)
    return num


def _rel(a, b):
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-3)


@pytest.mark.parametrize("name", ["cnn_a", "cnn_b"])
def test_gradients_match_finite_differences(cnns, name):
    net, mod, X, Y = cnns[name]
    params = _params(net)
    loss, grads = mod.loss_and_grads(params, X, Y)
    assert loss == pytest.approx(mod.loss(params, X, Y), rel=1e-12)
    for key in params:
        numeric = _central(lambda: mod.loss(params, X, Y), params[key])
        assert grads[key].shape == params[key].shape
        assert _rel(grads[key], numeric) < 1e-6, f"{name}: {key}"


@pytest.mark.parametrize("name", ["cnn_a", "cnn_b"])
def test_input_gradient_matches_finite_differences(cnns, name):
    net, mod, X, Y = cnns[name]
    params = _params(net, seed=1)
    loss, dX = mod.loss_and_input_grad(params, X, Y)
    assert dX.shape == X.shape
    X = X.copy()
    numeric = _central(lambda: mod.loss(params, X, Y), X)
    assert _rel(dX, numeric) < 1e-6


def test_dropout_masks_scale_and_route_the_gradient(cnns):
    net, mod, X, Y = cnns["cnn_a"]
    params = _params(net, seed=2)
    masks = mod.dropout_masks(np.random.default_rng(0), len(X))
    (mask,) = masks
    kept = mask != 0
    assert 0.4 < kept.mean() < 0.95
    assert np.allclose(mask[kept], 1 / 0.7)
    # With ones as masks dropout is off: the same as no masks at all.
    ones = [np.ones_like(mask)]
    assert mod.loss_and_grads(params, X, Y, ones)[0] == pytest.approx(mod.loss_and_grads(params, X, Y)[0])
    # The masked gradients are those of the masked forward map (masks held fixed).
    loss, grads = mod.loss_and_grads(params, X, Y, masks)
    assert np.isfinite(loss) and loss != pytest.approx(mod.loss(params, X, Y))
    _, dX = mod.loss_and_input_grad(params, X, Y, masks)
    X = X.copy()

    def masked():
        return mod.loss_and_grads(params, X, Y, masks)[0]
    for key in ("W6", "W1"):
        assert _rel(grads[key], _central(masked, params[key])) < 1e-6, key
    assert _rel(dX, _central(masked, X)) < 1e-6
    with pytest.raises(ShapeError, match="masks"):
        mod.loss_and_grads(params, X, Y, [])


def test_train_step_is_sgd_on_every_parameter(cnns):
    net, mod, X, Y = cnns["cnn_b"]
    params = _params(net, seed=3)
    _, grads = mod.loss_and_grads(params, X, Y)
    before = {k: v.copy() for k, v in params.items()}
    mod.train_step(params, X, Y, 0.1)
    for k in params:
        assert np.allclose(params[k], before[k] - 0.1 * grads[k], atol=1e-12)


@pytest.fixture
def split_always(monkeypatch):
    """Modules cut every batch into up to 3 shares (each its own thread), whatever its size."""
    def split(mod, threads=3):
        monkeypatch.setattr(mod._api, "min_share_flops", 1)
        monkeypatch.setattr(mod._api, "threads", threads)
    return split


def test_batch_shares_in_threads_give_the_serial_results(cnns, split_always):
    net, mod, _, _ = cnns["cnn_a"]
    X, Y = RNG.standard_normal((7, *net.input_shape)), _targets(net, 7)
    params = _params(net, seed=4)
    masks = mod.dropout_masks(np.random.default_rng(1), 7)
    serial = (mod.forward(params, X), mod.loss(params, X, Y), mod.loss_and_grads(params, X, Y, masks),
              mod.loss_and_input_grad(params, X, Y, masks))
    stepped = {k: v.copy() for k, v in params.items()}
    mod.train_step(stepped, X, Y, 0.1, masks)
    split_always(mod)
    assert mod._api.shares(7, mod.TRAIN_FLOPS_PER_ROW, True) == ((0, 2), (2, 4), (4, 7))
    assert np.allclose(mod.forward(params, X), serial[0], rtol=1e-12, atol=0)
    assert mod.loss(params, X, Y) == pytest.approx(serial[1], rel=1e-12)
    outputs, value = mod.forward_and_loss(params, X, Y)   # one pass, the same two results
    assert np.allclose(outputs, serial[0], rtol=1e-12, atol=0) and value == pytest.approx(serial[1], rel=1e-12)
    loss, grads = mod.loss_and_grads(params, X, Y, masks)
    assert loss == pytest.approx(serial[2][0], rel=1e-12)
    for key in params:
        assert np.allclose(grads[key], serial[2][1][key], rtol=1e-10, atol=1e-14), key
    loss, dX = mod.loss_and_input_grad(params, X, Y, masks)
    assert loss == pytest.approx(serial[3][0], rel=1e-12) and np.allclose(dX, serial[3][1], rtol=1e-10, atol=1e-14)
    threaded = {k: v.copy() for k, v in params.items()}
    mod.train_step(threaded, X, Y, 0.1, masks)
    for key in params:
        assert np.allclose(threaded[key], stepped[key], rtol=1e-10, atol=1e-14), key
    assert len(mod._api.pool.workers) == 2   # the shares did run in two more threads


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="os.fork is POSIX-only")
def test_threads_work_in_a_forked_child(cnns, split_always):
    import os
    import signal
    net, mod, X, Y = cnns["cnn_b"]
    params = _params(net, seed=8)
    split_always(mod)
    expected = mod.loss_and_grads(params, X, Y)[0]   # the pool exists before the fork
    pid = os.fork()
    if pid == 0:   # child: a stale pool would hang here; the alarm ends the child then
        code = 1
        try:
            signal.alarm(30)
            code = 0 if mod.loss_and_grads(params, X, Y)[0] == expected else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status


def test_workspaces_are_reused_and_sized_exactly(cnns, bn, monkeypatch):
    net, mod, X, Y = cnns["cnn_a"]
    params = _params(net, seed=5)
    first = mod.loss_and_grads(params, X, Y)
    work = mod._api.local.work
    other = RNG.standard_normal(X.shape)
    mod.loss_and_grads(params, other, Y)
    mod.forward(params, other)
    again = mod.loss_and_grads(params, X, Y)   # the same buffer, nothing left over from other calls
    assert mod._api.local.work is work and again[0] == first[0]
    assert all(np.array_equal(again[1][k], first[1][k]) for k in params)
    # Workspaces of exactly the sizes the module asks for suffice, one element fewer breaks
    # the kernels: the counts are exact, not generous.
    for net, mod, X, Y in ((net, mod, X, Y), bn):
        params = {**_params(net, seed=5), **net.init_state()}
        calls = (lambda: mod.loss_and_grads(params, X, Y, update_state=False), lambda: mod.loss(params, X, Y))
        orig = mod._api.workspace
        for short in (0, 1):   # 1: the float workspace one short
            for short_index in ((0, 1) if mod.INDEX_WORK_PER_ROW else (0,)):
                def sized(rows, per_row, short=short, short_index=short_index):
                    work, iwork = orig(rows, per_row)
                    return work[:rows * per_row - short], iwork[:rows * mod.INDEX_WORK_PER_ROW - short_index]
                with monkeypatch.context() as patch:
                    patch.setattr(mod._api, "workspace", sized)
                    for call in calls:
                        if short or short_index:
                            with pytest.raises(Exception):
                                call()
                        else:
                            call()


def test_shape_errors_name_the_array(cnns):
    net, mod, X, Y = cnns["cnn_b"]
    params = _params(net)
    with pytest.raises(ShapeError, match=r"X: expected a non-empty array of shape \(batch, 1, 8, 6\)"):
        mod.forward(params, X[:, :, :4])
    with pytest.raises(ShapeError, match="W1 must have shape"):
        mod.forward({**params, "W1": np.zeros((2, 1, 3, 3))}, X)


# ------------------------------------------------------------- LeNet-5 vs torch
def test_lenet_matches_torch(kernel_dir):
    torch = pytest.importorskip("torch", reason="PyTorch is needed for the differential test (pip install symnet[compare])")
    import torch.nn.functional as F

    base = load(ROOT / "examples" / "lenet.toml")
    net = Network(base.input_shape, base.layers, loss=base.loss.name, name="lenet64", dtype="float64")
    mod = generate(net, kernel_dir)
    params = {k: v.astype(np.float64) for k, v in net.init_params(seed=0).items()}
    X = RNG.standard_normal((6, 1, 28, 28))
    y = RNG.integers(0, 10, 6)
    Y = np.eye(10)[y]
    loss, grads = mod.loss_and_grads(params, X, Y)
    _, dX = mod.loss_and_input_grad(params, X, Y)

    t = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    x = torch.tensor(X, requires_grad=True)
    h = F.max_pool2d(F.relu(F.conv2d(x, t["W1"], t["b1"])), 2)
    h = F.max_pool2d(F.relu(F.conv2d(h, t["W3"], t["b3"])), 2)
    h = torch.flatten(h, 1)
    h = F.relu(F.linear(h, t["W6"], t["b6"]))
    h = F.relu(F.linear(h, t["W7"], t["b7"]))
    logits = F.linear(h, t["W8"], t["b8"])
    ref = F.cross_entropy(logits, torch.tensor(y))
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-10)
    for k in params:
        assert np.allclose(grads[k], t[k].grad.numpy(), rtol=1e-8, atol=1e-12), k
    assert np.allclose(dX, x.grad.numpy(), rtol=1e-8, atol=1e-12)
    probs = mod.forward(params, X)
    assert np.allclose(probs, torch.softmax(logits, 1).detach().numpy(), atol=1e-12)


# ------------------------------------------------------------- batch norm
def _bn_net():
    from symnet import BatchNorm
    return Network([2, 6, 6], [Conv2D(3, 3), BatchNorm("relu"), MaxPool2D(2), Flatten(), Dense(5),
                               BatchNorm("tanh", momentum=0.2), Dense(3)],
                   loss="softmax_cross_entropy", name="cnn_bn", dtype="float64")


@pytest.fixture(scope="module")
def bn(kernel_dir):
    net = _bn_net()
    rng = np.random.default_rng(5)
    X = rng.standard_normal((5, 2, 6, 6))
    return net, generate(net, kernel_dir), X, np.eye(3)[rng.integers(0, 3, 5)]


def test_batchnorm_gradients_match_finite_differences(bn):
    net, mod, X, Y = bn
    params = {**_params(net, seed=4), **net.init_state()}
    before = {k: v.copy() for k, v in net.init_state().items()}

    def train_loss():
        return mod.loss_and_grads(params, X, Y, update_state=False)[0]
    loss, grads = mod.loss_and_grads(params, X, Y, update_state=False)
    assert set(grads) == set(net.param_shapes)
    for key in grads:
        assert _rel(grads[key], _central(train_loss, params[key])) < 1e-6, key
    _, dX = mod.loss_and_input_grad(params, X, Y, training=True)
    X = X.copy()
    assert _rel(dX, _central(train_loss, X)) < 1e-6
    for k in before:   # no state moved without update_state
        assert np.array_equal(params[k], before[k])


def test_batchnorm_input_gradient_in_evaluation_mode(bn):
    # The default: running statistics (here far from the batch's), as loss() evaluates.
    net, mod, X, Y = bn
    rng = np.random.default_rng(9)
    params = {**_params(net, seed=8)}
    for name, shape in net.state_shapes.items():
        params[name] = rng.uniform(0.5, 2.0, shape) if "var" in name else rng.standard_normal(shape)
    loss, dX = mod.loss_and_input_grad(params, X, Y)
    assert loss == pytest.approx(mod.loss(params, X, Y), rel=1e-12)
    X = X.copy()
    assert _rel(dX, _central(lambda: mod.loss(params, X, Y), X)) < 1e-6
    assert not np.allclose(dX, mod.loss_and_input_grad(params, X, Y, training=True)[1])
    loss1, dX1 = mod.loss_and_input_grad(params, X[:1], Y[:1])   # one example is enough without batch statistics
    assert np.allclose(dX1, dX[:1] * len(X), rtol=1e-10, atol=1e-13)
    with pytest.raises(ShapeError, match="init_state"):
        mod.forward(_params(net), X)
    with pytest.raises(ShapeError, match="at least 2 examples"):
        mod.loss_and_grads(params, X[:1], Y[:1])


def test_batchnorm_matches_torch_in_training_and_evaluation(bn):
    torch = pytest.importorskip("torch", reason="PyTorch is needed for the differential test (pip install symnet[compare])")
    net, mod, X, Y = bn
    params = {**_params(net, seed=6), **net.init_state()}
    conv = torch.nn.Conv2d(2, 3, 3).double()
    bn1 = torch.nn.BatchNorm2d(3).double()
    lin1 = torch.nn.Linear(12, 5).double()
    bn2 = torch.nn.BatchNorm1d(5, momentum=0.2).double()
    lin2 = torch.nn.Linear(5, 3).double()
    with torch.no_grad():
        for mod_t, (w, b) in ((conv, ("W1", "b1")), (bn1, ("gamma2", "beta2")), (lin1, ("W5", "b5")),
                              (bn2, ("gamma6", "beta6")), (lin2, ("W7", "b7"))):
            mod_t.weight.copy_(torch.tensor(params[w]))
            mod_t.bias.copy_(torch.tensor(params[b]))
    model = torch.nn.Sequential(conv, bn1, torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(), lin1, bn2,
                                torch.nn.Tanh(), lin2)
    x = torch.tensor(X, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(model(x), torch.tensor(Y.argmax(1)))
    ref.backward()
    loss, grads = mod.loss_and_grads(params, X, Y)      # training mode, state updated
    assert loss == pytest.approx(ref.item(), rel=1e-10)
    named = {"W1": conv.weight, "gamma2": bn1.weight, "beta2": bn1.bias, "W5": lin1.weight, "gamma6": bn2.weight,
             "beta6": bn2.bias, "W7": lin2.weight}
    for k, t in named.items():
        assert np.allclose(grads[k], t.grad.numpy(), rtol=1e-8, atol=1e-12), k
    for k, t in {"running_mean2": bn1.running_mean, "running_var2": bn1.running_var,
                 "running_mean6": bn2.running_mean, "running_var6": bn2.running_var}.items():
        assert np.allclose(params[k], t.numpy(), rtol=1e-12), k
    model.eval()
    assert np.allclose(mod.forward(params, X), torch.softmax(model(x), 1).detach().numpy(), atol=1e-12)


def test_batchnorm_splits_evaluation_but_not_training(bn, split_always):
    net, mod, X, Y = bn
    params = {**_params(net, seed=7), **net.init_state()}
    assert mod.SPLIT_EVAL and not mod.SPLIT_TRAIN   # batch statistics need the whole batch
    serial = mod.forward(params, X), mod.loss(params, X, Y), mod.loss_and_grads(params, X, Y, update_state=False)
    split_always(mod)
    assert len(mod._api.shares(5, mod.EVAL_FLOPS_PER_ROW, mod.SPLIT_EVAL)) == 3
    assert len(mod._api.shares(5, mod.TRAIN_FLOPS_PER_ROW, mod.SPLIT_TRAIN)) == 1
    assert np.allclose(mod.forward(params, X), serial[0], rtol=1e-12, atol=0)
    assert mod.loss(params, X, Y) == pytest.approx(serial[1], rel=1e-12)
    loss, grads = mod.loss_and_grads(params, X, Y, update_state=False)
    assert loss == serial[2][0] and all(np.array_equal(grads[k], serial[2][1][k]) for k in grads)


# ------------------------------------------------------------------ cold start: entry points, runtime
def test_conv_entry_points_are_python_calling_nogil_kernels(cnns, kernel_dir):
    """Conv networks' entry points are plain Python (no compiled entry re-links its callees);
    every compiled kernel they call releases the GIL, so shares of a batch run at once.
    MLPs keep compiled entry points (their steps take microseconds)."""
    from numba.core.registry import CPUDispatcher
    from symnet.codegen.program import Call, flat
    for name in ("cnn_a", "cnn_b"):
        net, mod, _, _ = cnns[name]
        for entry in ("_evaluate", "_loss_and_grads", "_train_step"):
            assert not isinstance(getattr(mod, entry), CPUDispatcher), (name, entry)
        called = {s.fn for e in _program_entries(net) for s in flat(e.body) if isinstance(s, Call)}
        assert called and all(getattr(mod, fn).targetoptions.get("nogil") for fn in called), (name, called)
    mlp = generate(Network(3, [Dense(4, "tanh"), Dense(2)], loss="mse", name="mlp_entries"), kernel_dir)
    assert isinstance(mlp._train_step, CPUDispatcher) and isinstance(mlp._loss_and_grads, CPUDispatcher)


def _program_entries(net):
    from symnet.codegen.context import context
    from symnet.derive import derive
    return context(net, derive(net), "")["entries"]


def test_precompile_covers_every_runtime_call_of_conv_networks(cnns, split_always, monkeypatch):
    """`python -m symnet.runtime.precompile` compiles exactly the runtime signatures that conv
    networks' entry points call (so that the first network on a machine compiles only its own
    kernels): every runtime call of every API function, one share and several, is recorded."""
    import numba
    from symnet.runtime import precompile
    expected = {}
    for kernel, args in precompile.calls("float64"):
        expected.setdefault(kernel.py_func.__name__, set()).add(tuple(numba.typeof(a) for a in args))
    seen = {}
    for name in ("cnn_a", "cnn_b"):
        net, mod, X, Y = cnns[name]
        for fn in expected:
            if hasattr(mod, fn):
                def recorder(*args, _kernel=getattr(mod, fn), _fn=fn):
                    seen.setdefault(_fn, set()).add(tuple(numba.typeof(a) for a in args))
                    return _kernel(*args)
                monkeypatch.setattr(mod, fn, recorder)
        params = _params(net, seed=5)
        masks = mod.dropout_masks(np.random.default_rng(2), len(X))
        for split in (False, True):
            if split:
                split_always(mod)
            mod.forward_and_loss(params, X, Y)
            mod.loss_and_grads(params, X, Y, masks)
            mod.loss_and_input_grad(params, X, Y, masks, training=split)
            mod.train_step({k: v.copy() for k, v in params.items()}, X, Y, 0.1, masks)
    assert {"conv2d_forward", "conv2d_backward", "maxpool2d_forward", "avgpool2d_scaled_backward",
            "fused_update", "dense_grads_small", "mul_into"} <= set(seen)
    for fn, signatures in seen.items():
        assert signatures <= expected[fn], (fn, signatures - expected[fn])


def test_background_precompile_starts_once_per_machine(tmp_path, monkeypatch):
    """The first conv network on a machine starts the runtime's compile in a background process
    (a note in the kernel cache says so, then "done <CPU seconds>"); later ones do not."""
    import time
    from symnet.codegen.runtime_link import precompile_in_background
    monkeypatch.setenv("SYMNET_PRECOMPILE", "0")
    assert precompile_in_background("float64", tmp_path) is None and not (tmp_path / "runtime").exists()
    monkeypatch.delenv("SYMNET_PRECOMPILE")
    note = precompile_in_background("float64", tmp_path)
    assert note is not None and note.parent == tmp_path / "runtime"
    assert precompile_in_background("float64", tmp_path) is None   # started already
    deadline = time.time() + 240
    while not note.read_text().startswith("done") and time.time() < deadline:
        time.sleep(0.2)
    words = note.read_text().split()
    assert words[0] == "done" and float(words[1]) >= 0
