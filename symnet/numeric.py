"""Turning symnet's own SymPy expressions into numpy functions.

Only expressions symnet built (from its parser or its derivation) get here;
`lambdify` prints them to source, it never evaluates user text.
"""
from __future__ import annotations

import numpy as np
import sympy as sp
from scipy import special


_MODULES = [{"sigmoid": special.expit,
             "softplus": lambda x: np.logaddexp(0.0, x),
             "erf": special.erf,
             "Heaviside": lambda x, h0=0.0: np.heaviside(x, h0)}, "numpy"]


def lambdify(symbols, expr):
    """A vectorised numpy function of `symbols` computing `expr`."""
    return sp.lambdify(symbols, expr, modules=_MODULES)


def central_difference(f, array, index, h: float) -> float:
    """(f() at array[index] + h - f() at array[index] - h) / 2h, moving that one entry of
    `array` in place and restoring it (the float64 reference every gradient is checked with)."""
    saved = array[index]
    array[index] = saved + h
    up = f()
    array[index] = saved - h
    down = f()
    array[index] = saved
    return (up - down) / (2 * h)
