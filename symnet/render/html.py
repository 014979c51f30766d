"""The derivation as one self-contained HTML page: every equation as MathML
(latex2mathml), which current browsers render natively, so the page needs no
script, no font and no network: it opens offline and prints.

The template (templates/derivation.html.jinja) only loops; the filters below
turn LaTeX and prose with $...$ into escaped HTML and MathML.
"""
from __future__ import annotations

import html as _html
import re

from ..errors import RenderError
from .document import _environment, _mathify, _sentence, context, options


def _mathml(tex: str, display: bool) -> str:
    try:
        from latex2mathml.converter import convert
    except ImportError:        # pragma: no cover - a declared dependency
        raise RenderError("HTML needs latex2mathml: pip install latex2mathml") from None
    # \operatorname{x} -> \mathrm{x}: latex2mathml prints an operator name as one token either way
    tex = re.sub(r"\\operatorname\{([^{}]*)\}", r"\\mathrm{\1}", tex)
    return _double_struck_digits(convert(tex, display="block" if display else "inline"))


def _double_struck_digits(mathml: str) -> str:
    """\\mathbb{1} (the indicator) as the character U+1D7D9: browsers' MathML Core ignores
    mathvariant on a number, so <mn mathvariant="double-struck">1</mn> showed a plain 1."""
    return re.sub(r'<mn mathvariant="double-struck">(\d+)</mn>',
                  lambda m: "<mn>%s</mn>" % "".join("&#x%X;" % (0x1D7D8 + int(c)) for c in m[1]), mathml)


def display(tex: str) -> str:
    return '<div class="eq">%s</div>' % _mathml(tex, True)


def inline(tex: str) -> str:
    return _mathml(tex, False)


def prose(text: str, sentence: bool = False) -> str:
    """Text with $...$ math (and the LaTeX commands a justification may hold)."""
    text = _sentence(text) if sentence else text
    return "".join(inline(p) if is_math else _html.escape(p) for is_math, p in _mathify(text))


def to_html(d, sections=None, example=None, train=None) -> str:
    """The page; `sections`, `example` and `train` as for to_latex."""
    parts, tables = options(d, sections, example)
    env = _environment()
    env.filters.update(display=display, inline=inline, prose=prose, esc=_html.escape)
    return env.get_template("derivation.html.jinja").render(**context(d, parts, tables, train))


def html_fragment(d) -> str:
    """The page's style and body, for a notebook cell (Derivation._repr_html_)."""
    page = to_html(d, example=False)
    style = page[page.index("<style>"):page.index("</style>") + len("</style>")]
    body = page[page.index("<body>") + len("<body>"):page.index("</body>")]
    return '<div class="symnet-derivation">%s%s</div>' % (style.replace("body {", ".symnet-derivation {"), body)


__all__ = ["to_html", "html_fragment", "display", "inline", "prose"]
