"""Fused optimiser updates: one parameter updated in place from its gradient, inside the
generated train step right after the gradient is computed. The same rules, in the same
order of operations, as symnet.optim (and torch.optim): SGD, momentum, RMSprop, Adam,
Adagrad; plus the gradient of an L2/L1 penalty on weights.

fused_update(P, G, S1, S2, kind, h, reg): P, G arrays of one shape; S1, S2 the optimiser's
state buffers of P as flat views (or empty for SGD); h = (lr, a, b, eps, bc1, bc2,
1 - a, 1 - b): momentum a = mu; RMSprop a = alpha; Adam a = beta1, b = beta2 and the
bias corrections bc1 = 1 - beta1^t, bc2 = 1 - beta2^t (1 - a and 1 - b computed in
float64 first, as the numpy update and torch do, then rounded to P's dtype); reg = (c2, c1): g + c2 p + c1 sign(p)
(the derivative of the penalty, derived by SymPy in symnet.train, as coefficients).
A penalised update first forms that sum in a new array, so that one loop per kind is
compiled rather than two (a first step compiles 0.8 s instead of 1.2 s of CPU; the
penalised update of a 48k-entry weight takes ~4 us more).
"""
import math

import numpy as np
from numba import njit

SGD, MOMENTUM, RMSPROP, ADAM, ADAGRAD = 0, 1, 2, 3, 4


@njit(cache=True, nogil=True, error_model="numpy")
def fused_update(P, G, S1, S2, kind, h, reg):
    """P -= the optimiser's step for gradient G (plus the penalty's), state in S1, S2."""
    p = P.reshape(P.size)
    g = G.reshape(G.size)
    one_a, one_b = p.dtype.type(h[6]), p.dtype.type(h[7])
    lr, a, b, eps = p.dtype.type(h[0]), p.dtype.type(h[1]), p.dtype.type(h[2]), p.dtype.type(h[3])
    c2, c1 = p.dtype.type(reg[0]), p.dtype.type(reg[1])
    step = p.dtype.type(h[0] / h[4])                 # Adam: lr / bc1
    sqrt_bc2 = p.dtype.type(math.sqrt(h[5]))        # Adam: sqrt(bc2)
    if reg[0] != 0.0 or reg[1] != 0.0:
        g = _penalised(g, p, c2, c1)
    _step(p, g, S1, S2, kind, lr, a, b, eps, one_a, one_b, step, sqrt_bc2)


@njit(cache=True, nogil=True, error_model="numpy")
def _penalised(g, p, c2, c1):
    """A new array: the gradient plus the penalty's derivative (G itself stays as it was)."""
    out = np.empty_like(g)
    for k in range(g.size):
        out[k] = g[k] + c2 * p[k] + c1 * np.sign(p[k])
    return out


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _step(p, g, S1, S2, kind, lr, a, b, eps, one_a, one_b, step, sqrt_bc2):
    """fused_update's loops, one per kind: each branch-free, so that it vectorises (inlined:
    never compiled on its own)."""
    if kind == SGD:
        for k in range(p.size):
            p[k] -= lr * g[k]
    elif kind == MOMENTUM:
        for k in range(p.size):
            v = a * S1[k] + g[k]
            S1[k] = v
            p[k] -= lr * v
    elif kind == RMSPROP:
        for k in range(p.size):
            gk = g[k]
            s = a * S1[k] + one_a * gk * gk
            S1[k] = s
            p[k] -= lr * gk / (np.sqrt(s) + eps)
    elif kind == ADAM:
        for k in range(p.size):
            gk = g[k]
            m = a * S1[k] + one_a * gk
            v = b * S2[k] + one_b * gk * gk
            S1[k] = m
            S2[k] = v
            p[k] -= step * m / (np.sqrt(v) / sqrt_bc2 + eps)
    else:   # ADAGRAD
        for k in range(p.size):
            gk = g[k]
            s = S1[k] + gk * gk
            S1[k] = s
            p[k] -= lr * gk / (np.sqrt(s) + eps)


def plain_sgd(lr):
    """(kind, h) of plain SGD at rate lr."""
    return SGD, np.array([lr, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0])


def fused_arguments(optimizer, lr, arrays, names):
    """(kind, h, state arrays S1, S2 per parameter) for fused_update() from a symnet.optim
    optimiser (its step count advanced, its buffers updated in place: optimizer.fused_step(lr)
    -> (kind, h), optimizer.fused_state(name, p) -> [S1, S2]); plain SGD is plain_sgd()."""
    kind, h = optimizer.fused_step(lr)
    state = []
    for name, p in zip(names, arrays):
        state += optimizer.fused_state(name, p)
    return kind, np.asarray(h, np.float64), state
