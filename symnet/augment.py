"""Data augmentation of training batches (``--augment flip,crop,rotate,noise``).

Each kind is one random transformation per example, drawn from the training
loop's own generator (the one that shuffles the mini-batches and is saved in
the checkpoint), so a run is reproducible from its seed and ``--resume``
continues bit for bit. Only training batches are augmented; evaluation never is.

- flip:   mirror left-right with probability 1/2 (images);
- crop:   zero-pad PAD pixels on each side, then cut a random window of the
          original size (a shift by up to PAD pixels; images);
- rotate: rotate by a uniform angle in [-MAX_DEGREES, MAX_DEGREES] about the
          centre, bilinear, zero outside (images; scipy.ndimage.rotate);
- noise:  add N(0, NOISE_STD^2) to every feature (in normalised units; any input).
"""
from __future__ import annotations

import numpy as np

from .errors import TrainingError

KINDS = ("flip", "crop", "rotate", "noise")
IMAGE_ONLY = ("flip", "crop", "rotate")
PAD = 1
MAX_DEGREES = 15.0
NOISE_STD = 0.1


def parse_kinds(text) -> tuple:
    """'flip,crop' -> ('flip', 'crop'); None or '' -> ()."""
    if not text:
        return ()
    kinds = tuple(k.strip() for k in (text.split(",") if isinstance(text, str) else text) if k.strip())
    for k in kinds:
        if k not in KINDS:
            raise TrainingError(f"--augment {k!r}: choose from {', '.join(KINDS)}")
    if len(set(kinds)) != len(kinds):
        raise TrainingError(f"--augment {','.join(kinds)}: a kind is named twice")
    return kinds


def check_input(kinds, input_shape) -> None:
    image_kinds = [k for k in kinds if k in IMAGE_ONLY]
    if image_kinds and len(input_shape) != 3:
        raise TrainingError(f"--augment {','.join(image_kinds)}: needs image inputs (channels, height, width), "
                            f"the network's input is {tuple(input_shape)}; only 'noise' works on vectors")


def augment(X: np.ndarray, kinds, rng: np.random.Generator) -> np.ndarray:
    """A new batch: each kind applied in KINDS order, the random draws from rng."""
    if not kinds:
        return X
    out = np.array(X, copy=True)
    n = len(out)
    if "flip" in kinds:
        flip = rng.random(n) < 0.5
        out[flip] = out[flip][..., ::-1]
    if "crop" in kinds:
        h, w = out.shape[2:]
        padded = np.pad(out, ((0, 0), (0, 0), (PAD, PAD), (PAD, PAD)))
        dy = rng.integers(0, 2 * PAD + 1, n)
        dx = rng.integers(0, 2 * PAD + 1, n)
        for i in range(n):
            out[i] = padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
    if "rotate" in kinds:
        from scipy.ndimage import rotate

        angles = rng.uniform(-MAX_DEGREES, MAX_DEGREES, n)
        for i in range(n):
            out[i] = rotate(out[i], angles[i], axes=(1, 2), reshape=False, order=1, mode="constant", cval=0.0)
    if "noise" in kinds:
        out += (NOISE_STD * rng.standard_normal(out.shape)).astype(out.dtype)
    return out
