"""Batch normalisation: shapes, specs, state, the SymPy derivation (checked
against full symbolic differentiation), kernel_math() checked by finite
differences and against PyTorch, and the derivation document."""
import numpy as np
import pytest
import sympy as sp

import symnet
from symnet.derive import batchnorm as bn
from symnet.errors import ShapeError, SpecError
from symnet.numeric import lambdify


def bn_net(**kw):
    return symnet.Network([4], [symnet.Dense(3), symnet.BatchNorm(activation="relu", **kw), symnet.Dense(2)],
                          loss="mse", name="bn")


# ---------------------------------------------------------------- layer, spec, state
@pytest.mark.parametrize("shape", [(5,), (3, 4, 6)])
def test_output_shape_is_input_shape(shape):
    assert symnet.BatchNorm().output_shape(shape, "layer 1 (batchnorm)") == shape


@pytest.mark.parametrize("shape", [(3, 4), (1, 2, 3, 4)])
def test_rank_error_names_the_layer(shape):
    with pytest.raises(ShapeError) as info:
        symnet.Network(list(shape), [symnet.BatchNorm()])
    text = str(info.value)
    assert text.startswith("layer 1 (batchnorm):") and "rank 1" in text and "\n" not in text


@pytest.mark.parametrize("table,text", [
    ({"eps": 0}, "'eps' must be positive"),
    ({"eps": "small"}, "'eps' must be a number"),
    ({"eps": True}, "'eps' must be a number"),
    ({"momentum": 1.5}, "'momentum' must be in [0, 1]"),
    ({"momentum": None}, "'momentum' must be a number in [0, 1]"),
    ({"activation": "softmax"}, "softmax"),
    ({"activation": "nope"}, "unknown activation 'nope'"),
    ({"affine": False}, "unknown key 'affine'"),
])
def test_spec_errors_name_the_layer(table, text):
    with pytest.raises(SpecError) as info:
        symnet.from_dict({"input": [3], "layers": [{"type": "dense", "units": 2}, {"type": "batchnorm", **table}]})
    msg = str(info.value)
    assert msg.startswith("layer 2 (batchnorm):") and text in msg and "\n" not in msg


def test_parameter_and_state_names_shapes_and_init():
    net = symnet.Network([2, 5, 5], [symnet.Conv2D(3, 3), symnet.BatchNorm("relu"), symnet.Flatten(),
                                     symnet.Dense(4), symnet.BatchNorm(), symnet.Dense(2)], dtype="float32")
    assert list(net.param_shapes) == ["W1", "b1", "gamma2", "beta2", "W4", "b4", "gamma5", "beta5", "W6", "b6"]
    assert net.param_shapes["gamma2"] == (3,) and net.param_shapes["beta5"] == (4,)
    assert net.state_shapes == {"running_mean2": (3,), "running_var2": (3,), "running_mean5": (4,),
                                "running_var5": (4,)}
    assert net.placed[1].state == {"running_mean": "running_mean2", "running_var": "running_var2"}
    assert net.placed[1].params == {"gamma": "gamma2", "beta": "beta2"}
    assert net.placed[0].state == {} and net.placed[0].state_shapes == {}
    for scheme in ("he", "xavier", "small"):
        p = net.init_params(seed=1, scheme=scheme)
        assert np.all(p["gamma2"] == 1) and np.all(p["beta2"] == 0) and np.all(p["gamma5"] == 1)
        assert p["gamma2"].dtype == np.float32 and np.any(p["W1"] != 0)
    state = net.init_state()
    assert set(state) == set(net.state_shapes)
    assert np.all(state["running_mean2"] == 0) and np.all(state["running_var5"] == 1)
    assert state["running_var2"].dtype == np.float32
    assert net.init_state("float64")["running_mean5"].dtype == np.float64
    assert symnet.Network([3], [symnet.Dense(2)]).state_shapes == {}
    assert "batchnorm eps=1e-05, momentum=0.1, relu" in net.summary()


def test_spec_round_trip_and_fingerprint(tmp_path):
    net = bn_net(eps=1e-3, momentum=0.2)
    layer = net.to_spec()["layers"][1]
    assert layer == {"type": "batchnorm", "activation": "relu", "eps": 1e-3, "momentum": 0.2}
    again = symnet.from_dict(net.to_spec())
    assert again.to_spec() == net.to_spec() and again.fingerprint() == net.fingerprint()
    assert bn_net(eps=1e-3, momentum=0.3).fingerprint() != net.fingerprint()
    assert bn_net(eps=1e-4, momentum=0.2).fingerprint() != net.fingerprint()
    spec = tmp_path / "bn.toml"
    spec.write_text('name = "bn"\ninput = [4]\nloss = "mse"\n'
                    '[[layers]]\ntype = "dense"\nunits = 3\n'
                    '[[layers]]\ntype = "batchnorm"\nactivation = "relu"\neps = 0.001\nmomentum = 0.2\n'
                    '[[layers]]\ntype = "dense"\nunits = 2\n')
    loaded = symnet.load(spec)
    assert loaded.fingerprint() == net.fingerprint()
    assert loaded.layers[1].to_spec() == symnet.BatchNorm("relu", eps=1e-3, momentum=0.2).to_spec()
    default = symnet.from_dict({"input": [3], "layers": [{"type": "batchnorm"}]}).layers[0]
    assert (default.eps, default.momentum, default.activation.name) == (1e-5, 0.1, "identity")


# ---------------------------------------------------------------- the derivation, checked by SymPy
def _explicit(m):
    """Explicit symbols for one channel of m values, the forward map written out,
    and the pieces of the generic derivation instantiated for this m."""
    xs = sp.symbols(f"x1:{m + 1}", real=True)
    ds = sp.symbols(f"d1:{m + 1}", real=True)
    gamma, beta = sp.symbols("gamma beta", real=True)
    eps = sp.Symbol("eps", positive=True)
    mu = sum(xs) / m
    var = sum((x - mu) ** 2 for x in xs) / m
    xhat = [(x - mu) / sp.sqrt(var + eps) for x in xs]
    z = [gamma * xh + beta for xh in xhat]
    loss = sum(d * zk for d, zk in zip(ds, z))        # dloss/dz_k = d_k: any upstream gradient
    generic = {bn.MB: m, bn.GAMMA: gamma, bn.BETA: beta, bn.EPS: eps}

    def instantiate(expr, i=None):
        e = expr.xreplace(generic)
        if i is not None:
            e = e.subs(bn.I, i + 1)
        e = e.doit()
        e = e.replace(lambda a: isinstance(a, sp.Indexed) and a.base == bn._xh,
                      lambda a: xhat[int(a.indices[0]) - 1])
        e = e.replace(lambda a: isinstance(a, sp.Indexed) and a.base == bn._d,
                      lambda a: ds[int(a.indices[0]) - 1])
        e = e.replace(lambda a: isinstance(a, sp.Indexed) and a.base == bn._x,
                      lambda a: xs[int(a.indices[0]) - 1])
        return e.xreplace({bn.MU: mu}).xreplace({bn.VAR: var})

    return xs, ds, gamma, beta, eps, loss, instantiate


def _same(a, b, symbols, seed=0, points=3):
    """Equal at random points, to 30 digits (exact arithmetic would need sqrt simplification)."""
    rng = np.random.default_rng(seed)
    for _ in range(points):
        vals = {s: sp.Rational(int(rng.integers(-40, 41)), int(rng.integers(1, 9))) for s in symbols}
        vals.update({s: sp.Rational(1, int(rng.integers(2, 50))) for s in symbols if s.is_positive})
        va, vb = sp.N(a.xreplace(vals), 40), sp.N(b.xreplace(vals), 40)
        assert abs(va - vb) <= sp.Float(1e-28) * (1 + abs(vb)), (va, vb)


@pytest.mark.parametrize("m", [3, 4])
def test_derived_gradients_equal_full_symbolic_differentiation(m):
    xs, ds, gamma, beta, eps, loss, inst = _explicit(m)
    g = bn.generic_batchnorm()
    symbols = [*xs, *ds, gamma, beta, eps]
    for i in range(m):
        _same(inst(g["dx"], i), sp.diff(loss, xs[i]), symbols, seed=i)
    _same(inst(g["dgamma"]), sp.diff(loss, gamma), symbols)
    _same(inst(g["dbeta"]), sp.diff(loss, beta), symbols)


def test_derived_pieces_have_the_textbook_form():
    g = bn.generic_batchnorm()
    m, i, k = bn.MB, bn.I, bn.K
    xh, d = bn._xh, bn._d
    s_d, s_dx = sp.Sum(d[k], (k, 1, m)), sp.Sum(d[k] * xh[k], (k, 1, m))
    assert g["dgamma"] == s_dx and g["dbeta"] == s_d
    assert g["dvar_dmu"] == 0
    assert g["dxhat"] == bn.GAMMA * d[i]
    textbook = bn.GAMMA / (m * sp.sqrt(bn.VAR + bn.EPS)) * (m * d[i] - s_d - xh[i] * s_dx)
    assert sp.simplify(g["dx"] - textbook) == 0
    assert sp.simplify(g["var_unbiased"] - m * bn.VAR / (m - 1)) == 0


# ---------------------------------------------------------------- kernel_math, numerically
K = bn.kernel_math()
F = {name: lambdify(k.args, k.expr) for name, k in K.items()}


def test_kernel_math_keys_and_argument_order():
    names = {key: tuple(str(a) for a in k.args) for key, k in K.items()}
    assert names["xhat"] == ("x", "mu", "inv_std")
    assert names["inv_std"] == ("var", "eps")
    assert names["dx"] == ("delta", "xhat", "sum_delta", "sum_delta_xhat", "gamma", "inv_std", "m")
    assert names["dgamma_term"] == ("delta", "xhat") and names["dbeta_term"] == ("delta",)
    assert names["running_mean_update"] == ("running_mean", "mean", "momentum")
    assert names["running_var_update"] == ("running_var", "var_biased", "m", "momentum")
    assert names["dx_eval"] == ("delta", "gamma", "inv_std")
    delta, gamma, inv_std = K["dx_eval"].args
    assert sp.simplify(K["dx_eval"].expr - delta * gamma * inv_std) == 0
    for k in K.values():
        assert k.expr.free_symbols <= set(k.args)
        assert all(isinstance(a, sp.Symbol) and a.is_real for a in k.args)


def _axes(x):
    """The axes a channel is reduced over: batch (N, C) or batch and image (N, C, H, W)."""
    return (0,) if x.ndim == 2 else (0, 2, 3)


def _per_channel(v, x):
    return v.reshape((1, -1) + (1,) * (x.ndim - 2))


def forward(x, gamma, beta, eps):
    """The training forward pass, from kernel_math() only."""
    ax = _axes(x)
    m = x.size // x.shape[1]
    mean = F["mean"](x.sum(axis=ax), m)
    var = F["var"](F["sq_dev"](x, _per_channel(mean, x)).sum(axis=ax), m)
    inv_std = F["inv_std"](var, eps)
    xhat = F["xhat"](x, _per_channel(mean, x), _per_channel(inv_std, x))
    z = F["z"](xhat, _per_channel(gamma, x), _per_channel(beta, x))
    return z, {"mean": mean, "var": var, "inv_std": inv_std, "xhat": xhat, "m": m}


def backward(delta, cache, gamma, x):
    ax = _axes(x)
    xhat = cache["xhat"]
    dgamma = F["dgamma_term"](delta, xhat).sum(axis=ax)
    dbeta = (F["dbeta_term"](delta) * np.ones_like(delta)).sum(axis=ax)
    dx = F["dx"](delta, xhat, _per_channel(dbeta, x), _per_channel(dgamma, x), _per_channel(gamma, x),
                 _per_channel(cache["inv_std"], x), cache["m"])
    return dx, dgamma, dbeta


def toy_loss(z, w):
    """A smooth loss of z with a known gradient dL/dz = w + z^2 (not symnet's)."""
    return float(np.sum(w * z + z ** 3 / 3)), w + z ** 2



def _rel(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b), 1e-300)


@pytest.mark.parametrize("shape", [(5, 3), (3, 2, 3, 2)])
def test_kernel_math_matches_finite_differences(shape):
    rng = np.random.default_rng(7)
    x = rng.normal(size=shape) * 2 + 1
    c = shape[1]
    gamma, beta = rng.normal(size=c) + 1, rng.normal(size=c)
    w = rng.normal(size=shape)
    eps = 1e-5

    def loss(x_, gamma_, beta_):
        return toy_loss(forward(x_, gamma_, beta_, eps)[0], w)[0]

    z, cache = forward(x, gamma, beta, eps)
    _, delta = toy_loss(z, w)
    dx, dgamma, dbeta = backward(delta, cache, gamma, x)
    h = 1e-5

    def central(f, v):
        g = np.zeros_like(v)
        for idx in np.ndindex(v.shape):
            vp, vm = v.copy(), v.copy()
            vp[idx] += h
            vm[idx] -= h
            g[idx] = (f(vp) - f(vm)) / (2 * h)
        return g

    assert _rel(dx, central(lambda v: loss(v, gamma, beta), x)) < 1e-6
    assert _rel(dgamma, central(lambda v: loss(x, v, beta), gamma)) < 1e-6
    assert _rel(dbeta, central(lambda v: loss(x, gamma, v), beta)) < 1e-6
    # The normalised values have mean 0 and (biased) variance var/(var + eps) per channel.
    ax = _axes(x)
    np.testing.assert_allclose(cache["xhat"].mean(axis=ax), 0, atol=1e-12)
    np.testing.assert_allclose(cache["var"], x.var(axis=ax), rtol=1e-12)


def test_running_statistics_as_pytorch_defines_them():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, 4))
    _, cache = forward(x, np.ones(4), np.zeros(4), 1e-5)
    rm = F["running_mean_update"](np.zeros(4), cache["mean"], 0.1)
    rv = F["running_var_update"](np.ones(4), cache["var"], cache["m"], 0.1)
    np.testing.assert_allclose(rm, 0.1 * x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(rv, 0.9 + 0.1 * x.var(axis=0, ddof=1), rtol=1e-12)
    np.testing.assert_allclose(F["var_unbiased"](cache["var"], 6), x.var(axis=0, ddof=1), rtol=1e-12)


@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 3, 2)])
def test_agrees_with_pytorch(shape):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    x = rng.normal(size=shape) * 1.5 - 0.5
    c = shape[1]
    gamma, beta = rng.normal(size=c) + 1, rng.normal(size=c)
    w = rng.normal(size=shape)
    eps, momentum = 1e-3, 0.2
    layer = (torch.nn.BatchNorm1d if len(shape) == 2 else torch.nn.BatchNorm2d)(c, eps=eps, momentum=momentum)
    layer = layer.double().train()
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(gamma))
        layer.bias.copy_(torch.from_numpy(beta))
    xt = torch.from_numpy(x).requires_grad_(True)
    out = layer(xt)
    wt = torch.from_numpy(w)
    (wt * out + out ** 3 / 3).sum().backward()

    z, cache = forward(x, gamma, beta, eps)
    _, delta = toy_loss(z, w)
    dx, dgamma, dbeta = backward(delta, cache, gamma, x)
    np.testing.assert_allclose(z, out.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(dgamma, layer.weight.grad.numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(dbeta, layer.bias.grad.numpy(), rtol=1e-9, atol=1e-11)
    net = symnet.Network(list(shape[1:]), [symnet.BatchNorm(eps=eps, momentum=momentum)])
    state = net.init_state()
    rm = F["running_mean_update"](state["running_mean1"], cache["mean"], momentum)
    rv = F["running_var_update"](state["running_var1"], cache["var"], cache["m"], momentum)
    np.testing.assert_allclose(rm, layer.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(rv, layer.running_var.numpy(), rtol=1e-12)
    # Evaluation: the running statistics normalise.
    layer.eval()
    with torch.no_grad():
        expected = layer(xt).numpy()
    inv = F["inv_std"](rv, eps)
    xhat = F["xhat"](x, _per_channel(rm, x), _per_channel(inv, x))
    np.testing.assert_allclose(F["z"](xhat, _per_channel(gamma, x), _per_channel(beta, x)), expected,
                               rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- the document
def test_derivation_document_shows_the_input_gradient():
    net = bn_net()
    d = symnet.derive(net)
    assert d.gradient("gamma2").shape == (3,) and d.gradient("beta2").shape == (3,)
    assert {"W1", "b1", "gamma2", "beta2", "W3", "b3", "x"} <= set(d.gradients)
    dx_steps = [s for s in d.steps if s.layer == 2 and str(s.lhs) == r"\frac{\partial \mathcal{L}}{\partial u_{i}}"]
    assert len(dx_steps) >= 3
    final = dx_steps[-1].rhs
    names = bn._names(net.placed[1])
    assert final == bn.generic_batchnorm()["dx"].xreplace(names)
    md, tex = d.to_markdown(), d.to_latex()
    from symnet.render import latex, md_math
    for text, conv in ((md, md_math), (tex, lambda s: s)):
        assert conv(latex(final)) in text
        assert r"\hat{u}_{i} = \frac{u_{i} - \mu_{c}}{\sqrt{\epsilon + \sigma^{2}_{c}}}" in text
        assert r"\frac{\partial \mathcal{L}}{\partial \gamma^{(2)}_{c}}" in text
        assert r"\gamma^{(2)}" in text and "gamma^{(2)}" not in text.replace(r"\gamma^{(2)}", "")
        assert "running" in text
    # the layer below receives the passed-down gradient
    assert r"\delta^{(1)}_{i} = \bar{u}^{(2)}_{i}" in md
    # evaluation: the running statistics are constants, dx = gamma delta / sqrt(var_run + eps)
    (ev,) = [s for s in d.steps if s.layer == 2 and "evaluation" in str(s.lhs) and "partial" in str(s.lhs)]
    assert not ev.rhs.has(sp.Symbol(r"\sigma^{2}_{c}")) and "run" in str(ev.rhs) and "gamma" in str(ev.rhs)


def test_conv_network_document_renders_and_compiles(tmp_path):
    import shutil
    net = symnet.Network([2, 4, 4], [symnet.Conv2D(2, 3), symnet.BatchNorm("relu"), symnet.Flatten(),
                                     symnet.Dense(2), symnet.BatchNorm("sigmoid")], loss="bce", name="bn_cnn")
    d = symnet.derive(net)
    md = d.to_markdown()
    assert r"\bar{m} = 4 m" in md and r"\bar{u}^{(2)}_{cij}" in md
    assert {"gamma2", "beta2", "gamma5", "beta5", "W1", "W4", "x"} <= set(d.gradients)
    if shutil.which("pdflatex") is None:
        pytest.skip("no pdflatex")
    from symnet.render import compile_pdf
    assert compile_pdf(d.to_latex())[:4] == b"%PDF"
