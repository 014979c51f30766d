"""Data sets: bundled ones, a user's .npz or .csv, seeded stratified splits,
normalisation fitted on the training split, and mini-batch indices."""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field

import numpy as np

from .errors import DataError, TrainingError

BUNDLED = ("digits", "breast_cancer", "iris", "xor", "and", "or")
# The logical functions of two inputs: their truth table, each row repeated
# LOGIC_REPEATS times so that stratified train/validation/test splits exist;
# every split is the truth table itself.
LOGIC = {"xor": np.logical_xor, "and": np.logical_and, "or": np.logical_or}
LOGIC_REPEATS = 50
NORMALIZE = ("standard", "minmax", "none")


@dataclass
class Normalizer:
    """Feature-wise standardisation ``(x - mean) / std`` over flattened features.

    Fitted on the training split only, so no statistic of the validation or
    test data leaks into training.
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray, std_floor: float = 1e-8) -> "Normalizer":
        """Mean and std per feature of X (rows are samples)."""
        flat = X.reshape(len(X), -1)
        mean = flat.mean(axis=0)
        std = flat.std(axis=0)
        # A constant feature has std 0: dividing by a tiny floor would blow any
        # different value in val/test up to ~1e8, so such features get std 1
        # and simply become 0 after centring.
        std = np.where(std < std_floor, 1.0, std)
        return cls(mean=mean, std=std)

    @classmethod
    def fit_minmax(cls, X: np.ndarray, std_floor: float = 1e-8) -> "Normalizer":
        """Min-max scaling of each feature to [-1, 1] on X (the lecture's second
        option) as the same affine map: mean = (max + min) / 2, std = (max - min) / 2."""
        flat = X.reshape(len(X), -1)
        lo, hi = flat.min(axis=0), flat.max(axis=0)
        half = (hi - lo) / 2.0
        return cls(mean=(hi + lo) / 2.0, std=np.where(half < std_floor, 1.0, half))

    def __call__(self, X: np.ndarray) -> np.ndarray:
        """Normalise X, keeping its shape."""
        flat = X.reshape(len(X), -1)
        return ((flat - self.mean) / self.std).reshape(X.shape).astype(X.dtype, copy=False)

    def inverse(self, X: np.ndarray) -> np.ndarray:
        """Undo the normalisation."""
        flat = X.reshape(len(X), -1)
        return (flat * self.std + self.mean).reshape(X.shape).astype(X.dtype, copy=False)


@dataclass
class Dataset:
    """Train/validation/test splits; X normalised, Y targets as floats, y int labels."""

    X_train: np.ndarray
    Y_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    Y_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    Y_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    input_shape: tuple
    name: str
    normalizer: Normalizer | None
    classes: np.ndarray = field(default=None)  # original label values, by index
    normalization: str = "standard"            # standard, minmax or none (NORMALIZE)

    @property
    def n_outputs(self) -> int:
        """Width of the targets Y (1 for a single-output binary task)."""
        return int(self.Y_train.shape[1])


# --------------------------------------------------------------------------
# Reading raw arrays


def _bundled(name: str):
    """X (n, d) and y of one of sklearn's bundled data sets."""
    if name in LOGIC:
        X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * LOGIC_REPEATS, dtype=float)
        return X, LOGIC[name](X[:, 0] > 0, X[:, 1] > 0).astype(np.int64)
    from sklearn import datasets

    loader = {
        "digits": datasets.load_digits,
        "breast_cancer": datasets.load_breast_cancer,
        "iris": datasets.load_iris,
    }[name]
    bunch = loader()
    return np.asarray(bunch.data, dtype=float), np.asarray(bunch.target)


def _read_npz(path: str):
    """X and y from a .npz file with keys 'X' and 'y'."""
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in ("X", "y") if k not in f.files]
            if missing:
                raise DataError(
                    f"{path}: missing key(s) {', '.join(missing)}; found {', '.join(f.files) or 'none'} "
                    "(expected 'X' and 'y')"
                )
            X, y = f["X"], f["y"]
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        # numpy's own text advises allow_pickle for any non-archive: never pass that on.
        why = "empty file" if os.path.getsize(path) == 0 else "not a NumPy .npz archive of arrays X and y"
        if isinstance(e, OSError) and e.strerror:
            why = e.strerror
        raise DataError(f"{path}: cannot read it ({why}; write one with numpy.savez(path, X=X, y=y))") from None
    if not np.issubdtype(X.dtype, np.number) or np.iscomplexobj(X):
        raise DataError(f"{path}: 'X' must be numeric, got dtype {X.dtype}")
    return X.astype(float), y


def _parse_row(cells, path, lineno):
    try:
        return [float(c) for c in cells]
    except ValueError:
        bad = next(c for c in cells if not _is_float(c))
        raise DataError(f"{path}:{lineno}: non-numeric value {bad.strip()!r}") from None


def _is_float(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _read_csv(path: str):
    """X and y from a comma-separated file; the last column is the label.

    A first row that is not all numbers is taken as a header and skipped.
    """
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read ({e})") from None
    rows = [(i + 1, line.split(",")) for i, line in enumerate(lines) if line.strip()]
    if rows and not all(_is_float(c) for c in rows[0][1]):
        rows = rows[1:]  # header row
    if not rows:
        raise DataError(f"{path}: no data rows")
    width = len(rows[0][1])
    if width < 2:
        raise DataError(f"{path}: need at least 2 columns (features, then the label), got {width}")
    values = []
    for lineno, cells in rows:
        if len(cells) != width:
            raise DataError(f"{path}:{lineno}: {len(cells)} columns, expected {width}")
        values.append(_parse_row(cells, path, lineno))
    data = np.array(values, dtype=float)
    return data[:, :-1], data[:, -1]


def _read(name_or_path: str):
    """(X, y, name) for a bundled name or a file path."""
    key = str(name_or_path)
    if key in BUNDLED:
        X, y = _bundled(key)
        return X, y, key
    ext = os.path.splitext(key)[1].lower()
    if ext not in (".npz", ".csv"):
        raise DataError(
            f"{key}: unknown data set; give one of {', '.join(BUNDLED)} or a .npz/.csv file"
        )
    if not os.path.isfile(key):
        raise DataError(f"{key}: file not found")
    X, y = _read_npz(key) if ext == ".npz" else _read_csv(key)
    return X, y, os.path.splitext(os.path.basename(key))[0]


# --------------------------------------------------------------------------
# Checking and shaping


def _encode_labels(y, path):
    """Integer labels 0..k-1 and the original label values."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{path}: 'y' must be a 1-D array of labels, got shape {y.shape}")
    if y.dtype == np.bool_:
        y = y.astype(np.int64)
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise DataError(f"{path}: labels must be integers (classification), found non-integer values")
        y = y.astype(np.int64)
    elif not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: labels must be integers, got dtype {y.dtype}")
    classes, y_int = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise DataError(f"{path}: need at least 2 classes, found {len(classes)}")
    return y_int.astype(np.int64), classes


def _resolve_shape(X, name, image, input_shape):
    """The per-sample shape: explicit input_shape, (1, s, s) for image=True, else X's."""
    n_features = int(np.prod(X.shape[1:]))
    if input_shape is not None:
        shape = tuple(int(s) for s in np.atleast_1d(input_shape))
        if int(np.prod(shape)) != n_features:
            raise DataError(
                f"{name}: input_shape={shape} holds {int(np.prod(shape))} values "
                f"but each sample has {n_features} features"
            )
        return shape
    if image:
        if X.ndim >= 3:
            return tuple(X.shape[1:]) if X.ndim == 4 else (1,) + tuple(X.shape[1:])
        side = int(round(np.sqrt(n_features)))
        if side * side != n_features:
            raise DataError(
                f"{name}: image=True needs a square number of features, got {n_features}; "
                "give input_shape instead"
            )
        return (1, side, side)
    return tuple(X.shape[1:])


def _check_fractions(val_fraction, test_fraction):
    for key, v in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= v < 1.0:
            raise DataError(f"{key}={v} must be in [0, 1)")
    if val_fraction + test_fraction >= 1.0:
        raise DataError(
            f"val_fraction + test_fraction = {val_fraction + test_fraction} leaves no training data"
        )


def _split(idx, y, fraction, seed, name, what):
    """Stratified split of index array idx into (rest, part) with part ~ fraction."""
    if fraction == 0:
        return idx, idx[:0]
    from sklearn.model_selection import train_test_split

    try:
        rest, part = train_test_split(idx, test_size=fraction, random_state=seed, stratify=y[idx])
    except ValueError as e:
        raise DataError(f"{name}: cannot make a stratified {what} split ({e})") from None
    return np.sort(rest), np.sort(part)


def _targets(y, n_classes, binary_single_output, dtype):
    if n_classes == 2 and binary_single_output:
        return y[:, None].astype(dtype)
    return np.eye(n_classes, dtype=dtype)[y]


# --------------------------------------------------------------------------
# Public


def load_dataset(
    name_or_path,
    seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    *,
    image: bool = False,
    input_shape=None,
    binary_single_output: bool = False,
    normalize: bool = True,
    dtype="float64",
) -> Dataset:
    """Load, split (seeded, stratified) and normalise a data set.

    ``name_or_path``: one of ``digits``, ``breast_cancer``, ``iris`` or a path to
    a ``.npz`` (keys ``X``, ``y``) or ``.csv`` (last column the label).
    ``image=True`` (or ``input_shape=(C, H, W)``) shapes X as images for a CNN,
    e.g. digits as (n, 1, 8, 8); otherwise digits are (n, 64).
    Two-class tasks get Y of shape (n, 1) when ``binary_single_output``.
    """
    _check_fractions(val_fraction, test_fraction)
    X, y, name = _read(name_or_path)
    where = str(name_or_path)
    if X.ndim < 2:
        raise DataError(f"{where}: 'X' must have one row per sample, got shape {X.shape}")
    if len(X) != len(np.asarray(y)):
        raise DataError(f"{where}: X has {len(X)} rows but y has {len(np.asarray(y))} labels")
    if not np.all(np.isfinite(X)):
        raise DataError(f"{where}: X contains NaN or infinite values")
    y, classes = _encode_labels(y, where)
    shape = _resolve_shape(X, where, image, input_shape)
    X = X.reshape((len(X),) + shape).astype(dtype)

    idx = np.arange(len(X))
    rest, test = _split(idx, y, test_fraction, seed, where, "test")
    # val_fraction is of the whole set, so rescale it to the remainder.
    train, val = _split(rest, y, val_fraction / (1.0 - test_fraction), seed, where, "validation")

    normalizer = _normalizer(normalize, X[train])
    prep = normalizer if normalizer is not None else (lambda a: a)
    n_classes = len(classes)
    parts = {}
    for split, ids in (("train", train), ("val", val), ("test", test)):
        parts[f"X_{split}"] = prep(X[ids])
        parts[f"Y_{split}"] = _targets(y[ids], n_classes, binary_single_output, dtype)
        parts[f"y_{split}"] = y[ids]
    return Dataset(
        **parts,
        n_classes=n_classes,
        input_shape=shape,
        name=name,
        normalizer=normalizer,
        classes=classes,
        normalization="none" if normalizer is None else {True: "standard"}.get(normalize, normalize),
    )


def _normalizer(kind, X_train):
    """normalize=True/"standard": (x - mean) / std; "minmax": to [-1, 1]; False/"none": none."""
    kind = {True: "standard", False: "none"}.get(kind, kind)
    if kind not in NORMALIZE:
        raise DataError(f"normalize={kind!r}: choose one of {', '.join(NORMALIZE)}")
    if kind == "none":
        return None
    return Normalizer.fit(X_train) if kind == "standard" else Normalizer.fit_minmax(X_train)


def iterate_minibatches(n: int, batch_size: int, rng=None):
    """Yield index arrays covering range(n) once, in a fresh random order.

    ``batch_size >= n`` gives one full batch; ``batch_size=1`` is stochastic
    gradient descent. The last batch may be smaller. ``rng`` is a numpy
    Generator (or a seed); call once per epoch for a new shuffle.
    """
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise TrainingError(f"batch_size={batch_size!r} must be a positive integer")
    if n < 1:
        raise TrainingError(f"cannot make mini-batches of an empty training set (n={n})")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    order = rng.permutation(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]
