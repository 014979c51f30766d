"""Bounds on symbolic work over user-supplied math (custom activations and
losses). SymPy's simplification can run for minutes on a short formula, so
optional work (a simplification that only makes a result prettier or proves a
derivative zero) runs under a size and a time budget and is skipped past it;
required work (derivatives, printing) is refused past a size budget with a
one-line error that names the formula."""
from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager

import sympy as sp

from .errors import FormulaError
from .functions import sigmoid, softplus

SECONDS = 2.0            # CPU time for one optional simplification
MAX_SIMPLIFY_OPS = 400   # larger expressions are not simplified at all
MAX_OPS = 20000          # larger derivatives are refused (kernels and documents would be unusable)
ECHO = 60                # characters of a formula quoted back in messages


class _OutOfTime(BaseException):
    """Raised by the timer inside SymPy; a BaseException so that SymPy's own
    `except Exception` blocks cannot swallow it."""


@contextmanager
def _time_limit(seconds: float):
    """Interrupt the block after `seconds` of this process's CPU time (so a
    loaded machine does not shorten the budget). Main thread only: signals are
    delivered there; elsewhere only the size budget applies."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum, frame):
        raise _OutOfTime

    start = time.process_time()
    old_handler = signal.signal(signal.SIGPROF, expire)
    outer, _ = signal.setitimer(signal.ITIMER_PROF, seconds, 0.05)   # re-fires until cancelled
    # The signal alone is not enough: it can land in a callback whose errors Python ignores
    # (a gc callback, e.g. Dask's or Hypothesis's), in C code that turns it into another
    # error (compile()), or not fire while a nested limit holds the timer. Past the limit,
    # the block ends out of time all the same.
    try:
        try:
            yield
        except Exception:
            if time.process_time() - start >= seconds:
                raise _OutOfTime from None
            raise
        if time.process_time() - start >= seconds:
            raise _OutOfTime
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, old_handler)
        if outer:                       # an enclosing limit keeps running
            signal.setitimer(signal.ITIMER_PROF, max(outer - (time.process_time() - start), 1e-3))


def optional(function, expr, fallback, seconds: float = SECONDS, max_ops: int = MAX_SIMPLIFY_OPS):
    """function(expr), or `fallback` when expr is larger than `max_ops`
    operations or the call takes longer than `seconds`."""
    if sp.count_ops(expr) > max_ops:
        return fallback
    try:
        with _time_limit(seconds):
            return function(expr)
    except _OutOfTime:
        return fallback


def short(text: str, limit: int = ECHO) -> str:
    """A formula as quoted in messages: whole when short, else its start and length."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return repr(text)
    return repr(text[:limit] + "...") + f" ({len(text)} characters)"


def require_size(expr, what: str, formula: str, max_ops: int = MAX_OPS):
    """Refuse an expression (a derivative) too large to print into a kernel or a
    document. Kernels print each subexpression once (NumbaPrinter.print_block),
    so their text grows with these operations, linearly."""
    ops = sp.count_ops(expr)
    if ops > max_ops:
        raise FormulaError(f"{what} {short(formula)} is too complex: its derivative has {ops} operations "
                           f"(limit {max_ops}); simplify the formula")
    return expr


def is_zero_almost_everywhere(d, variables, points=(-2.3, -0.61, 0.37, 1.7, 2.9)) -> bool:
    """True when the derivative d vanishes wherever it is defined (a step
    function). Numeric samples decide the common case quickly; only a
    derivative that is zero at every sample goes to a bounded simplify."""
    if d.has(sp.DiracDelta) or d == 0:
        return True
    if not d.free_symbols & set(variables):
        return False
    # symnet's own functions written out, so that Float arguments evaluate at once
    numeric = d.replace(sigmoid, lambda u: 1 / (1 + sp.exp(-u))).replace(softplus, lambda u: sp.log(1 + sp.exp(u)))
    try:
        with _time_limit(SECONDS):
            for k in range(len(points)):
                at = {v: sp.Float(points[(k + i) % len(points)], 20) for i, v in enumerate(variables)}
                value = numeric.xreplace(at)
                if not value.is_Number:
                    value = sp.N(value, 15)
                if value.is_number and value.is_finite and value != 0:
                    return False
    except _OutOfTime:
        return False            # not proven zero: treat as a useful derivative
    return optional(lambda e: sp.simplify(e) == 0, d, fallback=False)


PRINT_SECONDS = 10.0     # CPU time to derive and print a kernel module (LeNet: about 2 s)


@contextmanager
def printing(net, seconds: float | None = None):
    """Bound the derivation and printing of `net`'s kernels; past the limit,
    one line naming the network's most complex custom formula."""
    seconds = PRINT_SECONDS if seconds is None else seconds
    try:
        with _time_limit(seconds):
            yield
    except _OutOfTime:
        formulas = [(len(a.source), f"{p.where}: activation {short(a.source)}") for p in net.placed
                    if (a := getattr(p.layer, "activation", None)) is not None and a.source is not None]
        if net.loss.source is not None:
            formulas.append((len(net.loss.source), f"loss {short(net.loss.source)}"))
        culprit = max(formulas)[1] if formulas else "its layers"
        raise FormulaError(f"network {net.name}: its kernels could not be printed within {seconds:g} s; "
                           f"{culprit} is too complex to print; simplify it") from None
