"""A plain numpy evaluation of a derivation: forward values, deltas and
gradients of every quantity, in float64.

It is the independent, readable reference the verifier and the gradient check
use: the element-wise math is the Derivation's (lambdified), the loops are numpy.
Dense and softmax layers only.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .derive.core import N_OUT, P, Y, Z
from .errors import ShapeError, SpecError
from .numeric import lambdify

X_SYM = __import__("sympy").Symbol("x", real=True)


@dataclass
class Evaluation:
    loss: float
    values: dict[str, np.ndarray]     # z1, a1, delta1, ... (batch rows) and x, y
    grads: dict[str, np.ndarray]      # W1, b1, ..., x (gradient of the batch loss)


@lru_cache(maxsize=None)
def _act(math):
    return lambdify(X_SYM, math.g), lambdify(X_SYM, math.dg)


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def evaluate(derivation, params: dict, X, Y_batch) -> Evaluation:
    net = derivation.network
    for p in net.placed:
        if p.layer.type not in ("dense", "softmax"):
            raise SpecError(f"{p.where}: the numpy reference covers dense and softmax layers only")
    X = np.asarray(X, dtype=np.float64)
    Yb = np.asarray(Y_batch, dtype=np.float64)
    m = X.shape[0]
    if X.shape[1:] != net.input_shape:
        raise ShapeError(f"X: expected rows of shape {net.input_shape}, got {X.shape[1:]}")
    values = {"x": X, "a0": X, "y": Yb}
    a = X
    out = derivation.output
    dense = [p for p in net.placed if p.layer.type == "dense"]
    for p in dense:
        W, b = (np.asarray(params[p.params[r]], dtype=np.float64) for r in ("W", "b"))
        z = a @ W.T + b
        l = p.position
        values[f"z{l}"] = z
        if l in derivation.activations:
            a = _act(derivation.activations[l])[0](z) * np.ones_like(z)
        elif out.kind == "softmax" and p is dense[-1]:
            a = _softmax(z)
            values["p"] = a
        else:
            a = z
        values[f"a{l}"] = a
    L = dense[-1].position
    zL = values[f"z{L}"]
    if out.kind == "softmax":
        lse = np.log(np.exp(zL - zL.max(axis=1, keepdims=True)).sum(axis=1)) + zL.max(axis=1)
        loss = float(np.mean(lse - (Yb * zL).sum(axis=1)))
        delta = lambdify((P, Y), out.delta)(values["p"], Yb) * np.ones_like(zL)
    else:
        n = zL.shape[1]
        loss = float(np.mean(lambdify((Z, Y), out.loss_value)(zL, Yb)))
        delta = lambdify((Z, Y, N_OUT), out.delta)(zL, Yb, n) * np.ones_like(zL)
    values["yhat"] = values[f"a{L}"] if out.kind != "softmax" else values["p"]
    grads = {}
    for i, p in enumerate(reversed(dense)):
        l = p.position
        if i > 0:
            delta = _act(derivation.activations[l])[1](values[f"z{l}"]) * upstream
        values[f"delta{l}"] = delta
        a_prev = values[f"a{dense[len(dense) - 2 - i].position}"] if i < len(dense) - 1 else X
        W = np.asarray(params[p.params["W"]], dtype=np.float64)
        grads[p.params["W"]] = delta.T @ a_prev / m
        grads[p.params["b"]] = delta.sum(axis=0) / m
        upstream = delta @ W
    grads["x"] = upstream / m
    return Evaluation(loss, values, grads)
