"""Convolution, pooling and flatten: shapes, SymPy-checked derivation, the
lecture's worked examples, and the Numba kernels (finite differences, PyTorch)."""
import importlib
import importlib.util
import itertools
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from symnet.errors import ShapeError, SpecError
from symnet.layers.conv import Conv2D
from symnet.layers.dense import Dense
from symnet.layers.flatten import Flatten
from symnet.layers.pool import AvgPool2D, MaxPool2D
from symnet.network import Network

dc = importlib.import_module("symnet.derive.conv")      # registers the rules
ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- shapes
def test_lenet_shapes():
    net = Network([1, 28, 28], [Conv2D(6, 5, activation="relu"), MaxPool2D(2), Conv2D(16, 5, activation="relu"),
                                MaxPool2D(2), Flatten(), Dense(120, "relu"), Dense(84, "relu"), Dense(10)],
                  loss="softmax_cross_entropy")
    assert [p.out_shape for p in net.placed] == [(6, 24, 24), (6, 12, 12), (16, 8, 8), (16, 4, 4), (256,),
                                                  (120,), (84,), (10,)]
    assert net.param_shapes["W1"] == (6, 1, 5, 5) and net.param_shapes["b3"] == (16,)
    assert net.param_shapes["W6"] == (120, 256)


@pytest.mark.parametrize("layer,shape,out", [
    (Conv2D(4, 3, padding="same"), (3, 7, 9), (4, 7, 9)),
    (Conv2D(4, (3, 5), padding="same"), (3, 7, 9), (4, 7, 9)),
    (Conv2D(4, 3, stride=2, padding=1), (3, 7, 9), (4, 4, 5)),
    (Conv2D(2, (3, 1)), (1, 5, 4), (2, 3, 4)),
    (MaxPool2D(2), (3, 8, 6), (3, 4, 3)),
    (AvgPool2D(3, stride=1), (2, 5, 5), (2, 3, 3)),
    (Flatten(), (2, 3, 4), (24,)),
])
def test_output_shapes(layer, shape, out):
    assert layer.output_shape(shape, "layer 1") == out


@pytest.mark.parametrize("layer,shape,text", [
    (Conv2D(4, 3, stride=2), (1, 6, 6), "layer 1 (conv2d): the height does not fit: (n + 2p - f)/s + 1 = (6 + 2*0 - 3)/2 + 1"),
    (Conv2D(4, 7), (1, 6, 6), "larger than"),
    (MaxPool2D(2), (3, 5, 4), "height does not fit"),
    (Conv2D(4, 3), (6, 6), "rank 3"),
])
def test_shape_errors(layer, shape, text):
    with pytest.raises(ShapeError, match=None) as info:
        layer.output_shape(shape, "layer 1 (conv2d)")
    assert text in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("kwargs,text", [
    ({"filters": 4, "kernel": 2, "padding": "same"}, "odd kernel"),
    ({"filters": 4, "kernel": 3, "stride": 2, "padding": "same"}, "stride 1"),
    ({"filters": 4, "kernel": 3, "padding": "full"}, "padding"),
    ({"filters": 4, "kernel": 3, "padding": -1}, "padding"),
    ({"filters": 0, "kernel": 3}, "'filters'"),
    ({"filters": 2, "kernel": [3, 3, 3]}, "'kernel'"),
    ({"filters": 2, "kernel": 3, "activation": "softmax"}, "softmax"),
])
def test_spec_errors(kwargs, text):
    with pytest.raises(SpecError) as info:
        Conv2D.from_spec({"type": "conv2d", **kwargs}, "layer 2 (conv2d)")
    assert text in str(info.value) and str(info.value).startswith("layer 2 (conv2d)")


def test_spec_missing_and_unknown_keys():
    with pytest.raises(SpecError, match="needs the key 'kernel'"):
        Conv2D.from_spec({"type": "conv2d", "filters": 3}, "layer 1 (conv2d)")
    with pytest.raises(SpecError, match="unknown key 'pad'"):
        MaxPool2D.from_spec({"type": "maxpool2d", "size": 2, "pad": 1}, "layer 1 (maxpool2d)")


def test_examples_load_and_derive():
    from symnet import spec
    from symnet.derive import derive
    for name, out in (("lenet", (10,)), ("digits_cnn", (10,))):
        net = spec.load(ROOT / "examples" / f"{name}.toml")
        assert net.output_shape == out and net.dtype == "float32"
        d = derive(net)
        assert set(d.gradients) >= {"W1", "b1", "x"}
        assert net.to_spec()["layers"][0]["type"] == "conv2d"


# ---------------------------------------------------------------- derivation, checked by SymPy
def _numeric(expr, arrays, sizes):
    """Evaluate an index-form expression with concrete sizes and arrays."""
    expr = expr.xreplace(sizes).doit()
    return expr.replace(lambda e: isinstance(e, sp.Indexed) and e.base in arrays,
                        lambda e: sp.Integer(int(arrays[e.base][tuple(int(i) for i in e.indices)])))


@pytest.mark.parametrize("s", [1, 2])
def test_conv_gradients_match_sympy_diff(s):
    rng = np.random.default_rng(s)
    C, F, kh, kw, H, Wd = 2, 2, 2, 3, 5, 5
    ho, wo = (H - kh) // s + 1, (Wd - kw) // s + 1
    g = dc.generic_conv()
    x = rng.integers(-3, 4, (C, H, Wd))
    W = rng.integers(-3, 4, (F, C, kh, kw))
    d = rng.integers(-3, 4, (F, ho, wo))
    b = rng.integers(-3, 4, (F,))
    # An explicit network of symbols: loss = sum_fij d[f,i,j] z[f,i,j].
    Ws = sp.Array(sp.symbols(f"w0:{W.size}")).reshape(*W.shape)
    xs = sp.Array(sp.symbols(f"x0:{x.size}")).reshape(*x.shape)
    bs = sp.symbols(f"b0:{F}")
    loss = sum(int(d[f, i, j]) * (bs[f] + sum(Ws[f, c, m, n] * xs[c, s * i + m, s * j + n]
                                              for c in range(C) for m in range(kh) for n in range(kw)))
               for f in range(F) for i in range(ho) for j in range(wo))
    vals = {**dict(zip(sp.flatten(Ws), W.ravel())), **dict(zip(sp.flatten(xs), x.ravel())), **dict(zip(bs, b))}
    sizes = {dc.S: s, dc.CIN: C, dc.FOUT: F, dc.KH: kh, dc.KW: kw, dc.HO: ho, dc.WO: wo}
    arrays = {dc._x: x, dc._W: W, dc._d: d, dc._b: b}
    for idx in itertools.product(range(F), range(C), range(kh), range(kw)):
        want = sp.diff(loss, Ws[idx]).subs(vals)
        got = _numeric(g["dW"].xreplace(dict(zip((dc.P_, dc.Q_, dc.R_, dc.T_), idx))), arrays, sizes)
        assert got == want
    for f in range(F):
        assert _numeric(g["db"].xreplace({dc.P_: f}), arrays, sizes) == sp.diff(loss, bs[f])
    for idx in itertools.product(range(C), range(H), range(Wd)):
        want = sp.diff(loss, xs[idx]).subs(vals)
        point = dict(zip((dc.Q_, dc.U, dc.V), idx))
        assert _numeric(g["dx_scatter"].xreplace(point), arrays, sizes) == want
        assert _numeric(g["dx"].xreplace(point), arrays, sizes) == want


def test_avgpool_and_max_derivatives():
    g = dc.generic_avgpool()
    assert g["factor"] == 1 / (dc.KH * dc.KW)
    xs, dmax = dc.max_derivative(2)
    at = {xs[0]: 3, xs[1]: 1, xs[2]: 2, xs[3]: 0}
    assert dmax.subs(at) == 1
    assert sp.diff(sp.Max(*xs), xs[1]).subs(at) == 0
    assert "1.0/(size*size)" in dc.avgpool_factor_code("float64")


def test_derivation_steps_for_a_cnn():
    from symnet.derive import derive
    net = Network([1, 6, 6], [Conv2D(2, 3, padding=1, stride=1, activation="relu"), MaxPool2D(2),
                              AvgPool2D(3), Flatten(), Dense(3)], loss="softmax_cross_entropy")
    d = derive(net)
    gw = d.gradient("W1").element.rhs
    assert isinstance(gw, sp.Sum) and gw.has(sp.IndexedBase(r"\delta^{(1)}", real=True))
    whys = " ".join(s.why for s in d.steps)
    assert "argmax" in whys and "flipped" in whys and "padding crops" in whys and "row-major" in whys
    assert d.gradient("x").element.rhs.has(sp.IndexedBase(r"\delta^{(1)}", real=True))
    assert "x_{c,i,j}" in str(d.gradient("x").element.lhs)


def test_derivation_pads_a_rectangular_kernel_per_axis():
    from symnet.derive import derive
    d = derive(Network([1, 6, 7], [Conv2D(2, (3, 5), padding="same", activation="tanh"), Flatten(), Dense(1)],
                       loss="mse"))
    whys = " ".join(s.why for s in d.steps)
    assert "padding of 1 above and below, 2 left and right" in whys and "(c, i + 1, j + 2)" in whys


def test_worked_example_1d():
    steps = dc.worked_example_1d()
    result = steps[-1].rhs
    # (theta * x)_i = sum_j theta_j x_{i+j} with x = [1,1,1,0,0], theta = [1,0,1]:
    # i=0: 1+0+1 = 2, i=1: 1+0+0 = 1, i=2: 1+0+0 = 1.
    assert list(result) == [2, 1, 1]
    assert steps[0].rhs == sp.Sum(sp.IndexedBase(r"\theta")[dc.J] * sp.IndexedBase("x")[dc.I + dc.J], (dc.J, 0, 2))
    assert list(dc.worked_example_1d(x=(1, 1, 1, 0, 1))[-1].rhs) == [2, 1, 2]


def test_worked_example_2d():
    steps = dc.worked_example_2d()
    assert steps[2].rhs == 4
    assert steps[-1].rhs == sp.Matrix([[4, 3, 4], [2, 4, 3], [2, 3, 4]])


# ---------------------------------------------------------------- kernels
@pytest.fixture(scope="module")
def ops(tmp_path_factory):
    """The float64 kernels, rendered, written to a file and imported once."""
    from symnet.codegen.conv_ops import render_conv_ops
    path = tmp_path_factory.mktemp("conv_ops") / "symnet_test_conv_ops64.py"
    path.write_text(render_conv_ops("float64"))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = mod
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop(path.stem, None)


def _pair(p):
    return (p, p) if isinstance(p, int) else p


def _conv(ops, x, W, b, s, p):
    N, C, H, Wd = x.shape
    F, _, kh, kw = W.shape
    ph, pw = _pair(p)
    out = np.empty((N, F, (H + 2 * ph - kh) // s + 1, (Wd + 2 * pw - kw) // s + 1))
    ops.conv2d_forward(x, W, b, s, ph, pw, out)
    return out


def _fd(f, a, eps=1e-6):
    g = np.empty_like(a)
    for idx in np.ndindex(a.shape):
        old = a[idx]
        a[idx] = old + eps
        up = f()
        a[idx] = old - eps
        down = f()
        a[idx] = old
        g[idx] = (up - down) / (2 * eps)
    return g


def _close(a, b, tol=1e-6):
    err = np.abs(a - b).max() / max(np.abs(b).max(), 1e-12)
    assert err < tol, err


CONV_CASES = [  # (N, C, H, W, F, kh, kw, stride, pad or (pad rows, pad columns))
    (2, 1, 5, 6, 2, 3, 3, 1, 0),
    (2, 3, 6, 5, 2, 3, 3, 1, 1),          # "same"
    (2, 3, 7, 5, 3, 3, 3, 2, 1),
    (2, 2, 6, 7, 2, 3, 5, 1, (1, 2)),     # "same" for a 3x5 kernel
    (1, 1, 7, 9, 2, 3, 3, 2, 0),
    (2, 3, 5, 4, 2, 2, 3, 1, 2),
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_kernel_finite_differences(ops, case):
    N, C, H, Wd, F, kh, kw, s, p = case
    rng = np.random.default_rng(sum(case[:-1]) + sum(_pair(p)))
    x, W, b = rng.standard_normal((N, C, H, Wd)), rng.standard_normal((F, C, kh, kw)), rng.standard_normal(F)
    R = rng.standard_normal(_conv(ops, x, W, b, s, p).shape)

    def loss():
        return float((_conv(ops, x, W, b, s, p) * R).sum())
    dW, db, dx = np.empty_like(W), np.empty_like(b), np.empty_like(x)
    ops.conv2d_backward(x, W, R, s, *_pair(p), dW, db, dx)
    _close(dW, _fd(loss, W))
    _close(db, _fd(loss, b))
    _close(dx, _fd(loss, x))
    dW2 = np.empty_like(W)      # an empty dx skips the input gradient, the rest unchanged
    ops.conv2d_backward(x, W, R, s, *_pair(p), dW2, db, np.empty((0, 1, 1, 1)))
    np.testing.assert_array_equal(dW2, dW)


def _tie_free(rng, shape):
    return rng.permutation(np.prod(shape)).reshape(shape) / np.prod(shape) + rng.standard_normal(shape) * 1e-3


@pytest.mark.parametrize("kind,size,stride", [("max", 2, 2), ("max", 3, 1), ("avg", 2, 2), ("avg", 3, 2)])
def test_pool_kernel_finite_differences(ops, kind, size, stride):
    rng = np.random.default_rng(size * 10 + stride)
    x = _tie_free(rng, (2, 2, 7, 5) if stride == 1 or size == 3 else (2, 2, 6, 4))
    ho, wo = (x.shape[2] - size) // stride + 1, (x.shape[3] - size) // stride + 1
    out = np.empty(x.shape[:2] + (ho, wo))
    am = np.empty(out.shape, np.int64)
    R = rng.standard_normal(out.shape)

    def loss():
        if kind == "max":
            ops.maxpool2d_forward(x, size, stride, out, am)
        else:
            ops.avgpool2d_forward(x, size, stride, out)
        return float((out * R).sum())
    loss()
    dx = np.empty_like(x)
    if kind == "max":
        ops.maxpool2d_backward(R, am, dx)
    else:
        ops.avgpool2d_backward(R, size, stride, dx)
    _close(dx, _fd(loss, x, eps=1e-7))


def test_maxpool_ties_go_to_the_first_in_row_major_order(ops):
    x = np.zeros((1, 1, 2, 2))
    out, am, dx = np.empty((1, 1, 1, 1)), np.empty((1, 1, 1, 1), np.int64), np.empty((1, 1, 2, 2))
    ops.maxpool2d_forward(x, 2, 2, out, am)
    ops.maxpool2d_backward(np.ones((1, 1, 1, 1)), am, dx)
    assert dx.ravel().tolist() == [1, 0, 0, 0]


def test_flatten_kernels(ops):
    x = np.arange(24.0).reshape(2, 3, 2, 2)
    flat = ops.flatten_forward(x)
    np.testing.assert_array_equal(flat, x.reshape(2, -1))
    dx = np.empty_like(x)
    ops.flatten_backward(flat * 2, dx)
    np.testing.assert_array_equal(dx, x * 2)


def test_lecture_image_through_the_kernel(ops):
    img = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]], float)
    k = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], float)
    out = _conv(ops, img[None, None], k[None, None], np.zeros(1), 1, 0)
    assert out[0, 0, 0, 0] == 4
    np.testing.assert_array_equal(out[0, 0], np.array(dc.worked_example_2d()[-1].rhs, float))


@pytest.mark.parametrize("case", CONV_CASES[1:4])
def test_against_torch(ops, case):
    torch = pytest.importorskip("torch")
    F_ = torch.nn.functional
    N, C, H, Wd, F, kh, kw, s, p = case
    rng = np.random.default_rng(7)
    x, W, b = rng.standard_normal((N, C, H, Wd)), rng.standard_normal((F, C, kh, kw)), rng.standard_normal(F)
    out = _conv(ops, x, W, b, s, p)
    R = rng.standard_normal(out.shape)
    tx, tW, tb = (torch.tensor(a, requires_grad=True) for a in (x, W, b))
    tout = F_.conv2d(tx, tW, tb, stride=s, padding=_pair(p))
    (tout * torch.tensor(R)).sum().backward()
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    dW, db, dx = np.empty_like(W), np.empty_like(b), np.empty_like(x)
    ops.conv2d_backward(x, W, R, s, *_pair(p), dW, db, dx)
    for mine, theirs in ((dW, tW), (db, tb), (dx, tx)):
        np.testing.assert_allclose(mine, theirs.grad.numpy(), rtol=1e-10, atol=1e-12)

    xp = _tie_free(rng, (2, 3, 6, 8))
    for size, stride in ((2, 2), (3, 1)):
        ho, wo = (6 - size) // stride + 1, (8 - size) // stride + 1
        out, am = np.empty((2, 3, ho, wo)), np.empty((2, 3, ho, wo), np.int64)
        R = rng.standard_normal(out.shape)
        for kind in ("max", "avg"):
            t = torch.tensor(xp, requires_grad=True)
            pool = F_.max_pool2d if kind == "max" else F_.avg_pool2d
            tout = pool(t, size, stride)
            (tout * torch.tensor(R)).sum().backward()
            dx = np.empty_like(xp)
            if kind == "max":
                ops.maxpool2d_forward(xp, size, stride, out, am)
                ops.maxpool2d_backward(R, am, dx)
            else:
                ops.avgpool2d_forward(xp, size, stride, out)
                ops.avgpool2d_backward(R, size, stride, dx)
            np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-12)
            np.testing.assert_allclose(dx, t.grad.numpy(), rtol=1e-12, atol=1e-14)
