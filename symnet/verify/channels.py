"""Batch norm's per-channel sums, as symnet's documents write them.

For batch norm the documents fix a channel c and let one letter run over all of
its values in the batch (m examples, times H W positions after a conv layer):

    \\frac{\\partial \\mathcal{L}}{\\partial \\gamma^{(3)}_{c}} = \\sum_{k=1}^{\\bar{m}} \\delta^{(3)}_{k} \\hat{u}_{k}
    \\frac{\\partial \\mathcal{L}}{\\partial \\gamma^{(3)}} = \\sum_{e,h,w} \\delta^{(3)}_{j} \\odot \\hat{u}_{j}

Read literally, `\\delta_k` would be unit k of one example. So, only for the
gradient of a batch-norm layer's gamma or beta, a letter is read as "one value
of channel c" when it is the one index of that layer's quantities and either
(1) its sum runs to m or \\bar{m} (the batch values), or (2) the left side has
no index (the vector over channels): \\sum_j, or \\sum_{e,h,w} (examples and
positions) around a body indexed by j. The verdict's names say so.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

from .parser import Node, ResolvedFormula, Sum, Sym, walk

_BATCH_BOUNDS = {"m", r"\bar{m}", r"\bar m", r"\overline{m}", r"\bar{m}^{(l)}"}


@dataclass(frozen=True)
class Channels:
    letters: frozenset      # letters that run over one channel's batch values
    axis: str               # the channel's index letter in the result (the left side's, or '#c')
    count: int              # channels
    layer: int


def _syms(node: Node):
    return (n for n in walk(node) if isinstance(n, Sym))


def _own(sym: Sym, info, layer: int, count: int) -> bool:
    """A quantity of batch-norm layer `layer` (or its input u) with one value per channel and example."""
    digits = re.search(r"\d+$", sym.key)
    return (bool(digits) and int(digits.group()) in (layer, layer - 1) and not sym.d
            and info.symbols[sym.key].shape[0] == count and sym.key[:4] not in ("gamm", "beta", "runn")
            and not re.fullmatch(r"(mu|var)\d+", sym.key))


def read(resolved: ResolvedFormula, info, key: str, grad: bool) -> tuple[ResolvedFormula, Channels | None, tuple]:
    """(formula, channel reading or None, what the verdict says about it)."""
    mt = re.fullmatch(r"(gamma|beta)(\d+)", key)
    if not (grad and mt):
        return resolved, None, ()
    layer = int(mt.group(2))
    count = info.symbols[key].shape[0]
    lhs_letters = [ix for ix in getattr(resolved.lhs, "indices", ()) if isinstance(ix, str)]
    single = {s.indices[0] for s in _syms(resolved.rhs)
              if len(s.indices) == 1 and isinstance(s.indices[0], str) and _own(s, info, layer, count)}
    letters = set()
    rhs = resolved.rhs

    def visit(node: Node) -> Node:
        if isinstance(node, Sum) and node.index:
            chain, inner = [node], node.body
            while isinstance(inner, Sum) and inner.index:
                chain.append(inner)
                inner = inner.body
            used = {ix for s in _syms(inner) for ix in s.indices if isinstance(ix, str)}
            free_single = (used & single) - {n.index for n in chain}
            if not lhs_letters and all(n.index not in used for n in chain) and len(free_single) == 1:
                # \sum_{e,h,w} delta_j: over the examples and positions, j one value of the channel
                j = free_single.pop()
                letters.add(j)
                return Sum(j, visit(inner), span=node.span)
            if node.index in single and (node.upper in _BATCH_BOUNDS or not lhs_letters):
                letters.add(node.index)
        changes = {}
        for name in ("body", "left", "right", "expr", "base"):
            value = getattr(node, name, None)
            if isinstance(value, Node):
                changes[name] = visit(value)
        if getattr(node, "args", None):
            changes["args"] = tuple(visit(a) for a in node.args)
        return replace(node, **changes) if changes else node

    rhs = visit(rhs)
    if not letters:
        return resolved, None, ()
    axis = lhs_letters[0] if len(lhs_letters) == 1 else "#c"
    said = (f"{', '.join(sorted(letters))}: one value of channel {axis if axis != '#c' else 'c'} in the batch "
            f"(batch norm layer {layer}: its m examples{' and H W positions' if len(info.symbols[f'delta{layer}'].shape) > 2 else ''})",)
    return replace(resolved, rhs=rhs), Channels(frozenset(letters), axis, count, layer), said
