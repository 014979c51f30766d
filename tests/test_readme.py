"""The README is the front door: its quick start, the paths it names and the commands
it shows must hold. Cheap checks only (no compiling, nothing run): paths exist, every
`symnet ...` line parses with the real argument parser, the command list matches it."""

import re
import shlex
from pathlib import Path

import pytest

from symnet.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
GUIDE = ROOT / "docs" / "guide.md"
QUICK_START = ["pip install -e . && symnet demo", "pip install -e '.[test]' && pytest"]


def _section(text: str, heading: str) -> str:
    """The text of one '## heading' section, up to the next '## '."""
    m = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert m, f"README has no '## {heading}' section"
    return m.group(1)


def _blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", text, re.S | re.M)


def _symnet_lines(text: str) -> list[str]:
    """Every `symnet ...` command of the bash blocks, continuation lines joined."""
    lines = []
    for block in _blocks(text, "bash"):
        for line in block.replace("\\\n", " ").splitlines():
            if line.startswith("symnet "):
                lines.append(line)
    return lines


def test_quick_start_is_exactly_the_two_commands():
    section = _section(README, "Quick start")
    blocks = _blocks(section, "bash")
    assert len(blocks) == 1, "the quick start has one command block"
    commands = [ln.strip() for ln in blocks[0].splitlines() if ln.strip()]
    assert commands == QUICK_START


def test_quick_start_comes_first():
    headings = re.findall(r"^## (.+)$", README, re.M)
    assert headings[0] == "Quick start"
    assert len(headings) == len(set(headings)), f"duplicate sections: {headings}"


@pytest.mark.parametrize("doc", ["README.md", "docs/guide.md"])
def test_every_named_path_exists(doc):
    text = (ROOT / doc).read_text(encoding="utf-8")
    base = (ROOT / doc).parent
    named = set(re.findall(r"(?<![\w/.])((?:examples|docs|benchmarks)/[\w./-]+\.(?:toml|md|png|tex|py|pdf))", text))
    # Relative links and images (guide.md's images/... are relative to docs/).
    links = set(re.findall(r"\]\(([^)#:]+)\)|src=\"([^\"]+)\"", text))
    named |= {p for pair in links for p in pair if p}
    assert named, f"{doc} names no paths?"
    missing = sorted(p for p in named
                     if not (ROOT / p).exists() and not (base / p).exists())
    assert not missing, f"{doc} names paths that do not exist: {missing}"


def test_every_example_has_its_documents():
    # The README's documentation list promises docs/<example>.md, .tex and .png
    # (the PDF's first page) for every file in examples/.
    for spec in sorted((ROOT / "examples").glob("*.toml")):
        for ext in (".md", ".tex", ".png"):
            assert (ROOT / "docs" / (spec.stem + ext)).exists(), f"docs/{spec.stem}{ext} missing"


@pytest.mark.parametrize("doc", ["README.md", "docs/guide.md"])
def test_every_symnet_command_parses(doc):
    """Flags and subcommands shown are the CLI's own (argparse exits 2 on a wrong one)."""
    text = (ROOT / doc).read_text(encoding="utf-8")
    lines = _symnet_lines(text)
    assert len(lines) >= (15 if doc == "README.md" else 10)
    parser = build_parser()
    for line in lines:
        argv = shlex.split(line, comments=True)[1:]
        try:
            parser.parse_args(argv)
        except SystemExit as e:
            pytest.fail(f"{doc}: `{line}` does not parse (exit {e.code})")


def test_command_list_matches_the_cli():
    section = _section(README, "What each command does")
    listed = re.findall(r"^- `(\w+)`:", section, re.M)
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert listed == list(sub.choices), "README's command list and `symnet --help` differ"


def test_readme_shows_every_command():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    shown = {shlex.split(line)[1] for line in _symnet_lines(README)}
    assert set(sub.choices) - {"demo"} <= shown, sorted(set(sub.choices) - shown)


def test_design_link_is_in_the_repository():
    assert "../shared/" not in README
    assert (ROOT / "docs" / "design.md").exists()
    assert GUIDE.exists()
