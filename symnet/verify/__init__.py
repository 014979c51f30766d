"""Checking hand-derived backprop formulas: a safe parser for the notation
people write (LaTeX or plain text), then a comparison with symnet's own
derivation (shapes, numbers at random points, and SymPy where feasible).

    >>> from symnet.verify import verify
    >>> verify(net, "W2", "dW2 = dz2 a1^T").status
    'equal'
"""
from .engine import Counterexample, Verdict, verify

__all__ = ["verify", "Verdict", "Counterexample"]
