"""Answer notes: which common mistake explains a "not equal" verdict.

Each hypothesis is a repaired formula (an AST rewrite of the one given): flip the
sign, scale by m, 1/m, 2, 1/2 or 1/n, transpose, multiply or divide by the
missing or extra g'(z), swap a and z, move a layer number by one, swap the
factors of a product, add the missing sum over examples or positions. The engine
checks each repair with the same shape and numeric stages; the first one that
makes the formula equal names the mistake.
"""
from __future__ import annotations

import re
from dataclasses import fields, replace
from fractions import Fraction

from .parser import Call, Div, Hadamard, MatMul, Mul, Neg, Node, Num, Sum, Sym, Transpose

TRIED = ("sign", "constant factors 1/m, m, 2, 1/2, 1/n (and k k for average pooling)", "transpose", "a missing or extra g'(z)",
         "a for z and z for a", "a layer index off by one", "the order of a product",
         "a missing sum over examples or positions")


def _sym_text(key: str) -> str:
    m = re.fullmatch(r"([A-Za-z]+?)(\d+)", key)
    if not m:
        return key
    base = {"delta": r"\delta", "Delta": r"\Delta", "gamma": r"\gamma", "beta": r"\beta"}.get(m.group(1), m.group(1))
    return f"{base}^{{({m.group(2)})}}"


def _nodes(root: Node):
    stack = [root]
    while stack:
        n = stack.pop()
        yield n
        for f in fields(n):
            v = getattr(n, f.name)
            if isinstance(v, Node):
                stack.append(v)
            elif isinstance(v, tuple):
                stack.extend(x for x in v if isinstance(x, Node))


def _swap(root: Node, old: Node, new: Node) -> Node:
    """root with the node `old` (by identity) replaced by `new`."""
    if root is old:
        return new
    changes = {}
    for f in fields(root):
        v = getattr(root, f.name)
        if isinstance(v, Node):
            w = _swap(v, old, new)
            if w is not v:
                changes[f.name] = w
        elif isinstance(v, tuple) and any(isinstance(x, Node) for x in v):
            w = tuple(_swap(x, old, new) if isinstance(x, Node) else x for x in v)
            if any(a is not b for a, b in zip(v, w)):
                changes[f.name] = w
    return replace(root, **changes) if changes else root


def _factor(value, text: str, meaning: str = ""):
    return value, text, meaning


def candidates(rhs: Node, info, key: str, grad: bool, lhs_indices: tuple, batch: bool, free: set):
    """(note, repaired right side) pairs, most common mistakes first."""
    out = [("the sign is flipped", Neg(rhs))]
    n_out = info.symbols["y"].shape[0]
    m_sym = Sym("m")
    factors = []        # (multiplier that repairs, what the formula is off by)
    if batch:
        factors += [(m_sym, "1/m", "per-example against batch average: the 1/m is extra or the sum "
                                   "should be a mean"),
                    (Div(Num(Fraction(1)), m_sym), "m", "per-example against batch average: the "
                                                       "average over the examples (1/m) is missing")]
    factors += [(Num(Fraction(1, 2)), "2", ""), (Num(Fraction(2)), "1/2", "")]
    if n_out > 1:
        factors += [(Num(Fraction(n_out)), f"1/n (n = {n_out} outputs)", ""),
                    (Num(Fraction(1, n_out)), f"n (n = {n_out} outputs)", "")]
    windows = sorted({p.layer.size for p in info.net.placed if p.layer.type == "avgpool2d"})
    for k in windows:       # average pooling's 1/(k k) forgotten or doubled
        factors += [(Num(Fraction(1, k * k)), f"{k * k}", f"average pooling's 1/({k} {k}) is missing"),
                    (Num(Fraction(k * k)), f"1/{k * k}", f"average pooling's 1/({k} {k}) is there twice")]
    for mult, text, meaning in factors:
        note = f"off by a constant factor: the formula is {text} times symnet's value" + (f" ({meaning})" if meaning else "")
        out.append((note, Mul(mult, rhs)))
    if not lhs_indices:
        out.append(("this is the transpose of the gradient", Transpose(rhs)))
    layer = re.search(r"\d+$", key)
    l = int(layer.group()) if layer else None
    if not grad and key.startswith("delta") and l in info.derivation.activations:
        z = Sym(f"z{l}", tuple(lhs_indices))
        dg = Call("g", (z,), True)
        out.append((f"g'(z^{{({l})}}) is missing: \\delta^{{({l})}} = g'(z^{{({l})}}) \\odot (\\dots)",
                    Hadamard(rhs, dg)))
        out.append((f"an extra factor g'(z^{{({l})}})", Div(rhs, dg)))
    for node in _nodes(rhs):
        if not isinstance(node, Sym):
            continue
        mk = re.fullmatch(r"([a-zA-Z]+?)(\d+)", node.key)
        if not mk:
            continue
        base, num = mk.group(1), int(mk.group(2))
        other = {"a": "z", "z": "a"}.get(base)
        if other and f"{other}{num}" in info.symbols:
            out.append((f"{_sym_text(node.key)} is used where {_sym_text(other + str(num))} belongs",
                        _swap(rhs, node, replace(node, key=f"{other}{num}"))))
        for shift in (1, -1):
            new = f"{base}{num + shift}"
            if new in info.symbols and info.symbols[new].shape == info.symbols[node.key].shape or \
                    (new in info.symbols and base in ("W", "b", "gamma", "beta")):
                out.append((f"off-by-one layer: {_sym_text(node.key)} is used where {_sym_text(new)} belongs",
                            _swap(rhs, node, replace(node, key=new))))
    for node in _nodes(rhs):
        if isinstance(node, MatMul):
            out.append(("a product in the wrong order: the factors of a matrix product are swapped",
                        _swap(rhs, node, replace(node, left=node.right, right=node.left))))
    if not lhs_indices:
        out.append(("a sum over the examples is missing (\\sum over the batch, then 1/m)",
                    Mul(Div(Num(Fraction(1)), m_sym), Sum("", rhs))))
        out.append(("a sum over the examples is missing", Sum("", rhs)))
    else:
        extra = sorted(free - set(lhs_indices))
        if extra:
            body = rhs
            for letter in reversed(extra):
                body = Sum(letter, body)
            out.append((f"a sum over {', '.join(extra)} is missing (the right side still depends on "
                        f"{', '.join(extra)})", body))
    return out
