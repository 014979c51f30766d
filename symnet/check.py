"""`symnet check SPEC`: the generated kernels' gradients against float64
central differences (gradcheck tolerances: atol 1e-5, rtol 1e-3) and against
symnet.trace, the float64 evaluator the verifier uses (every entry).

Every layer kind is covered: batch norm runs in training mode (batch
statistics; the running statistics are not updated), dropout layers get fixed
random masks, and the input gradient is checked in training mode and, where
batch norm or dropout make them differ, in evaluation mode too.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .network import Network
from .numeric import central_difference

ATOL, RTOL, STEP = 1e-5, 1e-3, 1e-6
TRACE_RTOL, TRACE_ATOL = 1e-7, 1e-9     # kernel vs evaluator: both float64, same math


@dataclass
class ParamCheck:
    name: str
    max_rel_error: float          # against central differences, over the sampled entries
    worst_index: tuple
    analytic: float
    numeric: float
    ok: bool
    trace_error: float = 0.0      # max |kernel - evaluator| over every entry
    trace_ok: bool = True

    @property
    def passed(self) -> bool:
        return self.ok and self.trace_ok


def float64_copy(net: Network) -> Network:
    """The same network in float64 (finite differences need the precision)."""
    if net.dtype == "float64":
        return net
    return Network(net.input_shape, net.layers, loss=net.loss, name=net.name + "_f64", dtype="float64")


def random_batch(net: Network, batch: int, rng) -> tuple[np.ndarray, np.ndarray]:
    X = rng.normal(size=(batch, *net.input_shape))
    n_out = net.output_shape[0]
    if net.loss.one_hot:
        Y = np.eye(n_out)[rng.integers(0, n_out, batch)]
    elif net.loss.name == "hinge":
        Y = rng.choice([-1.0, 1.0], size=(batch, n_out))
    elif net.loss.name == "bce":
        Y = rng.integers(0, 2, size=(batch, n_out)).astype(float)
    else:
        Y = rng.uniform(0.1, 0.9, size=(batch, n_out))
    return X, Y


def random_point(net: Network, seed: int, batch: int):
    """Parameters (nonzero biases, running statistics away from 0 and 1), a batch
    and 0/1 dropout keep masks by layer position."""
    rng = np.random.default_rng(seed)
    params = net.init_params(seed=seed, scheme="xavier", dtype="float64")
    params = {k: v + rng.normal(scale=0.1, size=v.shape) for k, v in params.items()}
    for k, v in net.init_state("float64").items():
        params[k] = v + (rng.uniform(0.5, 1.0, v.shape) if k.startswith("running_var")
                         else rng.normal(scale=0.5, size=v.shape))
    X, Y = random_batch(net, batch, rng)
    keep = {p.position: (rng.random((batch, *p.out_shape)) >= p.layer.rate).astype(np.float64)
            for p in net.placed if p.layer.type == "dropout"}
    return params, X, Y, keep


def _kernel_masks(net, keep):
    """The kernels' masks: keep / (1 - rate), in layer order (None: no dropout layer)."""
    drop = [p for p in net.placed if p.layer.type == "dropout"]
    return [keep[p.position] / (1 - p.layer.rate) for p in drop] or None


def _compare(name, value, grad, f, ref, rng, max_entries):
    """Central differences of f at up to max_entries entries of `value` (in place)."""
    flat = value.reshape(-1)
    picks = rng.choice(flat.size, size=min(max_entries, flat.size), replace=False)
    numeric = np.empty(len(picks))
    for i, idx in enumerate(picks):
        numeric[i] = central_difference(f, flat, idx, STEP)
    analytic = np.asarray(grad, dtype=np.float64).reshape(-1)[picks]
    err = np.abs(analytic - numeric)
    rel = err / np.maximum(np.abs(numeric), 1e-12)
    worst = int(np.argmax(err - (ATOL + RTOL * np.abs(numeric))))
    ok = bool(np.all(err <= ATOL + RTOL * np.abs(numeric)))
    trace_err = np.abs(np.asarray(grad, dtype=np.float64) - ref)
    trace_ok = bool(np.all(trace_err <= TRACE_ATOL + TRACE_RTOL * np.abs(ref)))
    return ParamCheck(name, float(rel.max()), tuple(int(i) for i in np.unravel_index(picks[worst], value.shape)),
                      float(analytic[worst]), float(numeric[worst]), ok, float(trace_err.max()), trace_ok)


def gradient_check(net: Network, seed: int = 0, batch: int = 4, max_entries: int = 40, kernel=None):
    """Check each parameter's gradient (and the input's) at up to `max_entries`
    entries against central differences, and every entry against symnet.trace."""
    from .derive import derive
    from .trace import trace
    net64 = float64_copy(net)
    if kernel is None:
        from .progress import compiled_kernel
        kernel = compiled_kernel(net64, calls=("loss_and_grads", "loss_and_input_grad"), batch_size=batch)
    derivation = derive(net64)
    params, X, Y, keep = random_point(net64, seed, batch)
    masks = _kernel_masks(net64, keep)
    stateful = bool(net64.state_shapes)
    kw = {"masks": masks} if masks is not None else {}
    if stateful:
        kw["update_state"] = False

    def loss():
        return kernel.loss_and_grads(params, X, Y, **kw)[0]

    _, grads = kernel.loss_and_grads(params, X, Y, **kw)
    ref = trace(derivation, params, X, Y, training=True, masks=keep)
    rng = np.random.default_rng(seed + 1)
    results = [_compare(name, params[name], grads[name], loss, ref.grads[name], rng, max_entries)
               for name in net64.param_shapes]
    if hasattr(kernel, "loss_and_input_grad"):
        modes = [("x", True)] + ([("x (evaluation)", False)] if stateful or masks is not None else [])
        for name, training in modes:
            extra = {"masks": masks} if training and masks is not None else {}

            def loss_x():
                return kernel.loss_and_input_grad(params, X, Y, training=training, **extra)[0]
            _, dx = kernel.loss_and_input_grad(params, X, Y, training=training, **extra)
            ref_x = trace(derivation, params, X, Y, training=training, masks=keep if training else None)
            results.append(_compare(name, X, dx, loss_x, ref_x.grads["x"], rng, max_entries))
    return results


def format_report(results) -> str:
    lines = [f"{'gradient':<15} {'max rel error':>14} {'vs trace':>10}  result"]
    for r in results:
        line = f"{r.name:<15} {r.max_rel_error:>14.2e} {r.trace_error:>10.1e}  {'ok' if r.passed else 'MISMATCH'}"
        if not r.ok:
            line += (f" at {r.name}{list(r.worst_index)}: kernel {r.analytic:.6g}, "
                     f"finite differences {r.numeric:.6g}")
        elif not r.trace_ok:
            line += f": kernel and symnet.trace differ by {r.trace_error:.3g}"
        lines.append(line)
    return "\n".join(lines)


def worst(results):
    """The failing entry with the largest error (None when every check passed)."""
    bad = [r for r in results if not r.passed]
    return max(bad, key=lambda r: (not r.ok, r.max_rel_error, r.trace_error)) if bad else None
