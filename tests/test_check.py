"""symnet check on the example networks (every layer kind), and on a
deliberately broken kernel: it fails and names the worst entry."""
import numpy as np
import pytest

import symnet
from symnet.check import float64_copy, format_report, gradient_check, worst

codegen = pytest.importorskip("symnet.codegen")
ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent

BN_SPEC = {"name": "bn_cnn", "input": [1, 9, 9], "loss": "softmax_cross_entropy", "layers": [
    {"type": "conv2d", "filters": 3, "kernel": 3, "stride": 2, "padding": 1},
    {"type": "batchnorm", "activation": "relu"},
    {"type": "maxpool2d", "size": 2, "stride": 1},
    {"type": "flatten"}, {"type": "dropout", "rate": 0.25},
    {"type": "dense", "units": 6}, {"type": "batchnorm", "activation": "tanh"},
    {"type": "dense", "units": 3}]}


def bn_net():
    return symnet.from_dict(BN_SPEC)


@pytest.fixture(scope="module")
def kernels(kernel_dir):
    nets = {"lenet": symnet.load(ROOT / "examples" / "lenet.toml"),
            "digits_cnn": symnet.load(ROOT / "examples" / "digits_cnn.toml"),
            "bn_cnn": bn_net()}
    return {k: (net, codegen.generate(float64_copy(net), kernel_dir)) for k, net in nets.items()}


@pytest.mark.parametrize("name", ["lenet", "digits_cnn", "bn_cnn"])
def test_check_passes_on_example_networks(kernels, name):
    net, kernel = kernels[name]
    results = gradient_check(net, kernel=kernel, max_entries=8)
    assert worst(results) is None, format_report(results)
    names = [r.name for r in results]
    assert names[:len(net.param_shapes)] == list(net.param_shapes) and "x" in names
    if net.state_shapes:
        assert "x (evaluation)" in names


class Broken:
    """The real kernel with one gradient entry off by 5 percent."""

    def __init__(self, kernel, name, scale=1.05):
        self.kernel, self.name, self.scale = kernel, name, scale

    def loss_and_grads(self, *args, **kw):
        value, grads = self.kernel.loss_and_grads(*args, **kw)
        grads = dict(grads)
        g = np.array(grads[self.name], dtype=np.float64)
        g.reshape(-1)[0] *= self.scale
        grads[self.name] = g
        return value, grads

    def loss_and_input_grad(self, *args, **kw):
        return self.kernel.loss_and_input_grad(*args, **kw)


@pytest.mark.parametrize("name", ["gamma7", "W1"])
def test_broken_kernel_fails_and_names_the_entry(kernels, name):
    net, kernel = kernels["bn_cnn"]
    results = gradient_check(net, kernel=Broken(kernel, name), max_entries=400)
    bad = worst(results)
    assert bad is not None and bad.name == name and not bad.trace_ok
    assert "MISMATCH" in format_report(results)


def test_cli_names_the_worst_entry_of_a_broken_kernel(kernels, monkeypatch, capsys, tmp_path):
    from symnet.cli import main
    net, kernel = kernels["bn_cnn"]
    spec = tmp_path / "bn.toml"
    lines = [f'name = "bn_cnn"', "input = [1, 9, 9]", 'loss = "softmax_cross_entropy"']
    for layer in BN_SPEC["layers"]:
        lines.append("[[layers]]")
        lines += [f"{k} = {v!r}".replace("'", '"') for k, v in layer.items()]
    spec.write_text("\n".join(lines) + "\n")
    # symnet check compiles through symnet.progress (one shared kernel cache, a progress line)
    monkeypatch.setattr("symnet.progress.compiled_kernel", lambda net, *a, **k: Broken(kernel, "W8", scale=-1.0))
    assert main(["check", str(spec)]) == 1
    out = capsys.readouterr().out
    assert "gradient check failed: worst entry W8[0, 0]" in out
