"""Rational approximations of elementary functions for float32 kernels, derived by SymPy.

Numba compiles `np.tanh` on a float32 into a call of the C library's scalar `tanhf`
(~11 ns each, one at a time: the loop around it cannot be vectorised). A rational
function is only multiplications, additions and one division, which LLVM vectorises:
a 2-16-16-1 tanh network's training step spent two thirds of its time in `tanhf`.

`tanh_float32()` is the [15/14] Padé approximant of tanh at 0, solved exactly from
SymPy's Taylor coefficients; evaluated in float64 it is within 7e-10 (relative) of tanh
on [-9.5, 9.5], far below float32's resolution (6e-8), so its float32 rounding is
tanh's correctly rounded value but for rare ties; beyond +-9.5 tanh rounds to +-1 in
float32, so the argument is clamped there (NaN passes the clamp unchanged).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

PADE_ORDER = (15, 14)   # numerator, denominator degree
TANH_CLAMP = sp.Rational(19, 2)   # |x| beyond: tanh(x) rounds to +-1 in float32; the approximant still holds


@dataclass(frozen=True)
class OddRational:
    """f(x) ~ x P(x^2) / Q(x^2) for |x| <= clamp (x clamped to [-clamp, clamp] first)."""
    s: sp.Symbol      # s = x^2
    P: sp.Expr        # in s, Horner form
    Q: sp.Expr        # in s, Horner form
    clamp: sp.Rational


def pade(coefficients: list, L: int, M: int) -> tuple[list, list]:
    """(p, q): the [L/M] Padé approximant p(x)/q(x), q(0) = 1, of the series with these
    Taylor coefficients (exact rationals; len(coefficients) > L + M)."""
    q = sp.symbols(f"q1:{M + 1}")
    qs = [sp.Integer(1), *q]

    def c(k):
        return coefficients[k] if k >= 0 else sp.Integer(0)
    # the series of q(x) f(x) - p(x) starts at x^(L+M+1): its coefficients L+1 .. L+M vanish
    equations = [sum(qs[j] * c(k - j) for j in range(M + 1)) for k in range(L + 1, L + M + 1)]
    solution = sp.solve(equations, q, dict=True)[0]
    qs = [sp.Integer(1)] + [solution.get(v, sp.Integer(0)) for v in q]
    ps = [sum(qs[j] * c(k - j) for j in range(min(k, M) + 1)) for k in range(L + 1)]
    return ps, qs


@lru_cache(maxsize=None)
def tanh_float32() -> OddRational:
    """tanh's [15/14] Padé approximant at 0, as x P(x^2) / Q(x^2)."""
    x, s = sp.symbols("x s")
    L, M = PADE_ORDER
    taylor = [sp.tanh(x).taylor_term(n, x).coeff(x, n) if n % 2 else sp.Integer(0) for n in range(L + M + 1)]
    p, q = pade(taylor, L, M)
    # tanh is odd: p has only odd powers, q only even ones
    P = sp.horner(sum(p[2 * k + 1] * s**k for k in range((L + 1) // 2)), s)
    Q = sp.horner(sum(q[2 * k] * s**k for k in range(M // 2 + 1)), s)
    return OddRational(s, P, Q, TANH_CLAMP)


__all__ = ["OddRational", "pade", "tanh_float32", "PADE_ORDER", "TANH_CLAMP"]
