"""Derivation documents: content, Markdown well-formedness, PDF compilation and
the checked-in docs/ (a drift test).

docs/mlp.{md,tex} and docs/logistic.{md,tex} are generated; after an intended
change to the derivation or the templates, rewrite them with

    SYMNET_UPDATE_DOCS=1 python -m pytest tests/test_render.py
"""
import os
import re
import shutil
from pathlib import Path

import pytest
import sympy as sp

import symnet
from symnet.errors import RenderError
from symnet.render import (cli_derive, compile_pdf, latex, to_latex, to_latex_fragment, to_markdown,
                           write_document)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ("mlp", "logistic")
DOC_EXAMPLES = tuple(sorted(p.stem for p in (ROOT / "examples").glob("*.toml")))   # every example in docs/
HAVE_PDFLATEX = shutil.which("pdflatex") is not None


def _derivation(name):
    return symnet.derive(symnet.load(ROOT / "examples" / f"{name}.toml"))


@pytest.fixture(scope="module")
def docs():
    """Each example's documents, as `symnet derive` writes them (with its [train] table's penalty)."""
    from symnet.spec import load_with_settings
    out = {}
    for name in DOC_EXAMPLES:
        net, train = load_with_settings(ROOT / "examples" / f"{name}.toml")
        d = symnet.derive(net)
        out[name] = {"d": d, "train": train, "tex": to_latex(d, train=train), "md": to_markdown(d, train=train)}
    return out


@pytest.mark.parametrize("name", EXAMPLES)
@pytest.mark.parametrize("fmt", ["tex", "md"])
def test_delta_recursion_and_weight_gradient(docs, name, fmt):
    text = docs[name][fmt]
    g = r"\mathrm{ReLU}'" if name == "mlp" else r"\tanh'"
    assert (r"\delta^{(1)} = %s\left(z^{(1)}\right) \odot \left(\left(W^{(2)}\right)^{T} \delta^{(2)}\right)" % g) in text
    assert r"\frac{\partial \ell}{\partial W^{(2)}} = \delta^{(2)} \left(a^{(1)}\right)^{T}" in text
    assert r"\frac{\partial \ell}{\partial W^{(1)}} = \delta^{(1)} \left(a^{(0)}\right)^{T}" in text
    for heading in ("Forward pass", "Loss and output error", "Backward pass, layer 2",
                    "Backward pass, layer 1", "The batch average in both conventions"):
        assert heading in text


@pytest.mark.parametrize("name", EXAMPLES)
@pytest.mark.parametrize("fmt", ["tex", "md"])
def test_gradient_table_has_every_parameter_and_x(docs, name, fmt):
    d, text = docs[name]["d"], docs[name][fmt]
    assert set(d.gradients) == {"W1", "b1", "W2", "b2", "x"}
    start = text.index("## Gradients\n" if fmt == "md" else r"\section{Gradients}")
    table = text[start:text.index("## The batch average" if fmt == "md" else r"\section{The batch average")]
    for g in d.gradients.values():
        for step in (g.element, g.matrix, g.batch):
            assert latex(step.rhs) in table, (g.name, step.form)
        name_cell = r"\texttt{%s}" % g.name if fmt == "tex" else "`%s`" % g.name
        assert name_cell in table


def test_output_error_softmax_and_bce(docs):
    assert r"\delta^{(2)}_{i} = p^{(2)}_{i} - y_{i}" in docs["mlp"]["tex"]
    for fmt in ("tex", "md"):
        text = docs["logistic"][fmt]
        assert r"\delta^{(2)}_{i} = \frac{a^{(2)}_{i} - y_{i}}{n}" in text
        # the steps a student needs: sigma' through a, then the cancellation, then n = 1
        assert r"\frac{\partial a^{(2)}_{i}}{\partial z^{(2)}_{i}} = a^{(2)}_{i} \left(1 - a^{(2)}_{i}\right)" in text
        assert r"\delta^{(2)}_{i} = a^{(2)}_{i} - y_{i}" in text


def test_printer_notation():
    z = sp.IndexedBase("z^{(2)}")
    i, k = sp.symbols("i k", integer=True)
    ell = sp.Symbol(r"\ell")
    assert latex(z[i]) == "z^{(2)}_{i}"
    assert latex(sp.IndexedBase("W^{(2)}")[k, i]) == "W^{(2)}_{ki}"
    assert latex(sp.Derivative(ell, z[i])) == r"\frac{\partial \ell}{\partial z^{(2)}_{i}}"
    x = sp.Symbol("x", real=True)
    # textbook notation: indicators, not cases or Heaviside
    assert latex(sp.Piecewise((x, x > 0), (0, True))) == r"x \mathbb{1}\left[x > 0\right]"
    assert latex(sp.Heaviside(x)) == r"\mathbb{1}\left[x > 0\right]"
    assert latex(sp.KroneckerDelta(i, k)) == r"\mathbb{1}\left[i = k\right]"
    assert latex(sp.Symbol("z^{(1)}_{i}") ** 2) == r"\left(z^{(1)}_{i}\right)^{2}"       # no double superscript
    assert latex(2 * sp.Symbol("a") - 2 * sp.Symbol("y")) == r"2 \left(a - y\right)"
    A, B = sp.MatrixSymbol("A", 2, 2), sp.MatrixSymbol("B", 2, 2)
    assert latex(sp.HadamardProduct(A, B)) == r"A \odot B"
    assert latex(sp.MatrixSymbol("W^{(2)}", 2, 2).T) == r"\left(W^{(2)}\right)^{T}"


@pytest.mark.parametrize("name", EXAMPLES)
def test_markdown_is_github_friendly(docs, name):
    md = docs[name]["md"]
    assert "$$" not in md                        # display math in ```math fences (tests/test_documents.py)
    blocks = re.findall(r"^```math\n(.*?)\n```$", md, flags=re.S | re.M)
    assert blocks
    for block in blocks:
        assert r"\operatorname" not in block
    for line in md.splitlines():
        if not line.startswith("```") and line not in blocks:
            assert line.count("$") % 2 == 0, line


def test_latex_document_structure(docs):
    tex = docs["mlp"]["tex"]
    assert tex.startswith("%") and r"\documentclass" in tex and tex.rstrip().endswith(r"\end{document}")
    used = set(re.findall(r"\\usepackage(?:\[[^]]*\])?\{([^}]*)\}", tex))
    assert used <= {"geometry", "fontenc", "lmodern", "amsmath,amssymb", "booktabs,longtable,array"}
    assert r"\usepackage[T1]{fontenc}" in tex
    assert "203,530" in tex                                           # parameter count


def test_fragment(docs):
    frag = to_latex_fragment(docs["mlp"]["d"])
    assert frag.startswith("$$") and frag.count("$$") % 2 == 0
    assert r"\odot" in frag and r"p^{(2)}_{i} - y_{i}" in frag
    assert docs["mlp"]["d"]._repr_latex_() == frag


@pytest.mark.skipif(not HAVE_PDFLATEX, reason="pdflatex is not installed (Debian: texlive-latex-base)")
@pytest.mark.parametrize("name", EXAMPLES)
def test_tex_compiles_with_pdflatex(docs, name, tmp_path):
    path = write_document(docs[name]["d"], "pdf", tmp_path / f"{name}.pdf")
    assert path.read_bytes().startswith(b"%PDF")


@pytest.mark.skipif(not HAVE_PDFLATEX, reason="pdflatex is not installed (Debian: texlive-latex-base)")
def test_pdf_failure_names_the_log_line():
    with pytest.raises(RenderError, match=r"pdflatex failed: .*Undefined control sequence"):
        compile_pdf("\\documentclass{article}\\begin{document}\\nosuchmacro\\end{document}\n")


def test_pdf_without_tex_engine(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RenderError, match="texlive-latex-base"):
        compile_pdf("")


def test_write_document_is_atomic_and_checks_format(docs, tmp_path):
    d = docs["logistic"]["d"]
    path = write_document(d, "md", tmp_path / "sub" / "logistic.md")
    assert path.read_text() == docs["logistic"]["md"]
    assert [p.name for p in path.parent.iterdir()] == ["logistic.md"]   # no temp files left
    with pytest.raises(RenderError):
        write_document(d, "docx", tmp_path / "x.docx")


def test_cli_derive(tmp_path):
    out = tmp_path / "mlp.tex"
    assert cli_derive(str(ROOT / "examples" / "mlp.toml"), "tex", str(out)) == f"wrote {out}"
    assert out.read_text().startswith("%")
    text = cli_derive(str(ROOT / "examples" / "mlp.toml"), "md", "-")
    assert text.startswith("<!--")


@pytest.mark.parametrize("name", DOC_EXAMPLES)
@pytest.mark.parametrize("fmt", ["tex", "md"])
def test_docs_are_up_to_date(docs, name, fmt):
    path = ROOT / "docs" / f"{name}.{fmt}"
    fresh = docs[name][fmt]
    if os.environ.get("SYMNET_UPDATE_DOCS") == "1":
        write_document(docs[name]["d"], fmt, path, train=docs[name]["train"])
    assert path.exists(), f"{path} is missing: run SYMNET_UPDATE_DOCS=1 pytest tests/test_render.py"
    assert path.read_text(encoding="utf-8") == fresh, \
        f"{path} is stale: run SYMNET_UPDATE_DOCS=1 pytest tests/test_render.py"


@pytest.mark.parametrize("name", DOC_EXAMPLES)
def test_docs_show_the_first_page_of_each_pdf(docs, name, tmp_path):
    """docs/<name>.png: the PDF's first page, so a reader sees it without building
    (rewritten with SYMNET_UPDATE_DOCS=1 where pdflatex and pdftoppm exist)."""
    png = ROOT / "docs" / f"{name}.png"
    if os.environ.get("SYMNET_UPDATE_DOCS") == "1" and HAVE_PDFLATEX and shutil.which("pdftoppm"):
        import subprocess
        pdf = write_document(docs[name]["d"], "pdf", tmp_path / f"{name}.pdf", train=docs[name]["train"])
        subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile", str(pdf),
                        str(tmp_path / name)], check=True)
        png.write_bytes((tmp_path / f"{name}.png").read_bytes())
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", \
        f"{png} is missing: run SYMNET_UPDATE_DOCS=1 pytest tests/test_render.py"


def test_long_equation_is_split_and_still_compiles(tmp_path):
    from symnet.derive import Step
    d = _derivation("logistic")
    ys = sp.symbols("y_1:30", real=True)
    long_rhs = sp.Add(*[sp.log(1 + sp.exp(y)) * y for y in ys])
    d.steps.append(Step(sp.Symbol(r"\ell"), long_rhs, "a long sum", "loss"))
    tex = to_latex(d)
    assert r"\begin{multline*}" in tex
    if HAVE_PDFLATEX:
        compile_pdf(tex)


def test_documents_end_with_the_optimisers_update_rules(docs):
    md, tex = docs["mlp"]["md"], docs["mlp"]["tex"]
    for text in (md, tex):
        assert "Parameter updates" in text
        # Adam (bold v, s: m is the batch size)
        assert r"\theta \leftarrow \theta - \eta\, \frac{\hat{\mathbf{v}}}{\sqrt{\hat{\mathbf{s}}} + \epsilon}" in text
        assert r"\mathbf{v} \leftarrow \beta\, \mathbf{v} + \nabla_{\theta} J" in text                   # momentum: beta
        assert r"\eta_t = \frac{\eta_0}{1 + \nu\, t}" in text                                         # 1/t decay


# ---------------------------------------------------------------- elastic net in the document
def _penalty_coefficients(md: str) -> tuple[float, float]:
    """(c1, c2) of the printed dR/dw = ... = c1 sgn w + c2 w (the numbers, read from the document)."""
    line = next(x for x in md.splitlines() if x.startswith(r"\frac{\partial R}{\partial w} = "))
    numeric = line.rsplit(" = ", 1)[1]
    number = r"([0-9.]+(?: \\cdot 10\^\{-?\d+\})?)"
    c1, c2 = re.fullmatch(number + r" \\mathrm\{sgn\}\(w\) \+ " + number + " w", numeric).groups()
    value = lambda t: float(t.split(" ")[0]) * (10.0 ** int(re.search(r"\{(-?\d+)\}", t).group(1)) if "cdot" in t else 1)
    return value(c1), value(c2)


def test_elastic_net_in_the_document(docs, tmp_path):
    """The spec's l1 and l2 together: the document states R, its gradient and the
    update with the gradient added; the printed coefficients are the central
    difference of the penalty (numpy, float64) at several weights."""
    import numpy as np
    from symnet.spec import load_with_settings
    name = "breast_cancer_elastic"
    _, train = load_with_settings(ROOT / "examples" / f"{name}.toml")
    l1, l2 = train["l1"], train["l2"]
    assert l1 > 0 and l2 > 0 and l1 != 2 * l2
    md, tex = docs[name]["md"], docs[name]["tex"]
    for text in (md, tex):
        updates = text[text.index("Parameter updates"):]
        assert "elastic net (L1 and L2 together)" in updates and "J + R" in updates
        assert r"\lambda_1 \left|{w}\right| + \lambda_2 w^{2}" in updates
        assert r"W^{(l)} \leftarrow W^{(l)} - \eta \left(\nabla_{W^{(l)}} J + \lambda_1" in updates
    c1, c2 = _penalty_coefficients(md)
    R = lambda w: l1 * np.abs(w) + l2 * w ** 2                                      # noqa: E731
    h = 1e-6
    for w in (-1.3, -0.2, 0.05, 0.7, 2.0):
        fd = (R(w + h) - R(w - h)) / (2 * h)
        assert abs((c1 * np.sign(w) + c2 * w) - fd) < 1e-9, (w, c1, c2, fd)
    # a spec without a penalty prints none
    assert "J + R" not in docs["breast_cancer_mlp"]["md"]
    from symnet.render.html import to_html
    page = to_html(docs[name]["d"], train=train)
    assert "elastic net (L1 and L2 together)" in page and "<math" in page
    if HAVE_PDFLATEX:
        assert compile_pdf(tex).startswith(b"%PDF")
