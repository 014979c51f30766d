"""symnet.data: bundled sets, user files, splits, normalisation, mini-batches."""

import numpy as np
import pytest

from symnet.data import Normalizer, iterate_minibatches, load_dataset
from symnet.errors import DataError, SymnetError, TrainingError

pytest.importorskip("sklearn", reason="bundled data sets and splits come from scikit-learn")


def _sizes(ds):
    return len(ds.X_train), len(ds.X_val), len(ds.X_test)


def test_digits_flat_and_image():
    flat = load_dataset("digits")
    assert flat.X_train.shape[1:] == (64,) and flat.input_shape == (64,)
    assert flat.n_classes == 10 and flat.Y_train.shape == (len(flat.X_train), 10)
    assert sum(_sizes(flat)) == 1797
    img = load_dataset("digits", image=True)
    assert img.X_train.shape[1:] == (1, 8, 8) and img.input_shape == (1, 8, 8)
    # Same split and normalisation, only the shape differs.
    np.testing.assert_array_equal(img.X_train.reshape(len(img.X_train), -1), flat.X_train)
    img2 = load_dataset("digits", input_shape=(1, 8, 8))
    np.testing.assert_array_equal(img2.X_test, img.X_test)
    with pytest.raises(DataError, match="input_shape"):
        load_dataset("digits", input_shape=(1, 7, 7))


def test_split_sizes_stratified_and_seeded():
    ds = load_dataset("iris", seed=3)
    n_train, n_val, n_test = _sizes(ds)
    assert n_test == pytest.approx(0.15 * 150, abs=1)
    assert n_val == pytest.approx(0.15 * 150, abs=1)
    # Stratified: each class keeps roughly its 1/3 share in every split.
    for y in (ds.y_train, ds.y_val, ds.y_test):
        counts = np.bincount(y, minlength=3)
        assert counts.max() - counts.min() <= 1
    again = load_dataset("iris", seed=3)
    np.testing.assert_array_equal(again.X_train, ds.X_train)
    other = load_dataset("iris", seed=4)
    assert not np.array_equal(other.y_train, ds.y_train) or not np.array_equal(other.X_train, ds.X_train)


def test_onehot_and_labels_agree():
    ds = load_dataset("iris")
    for Y, y in ((ds.Y_train, ds.y_train), (ds.Y_val, ds.y_val), (ds.Y_test, ds.y_test)):
        assert Y.dtype == np.float64
        np.testing.assert_array_equal(Y.argmax(axis=1), y)
        np.testing.assert_array_equal(Y.sum(axis=1), 1.0)


def test_binary_single_output():
    ds = load_dataset("breast_cancer", binary_single_output=True)
    assert ds.n_classes == 2 and ds.Y_train.shape == (len(ds.X_train), 1)
    np.testing.assert_array_equal(ds.Y_train[:, 0], ds.y_train)
    two = load_dataset("breast_cancer")
    assert two.Y_train.shape[1] == 2


def test_normalizer_fitted_on_train_only():
    ds = load_dataset("breast_cancer")
    np.testing.assert_allclose(ds.X_train.mean(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose(ds.X_train.std(axis=0), 1, atol=1e-10)
    # Validation data is not centred exactly: its statistics were not used.
    assert np.abs(ds.X_val.mean(axis=0)).max() > 1e-3
    raw = ds.normalizer.inverse(ds.X_test)
    np.testing.assert_allclose(ds.normalizer(raw), ds.X_test)


def test_constant_feature_stays_finite():
    X = np.ones((10, 2))
    X[:, 1] = np.arange(10)
    norm = Normalizer.fit(X)
    assert norm.std[0] == 1.0
    out = norm(np.array([[5.0, 3.0]]))
    assert np.all(np.isfinite(out)) and out[0, 0] == 4.0
    # digits has pixels that are always 0 in training.
    ds = load_dataset("digits")
    assert np.all(np.isfinite(ds.X_test)) and np.abs(ds.X_test).max() < 1e3


def test_npz_and_csv(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = np.repeat([3, 7, 9], 20)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    ds = load_dataset(str(tmp_path / "d.npz"))
    assert ds.name == "d" and ds.n_classes == 3 and ds.input_shape == (3,)
    np.testing.assert_array_equal(ds.classes, [3, 7, 9])

    rows = "\n".join(",".join(f"{v:.6f}" for v in x) + f",{lab}" for x, lab in zip(X, y))
    (tmp_path / "h.csv").write_text("a,b,c,label\n" + rows + "\n")
    (tmp_path / "n.csv").write_text(rows)
    with_header = load_dataset(str(tmp_path / "h.csv"))
    without = load_dataset(str(tmp_path / "n.csv"))
    np.testing.assert_array_equal(with_header.X_train, without.X_train)
    np.testing.assert_allclose(with_header.X_train, ds.X_train, atol=1e-5)


def test_file_errors(tmp_path):
    with pytest.raises(DataError, match="nothere.npz: file not found"):
        load_dataset(str(tmp_path / "nothere.npz"))
    with pytest.raises(DataError, match="unknown data set"):
        load_dataset("mnist_please")
    np.savez(tmp_path / "k.npz", data=np.zeros((4, 2)), y=np.arange(4))
    with pytest.raises(DataError, match=r"k\.npz: missing key\(s\) X"):
        load_dataset(str(tmp_path / "k.npz"))
    np.savez(tmp_path / "m.npz", X=np.zeros((4, 2)), y=np.arange(3))
    with pytest.raises(DataError, match=r"m\.npz: X has 4 rows but y has 3"):
        load_dataset(str(tmp_path / "m.npz"))
    (tmp_path / "bad.csv").write_text("1,2,0\n3,x,1\n")
    with pytest.raises(DataError, match=r"bad\.csv:2: non-numeric value 'x'"):
        load_dataset(str(tmp_path / "bad.csv"))
    (tmp_path / "ragged.csv").write_text("1,2,0\n3,1\n")
    with pytest.raises(DataError, match=r"ragged\.csv:2: 2 columns"):
        load_dataset(str(tmp_path / "ragged.csv"))
    np.savez(tmp_path / "f.npz", X=np.zeros((4, 2)), y=np.array([0.5, 1, 0, 1]))
    with pytest.raises(DataError, match="integers"):
        load_dataset(str(tmp_path / "f.npz"))
    with pytest.raises(DataError, match="val_fraction"):
        load_dataset("iris", val_fraction=1.2)
    assert issubclass(DataError, SymnetError)


def test_minibatches():
    rng = np.random.default_rng(0)
    batches = list(iterate_minibatches(10, 3, rng))
    assert [len(b) for b in batches] == [3, 3, 3, 1]
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(10))
    second = np.concatenate(list(iterate_minibatches(10, 3, rng)))
    assert not np.array_equal(second, np.concatenate(batches))  # reshuffled each epoch
    full = list(iterate_minibatches(10, 100, rng))
    assert len(full) == 1 and len(full[0]) == 10
    assert all(len(b) == 1 for b in iterate_minibatches(5, 1, rng))
    a = np.concatenate(list(iterate_minibatches(20, 4, np.random.default_rng(7))))
    b = np.concatenate(list(iterate_minibatches(20, 4, np.random.default_rng(7))))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(TrainingError, match="batch_size"):
        list(iterate_minibatches(10, 0, rng))
