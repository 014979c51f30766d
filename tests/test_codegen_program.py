"""The code generator as a program: emitters' statements, workspace sizes summed from
them, templates that only print, the derivation as the only door, kernel files keyed
by their text, --standalone files, and op counts per example network."""
from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from symnet import load
from symnet.codegen.generate import kernel_path, render, write
from symnet.codegen.program import Alias, Call, Take, When, work_per_row

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ("mlp", "logistic", "tiny", "lenet", "digits_cnn")

# Element-wise operations (sympy.count_ops) of the printed functions of each example:
# a change in the derivation that swells an expression shows here first.
OP_COUNTS = {
    "mlp": {"act_relu": 1, "dact_relu": 1, "loss_softmax": 2, "delta_softmax": 1},
    "logistic": {"act_tanh": 1, "dact_tanh": 4, "act_sigmoid": 1, "loss_elem": 7, "delta_elem": 1},
    "tiny": {"tanh_f32": 45, "act_tanh": 1, "dact_tanh": 4, "act_identity": 0, "loss_elem": 2, "delta_elem": 3},
    "lenet": {"act_relu": 1, "dact_relu": 1, "loss_softmax": 2, "delta_softmax": 1},
    "digits_cnn": {"act_relu": 1, "dact_relu": 1, "loss_softmax": 2, "delta_softmax": 1},
}


@pytest.mark.parametrize("example", EXAMPLES)
def test_op_counts_and_labels(example):
    from symnet.codegen.context import context
    from symnet.derive import derive
    net = load(ROOT / "examples" / f"{example}.toml")
    ctx = context(net, derive(net), "")
    assert {f.name: f.ops for f in ctx["functions"]} == OP_COUNTS[example]
    assert ctx["n_ops"] == sum(OP_COUNTS[example].values())
    text = render(net)
    # every generated function says where it comes from and how many operations it holds
    for match in re.finditer(r"\n(?P<label>[^\n]*)\n@njit\([^\n]*\)\ndef (?P<name>\w+)\(", text):
        if not match["name"].startswith("_"):
            assert re.match(r"# .*(layer \d+|loss|activation).*\d+ (element-wise )?ops$", match["label"]), match["label"]


def test_workspace_sizes_come_from_the_statements():
    body = [Take("A", 6, "(rows, 6)"), Take("I", 6, "(rows, 6)", index=True), Alias("B", "A"),
            When("flag", (Take("D", 3, "(rows, 3)"), Call("f", ("D",)))), Call("g", ("A", "B"))]
    assert work_per_row(body) == (9, 6)
    net = load(ROOT / "examples" / "lenet.toml")
    from symnet.codegen.context import context
    from symnet.derive import derive
    ctx = context(net, derive(net), "")
    evaluate, grads, step = ctx["entries"]
    assert (ctx["eval_work"], ctx["index_work"]) == evaluate.work
    assert ctx["train_work"] == grads.work[0] == step.work[0]
    # LeNet by hand: evaluation A1 A2 A3 A4 A6 A7 + the output delta; int64 argmax of both pools
    assert evaluate.work == (3456 + 864 + 1024 + 256 + 120 + 84 + 10, 864 + 256)


def test_templates_make_no_decision_by_layer_kind():
    for name in ("network.py.jinja", "kernels.jinja", "macros.jinja"):
        text = (ROOT / "templates" / name).read_text()
        tags = " ".join(re.findall(r"\{[{%].*?[%}]\}", text, re.S))   # what Jinja evaluates
        assert "kind" not in tags, name
        assert not re.search(r"\{%-? *(if|elif) [^%]*(dense|conv|pool|flatten|dropout|batchnorm|softmax)", text), name


def test_derive_imports_nothing_from_codegen():
    for path in (ROOT / "symnet" / "derive").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert "codegen" not in (node.module or ""), path.name
            elif isinstance(node, ast.Import):
                assert all("codegen" not in a.name for a in node.names), path.name


def test_a_changed_derivation_rule_gives_a_new_kernel(tmp_path):
    """The kernel file is named by its text: an edited rule (an editable install after a
    pull, the version unchanged) cannot load the old kernel."""
    copy = tmp_path / "copy"
    shutil.copytree(ROOT / "symnet", copy / "symnet", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "templates", copy / "templates", ignore=shutil.ignore_patterns("__pycache__"))
    rule = copy / "symnet" / "derive" / "output.py"
    text = rule.read_text()
    assert "delta = _simplify(sp.diff(per_element, Z)) / N_OUT" in text
    rule.write_text(text.replace("delta = _simplify(sp.diff(per_element, Z)) / N_OUT",
                                 "delta = _simplify(sp.diff(per_element, Z)) / (2 * N_OUT)"))
    spec = ROOT / "examples" / "tiny.toml"
    code = ("import sys; from symnet import load; from symnet.codegen.generate import kernel_path; "
            f"print(__import__('symnet').__file__); print(kernel_path(load({str(spec)!r}), {str(tmp_path)!r}).name)")
    env = dict(os.environ, PYTHONPATH=str(copy))
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=copy, capture_output=True, text=True, check=True)
    where, name = out.stdout.split()
    assert where.startswith(str(copy))
    original = kernel_path(load(spec), tmp_path).name
    assert name.startswith("tiny_") and name != original


def test_standalone_file_needs_only_numpy_and_numba(tmp_path):
    net = load(ROOT / "examples" / "logistic.toml")
    path = write(net, tmp_path, standalone=True)
    text = path.read_text()
    assert not re.search(r"^\s*(from symnet\.(?!errors)|import symnet)", text, re.M)
    assert path != write(net, tmp_path)   # the importing file is another one
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, net.input_shape[0]))
    Y = (rng.random((5, 1)) > 0.5).astype(float)
    np.savez(tmp_path / "data.npz", X=X, Y=Y, **net.init_params(seed=1))
    code = f"""
import sys, importlib.util
sys.modules["symnet"] = None   # no symnet at all
import numpy as np
spec = importlib.util.spec_from_file_location("standalone_logistic", {str(path)!r})
mod = importlib.util.module_from_spec(spec); sys.modules[spec.name] = mod; spec.loader.exec_module(mod)
d = dict(np.load({str(tmp_path / 'data.npz')!r}))
X, Y = d.pop("X"), d.pop("Y")
print(repr(mod.loss_and_grads(d, X, Y)[0]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    from symnet.codegen import generate
    mod = generate(net, tmp_path)
    assert float(out.stdout) == pytest.approx(mod.loss_and_grads(net.init_params(seed=1), X, Y)[0], rel=1e-12)


def test_cli_generate_standalone(tmp_path, capsys):
    from symnet.cli import main
    spec = str(ROOT / "examples" / "lenet.toml")
    assert main(["generate", spec, "-o", str(tmp_path / "a"), "--standalone"]) == 0
    assert main(["generate", spec, "-o", str(tmp_path / "b")]) == 0
    standalone, importing = capsys.readouterr().out.split()
    text, short = Path(standalone).read_text(), Path(importing).read_text()
    assert "def conv2d_forward(" in text and "def conv2d_forward(" not in short
    assert re.search(r"^from symnet\.runtime\.conv import", short, re.M)
    assert not re.search(r"^\s*(from|import) symnet\.runtime", text, re.M)
    compile(text, standalone, "exec")   # one valid module


def test_cache_index_skips_derivation_only_for_the_same_inputs(tmp_path, monkeypatch):
    gen = sys.modules["symnet.codegen.generate"]   # the module (symnet.codegen.generate is the function)
    monkeypatch.setenv("SYMNET_CACHE", str(tmp_path))
    net = load(ROOT / "examples" / "tiny.toml")
    first = gen.write(net)
    assert gen.TIMINGS["derive"] > 0 and first.parent == gen.versioned_cache_dir()
    assert gen.write(net) == first and gen.TIMINGS["derive"] == 0.0 == gen.TIMINGS["render"]   # warm: no derive
    monkeypatch.setattr(gen, "_sources_digest", lambda: b"another symnet source")   # e.g. an edited rule
    assert gen.write(net) == first and gen.TIMINGS["derive"] > 0   # derived again: same text, same file
