"""Parameter initialisation, seeded, with fan-in/fan-out as PyTorch computes them.

Biases (names starting with ``b``) start at 0, batch-norm scales ``gamma*`` at 1
and shifts ``beta*`` at 0, whatever the scheme: only weights are random.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .errors import SpecError

SCHEMES = ("he", "he_uniform", "xavier", "xavier_uniform", "xavier_normal", "small", "zeros", "sparse")
# Sparse initialisation (Martens 2010; Goodfellow et al. 8.4): each unit (each
# row of W, each conv filter) is connected to SPARSE_CONNECTIONS random inputs
# with N(0, 1) weights; all its other weights are 0. Fewer inputs than that: all.
SPARSE_CONNECTIONS = 15

# LaTeX of each scheme's distribution, for the derivation document.
FORMULAS = {
    "he": r"W_{ij} \sim \mathcal{N}\!\left(0, \tfrac{2}{n_\text{in}}\right)",
    "he_uniform": r"W_{ij} \sim \mathcal{U}\!\left(-\sqrt{\tfrac{6}{n_\text{in}}}, \sqrt{\tfrac{6}{n_\text{in}}}\right)",
    "xavier": r"W_{ij} \sim \mathcal{U}\!\left(-a, a\right),\ a = \sqrt{\tfrac{6}{n_\text{in} + n_\text{out}}}",
    "xavier_uniform": r"W_{ij} \sim \mathcal{U}\!\left(-a, a\right),\ a = \sqrt{\tfrac{6}{n_\text{in} + n_\text{out}}}",
    "xavier_normal": r"W_{ij} \sim \mathcal{N}\!\left(0, \tfrac{2}{n_\text{in} + n_\text{out}}\right)",
    "small": r"W_{ij} \sim 0.01\,\mathcal{N}(0, 1)",
    "zeros": r"W_{ij} = 0",
    "sparse": r"W_{ij} \sim \mathcal{N}(0, 1) \text{ for } k = 15 \text{ random } j \text{ per unit } i, \ 0 \text{ otherwise}",
}


def fan_in_out(shape) -> tuple[int, int]:
    """(fan_in, fan_out) like torch.nn.init._calculate_fan_in_and_fan_out.

    Dense (n_out, n_in): (n_in, n_out). Conv (filters, in_ch, kh, kw):
    (in_ch*kh*kw, filters*kh*kw).
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        # torch refuses 1-D weights; treat one as a diagonal scale.
        return shape[0], shape[0]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _weight(rng, shape, scheme: str) -> np.ndarray:
    fan_in, fan_out = fan_in_out(shape)
    if scheme == "he":
        return rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)
    if scheme == "he_uniform":
        a = math.sqrt(6.0 / fan_in)
        return rng.uniform(-a, a, size=shape)
    if scheme in ("xavier", "xavier_uniform"):
        a = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-a, a, size=shape)
    if scheme == "xavier_normal":
        return rng.standard_normal(shape) * math.sqrt(2.0 / (fan_in + fan_out))
    if scheme == "small":
        return 0.01 * rng.standard_normal(shape)
    if scheme == "sparse":
        return _sparse(rng, shape)
    return np.zeros(shape)  # "zeros"


def _sparse(rng, shape) -> np.ndarray:
    """Each row of W (a unit's incoming weights, flattened for a conv filter) gets
    min(k, fan_in) non-zero N(0, 1) weights at random positions."""
    rows = shape[0] if len(shape) > 1 else 1
    fan_in = math.prod(shape) // rows
    k = min(SPARSE_CONNECTIONS, fan_in)
    W = np.zeros((rows, fan_in))
    for i in range(rows):
        W[i, rng.choice(fan_in, size=k, replace=False)] = rng.standard_normal(k)
    return W.reshape(shape)


def _fixed(name: str):
    """1.0 or 0.0 for batch-norm scales, shifts and biases; None for weights."""
    if name.startswith("gamma"):
        return 1.0
    if name.startswith("b"):  # b1, b2, ... and beta*
        return 0.0
    return None


def init_params(param_shapes: dict, scheme: str = "he", seed: int = 0, dtype="float64") -> dict:
    """A dict name -> array of the given shapes, weights drawn by ``scheme``.

    Draws happen in the dict's order from numpy.random.default_rng(seed), so
    the same shapes and seed give the same arrays.
    """
    if scheme not in SCHEMES:
        raise SpecError(f"unknown init scheme {scheme!r}; valid: {', '.join(SCHEMES)}")
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise SpecError(f"init dtype {dtype!r} is not a numpy dtype") from None
    if dtype.kind != "f":
        raise SpecError(f"init dtype {dtype} must be a float type (float32 or float64)")
    if scheme == "zeros":
        warnings.warn(
            "init scheme 'zeros': zero weights do not break symmetry; all units "
            "of a layer get the same gradient and stay identical",
            UserWarning,
            stacklevel=2,
        )
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in param_shapes.items():
        shape = tuple(int(s) for s in np.atleast_1d(shape))
        if any(s < 1 for s in shape):
            raise SpecError(f"parameter {name}: shape {shape} has a non-positive size")
        value = _fixed(name)
        arr = _weight(rng, shape, scheme) if value is None else np.full(shape, value)
        params[name] = np.asarray(arr).astype(dtype)
    return params
