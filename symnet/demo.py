"""`symnet demo`: derive the example networks' documents, generate their
kernels, train the digits CNN, and say where every output is."""
from __future__ import annotations

import shutil
import time
from importlib import resources
from pathlib import Path

from .spec import load

DOCUMENTED = ("mlp", "logistic", "lenet", "digits_cnn")


def example_specs() -> dict[str, Path]:
    """The example spec files shipped with symnet, by name."""
    folder = resources.files("symnet.examples")
    return {Path(str(f)).stem: Path(str(f)) for f in folder.iterdir() if str(f).endswith(".toml")}


def run_demo(out: Path) -> int:
    from .render import write_document
    out.mkdir(parents=True, exist_ok=True)
    specs = example_specs()
    nets = {name: load(specs[name]) for name in DOCUMENTED if name in specs}
    print(f"symnet demo: writing to {out}/")

    docs = out / "docs"
    formats = ["md", "tex"] + (["pdf"] if shutil.which("pdflatex") else [])
    for name, net in nets.items():
        from .derive import derive
        d = derive(net)
        written = [write_document(d, fmt, docs / f"{name}.{fmt}") for fmt in formats]
        print(f"  derivation of {name}: " + ", ".join(str(p) for p in written))
    if "pdf" not in formats:
        print("  (no PDF: install pdflatex, e.g. the Debian packages texlive-latex-base "
              "texlive-latex-recommended latexmk)")

    from .codegen import generate
    for name, net in nets.items():
        start = time.perf_counter()
        kernel = generate(net, out_dir=out / "generated")
        print(f"  kernels of {name}: {kernel.path} ({time.perf_counter() - start:.1f} s)")

    if "digits_cnn" in specs:
        from .data import load_dataset
        from .train import train
        net = nets["digits_cnn"]
        data = load_dataset("digits", seed=0, input_shape=net.input_shape)
        print("  training digits_cnn on the scikit-learn digits (8x8 images) ...")
        result = train(net, data, optimizer="adam", lr=3e-3, batch_size=32, epochs=15, seed=0,
                       out=out / "runs" / "digits_cnn", progress=False)
        print(f"  digits_cnn test accuracy: {result.test_accuracy:.4f} "
              f"(run directory: {out / 'runs' / 'digits_cnn'})")
    return 0
