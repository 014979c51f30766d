"""Adversarial training (``--adversarial EPS [--adversarial-ratio R]``).

Goodfellow et al. (2015): train on a mix of clean and FGSM examples made from
the current weights. In every training batch the first ``round(R * batch)``
rows (the batch is already a random draw) are replaced by
``clip(x + step * sign(dL/dx))``, the input gradient coming from the kernel's
``loss_and_input_grad`` (derived by SymPy) through :func:`symnet.attack.fgsm`.

``eps`` has the units of ``symnet attack --eps``: a fraction of the raw data
range [lo, hi], here taken over the training split (min and max of the
un-normalised training inputs). In the normalised units the kernel sees, the
step of feature j is ``eps (hi - lo) / std_j`` and the clip bounds are
``(lo - mean_j) / std_j`` and ``(hi - mean_j) / std_j``. No random numbers
are drawn, so ``--resume`` stays exact.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import TrainingError


class AdversarialMixer:
    def __init__(self, eps: float, ratio: float, X_train: np.ndarray, normalizer=None):
        if not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps > 0):
            raise TrainingError(f"--adversarial {eps!r}: eps must be a number > 0")
        if not (isinstance(ratio, (int, float)) and 0 < ratio <= 1):
            raise TrainingError(f"--adversarial-ratio {ratio!r}: must be in (0, 1]")
        self.eps, self.ratio = float(eps), float(ratio)
        shape = X_train.shape[1:]
        mean = np.zeros(shape) if normalizer is None else np.asarray(normalizer.mean, float).reshape(shape)
        std = np.ones(shape) if normalizer is None else np.asarray(normalizer.std, float).reshape(shape)
        raw = np.asarray(X_train, dtype=np.float64) * std + mean
        lo, hi = float(raw.min()), float(raw.max())
        self.step = self.eps * (hi - lo) / std
        self.clip = ((lo - mean) / std, (hi - mean) / std)

    def mix(self, kernel, params, xb, yb):
        """The batch with its first round(ratio * n) rows replaced by FGSM examples."""
        from .attack import fgsm

        k = int(round(self.ratio * len(xb)))
        if k == 0:
            return xb
        adv = fgsm(kernel, params, xb[:k], yb[:k], self.step, clip=self.clip, batch_size=k, dtype=xb.dtype)
        return np.ascontiguousarray(np.concatenate([adv.astype(xb.dtype), xb[k:]]))
