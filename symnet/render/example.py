"""A worked numeric example: the derivation instantiated at a seeded point.

One example x, y (seeded), the network's initial parameters (seeded), every
z, a, delta as numbers (symnet.trace evaluates the Derivation's own
lambdified math in float64), and each gradient entry beside its float64
central difference of the loss, the table a student checks homework against.

Dense and softmax networks only (the numpy reference covers those). On by
default for such networks with at most EXAMPLE_MAX_PARAMS parameters; each
quantity shows its first MAX_ENTRIES entries.
"""
from __future__ import annotations

import numpy as np

from ..errors import RenderError

EXAMPLE_MAX_PARAMS = 1000
MAX_ENTRIES = 6
FD_STEP = 1e-6


def supported(net) -> str | None:
    """None when the worked example covers `net`, else the reason it does not."""
    for p in net.placed:
        if p.layer.type not in ("dense", "softmax"):
            return f"the worked example covers dense and softmax layers only, not {p.where}"
    return None


def default_on(net) -> bool:
    return supported(net) is None and net.n_params <= EXAMPLE_MAX_PARAMS


def _fmt(v: float) -> str:
    return "%.6g" % v


def _vector(values) -> str:
    flat = np.ravel(values)
    shown = ", ".join(_fmt(v) for v in flat[:MAX_ENTRIES])
    return "(" + shown + (", ... (%d entries)" % flat.size if flat.size > MAX_ENTRIES else "") + ")"


def _central_difference(loss, params, name, index, h=FD_STEP) -> float:
    saved = params[name][index]
    params[name][index] = saved + h
    up = loss(params)
    params[name][index] = saved - h
    down = loss(params)
    params[name][index] = saved
    return (up - down) / (2 * h)


def compute(d, seed: int = 0) -> dict:
    """The numbers of the worked example: values, gradients and central differences."""
    from ..check import float64_copy, random_batch
    from ..derive import derive
    from ..trace import trace as evaluate      # the one float64 evaluator of every layer kind
    net = d.network
    reason = supported(net)
    if reason:
        raise RenderError(reason)
    if net.dtype != "float64":
        net = float64_copy(net)
        d = derive(net)
    rng = np.random.default_rng(seed)
    params = {k: np.array(v, dtype=np.float64) for k, v in net.init_params(seed=seed, dtype="float64").items()}
    X, Y = random_batch(net, 1, rng)
    ev = evaluate(d, params, X, Y)

    def loss(p):
        return evaluate(d, p, X, Y).loss

    checks = []
    for name in params:
        g = ev.grads[name]
        for flat in range(min(MAX_ENTRIES, g.size)):
            index = np.unravel_index(flat, g.shape)
            checks.append((name, index, float(g[index]), _central_difference(loss, params, name, index)))
    return {"net": net, "seed": seed, "X": X, "Y": Y, "eval": ev, "params": params, "checks": checks}


def _param_tex(name: str, index) -> str:
    letters = name.rstrip("0123456789")
    layer = name[len(letters):]
    sym = {"gamma": r"\gamma", "beta": r"\beta"}.get(letters, letters)
    return "%s^{(%s)}_{%s}" % (sym, layer, ",".join(str(i + 1) for i in index))


def tables(d, seed: int = 0) -> dict:
    """The example section's tables: cells are prose with $math$."""
    from .document import md_escape, tex_escape, why_md, why_tex
    num = compute(d, seed)
    ev, net = num["eval"], num["net"]
    forward = [["$x = a^{(0)}$", _vector(num["X"])]]
    for p in net.placed:
        l = p.position
        if f"z{l}" in ev.values:
            forward.append([f"$z^{{({l})}}$", _vector(ev.values[f"z{l}"])])
        if f"a{l}" in ev.values:
            forward.append([f"$a^{{({l})}}$", _vector(ev.values[f"a{l}"])])
    forward += [["$y$", _vector(num["Y"])], [r"$\ell$", _fmt(ev.loss)]]
    backward = [[f"$\\delta^{{({p.position})}}$", _vector(ev.values[f"delta{p.position}"])]
                for p in reversed(net.placed) if f"delta{p.position}" in ev.values]
    grads = [["$%s$" % _param_tex(name, index), _fmt(g), _fmt(fd), "%.1e" % abs(g - fd)]
             for name, index, g, fd in num["checks"]]
    worst = max((abs(g - fd) for _, _, g, fd in num["checks"]), default=0.0)
    out = []
    for title, head, rows, colspec in (
            ("Forward pass", ["quantity", "value"], forward, "lp{12.5cm}"),
            ("Errors", ["quantity", "value"], backward, "lp{12.5cm}"),
            ("Gradients and central differences", ["entry", "derived", "central difference", "difference"],
             grads, "llll")):
        out.append({"title": title, "head": head, "rows": rows, "colspec": colspec,
                    "title_tex": tex_escape(title), "title_md": md_escape(title),
                    "head_tex": " & ".join(why_tex(h) for h in head),
                    "head_md": "| " + " | ".join(why_md(h) for h in head) + " |",
                    "rule_md": "|" + "---|" * len(head),
                    "rows_tex": [" & ".join(why_tex(c) for c in r) for r in rows],
                    "rows_md": ["| " + " | ".join(why_md(c) for c in r) + " |" for r in rows]})
    intro = (f"The derivation at a seeded point (seed {seed}): one example $x$ with target $y$ "
             f"and the network's initial parameters (He initialisation), in float64. Each vector shows its "
             f"first {MAX_ENTRIES} entries. Each gradient entry stands beside the central difference "
             f"$(\\ell(\\theta + h) - \\ell(\\theta - h)) / 2h$ with $h = 10^{{-6}}$; the largest difference is "
             f"{worst:.1e}. Indices in this table count from 1.")
    return {"intro": intro, "intro_tex": why_tex(intro), "intro_md": why_md(intro), "tables": out,
            "worst": worst}


__all__ = ["EXAMPLE_MAX_PARAMS", "MAX_ENTRIES", "supported", "default_on", "compute", "tables"]
