"""A worked numeric example: the derivation instantiated at a seeded point.

A seeded input x and target y, the network's initial parameters (seeded), a
seeded dropout mask, every z, a, delta (and pooling's, flatten's and dropout's
upstream gradient a-bar, batch norm's statistics) as numbers: symnet.trace
evaluates the Derivation's own lambdified math in float64 for every layer
kind. Each gradient entry, the input's too, stands beside its float64 central
difference of the loss: the table a student checks homework against.

One example (m = 1), except where the network has batch norm: its batch
statistics need several examples, so m = BATCH_NORM_BATCH and the tables show
the first example's values. On by default for networks with at most
EXAMPLE_MAX_PARAMS parameters (a network a student could follow by hand; the
tables stay short anyway); each quantity shows its first MAX_ENTRIES entries.
"""
from __future__ import annotations

import numpy as np

from ..errors import RenderError
from ..numeric import central_difference

EXAMPLE_MAX_PARAMS = 1000
MAX_ENTRIES = 6
BATCH_NORM_BATCH = 4
FD_STEP = 1e-6


def supported(net) -> str | None:
    """None when the worked example covers `net`, else the reason it does not."""
    from ..trace import layer_kinds
    for p in net.placed:
        if p.layer.type not in layer_kinds():
            return f"the worked example has no evaluator for {p.where} ({p.layer.type})"
    return None


def default_on(net) -> bool:
    return supported(net) is None and net.n_params <= EXAMPLE_MAX_PARAMS


def batch_size(net) -> int:
    return BATCH_NORM_BATCH if any(p.layer.type == "batchnorm" for p in net.placed) else 1


def _fmt(v: float) -> str:
    return "%.6g" % v


def _vector(values) -> str:
    flat = np.ravel(values)
    shown = ", ".join(_fmt(v) for v in flat[:MAX_ENTRIES])
    return "(" + shown + (", ... (%d entries)" % flat.size if flat.size > MAX_ENTRIES else "") + ")"


def compute(d, seed: int = 0) -> dict:
    """The numbers of the worked example: values, gradients and central differences."""
    from ..check import float64_copy, random_batch
    from ..derive import derive
    from ..trace import trace      # the one float64 evaluator of every layer kind
    net = d.network
    reason = supported(net)
    if reason:
        raise RenderError(reason)
    if net.dtype != "float64":
        net = float64_copy(net)
        d = derive(net)
    rng = np.random.default_rng(seed)
    params = {k: np.array(v, dtype=np.float64) for k, v in net.init_params(seed=seed, dtype="float64").items()}
    m = batch_size(net)
    X, Y = random_batch(net, m, rng)
    # a seeded keep mask per dropout layer, the same in every evaluation below
    masks = {p.position: (rng.random((m, *p.in_shape)) >= p.layer.rate).astype(np.float64)
             for p in net.placed if p.layer.type == "dropout"}
    ev = trace(d, params, X, Y, masks=masks)

    def loss():
        return trace(d, params, X, Y, masks=masks).loss

    checks = []
    for name, g in ev.grads.items():
        if name == "x":
            continue
        for flat in range(min(MAX_ENTRIES, g.size)):
            index = np.unravel_index(flat, g.shape)
            checks.append((name, index, float(g[index]), central_difference(loss, params[name], index, FD_STEP)))
    gx = ev.grads["x"][0]                       # the first example's input gradient
    for flat in range(min(MAX_ENTRIES, gx.size)):
        index = np.unravel_index(flat, gx.shape)
        checks.append(("x", index, float(gx[index]), central_difference(loss, X, (0, *index), FD_STEP)))
    return {"net": net, "seed": seed, "m": m, "X": X, "Y": Y, "masks": masks, "eval": ev,
            "params": params, "checks": checks}


def _zero_based(net, name: str) -> bool:
    """Indices count as the derivation's do: from 0 for convolution, pooling
    and batch norm over channels, from 1 for dense layers."""
    if name == "x":
        return len(net.input_shape) == 3
    for p in net.placed:
        if name in p.params.values():
            return p.layer.type == "conv2d" or len(p.in_shape) == 3
    return False


def _entry_tex(net, name: str, index) -> str:
    base = 0 if _zero_based(net, name) else 1
    sub = ",".join(str(i + base) for i in index)
    if name == "x":
        return "x_{%s}" % sub
    letters = name.rstrip("0123456789")
    layer = name[len(letters):]
    sym = {"gamma": r"\gamma", "beta": r"\beta"}.get(letters, letters)
    return "%s^{(%s)}_{%s}" % (sym, layer, sub)


def _rows(num) -> tuple[list, list]:
    """The forward table's and the errors table's rows (first example)."""
    ev, net = num["eval"], num["net"]
    vals = ev.values
    forward = [["$x = a^{(0)}$", _vector(num["X"][0])]]
    errors = []
    for p in net.placed:
        l = p.position
        if l in num["masks"]:
            forward.append([f"$\\xi^{{({l})}}$ (dropout mask)", _vector(num["masks"][l][0])])
        if f"mu{l}" in vals:
            forward.append([f"$\\mu^{{({l})}}$ (batch mean per channel)", _vector(vals[f"mu{l}"])])
            forward.append([f"$\\sigma^{{2\\,({l})}}$ (batch variance per channel)", _vector(vals[f"var{l}"])])
            forward.append([f"$\\hat u^{{({l})}}$", _vector(vals[f"xhat{l}"][0])])
        if f"z{l}" in vals:
            forward.append([f"$z^{{({l})}}$", _vector(vals[f"z{l}"][0])])
        if f"a{l}" in vals:
            forward.append([f"$a^{{({l})}}$", _vector(vals[f"a{l}"][0])])
    for p in reversed(net.placed):
        l = p.position
        if f"delta{l}" in vals:
            errors.append([f"$\\delta^{{({l})}}$", _vector(vals[f"delta{l}"][0])])
        elif f"da{l}" in vals:
            errors.append([f"$\\bar a^{{({l})}}$", _vector(vals[f"da{l}"][0])])
    forward += [["$y$", _vector(num["Y"][0])],
                ["$J$" if num["m"] > 1 else r"$\ell$", _fmt(ev.loss)]]
    return forward, errors


def _intro(num, worst: float) -> str:
    net, m, seed = num["net"], num["m"], num["seed"]
    step = "10^{%d}" % round(np.log10(FD_STEP))          # the central difference's step (FD_STEP)
    text = (f"The derivation at a seeded point (seed {seed}), in float64: the network's initial parameters "
            f"(He initialisation)" + (", a seeded dropout mask $\\xi$ (1 = kept)" if num["masks"] else "")
            + (" and one example $x$ with target $y$.\n" if m == 1 else
               f" and a batch of $m = {m}$ examples, since batch norm's statistics need several; the tables "
               f"show the first example, its errors those of the summed loss $m J$.\n")
            + f"Each quantity shows its first {MAX_ENTRIES} entries"
            + (" in channel, row, column order" if any(len(p.out_shape) == 3 for p in net.placed) else "")
            + "; $\\bar a^{(l)} = \\partial \\ell / \\partial a^{(l)}$ for a layer without activation.\n"
            f"Each gradient entry of $J$ stands beside the central difference "
            f"$(J(\\theta + {step}) - J(\\theta - {step})) / (2 \\cdot {step})$ (one entry of $\\theta$ "
            f"moved); the largest difference is "
            f"{worst:.1e}.\nIndices count as in the derivation: from 0 for convolution, pooling and "
            f"channels, from 1 for dense layers.")
    return text      # one sentence a line: Markdown lines stay short


def tables(d, seed: int = 0, input_gradient: bool = True) -> dict:
    """The example section's tables: cells are prose with $math$; without
    `input_gradient` the input's entries leave the gradient table."""
    from .document import md_escape, tex_escape, why_md, why_tex
    num = compute(d, seed)
    if not input_gradient:
        num["checks"] = [c for c in num["checks"] if c[0] != "x"]
    net = num["net"]
    forward, backward = _rows(num)
    grads = [["$%s$" % _entry_tex(net, name, index), _fmt(g), _fmt(fd), "%.1e" % abs(g - fd)]
             for name, index, g, fd in num["checks"]]
    worst = max((abs(g - fd) for _, _, g, fd in num["checks"]), default=0.0)
    out = []
    for title, head, rows, colspec in (
            ("Forward pass", ["quantity", "value"], forward, "P{4.6cm}P{11.4cm}"),
            ("Errors", ["quantity", "value"], backward, "P{4.6cm}P{11.4cm}"),
            ("Gradients and central differences", ["entry", "derived", "central difference", "difference"],
             grads, "llll")):
        out.append({"title": title, "head": head, "rows": rows, "colspec": colspec,
                    "title_tex": tex_escape(title), "title_md": md_escape(title),
                    "head_tex": " & ".join(why_tex(h) for h in head),
                    "head_md": "| " + " | ".join(why_md(h) for h in head) + " |",
                    "rule_md": "|" + "---|" * len(head),
                    "rows_tex": [" & ".join(why_tex(c) for c in r) for r in rows],
                    "rows_md": ["| " + " | ".join(why_md(c) for c in r) + " |" for r in rows]})
    intro = _intro(num, worst)
    return {"intro": intro, "intro_tex": why_tex(intro), "intro_md": why_md(intro), "tables": out,
            "worst": worst}


__all__ = ["EXAMPLE_MAX_PARAMS", "MAX_ENTRIES", "BATCH_NORM_BATCH", "supported", "default_on", "batch_size",
           "compute", "tables"]
