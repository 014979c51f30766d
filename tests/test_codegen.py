"""Generated Numba kernels: gradients against central finite differences (float64),
stable extremes, float32 without upcasts, deterministic bytes and golden files.

Golden files: `generated/` holds the kernels of examples/{mlp,logistic,tiny,lenet,digits_cnn}.toml.
After an intended change to the templates or the code generator, refresh them with

    SYMNET_UPDATE_GOLDEN=1 python -m pytest tests/test_codegen.py -k golden

Kernels compile once per session (module-scoped fixtures); their files live in
pytest's cache directory so Numba's on-disk cache makes later runs faster.
"""
from __future__ import annotations

import inspect
import os
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from symnet import Dense, Network, ShapeError, Softmax, SymnetError, load
from symnet.codegen import generate, numba_code, render
from symnet.codegen.generate import kernel_path

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ROOT / "generated"
EXAMPLES = ("mlp", "logistic", "tiny", "lenet", "digits_cnn")


def _params(net, seed=0, scale=0.5):
    rng = np.random.default_rng(seed)
    return {name: scale * rng.standard_normal(shape) for name, shape in net.param_shapes.items()}


def _fd_grads(mod, params, X, Y, eps=1e-6):
    grads = {}
    for name, p in params.items():
        num = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            old = p[idx]
            p[idx] = old + eps
            lp = mod.loss(params, X, Y)
            p[idx] = old - eps
            lm = mod.loss(params, X, Y)
            p[idx] = old
            num[idx] = (lp - lm) / (2 * eps)
        grads[name] = num
    return grads


def _assert_fd(mod, net, X, Y, seed=0, tol=1e-6):
    params = _params(net, seed)
    loss, grads = mod.loss_and_grads(params, X, Y)
    assert np.isfinite(loss)
    assert loss == pytest.approx(mod.loss(params, X, Y), rel=1e-12, abs=1e-12)
    assert set(grads) == set(params)
    numeric = _fd_grads(mod, params, X, Y)
    for name in params:
        assert grads[name].shape == params[name].shape
        scale = max(np.abs(numeric[name]).max(), 1e-3)
        err = np.abs(grads[name] - numeric[name]).max() / scale
        assert err < tol, f"{net.name}: {name} relative error {err:.2e}"


RNG = np.random.default_rng(42)
X5 = RNG.standard_normal((6, 3))

# Several activations per network (one per hidden layer) keep compile time down.
CASES = {
    "acts_a": (lambda: Network(3, [Dense(4, "sigmoid"), Dense(4, "tanh"), Dense(4, "relu"),
                                   Dense(3, "leaky_relu"), Dense(2)], loss="mse", name="acts_a"),
               lambda: RNG.standard_normal((6, 2))),
    "acts_b": (lambda: Network(3, [Dense(4, "elu"), Dense(4, "gelu"), Dense(4, "gelu_tanh"),
                                   Dense(2, "softplus")], loss="l1", name="acts_b"),
               lambda: RNG.standard_normal((6, 2)) + 3.0),
    "acts_c": (lambda: Network(3, [Dense(4, "swish"), Dense(4, "mish"), Dense(4, "softsign"),
                                   Dense(3, "log_sigmoid"), Dense(3)], loss="softmax_cross_entropy", name="acts_c"),
               lambda: np.eye(3)[RNG.integers(0, 3, 6)]),
    "acts_d": (lambda: Network(3, [Dense(4, "sinc"), Dense(4, "x*tanh(log(1+exp(x)))"), Dense(3, "x/(1+x^2)"),
                                   Dense(2, "sigmoid")], loss="bce", name="acts_d"),
               lambda: (RNG.random((6, 2)) > 0.5).astype(float)),
    "ce_softmax": (lambda: Network(3, [Dense(5, "tanh"), Dense(4), Softmax()], loss="cross_entropy",
                                   name="ce_softmax"),
                   lambda: np.eye(4)[RNG.integers(0, 4, 6)]),
    "hinge": (lambda: Network(3, [Dense(5, "tanh"), Dense(1)], loss="hinge", name="hinge"),
              lambda: np.where(RNG.random((6, 1)) > 0.5, 1.0, -1.0)),
    "custom_loss": (lambda: Network(3, [Dense(5, "relu"), Dense(2, "tanh")], loss="log(cosh(yhat - y))",
                                    name="custom_loss"),
                    lambda: RNG.standard_normal((6, 2))),
    # nested stable forms: each argument printed once, derivatives through the whole network
    "nested": (lambda: Network(3, [Dense(4, "sigmoid(" * 6 + "3*x" + ")" * 6),
                                   Dense(4, "tanh(log(1+exp(" * 8 + "x" + ")))" * 8),
                                   Dense(4, "sinc(sinc(x)) + softplus(sigmoid(softplus(x))^2)"),
                                   Dense(2)], loss="mse", name="nested"),
               lambda: RNG.standard_normal((6, 2))),
}


@pytest.fixture(scope="module")
def kernels(kernel_dir):
    built = {}
    for key, (make_net, make_y) in CASES.items():
        net = make_net()
        built[key] = (net, generate(net, kernel_dir), make_y())
    return built


@pytest.mark.parametrize("case", list(CASES))
def test_gradients_match_finite_differences(kernels, case):
    net, mod, Y = kernels[case]
    _assert_fd(mod, net, X5, Y)


def test_hinge_has_active_and_inactive_margins(kernels):
    # The hinge case is only meaningful if both branches of the Piecewise occur.
    net, mod, Y = kernels["hinge"]
    z = mod.forward(_params(net), X5)
    margins = (Y * z).ravel()
    assert (margins < 1).any()


def test_custom_activation_derivative_is_printed_not_written(kernels):
    net, mod, _ = kernels["acts_d"]
    text = Path(mod.path).read_text()
    assert "def act_custom1(x):" in text and "def dact_custom1(x, a):" in text
    assert "def dact_custom2(x, a):" in text
    # sinc's derivative at a kink-free point against SymPy's value
    x = 0.7
    assert mod.dact_sinc(x, np.sinc(x / np.pi)) == pytest.approx(np.cos(x) / x - np.sin(x) / x**2, rel=1e-12)
    # at 0 SymPy's form is 0/0; the kernel holds its limit (a zero-padded border gives z = 0)
    h = 1e-5
    assert mod.dact_sinc(0.0, 1.0) == pytest.approx((np.sinc(h / np.pi) - np.sinc(-h / np.pi)) / (2 * h), abs=1e-9)
    assert np.isfinite(mod.dact_sinc(1e-9, 1.0))


def test_forward_outputs_after_output_activation(kernels):
    net, mod, _ = kernels["acts_c"]
    p = mod.forward(_params(net), X5)
    assert p.shape == (6, 3)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    net, mod, _ = kernels["acts_d"]
    s = mod.forward(_params(net), X5)
    assert ((s > 0) & (s < 1)).all()


def test_train_step_is_sgd_in_place(kernels):
    net, mod, Y = kernels["acts_a"]
    params = _params(net, seed=3)
    before = {k: v.copy() for k, v in params.items()}
    loss, grads = mod.loss_and_grads(params, X5, Y)
    arrays = {k: id(v) for k, v in params.items()}
    step_loss = mod.train_step(params, X5, Y, 0.1)
    assert step_loss == pytest.approx(loss, rel=1e-12)
    for k in params:
        assert id(params[k]) == arrays[k]
        np.testing.assert_allclose(params[k], before[k] - 0.1 * grads[k], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("case,sign", [("acts_c", 1.0), ("acts_c", -1.0), ("acts_d", 1.0), ("acts_d", -1.0)])
def test_extreme_logits_are_finite(kernels, case, sign):
    net, mod, Y = kernels[case]
    params = _params(net)
    last = net.placed[-1].params
    params[last["W"]][:] = 0.0
    params[last["b"]][:] = sign * 1e4 * np.array([1.0, -1.0, 0.5][: params[last["b"]].shape[0]])
    loss, grads = mod.loss_and_grads(params, X5, Y)
    assert np.isfinite(loss) and loss > 1.0
    for g in grads.values():
        assert np.isfinite(g).all()
    if case == "acts_d":   # bce: mean of softplus(+-1e4) terms; the wrong-side ones are 1e4
        b = params[last["b"]]
        expected = np.mean(np.where(Y > 0.5, np.logaddexp(0, -b), np.logaddexp(0, b)))
        assert loss == pytest.approx(expected, rel=1e-12)


# -- float32 ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny32(kernel_dir):
    net = load(ROOT / "examples" / "tiny.toml")
    return net, generate(net, kernel_dir)


def test_float32_kernels_stay_float32(tiny32, kernel_dir):
    net, mod = tiny32
    assert net.dtype == "float32"
    params = net.init_params(seed=0)
    X = np.random.default_rng(0).standard_normal((32, 2)).astype(np.float32)
    Y = np.random.default_rng(1).standard_normal((32, 1)).astype(np.float32)
    assert mod.forward(params, X).dtype == np.float32
    loss, grads = mod.loss_and_grads(params, X, Y)
    assert all(g.dtype == np.float32 for g in grads.values())
    # every printed function was compiled float32 -> float32 (no float64 literal crept in)
    f32 = np.float32(0.3)
    for fn, args in ((mod.tanh_f32, (f32,)), (mod.act_tanh, (f32,)), (mod.dact_tanh, (f32, f32)),
                     (mod.loss_elem, (f32, f32)), (mod.delta_elem, (f32, f32, f32))):
        fn(*args)
        sigs = [s for s in fn.nopython_signatures if all(str(a) == "float32" for a in s.args)]
        assert sigs and all(str(s.return_type) == "float32" for s in sigs), (fn, sigs)
    # and agrees with the float64 kernel of the same network
    net64 = Network(2, [Dense(16, "tanh"), Dense(16, "tanh"), Dense(1)], loss="mse", name="tiny64")
    mod64 = generate(net64, kernel_dir)
    loss64, grads64 = mod64.loss_and_grads({k: v.astype(np.float64) for k, v in params.items()}, X, Y)
    assert loss == pytest.approx(loss64, rel=1e-4)
    for k in grads:
        np.testing.assert_allclose(grads[k], grads64[k], rtol=1e-3, atol=1e-5)


def test_float32_tanh_is_tanh_correctly_rounded(tiny32):
    """float32 kernels compute tanh by SymPy's Padé approximant (vectorisable): against tanh
    in float64 rounded once to float32, on 4 million points and the special values."""
    from numba import njit
    _, mod = tiny32
    tanh_f32 = mod.tanh_f32
    assert "tanh_f32(x)" in inspect.getsource(mod.act_tanh.py_func)

    @njit
    def apply(x, out):
        for k in range(x.size):
            out[k] = tanh_f32(x[k])
    tiny = np.float32(1e-30)
    special = np.array([0.0, -0.0, tiny, -tiny, 1e-40, 1e-8, 3e-4, 9.4, 9.6, 88.0, 1e30,
                        np.inf, -np.inf, np.finfo(np.float32).max], np.float32)
    x = np.concatenate([np.linspace(-12, 12, 4_000_001, dtype=np.float32), special])
    got = np.empty_like(x)
    apply(x, got)
    want = np.tanh(x.astype(np.float64)).astype(np.float32)
    ulps = np.abs(got.astype(np.float64) - want) / np.spacing(np.abs(want)).astype(np.float64)
    assert ulps.max() <= 1.0
    assert np.count_nonzero(got != want) < 1e-3 * x.size    # measured: 1,658 (glibc tanhf: 182,820)
    np.testing.assert_array_equal(got[-len(special):], want[-len(special):])
    assert np.signbit(got[-len(special) + 1])                 # tanh(-0) = -0
    nan = np.empty(1, np.float32)
    apply(np.array([np.nan], np.float32), nan)
    assert np.isnan(nan[0])


def test_float32_printer_uses_typed_literals():
    import re
    x = sp.Symbol("x", real=True)
    code = numba_code(x / 2 + sp.Rational(1, 3) * x**2 + sp.sqrt(2) + 3 * x, "float32")
    bare = re.sub(r"np\.float32\([^()]*\)", "C", code)
    assert not re.search(r"\d", bare), code      # every number is a float32 literal


def test_printer_is_strict():
    from sympy.printing.codeprinter import PrintMethodNotImplementedError
    x = sp.Symbol("x", real=True)
    with pytest.raises(PrintMethodNotImplementedError):
        numba_code(sp.gamma(x))
    with pytest.raises(PrintMethodNotImplementedError):
        numba_code(sp.Function("f")(x))
    with pytest.raises(PrintMethodNotImplementedError):
        numba_code(sp.Piecewise((x, x > 0)))


def test_stable_forms_of_sigmoid_and_softplus():
    from symnet.functions import sigmoid, softplus
    x = sp.Symbol("x", real=True)
    ns = {"np": np, "x": 0.0}
    for value in (-1e4, -30.0, 0.0, 30.0, 1e4):
        ns["x"] = value
        s = eval(numba_code(sigmoid(x)), ns)         # noqa: S307 - printed by our own printer
        sp_ = eval(numba_code(softplus(x)), ns)      # noqa: S307
        assert np.isfinite(s) and np.isfinite(sp_)
        assert s == pytest.approx(1 / (1 + np.exp(-np.clip(value, -700, 700))))
        assert sp_ == pytest.approx(np.logaddexp(0.0, value))


def test_user_errors_are_symnet_errors(tiny32):
    net, mod = tiny32
    params = net.init_params(seed=0)
    with pytest.raises(ShapeError):
        mod.forward(params, np.zeros((4, 3), np.float32))
    with pytest.raises(ShapeError):
        mod.loss_and_grads(params, np.zeros((4, 2), np.float32), np.zeros((5, 1), np.float32))
    with pytest.raises(ShapeError):
        mod.loss_and_grads({"W1": params["W1"]}, np.zeros((4, 2), np.float32), np.zeros((4, 1), np.float32))
    wrong = dict(params, W1=params["W1"].astype(np.float64))
    with pytest.raises(SymnetError, match="W1"):
        mod.train_step(wrong, np.zeros((4, 2), np.float32), np.zeros((4, 1), np.float32), 0.1)


# -- files: determinism, cache, golden ---------------------------------------------
def test_generation_is_deterministic_and_cached(tmp_path):
    net = load(ROOT / "examples" / "logistic.toml")
    assert render(net) == render(net)
    from symnet.codegen.generate import write
    p1 = write(net, tmp_path)
    data = p1.read_bytes()
    mtime = p1.stat().st_mtime_ns
    p2 = write(net, tmp_path)
    assert p1 == p2 and p2.read_bytes() == data and p2.stat().st_mtime_ns == mtime   # not rewritten
    assert p1.name.startswith("logistic_") and len(p1.stem) == len("logistic_") + 12
    text = data.decode()
    assert "DO NOT EDIT" in text and "generated by symnet".lower() in text.lower()
    assert net.fingerprint()[:16] in text
    assert not list(tmp_path.glob("*.tmp"))


def test_module_is_registered_before_running(tiny32):
    import sys
    net, mod = tiny32
    assert sys.modules[mod.__name__] is mod
    assert Path(mod.path).exists()
    assert generate(net, Path(mod.path).parent) is mod


@pytest.mark.parametrize("example", EXAMPLES)
def test_golden_files(example):
    net = load(ROOT / "examples" / f"{example}.toml")
    path = kernel_path(net, GENERATED)
    text = render(net)
    if os.environ.get("SYMNET_UPDATE_GOLDEN") == "1":
        for stale in GENERATED.glob(f"{net.name}_*.py"):
            if stale != path:
                stale.unlink()
        from symnet.codegen.generate import write_atomic
        write_atomic(path, text)
    assert path.exists(), (f"{path.name} missing: run SYMNET_UPDATE_GOLDEN=1 python -m pytest "
                           "tests/test_codegen.py -k golden")
    assert path.read_text(encoding="utf-8") == text, "golden file differs: regenerate with SYMNET_UPDATE_GOLDEN=1"
    assert len(list(GENERATED.glob(f"{net.name}_*.py"))) == 1
