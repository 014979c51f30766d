"""A training run's directory: checkpoint, metrics and plots.

Layout of ``out/``::

    checkpoint.npz       parameters W1, b1, ... (PyTorch's shapes), optimiser
                         state ``opt.*``, ``epoch``, the mini-batch rng state
                         ``rng``, ``norm.mean`` / ``norm.std`` and ``meta`` (JSON)
    metrics.json         test metrics, per-epoch history, run configuration
    loss.png             train / validation loss per epoch
    accuracy.png         train / validation accuracy per epoch
    confusion_matrix.png test confusion matrix
    roc.png              test ROC curve (two-class tasks only)

Every file is written atomically (:mod:`symnet.fileio`), so an interrupted
run never leaves a half-written checkpoint behind. A training holds the run
folder's lock file ``.lock`` (an advisory ``flock``, released by the kernel
when the process ends, even by SIGKILL): a second training into the same
folder is refused while the first runs, and a new holder sweeps the temp
files an interrupted write left. Plots use matplotlib's Agg canvas directly
(no pyplot, no global backend switch).
"""

from __future__ import annotations

import json
import os
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .fileio import atomic_file, check_writable_dir, sweep_temp_files

import numpy as np

from .errors import TrainingError

CHECKPOINT = "checkpoint.npz"
LOCK = ".lock"
METRICS = "metrics.json"
OPT_PREFIX = "opt."
BEST_PREFIX = "best."
NORM_MEAN = "norm.mean"
NORM_STD = "norm.std"
# Parameter names follow the layer's position (W6 is layer 6's); checkpoints
# without this mark counted trainable layers only and are renamed on load.
NUMBERING = "layer"
# Keys of a checkpoint that are not parameters.
_RESERVED = ("epoch", "rng", "meta", NORM_MEAN, NORM_STD)


# --------------------------------------------------------------------------
# The run folder: one writer at a time


@contextmanager
def open_run(out):
    """Hold run folder ``out`` for one training: create it, prove it is
    writable, take its lock (or fail with one line naming the folder), and
    remove stale temp files. ``out=None`` holds nothing."""
    if out is None:
        yield None
        return
    try:
        import fcntl
    except ImportError:             # not POSIX: no lock, the folder is still checked
        yield check_writable_dir(out, "run folder")
        return

    out = check_writable_dir(out, "run folder")
    lock_path = out / LOCK
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise TrainingError(f"run folder {out}: cannot create its lock file ({exc.strerror})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "another process"
            raise TrainingError(f"run folder {out} is in use by a training still running (pid {holder}); "
                                "wait for it, stop it, or give another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        sweep_temp_files(out)
        yield out
    finally:
        os.close(fd)            # releases the lock


# --------------------------------------------------------------------------
# Atomic writes


def write_json(path, obj) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    text = json.dumps(_jsonable(obj), indent=2, sort_keys=False)
    with atomic_file(Path(path)) as f:
        f.write((text + "\n").encode("utf-8"))


def _jsonable(obj):
    """numpy scalars/arrays and tuples turned into plain JSON types; NaN/inf to None."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


# --------------------------------------------------------------------------
# Checkpoints


@dataclass
class Checkpoint:
    """What a checkpoint holds, as read back by :func:`load_checkpoint`."""

    params: dict
    optimizer: dict  # optimiser state_dict (keys without the 'opt.' prefix)
    epoch: int  # completed epochs
    rng_state: dict | None  # numpy bit generator state
    norm_mean: np.ndarray | None = None
    norm_std: np.ndarray | None = None
    meta: dict = field(default_factory=dict)
    best_params: dict | None = None


def save_checkpoint(
    out,
    params: dict,
    optimizer_state: dict,
    epoch: int,
    rng_state: dict | None = None,
    normalizer=None,
    meta: dict | None = None,
    best_params: dict | None = None,
) -> Path:
    """Write ``out/checkpoint.npz`` atomically; returns its path.

    Parameters keep their names (W1, b1, ...) and PyTorch's shapes, so
    ``torch.from_numpy(ckpt["W1"])`` is a Linear layer's ``weight``.
    """
    arrays = {name: np.asarray(value) for name, value in params.items()}
    for key, value in optimizer_state.items():
        arrays[OPT_PREFIX + key] = np.asarray(value)
    if best_params is not None:
        for name, value in best_params.items():
            arrays[BEST_PREFIX + name] = np.asarray(value)
    arrays["epoch"] = np.asarray(int(epoch))
    arrays["rng"] = np.asarray(json.dumps(rng_state) if rng_state is not None else "")
    arrays["meta"] = np.asarray(json.dumps(_jsonable({**(meta or {}), "numbering": NUMBERING})))
    if normalizer is not None:
        arrays[NORM_MEAN] = np.asarray(normalizer.mean)
        arrays[NORM_STD] = np.asarray(normalizer.std)
    path = Path(out) / CHECKPOINT
    with atomic_file(path) as f:
        np.savez(f, **arrays)
    return path


def _first_line(exc) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def _rename(key: str, legacy_names: dict) -> str:
    """'W3' or 'm.W3' -> today's name of that parameter (the last dotted part)."""
    head, _, name = key.rpartition(".")
    new = legacy_names.get(name, name)
    return f"{head}.{new}" if head else new


def load_checkpoint(out, legacy_names: dict | None = None) -> Checkpoint:
    """Read ``out/checkpoint.npz`` (or a path to the .npz itself).

    ``legacy_names`` (``Network.legacy_names()``) renames the parameters of a
    checkpoint written before the one numbering (W3 of the third trainable
    layer -> W<its position>)."""
    path = Path(out)
    if path.is_dir() or path.suffix != ".npz":
        path = path / CHECKPOINT
    if not path.is_file():
        raise TrainingError(f"{path}: no checkpoint to resume from (train without --resume first)")
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise TrainingError(f"{path}: not a readable checkpoint ({_first_line(e)}); "
                            "it may be truncated: train again without --resume") from None
    if "epoch" not in data:
        raise TrainingError(f"{path}: not a symnet checkpoint (no 'epoch' entry)")
    meta_text = str(data["meta"]) if "meta" in data else "{}"
    try:
        meta = json.loads(meta_text)
    except ValueError:
        raise TrainingError(f"{path}: not a symnet checkpoint (its 'meta' entry is not JSON)") from None
    if legacy_names and meta.get("numbering") != NUMBERING:
        data = {_rename(k, legacy_names): v for k, v in data.items()}
    params, opt, best = {}, {}, {}
    for key, value in data.items():
        if key.startswith(OPT_PREFIX):
            v = value.item() if value.ndim == 0 else value
            opt[key[len(OPT_PREFIX):]] = str(v) if isinstance(v, str) else v
        elif key.startswith(BEST_PREFIX):
            best[key[len(BEST_PREFIX):]] = value
        elif key not in _RESERVED:
            params[key] = value
    rng_text = str(data["rng"]) if "rng" in data else ""
    return Checkpoint(
        params=params,
        optimizer=opt,
        epoch=int(data["epoch"]),
        rng_state=json.loads(rng_text) if rng_text else None,
        norm_mean=data.get(NORM_MEAN),
        norm_std=data.get(NORM_STD),
        meta=meta,
        best_params=best or None,
    )


# --------------------------------------------------------------------------
# Plots


def _figure(width=5.0, height=3.6):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save_figure(fig, path: Path) -> Path:
    fig.tight_layout()
    with atomic_file(path) as f:
        fig.savefig(f, format="png")
    return path


def plot_curves(out, history: dict, key: str, ylabel: str, filename: str):
    """Train and validation curves of ``history['train_'+key]`` / ``['val_'+key]``."""
    epochs = history.get("epoch") or list(range(1, len(history.get(f"train_{key}", [])) + 1))
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    for split, style in (("train", "-o"), ("val", "-s")):
        values = history.get(f"{split}_{key}") or []
        pts = [(e, v) for e, v in zip(epochs, values) if v is not None and np.isfinite(v)]
        if pts:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, style, markersize=3, label="validation" if split == "val" else split)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend()
    return _save_figure(fig, Path(out) / filename)


def plot_confusion_matrix(out, cm, labels=None, filename="confusion_matrix.png", table=None):
    """Confusion matrix as an image with the counts written in each cell; a
    binary task's metric table (metrics.binary_table) as a panel beside it."""
    cm = np.asarray(cm)
    n = cm.shape[0]
    labels = [str(v) for v in (labels if labels is not None else range(n))]
    size = max(3.6, 0.45 * n + 2.0)
    fig = _figure(size + 0.8 + (3.2 if table else 0), max(size, 4.6 if table else 0))
    ax = fig.add_subplot(1, 2 if table else 1, 1)
    im = ax.imshow(cm, cmap="Blues")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(n), labels=labels)
    ax.set_yticks(range(n), labels=labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    half = cm.max() / 2.0 if cm.size else 0
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if cm[i, j] > half else "black")
    ax.set_title("test confusion matrix")
    if table:
        from .pictures import draw_binary_table
        draw_binary_table(fig.add_subplot(1, 2, 2), table)
    return _save_figure(fig, Path(out) / filename)


def plot_roc(out, fpr, tpr, auc=None, filename="roc.png"):
    """ROC curve with the chance diagonal."""
    fig = _figure(4.2, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    label = "ROC" if auc is None else f"ROC (AUC = {auc:.3f})"
    ax.plot(fpr, tpr, "-", label=label)
    ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=1, label="chance")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title("test ROC curve")
    return _save_figure(fig, Path(out) / filename)


def write_plots(out, history: dict, confusion=None, labels=None, roc=None, table=None) -> list[Path]:
    """All plots of a run; ``roc`` is (fpr, tpr, auc) for two-class tasks."""
    paths = [
        plot_curves(out, history, "loss", "loss", "loss.png"),
        plot_curves(out, history, "acc", "accuracy", "accuracy.png"),
    ]
    if confusion is not None:
        paths.append(plot_confusion_matrix(out, confusion, labels, table=table))
    if roc is not None:
        paths.append(plot_roc(out, *roc))
    return paths
