"""symnet optimizers: trajectories of the training optimisers on 2-D test functions."""
import numpy as np
import pytest

from symnet.cli import main
from symnet.optimizer_paths import FUNCTIONS, OPTIMIZERS, animate, figure, parse_lrs, trajectories, trajectory

torch = pytest.importorskip("torch")


def test_sgd_follows_the_analytic_gradient():
    # quadratic x^2/2 + 5 y^2: gradient (x, 10 y); SGD contracts x by (1 - lr), y by (1 - 10 lr).
    lr, steps = 0.05, 30
    path = trajectory("quadratic", "sgd", lr, steps)
    x0, y0 = FUNCTIONS["quadratic"].start
    k = np.arange(steps + 1)
    np.testing.assert_allclose(path[:, 0], x0 * (1 - lr) ** k, rtol=1e-12)
    np.testing.assert_allclose(path[:, 1], y0 * (1 - 10 * lr) ** k, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("name,torch_cls,kw", [("adam", torch.optim.Adam, {}),
                                                ("rmsprop", torch.optim.RMSprop, {}),
                                                ("momentum", torch.optim.SGD, {"momentum": 0.9})])
def test_paths_match_torch_on_rosenbrock(name, torch_cls, kw):
    lr, steps = 1e-3, 40
    p = torch.tensor(FUNCTIONS["rosenbrock"].start, dtype=torch.float64, requires_grad=True)
    opt = torch_cls([p], lr=lr, **kw)
    ref = [p.detach().numpy().copy()]
    for _ in range(steps):
        opt.zero_grad()
        x, y = p[0], p[1]
        ((1 - x) ** 2 + 100 * (y - x**2) ** 2).backward()
        opt.step()
        ref.append(p.detach().numpy().copy())
    np.testing.assert_allclose(trajectory("rosenbrock", name, lr, steps), np.array(ref), rtol=1e-6, atol=1e-9)


def test_minimisers_reach_the_minimum_and_divergence_stops():
    paths = trajectories("quadratic", 300)
    for o, (_, path) in paths.items():
        assert np.linalg.norm(path[-1]) < 0.05, o
    # lr x 10 makes SGD diverge on y (|1 - 10 lr| > 1): the path stops, finite.
    lr, path = trajectories("quadratic", 300, factor=10.0)["sgd"]
    assert lr == pytest.approx(1.5) and len(path) < 301 and np.all(np.isfinite(path))


def test_figure_lines_end_where_optimisers_end():
    fig = figure("beale", 60, {"adam": 0.02})
    ax = fig.axes[0]
    paths = trajectories("beale", 60, {"adam": 0.02})
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [f"{o} (lr {paths[o][0]:g})" for o in OPTIMIZERS]
    assert "adam (lr 0.02)" in labels
    ends = {line.get_label(): np.c_[line.get_xdata(), line.get_ydata()][-1] for line in ax.lines
            if line.get_label().split(" ")[0] in OPTIMIZERS}
    for o, (lr, path) in paths.items():
        np.testing.assert_allclose(ends[f"{o} (lr {lr:g})"], path[-1])
    three = figure("quadratic", 20, lr_range=True)
    assert len(three.axes) == 3
    sgd = [t.get_text() for a in three.axes for t in a.get_legend().get_texts() if t.get_text().startswith("sgd")]
    assert sgd == ["sgd (lr 0.015)", "sgd (lr 0.15)", "sgd (lr 1.5)"]


def test_animation_and_cli(tmp_path, capsys):
    from PIL import Image

    gif = animate("saddle", 20, tmp_path / "saddle.gif", frames=5)
    with Image.open(gif) as im:
        assert im.n_frames == 5
    assert main(["optimizers", "--function", "quadratic", "--steps", "5", "-o", str(tmp_path / "q.png")]) == 0
    assert (tmp_path / "q.png").stat().st_size > 1000 and "adam lr 0.3" in capsys.readouterr().out
    assert main(["optimizers", "--function", "himmelblau", "-o", str(tmp_path / "x.png")]) == 2
    assert "rosenbrock" in capsys.readouterr().err
    with pytest.raises(Exception, match="optimizer=number"):
        parse_lrs("lbfgs=0.1")
