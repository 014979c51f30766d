"""symnet.optim against torch.optim on the same parameters and gradients."""

import numpy as np
import pytest

from symnet.errors import ShapeError, SpecError
from symnet.optim import OPTIMIZERS, SCHEDULES, make_optimizer, make_schedule

torch = pytest.importorskip("torch", reason="torch.optim is the reference for the optimisers")

SHAPES = {"W1": (4, 3), "b1": (4,), "W2": (2, 4, 3, 3)}

# (symnet name, symnet options, torch class, torch options)
CASES = [
    ("sgd", {}, "SGD", {}),
    ("momentum", {"beta": 0.8}, "SGD", {"momentum": 0.8}),
    ("rmsprop", {"alpha": 0.9, "eps": 1e-8}, "RMSprop", {"alpha": 0.9, "eps": 1e-8}),
    ("adam", {"betas": (0.8, 0.99)}, "Adam", {"betas": (0.8, 0.99), "eps": 1e-8}),
    ("adagrad", {}, "Adagrad", {"eps": 1e-10}),
]


def _start(seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.normal(size=s) for k, s in SHAPES.items()}


def _grads(params, step):
    # Gradients that depend on the parameters, like a real loss would.
    return {k: np.sin(p * (step + 1)) + 0.1 * p for k, p in params.items()}


def _run_symnet(name, kw, steps, lr=0.05, opt=None, params=None):
    params = _start() if params is None else params
    opt = make_optimizer(name, lr, **kw) if opt is None else opt
    for t in range(steps):
        opt.step(params, _grads(params, t))
    return params, opt


@pytest.mark.parametrize("name,kw,tname,tkw", CASES)
def test_matches_torch(name, kw, tname, tkw):
    steps, lr = 10, 0.05
    ours, _ = _run_symnet(name, kw, steps, lr)
    tparams = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in _start().items()}
    topt = getattr(torch.optim, tname)(list(tparams.values()), lr=lr, **tkw)
    for t in range(steps):
        g = _grads({k: p.detach().numpy() for k, p in tparams.items()}, t)
        for k, p in tparams.items():
            p.grad = torch.tensor(g[k])
        topt.step()
    for k in SHAPES:
        np.testing.assert_allclose(ours[k], tparams[k].detach().numpy(), rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("name,kw", [(c[0], c[1]) for c in CASES])
def test_state_dict_resume_is_identical(name, kw, tmp_path):
    straight, _ = _run_symnet(name, kw, 8)
    half, opt = _run_symnet(name, kw, 4)
    # Through an .npz, as a checkpoint would store it.
    np.savez(tmp_path / "ckpt.npz", **opt.state_dict())
    with np.load(tmp_path / "ckpt.npz") as f:
        saved = dict(f)
    fresh = make_optimizer(name, 0.05, **kw)
    fresh.load_state_dict(saved)
    params = {k: v.copy() for k, v in half.items()}
    for t in range(4, 8):
        fresh.step(params, _grads(params, t))
    for k in SHAPES:
        np.testing.assert_array_equal(params[k], straight[k])


def test_step_updates_in_place_and_float32():
    params = {k: v.astype(np.float32) for k, v in _start().items()}
    ref = params["W1"]
    make_optimizer("adam", 0.1).step(params, _grads(params, 0))
    assert params["W1"] is ref and params["W1"].dtype == np.float32


def test_equations_are_latex_lists():
    for cls in OPTIMIZERS.values():
        eqs = cls.update_equations()
        assert eqs and all(isinstance(e, str) and "\\theta" in e for e in eqs[-1:])
    for cls in SCHEDULES.values():
        assert cls.latex.startswith(r"\eta_t")


def test_errors():
    with pytest.raises(SpecError, match="sgd, momentum, rmsprop, adam, adagrad"):
        make_optimizer("adamw", 0.1)
    with pytest.raises(SpecError, match="beta"):
        make_optimizer("momentum", 0.1, momentum=0.9)
    with pytest.raises(SpecError, match="lr"):
        make_optimizer("sgd", -1)
    with pytest.raises(SpecError, match="constant, step, exponential, inverse_time"):
        make_schedule("cosine", 0.1)
    with pytest.raises(SpecError, match="step_size"):
        make_schedule("step", 0.1, step_size=0)
    params = _start()
    with pytest.raises(ShapeError, match="W1"):
        make_optimizer("sgd", 0.1).step(params, {**_grads(params, 0), "W1": np.zeros(3)})
    with pytest.raises(ShapeError, match="b1"):
        make_optimizer("sgd", 0.1).step(params, {"W1": params["W1"], "W2": params["W2"]})


def _torch_lrs(sched_cls, epochs, **kw):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.3)
    sched = sched_cls(opt, **kw)
    lrs = []
    for _ in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def test_schedules_match_torch():
    epochs = 12
    cases = [
        (make_schedule("step", 0.3, step_size=3, gamma=0.5), torch.optim.lr_scheduler.StepLR, {"step_size": 3, "gamma": 0.5}),
        (make_schedule("exponential", 0.3, gamma=0.9), torch.optim.lr_scheduler.ExponentialLR, {"gamma": 0.9}),
        (make_schedule("inverse_time", 0.3, decay=0.5), torch.optim.lr_scheduler.LambdaLR, {"lr_lambda": lambda t: 1 / (1 + 0.5 * t)}),
        (make_schedule("constant", 0.3), torch.optim.lr_scheduler.LambdaLR, {"lr_lambda": lambda t: 1.0}),
    ]
    for ours, cls, kw in cases:
        expected = _torch_lrs(cls, epochs, **kw)
        np.testing.assert_allclose([ours(e) for e in range(epochs)], expected, rtol=1e-6)
