"""SymPy's rational approximations for float32 kernels (symnet.approximants), against mpmath."""
import mpmath
import pytest
import sympy as sp

from symnet.approximants import PADE_ORDER, pade, tanh_float32


@pytest.mark.parametrize("fn, L, M", [(sp.exp, 3, 3), (sp.atan, 5, 4), (sp.tanh, 7, 6)])
def test_pade_equals_mpmath(fn, L, M):
    x = sp.Symbol("x")
    series = [fn(x).series(x, 0, L + M + 1).removeO().coeff(x, n) for n in range(L + M + 1)]
    p, q = pade(series, L, M)
    with mpmath.workdps(40):
        mp_p, mp_q = mpmath.pade([mpmath.mpf(c.p) / c.q for c in series], L, M)
        for ours, theirs in ((p, mp_p), (q, mp_q)):
            assert len(ours) == len(theirs)
            for a, b in zip(ours, theirs):
                assert abs(mpmath.mpf(a.p) / a.q - b) < mpmath.mpf(10) ** -30


def test_tanh_approximant_is_far_below_float32_resolution():
    r = tanh_float32()
    assert PADE_ORDER == (15, 14)
    x = sp.Symbol("x")
    f = sp.lambdify(x, x * r.P.subs(r.s, x**2) / r.Q.subs(r.s, x**2), "mpmath")
    clamp = float(r.clamp)
    with mpmath.workdps(40):
        worst = max(abs(f(mpmath.mpf(t)) / mpmath.tanh(t) - 1) for t in mpmath.linspace(1e-3, clamp, 500))
        assert worst < 1e-9                                  # float32 resolution: 6e-8
        # beyond the clamp tanh is within half a float32 ulp of 1: it rounds to 1
        assert 1 - mpmath.tanh(clamp) < mpmath.mpf(2) ** -25
