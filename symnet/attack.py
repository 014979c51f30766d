"""Adversarial examples by the fast gradient sign method (FGSM).

Goodfellow et al. (2015): move every input a step ``eps`` in the direction
that increases the loss fastest under the max-norm,

    X_adv = clip(X + eps * sign(dL/dX), lo, hi).

The input gradient ``dL/dX`` is not typed here: it comes from the generated
kernel's ``loss_and_input_grad(params, X, Y) -> (loss, dX)``, which SymPy
derives like every other gradient (the delta recursion carried one layer
further, to the input). The kernel's loss is the mean over the batch, so
``dX`` of one row is that example's own gradient divided by the batch size:
the sign, and so the attack, is per example and does not depend on how the
rows are batched.

Units of ``eps`` (the ``symnet attack`` command and :func:`run_attack`):
a fraction of the data set's raw value range ``[lo, hi]`` (min and max over
the whole raw data set, before the training normaliser; ``range_mode="feature"``
takes them per feature instead). For the digits, pixels are 0..16, so
``eps = 0.1`` moves each pixel by 1.6 grey levels. The step is taken in raw
units and the result is clipped to ``[lo, hi]``; the network sees it after the
checkpoint's normaliser ``(x - mean) / std``, so the gradient is chained
through the normaliser: ``dL/dx_raw = dL/dx_norm / std``.

:func:`fgsm` itself works in the units of the X it is given (raw units when a
normaliser is passed, the kernel's input units otherwise).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from .errors import DataError, ShapeError, SpecError, SymnetError

DEFAULT_BATCH_SIZE = 256
RANGE_MODES = ("global", "feature")
METHODS = ("fgsm", "gradient")


class AttackError(SymnetError):
    """An adversarial attack cannot run as asked (bad eps, mismatched checkpoint or data)."""


# --------------------------------------------------------------------------
# Checks


def _check_eps(eps, what="eps"):
    """eps as a float or a float array, finite and >= 0."""
    arr = np.asarray(eps, dtype=float) if not isinstance(eps, (str, bytes)) else None
    if arr is None or arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise AttackError(f"{what}={eps!r} must be a finite number >= 0")
    return float(arr) if arr.ndim == 0 else arr


def _check_batch_size(batch_size):
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise AttackError(f"batch_size={batch_size!r} must be an integer >= 1")
    return int(batch_size)


def _input_grad_function(kernel):
    fn = getattr(kernel, "loss_and_input_grad", None)
    if fn is None or not callable(fn):
        where = getattr(kernel, "path", None) or type(kernel).__name__
        raise AttackError(f"kernel {where}: has no loss_and_input_grad(params, X, Y); "
                          "regenerate it with a symnet that derives the input gradient")
    return fn


def _sample_shaped(values, sample_shape):
    """A normaliser's flat per-feature vector reshaped to one sample's shape."""
    return np.asarray(values, dtype=float).reshape(sample_shape)


def _kernel_dtype(kernel, dtype, X):
    if dtype is not None:
        return np.dtype(dtype)
    kd = getattr(kernel, "DTYPE", None)
    try:
        return np.dtype(kd) if kd is not None else np.asarray(X).dtype
    except TypeError:
        return np.asarray(X).dtype


# --------------------------------------------------------------------------
# The gradient and the attack


def input_gradient(kernel, params, X, Y, *, normalizer=None, batch_size: int = DEFAULT_BATCH_SIZE,
                   dtype=None):
    """``(loss, dX)``: the mean loss over all rows of X and its gradient w.r.t. X.

    Calls ``kernel.loss_and_input_grad`` batch by batch and rescales each
    batch's gradient by ``len(batch) / len(X)``, so ``dX`` is the gradient of
    the mean over the whole of X whatever the batch size.

    With ``normalizer`` (a :class:`symnet.data.Normalizer`), X is in raw units:
    the kernel gets ``normalizer(X)`` and the gradient is chained through it,
    ``dX_raw = dX_norm / std``. ``dtype``: what the kernel computes in (default
    the kernel's ``DTYPE``, else X's); X is cast to it before normalising,
    exactly as the training data were. ``dX`` is float64.
    """
    fn = _input_grad_function(kernel)
    batch_size = _check_batch_size(batch_size)
    X = np.asarray(X)
    Y = np.asarray(Y)
    n = len(X)
    if n == 0:
        raise ShapeError("X: no rows to attack")
    if len(Y) != n:
        raise ShapeError(f"Y: {len(Y)} rows for {n} rows of X")
    kdtype = _kernel_dtype(kernel, dtype, X)
    grad = np.empty(X.shape, dtype=np.float64)
    total = 0.0
    for start in range(0, n, batch_size):
        sl = slice(start, start + batch_size)
        xb = np.ascontiguousarray(X[sl], dtype=kdtype)
        if normalizer is not None:
            xb = np.ascontiguousarray(normalizer(xb))
        yb = np.ascontiguousarray(Y[sl], dtype=kdtype)
        loss, gx = fn(params, xb, yb)
        gx = np.asarray(gx)
        if gx.shape != xb.shape:
            raise ShapeError(f"loss_and_input_grad: gradient has shape {gx.shape} for an input batch "
                             f"of shape {xb.shape}")
        m = len(xb)
        total += float(loss) * m
        grad[sl] = gx * (m / n)
    if normalizer is not None:
        grad /= _sample_shaped(normalizer.std, X.shape[1:])
    return total / n, grad


def fgsm(kernel, params, X, Y, eps, clip=None, *, normalizer=None, batch_size: int = DEFAULT_BATCH_SIZE,
         dtype=None):
    """Fast gradient sign method: ``X + eps * sign(dL/dX)``, clipped to ``clip``.

    ``eps``: a number >= 0, or an array of them broadcastable to one sample's
    shape (a step per feature), in the units of X. ``clip``: ``(lo, hi)``,
    numbers or arrays broadcastable to one sample's shape, or None.
    ``normalizer``: X is raw and the kernel sees ``normalizer(X)``; the
    gradient is chained through it (see :func:`input_gradient`).
    Rows are processed ``batch_size`` at a time; the sign is per example, so
    the result does not depend on the batching. Features whose gradient is
    exactly 0 do not move. Returns an array of X's shape and dtype
    (float64 for integer X).
    """
    eps = _check_eps(eps)
    X = np.asarray(X)
    _, grad = input_gradient(kernel, params, X, Y, normalizer=normalizer, batch_size=batch_size, dtype=dtype)
    out_dtype = X.dtype if np.issubdtype(X.dtype, np.floating) else np.dtype(np.float64)
    X_adv = X.astype(np.float64) + eps * np.sign(grad)
    if clip is not None:
        lo, hi = clip
        if np.any(np.asarray(lo, dtype=float) > np.asarray(hi, dtype=float)):
            raise AttackError(f"clip=({lo!r}, {hi!r}): lower bound above upper bound")
        X_adv = np.clip(X_adv, lo, hi)
    return X_adv.astype(out_dtype)


def gradient_step(kernel, params, X, Y, eps, clip=None, *, normalizer=None,
                  batch_size: int = DEFAULT_BATCH_SIZE, dtype=None):
    """The lectures' gradient method: a step along the normalised gradient,
    ``X + eps sqrt(d) g / ||g||_2`` per example (d features): the same L2 length
    as an FGSM step of ``eps`` (whose every feature moves by eps), all of it
    spent in the gradient's direction. Rows with a zero gradient do not move.
    ``eps``, ``clip``, ``normalizer``: as :func:`fgsm` (eps a number)."""
    eps = _check_eps(eps)
    if not isinstance(eps, float):
        raise AttackError(f"eps={eps!r}: the gradient method takes a single number")
    X = np.asarray(X)
    _, grad = input_gradient(kernel, params, X, Y, normalizer=normalizer, batch_size=batch_size, dtype=dtype)
    flat = grad.reshape(len(X), -1)
    norms = np.linalg.norm(flat, axis=1, keepdims=True)
    direction = np.divide(flat, norms, out=np.zeros_like(flat), where=norms > 0).reshape(X.shape)
    out_dtype = X.dtype if np.issubdtype(X.dtype, np.floating) else np.dtype(np.float64)
    X_adv = X.astype(np.float64) + eps * math.sqrt(flat.shape[1]) * direction
    if clip is not None:
        X_adv = np.clip(X_adv, *clip)
    return X_adv.astype(out_dtype)


# --------------------------------------------------------------------------
# An attack on a trained run


def _checkpoint_file(checkpoint) -> Path:
    path = Path(checkpoint)
    from .runs import CHECKPOINT

    if path.is_dir():
        path = path / CHECKPOINT
        if not path.is_file():
            raise AttackError(f"{checkpoint}: no {CHECKPOINT} in this directory "
                              "(give a run directory written by `symnet train --out DIR`, or its .npz)")
        return path
    if not path.exists():
        raise AttackError(f"{checkpoint}: checkpoint not found "
                          "(give a run directory written by `symnet train --out DIR`, or its .npz)")
    if path.suffix != ".npz":
        raise AttackError(f"{checkpoint}: not a checkpoint (expected a run directory or a .npz file)")
    return path


def _data_name(data) -> str:
    """The name load_dataset gives a data set: a bundled name, or a file's stem."""
    from .data import BUNDLED

    key = str(data)
    return key if key in BUNDLED else os.path.splitext(os.path.basename(key))[0]


def _resolve_data(data, seed, config, where):
    """(data, seed, from_checkpoint): the data set and split seed training used."""
    ck_data, ck_seed = config.get("data"), config.get("seed")
    if data is None:
        if ck_data is None:
            raise AttackError(f"{where} does not record its data set; give --data")
        data = ck_data
    elif ck_data is not None and _data_name(data) != ck_data:
        raise AttackError(f"--data {data} disagrees with {where}, which was trained on {ck_data!r}; "
                          f"attack the data it was trained on (--data {ck_data})")
    if seed is None:
        seed = 0 if ck_seed is None else int(ck_seed)
    else:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise AttackError(f"seed={seed!r} must be an integer >= 0")
        if ck_seed is not None and int(seed) != int(ck_seed):
            raise AttackError(f"--seed {seed} disagrees with {where}, trained with seed {ck_seed}; "
                              "a different split would put training examples into the test set")
    return data, int(seed), ck_data is not None and ck_seed is not None


def _check_params(net, ck_params, where):
    shapes = {k: tuple(v.shape) for k, v in ck_params.items()}
    # Parameters and batch norm's running statistics, as train() checkpoints them.
    want = {k: tuple(v) for k, v in {**net.param_shapes, **net.state_shapes}.items()}
    for name, shape in want.items():
        if name not in shapes:
            raise ShapeError(f"{where}: no parameter {name} (network {net.name} needs {name} of shape {shape})")
        if shapes[name] != shape:
            raise ShapeError(f"{where}: parameter {name} has shape {shapes[name]} but network {net.name} "
                             f"needs {shape}")
    extra = sorted(set(shapes) - set(want))
    if extra:
        raise ShapeError(f"{where}: parameter {extra[0]} is not one of network {net.name}'s "
                         f"({', '.join(want)})")


def _data_range(raw, range_mode):
    """(lo, hi) of the raw data over all splits: scalars, or per-feature arrays."""
    X = np.concatenate([raw.X_train, raw.X_val, raw.X_test]).astype(np.float64)
    if range_mode == "global":
        return float(X.min()), float(X.max())
    return X.min(axis=0), X.max(axis=0)


def _source_model(spec, checkpoint, ds_name, seed, kernel=None):
    """(kernel, params, normalizer) of the run that crafts a transfer attack's examples."""
    from .data import Normalizer
    from .network import Network
    from .runs import load_checkpoint
    from .spec import load
    from .train import _default_kernel

    net = spec if isinstance(spec, Network) else load(spec)
    path = _checkpoint_file(checkpoint)
    where = f"source checkpoint {path}"
    ck = load_checkpoint(path, net.legacy_names())
    config = ck.meta.get("config", {}) if isinstance(ck.meta, dict) else {}
    fp = config.get("fingerprint")
    if fp is not None and fp != net.fingerprint():
        raise SpecError(f"{where} was written for a different network spec ({config.get('network', '?')}) "
                        f"than {net.name}; give its spec with --source-spec")
    _check_params(net, ck.params, where)
    if config.get("data") not in (None, ds_name) or config.get("seed") not in (None, seed):
        raise AttackError(f"{where} was trained on {config.get('data')!r} with seed {config.get('seed')}, "
                          f"the attacked run on {ds_name!r} with seed {seed}; a transfer attack needs the same "
                          "data and split")
    normalizer = None if ck.norm_mean is None else Normalizer(mean=ck.norm_mean, std=ck.norm_std)
    params = {k: np.ascontiguousarray(v, dtype=np.dtype(net.dtype)) for k, v in ck.params.items()}
    return (kernel or _default_kernel(net)), params, normalizer, net.dtype


def run_attack(spec, checkpoint, data=None, eps: float = 0.1, seed: int | None = None, *,
               range_mode: str = "global", batch_size: int = DEFAULT_BATCH_SIZE, kernel=None,
               method: str = "fgsm", source_spec=None, source_checkpoint=None, source_kernel=None) -> dict:
    """FGSM on the test split of a trained run; returns a report (a JSON-ready dict).

    ``spec``: a spec file or a :class:`symnet.network.Network`; ``checkpoint``:
    a run directory written by ``symnet train --out DIR`` or its
    ``checkpoint.npz``. ``data`` and ``seed`` default to the ones the
    checkpoint records (the run's configuration), so the test split is the one
    training held out; given ones must agree with them. ``eps`` is a fraction
    of the raw data range (see the module docstring); ``range_mode`` is
    ``global`` (one range for all features, e.g. pixels) or ``feature``.

    ``method``: fgsm or gradient (:func:`gradient_step`). ``source_checkpoint``
    (and ``source_spec``, default ``spec``): a black-box transfer attack, the
    examples crafted on that run's model and tested on this one.

    The report holds clean and perturbed accuracy and loss on the test split,
    ``flipped`` (test examples whose predicted class changed), ``n_test``,
    ``eps``, ``eps_raw`` (the step in raw units) and the data range.
    """
    from .data import Normalizer, load_dataset
    from .network import Network
    from .runs import load_checkpoint
    from .train import _check_data, _default_kernel, evaluate, predict_labels

    eps = _check_eps(eps)
    if not isinstance(eps, float):
        raise AttackError(f"eps={eps!r} must be a single number")
    if range_mode not in RANGE_MODES:
        raise AttackError(f"range={range_mode!r} must be one of {', '.join(RANGE_MODES)}")
    batch_size = _check_batch_size(batch_size)
    if method not in METHODS:
        raise AttackError(f"method={method!r} must be one of {', '.join(METHODS)}")
    if isinstance(spec, Network):
        net = spec
    else:
        from .spec import load

        net = load(spec)

    path = _checkpoint_file(checkpoint)
    where = f"checkpoint {path}"
    ck = load_checkpoint(path)
    config = ck.meta.get("config", {}) if isinstance(ck.meta, dict) else {}
    fp = config.get("fingerprint")
    rates = config.get("dropout_rates") or []
    if fp is not None and fp != net.fingerprint() and len(rates) == 1:
        # Trained with --dropout: the same network plus dropout layers (off when attacking).
        from .train import with_dropout
        try:
            dropped = with_dropout(net, float(rates[0]))
        except SymnetError:
            dropped = net
        if dropped.fingerprint() == fp:
            net = dropped
    if fp is not None and fp != net.fingerprint():
        raise SpecError(f"{where} was written for a different network spec "
                        f"({config.get('network', '?')}) than {net.name}")
    if ck.meta.get("numbering") is None and net.legacy_names():
        ck = load_checkpoint(path, net.legacy_names())      # written before the one numbering
    _check_params(net, ck.params, where)
    data, seed, from_checkpoint = _resolve_data(data, seed, config, where)

    dtype = np.dtype(net.dtype)
    options = dict(seed=seed, image=len(net.input_shape) == 3,
                   binary_single_output=tuple(net.output_shape) == (1,))
    normalized = ck.norm_mean is not None
    ds = load_dataset(data, dtype=net.dtype, normalize=config.get("normalize", "standard") if normalized else False,
                      **options)
    _check_data(net, ds)
    if len(ds.X_test) == 0:
        raise DataError(f"data {ds.name}: the test split is empty; nothing to attack")
    normalizer = None
    if normalized:
        normalizer = Normalizer(mean=ck.norm_mean, std=ck.norm_std)
        fitted = ds.normalizer
        same = (fitted.mean.shape == normalizer.mean.shape and np.allclose(fitted.mean, normalizer.mean)
                and np.allclose(fitted.std, normalizer.std))
        if not same:
            raise AttackError(f"{where} was trained on different data than {data} with seed {seed} "
                              "(normaliser statistics differ)")
    # The same split in raw units (float64, exact): where the step is taken.
    raw = load_dataset(data, dtype="float64", normalize=False, **options)
    lo, hi = _data_range(raw, range_mode)
    if range_mode == "feature":
        lo = lo.reshape(net.input_shape)
        hi = hi.reshape(net.input_shape)
    eps_raw = eps * (np.asarray(hi) - np.asarray(lo)) if range_mode == "feature" else eps * (hi - lo)

    if kernel is None:
        kernel = _default_kernel(net, calls=("forward_and_loss", "loss_and_input_grad"), batch_size=batch_size)
    _input_grad_function(kernel)
    params = {k: np.ascontiguousarray(v, dtype=dtype) for k, v in ck.params.items()}
    loss_name = net.loss.name
    Y_test = np.ascontiguousarray(ds.Y_test, dtype=dtype)

    clean_loss, clean_acc, clean_out = evaluate(kernel, params, np.ascontiguousarray(ds.X_test, dtype=dtype),
                                                Y_test, ds.y_test, loss_name)
    craft = fgsm if method == "fgsm" else gradient_step
    if source_checkpoint is not None:
        s_kernel, s_params, s_norm, s_dtype = _source_model(source_spec or spec, source_checkpoint, ds.name, seed,
                                                            source_kernel)
        X_adv_raw = craft(s_kernel, s_params, raw.X_test, np.ascontiguousarray(ds.Y_test, dtype=s_dtype), eps_raw,
                          clip=(lo, hi), normalizer=s_norm, batch_size=batch_size, dtype=s_dtype)
    else:
        X_adv_raw = craft(kernel, params, raw.X_test, Y_test, eps_raw, clip=(lo, hi), normalizer=normalizer,
                          batch_size=batch_size, dtype=dtype)
    X_adv = np.ascontiguousarray(X_adv_raw, dtype=dtype)
    if normalizer is not None:
        X_adv = np.ascontiguousarray(normalizer(X_adv))
    adv_loss, adv_acc, adv_out = evaluate(kernel, params, X_adv, Y_test, ds.y_test, loss_name)

    pred_clean = predict_labels(clean_out, loss_name)
    pred_adv = predict_labels(adv_out, loss_name)
    y = np.asarray(ds.y_test)
    flipped = int(np.sum(pred_clean != pred_adv))
    broken = int(np.sum((pred_clean == y) & (pred_adv != y)))
    moved = np.abs(X_adv_raw.astype(np.float64) - raw.X_test)
    report = {
        "attack": method,
        "source_checkpoint": None if source_checkpoint is None else str(_checkpoint_file(source_checkpoint)),
        "network": net.name,
        "checkpoint": str(path),
        "epoch": ck.epoch,
        "data": ds.name,
        "seed": seed,
        "data_and_seed_from_checkpoint": from_checkpoint,
        "split": "test",
        "n_test": int(len(y)),
        "eps": eps,
        "eps_units": "fraction of the raw data range, before normalisation",
        "range_mode": range_mode,
        "data_range": [lo, hi] if range_mode == "global" else None,
        "eps_raw": float(eps_raw) if range_mode == "global" else None,
        "max_abs_change_raw": float(moved.max()) if moved.size else 0.0,
        "clean_accuracy": float(clean_acc),
        "perturbed_accuracy": float(adv_acc),
        "clean_loss": _finite(clean_loss),
        "perturbed_loss": _finite(adv_loss),
        "flipped": flipped,
        "correct_to_wrong": broken,
    }
    return report


def _finite(value):
    value = float(value)
    return value if math.isfinite(value) else None


def format_report(report: dict) -> str:
    """The lines ``symnet attack`` prints."""
    eps = report["eps"]
    if report["range_mode"] == "global":
        lo, hi = report["data_range"]
        step = f"eps {eps:g} of the data range [{lo:g}, {hi:g}] = {report['eps_raw']:g} raw units"
    else:
        step = f"eps {eps:g} of each feature's range"
    source = "from the checkpoint" if report["data_and_seed_from_checkpoint"] else "as given"
    n = report["n_test"]
    name = {"fgsm": "FGSM", "gradient": "gradient method"}[report.get("attack", "fgsm")]
    if report.get("source_checkpoint"):
        name += f" (transfer: examples crafted on {report['source_checkpoint']})"
    return "\n".join([
        f"{name} on {report['network']} ({report['checkpoint']}): data {report['data']}, seed {report['seed']} "
        f"({source}), test split of {n} examples, {step}",
        f"clean accuracy: {report['clean_accuracy']:.4f}",
        f"perturbed accuracy: {report['perturbed_accuracy']:.4f}",
        f"flipped predictions: {report['flipped']} of {n} ({report['correct_to_wrong']} correct -> wrong)",
    ])


# --------------------------------------------------------------------------
# Command line

DESCRIPTION = (
    "Fast gradient sign method on a trained run: every test input moves eps * sign(dL/dx), "
    "with dL/dx the input gradient derived by SymPy (the generated kernel's loss_and_input_grad), "
    "and clean and perturbed test accuracy are reported. eps is a fraction of the data's raw value "
    "range, applied before the training normaliser (the gradient is chained through it, "
    "dL/dx_raw = dL/dx_norm / std), and perturbed inputs are clipped to that range: for the digits "
    "(pixels 0..16) eps 0.1 moves each pixel by 1.6 grey levels. The data set and split seed default "
    "to the ones the checkpoint records."
)


def add_attack_arguments(parser):
    """Add ``symnet attack``'s options to an argparse (sub)parser."""
    parser.description = DESCRIPTION
    parser.add_argument("spec", help="network spec file (.toml) the checkpoint was trained from")
    parser.add_argument("--checkpoint", required=True, metavar="PATH",
                        help="run directory written by `symnet train --out DIR`, or its checkpoint.npz")
    parser.add_argument("--data", default=None,
                        help="data set the run was trained on (default: the one the checkpoint records; "
                             "an error if it disagrees)")
    parser.add_argument("--eps", type=float, default=0.1,
                        help="step size as a fraction of the raw data range, before normalisation "
                             "(digits: 0.1 = 1.6 of 16 grey levels); default 0.1")
    parser.add_argument("--seed", type=int, default=None,
                        help="split seed (default: the checkpoint's; an error if it disagrees)")
    parser.add_argument("--range", dest="range_mode", choices=RANGE_MODES, default="global",
                        help="data range for eps and clipping: one for all features (global, e.g. pixels) "
                             "or per feature (feature, for tabular data in mixed units)")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                        help=f"rows per gradient batch (default {DEFAULT_BATCH_SIZE})")
    parser.add_argument("--method", choices=METHODS, default="fgsm",
                        help="fgsm: eps * sign(gradient); gradient: a step of the same L2 length along the "
                             "normalised gradient")
    parser.add_argument("--source-checkpoint", default=None, metavar="PATH",
                        help="transfer attack: craft the examples on this run, test them on --checkpoint's")
    parser.add_argument("--source-spec", default=None, metavar="SPEC",
                        help="spec of --source-checkpoint's network (default: the attacked spec)")
    parser.add_argument("--out", default=None, metavar="FILE.json", help="also write the report as JSON")
    return parser


def cli_attack(args) -> int:
    """``symnet attack``: run :func:`run_attack`, print the report, optionally write JSON. Returns 0."""
    from .fileio import write_atomic

    eps = _check_eps(args.eps, "--eps")
    report = run_attack(args.spec, args.checkpoint, data=args.data, eps=eps, seed=args.seed,
                        range_mode=getattr(args, "range_mode", "global"),
                        batch_size=getattr(args, "batch_size", DEFAULT_BATCH_SIZE),
                        method=getattr(args, "method", "fgsm"), source_spec=getattr(args, "source_spec", None),
                        source_checkpoint=getattr(args, "source_checkpoint", None))
    out = getattr(args, "out", None)
    if out:
        try:
            write_atomic(out, json.dumps(report, indent=2) + "\n")
        except OSError as e:
            raise AttackError(f"--out {out}: cannot write the report ({e.strerror or e})") from None
    print(format_report(report))
    if out:
        print(f"report: {out}")
    return 0
