"""The PyTorch reference of benchmarks/torch_reference.py against symnet.

The torch model built from a Network with copied weights must compute what the
generated kernel computes (outputs and loss), each activation's torch function
must be symnet's formula, and a short training run of both on the digits must
end within 1 point of test accuracy.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is needed for the reference (pip install symnet[compare])")

from symnet import AvgPool2D, Conv2D, Dense, Flatten, MaxPool2D, Network  # noqa: E402
from symnet.activations import BUILTIN, X as X_SYM, make_activation  # noqa: E402
from symnet.codegen import generate  # noqa: E402
from symnet.errors import SpecError  # noqa: E402
from symnet.numeric import lambdify  # noqa: E402
from symnet.spec import load  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "torch_reference.py"
DIGITS_MLP = ROOT / "examples" / "digits_mlp.toml"


def _load_script():
    spec = importlib.util.spec_from_file_location("symnet_bench_torch_reference", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


tr = _load_script()
RNG = np.random.default_rng(11)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _params(net, seed=3):
    params = net.init_params(seed=seed, scheme="xavier")
    for k in params:
        if k.startswith("b"):  # non-zero biases, so a swapped or dropped bias shows
            params[k] = (0.1 * RNG.standard_normal(params[k].shape)).astype(net.dtype)
    return params


# ------------------------------------------------------------- activations
ACTIVATIONS = [name for name in BUILTIN if name != "step"] + [
    {"name": "leaky_relu", "slope": 0.2}, {"name": "elu", "alpha": 0.5}]


@pytest.mark.parametrize("spec", ACTIVATIONS, ids=str)
def test_activation_is_symnets_formula(spec):
    act = make_activation(spec, "layer 1")
    fn = tr._act_fn(act, "layer 1")
    x = np.concatenate([np.linspace(-6, 6, 97), [-1e-3, 1e-3, 0.5]])  # 0 itself is not in the grid
    want = np.broadcast_to(lambdify(X_SYM, act.expr)(x), x.shape)
    got = x if fn is None else fn(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, err_msg=str(spec))


@pytest.mark.parametrize("spec", ["x*tanh(x)", "step"])
def test_activation_without_torch_equivalent(spec):
    net = Network(3, [Dense(4, spec), Dense(2)], loss="mse", name="tref_custom")
    with pytest.raises(SpecError, match=r"layer 1 \(dense\).*no torch equivalent"):
        tr.build_torch_model(net)


# ------------------------------------------------------------- forward and loss against the kernel
BCE_NET = Network(5, [Dense(6, {"name": "elu", "alpha": 0.5}), Dense(1, "sigmoid")], loss="bce",
                  name="tref_bce", dtype="float64")


@pytest.mark.parametrize("case", ["digits_mlp", "bce"])
def test_dense_forward_and_loss_match_kernel(case, kernel_dir):
    if case == "digits_mlp":  # float32, relu, softmax cross entropy on logits (kernel shared with the run below)
        net = load(DIGITS_MLP)
        Y = np.eye(10)[RNG.integers(0, 10, 9)]
        tol = dict(rtol=1e-5, atol=1e-6)
    else:  # float64, sigmoid output split off for a logits-based bce
        net = BCE_NET
        Y = (RNG.random((9, 1)) > 0.5).astype(float)
        tol = dict(rtol=1e-10, atol=1e-12)
    X = RNG.standard_normal((9, net.input_shape[0])).astype(net.dtype)
    Y = Y.astype(net.dtype)
    kernel = generate(net, kernel_dir)
    params = _params(net)
    model = tr.build_torch_model(net, params)
    with torch.no_grad():
        out = model(torch.as_tensor(X)).numpy()
        loss = tr.torch_loss(model, torch.as_tensor(X), torch.as_tensor(Y),
                             torch.as_tensor(Y.argmax(axis=1))).item()
    np.testing.assert_allclose(out, kernel.forward(params, X), **tol)
    assert loss == pytest.approx(float(kernel.loss_and_grads(params, X, Y)[0]), rel=tol["rtol"], abs=tol["atol"])
    back = tr.torch_params(model)  # the weights went in unchanged and come back under symnet's names
    assert set(back) == set(params)
    for k in params:
        np.testing.assert_array_equal(back[k], params[k])


# ------------------------------------------------------------- convolution networks
def _cnn():
    # conv stride 2 + padding 1, max pool stride 1, conv "same", average pool, flatten, dense
    return Network((2, 9, 9), [Conv2D(4, 3, stride=2, padding=1, activation="relu"), MaxPool2D(2, stride=1),
                               Conv2D(3, 3, padding="same", activation="tanh"), AvgPool2D(2), Flatten(),
                               Dense(5)], loss="softmax_cross_entropy", name="tref_cnn", dtype="float64")


def test_conv_forward_matches_kernel(kernel_dir):
    net = _cnn()
    try:
        kernel = generate(net, kernel_dir)
    except SpecError as e:
        if "handles dense layers" in str(e):
            pytest.skip("conv layers are not wired into the kernel generator yet")
        raise
    params = _params(net)
    X = RNG.standard_normal((4, *net.input_shape))
    model = tr.build_torch_model(net, params)
    with torch.no_grad():
        out = model(torch.as_tensor(X)).numpy()
    np.testing.assert_allclose(out, kernel.forward(params, X), rtol=1e-10, atol=1e-12)


def test_torch_layers_of_a_cnn():
    """The conv/pool/flatten mapping, on hyperparameters and shapes."""
    net = _cnn()
    params = net.init_params(seed=0)
    model = tr.build_torch_model(net, params)
    convs = [m for m in model.body if isinstance(m, torch.nn.Conv2d)]
    assert [(c.stride, c.padding) for c in convs] == [((2, 2), (1, 1)), ((1, 1), (1, 1))]
    pools = [m for m in model.body if isinstance(m, (torch.nn.MaxPool2d, torch.nn.AvgPool2d))]
    assert [(type(p).__name__, p.kernel_size, p.stride) for p in pools] == [("MaxPool2d", 2, 1), ("AvgPool2d", 2, 2)]
    np.testing.assert_array_equal(convs[1].weight.detach().numpy(), params["W3"])
    x = torch.as_tensor(RNG.standard_normal((3, 2 * 9 * 9)))
    with torch.no_grad():
        out = model(x)
        h = x.reshape(3, 2, 9, 9)
        for mod, p in zip(model.body, model.placed):  # every shape is symnet's shape inference
            h = mod(h)
            if p is not None:
                assert tuple(h.shape[1:]) == tuple(p.out_shape), p.where
    assert out.shape == (3, 5)
    np.testing.assert_allclose(out.sum(dim=1).numpy(), 1.0)


# ------------------------------------------------------------- a short run of both
def test_short_digits_run_within_one_point(kernel_dir):
    r = tr.compare(DIGITS_MLP, "digits", kernel_dir=kernel_dir, epochs=3, lr=1e-3, batch_size=64, seed=0)
    sym, ref = r["symnet"]["test_accuracy"], r["torch"]["test_accuracy"]
    assert 0.5 < ref <= 1.0 and 0.5 < sym <= 1.0  # both learned something in 3 epochs
    assert abs(r["diff_points"]) <= 1.0 and r["passed"]
    # same start, same batches, same optimiser: the weights themselves stay close
    for k, v in r["torch"]["params"].items():
        np.testing.assert_allclose(r["symnet"]["params"][k], v, atol=1e-4)
