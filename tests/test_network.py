"""Specs, shapes, parameter names, summaries, derivation structure and errors."""
import subprocess
import sys
import time

import numpy as np
import pytest

import symnet
from symnet.errors import ShapeError, SpecError

EXAMPLES = "examples"


def mlp():
    return symnet.Network(input=(784,), layers=[symnet.Dense(256, activation="relu"), symnet.Dense(10)],
                          loss="softmax_cross_entropy", name="mlp", dtype="float32")


def test_python_and_toml_front_ends_agree():
    assert symnet.load(f"{EXAMPLES}/mlp.toml").to_spec() == mlp().to_spec()
    assert symnet.load(f"{EXAMPLES}/mlp.toml").fingerprint() == mlp().fingerprint()


def test_parameter_names_and_pytorch_shapes():
    assert mlp().param_shapes == {"W1": (256, 784), "b1": (256,), "W2": (10, 256), "b2": (10,)}
    params = mlp().init_params(seed=0, scheme="xavier")
    assert {k: v.shape for k, v in params.items()} == mlp().param_shapes
    assert params["W1"].dtype == np.float32
    np.testing.assert_array_equal(params["W1"], mlp().init_params(seed=0, scheme="xavier")["W1"])


def test_summary_lists_shapes_and_counts():
    text = mlp().summary()
    assert "(256,)" in text and "200,960" in text and "total parameters: 203,530" in text


def test_cli_summary_and_bad_spec_exit_code(tmp_path):
    out = subprocess.run([sys.executable, "-m", "symnet", "summary", f"{EXAMPLES}/logistic.toml"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "total parameters: 513" in out.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('input = [3]\n[[layers]]\ntype = "dense"\nunits = 0\n')
    out = subprocess.run([sys.executable, "-m", "symnet", "summary", str(bad)], capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "layer 1" in out.stderr and "units" in out.stderr


@pytest.mark.parametrize("table,match", [
    ({"layers": []}, "missing key 'input'"),
    ({"input": [3]}, "missing key 'layers'"),
    ({"input": [3], "layers": [{"type": "dense", "units": 2}], "optimiser": "x"}, "unknown key 'optimiser'"),
    ({"input": [3], "layers": [{"type": "dens", "units": 2}]}, "layer 1: unknown layer type 'dens'"),
    ({"input": [3], "layers": [{"units": 2}]}, "layer 1: missing key 'type'"),
    ({"input": [3], "layers": [{"type": "dense"}]}, "layer 1.*needs the key 'units'"),
    ({"input": [3], "layers": [{"type": "dense", "units": 2, "size": 3}]}, "layer 1.*unknown key 'size'"),
    ({"input": [3], "layers": [{"type": "dense", "units": -2}]}, "layer 1.*positive integer"),
    ({"input": [0], "layers": [{"type": "dense", "units": 2}]}, "input: must be a list of positive"),
    ({"input": [3], "layers": [{"type": "dense", "units": 2}], "loss": "bce"}, "loss bce.*sigmoid"),
    ({"input": [3], "layers": [{"type": "dense", "units": 2}], "loss": "hinj"}, "unknown loss 'hinj'"),
    ({"input": [3], "layers": [{"type": "dense", "units": 2}], "dtype": "float16"}, "dtype"),
    ({"input": [3], "layers": [{"type": "dense", "units": 2}], "loss": "cross_entropy"}, "softmax"),
])
def test_spec_errors_name_the_key_or_layer(table, match):
    with pytest.raises(SpecError, match=match):
        symnet.from_dict(table)


def test_dense_after_image_input_is_a_shape_error():
    with pytest.raises(ShapeError, match="layer 1.*rank 1.*flatten"):
        symnet.Network(input=(1, 8, 8), layers=[symnet.Dense(3)])


def test_bad_toml_names_the_file(tmp_path):
    path = tmp_path / "net.toml"
    path.write_text("input = [3\n")
    with pytest.raises(SpecError, match="net.toml: not valid TOML"):
        symnet.load(path)


def test_derivation_has_lecture_content():
    d = symnet.derive(symnet.Network((4,), [symnet.Dense(5, "sigmoid"), symnet.Dense(3, "tanh"), symnet.Dense(2)],
                                     loss="softmax_cross_entropy"))
    assert set(d.gradients) == {"W1", "b1", "W2", "b2", "W3", "b3", "x"}
    whys = [s.why for s in d.steps]
    assert any("chain rule" in w for w in whys) and any("definition" in w for w in whys)
    forms = {s.form for s in d.steps}
    assert {"shape", "forward", "loss", "element", "matrix", "batch"} <= forms
    assert str(d.output.delta) == "p - y"
    # the sigmoid layer's derivative is written through its output: a(1 - a)
    assert d.activations[1].dg_in_a is not None and "sigmoid" not in str(d.activations[1].dg_in_a)
    assert d.gradient("W2").shape == (3, 5)
    with pytest.raises(SpecError, match="no gradient named 'W9'"):
        d.gradient("W9")


def test_derivation_cost_does_not_grow_with_width():
    def timed(width):
        net = symnet.Network((width,), [symnet.Dense(width, "tanh") for _ in range(8)] + [symnet.Dense(1)])
        start = time.perf_counter()
        d = symnet.derive(net)
        return time.perf_counter() - start, len(d.steps)

    timed(4)                                   # warm the per-layer-type caches
    (_, steps_small), (_, steps_wide) = timed(4), timed(4096)
    assert steps_small == steps_wide           # same steps: nothing expanded per weight


def test_one_numbering_and_old_checkpoints_renamed_on_load(tmp_path):
    from symnet.runs import load_checkpoint, save_checkpoint
    net = symnet.load(f"{EXAMPLES}/lenet.toml")
    # layer l owns W<l>: conv 1, conv 3, dense 6, 7, 8 (pooling and flatten have none)
    assert [n for n in net.param_shapes if n.startswith("W")] == ["W1", "W3", "W6", "W7", "W8"]
    assert net.legacy_names() == {"W2": "W3", "b2": "b3", "W3": "W6", "b3": "b6", "W4": "W7", "b4": "b7",
                                  "W5": "W8", "b5": "b8"}
    assert mlp().legacy_names() == {}
    params = net.init_params(seed=1)
    old = {f"{n[0]}{k}": params[n] for k, (n) in enumerate(["W1", "W3", "W6", "W7", "W8"], 1)}
    old.update({f"b{k}": params[f"b{n[1:]}"] for k, n in enumerate(["W1", "W3", "W6", "W7", "W8"], 1)})
    old.update({"epoch": np.asarray(3), "meta": np.asarray("{}"), "opt.m.W2": params["W3"]})
    np.savez(tmp_path / "checkpoint.npz", **old)
    ck = load_checkpoint(tmp_path, net.legacy_names())
    assert set(ck.params) == set(params) and ck.optimizer["m.W3"].shape == params["W3"].shape
    for name, value in params.items():
        np.testing.assert_array_equal(ck.params[name], value)
    # a checkpoint written today is marked and read back unchanged
    save_checkpoint(tmp_path, params, {}, 4)
    ck = load_checkpoint(tmp_path, net.legacy_names())
    assert ck.meta["numbering"] == "layer" and set(ck.params) == set(params)


@pytest.mark.parametrize("layers", [[symnet.Dense(3, "softmax"), symnet.Dense(2)],
                                    [symnet.Dense(3), symnet.Softmax(), symnet.Dense(2)],
                                    [symnet.Softmax(), symnet.Dense(1)]])
def test_softmax_before_the_last_layer_is_refused_in_one_line(layers):
    # found by the random-spec property test: derive crashed with a TypeError
    with pytest.raises(SpecError, match=r"layer 1 \(dense\)|layer 2 \(softmax\)|layer 1 \(softmax\)"):
        symnet.Network([4] if layers[0].type == "dense" else [1], layers, loss="mse")
