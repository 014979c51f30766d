"""symnet filters: the lecture's filters through symnet's conv kernel, against scipy."""
import numpy as np
import pytest
from scipy.signal import correlate2d

from symnet.cli import main
from symnet.image_filters import FILTERS, apply, caption, figure, kernel, load_grey

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def image():
    return load_grey(max_side=64)


def test_each_filter_is_scipy_cross_correlation(image):
    assert image.ndim == 2 and max(image.shape) == 64 and 0 <= image.min() and image.max() <= 1
    for name in FILTERS:
        ref = correlate2d(image, kernel(name), mode="same", boundary="fill", fillvalue=0)
        np.testing.assert_allclose(apply(image, name), ref, atol=1e-12, err_msg=name)
    # The lecture's facts: identity is the image, shift moves it left by one pixel, blur keeps constants.
    np.testing.assert_array_equal(apply(image, "identity"), image)
    np.testing.assert_array_equal(apply(image, "shift")[:, :-1], image[:, 1:])
    flat = np.full((9, 9), 0.5)
    assert apply(flat, "gaussian 5x5")[4, 4] == pytest.approx(0.5)
    assert apply(flat, "sobel x")[4, 4] == pytest.approx(0.0) and apply(flat, "laplacian")[4, 4] == pytest.approx(0)


def test_grid_has_one_panel_per_filter_with_its_matrix(image):
    fig = figure(image)
    panels = [a for a in fig.axes if a.images]
    assert len(panels) == len(FILTERS) == 10
    for ax, name in zip(panels, FILTERS):
        assert ax.get_xlabel() == caption(name)
        np.testing.assert_allclose(ax.images[0].get_array(), apply(image, name))
    assert caption("box blur").startswith("box blur  (1/9 x)\n1 1 1")
    assert "-2  0  2" in caption("sobel x")


def test_cli(tmp_path, capsys):
    from PIL import Image

    src = tmp_path / "in.png"
    Image.fromarray((np.random.default_rng(0).random((20, 30, 3)) * 255).astype(np.uint8)).save(src)
    assert main(["filters", str(src), "-o", str(tmp_path / "f.png")]) == 0
    assert "20x30 grey image" in capsys.readouterr().out and (tmp_path / "f.png").stat().st_size > 1000
    (tmp_path / "bad.png").write_text("not an image")
    assert main(["filters", str(tmp_path / "bad.png"), "-o", str(tmp_path / "g.png")]) == 2
    assert "bad.png" in capsys.readouterr().err
