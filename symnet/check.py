"""`symnet check SPEC`: the generated kernels' gradients against float64
central differences (gradcheck tolerances: atol 1e-5, rtol 1e-3)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .network import Network

ATOL, RTOL, STEP = 1e-5, 1e-3, 1e-6


@dataclass
class ParamCheck:
    name: str
    max_rel_error: float
    worst_index: tuple
    analytic: float
    numeric: float
    ok: bool


def float64_copy(net: Network) -> Network:
    """The same network in float64 (finite differences need the precision)."""
    if net.dtype == "float64":
        return net
    return Network(net.input_shape, net.layers, loss=net.loss, name=net.name + "_f64", dtype="float64")


def random_batch(net: Network, batch: int, rng) -> tuple[np.ndarray, np.ndarray]:
    X = rng.normal(size=(batch, *net.input_shape))
    n_out = net.output_shape[0]
    if net.loss.is_categorical:
        Y = np.eye(n_out)[rng.integers(0, n_out, batch)]
    elif net.loss.name == "hinge":
        Y = rng.choice([-1.0, 1.0], size=(batch, n_out))
    elif net.loss.name == "bce":
        Y = rng.integers(0, 2, size=(batch, n_out)).astype(float)
    else:
        Y = rng.uniform(0.1, 0.9, size=(batch, n_out))
    return X, Y


def gradient_check(net: Network, seed: int = 0, batch: int = 4, max_entries: int = 40, kernel=None):
    """Check each parameter's gradient at up to `max_entries` entries."""
    from .progress import compiled_kernel
    net64 = float64_copy(net)
    kernel = kernel or compiled_kernel(net64, calls=("loss_and_grads",), batch_size=batch)
    rng = np.random.default_rng(seed)
    params = net64.init_params(seed=seed, scheme="xavier")
    params = {k: v + rng.normal(scale=0.1, size=v.shape) for k, v in params.items()}   # nonzero biases
    X, Y = random_batch(net64, batch, rng)
    _, grads = kernel.loss_and_grads(params, X, Y)
    results = []
    for name, value in params.items():
        flat = value.reshape(-1)
        picks = rng.choice(flat.size, size=min(max_entries, flat.size), replace=False)
        numeric = np.empty(len(picks))
        for i, idx in enumerate(picks):
            saved = flat[idx]
            flat[idx] = saved + STEP
            up, _ = kernel.loss_and_grads(params, X, Y)
            flat[idx] = saved - STEP
            down, _ = kernel.loss_and_grads(params, X, Y)
            flat[idx] = saved
            numeric[i] = (up - down) / (2 * STEP)
        analytic = grads[name].reshape(-1)[picks]
        err = np.abs(analytic - numeric)
        rel = err / np.maximum(np.abs(numeric), 1e-12)
        worst = int(np.argmax(err - (ATOL + RTOL * np.abs(numeric))))
        ok = bool(np.all(err <= ATOL + RTOL * np.abs(numeric)))
        results.append(ParamCheck(name, float(rel.max()), np.unravel_index(picks[worst], value.shape),
                                  float(analytic[worst]), float(numeric[worst]), ok))
    return results


def format_report(results) -> str:
    lines = [f"{'param':<6} {'max rel error':>14}  result"]
    for r in results:
        line = f"{r.name:<6} {r.max_rel_error:>14.2e}  {'ok' if r.ok else 'MISMATCH'}"
        if not r.ok:
            line += f" at {r.name}{list(r.worst_index)}: kernel {r.analytic:.6g}, finite differences {r.numeric:.6g}"
        lines.append(line)
    return "\n".join(lines)
