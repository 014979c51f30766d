"""The training loop: mini-batches, regularisation, early stopping, checkpoints.

The kernel does the network's math (``symnet.codegen.generate(net)``):

- ``kernel.forward(params, X)`` -> outputs (probabilities after a sigmoid or
  softmax, plain values otherwise),
- ``kernel.loss_and_grads(params, X, Y)`` -> ``(loss, grads)``, the loss being
  the mean over the batch;
- optionally ``kernel.forward_and_loss(params, X, Y)`` -> ``(outputs, loss)`` in
  one evaluation pass (generated kernels have it), else ``kernel.loss``.

This module adds what the lectures add around it:

- L2 regularisation ``lambda * ||W||^2`` and L1 ``lambda * |W|`` on the weights
  (parameters named ``W<l>``; biases are not penalised), added to the average
  loss. Their gradients are SymPy's derivatives of those expressions
  (``2 lambda w``, ``lambda sign(w)`` with sign(0) = 0), lambdified once.
- max-norm: after each step every weight row (one unit's incoming weights, one
  conv filter) is rescaled to norm <= c.
- early stopping on the validation loss with a patience, keeping the best
  parameters.
- a bias/variance diagnosis from train and validation error.

A run directory (``out``) gets a checkpoint after every epoch, and at the end
metrics.json and plots (see :mod:`symnet.runs`). ``resume=True`` continues
from the checkpoint: parameters, optimiser state and the mini-batch rng are
restored, so 2 + 2 epochs give exactly the weights of 4. (With early stopping
the final checkpoint holds the best epoch's parameters, the ones returned; a
run resumed from it continues from those.)
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from .data import iterate_minibatches
from .errors import DataError, SymnetError, TrainingError
from .optim import Optimizer, Schedule, make_optimizer, make_schedule

# Bias/variance thresholds (the seed lecture's recipe, with the optimal
# (Bayes) error of these classification tasks taken as ~0):
#   high bias      train error > BIAS_THRESHOLD           -> bigger network / train longer
#   high variance  val error - train error > VARIANCE_GAP -> more data / regularisation
BIAS_THRESHOLD = 0.05
VARIANCE_GAP = 0.05

# Per epoch: train_loss is the mean data loss over the epoch's mini-batches
# (without the penalty, which is recorded separately); train_acc, val_loss and
# val_acc are computed with the parameters at the end of the epoch; lr is the
# epoch's learning rate from the schedule.
# grad_norm: {W<l>: ||dL/dW<l>||}: the mean over the epoch's batches, or the first
# batch's alone when the optimiser is fused into the step (symnet.pictures.GradNormMeter).
HISTORY_KEYS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "penalty", "time_s",
                "grad_norm")


# --------------------------------------------------------------------------
# Regularisation: penalties and their SymPy-derived gradients


@lru_cache(maxsize=None)
def _penalty_functions(kind: str):
    """(penalty(w, lam), gradient(w, lam)) numpy functions for 'l2' or 'l1'.

    The gradient is ``sympy.diff`` of the penalty, never typed here.
    """
    import sympy as sp

    w = sp.Symbol("w", real=True)
    lam = sp.Symbol("lambda", nonnegative=True)
    expr = lam * w**2 if kind == "l2" else lam * sp.Abs(w)
    grad = sp.diff(expr, w)  # 2*lambda*w ; lambda*sign(w)
    return (
        sp.lambdify((w, lam), expr, modules="numpy"),
        sp.lambdify((w, lam), grad, modules="numpy"),
        expr,
        grad,
    )


def is_weight(name: str) -> bool:
    """Weights are W1, W2, ...; biases and other parameters are not penalised."""
    return name.startswith("W") and name[1:].isdigit()


class Regularizer:
    """L2 ``l2 * sum W^2`` plus L1 ``l1 * sum |W|`` over the weight matrices."""

    def __init__(self, l2: float = 0.0, l1: float = 0.0):
        for key, value in (("l2", l2), ("l1", l1)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise TrainingError(f"{key}={value!r} must be a number >= 0")
        self.l2 = float(l2)
        self.l1 = float(l1)
        self.terms = [(k, lam) for k, lam in (("l2", self.l2), ("l1", self.l1)) if lam > 0]

    def __bool__(self):
        return bool(self.terms)

    @property
    def name(self) -> str:
        """"elastic net" (l1 and l2 together), "L2", "L1" or "none"."""
        return "elastic net" if len(self.terms) == 2 else (self.terms[0][0].upper() if self.terms else "none")

    def expression(self):
        """(w, the penalty on one weight w as a SymPy expression in lambda_1, lambda_2,
        {lambda symbol: value}): for documents, which differentiate and print it."""
        import sympy as sp

        w = sp.Symbol("w", real=True)
        lams = {kind: sp.Symbol(r"\lambda_" + kind[1], nonnegative=True) for kind, _ in self.terms}
        expr = sum((_penalty_functions(kind)[2].subs(sp.Symbol("lambda", nonnegative=True), lams[kind])
                    for kind, _ in self.terms), sp.Integer(0))
        return w, expr, {lams[kind]: lam for kind, lam in self.terms}

    def equations(self) -> list[str]:
        """LaTeX of the penalty on one weight and its gradient, both from SymPy
        (with l1 and l2 together: the elastic net), for documents."""
        import sympy as sp

        w, expr, _ = self.expression()
        return [rf"\text{{{self.name}: }} R(w) = {sp.latex(expr)}",
                rf"\frac{{\partial R}}{{\partial w}} = {sp.latex(sp.diff(expr, w))}"]

    def penalty(self, params: dict) -> float:
        """The value added to the average loss."""
        total = 0.0
        for kind, lam in self.terms:
            f = _penalty_functions(kind)[0]
            total += sum(float(np.sum(f(p, lam))) for k, p in params.items() if is_weight(k))
        return total

    def fused_coefficients(self) -> tuple[float, float]:
        """(c2, c1) with the penalty's gradient c2 w + c1 sign(w), read off SymPy's derivatives
        (for the update fused into a generated step)."""
        import sympy as sp
        c2 = c1 = 0.0
        for kind, lam in self.terms:
            grad = _penalty_functions(kind)[3]
            symbols = {str(x): x for x in grad.free_symbols}
            w, lam_sym = symbols["w"], symbols["lambda"]
            if kind == "l2":
                c2 += float(sp.diff(grad, w).subs(lam_sym, lam))          # 2 lambda
            else:
                c1 += float(grad.subs({w: 1, lam_sym: lam}))               # lambda sign(w) at w = 1
        return c2, c1

    def add_grads(self, params: dict, grads: dict) -> dict:
        """Gradients of loss + penalty (a new dict; ``grads`` is left alone)."""
        out = dict(grads)
        for kind, lam in self.terms:
            g = _penalty_functions(kind)[1]
            for k, p in params.items():
                if is_weight(k):
                    out[k] = out[k] + np.asarray(g(p, lam), dtype=p.dtype)
        return out


def _fusable(kernel, opt, params) -> bool:
    """Whether the generated train_step can apply opt itself: a symnet optimiser, and
    parameters the kernel may update in place (C-contiguous arrays of its dtype)."""
    if getattr(opt, "fused_kind", None) is None or not hasattr(kernel, "PENALISED"):
        return False
    dtype = np.dtype(kernel.DTYPE)
    return all(isinstance(params.get(k), np.ndarray) and params[k].dtype == dtype and params[k].flags.c_contiguous
               for k in kernel.PARAM_NAMES + kernel.STATE_NAMES)


def apply_max_norm(params: dict, c: float) -> None:
    """Rescale, in place, each weight row (a unit's incoming weights) to norm <= c."""
    for k, p in params.items():
        if not is_weight(k) or p.ndim < 2:
            continue
        rows = p.reshape(p.shape[0], -1)
        norms = np.sqrt(np.sum(rows * rows, axis=1))
        scale = np.where(norms > c, c / np.maximum(norms, np.finfo(p.dtype).tiny), 1.0)
        p *= scale.reshape((-1,) + (1,) * (p.ndim - 1)).astype(p.dtype)


# --------------------------------------------------------------------------
# Predictions and evaluation


def predict_labels(outputs: np.ndarray, loss_name: str = "") -> np.ndarray:
    """Class labels from network outputs: argmax, or a threshold for one output.

    One output: > 0.5 (a sigmoid probability, or a 0/1 regression target);
    with the hinge loss (targets -1/+1) the threshold is 0.
    """
    out = np.asarray(outputs)
    out = out.reshape(len(out), -1)
    if out.shape[1] == 1:
        threshold = 0.0 if loss_name == "hinge" else 0.5
        return (out[:, 0] > threshold).astype(np.int64)
    return np.argmax(out, axis=1)


def _batch_loss(kernel, params, X, Y) -> float:
    if hasattr(kernel, "loss"):
        return float(kernel.loss(params, X, Y))
    return float(kernel.loss_and_grads(params, X, Y)[0])


def evaluate(kernel, params, X, Y, y, loss_name: str = "", batch_size: int = 1024):
    """(mean loss, accuracy, outputs) over a whole split, in chunks; None for an empty split."""
    n = len(X)
    if n == 0:
        return None, None, None
    total, outs = 0.0, []
    one_pass = getattr(kernel, "forward_and_loss", None)   # generated kernels: one evaluation pass
    for start in range(0, n, batch_size):
        sl = slice(start, start + batch_size)
        xb = X[sl]
        if one_pass is not None:
            out, value = one_pass(params, xb, Y[sl])
        else:
            out, value = kernel.forward(params, xb), _batch_loss(kernel, params, xb, Y[sl])
        total += float(value) * len(xb)
        outs.append(np.asarray(out).reshape(len(xb), -1))
    outputs = np.concatenate(outs)
    acc = float(np.mean(predict_labels(outputs, loss_name) == np.asarray(y)))
    return total / n, acc, outputs


def bias_variance(train_acc, val_acc) -> dict:
    """The lecture's diagnosis from train and validation error.

    Returns {train_error, val_error, gap, high_bias, high_variance, advice, line}.
    Thresholds: :data:`BIAS_THRESHOLD` and :data:`VARIANCE_GAP`.
    """
    if train_acc is None:
        return {"line": "bias/variance: no training accuracy to judge"}
    train_err = 1.0 - train_acc
    if val_acc is None:
        return {"train_error": train_err, "line": (
            f"bias/variance: train error {train_err:.1%}; no validation split, so variance cannot be judged")}
    val_err = 1.0 - val_acc
    gap = val_err - train_err
    high_bias = train_err > BIAS_THRESHOLD
    high_var = gap > VARIANCE_GAP
    advice = []
    if high_bias:
        advice.append(f"high bias (train error > {BIAS_THRESHOLD:.0%}): try a bigger network or train longer")
    if high_var:
        advice.append(f"high variance (validation error exceeds train error by > {VARIANCE_GAP:.0%}): "
                      "get more data or add regularisation (--l2, early stopping)")
    if not advice:
        advice.append("low bias and low variance: the fit looks good")
    line = (f"bias/variance: train error {train_err:.1%}, validation error {val_err:.1%} "
            f"(gap {gap:+.1%}): " + "; ".join(advice))
    return {"train_error": train_err, "val_error": val_err, "gap": gap,
            "high_bias": high_bias, "high_variance": high_var, "advice": advice, "line": line}


# --------------------------------------------------------------------------
# The result


@dataclass
class TrainResult:
    """What train() returns. ``history`` maps each of HISTORY_KEYS to a list, one entry per epoch."""

    params: dict
    history: dict
    test: dict | None = None  # classification_report of the test split + test_loss
    diagnosis: dict = field(default_factory=dict)  # bias_variance()
    best_epoch: int | None = None
    epochs_run: int = 0
    stopped_early: bool = False
    out: Path | None = None

    def __repr__(self):
        acc = "" if self.test_accuracy is None else f", test_accuracy={self.test_accuracy:.4f}"
        return (f"TrainResult(epochs_run={self.epochs_run}{acc}, params=[{', '.join(self.params)}]"
                + (f", out={str(self.out)!r}" if self.out is not None else "") + ")")

    @property
    def test_accuracy(self):
        return None if self.test is None else self.test.get("accuracy")

    @property
    def test_loss(self):
        return None if self.test is None else self.test.get("loss")

    def summary(self) -> str:
        h = self.history
        lines = []
        if h.get("epoch"):
            lines.append(f"trained {self.epochs_run} epoch(s)"
                         + (f", stopped early; best epoch {self.best_epoch}" if self.stopped_early else ""))
            parts = [f"train loss {h['train_loss'][-1]:.4f}", f"train acc {h['train_acc'][-1]:.3f}"]
            if h["val_loss"][-1] is not None:
                parts += [f"val loss {h['val_loss'][-1]:.4f}", f"val acc {h['val_acc'][-1]:.3f}"]
            lines.append("last epoch: " + ", ".join(parts))
        if self.test is not None:
            t = self.test
            extra = f", AUC {t['auc']:.3f}" if "auc" in t else ""
            lines.append(f"test: loss {t['loss']:.4f}, accuracy {t['accuracy']:.3f}, "
                         f"macro F1 {t['f1_macro']:.3f}{extra}")
            if "binary_table" in t:
                from .metrics import format_binary_table
                lines.append(format_binary_table(t["binary_table"]))
        if self.diagnosis.get("line"):
            lines.append(self.diagnosis["line"])
        if self.out is not None:
            lines.append(f"run directory: {self.out}")
        return "\n".join(lines)


# --------------------------------------------------------------------------
# Checks


def _check_int(key, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise TrainingError(f"{key}={value!r} must be an integer >= {minimum}")
    return int(value)


def _check_data(net, data):
    if tuple(data.input_shape) != tuple(net.input_shape):
        hint = ""
        if len(net.input_shape) == 3:
            hint = " (a CNN needs image data: load_dataset(..., image=True))"
        raise DataError(f"data {data.name}: samples have shape {tuple(data.input_shape)} but network "
                        f"{net.name} expects input {tuple(net.input_shape)}{hint}")
    n_out = int(np.prod(net.output_shape))
    if data.n_outputs != n_out:
        hint = ""
        if n_out == 1 and data.n_classes == 2:
            hint = " (a single sigmoid output needs load_dataset(..., binary_single_output=True))"
        raise DataError(f"data {data.name}: targets have {data.n_outputs} column(s) "
                        f"({data.n_classes} classes) but network {net.name} has {n_out} output(s){hint}")
    if len(data.X_train) == 0:
        raise DataError(f"data {data.name}: the training split is empty")


def _default_kernel(net, calls=("loss_and_grads", "forward_and_loss"), batch_size: int = 64, show: bool = True):
    """The network's kernels from the shared cache, compiled (saying so the first time)."""
    from .progress import compiled_kernel

    return compiled_kernel(net, calls=calls, batch_size=batch_size, show=show)


def with_dropout(net, rate: float):
    """The network with a Dropout(rate) layer after every hidden dense layer
    (``--dropout``); the network itself when rate is 0."""
    from .layers import Dropout
    from .network import Network

    if rate == 0.0:
        return net
    if any(p.layer.type == "dropout" for p in net.placed):
        raise TrainingError(f"--dropout {rate:g}: network {net.name} already has dropout layers; "
                            "set their rates in the spec instead")
    dropout = Dropout(rate, where=f"--dropout {rate:g}")   # validates the rate
    hidden = [p.position for p in net.placed if p.layer.type == "dense"][:-1]
    layers = []
    for p in net.placed:
        layers.append(p.layer)
        if p.position in hidden:
            layers.append(dropout)
    return Network(net.input_shape, layers, loss=net.loss, name=net.name, dtype=net.dtype)


def _cast(a, dtype):
    return np.ascontiguousarray(a, dtype=dtype)


# --------------------------------------------------------------------------
# Training


# Divergence: a step's loss above this multiple of the first step's loss.
EXPLODED = 1e6


def train(net, data, *, out=None, resume: bool = False, **options) -> TrainResult:
    """Train ``net`` on ``data``; see :func:`_train` for the options. With a
    run folder ``out``, the folder is held (its lock, see
    :func:`symnet.runs.open_run`) from before the first epoch to the end."""
    from .runs import open_run

    if resume and out is None:
        raise TrainingError("resume needs a run directory (out=..., --out DIR)")
    with open_run(out):
        return _train(net, data, out=out, resume=resume, **options)


def _train(
    net,
    data,
    *,
    kernel=None,
    optimizer="adam",
    lr: float = 1e-3,
    batch_size: int = 64,
    epochs: int = 20,
    seed: int = 0,
    l2: float = 0.0,
    l1: float = 0.0,
    max_norm: float | None = None,
    early_stopping: int | None = None,
    schedule="constant",
    init: str = "he",
    out=None,
    resume: bool = False,
    progress: bool = True,
    optimizer_options: dict | None = None,
    schedule_options: dict | None = None,
    augment=(),
    adversarial: float | None = None,
    adversarial_ratio: float = 0.5,
    client=None,
) -> TrainResult:
    """Train ``net`` on ``data`` (a :class:`symnet.data.Dataset`) with mini-batch descent.

    ``optimizer``: sgd, momentum, rmsprop, adam, adagrad (or an Optimizer);
    ``schedule``: constant, step, exponential, inverse_time (or a Schedule),
    giving the learning rate of each epoch. ``batch_size >= n`` is full-batch
    descent, 1 is stochastic. ``l2``/``l1``: penalty weights on the W's;
    ``max_norm``: row-norm bound c; ``early_stopping``: patience in epochs on
    the validation loss (the best parameters are returned). ``out``: run
    directory (checkpoint every epoch, metrics.json and plots at the end);
    ``resume``: continue from ``out``'s checkpoint. ``augment``: kinds of
    :mod:`symnet.augment` for training batches; ``adversarial``: FGSM eps mixed
    into a fraction ``adversarial_ratio`` of each batch (:mod:`symnet.adversarial`).
    ``client``: a Dask client; each step's gradients are then computed on its
    workers (:mod:`symnet.cluster`).
    """
    epochs = _check_int("epochs", epochs, 1)
    batch_size = _check_int("batch_size", batch_size, 1)
    seed = _check_int("seed", seed, 0)
    if early_stopping is not None:
        early_stopping = _check_int("early_stopping (patience)", early_stopping, 1)
        if len(data.X_val) == 0:
            raise TrainingError("early_stopping needs a validation split, but the data set has none")
    if max_norm is not None and not (math.isfinite(max_norm) and max_norm > 0):
        raise TrainingError(f"max_norm={max_norm!r} must be a number > 0")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (math.isfinite(lr) and lr > 0):
        raise TrainingError(f"lr={lr!r} must be a finite number > 0 (e.g. 1e-3)")
    reg = Regularizer(l2=l2, l1=l1)
    _check_data(net, data)
    from .augment import augment as augment_batch, check_input, parse_kinds
    augment = parse_kinds(augment)
    check_input(augment, net.input_shape)

    dtype = np.dtype(net.dtype)
    X_tr, Y_tr = _cast(data.X_train, dtype), _cast(data.Y_train, dtype)
    X_va, Y_va = _cast(data.X_val, dtype), _cast(data.Y_val, dtype)
    X_te, Y_te = _cast(data.X_test, dtype), _cast(data.Y_test, dtype)
    loss_name = net.loss.name

    opt = optimizer if isinstance(optimizer, Optimizer) else make_optimizer(optimizer, lr, **(optimizer_options or {}))
    sched = schedule if isinstance(schedule, Schedule) else make_schedule(schedule, lr, **(schedule_options or {}))
    base_lr = sched.lr0
    from .memory import require

    require(net, batch_size)
    adv = None
    if adversarial is not None:
        from .adversarial import AdversarialMixer
        adv = AdversarialMixer(adversarial, adversarial_ratio, X_tr, data.normalizer)

    out = Path(out) if out is not None else None
    rng = np.random.default_rng(seed)
    history = {k: [] for k in HISTORY_KEYS}
    best = {"loss": math.inf, "epoch": None, "params": None, "bad": 0}
    stopped_early = False
    start_epoch = 0

    if resume:
        start_epoch, params, history, best, stopped_early = _restore(out, net, data, opt, rng, dtype)
        if start_epoch > epochs:
            raise TrainingError(f"{out}: the checkpoint has already trained {start_epoch} epoch(s) and "
                                f"--epochs {epochs} asks for fewer; give --epochs above {start_epoch} "
                                "to continue")
        if start_epoch == epochs and progress:   # a finished run: evaluated and written again, no step
            print(f"note: {out} has already trained all {epochs} epoch(s); give a larger --epochs to "
                  "continue", file=sys.stderr)
    else:
        params = {k: _cast(v, dtype) for k, v in net.init_params(seed=seed, scheme=init).items()}
        params.update(net.init_state(dtype))   # batch norm's running statistics (updated by the kernel)
    if kernel is None:          # after the checkpoint is read: a bad one fails before compiling
        kernel = _default_kernel(net, batch_size=batch_size, show=progress)

    config = {"network": net.name, "fingerprint": net.fingerprint(), "data": data.name,
              "optimizer": opt.name, "lr": base_lr, "schedule": repr(sched), "batch_size": batch_size,
              "epochs": epochs, "seed": seed, "l2": reg.l2, "l1": reg.l1, "max_norm": max_norm,
              "early_stopping": early_stopping, "init": init, "dtype": str(dtype), "loss": loss_name,
              "dropout_rates": sorted({p.layer.rate for p in net.placed if p.layer.type == "dropout"}),
              "normalize": getattr(data, "normalization", "standard"), "augment": list(augment),
              "adversarial": adversarial, "adversarial_ratio": adversarial_ratio if adversarial else None}

    dropout = bool(getattr(kernel, "DROPOUT", ()))   # masks drawn from rng: resume stays exact
    parallel = None
    if client is not None:   # data-parallel: the workers compute each step's gradients
        if augment or adversarial is not None:
            raise TrainingError("--augment and --adversarial change each batch in this process, but with "
                                "--workers/--scheduler the workers read their rows themselves; train without "
                                "one or the other")
        from .cluster import DataParallel
        parallel = DataParallel(client, net, kernel, X_tr, Y_tr, out=out, advise=progress)
    show_bar = progress and sys.stderr.isatty()
    from .pictures import GradNormMeter
    grad_meter = GradNormMeter()
    n = len(X_tr)
    n_batches = math.ceil(n / batch_size)
    step = opt.t
    epoch = start_epoch
    first_loss = None
    fused = _fusable(kernel, opt, params) and parallel is None
    penalty = reg.fused_coefficients() if reg else (0.0, 0.0)
    for epoch in range(start_epoch, epochs):
        if stopped_early:
            break
        t0 = time.perf_counter()
        opt.lr = float(sched(epoch))
        bar = _bar(n_batches, epoch, epochs, show_bar)
        seen, total_loss, total_pen = 0, 0.0, 0.0
        for idx in iterate_minibatches(n, batch_size, rng):
            xb, yb = X_tr[idx], Y_tr[idx]
            masks = kernel.dropout_masks(rng, len(idx)) if dropout else None   # one draw a batch: resume exact
            pen = reg.penalty(params) if reg else 0.0   # before the step, as the loss
            grads = None
            if parallel is not None:      # workers hold the data: only the row indices travel
                loss, grads = parallel.loss_and_grads(params, idx, masks)
            else:
                if augment:
                    xb = augment_batch(xb, augment, rng)      # the checkpointed rng: resume stays exact
                if adv is not None:
                    xb = adv.mix(kernel, params, xb, yb)
                # The optimiser's update inside the generated step (symnet.runtime.optim); each
                # epoch's first batch goes the unfused way, for its gradient norms.
                if fused and seen:
                    loss = kernel.train_step(params, xb, yb, opt.lr, masks, optimizer=opt, penalty=penalty)
                elif masks is not None:
                    loss, grads = kernel.loss_and_grads(params, xb, yb, masks)
                else:
                    loss, grads = kernel.loss_and_grads(params, xb, yb)
            loss = float(loss)
            step += 1
            objective = loss + pen
            first_loss = abs(objective) if first_loss is None else first_loss
            if not math.isfinite(objective) or abs(objective) > EXPLODED * max(first_loss, 1e-12):
                if bar is not None:
                    bar.close()
                raise _diverged(kernel, net, params, xb, objective, first_loss, step, epoch, base_lr)
            if grads is not None:
                grad_meter.add(grads)
                if reg:
                    grads = reg.add_grads(params, grads)
                opt.step({k: params[k] for k in grads}, grads)   # the trainable ones (not batch-norm state)
            if max_norm is not None:
                apply_max_norm(params, max_norm)
            seen += len(idx)
            total_loss += loss * len(idx)
            total_pen += pen * len(idx)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{total_loss / seen:.4f}")

        train_loss = total_loss / seen
        _, train_acc, _ = evaluate(kernel, params, X_tr, Y_tr, data.y_train, loss_name)
        val_loss, val_acc, _ = evaluate(kernel, params, X_va, Y_va, data.y_val, loss_name)
        if val_loss is not None and not math.isfinite(val_loss):
            raise TrainingError(f"step {step} (epoch {epoch + 1}): validation loss became "
                                f"{'nan' if math.isnan(val_loss) else 'inf'}; try a lower learning rate, "
                                f"e.g. --lr {base_lr / 10:g}")
        row = {"epoch": epoch + 1, "train_loss": train_loss, "train_acc": train_acc,
               "val_loss": val_loss, "val_acc": val_acc, "lr": opt.lr, "penalty": total_pen / seen,
               "time_s": time.perf_counter() - t0, "grad_norm": grad_meter.epoch()}
        for k in HISTORY_KEYS:
            history[k].append(row[k])
        if bar is not None:
            post = {"loss": f"{train_loss:.4f}", "acc": f"{train_acc:.3f}"}
            if val_loss is not None:
                post.update(val_loss=f"{val_loss:.4f}", val_acc=f"{val_acc:.3f}")
            bar.set_postfix(post)
            bar.close()
        if progress:
            _epoch_line(row, epochs)

        if val_loss is not None and val_loss < best["loss"]:
            best.update(loss=val_loss, epoch=epoch + 1, bad=0,
                        params={k: v.copy() for k, v in params.items()} if early_stopping else None)
        elif val_loss is not None:
            best["bad"] += 1
        if early_stopping is not None and best["bad"] >= early_stopping:
            stopped_early = True
        if out is not None:
            _checkpoint(out, params, opt, epoch + 1, rng, data, config, history, best, stopped_early)

    epochs_run = len(history["epoch"])
    final = params
    if early_stopping is not None and best["params"] is not None:
        final = best["params"]
    if out is not None and final is not params:
        # The run is over: the checkpoint holds the parameters it returns.
        _checkpoint(out, final, opt, epochs_run, rng, data, config, history, best, stopped_early)

    result = TrainResult(params=final, history=history, best_epoch=best["epoch"],
                         epochs_run=epochs_run, stopped_early=stopped_early, out=out)
    # Diagnosis from the parameters returned (the best ones under early stopping).
    _, tr_acc, _ = evaluate(kernel, final, X_tr, Y_tr, data.y_train, loss_name)
    _, va_acc, _ = evaluate(kernel, final, X_va, Y_va, data.y_val, loss_name)
    result.diagnosis = bias_variance(tr_acc, va_acc)
    result.test, test_outputs = _test_report(kernel, final, X_te, Y_te, data.y_test, loss_name)
    if out is not None:
        _write_run(out, result, config, data, test_outputs, net, X_te)
    return result


def _diverged(kernel, net, params, xb, objective, first_loss, step, epoch, lr) -> TrainingError:
    """The error for a loss that became NaN, infinite or exploded: a NaN at
    finite network outputs comes from the loss's own formula (e.g. log of a
    non-positive number), anything else from too large a step."""
    where = f"epoch {epoch + 1}, step {step}"
    if math.isnan(objective) and _has_domain(net.loss.expr):
        outputs = np.asarray(kernel.forward(params, xb))
        if np.all(np.isfinite(outputs)):
            formula = net.loss.source or net.loss.name
            return TrainingError(
                f"{where}: the loss {formula!r} is NaN at finite network outputs (in "
                f"[{outputs.min():.3g}, {outputs.max():.3g}]): the formula is undefined there, e.g. the log "
                "of a non-positive number; use an output activation whose values it accepts (sigmoid for "
                "log(yhat)) or a built-in loss such as bce")
    what = ("nan" if math.isnan(objective) else "inf") if not math.isfinite(objective) else \
        f"{objective:.3g}, over {EXPLODED:g} x its first value {first_loss:.3g}"
    return TrainingError(f"{where}: training diverged, the loss became {what}; "
                         f"try a lower learning rate, e.g. --lr {lr / 10:g}")


def _has_domain(expr) -> bool:
    """Whether a loss formula is undefined somewhere on the reals (log, a root)."""
    import sympy as sp

    return expr is not None and (expr.has(sp.log) or any(
        not p.exp.is_integer for p in expr.atoms(sp.Pow)))


def _bar(total, epoch, epochs, show):
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"epoch {epoch + 1}/{epochs}", unit="batch", leave=False, file=sys.stderr)


def _epoch_line(row, epochs):
    text = (f"epoch {row['epoch']}/{epochs}: loss {row['train_loss']:.4f}, acc {row['train_acc']:.3f}")
    if row["val_loss"] is not None:
        text += f", val_loss {row['val_loss']:.4f}, val_acc {row['val_acc']:.3f}"
    print(text, file=sys.stderr)


def _test_report(kernel, params, X, Y, y, loss_name):
    from .metrics import classification_report

    loss, acc, outputs = evaluate(kernel, params, X, Y, y, loss_name)
    if loss is None:
        return None, None
    pred = predict_labels(outputs, loss_name)
    score = None
    if outputs.shape[1] in (1, 2):
        score = outputs[:, -1]
    report = classification_report(y, pred, y_score=score)
    report["loss"] = loss
    return report, outputs


# --------------------------------------------------------------------------
# Run directory


def _checkpoint(out, params, opt, epoch, rng, data, config, history, best, stopped_early):
    from .runs import save_checkpoint

    meta = {"config": config, "history": history, "stopped_early": stopped_early,
            "best": {"loss": best["loss"], "epoch": best["epoch"], "bad": best["bad"]}}
    save_checkpoint(out, params, opt.state_dict(), epoch, rng.bit_generator.state,
                    data.normalizer, meta, best_params=best["params"])


def _restore(out, net, data, opt, rng, dtype):
    from .runs import load_checkpoint

    ck = load_checkpoint(out, net.legacy_names())
    where = f"{Path(out)}: checkpoint"
    shapes = {k: tuple(v.shape) for k, v in ck.params.items()}
    want = {k: tuple(v) for k, v in {**net.param_shapes, **net.state_shapes}.items()}
    if shapes != want:
        raise TrainingError(f"{where} holds parameters {shapes} but network {net.name} has {want}")
    fp = ck.meta.get("config", {}).get("fingerprint")
    if fp is not None and fp != net.fingerprint():
        raise TrainingError(f"{where} was written for a different network spec than {net.name}")
    if ck.norm_mean is not None and data.normalizer is not None:
        same = (ck.norm_mean.shape == data.normalizer.mean.shape
                and np.allclose(ck.norm_mean, data.normalizer.mean)
                and np.allclose(ck.norm_std, data.normalizer.std))
        if not same:
            raise TrainingError(f"{where} was trained on different data (normaliser statistics differ; "
                                "use the same --data and --seed)")
    try:
        opt.load_state_dict(ck.optimizer)
    except SymnetError as e:
        raise TrainingError(f"{where}: {e}") from None
    if ck.rng_state is None:
        raise TrainingError(f"{where} has no mini-batch rng state; cannot resume exactly")
    rng.bit_generator.state = ck.rng_state
    params = {k: _cast(v, dtype) for k, v in ck.params.items()}
    history = {k: list(ck.meta.get("history", {}).get(k, [])) for k in HISTORY_KEYS}
    b = ck.meta.get("best", {})
    loss = b.get("loss")
    best = {"loss": math.inf if loss is None else float(loss), "epoch": b.get("epoch"),
            "bad": int(b.get("bad", 0)),
            "params": {k: _cast(v, dtype) for k, v in ck.best_params.items()} if ck.best_params else None}
    return ck.epoch, params, history, best, bool(ck.meta.get("stopped_early", False))


def _write_run(out, result: TrainResult, config, data, test_outputs, net=None, X_test=()):
    from .metrics import roc_curve
    from .runs import METRICS, write_json, write_plots

    test = result.test
    metrics = {
        "test_accuracy": None if test is None else test["accuracy"],
        "test_loss": None if test is None else test["loss"],
        "test": test,
        "bias_variance": result.diagnosis,
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "final_train_loss": result.history["train_loss"][-1] if result.history["train_loss"] else None,
        "final_val_loss": result.history["val_loss"][-1] if result.history["val_loss"] else None,
        "classes": None if data.classes is None else np.asarray(data.classes).tolist(),
        "config": config,
        "history": result.history,
    }
    write_json(Path(out) / METRICS, metrics)
    roc = None
    if test is not None and "auc" in test:
        fpr, tpr, _ = roc_curve(data.y_test, test_outputs[:, -1])
        roc = (fpr, tpr, test["auc"])
    labels = None if data.classes is None else list(np.asarray(data.classes))
    write_plots(out, result.history, None if test is None else test["confusion_matrix"], labels, roc,
                table=None if test is None else test.get("binary_table"))
    from .pictures import write_run_pictures
    write_run_pictures(out, net, result.params, result.history, X_test)


# --------------------------------------------------------------------------
# Command line


# The defaults of `symnet train`; a spec's [train] table overrides them and
# command-line flags override both.
DEFAULTS = {"optimizer": "adam", "lr": 1e-3, "batch_size": 64, "epochs": 20, "seed": 0, "l2": 0.0, "l1": 0.0,
            "max_norm": None, "early_stopping": None, "schedule": "constant", "init": "he", "dropout": 0.0}


def add_train_arguments(parser):
    """Add ``symnet train``'s options to an argparse (sub)parser. Options left
    out take the spec's [train] value, else the default shown."""
    parser.description = ("Train a network on a data set with its generated kernels. Settings come from the "
                          "command line, else the spec's [train] table, else the defaults shown.")
    d = DEFAULTS
    parser.add_argument("spec", help="network spec file (.toml)")
    parser.add_argument("--data", default="digits",
                        help="digits, breast_cancer, iris, or a .npz (X, y) / .csv (label last) file "
                             "(default: digits)")
    parser.add_argument("--optimizer", default=None,
                        help=f"sgd, momentum, rmsprop, adam, adagrad (default: {d['optimizer']})")
    parser.add_argument("--lr", type=float, default=None, help=f"learning rate (default: {d['lr']:g})")
    parser.add_argument("--batch-size", type=int, default=None,
                        help=f"mini-batch size; >= n is full batch (default: {d['batch_size']})")
    parser.add_argument("--epochs", type=int, default=None, help=f"epochs in all, counting resumed ones "
                                                                 f"(default: {d['epochs']})")
    parser.add_argument("--seed", type=int, default=None,
                        help=f"seed of the split, init and mini-batches (default: {d['seed']})")
    parser.add_argument("--l2", type=float, default=None, help="L2 penalty lambda*||W||^2 (default: 0)")
    parser.add_argument("--l1", type=float, default=None, help="L1 penalty lambda*|W| (default: 0)")
    parser.add_argument("--max-norm", type=float, default=None, help="bound c on each weight row's norm "
                                                                     "(default: none)")
    parser.add_argument("--early-stopping", type=int, default=None, metavar="PATIENCE",
                        help="stop after this many epochs without a better validation loss (default: off)")
    parser.add_argument("--schedule", default=None,
                        help=f"constant, step, exponential, inverse_time (default: {d['schedule']})")
    parser.add_argument("--init", default=None, help=f"weight initialisation scheme (default: {d['init']})")
    parser.add_argument("--dropout", type=float, default=None,
                        help="inverted dropout after every hidden dense layer with this rate (default: 0, none)")
    parser.add_argument("--normalize", default="standard", choices=("standard", "minmax", "none"),
                        help="inputs: (x - mean) / std, min-max to [-1, 1], or as they are (fitted on train)")
    parser.add_argument("--augment", default=None, metavar="KINDS",
                        help="training-batch augmentation: flip,crop,rotate,noise (comma-separated)")
    parser.add_argument("--adversarial", type=float, default=None, metavar="EPS",
                        help="FGSM adversarial training: eps as a fraction of the raw data range")
    parser.add_argument("--adversarial-ratio", type=float, default=0.5, metavar="R",
                        help="fraction of each batch replaced by FGSM examples (default 0.5)")
    parser.add_argument("--out", default=None,
                        help="run folder for the checkpoint, metrics.json and plots (default: none, "
                             "nothing is saved)")
    parser.add_argument("--resume", action="store_true", help="continue from --out's checkpoint")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress output")
    return parser


def settings_from(args, spec_settings: dict) -> dict:
    """Each setting from the command line, else the spec's [train] table, else DEFAULTS."""
    out = {}
    for key, default in DEFAULTS.items():
        flag = getattr(args, key, None)
        out[key] = flag if flag is not None else spec_settings.get(key, default)
    return out


def cli_train(args, client=None) -> int:
    """``symnet train``: load the spec and data, train, print the summary. Returns 0.

    ``args`` is an argparse Namespace from :func:`add_train_arguments`.
    SymnetError subclasses propagate for the CLI to print on one line.
    """
    from .data import load_dataset
    from .spec import load_with_settings

    net, spec_settings = load_with_settings(args.spec)
    s = settings_from(args, spec_settings)
    net = with_dropout(net, float(s["dropout"]))
    if args.out is None and args.resume:
        raise TrainingError("--resume needs --out DIR, the run folder to continue")
    data = load_dataset(
        args.data,
        seed=s["seed"],
        image=len(net.input_shape) == 3,
        binary_single_output=tuple(net.output_shape) == (1,),
        dtype=net.dtype,
        normalize=getattr(args, "normalize", "standard"),
    )
    progress = getattr(args, "progress", True)
    if args.out is None and progress:
        print("note: no --out given, so nothing is saved (give --out DIR for the checkpoint, metrics and plots)",
              file=sys.stderr)
    result = train(
        net, data,
        optimizer=s["optimizer"], lr=s["lr"], batch_size=s["batch_size"], epochs=s["epochs"],
        seed=s["seed"], l2=s["l2"], l1=s["l1"], max_norm=s["max_norm"],
        early_stopping=s["early_stopping"], schedule=s["schedule"],
        init=s["init"], out=args.out, resume=args.resume,
        progress=progress,
        augment=getattr(args, "augment", None), adversarial=getattr(args, "adversarial", None),
        adversarial_ratio=getattr(args, "adversarial_ratio", 0.5), client=client,
    )
    print(result.summary())
    return 0
