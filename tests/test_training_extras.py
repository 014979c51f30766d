"""Training extras of the lectures: augmentation, adversarial training, min-max
normalisation, sparse initialisation, elastic net, the logical data sets.

ImageLinear is a TEST STAND-IN kernel (softmax regression on flattened images,
hand-written gradients, numpy only) so resume checks run without compiling;
one test trains with a generated kernel's derived input gradient."""
import json

import numpy as np
import pytest

from symnet import Dense, Flatten, Network
from symnet.adversarial import AdversarialMixer
from symnet.attack import fgsm
from symnet.augment import MAX_DEGREES, NOISE_STD, augment, parse_kinds
from symnet.data import Normalizer, load_dataset
from symnet.errors import DataError, TrainingError
from symnet.init import SPARSE_CONNECTIONS, init_params
from symnet.train import Regularizer, train

pytest.importorskip("sklearn")


class ImageLinear:
    """TEST STAND-IN: softmax(W flatten(x) + b) with softmax cross entropy."""

    def _p(self, params, X):
        z = X.reshape(len(X), -1) @ params["W2"].T + params["b2"]
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def forward(self, params, X):
        return self._p(params, X)

    def loss_and_grads(self, params, X, Y):
        p = self._p(params, X)
        dz = (p - Y) / len(X)
        return float(-np.sum(Y * np.log(p + 1e-300)) / len(X)), {"W2": dz.T @ X.reshape(len(X), -1),
                                                                  "b2": dz.sum(0)}

    def loss_and_input_grad(self, params, X, Y):
        p = self._p(params, X)
        return float(-np.sum(Y * np.log(p + 1e-300)) / len(X)), ((p - Y) / len(X) @ params["W2"]).reshape(X.shape)


def image_net():
    return Network(input=[1, 8, 8], layers=[Flatten(), Dense(10)], loss="softmax_cross_entropy", name="img_lin")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=1, image=True)


# -------------------------------------------------------------------- augmentation

def test_augment_kinds_against_their_definitions():
    from scipy.ndimage import rotate

    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 1, 5, 5))
    out = augment(X, ("flip",), np.random.default_rng(1))
    flip = np.random.default_rng(1).random(6) < 0.5
    assert 0 < flip.sum() < 6
    np.testing.assert_array_equal(out[flip], X[flip][..., ::-1])
    np.testing.assert_array_equal(out[~flip], X[~flip])

    out = augment(X, ("crop",), np.random.default_rng(2))
    r = np.random.default_rng(2)
    dy, dx = r.integers(0, 3, 6), r.integers(0, 3, 6)
    padded = np.pad(X, ((0, 0), (0, 0), (1, 1), (1, 1)))
    for i in range(6):
        np.testing.assert_array_equal(out[i], padded[i, :, dy[i]:dy[i] + 5, dx[i]:dx[i] + 5])

    out = augment(X, ("rotate",), np.random.default_rng(3))
    angles = np.random.default_rng(3).uniform(-MAX_DEGREES, MAX_DEGREES, 6)
    np.testing.assert_allclose(out[0], rotate(X[0], angles[0], axes=(1, 2), reshape=False, order=1))

    big = np.zeros((200, 1, 8, 8))
    noise = augment(big, ("noise",), np.random.default_rng(4))
    assert noise.std() == pytest.approx(NOISE_STD, rel=0.05)
    assert augment(X, (), rng) is X
    with pytest.raises(TrainingError, match="choose from"):
        parse_kinds("flip,zoom")


def test_augmented_and_adversarial_training_resume_bit_identical(tmp_path, digits):
    kw = dict(kernel=ImageLinear(), lr=0.05, batch_size=64, seed=1, progress=False,
              augment="flip,crop,rotate,noise", adversarial=0.1, adversarial_ratio=0.5)
    whole = train(image_net(), digits, epochs=4, out=tmp_path / "a", **kw)
    train(image_net(), digits, epochs=2, out=tmp_path / "b", **kw)
    resumed = train(image_net(), digits, epochs=4, out=tmp_path / "b", resume=True, **kw)
    for k in whole.params:
        np.testing.assert_array_equal(whole.params[k], resumed.params[k])
    config = json.loads((tmp_path / "a" / "metrics.json").read_text())["config"]
    assert config["augment"] == ["flip", "crop", "rotate", "noise"]
    assert config["adversarial"] == 0.1 and config["adversarial_ratio"] == 0.5
    # Augmentation changes training (the same seed without it ends elsewhere).
    plain = train(image_net(), digits, epochs=4, kernel=ImageLinear(), lr=0.05, batch_size=64, seed=1,
                  progress=False)
    assert not np.array_equal(plain.params["W2"], whole.params["W2"])
    with pytest.raises(TrainingError, match="image inputs"):
        train(Network(input=[64], layers=[Dense(10)], loss="softmax_cross_entropy"),
              load_dataset("digits", seed=1), epochs=1, augment="flip", kernel=ImageLinear(), progress=False)


def test_adversarial_mixer_replaces_a_fraction_by_fgsm(digits):
    params = {k: v for k, v in image_net().init_params(seed=0).items()}
    mixer = AdversarialMixer(0.1, 0.25, digits.X_train, digits.normalizer)
    xb, yb = digits.X_train[:8], digits.Y_train[:8]
    mixed = mixer.mix(ImageLinear(), params, xb, yb)
    np.testing.assert_array_equal(mixed[2:], xb[2:])
    # By hand: raw digits span 0..16, so eps 0.1 is 1.6 grey levels, 1.6 / std in normalised units.
    _, g = ImageLinear().loss_and_input_grad(params, xb[:2], yb[:2])
    std = digits.normalizer.std.reshape(1, 8, 8)
    mean = digits.normalizer.mean.reshape(1, 8, 8)
    want = np.clip(xb[:2] + 1.6 / std * np.sign(g), (0 - mean) / std, (16 - mean) / std)
    np.testing.assert_allclose(mixed[:2], want, rtol=1e-12, atol=1e-12)
    raw = digits.normalizer.inverse(mixed[:2])
    assert raw.min() >= -1e-9 and raw.max() <= 16 + 1e-9
    with pytest.raises(TrainingError, match="ratio"):
        AdversarialMixer(0.1, 0.0, digits.X_train)


def test_adversarial_training_with_a_generated_kernel(kernel_dir, monkeypatch):
    from symnet.codegen import generate

    monkeypatch.setenv("SYMNET_CACHE", str(kernel_dir))
    net = Network(input=[4], layers=[Dense(6, "tanh"), Dense(3)], loss="softmax_cross_entropy",
                  name="iris_adv", dtype="float64")
    kernel = generate(net)
    data = load_dataset("iris", seed=0)
    res = train(net, data, kernel=kernel, epochs=3, lr=0.01, batch_size=16, adversarial=0.05, progress=False)
    assert np.isfinite(res.history["train_loss"]).all()
    # The mixer's examples are the attack module's FGSM with the derived input gradient.
    params = {k: np.ascontiguousarray(v) for k, v in res.params.items()}
    mixer = AdversarialMixer(0.05, 1.0, data.X_train, data.normalizer)
    xb, yb = data.X_train[:5], data.Y_train[:5]
    np.testing.assert_array_equal(mixer.mix(kernel, params, xb, yb),
                                  fgsm(kernel, params, xb, yb, mixer.step, clip=mixer.clip))


# -------------------------------------------------------------------- normalisation

def test_minmax_matches_sklearn_on_the_training_split():
    from sklearn.preprocessing import MinMaxScaler

    raw = load_dataset("breast_cancer", seed=2, normalize="none")
    mm = load_dataset("breast_cancer", seed=2, normalize="minmax")
    scaler = MinMaxScaler(feature_range=(-1, 1)).fit(raw.X_train)
    for split in ("train", "val", "test"):
        np.testing.assert_allclose(getattr(mm, f"X_{split}"), scaler.transform(getattr(raw, f"X_{split}")),
                                   atol=1e-12)
    assert mm.X_train.min() == pytest.approx(-1) and mm.X_train.max() == pytest.approx(1)
    assert mm.normalization == "minmax"
    np.testing.assert_allclose(mm.normalizer.inverse(mm.X_test), raw.X_test, atol=1e-9)
    # A constant feature stays finite (it becomes 0).
    n = Normalizer.fit_minmax(np.array([[1.0, 5.0], [3.0, 5.0]]))
    np.testing.assert_allclose(n(np.array([[2.0, 5.0]])), [[0.0, 0.0]])
    with pytest.raises(DataError, match="normalize"):
        load_dataset("iris", normalize="robust")


# -------------------------------------------------------------------- sparse init

def test_sparse_init_connects_each_unit_to_k_inputs():
    shapes = {"W1": (50, 100), "b1": (50,), "W2": (8, 3, 3, 3), "W3": (4, 6)}
    p = init_params(shapes, "sparse", seed=0)
    assert (np.count_nonzero(p["W1"], axis=1) == SPARSE_CONNECTIONS).all()
    assert (np.count_nonzero(p["W2"].reshape(8, -1), axis=1) == SPARSE_CONNECTIONS).all()
    assert (np.count_nonzero(p["W3"], axis=1) == 6).all()            # fewer inputs than k: all
    assert not p["b1"].any()
    # the non-zero weights are N(0, 1); positions differ from unit to unit
    from scipy import stats
    assert stats.kstest(p["W1"][p["W1"] != 0], "norm").pvalue > 0.01
    assert len({tuple(np.flatnonzero(r)) for r in p["W1"]}) > 45
    np.testing.assert_array_equal(p["W1"], init_params(shapes, "sparse", seed=0)["W1"])


# -------------------------------------------------------------------- elastic net

def test_elastic_net_penalty_and_gradient_by_numpy():
    reg = Regularizer(l2=0.3, l1=0.2)
    rng = np.random.default_rng(0)
    params = {"W1": rng.normal(size=(3, 4)), "b1": rng.normal(size=3), "W2": np.array([[0.0, -2.0]])}
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    W = [params["W1"], params["W2"]]
    assert reg.penalty(params) == pytest.approx(sum(0.3 * np.sum(w**2) + 0.2 * np.sum(np.abs(w)) for w in W))
    g = reg.add_grads(params, grads)
    np.testing.assert_allclose(g["W1"], 0.6 * params["W1"] + 0.2 * np.sign(params["W1"]))
    np.testing.assert_allclose(g["W2"], [[0.0, 0.6 * -2.0 - 0.2]])       # sign(0) = 0
    assert not g["b1"].any()
    penalty, gradient = reg.equations()      # SymPy's, for documents
    assert penalty.startswith(r"\text{elastic net: }") and r"\lambda_{1} \left|{w}\right|" in penalty
    assert gradient.endswith(r"\lambda_{1} \operatorname{sign}{\left(w \right)} + 2 \lambda_{2} w")


def test_elastic_net_reaches_sklearns_solution():
    """Linear regression with L1 + L2 by full-batch descent vs sklearn.linear_model.ElasticNet.

    symnet minimises mean((Xw + b - y)^2) + l2 ||w||^2 + l1 |w|; sklearn minimises
    (1/2n) ||Xw + b - y||^2 + alpha rho |w| + alpha (1 - rho) / 2 ||w||^2, i.e. half of
    ours with l1 = 2 alpha rho and l2 = alpha (1 - rho)."""
    from sklearn.linear_model import ElasticNet

    class Linear:   # TEST STAND-IN: z = W x + b with the mean squared error
        def forward(self, params, X):
            return X @ params["W1"].T + params["b1"]

        def loss_and_grads(self, params, X, Y):
            r = self.forward(params, X) - Y
            return float(np.mean(r**2)), {"W1": 2 * r.T @ X / len(X), "b1": 2 * r.sum(0) / len(X)}

    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 5))
    y = X @ np.array([1.5, 0.0, -2.0, 0.05, 0.0]) + 0.3 + 0.1 * rng.normal(size=80)
    alpha, rho = 0.1, 0.5
    ref = ElasticNet(alpha=alpha, l1_ratio=rho, tol=1e-10, max_iter=100000).fit(X, y)

    class Data:
        name, n_classes, classes, normalizer, input_shape, n_outputs = "reg", 2, None, None, (5,), 1
        X_train, Y_train, y_train = X, y[:, None], np.zeros(80, int)
        X_val = X_test = X[:0]
        Y_val = Y_test = y[:0, None]
        y_val = y_test = np.zeros(0, int)

    net = Network(input=[5], layers=[Dense(1)], loss="mse", name="enet", dtype="float64")
    res = train(net, Data, kernel=Linear(), optimizer="sgd", lr=0.01, batch_size=80, epochs=4000,
                l1=2 * alpha * rho, l2=alpha * (1 - rho), progress=False)
    np.testing.assert_allclose(res.params["W1"][0], ref.coef_, atol=5e-3)
    assert res.params["b1"][0] == pytest.approx(ref.intercept_, abs=5e-3)
    assert abs(res.params["W1"][0][1]) < 5e-3 and abs(ref.coef_[1]) == 0      # L1 zeroes it


# -------------------------------------------------------------------- logical data sets

def test_logic_data_sets_are_their_truth_tables():
    for name, table in (("xor", [0, 1, 1, 0]), ("and", [0, 0, 0, 1]), ("or", [0, 1, 1, 1])):
        d = load_dataset(name, seed=0, normalize="none")
        for split in ("train", "val", "test"):
            X, y = getattr(d, f"X_{split}"), getattr(d, f"y_{split}")
            assert len(X) > 0
            np.testing.assert_array_equal(y, [table[int(2 * a + b)] for a, b in X])


class ReferenceKernel:
    """symnet.trace (the derivation evaluated in numpy, float64) as a kernel: no compiling."""

    def __init__(self, net):
        from symnet.derive import derive
        self.derivation = derive(net)

    def _eval(self, params, X, Y):
        from symnet.trace import trace as ref_eval
        return ref_eval(self.derivation, params, X, Y)

    def forward(self, params, X):
        return self._eval(params, X, np.zeros((len(X), 1))).values["yhat"]

    def loss_and_grads(self, params, X, Y):
        ev = self._eval(params, X, Y)
        return ev.loss, {k: v for k, v in ev.grads.items() if k in params}


def test_xor_needs_a_hidden_layer():
    from symnet.spec import load

    results = {}
    for spec in ("xor_mlp", "xor_linear"):
        net = load(f"examples/{spec}.toml")
        for name in ("xor", "and"):
            data = load_dataset(name, seed=0, binary_single_output=True)
            res = train(net, data, kernel=ReferenceKernel(net), optimizer="adam", lr=0.05, epochs=30,
                        progress=False)
            results[spec, name] = (res.history["train_acc"][-1], res.test_accuracy)
    assert results["xor_mlp", "xor"] == (1.0, 1.0)
    assert max(results["xor_linear", "xor"]) <= 0.75          # no line separates XOR
    assert results["xor_linear", "and"] == (1.0, 1.0)          # AND is linearly separable
