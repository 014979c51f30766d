"""Pictures of a training run that a person would rather look at than read.

- ``grad_norms.png``: each weight's gradient norm per epoch on a log scale,
  one line per layer (the vanishing-gradient picture of deep sigmoid nets);
- ``filters.png``: the first conv layer's learned kernels as a grid;
- ``feature_maps.png``: every conv layer's outputs for one test image;
- the binary confusion-matrix table as a panel beside the confusion matrix.

Figures use matplotlib's Agg canvas and atomic writes, as :mod:`symnet.runs`.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

GRAD_NORMS = "grad_norms.png"
FILTERS = "filters.png"
FEATURE_MAPS = "feature_maps.png"


# --------------------------------------------------------------------------- gradient norms

class GradNormMeter:
    """Mean over an epoch's mini-batches of ||dL/dW<l>|| (Frobenius norm of the
    data loss's gradient, before any penalty) for every weight W<l>. When the
    optimiser runs inside the generated step (fused), only each epoch's first
    batch hands its gradients back, so the figure is that batch's."""

    def __init__(self):
        self.sums: dict[str, float] = {}
        self.count = 0

    def add(self, grads: dict) -> None:
        from .train import is_weight

        for k, g in grads.items():
            if is_weight(k):
                g = np.asarray(g).ravel()
                self.sums[k] = self.sums.get(k, 0.0) + math.sqrt(float(np.dot(g, g)))
        self.count += 1

    def epoch(self) -> dict:
        """The epoch's means, ordered by layer, then reset."""
        out = {k: self.sums[k] / self.count for k in sorted(self.sums, key=lambda k: int(k[1:]))}
        self.sums, self.count = {}, 0
        return out


def grad_norm_series(history: dict) -> dict:
    """{"W1": [epoch 1, epoch 2, ...], ...} from history["grad_norm"] (one dict per epoch)."""
    series: dict[str, list] = {}
    for row in history.get("grad_norm") or []:
        for k, v in (row or {}).items():
            series.setdefault(k, []).append(v)
    return series


def plot_grad_norms(out, history: dict, filename: str = GRAD_NORMS) -> Path | None:
    from .runs import _save_figure

    fig = grad_norms_figure(history)
    return None if fig is None else _save_figure(fig, Path(out) / filename)


def grad_norms_figure(history: dict):
    """The figure of plot_grad_norms (None without gradient norms in history)."""
    from .runs import _figure

    series = grad_norm_series(history)
    if not series:
        return None
    fig = _figure(5.4, 3.8)
    ax = fig.add_subplot(1, 1, 1)
    for k, values in series.items():
        epochs = range(1, len(values) + 1)
        ax.plot(epochs, np.maximum(values, np.finfo(float).tiny), "-o", markersize=3,
                label=f"layer {k[1:]} ({k})")
    ax.set_yscale("log")
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("||dL/dW|| per epoch")
    ax.set_title("gradient norm per layer")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return fig


# --------------------------------------------------------------------------- confusion table panel

def draw_binary_table(ax, table: dict) -> None:
    """The lecture's binary table as text in an axes without frame."""
    from .metrics import BINARY_TABLE

    ax.axis("off")
    rows = [["TP / FP", f"{table['tp']} / {table['fp']}"], ["FN / TN", f"{table['fn']} / {table['tn']}"]]
    for key, (abbr, _) in BINARY_TABLE.items():
        v = table.get(key)
        rows.append([abbr, "undefined" if v is None else f"{v:.3g}"])
    t = ax.table(cellText=rows, colLabels=["metric", "value"], loc="center", cellLoc="left")
    t.auto_set_font_size(False)
    t.set_fontsize(8)
    t.scale(1.0, 1.15)
    ax.set_title("binary table (positive = 1)", fontsize=9)


# --------------------------------------------------------------------------- conv pictures

def _grid(n: int) -> tuple[int, int]:
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def plot_filters(out, W, title: str = "first conv layer's kernels", filename: str = FILTERS) -> Path:
    """One panel per kernel W[f] (channel mean for several input channels), each
    scaled to its own range: what the filter responds to."""
    from .runs import _save_figure

    return _save_figure(filters_figure(W, title), Path(out) / filename)


def filters_figure(W, title: str = "first conv layer's kernels"):
    """The figure of plot_filters: one image axes per kernel."""
    from .runs import _figure

    W = np.asarray(W, dtype=float)
    kernels = W.mean(axis=1) if W.shape[1] > 1 else W[:, 0]
    rows, cols = _grid(len(kernels))
    fig = _figure(1.1 * cols + 0.6, 1.1 * rows + 0.6)
    for f, k in enumerate(kernels):
        ax = fig.add_subplot(rows, cols, f + 1)
        ax.imshow(k, cmap="gray", interpolation="nearest")
        ax.set_title(f"{f}", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=9)
    return fig


def conv_feature_maps(net, params: dict, x) -> list[tuple[str, np.ndarray]]:
    """[(label, a^(l) of one image, shape (F, H, W)), ...] for every conv layer,
    computed with symnet's runtime conv and pooling kernels; stops at the first
    layer it cannot evaluate alone (dense, flatten, batch norm)."""
    from .activations import X
    from .conv_runtime import conv_ops, conv2d
    from .numeric import lambdify

    a = np.asarray(x, dtype=np.float64)[None]
    maps = []
    ops = conv_ops("float64")
    for p in net.placed:
        layer = p.layer
        if layer.type == "conv2d":
            z = conv2d(a, params[p.params["W"]], params[p.params["b"]], layer.stride, layer.pads)
            g = lambdify(X, layer.activation.expr)
            a = np.asarray(g(z), dtype=np.float64) * np.ones_like(z)
            maps.append((f"layer {p.position}: {layer.describe()}", a[0]))
        elif layer.type in ("maxpool2d", "avgpool2d"):
            out = np.empty((1, *p.out_shape), np.float64)
            if layer.type == "maxpool2d":
                ops.maxpool2d_forward(a, layer.size, layer.stride, out, np.empty(out.shape, np.int64))
            else:
                ops.avgpool2d_forward(a, layer.size, layer.stride, out)
            a = out
        elif layer.type == "dropout":
            continue            # identity at evaluation
        else:
            break
    return maps


def plot_feature_maps(out, net, params: dict, x, filename: str = FEATURE_MAPS) -> Path | None:
    """The input image, then one row of channel images per conv layer."""
    from .runs import _save_figure

    fig = feature_maps_figure(net, params, x)
    return None if fig is None else _save_figure(fig, Path(out) / filename)


def feature_maps_figure(net, params: dict, x):
    """The figure of plot_feature_maps: the input, then each conv layer's channels."""
    from .runs import _figure

    maps = conv_feature_maps(net, params, x)
    if not maps:
        return None
    cols = min(8, max(m.shape[0] for _, m in maps))
    layer_rows = [math.ceil(m.shape[0] / cols) for _, m in maps]
    rows = 1 + sum(layer_rows)
    fig = _figure(1.0 * cols + 0.6, 1.05 * rows + 0.6)
    ax = fig.add_subplot(rows, cols, 1)
    img = np.asarray(x, dtype=float)
    ax.imshow(img[0] if img.shape[0] == 1 else np.moveaxis(img[:3], 0, -1).clip(0, 1), cmap="gray")
    ax.set_title("input", fontsize=7, loc="left")
    ax.axis("off")
    row = 1
    for (label, m), n_rows in zip(maps, layer_rows):
        for c in range(m.shape[0]):
            ax = fig.add_subplot(rows, cols, row * cols + c + 1)
            ax.imshow(m[c], cmap="viridis", interpolation="nearest")
            ax.axis("off")
            if c == 0:
                ax.set_title(label, fontsize=7, loc="left")
        row += n_rows
    fig.suptitle("feature maps of one test image", fontsize=9)
    return fig


def write_run_pictures(out, net, params: dict, history: dict, X_test) -> list[Path]:
    """The pictures a run folder gets besides runs.write_plots' curves."""
    paths = [plot_grad_norms(out, history)]
    first = None if net is None else next((p for p in net.placed if p.layer.type == "conv2d"), None)
    if first is not None:
        paths.append(plot_filters(out, params[first.params["W"]],
                                  f"layer {first.position}'s learned kernels"))
        if len(X_test):
            paths.append(plot_feature_maps(out, net, params, X_test[0]))
    return [p for p in paths if p is not None]
