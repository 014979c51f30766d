"""`symnet demo`: derive the example networks' documents, generate their
kernels, train the digits CNN, and say where every output is."""
from __future__ import annotations

import shutil
import time
from importlib import resources
from pathlib import Path

from .spec import load

DOCUMENTED = ("mlp", "logistic", "lenet", "digits_cnn")
GENERATED = ("mlp", "logistic", "tiny", "digits_mlp", "lenet", "digits_cnn")
TRAINED = "digits_cnn"
# Hyperparameters of the demo run (docs/performance.md has the accuracy over seeds).
TRAINING = {"optimizer": "adam", "lr": 3e-3, "batch_size": 32, "epochs": 40, "seed": 0}


def example_specs() -> dict[str, Path]:
    """The example spec files shipped with symnet, by name."""
    folder = resources.files("symnet.examples")
    return {Path(str(f)).stem: Path(str(f)) for f in folder.iterdir() if str(f).endswith(".toml")}


def run_demo(out: Path) -> int:
    from .render import write_document
    out.mkdir(parents=True, exist_ok=True)
    specs = example_specs()
    nets = {name: load(specs[name]) for name in DOCUMENTED + GENERATED if name in specs}
    print(f"symnet demo: writing to {out}/")

    docs = out / "docs"
    formats = ["md", "tex"] + (["pdf"] if shutil.which("pdflatex") else [])
    for name in DOCUMENTED:
        from .derive import derive
        net = nets[name]
        d = derive(net)
        written = [write_document(d, fmt, docs / f"{name}.{fmt}") for fmt in formats]
        print(f"  derivation of {name}: " + ", ".join(str(p) for p in written))
    if "pdf" not in formats:
        print("  (no PDF: install pdflatex, e.g. the Debian packages texlive-latex-base "
              "texlive-latex-recommended latexmk)")

    from .codegen import generate
    for name in GENERATED:
        net = nets[name]
        start = time.perf_counter()
        kernel = generate(net, out_dir=out / "generated")
        print(f"  kernels of {name}: {kernel.path} ({time.perf_counter() - start:.1f} s)")

    from .data import load_dataset
    from .train import train
    net = nets[TRAINED]
    data = load_dataset("digits", seed=TRAINING["seed"], input_shape=net.input_shape)
    run_dir = out / "runs" / TRAINED
    kernel = generate(net, out_dir=out / "generated")
    start = time.perf_counter()
    _compile(kernel, net, data)
    print(f"  compiled the kernels of {TRAINED} ({time.perf_counter() - start:.1f} s; cached for later runs)")
    print(f"  training {TRAINED} on the scikit-learn digits (1x8x8 images) ...")
    start = time.perf_counter()
    result = train(net, data, kernel=kernel, out=run_dir, progress=False, **TRAINING)
    print(f"  {TRAINED}: test accuracy {result.test_accuracy:.4f} after {result.epochs_run} epochs "
          f"({time.perf_counter() - start:.1f} s of training); run directory {run_dir}")
    return 0


def _compile(kernel, net, data):
    """Call each kernel function once, so training time is training, not JIT compiling."""
    params = net.init_params(seed=0)
    X, Y = data.X_train[:2].astype(net.dtype), data.Y_train[:2].astype(net.dtype)
    kernel.loss_and_grads(params, X, Y)
    kernel.forward_and_loss(params, X, Y)
