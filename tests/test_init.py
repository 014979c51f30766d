"""symnet.init: shapes, seeds, the statistics of each scheme, torch's fans."""

import math
import warnings

import numpy as np
import pytest

from symnet.errors import SpecError
from symnet.init import SCHEMES, fan_in_out, init_params

SHAPES = {"W1": (400, 300), "b1": (400,), "W2": (64, 16, 3, 3), "b2": (64,), "gamma1": (64,), "beta1": (64,)}


def _quiet(*args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return init_params(*args, **kw)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_shapes_dtype_and_fixed_params(scheme):
    for dtype in ("float64", "float32"):
        p = _quiet(SHAPES, scheme, seed=1, dtype=dtype)
        assert list(p) == list(SHAPES)
        for k, shape in SHAPES.items():
            assert p[k].shape == shape and p[k].dtype == np.dtype(dtype)
        assert not p["b1"].any() and not p["b2"].any() and not p["beta1"].any()
        assert np.all(p["gamma1"] == 1)


def test_seed_reproducible():
    a = init_params(SHAPES, "he", seed=5)
    b = init_params(SHAPES, "he", seed=5)
    c = init_params(SHAPES, "he", seed=6)
    for k in SHAPES:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["W1"], c["W1"])


def test_fans_match_torch():
    torch = pytest.importorskip("torch", reason="torch's fan computation is the reference")
    from torch.nn.init import _calculate_fan_in_and_fan_out

    for shape in [(5, 3), (8, 3, 5, 5), (16, 1, 3, 3), (4, 2, 3)]:
        assert fan_in_out(shape) == _calculate_fan_in_and_fan_out(torch.empty(shape))


@pytest.mark.parametrize(
    "scheme,kind,scale",
    [
        ("he", "normal", lambda fi, fo: math.sqrt(2 / fi)),
        ("he_uniform", "uniform", lambda fi, fo: math.sqrt(6 / fi)),
        ("xavier", "uniform", lambda fi, fo: math.sqrt(6 / (fi + fo))),
        ("xavier_uniform", "uniform", lambda fi, fo: math.sqrt(6 / (fi + fo))),
        ("xavier_normal", "normal", lambda fi, fo: math.sqrt(2 / (fi + fo))),
        ("small", "normal", lambda fi, fo: 0.01),
    ],
)
def test_statistics(scheme, kind, scale):
    p = init_params(SHAPES, scheme, seed=0)
    for k in ("W1", "W2"):
        w = p[k]
        s = scale(*fan_in_out(w.shape))
        if kind == "normal":
            expected_std = s
        else:  # U(-a, a) has std a / sqrt(3) and never leaves [-a, a]
            expected_std = s / math.sqrt(3)
            assert np.abs(w).max() <= s and np.abs(w).max() > 0.99 * s
        # Tens of thousands of samples: mean and std within a few percent.
        assert abs(w.mean()) < 0.05 * expected_std
        assert w.std() == pytest.approx(expected_std, rel=0.03)


def test_zeros_warns_about_symmetry():
    with pytest.warns(UserWarning, match="symmetry"):
        p = init_params(SHAPES, "zeros")
    assert not any(v.any() for k, v in p.items() if not k.startswith("gamma"))


def test_errors():
    with pytest.raises(SpecError, match="he, he_uniform, xavier"):
        init_params(SHAPES, "glorot")
    with pytest.raises(SpecError, match="dtype"):
        init_params(SHAPES, dtype="int32")
    with pytest.raises(SpecError, match="W1"):
        init_params({"W1": (0, 3)})
