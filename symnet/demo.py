"""`symnet demo`: derive the example networks' documents, generate their
kernels, train the digits CNN, and say where every output is."""
from __future__ import annotations

import shutil
import time
from importlib import resources
from pathlib import Path

from .fileio import check_writable_dir
from .spec import load, load_with_settings

DOCUMENTED = ("mlp", "logistic", "lenet", "digits_cnn")
GENERATED = ("mlp", "logistic", "tiny", "digits_mlp", "lenet", "digits_cnn")
TRAINED = "digits_cnn"      # with its spec's [train] settings (docs/performance.md: accuracy over seeds)


def example_specs() -> dict[str, Path]:
    """The example spec files shipped with symnet, by name."""
    folder = resources.files("symnet.examples")
    return {Path(str(f)).stem: Path(str(f)) for f in folder.iterdir() if str(f).endswith(".toml")}


def write_documents(specs: dict, docs: Path, formats) -> None:
    """The DOCUMENTED examples' derivations, as `symnet derive` writes them (with their
    spec's [train] table: an L1/L2 penalty goes into the updates section)."""
    from .derive import derive
    from .render import write_document
    for name in DOCUMENTED:
        net, settings = load_with_settings(specs[name])
        d = derive(net)
        written = [write_document(d, fmt, docs / f"{name}.{fmt}", train=settings) for fmt in formats]
        print(f"  derivation of {name}: " + ", ".join(str(p) for p in written))


def run_demo(out: Path) -> int:
    check_writable_dir(out, "-o")
    specs = example_specs()
    print(f"symnet demo: writing to {out}/")

    formats = ["md", "tex"] + (["pdf"] if shutil.which("pdflatex") else [])
    write_documents(specs, out / "docs", formats)
    if "pdf" not in formats:
        print("  (no PDF: install pdflatex, e.g. the Debian packages texlive-latex-base "
              "texlive-latex-recommended latexmk)")

    from .codegen.generate import write
    for name in GENERATED:
        start = time.perf_counter()
        path = write(load(specs[name]), out_dir=out / "generated")
        print(f"  kernels of {name}: {path} ({time.perf_counter() - start:.1f} s)")

    from .data import load_dataset
    from .progress import compiled_kernel
    from .train import DEFAULTS, train
    net, settings = load_with_settings(specs[TRAINED])
    training = {k: settings.get(k, DEFAULTS[k]) for k in ("optimizer", "lr", "batch_size", "epochs", "seed")}
    data = load_dataset("digits", seed=training["seed"], input_shape=net.input_shape)
    run_dir = out / "runs" / TRAINED
    kernel = compiled_kernel(net, batch_size=training["batch_size"])   # the cache train and check use
    print(f"  training {TRAINED} on the scikit-learn digits (1x8x8 images) ...")
    start = time.perf_counter()
    result = train(net, data, kernel=kernel, out=run_dir, progress=False, **training)
    print(f"  {TRAINED}: test accuracy {result.test_accuracy:.4f} after {result.epochs_run} epochs "
          f"({time.perf_counter() - start:.1f} s of training); run directory {run_dir}")
    return 0

