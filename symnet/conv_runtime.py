"""symnet's runtime conv/pool kernels as an importable module, for code outside
the generated kernels (image filters, feature-map pictures).

The source is whatever ``symnet.codegen.conv_ops.render_conv_ops`` returns (the
same text generated kernels embed), written once per content hash into the
kernel cache and imported like a generated kernel, so Numba's cache works.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=None)
def conv_ops(dtype: str = "float64"):
    """The module with conv2d_forward, maxpool2d_forward, ... for ``dtype``."""
    from .codegen.conv_ops import render_conv_ops
    from .codegen.generate import default_cache_dir, load_module
    from .fileio import write_atomic

    text = render_conv_ops(dtype)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    path = default_cache_dir() / f"conv_ops_{dtype}_{digest}.py"
    if not path.exists():
        write_atomic(path, text)
    return load_module(path)


def conv2d(x, W, b=None, stride: int = 1, pads=(0, 0)):
    """Cross-correlation of a batch x (n, C, H, W) with kernels W (F, C, kh, kw),
    as a conv layer computes it, through symnet's own conv2d_forward."""
    dtype = np.result_type(x, W)
    dtype = np.float32 if dtype == np.float32 else np.float64
    x = np.ascontiguousarray(x, dtype=dtype)
    W = np.ascontiguousarray(W, dtype=dtype)
    b = np.zeros(W.shape[0], dtype) if b is None else np.ascontiguousarray(b, dtype=dtype)
    n, _, h, w = x.shape
    kh, kw = W.shape[2:]
    ph, pw = pads
    out = np.empty((n, W.shape[0], (h + 2 * ph - kh) // stride + 1, (w + 2 * pw - kw) // stride + 1), dtype)
    conv_ops(np.dtype(dtype).name).conv2d_forward(x, W, b, int(stride), int(ph), int(pw), out)
    return out
