"""symnet.trace: the float64 evaluator of every layer kind, checked against
central differences of its own loss and against PyTorch (values, per-example
errors, gradients), in training and evaluation mode."""
import numpy as np
import pytest

import symnet
from symnet.check import random_batch
from symnet.trace import trace

H = 1e-6


def all_kinds():
    """Every layer kind once: strided padded conv, overlapping max and average
    pooling, spatial and vector batch norm, flatten, dropout, dense."""
    return symnet.Network([2, 11, 11], [
        symnet.Conv2D(3, 3, stride=2, padding=1, activation="tanh"), symnet.MaxPool2D(3, stride=1),
        symnet.Conv2D(2, 2, activation="relu"), symnet.BatchNorm(activation="sigmoid"),
        symnet.AvgPool2D(2, stride=1), symnet.Flatten(), symnet.Dropout(0.3), symnet.Dense(4),
        symnet.BatchNorm(activation="tanh"), symnet.Dense(3)], loss="softmax_cross_entropy", name="all")


def dense_bn(loss):
    return symnet.Network([4], [symnet.Dense(5, activation="elu"), symnet.Dropout(0.5),
                                symnet.BatchNorm(), symnet.Dense(3, activation="sigmoid")],
                          loss=loss, name="dense_bn")


def softmax_layer():
    return symnet.Network([3], [symnet.Dense(4, activation="softplus"), symnet.Dense(3), symnet.Softmax()],
                          loss="cross_entropy", name="sm")


def point(net, seed=0, m=5):
    rng = np.random.default_rng(seed)
    params = {k: v + rng.normal(scale=0.1, size=v.shape)
              for k, v in net.init_params(seed=seed, scheme="xavier", dtype="float64").items()}
    for k, v in net.init_state("float64").items():
        params[k] = v + (rng.uniform(0.5, 1.0, v.shape) if k.startswith("running_var") else rng.normal(size=v.shape))
    X, Y = random_batch(net, m, rng)
    masks = {p.position: (rng.random((m, *p.out_shape)) > p.layer.rate).astype(float)
             for p in net.placed if p.layer.type == "dropout"}
    return params, X, Y, masks


CASES = [(all_kinds, None), (lambda: dense_bn("mse"), None), (lambda: dense_bn("bce"), None), (softmax_layer, None)]


@pytest.fixture(scope="module", params=range(len(CASES)))
def case(request):
    net = CASES[request.param][0]()
    return net, symnet.derive(net)


@pytest.mark.parametrize("training", [True, False])
def test_gradients_match_central_differences(case, training):
    net, d = case
    params, X, Y, masks = point(net)
    ev = trace(d, params, X, Y, training=training, masks=masks)
    rng = np.random.default_rng(1)
    for name in [k for k in params if not k.startswith("running")] + ["x"]:
        arr = X if name == "x" else params[name]
        flat = arr.reshape(-1)
        for idx in rng.choice(flat.size, size=min(6, flat.size), replace=False):
            saved = flat[idx]
            flat[idx] = saved + H
            up = trace(d, params, X, Y, training=training, masks=masks).loss
            flat[idx] = saved - H
            down = trace(d, params, X, Y, training=training, masks=masks).loss
            flat[idx] = saved
            numeric = (up - down) / (2 * H)
            assert ev.grads[name].reshape(-1)[idx] == pytest.approx(numeric, abs=1e-7, rel=1e-5), (name, idx)


def test_every_quantity_is_named(case):
    net, d = case
    params, X, Y, masks = point(net)
    ev = trace(d, params, X, Y, masks=masks)
    for p in net.placed:
        l = p.position
        assert ev.values[f"a{l}"].shape == (5, *p.out_shape)
        if p.layer.type in ("dense", "conv2d", "batchnorm"):
            assert ev.values[f"z{l}"].shape == ev.values[f"delta{l}"].shape == (5, *p.out_shape)
        if p.layer.type == "dropout":
            assert set(np.unique(ev.values[f"mask{l}"])) <= {0.0, 1.0}
    assert ev.values["da0"].shape == X.shape


def test_max_pool_ties_go_to_the_first_maximum():
    net = symnet.Network([1, 3, 3], [symnet.MaxPool2D(2, stride=1), symnet.Flatten(), symnet.Dense(1)],
                         loss="mse", name="ties")
    d = symnet.derive(net)
    params = {"W3": np.ones((1, 4)), "b3": np.zeros(1)}
    X = np.ones((1, 1, 3, 3))          # every window is a tie
    ev = trace(d, params, X, np.zeros((1, 1)))
    # each window sends its gradient to its top-left entry (row-major first)
    routed = ev.values["da0"][0, 0]
    assert np.count_nonzero(routed) == 4 and np.all(routed[2, :] == 0) and np.all(routed[:, 2] == 0)


torch = pytest.importorskip("torch")
F = torch.nn.functional


def torch_run(net, params, X, Y, masks, training):
    """The same network in PyTorch float64: values and per-example errors m dL/dz."""
    t = {k: torch.tensor(v, requires_grad=not k.startswith("running")) for k, v in params.items()}
    x = torch.tensor(X, requires_grad=True)
    a, zs, acts = x, {}, {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid, "identity": lambda v: v,
                          "elu": F.elu, "softplus": F.softplus}
    for p in net.placed:
        kind, l, lay = p.layer.type, p.position, p.layer
        if kind == "dense":
            z = a @ t[f"W{l}"].T + t[f"b{l}"]
        elif kind == "conv2d":
            z = F.conv2d(a, t[f"W{l}"], t[f"b{l}"], stride=lay.stride, padding=lay.pads)
        elif kind == "batchnorm":
            z = F.batch_norm(a, None if training else t[f"running_mean{l}"], None if training else t[f"running_var{l}"],
                             t[f"gamma{l}"], t[f"beta{l}"], training=training, eps=lay.eps)
        elif kind == "maxpool2d":
            a = F.max_pool2d(a, lay.size, lay.stride)
        elif kind == "avgpool2d":
            a = F.avg_pool2d(a, lay.size, lay.stride)
        elif kind == "flatten":
            a = a.reshape(a.shape[0], -1)
        elif kind == "dropout":
            a = a * torch.tensor(masks[l]) / (1 - lay.rate) if training else a
        elif kind == "softmax":
            continue
        if kind in ("dense", "conv2d", "batchnorm"):
            z.retain_grad()
            zs[l] = z
            a = acts[lay.activation.name](z)
    L = max(zs)
    y = torch.tensor(Y)
    if net.loss.is_categorical:
        loss = F.cross_entropy(zs[L], y)
    elif net.loss.name == "mse":
        loss = F.mse_loss(a, y)
    else:
        loss = F.binary_cross_entropy(a, y)
    loss.backward()
    return loss, zs, t, x


@pytest.mark.parametrize("training", [True, False])
def test_matches_torch(case, training):
    net, d = case
    params, X, Y, masks = point(net, seed=3)
    ev = trace(d, params, X, Y, training=training, masks=masks)
    loss, zs, t, x = torch_run(net, params, X, Y, masks, training)
    m = X.shape[0]
    assert ev.loss == pytest.approx(loss.item(), rel=1e-10)
    for l, z in zs.items():
        np.testing.assert_allclose(ev.values[f"z{l}"], z.detach().numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(ev.values[f"delta{l}"], m * z.grad.numpy(), rtol=1e-7, atol=1e-12)
    for k, v in t.items():
        if v.requires_grad:
            np.testing.assert_allclose(ev.grads[k], v.grad.numpy(), rtol=1e-7, atol=1e-12, err_msg=k)
    np.testing.assert_allclose(ev.grads["x"], x.grad.numpy(), rtol=1e-7, atol=1e-12)


def test_max_pool_ties_match_torch():
    net = symnet.Network([1, 4, 4], [symnet.MaxPool2D(2, stride=1), symnet.Flatten(), symnet.Dense(2)],
                         loss="mse", name="ties")
    d = symnet.derive(net)
    rng = np.random.default_rng(0)
    params = {"W3": rng.normal(size=(2, 9)), "b3": np.zeros(2)}
    X = rng.integers(0, 2, size=(3, 1, 4, 4)).astype(float)     # many ties
    Y = rng.normal(size=(3, 2))
    ev = trace(d, params, X, Y)
    _, _, _, x = torch_run(net, params, X, Y, {}, True)
    np.testing.assert_allclose(ev.grads["x"], x.grad.numpy(), rtol=1e-10, atol=1e-14)
