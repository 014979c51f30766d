"""Derivation documents: LaTeX, Markdown and PDF from a Derivation.

All mathematics is printed here in Python by `SymnetLatexPrinter` (a SymPy
LatexPrinter subclass with `_print_X` overrides only); the Jinja templates in
`templates/derivation.{tex,md}.jinja` only loop over the prepared lists.
"""
from __future__ import annotations


import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import sympy as sp

from ..errors import RenderError
from ..fileio import write_atomic
from . import lecture
from .notation import Indicator, textbook
from .printer import _PRINTER, SymnetLatexPrinter, latex

FORMATS = ("tex", "md", "pdf", "html")
PDF_TIMEOUT_S = 120
LONG_LINE = 70           # printed characters beyond which an equation is split
LONG_SOURCE = 250        # source characters beyond which too (Markdown lines stay short)
_INSTALL_HINT = ("PDF needs pdflatex: install the Debian packages texlive-latex-base "
                 "texlive-latex-recommended latexmk")



# --------------------------------------------------------------------------- text helpers

_TEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def tex_escape(text: str) -> str:
    """Plain text for a LaTeX text position (`--lr` keeps two hyphens: TeX joins them
    into an en dash)."""
    return re.sub(r"-(?=-)", "-{}", "".join(_TEX_SPECIAL.get(ch, ch) for ch in str(text)))


def md_escape(text: str) -> str:
    return re.sub(r"([\\`*_|<>\[\]])", r"\\\1", str(text))


_SUBSCRIPT = re.compile(r"(?<![\\A-Za-z])([A-Za-z])_(\{[^{}]*\}|\([^()]*\)|[A-Za-z0-9]+\b)")
_COMMAND = re.compile(r"(\\[A-Za-z]+(?:\{[^{}]*\})*'?(?:\([a-z]\))?"
                      r"|\b[A-Za-z] = [A-Za-z]+'?\([A-Za-z]\))")


def _mathify(text: str) -> list[tuple[bool, str]]:
    """Split a justification into (is_math, piece): `$...$` spans stay math;
    LaTeX commands (\\mathrm{ReLU}) and subscripts (W_ij) in the text become math."""
    pieces = []
    for k, chunk in enumerate(re.split(r"\$", text)):
        if k % 2 == 1:
            pieces.append((True, chunk))
            continue
        for j, sub in enumerate(_COMMAND.split(chunk)):
            if j % 2 == 1:
                pieces.append((True, sub))
                continue
            pos = 0
            for m in _SUBSCRIPT.finditer(sub):
                pieces.append((False, sub[pos:m.start()]))
                pieces.append((True, "%s_{%s}" % (m.group(1), m.group(2).strip("{}()"))))
                pos = m.end()
            pieces.append((False, sub[pos:]))
    return [(is_math, p) for is_math, p in pieces if p]


def why_tex(text: str) -> str:
    return "".join("$%s$" % p if is_math else tex_escape(p) for is_math, p in _mathify(text))


def why_md(text: str) -> str:
    return "".join("$%s$" % p if is_math else md_escape(p) for is_math, p in _mathify(text))


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def md_block(tex: str, lines: list[str]) -> str:
    """The body of a ```math fence: one line, or a long equation's lines in an
    aligned block (each line short)."""
    if not lines:
        return md_math(tex)
    return "\\begin{aligned}\n" + " \\\\\n".join("& " + md_math(x) for x in lines) + "\n\\end{aligned}"


def md_math(tex: str) -> str:
    """Display math that GitHub's renderer accepts."""
    return re.sub(r"\\operatorname\{([^{}]*)\}", r"\\mathrm{\1}", tex)


# --------------------------------------------------------------------------- prepared content

@dataclass
class Equation:
    lhs: str
    rhs: str
    why: str                      # raw justification text
    lines: list[str] = field(default_factory=list)   # rhs split for multline*, when long
    shape_note: str = ""          # (rows x cols) of a matrix product's factors
    rel: str = "="                # \leftarrow for an update (the left side occurs on the right)

    @property
    def long(self) -> bool:
        return _visual_width(self.tex) > LONG_LINE or len(self.tex) > LONG_SOURCE

    @property
    def tex(self) -> str:
        return "%s %s %s" % (self.lhs, self.rel, self.rhs)


@dataclass
class Section:
    title: str
    equations: list[Equation]


def _relation(step) -> str:
    """An equation whose left side occurs on its right is an update (running
    statistics): written with an arrow, not as a self-referencing equation."""
    lhs, rhs = step.lhs, step.rhs
    if isinstance(lhs, sp.Symbol) and isinstance(rhs, sp.Basic) and lhs in rhs.free_symbols:
        return r"\leftarrow"
    return "="


def _equation(step) -> Equation:
    lhs, rhs = latex(step.lhs), latex(step.rhs)
    eq = Equation(lhs, rhs, step.why, rel=_relation(step))
    eq.lines = _split_long(eq, step.rhs)
    eq.shape_note = _shape_note(step)
    return eq


def _visual_width(tex: str) -> int:
    """A rough count of printed characters: commands count one, braces none."""
    tex = re.sub(r"\\(left|right)\b", "", tex)
    tex = re.sub(r"\\[A-Za-z]+", "x", tex)
    return len(re.sub(r"[{}\s]", "", tex))


def _split_add(expr: sp.Add, lhs: str) -> list[str]:
    """Print a long sum as several lines: the first starts with 'lhs =',
    each further one with its sign."""
    terms = sorted(_PRINTER._as_ordered_terms(expr), key=SymnetLatexPrinter._term_rank)
    lines, current = [], "%s = " % lhs
    for k, term in enumerate(terms):
        sign = ""
        if k > 0:
            sign = "- " if term.could_extract_minus_sign() else "+ "
            if sign == "- ":
                term = -term
        t = latex(term)
        if _PRINTER._needs_add_brackets(term):
            t = r"\left(%s\right)" % t
        piece = sign + t
        if k > 0 and (_visual_width(current + piece) > LONG_LINE or len(current + piece) > LONG_SOURCE):
            lines.append(current.rstrip())
            current = ""
        current += piece + " "
    lines.append(current.rstrip())
    return lines


def _section_title(step, state) -> str:
    if step.form == "forward":
        return "Forward pass"
    if step.form == "loss":
        state["loss_seen"] = True
        return "Loss and output error"
    if step.form == "batch":
        return "Batch average"
    if state["loss_seen"] and not state["gradient_seen"] and not state["is_gradient"](step):
        return "Loss and output error"
    state["gradient_seen"] = True
    return "Backward pass, layer %s" % step.layer


def sections(d) -> list[Section]:
    """The non-shape steps in the order of d.steps, grouped by form and layer;
    the batch averages come last."""
    grad_steps = {id(s) for g in d.gradients.values() for s in (g.element, g.matrix, g.batch)}
    state = {"loss_seen": False, "gradient_seen": False, "is_gradient": lambda s: id(s) in grad_steps}
    groups: dict[str, list[Equation]] = {}
    for step in d.steps:
        if step.form == "shape":
            continue
        groups.setdefault(_section_title(step, state), []).append(_equation(step))
    ordered = [t for t in groups if t != "Batch average"] + [t for t in groups if t == "Batch average"]
    return [Section(t, groups[t]) for t in ordered]


def _shape_text(shape) -> str:
    return "(%s)" % ", ".join(str(s) for s in shape) if len(shape) != 1 else "(%d,)" % shape[0]


def layer_rows(net) -> list[dict]:
    rows = [{"layer": "input", "kind": "", "shape": _shape_text(net.input_shape), "params": "", "count": "0"}]
    for p in net.placed:
        params = ", ".join("%s %s" % (n, _shape_text(s)) for n, s in p.param_shapes.items())
        rows.append({"layer": str(p.position), "kind": p.layer.describe(), "shape": _shape_text(p.out_shape),
                     "params": params, "count": "{:,}".format(p.n_params)})
    return rows


def shape_rows(d) -> list[dict]:
    """Every quantity with its shape: the derivation's shape steps, plus the
    pre-activations and errors (same shape as the layer's output) and the
    batch matrices (rows are examples)."""
    rows = []
    for s in d.steps_of("shape"):
        rows.append({"name": latex(s.lhs), "shape": latex(s.rhs), "note": s.why})
    net = d.network
    for p in net.placed:
        l = p.position
        if p.layer.type == "dense":
            rows.append({"name": "z^{(%d)}, \\delta^{(%d)}" % (l, l), "shape": _shape_text(p.out_shape),
                         "note": "pre-activation and error of layer %d, per example" % l})
    for p in net.placed:
        l = p.position
        if p.layer.type == "dense":
            rows.append({"name": "A^{(%d)}, \\Delta^{(%d)}" % (l, l),
                         "shape": "(m, %s)" % ", ".join(str(s) for s in p.out_shape),
                         "note": "batch matrices of layer %d: one example per row" % l})
    return rows


def gradient_rows(d) -> list[dict]:
    rows = []
    for name, g in d.gradients.items():
        rows.append({"name": name, "shape": _shape_text(g.shape),
                     "element_expr": g.element.rhs, "matrix_expr": g.matrix.rhs, "batch_expr": g.batch.rhs,
                     "element_lhs": latex(g.element.lhs), "element": latex(g.element.rhs),
                     "matrix_lhs": latex(g.matrix.lhs), "matrix": latex(g.matrix.rhs),
                     "batch_lhs": latex(g.batch.lhs), "batch": latex(g.batch.rhs)})
    return rows


def _output_summary(d) -> str:
    """delta^(L) in its final form: the last delta step of the loss section."""
    for sec in sections(d):
        if sec.title == "Loss and output error":
            deltas = [e for e in sec.equations if e.lhs.startswith(r"\delta")]
            if deltas:
                return deltas[-1].tex
    return ""


PARTS = ("notation", "network", "forward", "loss", "recursion", "backward", "input", "gradients", "batch",
         "example", "updates")
# "input" prints nothing of its own: left out, the steps and rows of the input
# gradient dL/dx leave the backward pass, the gradients and the worked example.


def _input_gradient_dropped(secs: list, net) -> list:
    """The sections without the steps that only serve dL/dx: every step of the
    layers below the first one with parameters, and that layer's steps from the
    gradient it passes down (a^(l-1), its padded form, batch norm's u-hat) on;
    each rule derives its parameters' gradients before the passed-down one."""
    first = next((p.position for p in net.placed if p.params), None)
    out = []
    for sec in secs:
        layer = re.match(r"Backward pass, layer (\d+)$", sec.title)
        l = int(layer.group(1)) if layer else None
        if l is None or first is None or l > first:
            out.append(sec)
            continue
        keep = []
        if l == first:
            down = (r"a^{(%d)}" % (l - 1), r"\tilde{a}^{(%d)}" % (l - 1), r"\partial \hat{u}")
            for eq in sec.equations:
                if any(tok in eq.lhs for tok in down):
                    break
                keep.append(eq)
        if keep:
            out.append(Section(sec.title, keep))
    return out


def _section_part(title: str) -> str:
    return {"Forward pass": "forward", "Loss and output error": "loss",
            "Batch average": "batch"}.get(title, "backward")


def _shape_note(step) -> str:
    """(rows x cols) of each factor of a matrix product, for the line under it."""
    rhs = step.rhs
    if isinstance(rhs, sp.MatMul) and step.form == "matrix":
        factors = [f for f in rhs.args if hasattr(f, "shape")]
        return " ".join(r"(%s \times %s)" % (latex(f.shape[0]), latex(f.shape[1])) for f in factors)
    return ""


def _form(lhs: str, rhs_expr) -> dict:
    rhs = latex(rhs_expr)
    eq = Equation(lhs, rhs, "")
    lines = _split_long(eq, rhs_expr)
    return {"tex": eq.tex, "lines": lines, "md": md_math(eq.tex), "md_block": md_block(eq.tex, lines)}


def _split_long(eq: "Equation", rhs_expr) -> list[str]:
    """A long equation over several lines: at the terms of a sum, else the
    left side on one line and '= right side' on the next."""
    if not eq.long:
        return []
    expr = textbook(rhs_expr)
    if isinstance(expr, sp.Add):
        return _split_add(expr, eq.lhs)
    # a sum (or product) whose summand carries an indicator: the indicator on its own line
    body, limits = (expr.function, expr.limits) if isinstance(expr, sp.Sum) else (expr, None)
    inds = [f for f in sp.Mul.make_args(body) if isinstance(f, Indicator)]
    if len(inds) == 1 and isinstance(body, sp.Mul):
        rest = body / inds[0]
        head = latex(sp.Sum(rest, *limits) if limits else rest)
        return [eq.lhs, "= " + head, r"\quad \cdot " + latex(inds[0])]
    return [eq.lhs, "= " + eq.rhs]


def context(d, parts=None, example=None, train=None) -> dict:
    """The templates' variables; `train`: the spec's [train] table (its l2/l1 penalty is printed)."""
    from .penalty import penalty
    net = d.network
    parts = tuple(parts) if parts is not None else PARTS
    secs = sections(d)
    if "input" not in parts:
        secs = _input_gradient_dropped(secs, net)
    section_parts: dict[str, list] = {}
    for sec in secs:
        for eq in sec.equations:
            eq.why_tex = why_tex(_sentence(eq.why))
            eq.why_md = why_md(_sentence(eq.why))
            eq.md = md_math(eq.tex)
            eq.md_block = md_block(eq.tex, eq.lines)
        section_parts.setdefault(_section_part(sec.title), []).append(sec)
    grads = [g for g in gradient_rows(d) if "input" in parts or g["name"] != "x"]
    for g in grads:
        for key in ("element", "matrix", "batch"):
            g[key + "_md"] = md_math(g[key])
            g[key + "_lhs_md"] = md_math(g[key + "_lhs"])
        g["forms"] = [_form(g[key + "_lhs"], g[key + "_expr"]) for key in ("element", "matrix", "batch")]
    shapes = shape_rows(d)
    for r in shapes:
        r["note_tex"], r["note_md"] = tex_escape(r["note"]), md_escape(r["note"])
        r["name_md"], r["shape_md"] = md_math(r["name"]), md_math(r["shape"])
    layers = layer_rows(net)
    for r in layers:
        for key in ("kind", "params"):
            # long custom formulas may break after an operator
            r[key + "_tex"] = re.sub(r"([(+*/,-])", r"\1\\allowbreak{}", tex_escape(r[key]))
            r[key + "_md"] = md_escape(r[key])
    output = _output_summary(d)
    pen = penalty(train) if "updates" in parts else None
    if pen:
        pen["text_tex"], pen["text_md"] = why_tex(pen["text"]), why_md(pen["text"])
        pen["equations_md"] = [md_math(e) for e in pen["equations"]]
    notation = lecture.notation_rows(net, d, updates="updates" in parts, penalty=pen is not None)
    for r in notation:
        r["meaning_tex"], r["meaning_md"] = why_tex(r["meaning"]), why_md(r["meaning"])
        r["shape_tex"], r["shape_md"] = why_tex(r["shape"]), why_md(r["shape"])
        r["symbol_md"] = md_math(r["symbol"])
    all_math = [eq.tex for sec in secs for eq in sec.equations] + [f["tex"] for g in grads for f in g["forms"]]
    operators = lecture.operators_used(all_math)
    for op in operators:
        op["name_tex"], op["name_md"] = tex_escape(op["name"]), md_escape(op["name"])
        op["text_tex"], op["text_md"] = why_tex(op["text"]), why_md(op["text"])
    rec = lecture.recursion()
    rec["paras_tex"] = [why_tex(p) for p in rec["paras"]]
    rec["paras_md"] = [why_md(p) for p in rec["paras"]]
    rec["algorithm_tex"] = [why_tex(p) for p in rec["algorithm"]]
    rec["algorithm_md"] = [why_md(p) for p in rec["algorithm"]]
    rec["cost_tex"], rec["cost_md"] = why_tex(rec["cost"]), why_md(rec["cost"])
    rec["equations_md"] = [md_math(e) for e in rec["equations"]]
    conv = lecture.conventions()
    conv["paras_tex"] = [why_tex(p) for p in conv["paras"]]
    conv["paras_md"] = [why_md(p) for p in conv["paras"]]
    for r in conv["rows"]:
        r["what_tex"], r["what_md"] = tex_escape(r["what"]), md_escape(r["what"])
        r["rows_md"], r["columns_md"] = md_math(r["rows"]), md_math(r["columns"])
    return {
        "parts": parts, "section_parts": section_parts,
        "notation": notation, "operators": operators, "recursion": rec, "conventions": conv,
        "notation_intro": lecture.NOTATION_INTRO, "notation_intro_tex": why_tex(lecture.NOTATION_INTRO), "notation_intro_md": why_md(lecture.NOTATION_INTRO),
        "example": example,
        "updates": update_rows(), "penalty": pen,
        "name": net.name, "name_tex": tex_escape(net.name), "name_md": md_escape(net.name),
        "loss_tex": tex_escape(net.loss.title), "loss_md": md_escape(net.loss.title),
        "dtype": net.dtype, "n_params": "{:,}".format(net.n_params),
        "layers": layers, "shapes": shapes, "sections": secs, "gradients": grads,
        "output": output, "output_md": md_math(output),
    }


def update_rows() -> list[dict]:
    """The optimisers' and learning-rate schedules' update rules (from symnet.optim),
    for the document's last section: training uses these on the gradients above."""
    from ..optim import OPTIMIZERS, SCHEDULES
    def first_line(cls):
        return ((cls.__doc__ or "").strip().splitlines() or [""])[0]
    rows = [{"name": name, "doc": first_line(cls), "equations": cls.update_equations()}
            for name, cls in OPTIMIZERS.items()]
    rows += [{"name": f"schedule {name}", "doc": first_line(cls), "equations": [cls.latex]}
             for name, cls in SCHEDULES.items()]
    for r in rows:
        r["doc_tex"], r["doc_md"] = tex_escape(r["doc"]), md_escape(r["doc"])
        r["name_tex"], r["name_md"] = tex_escape(r["name"]), md_escape(r["name"])
        r["equations_md"] = [md_math(e) for e in r["equations"]]
    return rows


# --------------------------------------------------------------------------- templates

def _template_text(name: str) -> str:
    from ..templating import template_files     # the one template lookup (package or source checkout)
    try:
        return template_files([name])[name].decode("utf-8")
    except FileNotFoundError:
        raise RenderError(f"template {name} is missing (looked in symnet.templates and templates/)") from None


def _environment():
    from ..templating import environment
    return environment(_template_text)


def options(d, sections=None, example=None) -> tuple[tuple, dict | None]:
    """The parts to print (all by default; `sections` names some) and the worked
    example's tables: `example` True forces it, False leaves it out, None prints
    it where example.default_on says (small dense networks)."""
    from . import example as worked
    if sections is None:
        parts = PARTS
    else:
        names = [s.strip() for s in (sections.split(",") if isinstance(sections, str) else sections) if s.strip()]
        unknown = [n for n in names if n not in PARTS]
        if unknown or not names:
            raise RenderError(f"--sections: unknown section {', '.join(map(repr, unknown)) or '(none given)'} "
                              f"(known: {', '.join(PARTS)})")
        parts = tuple(p for p in PARTS if p in names)
    if example is None:
        example = worked.default_on(d.network)
    tables = worked.tables(d, input_gradient="input" in parts) if example and "example" in parts else None
    return parts, tables


def _render(template: str, d, sections=None, example=None, train=None) -> str:
    parts, tables = options(d, sections, example)
    return _environment().get_template(template).render(**context(d, parts, tables, train))


def to_latex(d, sections=None, example=None, train=None) -> str:
    """The derivation as a complete LaTeX document (article, amsmath, amssymb).
    `sections`: which parts (see PARTS); `example`: the worked numeric example
    (None: where the network is small enough); `train`: the spec's [train] table
    (symnet.spec.load_with_settings), whose l2/l1 penalty the updates section states."""
    return _render("derivation.tex.jinja", d, sections, example, train)


def to_markdown(d, sections=None, example=None, train=None) -> str:
    """The derivation in Markdown: display math in ```math fences (they survive
    the Markdown pass of GitHub and GitLab), one equation per fence."""
    return _render("derivation.md.jinja", d, sections, example, train)


def to_latex_fragment(d) -> str:
    """The key equations as $$...$$ blocks, for Jupyter's _repr_latex_."""
    keep = []
    for step in d.steps:
        if step.form == "matrix" and str(step.lhs).startswith(r"\delta"):
            keep.append(step)
        elif step.form == "forward" and isinstance(step.lhs, sp.MatrixSymbol):
            keep.append(step)
    blocks = ["%s = %s" % (latex(s.lhs), latex(s.rhs)) for s in keep if s.form == "forward"]
    out = _output_summary(d)
    if out:
        blocks.append(out)
    blocks += ["%s = %s" % (latex(s.lhs), latex(s.rhs)) for s in keep if s.form == "matrix"]
    for g in d.gradients.values():
        blocks.append("%s = %s" % (latex(g.batch.lhs), latex(g.batch.rhs)))
    return "\n".join("$$%s$$" % b for b in blocks)


# --------------------------------------------------------------------------- files

def _first_error(log: str) -> str:
    lines = log.splitlines()
    for k, line in enumerate(lines):
        if line.startswith("!"):
            detail = " ".join(x.strip() for x in lines[k + 1:k + 3] if x.strip().startswith("l."))
            return (line[1:].strip() + (" (" + detail + ")" if detail else "")).strip()
    return "see the log"


def compile_pdf(tex: str, timeout: float = PDF_TIMEOUT_S) -> bytes:
    """Compile LaTeX source to PDF bytes in a temporary directory."""
    return build_pdf(tex, timeout)[0]


_OVERFULL = re.compile(r"^Overfull \\[hv]box \(([0-9.]+)pt too (?:wide|high)\)", re.M)


def overfull_pt(log: str) -> list[float]:
    """How far each overfull box of a pdflatex log sticks out, in points."""
    return [float(x) for x in _OVERFULL.findall(log)]


def build_pdf(tex: str, timeout: float = PDF_TIMEOUT_S) -> tuple[bytes, str]:
    """Compile LaTeX source in a temporary directory: (PDF bytes, the log)."""
    latexmk, pdflatex = shutil.which("latexmk"), shutil.which("pdflatex")
    if pdflatex is None:
        raise RenderError(_INSTALL_HINT)
    with tempfile.TemporaryDirectory(prefix="symnet-tex-") as tmp:
        src = Path(tmp) / "derivation.tex"
        src.write_text(tex, encoding="utf-8")
        flags = ["-interaction=nonstopmode", "-halt-on-error"]
        if latexmk:
            cmds = [[latexmk, "-pdf", "-quiet", *flags, src.name]]
        else:
            cmds = [[pdflatex, *flags, src.name]] * 2      # twice: references settle
        log_path = Path(tmp) / "derivation.log"
        for cmd in cmds:
            try:
                subprocess.run(cmd, cwd=tmp, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=timeout, check=True)
            except subprocess.TimeoutExpired:
                raise RenderError(f"pdflatex did not finish within {timeout:g} s") from None
            except subprocess.CalledProcessError:
                log = log_path.read_text(errors="replace") if log_path.exists() else ""
                raise RenderError(f"pdflatex failed: {_first_error(log)}") from None
        pdf = Path(tmp) / "derivation.pdf"
        if not pdf.exists():
            raise RenderError("pdflatex produced no PDF")
        return pdf.read_bytes(), log_path.read_text(errors="replace") if log_path.exists() else ""


def document(d, fmt: str, sections=None, example=None, train=None) -> bytes:
    """The derivation as tex, md, html or pdf bytes."""
    if fmt not in FORMATS:
        raise RenderError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    if fmt == "html":
        from .html import to_html
        return to_html(d, sections, example, train).encode("utf-8")
    if fmt == "md":
        return to_markdown(d, sections, example, train).encode("utf-8")
    tex = to_latex(d, sections, example, train)
    return tex.encode("utf-8") if fmt == "tex" else compile_pdf(tex)


def write_document(d, fmt: str, path, sections=None, example=None, train=None) -> Path:
    """Write the derivation as tex, md, html or pdf to `path`, atomically."""
    data = document(d, fmt, sections, example, train)
    path = Path(path)
    try:
        write_atomic(path, data)
    except OSError as exc:
        raise RenderError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def cli_derive(spec_path, fmt: str = "md", out_path=None, sections=None, example=None) -> str:
    """`symnet derive SPEC --format FMT -o OUT [--sections A,B] [--example|--no-example]`:
    writes the document (default <name>.<fmt>; "-" prints tex/md/html to stdout)
    and returns the text to print."""
    from ..derive import derive
    from ..spec import load_with_settings
    net, train = load_with_settings(spec_path)
    d = derive(net)
    if out_path == "-":
        if fmt == "pdf":
            raise RenderError("a PDF cannot be printed to the terminal; give -o FILE.pdf")
        return document(d, fmt, sections, example, train).decode("utf-8").rstrip("\n")
    path = write_document(d, fmt, out_path or f"{d.network.name}.{fmt}", sections, example, train)
    return f"wrote {path}"


__all__ = ["SymnetLatexPrinter", "latex", "to_latex", "to_markdown", "to_latex_fragment", "document",
           "write_document", "compile_pdf", "build_pdf", "overfull_pt", "cli_derive", "options", "PARTS"]
