"""Numba kernels of convolution, pooling and flatten layers, as source text.

`render_conv_ops(dtype)` renders templates/conv_ops.py.jinja: the template owns
loops and memory; the one number the math supplies (average
pooling's factor 1/(k_h k_w)) is derived by SymPy in symnet.derive.conv and
printed here. The code generator pastes the text into a network's module.

The kernels run on one thread: the generated module's Python API cuts a large
batch into shares and runs those in threads (a prange rendering measured faster
alone but stalled under load and compiled 1.7x longer; see docs/performance.md).

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

from pathlib import Path

TEMPLATE = "conv_ops.py.jinja"
KERNELS = ("conv2d_forward", "conv2d_backward", "maxpool2d_forward", "maxpool2d_backward",
           "avgpool2d_forward", "avgpool2d_backward", "flatten_forward", "flatten_backward")


def template_text() -> str:
    try:
        from importlib.resources import files
        return (files("symnet.templates") / TEMPLATE).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError, TypeError):
        return (Path(__file__).resolve().parents[2] / "templates" / TEMPLATE).read_text(encoding="utf-8")


def render_conv_ops(dtype: str = "float32") -> str:
    """Python source of the @njit(cache=True) conv/pool/flatten kernels for dtype."""
    import jinja2

    from ..derive.conv import avgpool_factor_code, generic_avgpool
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype {dtype!r}: use float32 or float64")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True, autoescape=False)
    factor = generic_avgpool()["factor"]
    return env.from_string(template_text()).render(
        dtype=dtype, avg_factor=avgpool_factor_code(dtype, "size"), avg_factor_doc=str(factor))


__all__ = ["render_conv_ops", "KERNELS", "TEMPLATE"]
