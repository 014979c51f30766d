"""The lectures' named image filters, applied with symnet's own conv kernel
(``symnet filters``).

Each filter is a small matrix K; the output is the same cross-correlation a
conv layer computes, ``out[i, j] = sum_{m,n} K[m, n] x[i + m - p, j + n - p]``
with zero padding p = (k - 1) / 2 ("same" size), run through the runtime
``conv2d_forward`` that generated kernels use (:mod:`symnet.conv_runtime`).
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from .errors import DataError

_G5 = np.array([1, 4, 6, 4, 1])

# name -> (scale, integer matrix, what it does); the filter is scale * matrix.
FILTERS = {
    "identity": (Fraction(1), [[0, 0, 0], [0, 1, 0], [0, 0, 0]], "the image itself"),
    "shift": (Fraction(1), [[0, 0, 0], [0, 0, 1], [0, 0, 0]], "shifted left by one pixel"),
    "box blur": (Fraction(1, 9), np.ones((3, 3), int).tolist(), "mean of each 3x3 window"),
    "gaussian 3x3": (Fraction(1, 16), [[1, 2, 1], [2, 4, 2], [1, 2, 1]], "weighted blur"),
    "gaussian 5x5": (Fraction(1, 256), np.outer(_G5, _G5).tolist(), "wider weighted blur"),
    "sobel x": (Fraction(1), [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], "horizontal gradient: vertical edges"),
    "sobel y": (Fraction(1), [[-1, -2, -1], [0, 0, 0], [1, 2, 1]], "vertical gradient: horizontal edges"),
    "laplacian": (Fraction(1), [[0, 1, 0], [1, -4, 1], [0, 1, 0]], "second derivative: blobs and edges"),
    "edge": (Fraction(1), [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]], "edges in every direction"),
    "sharpen": (Fraction(1), [[0, -1, 0], [-1, 5, -1], [0, -1, 0]], "identity + (identity - blur)"),
}


def kernel(name: str) -> np.ndarray:
    scale, matrix, _ = FILTERS[name]
    return float(scale) * np.array(matrix, dtype=np.float64)


def caption(name: str) -> str:
    """The filter's matrix as text, with its scale in front (e.g. '1/9 x')."""
    scale, matrix, what = FILTERS[name]
    width = max(len(str(v)) for row in matrix for v in row)
    rows = "\n".join(" ".join(f"{v:>{width}}" for v in row) for row in matrix)
    head = f"{name}" + ("" if scale == 1 else f"  ({scale} x)")
    return f"{head}\n{rows}"


def load_grey(path=None, max_side: int = 320) -> np.ndarray:
    """A grey image in [0, 1] (float64, H x W): the file at ``path``, or
    scikit-learn's sample photo china.jpg; shrunk so its longer side is <= max_side."""
    from PIL import Image, UnidentifiedImageError

    if path is None:
        from sklearn.datasets import load_sample_image
        img = Image.fromarray(load_sample_image("china.jpg"))
    else:
        try:
            img = Image.open(Path(path))
            img.load()
        except (OSError, UnidentifiedImageError) as e:
            raise DataError(f"image {path}: cannot be read as an image ({e.__class__.__name__})") from None
    img = img.convert("L")
    if max(img.size) > max_side:
        img.thumbnail((max_side, max_side))
    return np.asarray(img, dtype=np.float64) / 255.0


def apply(image: np.ndarray, name: str) -> np.ndarray:
    """``image`` (H x W) filtered by FILTERS[name], same size, with symnet's conv kernel."""
    from .conv_runtime import conv2d

    k = kernel(name)
    pad = (k.shape[0] - 1) // 2
    return conv2d(np.asarray(image, np.float64)[None, None], k[None, None], None, 1, (pad, pad))[0, 0]


def apply_all(image) -> dict:
    return {name: apply(image, name) for name in FILTERS}


def figure(image):
    """A grid with each filter's result above its matrix."""
    from .runs import _figure

    results = apply_all(image)
    cols = 5
    rows = -(-len(results) // cols)
    h, w = image.shape
    fig = _figure(3.0 * cols, rows * (3.0 * h / w + 1.3))
    for i, (name, out) in enumerate(results.items()):
        ax = fig.add_subplot(rows, cols, i + 1)
        if abs(kernel(name).sum()) < 1e-12:
            # A derivative (entries sum to 0): grey is 0, light positive, dark negative;
            # the 99th percentile sets the contrast so a few strong edges do not wash it out.
            lim = float(np.percentile(np.abs(out), 99)) or 1.0
            ax.imshow(out, cmap="gray", vmin=-lim, vmax=lim)
        else:          # entries sum to 1: an image again, on the input's [0, 1] scale
            ax.imshow(out, cmap="gray", vmin=0.0, vmax=1.0)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(caption(name), fontsize=7, family="monospace")
    fig.suptitle("the lecture's filters, applied by symnet's conv2d kernel", fontsize=10)
    return fig


def cli_filters(args) -> int:
    from .runs import _save_figure

    image = load_grey(args.image)
    out = _save_figure(figure(image), Path(args.output))
    print(f"applied {len(FILTERS)} filters to a {image.shape[0]}x{image.shape[1]} grey image; wrote {out}")
    return 0


def add_filters_arguments(p):
    p.add_argument("image", nargs="?", default=None,
                   help="an image file (default: scikit-learn's sample photo china.jpg), shown in grey")
    p.add_argument("-o", "--output", default="filters.png", help="PNG to write")
