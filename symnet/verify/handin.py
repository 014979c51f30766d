"""A whole hand-in at once: every equation of a .tex, .md or .txt file, each
verified against its own left side, with a summary ("5 of 6 right").

Equations are the lines of display math ($$ ... $$, \\[ ... \\], align /
aligned / equation / gather environments, split at \\\\ and with & dropped),
inline $...$ holding an "=", or, in a file without math delimiters (and
always in .txt), every non-empty line that is not a comment (#, %). Markdown
```math fences are one equation each (symnet's derivation documents).
Equations whose left side is not a gradient target (definitions, forward
steps, update rules, intermediate derivatives: document.skip_reason) are
listed as "skipped", not failures.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import SpecError, SymnetError

MAX_EQUATIONS = 200         # checked ones (each a verdict); skipped ones cost nothing
MAX_READ = 2000             # equations read at all
_ENVS = r"(?:align|aligned|equation|gather|gathered|eqnarray|multline|split)\*?"
_BLOCK = re.compile(r"\$\$(.*?)\$\$|\\\[(.*?)\\\]|\\begin\{(" + _ENVS + r")\}(.*?)\\end\{\3\}", re.S)
_INLINE = re.compile(r"(?<![\\$])\$([^$\n]+?)\$(?!\$)")
_FENCES = re.compile(r"^```math[ \t]*\n.*?^```", re.S | re.M)
# "| $n$ | number of outputs per example |", "n is the number of outputs": n is not the batch size.
_N_OUTPUTS = re.compile(r"(?:\$n\$|\bn\b)[\s|:=]*(?:is\s+|denotes\s+)?(?:the\s+)?number\s+of\s+outputs", re.I)
_DROP = re.compile(r"\\(?:label|tag|text)\{[^}]*\}|\\(?:nonumber|notag)\b")

# Severity of each outcome, and its exit code: the worst one decides.
_SEVERITY = {"skipped": 0, "equal": 0, "equal almost everywhere": 0, "undecided": 1, "not equal": 2, "error": 3}
_EXIT = {"skipped": 0, "equal": 0, "equal almost everywhere": 0, "undecided": 3, "not equal": 1, "error": 2}


@dataclass
class Entry:
    line: int                  # 1-based line of the equation in the file
    text: str                  # the equation as read
    status: str                # a verdict status, or "error" (the equation could not be read)
    target: str = ""
    message: str = ""
    note: str = ""
    given_latex: str = ""
    derived_latex: str = ""
    layout: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("equal", "equal almost everywhere")


def _clean(text: str) -> str:
    text = _DROP.sub("", text).replace("&", " ")
    return text.strip().rstrip(",.;").strip()


def equations(source: str, suffix: str) -> list[tuple[int, str]]:
    """(line, equation text) pairs of a hand-in."""
    out = []

    def add(start: int, body: str):
        offset = 0
        for part in re.split(r"\\\\", body):
            text = _clean(part.replace("\n", " "))
            if text:
                lead = len(part) - len(part.lstrip())
                out.append((source.count("\n", 0, start + offset + lead) + 1, text))
            offset += len(part) + 2

    fenced = []
    if suffix == ".md":
        from .document import fenced_equations
        fenced = fenced_equations(source)
        if fenced:
            source = _FENCES.sub(lambda mt: re.sub(r"[^\n]", " ", mt.group()), source)
            out += fenced
    if suffix != ".txt":
        taken = []
        for mt in _BLOCK.finditer(source):
            group = next(i for i in (1, 2, 4) if mt.group(i) is not None)
            add(mt.start(group), mt.group(group))
            taken.append(mt.span())
        rest = source
        for a, b in reversed(taken):        # inline math outside the display blocks
            rest = rest[:a] + re.sub(r"[^\n]", " ", rest[a:b]) + rest[b:]
        for mt in _INLINE.finditer(rest if not fenced else ""):     # beside ```math fences: prose
            if "=" in mt.group(1):
                add(mt.start(1), mt.group(1))
        if out or "$" in source or "\\begin" in source:
            return sorted(out)[:MAX_READ + 1]
    for number, line in enumerate(source.splitlines(), 1):
        text = _clean(line)
        if text and not text.startswith(("#", "%")):
            out.append((number, text))
    return out[:MAX_READ + 1]


def n_meaning(source: str) -> str:
    """'outputs' where the hand-in declares n the number of outputs (symnet's documents do), else 'batch'."""
    return "outputs" if _N_OUTPUTS.search(source) else "batch"


def verify_file(net, path, *, seed: int = 0, points: int = 5, layer=None, training: bool = True,
                n: str | None = None) -> list[Entry]:
    """Every equation of the hand-in at `path`; n=None reads n as the document declares it."""
    from .engine import verify
    path = Path(path)
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read the hand-in ({getattr(exc, 'strerror', None) or exc})") from None
    found = equations(source, path.suffix.lower())
    n = n or n_meaning(source)
    if not found:
        raise SpecError(f"{path}: no equations found; expected lines such as dW2 = delta2 a1^T")
    if len(found) > MAX_READ:
        raise SpecError(f"{path}: more than {MAX_READ} equations; expected a shorter hand-in")
    from .document import skip_reason
    from .engine import _describe_net, is_gradient_target
    info = _describe_net(net)
    entries, checked = [], 0
    for line, text in found:
        reason = skip_reason(text, info, lambda sym: is_gradient_target(sym, info))
        if reason:
            entries.append(Entry(line, text, "skipped", message=f"not a gradient target: {reason}"))
            continue
        checked += 1
        if checked > MAX_EQUATIONS:
            raise SpecError(f"{path}: more than {MAX_EQUATIONS} gradient equations; expected a shorter hand-in")
        if "=" not in text:
            entries.append(Entry(line, text, "error", message=f"line {line}: no left side; expected an "
                                 "equation such as dW2 = ..., with the quantity it computes on the left"))
            continue
        try:
            v = verify(net, None, text, seed=seed, points=points, layer=layer, training=training, n=n)
        except SymnetError as exc:
            entries.append(Entry(line, text, "error", message=f"line {line}: {exc}"))
            continue
        entries.append(Entry(line, text, v.status, v.target, v.message, v.note, v.given_latex,
                             v.derived_latex, v.layout))
    return entries


def summary(entries: list[Entry]) -> str:
    right = sum(e.ok for e in entries)
    skipped = sum(e.status == "skipped" for e in entries)
    tail = f" ({skipped} skipped: not gradient targets)" if skipped else ""
    return f"{right} of {len(entries) - skipped} right{tail}"


def exit_code(entries: list[Entry]) -> int:
    worst = max(entries, key=lambda e: _SEVERITY[e.status])
    return _EXIT[worst.status]


def report(entries: list[Entry]) -> str:
    lines = []
    for e in entries:
        head = f"line {e.line}: {e.status}" + (f" ({e.target})" if e.target else "")
        lines.append(head)
        lines.append(f"  equation: {e.text}")
        if e.status == "skipped":
            lines.append(f"  skipped: {e.message}")
        elif e.status != "error":
            lines.append(f"  verdict: {e.message}")
        else:
            lines.append(f"  error:   {e.message}")
        if e.note:
            lines.append(f"  note:    {e.note}")
        if e.given_latex:
            lines.append(f"  read as: {e.given_latex}" + (f"   ({e.layout})" if e.layout else ""))
        if e.derived_latex and not e.ok:
            lines.append(f"  derived: {e.derived_latex}")
    lines.append(summary(entries))
    return "\n".join(lines)


def as_data(entries: list[Entry], spec: str, file: str) -> dict:
    return {"spec": spec, "file": file, "equations": [asdict(e) | {"ok": e.ok} for e in entries],
            "summary": {"right": sum(e.ok for e in entries), "total": sum(e.status != "skipped" for e in entries),
                        "skipped": sum(e.status == "skipped" for e in entries), "text": summary(entries)},
            "exit_code": exit_code(entries)}
