"""Derivation documents from a Derivation: notation rules (notation.py), the
LaTeX printer (printer.py), and the documents (document.py: LaTeX, Markdown,
PDF)."""
from .document import (FORMATS, PARTS, build_pdf, cli_derive, compile_pdf, document, options, overfull_pt, md_escape, md_math, tex_escape, to_latex,
                       to_latex_fragment, to_markdown, why_md, why_tex, write_document)
from .html import html_fragment, to_html
from .notation import Indicator, textbook
from .printer import SymnetLatexPrinter, latex

__all__ = ["SymnetLatexPrinter", "latex", "textbook", "Indicator", "to_latex", "to_markdown", "to_html",
           "html_fragment", "document", "options", "PARTS", "build_pdf", "overfull_pt",
           "to_latex_fragment", "write_document", "compile_pdf", "cli_derive", "FORMATS",
           "tex_escape", "md_escape", "md_math", "why_tex", "why_md"]
