"""Differential test: generated kernels against PyTorch autograd (float64).

Weights are copied into torch.nn.Linear layers (same (n_out, n_in) layout);
the loss and every gradient must agree.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is needed for the differential test (pip install symnet[compare])")

from symnet import Dense, Network, Softmax  # noqa: E402
from symnet.codegen import generate  # noqa: E402

RNG = np.random.default_rng(7)
X = RNG.standard_normal((8, 5))


def _onehot(n, k):
    return np.eye(k)[RNG.integers(0, k, n)]


CASES = {
    "mse": (Network(5, [Dense(6, "tanh"), Dense(4, "relu"), Dense(3)], loss="mse", name="torch_mse"),
            RNG.standard_normal((8, 3))),
    "l1": (Network(5, [Dense(6, "elu"), Dense(2)], loss="l1", name="torch_l1"),
           RNG.standard_normal((8, 2))),
    "bce": (Network(5, [Dense(6, "gelu"), Dense(3, "sigmoid")], loss="bce", name="torch_bce"),
            (RNG.random((8, 3)) > 0.5).astype(float)),
    "softmax_ce": (Network(5, [Dense(6, "swish"), Dense(4)], loss="softmax_cross_entropy", name="torch_sce"),
                   _onehot(8, 4)),
    "ce_layer": (Network(5, [Dense(6, "softplus"), Dense(4), Softmax()], loss="cross_entropy", name="torch_ce"),
                 _onehot(8, 4)),
}

TORCH_ACT = {"tanh": torch.tanh, "relu": torch.relu, "elu": torch.nn.functional.elu,
             "gelu": torch.nn.functional.gelu, "sigmoid": torch.sigmoid, "swish": torch.nn.functional.silu,
             "softplus": torch.nn.functional.softplus, "identity": lambda t: t}


def _torch_loss(net, params, Y):
    dense = [p for p in net.placed if p.layer.type == "dense"]
    linears = []
    h = torch.tensor(X)
    for p in dense:
        lin = torch.nn.Linear(*reversed(p.param_shapes[p.params["W"]])).double()
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(params[p.params["W"]]))
            lin.bias.copy_(torch.tensor(params[p.params["b"]]))
        linears.append((p, lin))
        h = lin(h)
        if p is not dense[-1] or net.loss.name not in ("bce",):
            h = TORCH_ACT[p.layer.activation.name](h)
    y = torch.tensor(Y)
    name = net.loss.name
    if name == "mse":
        loss = torch.nn.MSELoss()(h, y)
    elif name == "l1":
        loss = torch.nn.L1Loss()(h, y)
    elif name == "bce":
        loss = torch.nn.BCELoss()(torch.sigmoid(h), y)
    elif name == "softmax_cross_entropy":
        loss = torch.nn.CrossEntropyLoss()(h, y.argmax(dim=1))       # class indices
    else:
        loss = torch.nn.CrossEntropyLoss()(h, y)                     # probabilities
    loss.backward()
    grads = {}
    for p, lin in linears:
        grads[p.params["W"]] = lin.weight.grad.numpy()
        grads[p.params["b"]] = lin.bias.grad.numpy()
    return loss.item(), grads


@pytest.mark.parametrize("case", list(CASES))
def test_loss_and_gradients_match_torch(case, kernel_dir):
    net, Y = CASES[case]
    mod = generate(net, kernel_dir)
    params = {k: v * 0.8 for k, v in net.init_params(seed=1, scheme="xavier").items()}
    for k in params:
        if k.startswith("b"):
            params[k] = 0.1 * RNG.standard_normal(params[k].shape)
    loss, grads = mod.loss_and_grads(params, X, Y)
    t_loss, t_grads = _torch_loss(net, params, Y)
    assert loss == pytest.approx(t_loss, rel=1e-10, abs=1e-12)
    assert set(grads) == set(t_grads)
    for k in grads:
        np.testing.assert_allclose(grads[k], t_grads[k], rtol=1e-8, atol=1e-12, err_msg=f"{case}: {k}")
    out = mod.forward(params, X)
    assert out.shape == Y.shape
