"""The convolution, pooling and flatten kernels as one importable source text.

The kernels themselves are ordinary source, symnet/runtime/conv.py (compiled once
per machine, shared by every generated network). `render_conv_ops(dtype)` gives
the runtime inlined as `--standalone` does (conv.py with the siblings it uses) plus avgpool2d_forward/avgpool2d_backward with the window factor
derived by SymPy (symnet.derive.conv.generic_avgpool) printed for dtype, for
tests and benchmarks that load the kernels on their own.

Kernels (arrays positional; outputs preallocated, C-contiguous, one dtype):
    conv2d_forward(x, W, b, stride, ph, pw, out)     # ph, pw: zero padding rows, columns
    conv2d_backward(x, W, dz, stride, ph, pw, dW, db, dx)     # dx.size == 0: skip dx
    maxpool2d_forward(x, size, stride, out, argmax)        # argmax int64, like out
    maxpool2d_backward(dout, argmax, dx)
    avgpool2d_forward(x, size, stride, out)
    avgpool2d_backward(dout, size, stride, dx)
    flatten_forward(x) -> view (batch, C*H*W); flatten_backward(dout, dx)
"""
from __future__ import annotations

KERNELS = ("conv2d_forward", "conv2d_backward", "maxpool2d_forward", "maxpool2d_backward",
           "avgpool2d_forward", "avgpool2d_backward", "flatten_forward", "flatten_backward")

_AVGPOOL = '''

@njit(cache=True)
def avgpool2d_forward(x, size, stride, out):
    """out = the mean of each size x size window (factor derived by SymPy: {doc})."""
    avgpool2d_scaled_forward(x, size, stride, {factor}, out)


@njit(cache=True)
def avgpool2d_backward(dout, size, stride, dx):
    """dx = each window's gradient times the derived factor, spread over the window."""
    avgpool2d_scaled_backward(dout, size, stride, {factor}, dx)
'''


def render_conv_ops(dtype: str = "float32") -> str:
    """Python source of the @njit(cache=True) conv/pool/flatten kernels for dtype."""
    from ..derive.conv import avgpool_factor_code, generic_avgpool
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype {dtype!r}: use float32 or float64")
    from .runtime_link import inline
    return inline() + _AVGPOOL.format(factor=avgpool_factor_code(dtype), doc=generic_avgpool()["factor"])


__all__ = ["render_conv_ops", "KERNELS"]
