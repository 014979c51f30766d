"""Which equations of a hand-in or derivation document are gradient targets.

The rule: an equation is checked when its left side, read alone, names a
gradient target of the net (a parameter's gradient, the input's, an
activation's, an error term delta). Every other equation is skipped as "not a
gradient target" and says what it is: an update rule (\\leftarrow), a rule
for every layer l, a definition or forward step (z, a, p, the loss), or an
intermediate derivative (of the loss with respect to a batch mean, variance
or normalised value, or of an activation). Left sides that cannot be read at
all (an unknown name such as q2) are errors, not skips, so a typo is never hidden.

Markdown documents hold display math in ```math fences, long equations as
an aligned block split at operators; a fence is one equation, its lines joined.
"""
from __future__ import annotations

import re

from ..errors import FormulaError
from .parser import Sym, parse_formula, resolve

_FENCE = re.compile(r"^```math[ \t]*\n(.*?)^```", re.S | re.M)
_ALIGNED = re.compile(r"\\(?:begin|end)\{aligned\*?\}")
# A derivative of the loss, or of anything (d a / d z: an activation's derivative).
_DERIVATIVE = re.compile(r"^(?:\\left\.)?\\d?frac\{\\partial\s*((?:\\mathcal\{[^}]*\}|[^}])*)\}")
_PRIMED = re.compile(r"^(?:\\mathrm\{\w+\}|\\operatorname\{\w+\}|\\?\w+)'\s*(?:\(|\\left\()\s*[a-z]\s*(?:\)|\\right\))")
_GRADIENT_LOOKING = re.compile(r"\\(?:delta|Delta)\b|\\bar\{?[ax]\b|d[A-Za-z\\]")
_LOSS = re.compile(r"\\ell(?:_\{?[ie]\}?)?|\\mathcal\{L\}|[LCJE]")


def fenced_equations(source: str) -> list[tuple[int, str]]:
    """(line, equation) of every ```math fence, aligned lines joined into one."""
    out = []
    for mt in _FENCE.finditer(source):
        body = _ALIGNED.sub(" ", mt.group(1)).replace("\\\\", " ").replace("&", " ")
        text = " ".join(body.split()).rstrip(",.;").strip()
        if text:
            out.append((source.count("\n", 0, mt.start(1)) + 1, text))
    return out


def left_side(text: str) -> str | None:
    """The text before the first = at brace depth 0 (None: no =)."""
    depth = 0
    for i, ch in enumerate(text):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if ch == "=" and depth == 0 and text[i - 1:i] not in ("<", ">", "!") and text[i + 1:i + 2] != "=":
            return text[:i].strip()
    return None


def skip_reason(text: str, info, is_target) -> str | None:
    """Why the equation is not a gradient target, or None when it is one (or may be:
    a left side that does not read is left to the verifier, which reports it)."""
    if "\\leftarrow" in text:
        return "an update rule"
    lhs = left_side(text)
    if lhs is None:
        return None
    if "\\qquad" in text or re.search(r"\^\{?[(\[]l(?:[+-]1)?[)\]]", lhs):     # (L) is the last layer
        return "a rule for every layer l"
    rhs = text[text.find("=", len(lhs)) + 1:].strip()
    if lhs.startswith("\\bar") and _only_derivative(rhs):     # \bar{x} := d L / d x: a name
        return "notation: a name for a derivative"
    if re.match(r"^\\d?frac\{\\partial[^}]*\}\{\\partial\s*\\tilde", lhs):
        return "an intermediate derivative of the loss (the zero-padded input)"
    if lhs.startswith("\\check"):        # \check\delta^{(l)} := delta dilated by the stride
        return "a definition of the dilated error, not a gradient"
    if re.fullmatch(r"u(_\{[^}]*\})?(\^\{\(\d+\)\})?", lhs):    # batch norm's batch values u_j := ...
        return "a definition of batch norm's batch values, not a gradient"
    if _PRIMED.match(lhs):          # ReLU'(z) = ..., with a layer-free argument
        return "the derivative of an activation"
    mt = _DERIVATIVE.match(lhs)
    if mt and not _LOSS.fullmatch(mt.group(1).strip()):
        return "the derivative of an activation or step, not of the loss"
    try:
        sym = resolve(parse_formula(lhs), info.symbols).rhs
    except FormulaError as exc:
        if mt:      # a derivative of the loss the reader does not name: an intermediate quantity
            return None if _names_known(lhs) else "an intermediate derivative of the loss"
        if _LOSS.fullmatch(lhs):
            return "the loss"
        if str(exc).startswith("unknown command"):      # \eta_t, \hat m: no quantity of the net
            return "a definition of a symbol that is not a quantity of the net"
        if str(exc).startswith("unknown name") or _GRADIENT_LOOKING.match(lhs):
            return None     # the verifier reports it, so a typo or a misread gradient is not hidden
        return "a definition, not a gradient"
    if isinstance(sym, Sym) and is_target(sym):
        return None
    return "a definition or forward step, not a gradient"


def _names_known(lhs: str) -> bool:
    """d(loss)/d(a parameter, x, a or z): a gradient target written in a form not read."""
    den = re.search(r"\\partial\s*(\\?[A-Za-z]+)", lhs[lhs.find("}{") + 2:] if "}{" in lhs else "")
    return bool(den) and den.group(1) in ("W", "b", "x", "a", "z", "\\gamma", "\\beta", "\\Theta", "w")


def _only_derivative(rhs: str) -> bool:
    """Whether the right side is one \\frac{\\partial .}{\\partial .} and nothing else."""
    mt = re.match(r"\\d?frac(?=\{\\partial)", rhs)
    if not mt:
        return False
    end, groups = mt.end(), 0
    while groups < 2 and end < len(rhs) and rhs[end] == "{":
        depth = 0
        for k in range(end, len(rhs)):
            depth += {"{": 1, "}": -1}.get(rhs[k], 0)
            if depth == 0:
                end, groups = k + 1, groups + 1
                break
        else:
            return False
    return groups == 2 and rhs[end:].strip() == "" and "\\partial" in rhs[mt.end():end].split("}{", 1)[-1]
