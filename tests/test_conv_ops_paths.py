"""The code paths of the conv/pool kernels (templates/conv_ops.py.jinja) beyond
tests/test_conv.py's small cases: the blocked products with every remainder
(rows by 2, inner sums by 4), layer sizes like LeNet-5's, many examples and one,
the general im2col (padding, stride) at larger sizes, the 2x2 stride-2 max-pool
path and the general one with many ties, and float32. Reference: plain numpy
(float64), written from the definitions."""
import importlib.util
import sys

import numpy as np
import pytest


def _load(tmp_path_factory, dtype):
    from symnet.codegen.conv_ops import render_conv_ops
    name = f"symnet_test_conv_ops_paths_{dtype}"
    path = tmp_path_factory.mktemp("conv_ops_paths") / f"{name}.py"
    path.write_text(render_conv_ops(dtype))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def ops64(tmp_path_factory):
    mod = _load(tmp_path_factory, "float64")
    yield mod
    sys.modules.pop(mod.__name__, None)


@pytest.fixture(scope="module")
def ops32(tmp_path_factory):
    mod = _load(tmp_path_factory, "float32")
    yield mod
    sys.modules.pop(mod.__name__, None)


# ---------------------------------------------------------------- numpy references
def _windows(xp, m, q, s, ho, wo):
    return xp[:, :, m:m + s * (ho - 1) + 1:s, q:q + s * (wo - 1) + 1:s]


def ref_conv(x, W, b, s, p):
    N, C, H, Wd = x.shape
    F, _, kh, kw = W.shape
    ho, wo = (H + 2 * p - kh) // s + 1, (Wd + 2 * p - kw) // s + 1
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    out = np.zeros((N, F, ho, wo)) + b[None, :, None, None]
    for m in range(kh):
        for q in range(kw):
            out += np.einsum("fc,nchw->nfhw", W[:, :, m, q], _windows(xp, m, q, s, ho, wo))
    return out


def ref_conv_backward(x, W, dz, s, p):
    N, C, H, Wd = x.shape
    F, _, kh, kw = W.shape
    ho, wo = dz.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    dxp = np.zeros_like(xp)
    dW = np.zeros(W.shape)
    for m in range(kh):
        for q in range(kw):
            dW[:, :, m, q] = np.einsum("nfhw,nchw->fc", dz, _windows(xp, m, q, s, ho, wo))
            _windows(dxp, m, q, s, ho, wo)[...] += np.einsum("nfhw,fc->nchw", dz, W[:, :, m, q])
    return dW, dz.sum(axis=(0, 2, 3)), dxp[:, :, p:p + H, p:p + Wd]


def ref_maxpool(x, size, stride):
    """Values and flat in-plane argmax of the first maximum in row-major order."""
    N, C, H, Wd = x.shape
    ho, wo = (H - size) // stride + 1, (Wd - size) // stride + 1
    out, am = np.empty((N, C, ho, wo)), np.empty((N, C, ho, wo), np.int64)
    for n, c, i, j in np.ndindex(N, C, ho, wo):
        win = x[n, c, stride * i:stride * i + size, stride * j:stride * j + size]
        k = int(np.argmax(win))          # numpy: the first maximum in row-major order
        out[n, c, i, j] = win.flat[k]
        am[n, c, i, j] = (stride * i + k // size) * Wd + stride * j + k % size
    return out, am


# ---------------------------------------------------------------- convolution
PATH_CASES = {  # id: (N, C, H, W, F, k, stride, pad)
    # K = C*k*k = 54 (inner sums by 4, remainder 2); F = 16; dx rows K = 54
    "lenet-like": (3, 6, 10, 9, 16, 3, 1, 0),
    "pad-stride": (2, 6, 11, 10, 16, 3, 2, 1),
    # odd F (forward and dW row remainder), K = 25 (remainder 1), odd dx rows
    "odd-filters": (2, 1, 9, 9, 7, 5, 1, 0),
    # K = 2*3*3 = 18 (remainder 2), F = 33; a larger plane with padding
    "wide": (2, 2, 24, 24, 33, 3, 1, 1),
    # kernel 1 (K = C = 3: no block of 4 at all), stride 2
    "one-by-one": (2, 3, 7, 7, 5, 1, 2, 0),
    # many examples, the first layer's shape
    "many-examples": (37, 1, 12, 12, 6, 5, 1, 0),
    "one-example": (1, 3, 8, 8, 4, 3, 1, 1),
}


@pytest.mark.parametrize("case", list(PATH_CASES.values()), ids=list(PATH_CASES))
def test_conv_paths_against_numpy(ops64, case):
    N, C, H, Wd, F, k, s, p = case
    rng = np.random.default_rng(sum(case))
    x, W, b = rng.standard_normal((N, C, H, Wd)), rng.standard_normal((F, C, k, k)), rng.standard_normal(F)
    ho, wo = (H + 2 * p - k) // s + 1, (Wd + 2 * p - k) // s + 1
    out = np.empty((N, F, ho, wo))
    ops64.conv2d_forward(x, W, b, s, p, p, out)
    np.testing.assert_allclose(out, ref_conv(x, W, b, s, p), rtol=1e-10, atol=1e-10)
    dz = rng.standard_normal(out.shape)
    dW, db, dx = np.empty_like(W), np.empty_like(b), np.empty_like(x)
    ops64.conv2d_backward(x, W, dz, s, p, p, dW, db, dx)
    rW, rb, rx = ref_conv_backward(x, W, dz, s, p)
    for mine, ref in ((dW, rW), (db, rb), (dx, rx)):
        np.testing.assert_allclose(mine, ref, rtol=1e-10, atol=1e-9)
    dW2, db2 = np.empty_like(W), np.empty_like(b)       # skipping dx leaves dW, db as they were
    ops64.conv2d_backward(x, W, dz, s, p, p, dW2, db2, np.empty((0, 1, 1, 1)))
    np.testing.assert_allclose(dW2, dW, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db2, db, rtol=1e-12, atol=1e-12)


def test_rendering_has_every_kernel_and_no_threads():
    from symnet.codegen.conv_ops import KERNELS, render_conv_ops
    text = render_conv_ops("float32")
    assert "prange(" not in text and "parallel=True" not in text
    for name in KERNELS:
        assert f"\ndef {name}(" in text


def test_empty_batch(ops64):
    x, W, b = np.empty((0, 2, 5, 5)), np.ones((3, 2, 3, 3)), np.ones(3)
    out = np.empty((0, 3, 3, 3))
    ops64.conv2d_forward(x, W, b, 1, 0, 0, out)
    dW, db, dx = np.full(W.shape, np.nan), np.full(3, np.nan), np.empty_like(x)
    ops64.conv2d_backward(x, W, out, 1, 0, 0, dW, db, dx)
    assert not dW.any() and not db.any()


def test_lenet_shapes_float32(ops32):
    """The two LeNet-5 layers in float32 against float64 numpy."""
    rng = np.random.default_rng(5)
    for N, C, H, F in ((20, 1, 28, 6), (20, 6, 12, 16)):
        x = rng.standard_normal((N, C, H, H)).astype(np.float32)
        W = (rng.standard_normal((F, C, 5, 5)) / np.sqrt(C * 25)).astype(np.float32)
        b = rng.standard_normal(F).astype(np.float32)
        out = np.empty((N, F, H - 4, H - 4), np.float32)
        ops32.conv2d_forward(x, W, b, 1, 0, 0, out)
        ref = ref_conv(x.astype(float), W.astype(float), b.astype(float), 1, 0)
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
        dz = rng.standard_normal(out.shape).astype(np.float32)
        dW, db, dx = np.empty_like(W), np.empty_like(b), np.empty_like(x)
        ops32.conv2d_backward(x, W, dz, 1, 0, 0, dW, db, dx)
        for mine, ref in zip((dW, db, dx), ref_conv_backward(x.astype(float), W.astype(float), dz.astype(float), 1, 0)):
            np.testing.assert_allclose(mine, ref, rtol=1e-4, atol=1e-3 * np.abs(ref).max())


# ---------------------------------------------------------------- max pooling
@pytest.mark.parametrize("size,stride", [(2, 2), (3, 2), (2, 1)])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_maxpool_ties_and_values(ops64, ops32, size, stride, dtype):
    """Many ties (values from a small set): the first maximum in row-major order wins on
    the 2x2 stride-2 path and on the general one; backward routes to it (adding up)."""
    ops = ops64 if dtype == "float64" else ops32
    rng = np.random.default_rng(size * 10 + stride)
    H, Wd = (8, 6) if (size, stride) == (2, 2) else (9, 7)
    x = rng.integers(0, 3, (19, 3, H, Wd)).astype(dtype)
    x[0, 0] = 0                                   # a whole plane of ties
    ref, ref_am = ref_maxpool(x.astype(float), size, stride)
    out, am = np.empty(ref.shape, dtype), np.empty(ref.shape, np.int64)
    ops.maxpool2d_forward(x, size, stride, out, am)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(am, ref_am)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = np.full(x.shape, np.nan, dtype)          # every entry must be written
    ops.maxpool2d_backward(dout, am, dx)
    want = np.zeros(x.shape)
    for n, c, i, j in np.ndindex(*am.shape):
        k = am[n, c, i, j]
        want[n, c, k // Wd, k % Wd] += dout[n, c, i, j]
    np.testing.assert_allclose(dx, want, rtol=1e-6)
