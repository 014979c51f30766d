"""Documents a lecturer can hand out: the PDF builds for every built-in
activation, loss and layer kind and for custom formulas with powers, roots and
nesting; its log has no overfull box beyond OVERFULL_TOLERANCE_PT; no raw SymPy
output (Piecewise, Heaviside, theta, wedge chains) and no escaped math in prose
reaches a document; every parameter's superscript is its layer's number; the
Markdown follows the rules that survive a code host's Markdown pass.

Compile time: one document holds every activation and layer kind (one pdflatex
run); the losses need one small document each.
"""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import symnet
from symnet import AvgPool2D, BatchNorm, Conv2D, Dense, Dropout, Flatten, MaxPool2D, Network, Softmax
from symnet.activations import BUILTIN
from symnet.render import build_pdf, overfull_pt, to_latex, to_markdown

ROOT = Path(__file__).resolve().parent.parent
HAVE_PDFLATEX = shutil.which("pdflatex") is not None
OVERFULL_TOLERANCE_PT = 2.0      # the measure: pdflatex's "Overfull \hbox (X pt too wide)" lines
CUSTOM = ["x^2", "x^3 + x", "sqrt(1+x^2)", "x*tanh(log(1+exp(x)))", "exp(-x^2/2)/(1+x^2)", "1/(1+x^2)^(3/2)"]
BUILTIN_ACTS = [a for a in BUILTIN if a not in ("step", "linear")]
LOSSES = ["mse", "l1", "bce", "hinge", "softmax_cross_entropy", "cross_entropy", "(yhat - y)^4 + log(1 + (yhat - y)^2)"]


def zoo():
    """Every layer kind (conv stride 2 padding 1, overlapping pools, flatten, batch
    norm after conv and after dense, dropout) and every activation, one network."""
    acts = [{"name": "leaky_relu", "slope": 0.1} if a == "leaky_relu" else a for a in BUILTIN_ACTS] + CUSTOM
    layers = [Conv2D(2, 3, stride=2, padding=1, activation="relu"), BatchNorm(activation="tanh"),
              MaxPool2D(2, stride=1), AvgPool2D(2, stride=1), Flatten(), Dense(4), BatchNorm(activation="sigmoid"),
              Dropout(0.3)]
    layers += [Dense(3, activation=a) for a in acts] + [Dense(1, activation="sigmoid")]
    return Network(input=(1, 9, 9), layers=layers, loss="bce", name="zoo")


def loss_net(loss):
    layers = [Dense(3, activation="tanh")]
    if loss == "cross_entropy":
        layers += [Dense(3), Softmax()]
    elif loss == "softmax_cross_entropy":
        layers += [Dense(3)]
    else:
        layers += [Dense(2, activation="sigmoid" if loss == "bce" else None)]
    return Network(input=(4,), layers=layers, loss=loss, name="loss_net")


@pytest.fixture(scope="module")
def documents():
    nets = {"zoo": zoo(), **{f"loss {name}": loss_net(name) for name in LOSSES}}
    for name in ("mlp", "logistic", "lenet", "digits_cnn"):
        nets[name] = symnet.load(ROOT / "examples" / f"{name}.toml")
    out = {}
    for key, net in nets.items():
        d = symnet.derive(net)
        out[key] = {"net": net, "d": d, "tex": to_latex(d), "md": to_markdown(d)}
    return out


def _prose(tex: str) -> str:
    """The text outside math: inline $...$, display environments and \\texttt removed."""
    tex = re.sub(r"\\begin\{(equation|multline)\*\}.*?\\end\{\1\*\}", " ", tex, flags=re.S)
    tex = re.sub(r"\$[^$]*\$", " ", tex)
    return tex


@pytest.mark.skipif(not HAVE_PDFLATEX, reason="pdflatex is not installed (Debian: texlive-latex-base)")
@pytest.mark.parametrize("key", ["zoo"] + [f"loss {name}" for name in LOSSES])
def test_pdf_builds_without_overfull_boxes(documents, key):
    pdf, log = build_pdf(documents[key]["tex"])
    assert pdf.startswith(b"%PDF")
    too_wide = [x for x in overfull_pt(log) if x > OVERFULL_TOLERANCE_PT]
    assert not too_wide, f"{key}: overfull boxes of {too_wide} pt"
    assert "T1/" in log                         # T1 font encoding: < and > print as themselves
    if key == "zoo" and shutil.which("pdftotext"):
        # amssymb's \mathbb{1} is the glyph of \nVdash; the indicator must print as a 1
        text = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
        assert "\u22ae" not in text and "11[" in text.replace(" ", "")


def test_overfull_measure_reads_pdflatex_logs():
    log = ("Overfull \\hbox (398.2pt too wide) in paragraph at lines 3--9\n"
           "Underfull \\hbox (badness 10000)\nOverfull \\vbox (12.5pt too high) has occurred\n")
    assert overfull_pt(log) == [398.2, 12.5]


FORBIDDEN = ["Piecewise", "Heaviside", r"\theta\left(", r"\wedge", r"\begin{cases}", "KroneckerDelta",
             r"\operatorname{Max}", "sympy"]


@pytest.mark.parametrize("fmt", ["tex", "md"])
def test_no_raw_sympy_in_documents(documents, fmt):
    for key, doc in documents.items():
        text = doc[fmt]
        for token in FORBIDDEN:
            assert token not in text, f"{key} ({fmt}): {token!r}"


def test_no_escaped_math_in_prose(documents):
    for key, doc in documents.items():
        prose = _prose(doc["tex"])
        # an escaped underscore is fine inside a name (log\_sigmoid), not before math (W\_\{f, a\_(c)
        bad = re.findall(r".{0,20}(?:\\_(?![A-Za-z])|(?<![A-Za-z])\\_).{0,20}", prose)
        assert not bad, f"{key}: {bad[:3]}"


def test_parameter_superscripts_are_their_layers(documents):
    for key, doc in documents.items():
        net = doc["net"]
        owners = {p.position for p in net.placed if p.params}
        for text in (doc["tex"], doc["md"]):
            for sym, l in re.findall(r"(W|b|\\gamma|\\beta)\^\{\((\d+)\)\}", text):
                assert int(l) in owners, f"{key}: {sym}^({l}) but layer {l} has no parameters"
            # z^(l) = W^(k) a^(l-1) + b^(k) has k = l
            for l, k in re.findall(r"z\^\{\((\d+)\)\}(?:_\{[a-z]+\})? = [^\n]*?W\^\{\((\d+)\)\}", text):
                assert l == k, f"{key}: z^({l}) computed with W^({k})"


@pytest.mark.parametrize("key", ["zoo", "lenet", "loss bce"])
def test_markdown_survives_code_hosts(documents, key):
    md = documents[key]["md"]
    assert "$$" not in md                                   # display math only in ```math fences
    lines = md.splitlines()
    fences = [k for k, line in enumerate(lines) if line.startswith("```")]
    assert len(fences) % 2 == 0 and fences
    for start, end in zip(fences[::2], fences[1::2]):
        assert lines[start] == "```math" and lines[end] == "```"
        assert start == 0 or lines[start - 1] == "", f"no blank line before the block at line {start + 1}"
        assert end + 1 == len(lines) or lines[end + 1] == "", f"no blank line after the block at line {end + 1}"
        body = lines[start + 1:end]
        assert all(len(line) <= 300 for line in body), max(body, key=len)[:80]
    inside = set()
    for start, end in zip(fences[::2], fences[1::2]):
        inside.update(range(start, end + 1))
    for k, line in enumerate(lines):
        if k not in inside:
            assert line.count("$") % 2 == 0, line              # inline math balanced
            assert len(line) <= 400 or line.startswith("|"), line[:80]


# ---------------------------------------------------------------- textbook forms, chosen by rule
def _md(net):
    return to_markdown(symnet.derive(net), example=False)


def test_textbook_forms_of_activations_and_losses():
    tanh_mse = _md(Network(input=(2,), layers=[Dense(3, activation="tanh"), Dense(1)], loss="mse"))
    assert r"\tanh'\left(z^{(1)}_{i}\right) = 1 - \left(a^{(1)}_{i}\right)^{2}" in tanh_mse       # not (a+1)(1-a)
    assert r"\delta^{(2)}_{i} = \frac{2 \left(a^{(2)}_{i} - y_{i}\right)}{n}" in tanh_mse          # not (2a - 2y)/n
    assert r"\delta^{(2)}_{i} = 2 \left(a^{(2)}_{i} - y_{i}\right)" in tanh_mse                    # n = 1
    assert r"\mathrm{id}'" not in tanh_mse                                                        # identity: no g'
    drop = _md(Network(input=(4,), layers=[Dense(5, activation="relu"), Dropout(0.3), Dense(2)], loss="mse"))
    assert r"a^{(2)}_{i} = \frac{\xi_{i} a^{(1)}_{i}}{1 - \rho}" in drop and r"\rho = 0.3" in drop     # p: softmax
    assert r"\mathrm{ReLU}'(z) = \mathbb{1}\left[z > 0\right]" in drop


def test_pooling_and_strided_conv_in_indicators(documents):
    md = documents["zoo"]["md"]
    assert r"\mathbb{1}\left[\omega_1 \geq \max\left(\omega_2, \omega_3, \omega_4\right)\right]" in md      # tie: first maximum
    assert r"\mathbb{1}\left[i = \hat{i}^{(3)}_{cuv},\ j = \hat{j}^{(3)}_{cuv}\right]" in md     # routed to argmax
    assert r"0 \le i - u \le 1,\ 0 \le j - v \le 1" in md                                           # avg pool window
    # stride 2: the dilated error, integer subscripts, its range scaled by the stride (9 = 2 (5 - 1) + 1 rows)
    assert r"W^{(1)}_{fcqr} \check{\delta}^{(1)}_{f,u - q,v - r}" in md
    assert r"\mathbb{1}\left[0 \le u - q \le 8,\ 0 \le v - r \le 8\right]" in md
    assert r"\frac{\partial \ell}{\partial W^{(1)}} = \tilde{a}^{(0)} \star \check{\delta}^{(1)}" in md
    assert r"\mathrm{full}\left(\check{\delta}^{(1)}\right) \ast \mathrm{rot180}(W^{(1)})" in md
    assert "**dilated error**" in md and r"\mid" not in md


def test_dilation_rule_agrees_with_the_strided_gather():
    """The dilated form equals SymPy's gathered input gradient at every position
    (random numbers for W and delta): the rewrite changes the notation only."""
    import random

    import sympy as sp
    from symnet.derive.conv import C_, DILATED, F_, MI, NI, U, V, dilate, generic_conv, _W, _d, _x, CIN, FOUT, \
        HO, KH, KW, S, WO
    from symnet.derive.notation import indexed
    rng = random.Random(0)
    s, k, ho = 2, 3, 4
    delta, check = indexed(r"\delta", 9), indexed(DILATED, 9)
    names = {S: s, CIN: 1, FOUT: 2, KH: k, KW: k, HO: ho, WO: ho, _d: delta}
    gather = generic_conv()["dx"].xreplace(names).xreplace({sp.Symbol("q_", integer=True): C_})
    dilated = dilate(gather, delta, check, s)
    assert not dilated.has(sp.Mod) and dilated.has(check)
    Wv = {(f, q, r): rng.uniform(-1, 1) for f in range(2) for q in range(k) for r in range(k)}
    dv = {(f, i, j): rng.uniform(-1, 1) for f in range(2) for i in range(ho) for j in range(ho)}
    def values(e):
        e = e.replace(lambda x: isinstance(x, sp.Indexed) and x.base == _W, lambda x: Wv[(x.indices[0],) + x.indices[2:]])
        e = e.replace(lambda x: isinstance(x, sp.Indexed) and x.base == delta, lambda x: dv[x.indices])
        # the dilated error by its definition: delta at (u/s, v/s) where s divides both, else 0
        return e.replace(lambda x: isinstance(x, sp.Indexed) and x.base == check,
                         lambda x: dv[(x.indices[0], x.indices[1] // s, x.indices[2] // s)]
                         if x.indices[1] % s == 0 and x.indices[2] % s == 0 else 0)
    for u in range(s * (ho - 1) + k):
        for v in (0, 3, 5, s * (ho - 1) + k - 1):
            at = {U: u, V: v, C_: 0}
            want = values(gather.xreplace(at).doit())
            got = values(dilated.xreplace(at).doit())
            assert abs(float(want) - float(got)) < 1e-12, (u, v, want, got)


# ---------------------------------------------------------------- one meaning per symbol
SCALARS = set("mnpstklL")        # batch size, outputs, softmax, epoch, stride, kernel size, layer numbers
_SUB = re.compile(r"(\\[A-Za-z]+\{[^{}]*\}|\\[A-Za-z]+)?_(\{(?:[^{}]|\{[^{}]*\})*\}|[A-Za-z0-9])")
# a scalar in its own meaning: the rate at epoch t, the last of m values
OWN_MEANING = ("\\eta_t", "u_m", "u_{\\bar m}")
_SUM = re.compile(r"\\sum_\{([^{}=]*)(=?)")


def _math(text: str) -> str:
    """The math of a document (display blocks and inline $...$), one piece a line."""
    blocks = re.findall(r"```math\n(.*?)```|\\begin\{(?:equation|multline)\*\}(.*?)\\end", text, flags=re.S)
    rest = re.sub(r"```math\n.*?```|\\begin\{(equation|multline)\*\}.*?\\end\{\1\*\}", " ", text, flags=re.S)
    return "\n".join([a or b for a, b in blocks] + re.findall(r"\$([^$]*)\$", rest))


def index_letters_misused(text: str) -> list[str]:
    """The scalar symbols of the notation table (m, n, p, t, s, k, l, L) used as a
    subscript index (a subscript's own letter, W_{ki} or x_{k}) or a summation
    variable; e only as the example index (ell_e, sum over e up to m, the column e).
    Operator parameters (crop_1, spread_k) and expressions inside an index
    (s i + q, k - 1 - q) are not indices."""
    bad = []
    text = _math(text)
    for m in _SUB.finditer(text):
        head, sub = m.group(1) or "", m.group(2).strip("{}")
        if head.startswith(("\\operatorname", "\\mathrm", "\\text", "\\sum", "\\max", "\\min")):
            continue
        if any(text.startswith(own, m.end() - len(own)) for own in OWN_MEANING):
            continue
        parts = [p.strip() for p in re.split(r",|\\,", sub)]
        letters = [ch for p in parts for ch in (p if re.fullmatch(r"[A-Za-z]+", p) else [p])]
        for ch in letters:
            if ch in SCALARS or (ch == "e" and not (head == "\\ell" or sub in (":,e", "e"))):
                bad.append(text[max(0, m.start() - 30):m.end() + 10])
    for m in _SUM.finditer(text):
        for v in (x.strip() for x in m.group(1).split(",")):
            if v in SCALARS or (v == "e" and not text[m.end():].startswith(("1}^{m}", "1}^{m "))
                                 and m.group(2)):
                bad.append(text[max(0, m.start() - 10):m.end() + 20])
    return bad


def test_index_letter_check_catches_misuse():
    assert index_letters_misused(r"$\sum_{k=1}^{n} W_{ki} \delta_{k}$")
    assert index_letters_misused(r"$W^{(1)}_{fcmn} a_{c,i + m,j + n}$") and index_letters_misused(r"$r^{(3)}_{cpq}$")
    assert index_letters_misused(r"$\sum_{c,m,n} W_{f,c,m,n}$")
    assert not index_letters_misused(r"$\sum_{e=1}^{m} \ell_{e} + W_{f,c,k-1-q,k-1-r} a_{c,\, s i + q,\, s j + r}$")
    assert not index_letters_misused(r"$\operatorname{spread}_k(G) + \mathrm{crop}_{1} + dZ^{[l]}_{:,e}$")


def test_no_scalar_symbol_is_an_index(documents):
    committed = {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "docs").glob("*.md")
                 if p.with_suffix(".tex").exists()}
    texts = {**{f"{k} ({f})": d[f] for k, d in documents.items() for f in ("md", "tex")}, **committed}
    for key, text in texts.items():
        bad = index_letters_misused(text)
        assert not bad, f"{key}: {bad[:3]}"


def test_no_fractional_subscripts(documents):
    """Subscripts are integers: no \\frac or / in a subscript (floors of a
    quotient are integers, so lfloor i/k rfloor is fine)."""
    for key, doc in documents.items():
        for fmt in ("md", "tex"):
            text = re.sub(r"\\left\\lfloor.*?\\right\\rfloor", "FLOOR", doc[fmt])
            for m in _SUB.finditer(text):
                assert "\\frac" not in m.group(2) and "/" not in m.group(2), f"{key} ({fmt}): {m.group(0)}"


def test_notation_lists_every_index_letter(documents):
    """Every letter used as a subscript index or summation variable has a row
    in the document's notation table."""
    from symnet.render import lecture
    for key in ("zoo", "lenet", "loss softmax_cross_entropy", "mlp"):
        doc = documents[key]
        listed = {s for r in lecture.notation_rows(doc["net"], doc["d"]) for s in _symbols(r["symbol"])}
        used = set()
        for m in _SUM.finditer(doc["md"]):
            used |= {v.strip() for v in m.group(1).split(",") if re.fullmatch(r"[a-z]", v.strip())}
        assert used and used <= listed, (key, used - listed)


def test_lecture_structure(documents):
    md = documents["logistic"]["md"]
    order = ["## Notation", "## The network", "## Forward pass", "## Loss and output error",
             "## Backpropagation in general", "## Backward pass, layer 2", "## Gradients",
             "## The batch average in both conventions", "## A worked numeric example", "## Parameter updates"]
    positions = [md.index(h) for h in order]
    assert positions == sorted(positions)
    assert r"l = L-1, \dots, 1" in md and "O(L)" in md                         # general recursion, cost
    assert r"dW^{[l]} = \frac{1}{m} dZ^{[l]} A^{[l-1]T}" in md                  # the columns convention too
    assert r"(n^{(2)} \times 1) (1 \times n^{(1)})" in md                       # shapes under dW = delta a^T
    lenet = documents["lenet"]["md"]
    for op in ("cross-correlation", "full convolution", "flipped kernel", "routing", "reshape"):
        assert f"**{op}**" in lenet                                             # operators defined once


def test_worked_example_matches_central_differences():
    from symnet.render.example import compute
    d = symnet.derive(loss_net("bce"))
    num = compute(d, seed=3)
    assert len(num["checks"]) >= 12
    for name, index, g, fd in num["checks"]:
        assert abs(g - fd) <= 1e-7 * max(1.0, abs(g)), (name, index, g, fd)


def small_cnn():
    return Network(input=(1, 6, 6), layers=[Conv2D(2, 3, activation="relu"), MaxPool2D(2),
                                            BatchNorm(activation="tanh"), Flatten(), Dense(3), Dropout(0.25),
                                            Dense(2)], loss="softmax_cross_entropy", name="small_cnn")


def test_worked_example_of_every_layer_kind():
    """conv, max pooling, batch norm over channels, flatten, dropout, softmax:
    every gradient entry (the input's too) beside its central difference, the
    PDF without overfull boxes."""
    from symnet.render.example import BATCH_NORM_BATCH, EXAMPLE_MAX_PARAMS, MAX_ENTRIES, compute, default_on
    net = small_cnn()
    d = symnet.derive(net)
    assert default_on(net) and net.n_params <= EXAMPLE_MAX_PARAMS
    num = compute(d, seed=1)
    assert num["m"] == BATCH_NORM_BATCH and set(num["masks"]) == {6}
    names = [name for name, *_ in num["checks"]]
    for name in ("W1", "b1", "gamma3", "beta3", "W5", "b5", "W7", "b7", "x"):
        assert 0 < names.count(name) <= MAX_ENTRIES, name
    for name, index, g, fd in num["checks"]:
        assert abs(g - fd) <= 1e-7 * max(1.0, abs(g)), (name, index, g, fd)
    md = to_markdown(d)
    section = md[md.index("## A worked numeric example"):md.index("## Parameter updates")]
    for row in (r"| $\xi^{(6)}$ (dropout mask)", r"| $\mu^{(3)}$", r"| $\bar a^{(2)}$", r"| $\delta^{(1)}$",
                r"| $W^{(1)}_{0,0,0,0}$", r"| $\gamma^{(3)}_{0}$", r"| $W^{(7)}_{1,1}$", r"| $x_{0,0,0}$"):
        assert row in section, row
    if HAVE_PDFLATEX:
        pdf, log = build_pdf(to_latex(d))
        too_wide = [x for x in overfull_pt(log) if x > OVERFULL_TOLERANCE_PT]
        assert pdf.startswith(b"%PDF") and not too_wide, too_wide
    assert not default_on(symnet.load(ROOT / "examples" / "lenet.toml"))      # 61,706 parameters: off


def test_cli_derive_sections_example_and_html(tmp_path, capsys):
    from symnet.cli import main
    spec = str(ROOT / "examples" / "logistic.toml")
    assert main(["derive", spec, "--format", "md", "-o", "-", "--sections", "loss,gradients"]) == 0
    out = capsys.readouterr().out
    assert "## Loss and output error" in out and "## Gradients" in out
    assert "## Notation" not in out and "## Parameter updates" not in out and "worked numeric" not in out
    assert main(["derive", spec, "--format", "md", "-o", "-", "--no-example"]) == 0
    assert "worked numeric" not in capsys.readouterr().out
    assert main(["derive", spec, "--format", "html", "-o", str(tmp_path / "l.html")]) == 0
    assert (tmp_path / "l.html").read_text().startswith("<!DOCTYPE html>")
    capsys.readouterr()
    assert main(["derive", spec, "--sections", "loss,nonsense"]) == 2
    assert "unknown section 'nonsense'" in capsys.readouterr().err
    capsys.readouterr()
    # a conv network: on by default when small, forced with --example, left out with --no-example
    conv = str(ROOT / "docs" / "specs" / "conv_pool.toml")
    assert main(["derive", conv, "--format", "md", "-o", "-"]) == 0
    assert "worked numeric" in capsys.readouterr().out
    assert main(["derive", conv, "--format", "md", "-o", "-", "--no-example"]) == 0
    assert "worked numeric" not in capsys.readouterr().out


def test_average_pooling_floor_and_running_statistics_as_updates(documents):
    net = Network(input=(1, 4, 4), layers=[Conv2D(2, 3, padding=1, activation="relu"), AvgPool2D(2), Flatten(),
                                           Dense(1)], loss="mse")
    md = _md(net)
    # non-overlapping windows: the one window of (i, j), derived from the indicator form
    assert (r"\frac{\partial \ell}{\partial a^{(1)}_{c,i,j}} = \frac{\bar{a}^{(2)}_{c,\left\lfloor{\frac{i}{2}}"
            r"\right\rfloor,\left\lfloor{\frac{j}{2}}\right\rfloor}}{4}") in md
    zoo = documents["zoo"]["md"]
    assert r"\mu^{(2)}_{\text{run},c} \leftarrow" in zoo and r"\mu^{(2)}_{\text{run},c} =" not in zoo


def test_html_of_every_layer_kind_is_all_mathml(documents):
    from symnet.render import to_html
    page = to_html(documents["zoo"]["d"])
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<(style|script)\b.*?</\1>", " ", page, flags=re.S))
    assert page.count("<math") > 500
    assert not re.findall(r".{20}\\[A-Za-z]+.{20}", text)        # every LaTeX command became MathML


def _symbols(cell: str) -> list[str]:
    """The symbols of a notation cell: split at top-level commas and '='."""
    out, depth, cur = [], 0, ""
    for ch in cell:
        depth += ch in "{([" and 1 or 0
        depth -= ch in "})]" and 1 or 0
        if ch in ",=" and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return [s for s in out + [cur.strip()] if s]


def test_notation_lists_each_symbol_once(documents):
    from symnet.optim import OPTIMIZERS
    from symnet.render import lecture
    for key, doc in documents.items():
        seen = {}
        for row in lecture.notation_rows(doc["net"], doc["d"]):
            for sym in _symbols(row["symbol"]):
                assert sym not in seen, f"{key}: {sym} means {seen[sym]!r} and {row['meaning']!r}"
                seen[sym] = row["meaning"]
    assert _symbols(r"x = a^{(0)}") == ["x", "a^{(0)}"] and _symbols(r"\mu_{c}, \sigma^2_c") == [r"\mu_{c}", r"\sigma^2_c"]
    # the update rules: no batch size m, no activation g, no batch-norm mean mu among their symbols
    for cls in OPTIMIZERS.values():
        for eq in cls.update_equations():
            assert not re.search(r"(?<![\\A-Za-z{])[mg](?![A-Za-z])|\\mu\b", eq), eq


def test_sections_without_the_input_gradient():
    """--sections without "input": no dL/dx step, row or worked-example entry;
    the parameters' gradients stay."""
    from symnet.render.document import PARTS
    parts = ",".join(p for p in PARTS if p != "input")
    for net in (symnet.load(ROOT / "docs" / "specs" / "conv_pool.toml"), small_cnn(),
                Network(input=(1, 5, 5), layers=[Flatten(), Dense(2)], loss="mse")):
        d = symnet.derive(net)
        full, part = to_markdown(d), to_markdown(d, sections=parts)
        assert r"\partial a^{(0)}" in full and r"\frac{\partial J}{\partial X}" in full
        assert r"\partial a^{(0)}" not in part and r"\partial \tilde{a}^{(0)}" not in part
        assert r"\frac{\partial J}{\partial X}" not in part and "### `x`" not in part
        assert "| $x_{" in full and "| $x_{" not in part                    # worked example
        first = next(p for p in net.placed if p.params)
        for name in first.params.values():
            assert f"### `{name}`" in part


def test_command_line_flags_keep_both_hyphens_in_latex(documents):
    # TeX joins "--" into an en dash: `--optimizer` would print as "–optimizer"
    for key, doc in documents.items():
        lines = [line for line in doc["tex"].splitlines() if "--" in line and not line.lstrip().startswith("%")]
        assert not lines, f"{key}: {lines[:2]}"
    from symnet.render.document import tex_escape
    assert tex_escape("symnet train --lr 0.1") == "symnet train -{}-lr 0.1"
