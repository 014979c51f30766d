"""Fused optimisers: the generated train_step applies SGD, momentum, RMSprop, Adam and
Adagrad (with L2/L1 penalties on the weights) inside the backward pass. Checked against
torch.optim (float64, a few steps from the same start) and against symnet.optim's numpy
update, in the one-kernel path and the path that runs shares of the batch in threads."""
from __future__ import annotations

import numpy as np
import pytest

from symnet import Dense, Network
from symnet.codegen import generate
from symnet.optim import make_optimizer
from symnet.train import Regularizer

torch = pytest.importorskip("torch", reason="PyTorch is needed for the differential test (pip install symnet[compare])")

RNG = np.random.default_rng(3)
X = RNG.standard_normal((8, 4))
Y = RNG.standard_normal((8, 2))
OPTIONS = {"sgd": {}, "momentum": {"beta": 0.8}, "rmsprop": {"alpha": 0.9, "eps": 1e-6},
           "adam": {"betas": (0.8, 0.95), "eps": 1e-6}, "adagrad": {"eps": 1e-8}}
PENALTIES = {"none": (0.0, 0.0), "l2": (0.05, 0.0), "l1": (0.0, 0.02), "both": (0.03, 0.01)}
STEPS = 4


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    net = Network(4, [Dense(5, "tanh"), Dense(2)], loss="mse", dtype="float64", name="fused_optim")
    return net, generate(net, tmp_path_factory.mktemp("fused"))


def _torch_run(net, params0, name, l2, l1, lr):
    weights = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in params0.items()}
    opts = dict(OPTIONS[name])
    cls = {"sgd": torch.optim.SGD, "momentum": torch.optim.SGD, "rmsprop": torch.optim.RMSprop,
           "adam": torch.optim.Adam, "adagrad": torch.optim.Adagrad}[name]
    if name == "momentum":
        opts = {"momentum": opts["beta"]}
    groups = [{"params": [weights["W1"], weights["W2"]], "weight_decay": 2 * l2},   # d(l2 w^2)/dw = 2 l2 w
              {"params": [weights["b1"], weights["b2"]], "weight_decay": 0.0}]
    opt = cls(groups, lr=lr, **opts)
    x, y = torch.tensor(X), torch.tensor(Y)
    for _ in range(STEPS):
        opt.zero_grad()
        h = torch.tanh(x @ weights["W1"].T + weights["b1"])
        loss = ((h @ weights["W2"].T + weights["b2"] - y) ** 2).mean()
        loss.backward()
        with torch.no_grad():   # torch has no L1 option: its gradient l1 sign(w), added by hand
            for k in ("W1", "W2"):
                weights[k].grad += l1 * torch.sign(weights[k])
        opt.step()
    return {k: v.detach().numpy() for k, v in weights.items()}


@pytest.mark.parametrize("penalty", PENALTIES)
@pytest.mark.parametrize("name", OPTIONS)
def test_fused_optimisers_equal_torch_and_numpy(kernel, monkeypatch, name, penalty):
    net, mod = kernel
    l2, l1 = PENALTIES[penalty]
    reg = Regularizer(l2=l2, l1=l1)
    coefficients = reg.fused_coefficients() if reg else (0.0, 0.0)
    lr = 0.05
    params0 = net.init_params(seed=2)
    expected = _torch_run(net, params0, name, l2, l1, lr)
    # numpy optimiser on the kernel's gradients: the unfused reference
    ref, opt = {k: v.copy() for k, v in params0.items()}, make_optimizer(name, lr, **OPTIONS[name])
    for _ in range(STEPS):
        _, grads = mod.loss_and_grads(ref, X, Y)
        opt.step(ref, reg.add_grads(ref, grads) if reg else grads)
    for threads in (1, 2):   # one fused kernel; shares in threads, then the update from Python
        with monkeypatch.context() as patch:
            if threads == 2:
                patch.setattr(mod._api, "min_share_flops", 1)
                patch.setattr(mod._api, "threads", 2)
                assert len(mod._api.shares(len(X), mod.TRAIN_FLOPS_PER_ROW, mod.SPLIT_TRAIN)) == 2
            fused, opt = {k: v.copy() for k, v in params0.items()}, make_optimizer(name, lr, **OPTIONS[name])
            for _ in range(STEPS):
                mod.train_step(fused, X, Y, lr, optimizer=opt, penalty=coefficients)
        assert opt.t == STEPS
        for k in params0:
            np.testing.assert_allclose(fused[k], expected[k], rtol=1e-9, atol=1e-12, err_msg=f"{k} vs torch")
            np.testing.assert_allclose(fused[k], ref[k], rtol=1e-11, atol=1e-13, err_msg=f"{k} vs numpy")
        if opt.buffers:   # the state lives in the optimiser (checkpoints keep it)
            assert set(opt.state[opt.buffers[0]]) == set(params0)


def test_plain_train_step_is_sgd(kernel):
    net, mod = kernel
    params0 = net.init_params(seed=4)
    plain = {k: v.copy() for k, v in params0.items()}
    mod.train_step(plain, X, Y, 0.1)
    _, grads = mod.loss_and_grads(params0, X, Y)
    for k in params0:
        np.testing.assert_allclose(plain[k], params0[k] - 0.1 * grads[k], rtol=1e-12, atol=1e-14)
