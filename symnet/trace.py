"""One float64 evaluator of every intermediate quantity, for every layer kind.

    ev = trace(derivation, params, X, Y, training=True, masks=None)
    ev.loss, ev.values["z3"], ev.values["delta3"], ev.values["da2"], ev.grads["W3"]

The verifier and `symnet check` read their reference numbers from here. The
element-wise math is the Derivation's (activations g and g', the output's loss
and delta^(L), batch norm's `kernel_math`, average pooling's factor), lambdified;
numpy only moves values through the index maps each rule derives (a dense
product, a strided correlation, a window's argmax, a reshape, a mask).

Values (batch rows, float64): x = a0, y, z<l> and a<l> of every layer, p (the
softmax output) and yhat; per-example errors delta<l> = d ell/d z^(l) and
da<l> = d ell/d a^(l) (for batch norm: d calL/d z, calL = m L, the derivation's
convention); dropout masks mask<l> (0/1); batch norm xhat<l>, mu<l>, var<l>.
Gradients: every parameter's and x's gradient of the batch-mean loss L.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sympy as sp
from numpy.lib.stride_tricks import sliding_window_view

from .derive.core import N_OUT, P, Y, Z
from .errors import ShapeError, SpecError
from .numeric import lambdify

X_SYM = sp.Symbol("x", real=True)


@dataclass
class Evaluation:
    loss: float
    values: dict[str, np.ndarray]
    grads: dict[str, np.ndarray]
    training: bool = True


@lru_cache(maxsize=None)
def _act(math):
    g, dg = lambdify(X_SYM, math.g), lambdify(X_SYM, math.dg_numeric)
    return (lambda z: g(z) * np.ones_like(z)), (lambda z: dg(z) * np.ones_like(z))


@lru_cache(maxsize=None)
def _bn():
    from .derive.batchnorm import kernel_math
    return {k: lambdify(e.args, e.expr) for k, e in kernel_math().items()}


@lru_cache(maxsize=None)
def _avg_factor():
    from .derive.conv import KH, KW, generic_avgpool
    return lambdify((KH, KW), generic_avgpool()["factor"])


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _windows(x, kh, kw, s):
    """(B, C, Ho, Wo, kh, kw) views of the strided windows of x (B, C, H, W)."""
    return sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::s, ::s]


def _scatter_windows(shape, per_window, s):
    """The adjoint of _windows: add per_window (B, C, Ho, Wo, kh, kw) back to the input."""
    out = np.zeros(shape)
    _, _, ho, wo, kh, kw = per_window.shape
    for m in range(kh):
        for n in range(kw):
            out[:, :, m:m + s * (ho - 1) + 1:s, n:n + s * (wo - 1) + 1:s] += per_window[..., m, n]
    return out


# ---------------------------------------------------------------- layers, forward and backward
# forward(p, a_prev, params, st) -> z or a ; backward(p, delta_or_da, params, st, m) -> (grads, da_prev)
# `st` is the layer's own scratch dict (what backward needs from forward).

def _dense_fwd(p, a, params, st, ctx):
    W, b = params[p.params["W"]], params[p.params["b"]]
    st["in"] = a
    return a @ W.T + b


def _dense_bwd(p, d, params, st, ctx):
    m = d.shape[0]
    W = params[p.params["W"]]
    return {p.params["W"]: d.T @ st["in"] / m, p.params["b"]: d.sum(axis=0) / m}, d @ W


def _conv_fwd(p, a, params, st, ctx):
    W, b = params[p.params["W"]], params[p.params["b"]]
    ph, pw = p.layer.pads
    xp = np.pad(a, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    win = _windows(xp, *p.layer.kernel, p.layer.stride)
    st.update(win=win, padded=xp.shape)
    return np.einsum("bcijmn,fcmn->bfij", win, W, optimize=True) + b[None, :, None, None]


def _conv_bwd(p, d, params, st, ctx):
    m = d.shape[0]
    W = params[p.params["W"]]
    grads = {p.params["W"]: np.einsum("bfij,bcijmn->fcmn", d, st["win"], optimize=True) / m,
             p.params["b"]: d.sum(axis=(0, 2, 3)) / m}
    per_window = np.einsum("bfij,fcmn->bcijmn", d, W, optimize=True)
    dxp = _scatter_windows(st["padded"], per_window, p.layer.stride)
    ph, pw = p.layer.pads
    return grads, dxp[:, :, ph:dxp.shape[2] - ph, pw:dxp.shape[3] - pw]


def _pool_windows(p, a, st):
    k, s = p.layer.size, p.layer.stride
    win = _windows(a, k, k, s)
    st.update(shape=a.shape, k=k, s=s)
    return win


def _maxpool_fwd(p, a, params, st, ctx):
    win = _pool_windows(p, a, st)
    flat = win.reshape(win.shape[:4] + (-1,))
    # Ties: the first maximum in row-major order, as the derivation documents (and PyTorch).
    st["arg"] = flat.argmax(axis=-1)
    return flat.max(axis=-1)


def _maxpool_bwd(p, d, params, st, ctx):
    k = st["k"]
    onehot = np.eye(k * k)[st["arg"]] * d[..., None]
    return {}, _scatter_windows(st["shape"], onehot.reshape(d.shape + (k, k)), st["s"])


def _avgpool_fwd(p, a, params, st, ctx):
    win = _pool_windows(p, a, st)
    st["factor"] = float(_avg_factor()(st["k"], st["k"]))
    return win.sum(axis=(-2, -1)) * st["factor"]


def _avgpool_bwd(p, d, params, st, ctx):
    k = st["k"]
    spread = np.broadcast_to((d * st["factor"])[..., None, None], d.shape + (k, k))
    return {}, _scatter_windows(st["shape"], spread, st["s"])


def _flatten_fwd(p, a, params, st, ctx):
    st["shape"] = a.shape
    return a.reshape(a.shape[0], -1)


def _flatten_bwd(p, d, params, st, ctx):
    return {}, d.reshape(st["shape"])


def _dropout_fwd(p, a, params, st, ctx):
    l = p.position
    mask = ctx["masks"].get(l) if ctx["training"] else None
    if mask is None:
        st["scale"] = np.ones_like(a)
        return a
    mask = np.asarray(mask, dtype=np.float64)
    if mask.shape != a.shape:
        raise ShapeError(f"{p.where}: mask of shape {mask.shape}, expected {a.shape}")
    ctx["values"][f"mask{l}"] = mask
    st["scale"] = mask / (1 - p.layer.rate)
    return a * st["scale"]


def _dropout_bwd(p, d, params, st, ctx):
    return {}, d * st["scale"]


def _channels_last(v):
    """(B, C) or (B, C, H, W) -> (values per channel, C) and the inverse."""
    if v.ndim == 2:
        return v, lambda u: u
    B, C, H, W = v.shape
    return v.transpose(0, 2, 3, 1).reshape(-1, C), lambda u: u.reshape(B, H, W, C).transpose(0, 3, 1, 2)


def _bn_fwd(p, a, params, st, ctx):
    f, l = _bn(), p.position
    gamma, beta = params[p.params["gamma"]], params[p.params["beta"]]
    x, back = _channels_last(a)
    cnt = x.shape[0]
    if ctx["training"]:
        mu = f["mean"](x.sum(axis=0), cnt)
        var = f["var"](f["sq_dev"](x, mu).sum(axis=0), cnt)
    else:
        mu, var = (np.asarray(params[p.state[r]], dtype=np.float64) for r in ("running_mean", "running_var"))
    inv_std = f["inv_std"](var, p.layer.eps)
    xhat = f["xhat"](x, mu, inv_std)
    st.update(xhat=xhat, inv_std=inv_std, gamma=gamma, back=back, cnt=cnt)
    ctx["values"].update({f"mu{l}": mu, f"var{l}": var, f"xhat{l}": back(xhat)})
    return back(f["z"](xhat, gamma, beta))


def _bn_bwd(p, d, params, st, ctx):
    f, m = _bn(), d.shape[0]
    dd, _ = _channels_last(d)
    xhat = st["xhat"]
    sum_delta = f["dbeta_term"](dd).sum(axis=0) * np.ones(xhat.shape[1])
    sum_delta_xhat = f["dgamma_term"](dd, xhat).sum(axis=0)
    grads = {p.params["gamma"]: sum_delta_xhat / m, p.params["beta"]: sum_delta / m}
    if ctx["training"]:
        dx = f["dx"](dd, xhat, sum_delta, sum_delta_xhat, st["gamma"], st["inv_std"], st["cnt"])
    else:
        dx = f["dx_eval"](dd, st["gamma"], st["inv_std"])
    return grads, st["back"](dx * np.ones_like(dd))


_LAYERS = {"dense": (_dense_fwd, _dense_bwd), "conv2d": (_conv_fwd, _conv_bwd),
           "maxpool2d": (_maxpool_fwd, _maxpool_bwd), "avgpool2d": (_avgpool_fwd, _avgpool_bwd),
           "flatten": (_flatten_fwd, _flatten_bwd), "dropout": (_dropout_fwd, _dropout_bwd),
           "batchnorm": (_bn_fwd, _bn_bwd)}


def _has_preactivation(p) -> bool:
    from .derive import RULES
    return RULES[p.layer.type].has_preactivation


def _multiclass_hinge(z2, Yb):
    """Batch loss and delta^(L) of the multi-class hinge from its derived pieces
    (symnet.derive.output.multiclass_hinge_kernel): yz and c are sums over the classes."""
    from .derive.output import HINGE_C, HINGE_YZ, multiclass_hinge_kernel
    loss_value, count, delta = multiclass_hinge_kernel()
    n = z2.shape[1]
    yz = (Yb * z2).sum(axis=1, keepdims=True)
    per_class = lambdify((Z, Y, HINGE_YZ, N_OUT), loss_value)(z2, Yb, yz, n) * np.ones_like(z2)
    c = (lambdify((Z, Y, HINGE_YZ), count)(z2, Yb, yz) * np.ones_like(z2)).sum(axis=1, keepdims=True)
    d = lambdify((Z, Y, HINGE_YZ, HINGE_C, N_OUT), delta)(z2, Yb, yz, c, n) * np.ones_like(z2)
    return float(per_class.sum(axis=1).mean()), d


def layer_kinds() -> tuple:
    return tuple(_LAYERS) + ("softmax",)


def trace(derivation, params: dict, X, Y_batch, *, training: bool = True, masks=None, weights=None) -> Evaluation:
    """Forward and backward pass in float64; `masks` maps a dropout layer's
    position to its 0/1 keep mask (batch rows); without one the layer passes
    everything (as the kernels do). training=False: dropout off, batch norm
    through running_mean<l>, running_var<l> (in params). weights scale each
    example's error: the gradients are those of mean(weights_e * ell_e) (one-hot
    times m: one example's own gradient, on the same batch); loss stays the plain mean."""
    net = derivation.network
    for p in net.placed:
        if p.layer.type not in _LAYERS and p.layer.type != "softmax":
            raise SpecError(f"{p.where}: no evaluator for a {p.layer.type} layer")
    X = np.asarray(X, dtype=np.float64)
    Yb = np.asarray(Y_batch, dtype=np.float64)
    if X.shape[1:] != tuple(net.input_shape):
        raise ShapeError(f"X: expected rows of shape {net.input_shape}, got {X.shape[1:]}")
    params = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    values = {"x": X, "a0": X, "y": Yb}
    ctx = {"training": training, "masks": dict(masks or {}), "values": values}
    placed = list(net.placed)
    softmax_layer = placed[-1] if placed[-1].layer.type == "softmax" else None
    body = placed[:-1] if softmax_layer else placed
    out = derivation.output
    L = body[-1].position
    scratch = {}
    a = X
    for p in body:
        l = p.position
        st = scratch[l] = {}
        v = _LAYERS[p.layer.type][0](p, a, params, st, ctx)
        if _has_preactivation(p):
            values[f"z{l}"] = v
            if l in derivation.activations:
                a = _act(derivation.activations[l])[0](v)
            elif out.kind == "softmax" and l == L:
                a = _softmax(v.reshape(v.shape[0], -1)).reshape(v.shape)
            else:
                a = v
        else:
            a = v
        values[f"a{l}"] = a
    zL = values.get(f"z{L}")
    if zL is None:
        raise SpecError(f"{body[-1].where}: the last layer before the loss must have a pre-activation")
    z2 = zL.reshape(zL.shape[0], -1)
    if out.kind == "softmax":
        pr = _softmax(z2)
        values["p"] = pr
        # the derivation's stable form: the two sums s and yz of the shifted logits u = z - max(z)
        from .derive.output import SOFTMAX_S, SOFTMAX_YZ, softmax_kernel_loss
        u = z2 - z2.max(axis=1, keepdims=True)
        per_example = lambdify((SOFTMAX_S, SOFTMAX_YZ), softmax_kernel_loss())(
            np.exp(u).sum(axis=1), (Yb * u).sum(axis=1))
        loss = float(np.mean(per_example))
        delta = lambdify((P, Y), out.delta)(pr, Yb) * np.ones_like(z2)
        if softmax_layer is not None:
            values[f"a{softmax_layer.position}"] = pr
    elif out.kind == "multiclass_hinge":
        loss, delta = _multiclass_hinge(z2, Yb)
    else:
        n = z2.shape[1]
        # per example (1/n) sum_i loss_value(z_i, y_i): the mean over all entries
        loss = float(np.mean(lambdify((Z, Y), out.loss_value)(z2, Yb) * np.ones_like(z2)))
        delta = lambdify((Z, Y, N_OUT), out.delta)(z2, Yb, n) * np.ones_like(z2)
    values["yhat"] = values["p"] if out.kind == "softmax" else values[f"a{L}"]
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64)
        delta = delta * w.reshape(-1, *([1] * (delta.ndim - 1)))
    grads = {}
    up = delta.reshape(zL.shape)
    m = X.shape[0]
    for p in reversed(body):
        l = p.position
        if _has_preactivation(p):
            if l != L:
                values[f"da{l}"] = up
                up = _act(derivation.activations[l])[1](values[f"z{l}"]) * up
            values[f"delta{l}"] = up
        else:
            values[f"da{l}"] = up
        g, up = _LAYERS[p.layer.type][1](p, up, params, scratch[l], ctx)
        grads.update(g)
    values["da0"] = up
    grads["x"] = up / m
    return Evaluation(loss, values, grads, training)


def evaluate(derivation, params: dict, X, Y_batch) -> Evaluation:
    """The training-mode trace (the verifier's reference point)."""
    return trace(derivation, params, X, Y_batch)
