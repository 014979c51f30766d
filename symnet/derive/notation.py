"""Names of the quantities in a derivation, as SymPy objects that print the
lectures' notation: z^{(l)}_i, a^{(l)}, W^{(k)}, delta^{(l)}."""
from __future__ import annotations

from functools import lru_cache

import sympy as sp


def sup(l) -> str:
    return "{(%s)}" % l


@lru_cache(maxsize=None)
def indexed(base: str, l) -> sp.IndexedBase:
    """Element-wise quantity, e.g. indexed('z', 2)[i] prints z^{(2)}_{i}."""
    return sp.IndexedBase("%s^%s" % (base, sup(l)), real=True)


@lru_cache(maxsize=None)
def dim(l) -> sp.Symbol:
    """n^{(l)}: the width of layer l (symbolic, so cost does not grow with width)."""
    return sp.Symbol("n^{(%s)}" % l, integer=True, positive=True)


@lru_cache(maxsize=None)
def matrix(base: str, l, rows, cols) -> sp.MatrixSymbol:
    return sp.MatrixSymbol("%s^%s" % (base, sup(l)), rows, cols)


def column(base: str, l) -> sp.MatrixSymbol:
    """A per-example column vector of layer l, shape (n^{(l)}, 1)."""
    return matrix(base, l, dim(l), 1)


def batch_matrix(base: str, l, m) -> sp.MatrixSymbol:
    """The batch of row vectors, shape (m, n^{(l)})."""
    return sp.MatrixSymbol("%s^%s" % (base.upper() if len(base) == 1 else base, sup(l)), m, dim(l))


def elementwise(name: str, l) -> sp.MatrixSymbol:
    """g'(z^{(l)}) as a column vector (applied element by element)."""
    return sp.MatrixSymbol(r"%s\left(z^%s\right)" % (name, sup(l)), dim(l), 1)


# The batch loss (the mean of the per-example losses ell_e over the batch) is J;
# L is the number of layers (the last layer's superscript), never a loss.
BATCH_LOSS = "J"


def d_batch(q: str) -> sp.Symbol:
    """dJ/dq: the gradient of the batch loss."""
    return sp.Symbol(r"\frac{\partial %s}{\partial %s}" % (BATCH_LOSS, q))
