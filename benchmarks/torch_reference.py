"""symnet against a PyTorch reference: same network, initial weights, data and batches.

The torch model is built from ``net.placed`` (dense -> nn.Linear, conv2d ->
nn.Conv2d, maxpool2d/avgpool2d -> nn.MaxPool2d/nn.AvgPool2d, flatten ->
nn.Flatten, dropout -> inverted dropout, batchnorm -> nn.BatchNorm1d/2d,
softmax -> a softmax, activations -> their torch functions; anything else,
such as a custom formula activation, is refused with a SpecError), its
weights are copied from ``net.init_params(seed, scheme)`` exactly as
:func:`symnet.train.train` draws them, and it is trained with the torch.optim
namesake of symnet's optimiser, the same learning-rate schedule and the same
mini-batches: a ``numpy.random.default_rng(seed)`` feeds
:func:`symnet.data.iterate_minibatches` once per epoch, as train() does. Then
``symnet.train.train`` runs with the same settings and the two test accuracies
are compared: PASS when they are within ``--tolerance`` points (default 1).

    python benchmarks/torch_reference.py examples/digits_mlp.toml --data digits
    python benchmarks/torch_reference.py examples/breast_cancer_mlp.toml --data breast_cancer \\
        --epochs 30 --lr 1e-3 --batch-size 32

Regularisation: symnet's L2 penalty is ``l2 * sum W^2`` on the weights only
(gradient ``2 * l2 * W``), so torch gets ``weight_decay = 2 * l2`` on the
weight tensors and 0 on the biases; L1 (``l1 * sum |W|``) is added to the
torch loss. ``--max-norm`` rescales each weight row (each filter) after every
step, as symnet does. ``--dropout RATE`` adds dropout as ``symnet train
--dropout`` does, and the torch run applies the very masks symnet draws (from
the same rng, in the same order), so even dropout runs agree batch for batch.
Early stopping is not part of the comparison.

Timing: torch runs with ``--threads`` intra-op threads (default 1); symnet's
kernel is generated and JIT-compiled before its timed run (reported apart).
Both timed runs include the per-epoch train/validation evaluation train() does.

Exit status: 0 PASS, 1 FAIL, 2 for an error a user can cause (one line).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from symnet.errors import SpecError, SymnetError, TrainingError  # noqa: E402

TOLERANCE_POINTS = 1.0


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - depends on the environment
        raise TrainingError("PyTorch is not installed (pip install symnet[compare])") from None
    return torch


# --------------------------------------------------------------------------
# Activations


def _act_fn(act, where: str):
    """A torch function of one tensor for a symnet Activation, or None for identity."""
    torch = _torch()
    F = torch.nn.functional
    if act is None:
        return None
    if getattr(act, "source", None) is not None:
        raise SpecError(f"{where}: custom activation {act.source!r} has no torch equivalent; "
                        "the reference supports the built-in activations only")
    params = {k: float(v) for k, v in getattr(act, "params", ())}
    name = act.name
    table = {
        "identity": None,
        "linear": None,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": torch.relu,
        "leaky_relu": lambda t: F.leaky_relu(t, negative_slope=params.get("slope", 0.01)),
        "elu": lambda t: F.elu(t, alpha=params.get("alpha", 1.0)),
        "gelu": F.gelu,
        "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"),
        "softplus": F.softplus,
        "swish": F.silu,
        "mish": F.mish,
        "softsign": F.softsign,
        "log_sigmoid": F.logsigmoid,
        # SymPy's sinc is sin(x)/x; torch.sinc is the normalised sin(pi x)/(pi x).
        "sinc": lambda t: torch.sinc(t / math.pi),
        "softmax": lambda t: torch.softmax(t, dim=1),
    }
    if name not in table:
        raise SpecError(f"{where}: activation {name!r} has no torch equivalent in the reference "
                        f"(supported: {', '.join(sorted(table))})")
    return table[name]


# --------------------------------------------------------------------------
# The torch model


# symnet parameter role -> torch attribute, per layer type
ROLES = {
    "dense": {"W": "weight", "b": "bias"},
    "conv2d": {"W": "weight", "b": "bias"},
    "batchnorm": {"gamma": "weight", "beta": "bias"},
}
STATE_ROLES = {"batchnorm": {"running_mean": "running_mean", "running_var": "running_var"}}


def _modules(net):
    """[(module, placed or None)] for every step of net, a final softmax/sigmoid included.

    A layer's own module carries its Placed (parameters are copied by role);
    activations that follow it carry None.
    """
    torch = _torch()
    nn = torch.nn

    class Act(nn.Module):
        def __init__(self, fn, name):
            super().__init__()
            self.fn, self.name = fn, name

        def forward(self, t):
            return self.fn(t)

        def extra_repr(self):
            return self.name

    class MaskedDropout(nn.Module):
        """Inverted dropout whose masks the training loop sets (drawn as symnet draws them)."""

        def __init__(self, rate, shape):
            super().__init__()
            self.rate, self.shape, self.mask = rate, tuple(shape), None

        def forward(self, t):
            if not self.training or self.rate == 0.0:
                return t
            if self.mask is None:  # no mask given: torch's own draw
                return torch.nn.functional.dropout(t, self.rate, training=True)
            return t * self.mask

        def extra_repr(self):
            return f"rate={self.rate}"

    mods = []
    for p in net.placed:
        layer, kind, where = p.layer, p.layer.type, p.where
        if kind == "dense":
            n_out, n_in = p.param_shapes[p.params["W"]]
            mods.append((nn.Linear(n_in, n_out), p))
        elif kind == "conv2d":
            filters, in_ch, kh, kw = p.param_shapes[p.params["W"]]
            mods.append((nn.Conv2d(in_ch, filters, (kh, kw), stride=layer.stride, padding=layer.pads), p))
        elif kind == "maxpool2d":
            mods.append((nn.MaxPool2d(layer.size, stride=layer.stride), p))
        elif kind == "avgpool2d":
            mods.append((nn.AvgPool2d(layer.size, stride=layer.stride), p))
        elif kind == "flatten":
            mods.append((nn.Flatten(), p))
        elif kind == "dropout":
            mods.append((MaskedDropout(layer.rate, p.in_shape), p))
        elif kind == "batchnorm":
            bn = nn.BatchNorm2d if len(p.in_shape) == 3 else nn.BatchNorm1d
            mods.append((bn(p.in_shape[0], eps=layer.eps, momentum=layer.momentum), p))
        elif kind == "softmax":
            mods.append((Act(lambda t: torch.softmax(t, dim=1), "softmax"), None))
            continue
        else:
            raise SpecError(f"{where}: layer type {kind!r} has no mapping in the torch reference")
        act = getattr(layer, "activation", None)
        fn = _act_fn(act, where)
        if fn is not None:
            mods.append((Act(fn, act.name), None))
    return mods


def build_torch_model(net, params=None, state=None):
    """A torch.nn.Module equivalent to ``net``, in net.dtype, with ``params`` copied in.

    The module has ``logits(x)`` (what the loss takes: everything but a final
    softmax, or a final sigmoid under bce) and ``forward(x)`` (symnet's
    ``kernel.forward``: probabilities after a softmax or sigmoid, including the
    softmax of softmax_cross_entropy's logits). ``x`` may be (batch, features)
    or already (batch, *net.input_shape). ``state``: batch norm's running
    statistics by symnet name (default: torch's, which are symnet's too).
    """
    torch = _torch()
    nn = torch.nn
    mods = _modules(net)
    loss = net.loss.name
    head = None
    last_name = getattr(mods[-1][0], "name", None)
    if (loss, last_name) in (("cross_entropy", "softmax"), ("bce", "sigmoid")):
        head = mods.pop()[0]  # the loss works on the logits (stable forms)
    input_shape = tuple(net.input_shape)
    dtype = {"float32": torch.float32, "float64": torch.float64}[net.dtype]

    class TorchNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(*[m for m, _ in mods])
            self.head = head
            self.loss_name = loss
            self.input_shape = input_shape
            self.placed = [p for _, p in mods]

        def logits(self, x):
            return self.body(x.reshape((x.shape[0],) + self.input_shape))

        def forward(self, x):
            z = self.logits(x)
            if self.head is not None:
                return self.head(z)
            if self.loss_name == "softmax_cross_entropy":
                return torch.softmax(z, dim=1)
            return z

    model = TorchNet().to(dtype)
    if params is not None:
        copy_params(model, params, state)
    return model


def named_tensors(model, state: bool = False):
    """[(symnet name, torch tensor)] of the parameters (or, with state=True, the running statistics)."""
    out = []
    for mod, p in zip(model.body, model.placed):
        if p is None:
            continue
        names = getattr(p, "state", {}) if state else p.params
        roles = (STATE_ROLES if state else ROLES).get(p.layer.type, {})
        for role, name in names.items():
            if role not in roles:
                raise SpecError(f"{p.where}: {'state' if state else 'parameter'} {name} has no torch counterpart")
            out.append((name, getattr(mod, roles[role])))
    return out


def copy_params(model, params: dict, state: dict | None = None) -> None:
    """Copy symnet's arrays (W<l>, b<l>, gamma<l>, ...) into the torch layers (same layouts)."""
    torch = _torch()
    with torch.no_grad():
        pairs = named_tensors(model) + (named_tensors(model, state=True) if state else [])
        values = {**params, **(state or {})}
        for name, t in pairs:
            if name not in values:
                raise SpecError(f"parameter {name} is missing from the arrays to copy")
            v = np.asarray(values[name])
            if tuple(t.shape) != v.shape:
                raise SpecError(f"parameter {name} has shape {v.shape}, torch expects {tuple(t.shape)}")
            t.copy_(torch.as_tensor(v, dtype=t.dtype))


def torch_params(model) -> dict:
    """The torch layers' parameters as numpy arrays named like symnet's."""
    return {name: t.detach().cpu().numpy().copy() for name, t in named_tensors(model)}


def _weights_and_others(model):
    """(the W<l> tensors, every other parameter): symnet's penalties and max-norm touch the W<l> only."""
    from symnet.train import is_weight

    ws, others = [], []
    for name, t in named_tensors(model):
        (ws if is_weight(name) else others).append(t)
    return ws, others


# --------------------------------------------------------------------------
# Loss and optimiser


def torch_loss(model, xb, Yb, yb):
    """The batch loss of symnet's net.loss on torch tensors (mean over the batch)."""
    torch = _torch()
    F = torch.nn.functional
    name = model.loss_name
    if name in ("softmax_cross_entropy", "cross_entropy"):
        return F.cross_entropy(model.logits(xb), yb)  # logits with class indices
    if name == "bce":
        if model.head is not None:
            return F.binary_cross_entropy_with_logits(model.logits(xb), Yb)
        return F.binary_cross_entropy(model(xb), Yb)
    out = model(xb)
    if name == "mse":
        return F.mse_loss(out, Yb)
    if name == "l1":
        return F.l1_loss(out, Yb)
    if name == "hinge":
        return torch.clamp(1.0 - Yb * out, min=0.0).mean()
    raise SpecError(f"loss {name!r} has no torch equivalent in the reference")


def make_torch_optimizer(name: str, model, lr: float, l2: float = 0.0):
    """torch.optim namesake of symnet's optimiser, with symnet's default hyperparameters.

    L2: weight_decay = 2 * l2 on the W<l> (symnet's penalty is l2 * W^2), 0 on biases and the rest.
    """
    torch = _torch()
    from symnet.optim import make_optimizer

    sym = make_optimizer(name, lr)  # validates the name, gives the defaults
    h = sym.hyperparameters()
    ws, others = _weights_and_others(model)
    groups = [{"params": ws, "weight_decay": 2.0 * l2}, {"params": others, "weight_decay": 0.0}]
    if sym.name == "sgd":
        return torch.optim.SGD(groups, lr=lr)
    if sym.name == "momentum":
        return torch.optim.SGD(groups, lr=lr, momentum=h["beta"], dampening=0.0)
    if sym.name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=lr, alpha=h["alpha"], eps=h["eps"])
    if sym.name == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=(h["beta1"], h["beta2"]), eps=h["eps"])
    if sym.name == "adagrad":
        return torch.optim.Adagrad(groups, lr=lr, eps=h["eps"], initial_accumulator_value=0.0)
    raise SpecError(f"optimizer {name!r} has no torch equivalent in the reference")


# --------------------------------------------------------------------------
# Training


def load(spec, data_name: str, seed: int, dropout: float = 0.0):
    """(net, data) as ``symnet train SPEC --data NAME --seed SEED [--dropout RATE]`` loads them."""
    from symnet.data import load_dataset
    from symnet.spec import load as load_spec

    net = load_spec(spec)
    if dropout:
        from symnet import train as train_module

        if not hasattr(train_module, "with_dropout"):
            raise TrainingError(f"--dropout {dropout:g}: this symnet has no dropout support")
        net = train_module.with_dropout(net, float(dropout))
    data = load_dataset(data_name, seed=seed, image=len(net.input_shape) == 3,
                        binary_single_output=tuple(net.output_shape) == (1,), dtype=net.dtype)
    return net, data


def _accuracy(model, X, y, loss_name):
    torch = _torch()
    from symnet.train import predict_labels

    if len(X) == 0:
        return None
    with torch.no_grad():
        out = model(torch.as_tensor(X)).numpy()
    return float(np.mean(predict_labels(out, loss_name) == np.asarray(y)))


def _draw_dropout_masks(dropouts, rng, rows, dtype):
    """Each dropout layer's inverted-dropout mask for this batch, drawn from the mini-batch rng
    in layer order, as symnet's kernel.dropout_masks(rng, rows) draws them (so both runs
    see the same masks and the same later batches)."""
    torch = _torch()
    for m in dropouts:
        keep = rng.random((rows,) + m.shape) >= m.rate
        m.mask = torch.as_tensor(keep.astype(dtype) * dtype.type(1.0 / (1.0 - m.rate)))


def train_torch(net, data, *, optimizer="adam", lr=1e-3, batch_size=64, epochs=20, seed=0, init="he",
                l2=0.0, l1=0.0, max_norm=None, schedule="constant", evaluate_each_epoch=True):
    """Train the torch reference as symnet.train.train would train ``net``.

    Returns a dict: test_accuracy, train_accuracy, params (numpy), time_s,
    history (per-epoch train loss and accuracy, val accuracy).
    """
    torch = _torch()
    from symnet.data import iterate_minibatches
    from symnet.optim import make_schedule

    dtype = np.dtype(net.dtype)
    cast = lambda a: torch.as_tensor(np.ascontiguousarray(a, dtype=dtype))  # noqa: E731
    X_tr, Y_tr, y_tr = cast(data.X_train), cast(data.Y_train), torch.as_tensor(data.y_train, dtype=torch.long)
    params0 = {k: np.ascontiguousarray(v, dtype=dtype) for k, v in net.init_params(seed=seed, scheme=init).items()}
    model = build_torch_model(net, params0)
    opt = make_torch_optimizer(optimizer, model, lr, l2=l2)
    sched = make_schedule(schedule, lr)
    ws, _ = _weights_and_others(model)
    rng = np.random.default_rng(seed)  # train() seeds its mini-batch rng the same way
    dropouts = [m for m in model.body if m.__class__.__name__ == "MaskedDropout"]
    n = len(X_tr)
    history = {"train_loss": [], "train_acc": [], "val_acc": []}
    t0 = time.perf_counter()
    for epoch in range(epochs):
        for g in opt.param_groups:
            g["lr"] = float(sched(epoch))
        model.train()
        total, seen = 0.0, 0
        for idx in iterate_minibatches(n, batch_size, rng):
            it = torch.as_tensor(idx)
            _draw_dropout_masks(dropouts, rng, len(idx), dtype)
            opt.zero_grad(set_to_none=True)
            loss = torch_loss(model, X_tr[it], Y_tr[it], y_tr[it])
            objective = (loss + l1 * sum(w.abs().sum() for w in ws)) if l1 else loss
            if not math.isfinite(float(objective.detach())):
                raise TrainingError(f"torch reference, epoch {epoch + 1}: loss became {float(objective)}")
            objective.backward()
            opt.step()
            if max_norm is not None:
                with torch.no_grad():
                    for w in ws:
                        rows = w.reshape(w.shape[0], -1)
                        norms = rows.norm(dim=1)
                        scale = torch.where(norms > max_norm, max_norm / norms.clamp_min(1e-30),
                                            torch.ones_like(norms))
                        w.mul_(scale.reshape((-1,) + (1,) * (w.dim() - 1)))
            total += loss.item() * len(idx)
            seen += len(idx)
        history["train_loss"].append(total / seen)
        if evaluate_each_epoch:  # as train() does, so the wall times compare like with like
            model.eval()
            history["train_acc"].append(_accuracy(model, data.X_train.astype(dtype), data.y_train, net.loss.name))
            history["val_acc"].append(_accuracy(model, data.X_val.astype(dtype), data.y_val, net.loss.name))
    elapsed = time.perf_counter() - t0
    model.eval()
    return {
        "test_accuracy": _accuracy(model, data.X_test.astype(dtype), data.y_test, net.loss.name),
        "train_accuracy": _accuracy(model, data.X_train.astype(dtype), data.y_train, net.loss.name),
        "params": torch_params(model),
        "time_s": elapsed,
        "threads": torch.get_num_threads(),
        "history": history,
        "model": model,
    }


def train_symnet(net, data, *, optimizer="adam", lr=1e-3, batch_size=64, epochs=20, seed=0, init="he",
                 l2=0.0, l1=0.0, max_norm=None, schedule="constant", kernel_dir=None):
    """symnet.train.train with the same settings; the kernel is generated and JIT-compiled first.

    Returns a dict: test_accuracy, train_accuracy, params, time_s (training),
    compile_s (generation + import + first calls), result (the TrainResult).
    """
    from symnet.codegen import generate
    from symnet.train import train

    t0 = time.perf_counter()
    kernel = generate(net, kernel_dir)
    dtype = np.dtype(net.dtype)
    xb = np.ascontiguousarray(data.X_train[:2], dtype=dtype)
    yb = np.ascontiguousarray(data.Y_train[:2], dtype=dtype)
    p0 = {k: np.ascontiguousarray(v, dtype=dtype) for k, v in net.init_params(seed=seed, scheme=init).items()}
    kernel.forward(p0, xb)  # JIT-compile every entry train() calls, outside the timed run
    kernel.loss_and_grads(p0, xb, yb)
    if hasattr(kernel, "loss"):
        kernel.loss(p0, xb, yb)
    if getattr(kernel, "DROPOUT", ()) and hasattr(kernel, "dropout_masks"):
        kernel.loss_and_grads(p0, xb, yb, kernel.dropout_masks(np.random.default_rng(0), len(xb)))
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = train(net, data, kernel=kernel, optimizer=optimizer, lr=lr, batch_size=batch_size, epochs=epochs,
                   seed=seed, l2=l2, l1=l1, max_norm=max_norm, schedule=schedule, init=init, progress=False)
    elapsed = time.perf_counter() - t0
    return {
        "test_accuracy": result.test_accuracy,
        "train_accuracy": result.history["train_acc"][-1],
        "params": result.params,
        "time_s": elapsed,
        "compile_s": compile_s,
        "result": result,
    }


def compare(spec, data_name, *, tolerance=TOLERANCE_POINTS, kernel_dir=None, dropout=0.0, **settings):
    """Train both; returns a dict with both results, diff_points and passed."""
    net, data = load(spec, data_name, settings.get("seed", 0), dropout)
    ref = train_torch(net, data, **settings)
    sym = train_symnet(net, data, kernel_dir=kernel_dir, **settings)
    diff = 100.0 * (sym["test_accuracy"] - ref["test_accuracy"])
    return {"net": net, "data": data, "torch": ref, "symnet": sym, "diff_points": diff,
            "passed": abs(diff) <= tolerance, "tolerance": tolerance}


# --------------------------------------------------------------------------
# Command line


def _parser():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("spec", help="network spec file (.toml)")
    ap.add_argument("--data", default="digits", help="digits, breast_cancer, iris, or a .npz/.csv file")
    ap.add_argument("--optimizer", default="adam", help="sgd, momentum, rmsprop, adam, adagrad")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0, help="seed of the split, init and mini-batches")
    ap.add_argument("--init", default="he", help="weight initialisation scheme (default he)")
    ap.add_argument("--l2", type=float, default=0.0, help="symnet's L2 penalty l2*||W||^2 (torch: weight_decay 2*l2)")
    ap.add_argument("--l1", type=float, default=0.0, help="L1 penalty l1*|W|")
    ap.add_argument("--max-norm", type=float, default=None, help="bound on each weight row's norm")
    ap.add_argument("--schedule", default="constant", help="constant, step, exponential, inverse_time")
    ap.add_argument("--dropout", type=float, default=0.0,
                    help="dropout after every hidden dense layer, as symnet train --dropout (same masks in both)")
    ap.add_argument("--tolerance", type=float, default=TOLERANCE_POINTS, help="allowed difference in points")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch.set_num_threads (default 1: these networks are small, and extra intra-op "
                         "threads only contend on a busy machine; 0 keeps torch's default)")
    ap.add_argument("--kernel-dir", default=None, help="where symnet writes the kernel (default: its cache)")
    return ap


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        torch = _torch()
        if args.threads and args.threads > 0:
            torch.set_num_threads(args.threads)
        settings = dict(optimizer=args.optimizer, lr=args.lr, batch_size=args.batch_size, epochs=args.epochs,
                        seed=args.seed, init=args.init, l2=args.l2, l1=args.l1, max_norm=args.max_norm,
                        schedule=args.schedule)
        r = compare(args.spec, args.data, tolerance=args.tolerance, kernel_dir=args.kernel_dir,
                    dropout=args.dropout, **settings)
    except SymnetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    net, data, ref, sym = r["net"], r["data"], r["torch"], r["symnet"]
    print(f"network {net.name} ({net.dtype}), data {data.name}: {len(data.X_train)} train / "
          f"{len(data.X_val)} val / {len(data.X_test)} test")
    print("settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()) + f", dropout={args.dropout}")
    print(f"torch {torch.__version__} ({ref['threads']} thread(s)): test accuracy "
          f"{100 * ref['test_accuracy']:.2f}%, training {ref['time_s']:.2f} s")
    print(f"symnet: test accuracy {100 * sym['test_accuracy']:.2f}%, training {sym['time_s']:.2f} s "
          f"(+ {sym['compile_s']:.2f} s kernel generation and JIT)")
    drift = max(float(np.max(np.abs(sym["params"][k] - ref["params"][k]))) for k in ref["params"])
    print(f"difference: {r['diff_points']:+.2f} points (max |weight difference| after training {drift:.3g})")
    verdict = "PASS" if r["passed"] else "FAIL"
    print(f"{verdict}: test accuracies within {r['tolerance']:g} point(s)" if r["passed"]
          else f"{verdict}: test accuracies differ by more than {r['tolerance']:g} point(s)")
    return 0 if r["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
