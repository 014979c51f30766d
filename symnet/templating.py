"""The one Jinja configuration of symnet: derivation documents and kernel modules alike
(strict undefined names, blocks trimmed, no autoescape: the output is LaTeX, Markdown
or Python, never HTML)."""
from __future__ import annotations

from pathlib import Path

_SOURCE_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def template_files(names) -> dict[str, bytes]:
    """name -> bytes of the named templates (package symnet.templates, or templates/ beside
    the package in a source checkout)."""
    try:
        from importlib.resources import files
        root = files("symnet.templates")
        out = {name: root.joinpath(name).read_bytes() for name in names}
    except (ModuleNotFoundError, FileNotFoundError, TypeError):
        out = {name: (_SOURCE_TEMPLATES / name).read_bytes() for name in names}
    return out


def environment(load):
    """A Jinja environment whose templates come from load(name) -> text, or from a
    dict name -> bytes."""
    import jinja2
    if isinstance(load, dict):
        texts = {name: data.decode("utf-8") for name, data in load.items()}
        loader = jinja2.DictLoader(texts)
    else:
        loader = jinja2.FunctionLoader(load)
    return jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined, trim_blocks=True,
                              lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)


__all__ = ["environment", "template_files"]
