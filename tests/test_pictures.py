"""Run-folder pictures: gradient norms per layer, first-layer filters, feature maps,
and the binary table beside the confusion matrix. Content is checked, not just files."""
import json

import numpy as np
import pytest

from symnet import Conv2D, Dense, Flatten, MaxPool2D, Network
from symnet.data import load_dataset
from symnet.pictures import (GradNormMeter, conv_feature_maps, feature_maps_figure, filters_figure,
                             grad_norms_figure)
from symnet.train import train

torch = pytest.importorskip("torch")
F = torch.nn.functional
pytest.importorskip("sklearn")


def cnn():
    return Network(input=[1, 8, 8], layers=[Conv2D(3, 3, padding="same", activation="relu"), MaxPool2D(2),
                                            Conv2D(2, 3, activation="tanh"), Flatten(), Dense(10)],
                   loss="softmax_cross_entropy", name="tiny_cnn")


def _torch_forward(params, X, upto=None):
    t = {k: torch.tensor(np.asarray(v, dtype=np.float64), requires_grad=True) for k, v in params.items()}
    a1 = F.relu(F.conv2d(torch.tensor(X, dtype=torch.float64), t["W1"], t["b1"], padding=1))
    a3 = torch.tanh(F.conv2d(F.max_pool2d(a1, 2), t["W3"], t["b3"]))
    z5 = a3.flatten(1) @ t["W5"].T + t["b5"]
    return t, a1, a3, z5


class TorchKernel:
    """TEST STAND-IN for the generated kernel of cnn(), by torch autograd."""

    def forward(self, params, X):
        return F.softmax(_torch_forward(params, X)[3], 1).detach().numpy()

    def loss_and_grads(self, params, X, Y):
        t, _, _, z = _torch_forward(params, X)
        loss = F.cross_entropy(z, torch.tensor(Y).argmax(1))
        loss.backward()
        return float(loss.detach()), {k: v.grad.numpy() for k, v in t.items()}


@pytest.fixture(scope="module")
def digits_images():
    return load_dataset("digits", seed=0, image=True)


def test_grad_norm_meter_means_of_norms():
    meter = GradNormMeter()
    rng = np.random.default_rng(0)
    batches = [{"W1": rng.normal(size=(3, 2)), "b1": rng.normal(size=3), "W10": rng.normal(size=(1, 3))}
               for _ in range(3)]
    for g in batches:
        meter.add(g)
    got = meter.epoch()
    assert list(got) == ["W1", "W10"]            # weights only, by layer number
    assert got["W1"] == pytest.approx(np.mean([np.linalg.norm(g["W1"]) for g in batches]))
    assert meter.count == 0


def test_conv_run_folder_pictures(tmp_path, digits_images):
    net = cnn()
    res = train(net, digits_images, kernel=TorchKernel(), epochs=2, batch_size=128, lr=0.01,
                out=tmp_path, progress=False)
    for name in ("grad_norms.png", "filters.png", "feature_maps.png"):
        assert (tmp_path / name).stat().st_size > 1000
    history = json.loads((tmp_path / "metrics.json").read_text())["history"]
    assert [sorted(row) for row in history["grad_norm"]] == [["W1", "W3", "W5"]] * 2
    # The recorded norm is the data loss's gradient norm (epoch 1 is positive, finite).
    assert all(0 < v < 1e3 for v in history["grad_norm"][0].values())

    # One line per layer, on a log axis, ending at the last epoch's value.
    ax = grad_norms_figure(history).axes[0]
    assert ax.get_yscale() == "log" and len(ax.lines) == 3
    assert ax.lines[2].get_ydata()[-1] == pytest.approx(history["grad_norm"][-1]["W5"])

    # One panel per kernel of layer 1, showing that kernel.
    fig = filters_figure(res.params["W1"])
    panels = [a for a in fig.axes if a.images]
    assert len(panels) == 3
    np.testing.assert_allclose(panels[1].images[0].get_array(), res.params["W1"][1, 0])

    # Feature maps: every conv layer's a^(l), as torch computes it.
    x = digits_images.X_test[0]
    maps = conv_feature_maps(net, res.params, x)
    _, a1, a3, _ = _torch_forward(res.params, x[None])
    assert [label.split(":")[0] for label, _ in maps] == ["layer 1", "layer 3"]
    np.testing.assert_allclose(maps[0][1], a1.detach().numpy()[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(maps[1][1], a3.detach().numpy()[0], rtol=1e-10, atol=1e-12)
    fig = feature_maps_figure(net, res.params, x)
    assert len([a for a in fig.axes if a.images]) == 1 + 3 + 2     # input + 3 + 2 channels
