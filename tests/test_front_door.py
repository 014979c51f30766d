"""Reliability at the front door (issue 13): outputs are never destroyed,
nothing a user types hangs, every mistake is one line and exit 2."""
import os
import stat
import threading
import time
import zipfile

import numpy as np
import pytest

import symnet
from symnet.cli import main
from symnet.errors import FormulaError, OutputError, ShapeError, SpecError, SymnetError, TrainingError
from symnet.fileio import atomic_file, check_writable_dir, write_atomic
from symnet.runs import load_checkpoint, open_run, save_checkpoint

TINY = """name = "tiny"
input = [4]
loss = "mse"

[[layers]]
type = "dense"
units = 3
activation = "tanh"

[[layers]]
type = "dense"
units = 1
"""


def one_line_exit_2(capsys, argv):
    """Run the CLI; it must exit 2 with one line on stderr. Returns that line."""
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("symnet: error: "), err
    return err[0]


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


@pytest.fixture
def readonly_dir(tmp_path):
    """A folder no new file can be made in (root ignores permissions: /sys refuses everyone)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        (folder / "probe").touch()
    except OSError:
        yield folder
    else:
        (folder / "probe").unlink()
        yield __import__("pathlib").Path("/sys")
    finally:
        folder.chmod(0o755)


# ------------------------------------------------------------------ files


def test_write_goes_through_a_symlink(tmp_path):
    target = tmp_path / "real.md"
    target.write_text("old")
    link = tmp_path / "link.md"
    link.symlink_to(target)
    write_atomic(link, "new")
    assert link.is_symlink() and target.read_text() == "new"


def test_write_to_a_pipe_writes_directly(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    reader.start()
    write_atomic(fifo, "through the pipe")
    reader.join(10)
    assert got == [b"through the pipe"] and stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_folder_is_refused(tmp_path):
    with pytest.raises(OutputError, match="is a folder"):
        write_atomic(tmp_path, "x")


def test_mode_kept_or_from_umask(tmp_path):
    old = tmp_path / "old.txt"
    old.write_text("x")
    old.chmod(0o644)
    write_atomic(old, "y")
    assert stat.S_IMODE(old.stat().st_mode) == 0o644
    mask = os.umask(0o027)
    try:
        write_atomic(tmp_path / "new.txt", "z")
    finally:
        os.umask(mask)
    assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o640


def test_temp_file_removed_on_any_exception(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with atomic_file(tmp_path / "a.bin") as fh:
            fh.write(b"half")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_run_folder_sweeps_temp_files_and_refuses_a_second_writer(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / ".checkpoint.npz.abc123.tmp").write_bytes(b"left by SIGKILL")
    with open_run(out):
        assert not list(out.glob(".*.tmp"))
        with pytest.raises(TrainingError, match="in use by a training still running"):
            with open_run(out):
                pass
    with open_run(out):          # released at the end: the next training may take it
        pass


def test_readonly_and_file_in_the_way(readonly_dir, tmp_path):
    with pytest.raises(OutputError, match="cannot"):
        check_writable_dir(readonly_dir / "sub")
    with pytest.raises(OutputError, match="cannot write"):
        check_writable_dir(readonly_dir)
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    with pytest.raises(OutputError, match="not a folder"):
        check_writable_dir(afile)
    assert afile.read_text() == "keep me"


def test_cli_outputs_fail_with_one_line(capsys, spec, readonly_dir, tmp_path, monkeypatch):
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    assert "cannot write" in one_line_exit_2(capsys, ["generate", str(spec), "-o", str(readonly_dir)])
    assert "not a folder" in one_line_exit_2(capsys, ["generate", str(spec), "-o", str(afile)])
    assert "cannot write" in one_line_exit_2(capsys, ["demo", "-o", str(readonly_dir)])
    assert "not a folder" in one_line_exit_2(capsys, ["demo", "-o", str(afile)])
    start = time.process_time()
    line = one_line_exit_2(capsys, ["train", str(spec), "--data", "iris", "--out", str(readonly_dir)])
    assert "run folder" in line and time.process_time() - start < 10      # before any epoch
    assert "not a folder" in one_line_exit_2(capsys, ["train", str(spec), "--data", "iris", "--out", str(afile)])
    assert afile.read_text() == "keep me"
    monkeypatch.setenv("SYMNET_CACHE", str(readonly_dir))
    assert "SYMNET_CACHE" in one_line_exit_2(capsys, ["check", str(spec)])


# ------------------------------------------------------------------ spec and data files


def test_spec_file_errors(tmp_path, capsys):
    binary = tmp_path / "b.toml"
    binary.write_bytes(b"\x00\x01\x02PK\x03\x04" * 10)
    assert "binary" in one_line_exit_2(capsys, ["summary", str(binary)])
    latin = tmp_path / "l.toml"
    latin.write_bytes(b'name = "caf\xe9"')
    assert "not UTF-8" in one_line_exit_2(capsys, ["summary", str(latin)])
    bom = tmp_path / "bom.toml"
    bom.write_bytes(b"\xef\xbb\xbf" + TINY.encode())
    assert symnet.load(bom).name == "tiny"
    four = tmp_path / "four.toml"
    four.write_text(TINY.replace("input = [4]", 'input = "four"'))
    line = one_line_exit_2(capsys, ["summary", str(four)])
    assert "'four'" in line and "['f'" not in line


def test_formula_errors_name_file_and_layer_and_stay_short(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY.replace('activation = "tanh"', 'activation = "x + $"'))
    line = one_line_exit_2(capsys, ["summary", str(bad)])
    assert str(bad) in line and "layer 1" in line and "column 5" in line
    long = tmp_path / "long.toml"
    long.write_text(TINY.replace('activation = "tanh"', f'activation = "{"x+" * 600}x$"'))
    line = one_line_exit_2(capsys, ["summary", str(long)])
    assert len(line) < 500 and "characters" in line
    huge = tmp_path / "huge.toml"
    huge.write_text(TINY.replace('activation = "tanh"', f'activation = "{"y" * 100000}"'))
    assert len(one_line_exit_2(capsys, ["summary", str(huge)])) < 500
    shape = tmp_path / "shape.toml"
    shape.write_text(TINY.replace('input = [4]', 'input = [1, 2, 2]').replace(
        'type = "dense"\nunits = 3', 'type = "conv2d"\nfilters = 2\nkernel = 5', 1))
    line = one_line_exit_2(capsys, ["summary", str(shape)])
    assert str(shape) in line and "layer 1" in line


@pytest.mark.parametrize("content", [b"", b"this is not an archive", b"PK\x03\x04 truncated"])
def test_bad_npz_is_one_line_without_pickle_advice(tmp_path, content):
    path = tmp_path / "d.npz"
    path.write_bytes(content)
    with pytest.raises(symnet.DataError) as e:
        symnet.load_dataset(str(path))
    assert str(path) in str(e.value) and "pickle" not in str(e.value)


def test_truncated_checkpoint(tmp_path, capsys):
    spec = tmp_path / "iris3.toml"
    spec.write_text(TINY.replace("units = 1", "units = 3"))
    run = tmp_path / "run"
    run.mkdir()
    net = symnet.load(spec)
    save_checkpoint(run, net.init_params(), {}, 1, rng_state=np.random.default_rng(0).bit_generator.state)
    ck = run / "checkpoint.npz"
    ck.write_bytes(ck.read_bytes()[: ck.stat().st_size // 2])
    with pytest.raises(TrainingError, match="truncated"):
        load_checkpoint(run)
    assert "truncated" in one_line_exit_2(capsys, ["attack", str(spec), "--checkpoint", str(run)])
    assert "truncated" in one_line_exit_2(
        capsys, ["train", str(spec), "--data", "iris", "--out", str(run), "--resume", "--no-progress"])


def test_huge_layer_is_refused_with_the_figure(tmp_path, capsys):
    huge = tmp_path / "huge.toml"
    huge.write_text(TINY.replace("units = 3", "units = 1000000000").replace("units = 1\n", "units = 3\n"))
    assert main(["summary", str(huge)]) == 0
    capsys.readouterr()
    line = one_line_exit_2(capsys, ["check", str(huge)])
    assert "GB" in line and "available" in line
    line = one_line_exit_2(capsys, ["train", str(huge), "--data", "iris", "--no-progress"])
    assert "GB" in line and "available" in line


# ------------------------------------------------------------------ bounded symbolic work

SLOW_BEFORE = {
    "sin nested 15": "sin(" * 15 + "x" + ")" * 15,
    "high powers": "(x^2+x+1)^1000/(x+1)^999",
    "tanh log exp nested 30": "tanh(log(1+exp(" * 30 + "x" + ")))" * 30,
    "product of 59 powers": "*".join(f"(x+{i})^{i % 7 + 1}" for i in range(59)),
}


@pytest.mark.parametrize("formula", SLOW_BEFORE.values(), ids=SLOW_BEFORE.keys())
def test_custom_activation_derivative_is_bounded(formula):
    start = time.process_time()
    act = symnet.activations.make_activation(formula, "layer 1")
    assert act.derivative.has(symnet.activations.X)
    assert time.process_time() - start < 15


def test_derive_of_a_nested_formula_answers(tmp_path):
    net = symnet.Network((3,), [symnet.Dense(2, activation=SLOW_BEFORE["sin nested 15"]), symnet.Dense(1)])
    start = time.process_time()
    symnet.derive(net)
    assert time.process_time() - start < 15


def test_too_complex_formula_is_one_line_naming_it():
    formula = "*".join(f"(x+{i})^2" for i in range(1, 180))
    with pytest.raises(FormulaError, match=r"layer 2: activation '\(x\+1\)\^2.*too complex.*operations"):
        symnet.activations.make_activation(formula, "layer 2").derivative


@pytest.mark.parametrize("formula", ["step(x) + 1", "2*heaviside(x - 1)", "max(step(x), step(x-1))"])
def test_step_functions_still_refused(formula):
    with pytest.raises(symnet.NotDifferentiableError):
        symnet.activations.make_activation(formula, "layer 1").derivative


# ------------------------------------------------------------------ training


@pytest.fixture(scope="module")
def iris():
    return symnet.load_dataset("iris", seed=0)


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", "adagrad", "momentum", "sgd"])
def test_divergence_for_every_optimiser(iris, optimizer):
    from test_train import run
    net = symnet.Network((4,), [symnet.Dense(8, "tanh"), symnet.Dense(3)], loss="mse")
    with pytest.raises(TrainingError, match=r"^epoch \d+, step \d+: training diverged.*--lr 100000$"):
        run(net, iris, optimizer=optimizer, lr=1e6, epochs=5)


def test_nan_from_the_loss_domain_says_so(iris):
    from symnet.train import train
    from test_train import FakeKernel

    class LogLossKernel(FakeKernel):
        """TEST STAND-IN: identity outputs (finite); the loss log(yhat) is NaN where yhat < 0."""
        def loss_and_grads(self, params, X, Y):
            out = self.forward(params, X)
            with np.errstate(invalid="ignore"):
                loss = float(np.mean(-Y * np.log(out)))
            return loss, super().loss_and_grads(params, X, Y)[1]

    net = symnet.Network((4,), [symnet.Dense(8, "tanh"), symnet.Dense(3)], loss="-y*log(yhat)")
    with pytest.raises(TrainingError, match=r"loss '-y\*log\(yhat\)' is NaN at finite network outputs"):
        train(net, iris, kernel=LogLossKernel(net), epochs=1, progress=False)


def test_bad_lr_and_resume_epochs_and_repr(iris, tmp_path):
    from test_train import iris_net, run
    for lr in (float("inf"), float("nan"), 0.0, -1.0):
        with pytest.raises(TrainingError, match="lr=.* must be a finite number > 0"):
            run(iris_net(), iris, lr=lr, epochs=1)
    result = run(iris_net(), iris, lr=0.05, epochs=3, out=tmp_path / "r")
    assert len(repr(result)) < 200 and "W1" in repr(result)
    with pytest.raises(TrainingError, match="already trained 3 epoch.*--epochs 2"):
        run(iris_net(), iris, lr=0.05, epochs=2, out=tmp_path / "r", resume=True)


def test_train_table_and_flag_override(tmp_path):
    import argparse
    from symnet.spec import load_with_settings
    from symnet.train import DEFAULTS, add_train_arguments, settings_from

    path = tmp_path / "t.toml"
    path.write_text(TINY + '\n[train]\noptimizer = "sgd"\nlr = 0.5\nepochs = 7\n')
    _, table = load_with_settings(path)
    parser = add_train_arguments(argparse.ArgumentParser())
    s = settings_from(parser.parse_args([str(path), "--lr", "0.01"]), table)
    assert (s["optimizer"], s["lr"], s["epochs"], s["batch_size"]) == ("sgd", 0.01, 7, DEFAULTS["batch_size"])
    path.write_text(TINY + '\n[train]\nlearning_rate = 0.5\n')
    with pytest.raises(SpecError, match=r"t.toml: train: unknown key 'learning_rate'"):
        load_with_settings(path)
    path.write_text(TINY + '\n[train]\nepochs = "ten"\n')
    with pytest.raises(SpecError, match="train: epochs must be a number"):
        load_with_settings(path)


def test_every_example_carries_valid_train_settings():
    from symnet.demo import example_specs
    from symnet.spec import load_with_settings
    for name in ("digits_cnn", "logistic", "breast_cancer_mlp", "digits_mlp"):
        _, settings = load_with_settings(example_specs()[name])
        assert {"optimizer", "lr", "batch_size", "epochs"} <= set(settings), name


# ------------------------------------------------------------------ the command line


def test_version_and_complete_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"symnet {symnet.__version__}"
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "exits 2" in text and "verify hand-derived gradient formulas." in text
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 0.001)" in text and "(default: adam)" in text and "[train] table" in text


def test_progress_status_line():
    import io
    from symnet.progress import status
    stream = io.StringIO()
    with status("compiling kernels for lenet (first time; cached for later runs)", stream=stream):
        pass
    lines = stream.getvalue().splitlines()
    assert lines[0] == "compiling kernels for lenet (first time; cached for later runs)…"
    assert lines[1].strip().startswith("done (")


def test_readme_python_network_is_the_mlp_example():
    import re
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    call = re.search(r"net = (symnet\.Network\(.*?\))\n", readme, re.S).group(1)
    net = eval(call, {"symnet": symnet})          # the README's own text, not user input
    assert net.fingerprint() == symnet.load(root / "examples" / "mlp.toml").fingerprint()
    assert "../shared/" not in readme and (root / "docs" / "design.md").is_file()


def test_derive_to_dev_stdout(tmp_path, spec):
    """`-o /dev/stdout` writes the document where stdout points, here a file the shell opened."""
    import subprocess
    import sys
    out = tmp_path / "doc.md"
    with open(out, "wb") as fh:
        fh.write(b"first line\n")
        fh.flush()
        code = subprocess.run([sys.executable, "-m", "symnet", "derive", str(spec), "-o", "/dev/stdout"],
                              stdout=fh, stderr=subprocess.PIPE, timeout=300).returncode
    text = out.read_text()
    assert code == 0 and text.startswith("first line\n") and "\\delta" in text and "wrote" not in text
    assert stat.S_ISREG(os.stat(out).st_mode)


@pytest.mark.parametrize("loss", ["(yhat^2+yhat+1)^50/(yhat+1)^49 - y", "log(1+exp(yhat-y))^3/(1+(yhat-y)^2)^2"])
def test_custom_loss_simplification_is_bounded(loss):
    net = symnet.Network((3,), [symnet.Dense(2, "tanh"), symnet.Dense(1, "sigmoid")], loss=loss)
    start = time.process_time()
    symnet.derive(net)
    assert time.process_time() - start < 15


def test_train_cli_says_nothing_is_saved_and_refuses_lr_inf(tmp_path, capsys):
    spec = tmp_path / "iris3.toml"
    spec.write_text(TINY.replace("units = 1", "units = 3"))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no RuntimeWarning leaks out
        code = main(["train", str(spec), "--data", "iris", "--lr", "inf"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[0].startswith("note: no --out given, so nothing is saved")
    assert err[1] == "symnet: error: lr=inf must be a finite number > 0 (e.g. 1e-3)" and len(err) == 2


def test_kernel_printing_is_bounded(tmp_path, capsys, monkeypatch):
    """Past the printing budget: one line naming the custom formula, no file."""
    monkeypatch.setattr(symnet.budget, "PRINT_SECONDS", 0.01)
    spec = tmp_path / "custom.toml"
    spec.write_text(TINY.replace('activation = "tanh"', 'activation = "x*tanh(x) + sin(x)^2"'))
    line = one_line_exit_2(capsys, ["generate", str(spec), "-o", str(tmp_path / "gen")])
    assert "layer 1 (dense): activation 'x*tanh(x) + sin(x)^2' is too complex to print" in line
    assert not list((tmp_path / "gen").glob("*"))


@pytest.mark.skipif(not hasattr(__import__("signal"), "setitimer"), reason="CPU-time limits need setitimer")
def test_a_budget_ends_even_when_its_signal_is_lost():
    """The limit's signal can land where Python ignores errors (a gc callback) or where C code
    turns them into another error: past the limit, the block still ends out of time."""
    from symnet.budget import _OutOfTime, _time_limit

    def spin(other):
        """0.2 s of CPU under a 0.02 s limit, the signal's exception ignored or replaced by other."""
        with _time_limit(0.02):
            start = time.process_time()
            while time.process_time() - start < 0.2:
                try:
                    sum(range(1000))
                except BaseException:
                    if other is not None:
                        raise other from None
    for other in (None, SystemError("AST constructor recursion depth mismatch")):
        with pytest.raises(_OutOfTime):
            spin(other)


@pytest.mark.parametrize("formula", [SLOW_BEFORE["tanh log exp nested 30"], "sigmoid(" * 30 + "x" + ")" * 30,
                                     "sinc(" * 30 + "x" + ")" * 30])
def test_deep_nesting_generates_quickly(tmp_path, capsys, formula):
    deep = tmp_path / "deep.toml"
    deep.write_text(TINY.replace('activation = "tanh"', f'activation = "{formula}"'))
    start = time.process_time()
    code = main(["generate", str(deep), "-o", str(tmp_path / "gen")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 0, err
    assert time.process_time() - start < 30
    (kernel,) = (tmp_path / "gen").glob("*.py")
    assert kernel.stat().st_size < 200_000        # each nested argument printed once, not 4^30 times


def test_a_reader_that_leaves_early_ends_the_command_quietly():
    # `symnet summary ... | head -1`: the pipe closes before symnet writes; no traceback.
    import subprocess
    import sys
    from pathlib import Path
    lenet = Path(__file__).resolve().parents[1] / "examples" / "lenet.toml"
    proc = subprocess.Popen([sys.executable, "-m", "symnet", "summary", str(lenet)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()                      # the reader is gone before the first line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert "Traceback" not in err and err == ""


def test_demo_documents_are_symnet_derives(tmp_path, monkeypatch, capsys):
    """The demo writes each example's document as `symnet derive` does: with its spec's
    [train] table (the elastic-net example's penalty in the updates section)."""
    import symnet.demo as demo
    monkeypatch.setattr(demo, "DOCUMENTED", ("breast_cancer_elastic",))
    specs = demo.example_specs()
    demo.write_documents(specs, tmp_path / "demo", ["md"])
    assert main(["derive", str(specs["breast_cancer_elastic"]), "--format", "md", "-o", str(tmp_path / "cli.md")]) == 0
    text = (tmp_path / "demo" / "breast_cancer_elastic.md").read_text()
    assert r"\lambda_1 = 0.0002" in text and text == (tmp_path / "cli.md").read_text()
