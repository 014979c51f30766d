"""Derivation documents: LaTeX, Markdown and PDF from a Derivation.

All mathematics is printed here in Python by `SymnetLatexPrinter` (a SymPy
LatexPrinter subclass with `_print_X` overrides only); the Jinja templates in
`templates/derivation.{tex,md}.jinja` only loop over the prepared lists.
"""
from __future__ import annotations

from .fileio import write_atomic

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import sympy as sp
from sympy.core.function import AppliedUndef
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE

from .errors import RenderError

FORMATS = ("tex", "md", "pdf")
PDF_TIMEOUT_S = 120
LONG_LINE = 70           # printed characters beyond which an equation is split
_INSTALL_HINT = ("PDF needs pdflatex: install the Debian packages texlive-latex-base "
                 "texlive-latex-recommended latexmk")


# --------------------------------------------------------------------------- printer

def _is_simple(expr) -> bool:
    """Atoms a lecture writes without brackets after a function name (log p_k)."""
    return isinstance(expr, (sp.Symbol, sp.Indexed, sp.MatrixSymbol)) or (expr.is_Number and expr >= 0)


class SymnetLatexPrinter(LatexPrinter):
    """LaTeX in the lectures' notation: z^{(2)}_{i}, W^{(2)}_{ki}, \\odot,
    (W^{(2)})^{T}, partial derivatives, piecewise functions as cases."""

    printmethod = "_latex"

    def __init__(self, settings=None):
        settings = dict(settings or {})
        settings.setdefault("mul_symbol", None)
        super().__init__(settings)

    # -- indexed quantities
    def _print_Indexed(self, expr):
        base = self._print(expr.base)
        indices = [self._print(i) for i in expr.indices]
        joined = "".join(indices) if all(len(i) == 1 for i in indices) else ",".join(indices)
        return "%s_{%s}" % (base, joined)

    def _print_IndexedBase(self, expr):
        return self._print(expr.label)

    def _print_Symbol(self, expr, style="plain"):
        name = expr.name
        if "\\" in name or "{" in name:     # already LaTeX (derivation names)
            return name
        return super()._print_Symbol(expr, style=style)

    def _print_MatrixSymbol(self, expr):
        name = expr.name
        if "\\" in name or "{" in name:
            return name
        return super()._print_MatrixSymbol(expr)

    # -- matrices
    def _print_HadamardProduct(self, expr):
        return r" \odot ".join(self.parenthesize(a, PRECEDENCE["Pow"], strict=True) for a in expr.args)

    def _print_Transpose(self, expr):
        arg = expr.arg
        inner = self._print(arg)
        if isinstance(arg, sp.MatrixSymbol) and ("^" in arg.name or "\\" in arg.name) or not isinstance(arg, sp.MatrixSymbol):
            return r"\left(%s\right)^{T}" % inner
        return "%s^{T}" % inner

    # -- calculus
    def _print_Derivative(self, expr):
        (var, count), = expr.variable_count if len(expr.variable_count) == 1 else [(None, None)]
        if var is None:
            return super()._print_Derivative(expr)
        power = "" if count == 1 else "^{%s}" % count
        numer = expr.expr
        wrt = self._print(var)
        if _is_simple(numer):
            return r"\frac{\partial%s %s}{\partial %s%s}" % (power, self._print(numer), wrt, power)
        return r"\frac{\partial%s}{\partial %s%s} \left(%s\right)" % (power, wrt, power, self._print(numer))

    def _print_Piecewise(self, expr):
        rows = []
        for e, c in expr.args:
            if c == sp.true:
                rows.append(r"%s & \text{otherwise}" % self._print(e))
            else:
                rows.append(r"%s & \text{if } %s" % (self._print(e), self._print(c)))
        return r"\begin{cases} %s \end{cases}" % r" \\ ".join(rows)

    def _print_Sum(self, expr):
        tex = ""
        for var, lo, hi in reversed(expr.limits):
            tex += r"\sum_{%s=%s}^{%s} " % (self._print(var), self._print(lo), self._print(hi))
        body = expr.function
        inner = self._print(body)
        if body.is_Add or body.could_extract_minus_sign():
            inner = r"\left(%s\right)" % inner
        return tex + inner

    # -- functions
    def _print_Function(self, expr, exp=None):
        if isinstance(expr, AppliedUndef):
            name = expr.func.__name__
            args = ", ".join(self._print(a) for a in expr.args)
            tex = r"%s\left(%s\right)" % (name if ("\\" in name or "'" in name) else self._hprint_Function(name), args)
            return tex if exp is None else r"\left(%s\right)^{%s}" % (tex, exp)
        return super()._print_Function(expr, exp=exp)

    def _function_call(self, name, arg, exp=None):
        head = name if exp is None else "%s^{%s}" % (name, exp)
        if _is_simple(arg):
            return r"%s %s" % (head, self._print(arg))
        return r"%s\left(%s\right)" % (head, self._print(arg))

    def _print_log(self, expr, exp=None):
        return self._function_call(r"\log", expr.args[0], exp)

    def _print_tanh(self, expr, exp=None):
        return self._function_call(r"\tanh", expr.args[0], exp)

    def _print_sinh(self, expr, exp=None):
        return self._function_call(r"\sinh", expr.args[0], exp)

    def _print_cosh(self, expr, exp=None):
        return self._function_call(r"\cosh", expr.args[0], exp)

    def _print_sin(self, expr, exp=None):
        return self._function_call(r"\sin", expr.args[0], exp)

    def _print_cos(self, expr, exp=None):
        return self._function_call(r"\cos", expr.args[0], exp)

    def _print_Max(self, expr, exp=None):
        tex = r"\max\left(%s\right)" % ", ".join(self._print(a) for a in expr.args)
        return tex if exp is None else r"%s^{%s}" % (tex, exp)

    def _print_Min(self, expr, exp=None):
        tex = r"\min\left(%s\right)" % ", ".join(self._print(a) for a in expr.args)
        return tex if exp is None else r"%s^{%s}" % (tex, exp)

    def _print_Heaviside(self, expr, exp=None):
        tex = r"H\left(%s\right)" % self._print(expr.args[0])
        return tex if exp is None else r"%s^{%s}" % (tex, exp)

    # -- sums and products in the lectures' order
    @staticmethod
    def _term_rank(term) -> tuple:
        # positive terms first; within them sums before the rest (sum_j W_ij a_j + b_i)
        return (bool(term.could_extract_minus_sign()), not term.has(sp.Sum))

    def _print_Add(self, expr, order=None):
        terms = sorted(self._as_ordered_terms(expr, order=order), key=self._term_rank)
        tex = ""
        for i, term in enumerate(terms):
            if i == 0:
                pass
            elif term.could_extract_minus_sign():
                tex += " - "
                term = -term
            else:
                tex += " + "
            term_tex = self._print(term)
            if self._needs_add_brackets(term):
                term_tex = r"\left(%s\right)" % term_tex
            tex += term_tex
        return tex

    @staticmethod
    def _factor_rank(factor) -> tuple:
        # matrices before vectors (W_ij a_j), plain factors before brackets,
        # functions and sums last (y_k log p_k, g'(z_i) sum_k ...)
        base = factor.base if factor.is_Pow else factor
        if isinstance(base, sp.Indexed):
            return (0, -len(base.indices))
        if isinstance(base, sp.Symbol):
            return (0, 0)
        if factor.is_Add:
            return (1, 0)
        if isinstance(factor, sp.Sum):
            return (3, 0)
        return (2, 0)

    def _print_Mul(self, expr):
        if not isinstance(expr, sp.Mul) or not expr.is_commutative:
            return super()._print_Mul(expr)
        args = expr.args
        if args and (args[0] is sp.S.One or any(isinstance(a, sp.Number) for a in args[1:])):
            return super()._print_Mul(expr)     # deliberately unevaluated
        coeff, factors = expr.as_coeff_mul()
        factors = list(factors)
        # -(u - v) w  ->  (v - u) w: a lecture writes a - y, not -(-a + y)
        if coeff == -1:
            numer = [f for f in factors if not (f.is_Pow and f.exp.is_negative)]
            for k, f in enumerate(factors):
                if f.is_Add and (len(numer) == 1 or any(t.is_Number and t.is_negative for t in f.args)):
                    factors[k] = sp.Add(*[-t for t in f.args])
                    coeff = sp.S.One
                    break
        numer = [f for f in factors if not (f.is_Pow and f.exp.is_negative)]
        denom = [1 / f for f in factors if f.is_Pow and f.exp.is_negative]
        if denom and any(f.has(sp.Sum) for f in numer) and not any(f.has(sp.Sum) for f in denom):
            # (1/n) sum_i ..., the way a mean is written
            sign = "- " if coeff.is_negative else ""
            c = abs(coeff)
            head = r"\frac{%s}{%s}" % (self._print(c.p), self._print(sp.Mul(c.q, *denom)))
            return sign + head + " " + self._print(sp.Mul(*numer)) if len(numer) != 1 or not numer[0].is_Add \
                else sign + head + r" \left(%s\right)" % self._print(numer[0])
        if any(f.is_Pow and f.exp.is_negative for f in factors) or coeff.is_Rational and not coeff.is_Integer:
            if coeff == expr.as_coeff_mul()[0]:
                return super()._print_Mul(expr)
            return super()._print_Mul(sp.Mul(coeff, *factors, evaluate=False) if coeff != 1
                                      else sp.Mul(*factors, evaluate=False))
        factors.sort(key=self._factor_rank)
        tex = ""
        if coeff.is_negative:
            tex, coeff = "- ", -coeff
        parts = [] if coeff == 1 else [self._print(coeff)]
        for k, f in enumerate(factors):
            ft = self._print(f)
            if self._needs_mul_brackets(f, first=(k == 0 and not parts), last=(k == len(factors) - 1)):
                ft = r"\left(%s\right)" % ft
            parts.append(ft)
        return tex + " ".join(parts)


_PRINTER = SymnetLatexPrinter()


def latex(obj) -> str:
    """LaTeX of a SymPy object in symnet's notation; strings are LaTeX already."""
    if isinstance(obj, str):
        return obj
    return _PRINTER.doprint(obj)


# --------------------------------------------------------------------------- text helpers

_TEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def tex_escape(text: str) -> str:
    """Plain text for a LaTeX text position."""
    return "".join(_TEX_SPECIAL.get(ch, ch) for ch in str(text))


def md_escape(text: str) -> str:
    return re.sub(r"([\\`*_|<>\[\]])", r"\\\1", str(text))


_SUBSCRIPT = re.compile(r"(?<![\\A-Za-z])([A-Za-z])_([A-Za-z0-9]+)\b")
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
                pieces.append((True, "%s_{%s}" % (m.group(1), m.group(2))))
                pos = m.end()
            pieces.append((False, sub[pos:]))
    return [(is_math, p) for is_math, p in pieces if p]


def why_tex(text: str) -> str:
    return "".join("$%s$" % p if is_math else tex_escape(p) for is_math, p in _mathify(text))


def why_md(text: str) -> str:
    return "".join("$%s$" % p if is_math else md_escape(p) for is_math, p in _mathify(text))


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


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

    @property
    def long(self) -> bool:
        return _visual_width(self.tex) > LONG_LINE

    @property
    def tex(self) -> str:
        return "%s = %s" % (self.lhs, self.rhs)


@dataclass
class Section:
    title: str
    equations: list[Equation]


def _equation(step) -> Equation:
    lhs, rhs = latex(step.lhs), latex(step.rhs)
    eq = Equation(lhs, rhs, step.why)
    if eq.long and isinstance(step.rhs, sp.Add):
        eq.lines = _split_add(step.rhs, lhs)
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
        if k > 0 and _visual_width(current + piece) > LONG_LINE:
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


def context(d) -> dict:
    net = d.network
    secs = sections(d)
    for sec in secs:
        for eq in sec.equations:
            eq.why_tex = why_tex(_sentence(eq.why))
            eq.why_md = why_md(_sentence(eq.why))
            eq.md = md_math(eq.tex)
    grads = gradient_rows(d)
    for g in grads:
        for key in ("element", "matrix", "batch"):
            g[key + "_md"] = md_math(g[key])
            g[key + "_lhs_md"] = md_math(g[key + "_lhs"])
    shapes = shape_rows(d)
    for r in shapes:
        r["note_tex"], r["note_md"] = tex_escape(r["note"]), md_escape(r["note"])
        r["name_md"], r["shape_md"] = md_math(r["name"]), md_math(r["shape"])
    layers = layer_rows(net)
    for r in layers:
        for key in ("kind", "params"):
            r[key + "_tex"], r[key + "_md"] = tex_escape(r[key]), md_escape(r[key])
    output = _output_summary(d)
    return {
        "updates": update_rows(),
        "name": net.name, "name_tex": tex_escape(net.name), "name_md": md_escape(net.name),
        "loss_tex": tex_escape(net.loss.title), "loss_md": md_escape(net.loss.title),
        "dtype": net.dtype, "n_params": "{:,}".format(net.n_params),
        "layers": layers, "shapes": shapes, "sections": secs, "gradients": grads,
        "output": output, "output_md": md_math(output),
    }


def update_rows() -> list[dict]:
    """The optimisers' and learning-rate schedules' update rules (from symnet.optim),
    for the document's last section: training uses these on the gradients above."""
    from .optim import OPTIMIZERS, SCHEDULES
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
    try:
        from importlib.resources import files
        return files("symnet.templates").joinpath(name).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        # a source checkout that is not installed: templates/ beside symnet/
        path = Path(__file__).resolve().parent.parent / "templates" / name
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise RenderError(f"template {name} is missing (looked in symnet.templates and {path.parent})") from None


def _environment():
    from .templating import environment
    return environment(_template_text)


def _render(template: str, d) -> str:
    return _environment().get_template(template).render(**context(d))


def to_latex(d) -> str:
    """The derivation as a complete LaTeX document (article, amsmath, amssymb)."""
    return _render("derivation.tex.jinja", d)


def to_markdown(d) -> str:
    """The derivation in Markdown with one equation per $$ block (renders on GitHub)."""
    return _render("derivation.md.jinja", d)


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
        for cmd in cmds:
            try:
                subprocess.run(cmd, cwd=tmp, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=timeout, check=True)
            except subprocess.TimeoutExpired:
                raise RenderError(f"pdflatex did not finish within {timeout:g} s") from None
            except subprocess.CalledProcessError:
                log_path = Path(tmp) / "derivation.log"
                log = log_path.read_text(errors="replace") if log_path.exists() else ""
                raise RenderError(f"pdflatex failed: {_first_error(log)}") from None
        pdf = Path(tmp) / "derivation.pdf"
        if not pdf.exists():
            raise RenderError("pdflatex produced no PDF")
        return pdf.read_bytes()


def write_document(d, fmt: str, path) -> Path:
    """Write the derivation as tex, md or pdf to `path`, atomically."""
    if fmt not in FORMATS:
        raise RenderError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    path = Path(path)
    if fmt == "tex":
        data = to_latex(d).encode("utf-8")
    elif fmt == "md":
        data = to_markdown(d).encode("utf-8")
    else:
        data = compile_pdf(to_latex(d))
    try:
        write_atomic(path, data)
    except OSError as exc:
        raise RenderError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def cli_derive(spec_path, fmt: str = "md", out_path=None) -> str:
    """`symnet derive SPEC --format FMT -o OUT`: writes the document (default
    <name>.<fmt>; "-" prints tex/md to stdout) and returns the text to print."""
    from .derive import derive
    from .spec import load
    d = derive(load(spec_path))
    if out_path == "-":
        if fmt == "pdf":
            raise RenderError("a PDF cannot be printed to the terminal; give -o FILE.pdf")
        if fmt not in FORMATS:
            raise RenderError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
        return (to_latex(d) if fmt == "tex" else to_markdown(d)).rstrip("\n")
    path = write_document(d, fmt, out_path or f"{d.network.name}.{fmt}")
    return f"wrote {path}"


__all__ = ["SymnetLatexPrinter", "latex", "to_latex", "to_markdown", "to_latex_fragment",
           "write_document", "compile_pdf", "cli_derive"]
