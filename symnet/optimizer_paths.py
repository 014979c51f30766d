"""Optimisers compared on 2-D test functions (``symnet optimizers``).

Each optimiser of :mod:`symnet.optim` (the very classes training uses) starts
from one point of a test function and takes N steps on the gradient, which
SymPy derives from the function's formula. The trajectories are drawn over the
function's contour plot, the learning rates in the legend; ``lr_range`` draws
a too-small, the default and a too-large learning rate side by side, and
``animate`` writes an animated GIF of the trajectories growing.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import sympy as sp

from .errors import SymnetError

_X, _Y = sp.symbols("x y", real=True)
OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam", "adagrad")
LR_FACTORS = (0.1, 1.0, 10.0)          # --lr-range: too small, default, too large
_BLOWUP = 1e6                          # a coordinate beyond this ends a trajectory (diverged)


class OptimizerPathError(SymnetError):
    """Bad arguments to ``symnet optimizers``."""


@dataclass(frozen=True)
class TestFunction:
    expr: sp.Expr
    start: tuple
    xlim: tuple
    ylim: tuple
    minimum: tuple | None      # a global minimum, or None (the saddle has none)
    lrs: dict                  # default learning rate per optimiser
    log_levels: bool = True


FUNCTIONS = {
    "rosenbrock": TestFunction((1 - _X) ** 2 + 100 * (_Y - _X**2) ** 2, (-1.5, 2.0), (-2, 2), (-1, 3), (1, 1),
                               {"sgd": 1e-3, "momentum": 1e-4, "rmsprop": 1e-2, "adam": 5e-2, "adagrad": 0.3}),
    "beale": TestFunction((sp.Rational(3, 2) - _X + _X * _Y) ** 2 + (sp.Rational(9, 4) - _X + _X * _Y**2) ** 2
                          + (sp.Rational(21, 8) - _X + _X * _Y**3) ** 2, (1.0, 1.5), (-4.5, 4.5), (-4.5, 4.5),
                          (3, 0.5), {"sgd": 1e-3, "momentum": 1e-3, "rmsprop": 1e-2, "adam": 5e-2, "adagrad": 0.3}),
    "saddle": TestFunction(_X**2 - _Y**2, (-1.5, 1e-3), (-2, 2), (-2, 2), None,
                           {"sgd": 5e-2, "momentum": 1e-2, "rmsprop": 1e-2, "adam": 5e-2, "adagrad": 0.3},
                           log_levels=False),
    "quadratic": TestFunction(_X**2 / 2 + 5 * _Y**2, (-4.0, 2.0), (-5, 5), (-3, 3), (0, 0),
                              {"sgd": 0.15, "momentum": 0.03, "rmsprop": 0.1, "adam": 0.3, "adagrad": 1.0}),
}


@lru_cache(maxsize=None)
def _numeric(name: str):
    from .numeric import lambdify

    expr = FUNCTIONS[name].expr
    return lambdify((_X, _Y), expr), lambdify((_X, _Y), [sp.diff(expr, _X), sp.diff(expr, _Y)])


def function(name: str) -> TestFunction:
    if name not in FUNCTIONS:
        raise OptimizerPathError(f"--function {name!r}: choose one of {', '.join(FUNCTIONS)}")
    return FUNCTIONS[name]


def parse_lrs(text: str | None) -> dict:
    """'sgd=0.01,adam=0.1' -> {'sgd': 0.01, 'adam': 0.1}."""
    out = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, eq, value = (s.strip() for s in item.partition("="))
        if not eq or name not in OPTIMIZERS:
            raise OptimizerPathError(f"--lr: {item.strip()!r} is not optimizer=number with optimizer one of "
                                     f"{', '.join(OPTIMIZERS)}")
        try:
            out[name] = float(value)
        except ValueError:
            raise OptimizerPathError(f"--lr: learning rate of {name} is {value!r}, not a number") from None
        if not out[name] > 0:
            raise OptimizerPathError(f"--lr: learning rate of {name} must be > 0")
    return out


def trajectory(name: str, optimizer: str, lr: float, steps: int) -> np.ndarray:
    """The points (steps + 1, 2) visited by ``optimizer`` from the start point;
    shorter when it diverges (the last point is the last finite one)."""
    from .optim import make_optimizer

    f = function(name)
    _, grad = _numeric(name)
    opt = make_optimizer(optimizer, lr)
    point = {"xy": np.array(f.start, dtype=np.float64)}
    path = [point["xy"].copy()]
    with np.errstate(all="ignore"):
        for _ in range(steps):
            opt.step(point, {"xy": np.asarray(grad(*point["xy"]), dtype=np.float64)})
            if not np.all(np.isfinite(point["xy"])) or np.abs(point["xy"]).max() > _BLOWUP:
                break
            path.append(point["xy"].copy())
    return np.array(path)


def trajectories(name: str, steps: int, lrs: dict | None = None, factor: float = 1.0) -> dict:
    """{optimizer: (lr, path)} for every optimiser."""
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise OptimizerPathError(f"--steps {steps!r}: give an integer >= 1")
    f = function(name)
    lrs = {**f.lrs, **(lrs or {})}
    return {o: (lrs[o] * factor, trajectory(name, o, lrs[o] * factor, steps)) for o in OPTIMIZERS}


def _contour(ax, name: str):
    f = function(name)
    value, _ = _numeric(name)
    xs = np.linspace(*f.xlim, 300)
    ys = np.linspace(*f.ylim, 300)
    gx, gy = np.meshgrid(xs, ys)
    z = value(gx, gy)
    if f.log_levels:
        levels = np.logspace(np.log10(max(z.min(), 1e-3)), np.log10(z.max()), 25)
        ax.contour(gx, gy, z, levels=levels, norm="log", cmap="viridis", linewidths=0.6)
    else:
        ax.contour(gx, gy, z, levels=25, cmap="viridis", linewidths=0.6)
    ax.plot(*f.start, "ko", markersize=5)
    if f.minimum is not None:
        ax.plot(*f.minimum, "r*", markersize=12)
    ax.set_xlim(*f.xlim)
    ax.set_ylim(*f.ylim)
    ax.set_xlabel("x")
    ax.set_ylabel("y")


def _draw(ax, paths: dict, upto: int | None = None):
    for o, (lr, path) in paths.items():
        p = path if upto is None else path[: upto + 1]
        ax.plot(p[:, 0], p[:, 1], "-", linewidth=1.4, label=f"{o} (lr {lr:g})")
        ax.plot(p[-1, 0], p[-1, 1], "o", color=ax.lines[-1].get_color(), markersize=3)
    ax.legend(fontsize=7, loc="best")


def figure(name: str, steps: int, lrs: dict | None = None, lr_range: bool = False):
    """The contour plot with every optimiser's trajectory (three panels with lr_range)."""
    from .runs import _figure

    factors = LR_FACTORS if lr_range else (1.0,)
    fig = _figure(5.2 * len(factors), 4.6)
    for i, factor in enumerate(factors):
        ax = fig.add_subplot(1, len(factors), i + 1)
        _contour(ax, name)
        _draw(ax, trajectories(name, steps, lrs, factor))
        what = {0.1: "too small: lr / 10", 1.0: "", 10.0: "too large: lr x 10"}[factor] if lr_range else ""
        ax.set_title(f"{name}, {steps} steps" + (f" ({what})" if what else ""), fontsize=9)
    return fig


def animate(name: str, steps: int, path, lrs: dict | None = None, frames: int = 60):
    from matplotlib.animation import FuncAnimation, PillowWriter

    from .runs import _figure

    paths = trajectories(name, steps, lrs)
    fig = _figure(5.2, 4.6)
    ax = fig.add_subplot(1, 1, 1)
    marks = np.unique(np.linspace(0, steps, min(frames, steps + 1)).astype(int))

    def frame(k):
        ax.clear()
        _contour(ax, name)
        _draw(ax, paths, int(k))
        ax.set_title(f"{name}, step {int(k)}", fontsize=9)

    FuncAnimation(fig, frame, frames=marks).save(str(path), writer=PillowWriter(fps=12))
    return Path(path)


def cli_optimizers(args) -> int:
    from .runs import _save_figure

    function(args.function)
    lrs = parse_lrs(args.lr)
    out = Path(args.output)
    if args.animate:
        if args.lr_range:
            raise OptimizerPathError("--animate and --lr-range: choose one")
        trajectories(args.function, args.steps, lrs)      # checks the arguments first
        animate(args.function, args.steps, out, lrs)
    else:
        _save_figure(figure(args.function, args.steps, lrs, args.lr_range), out)
    for o, (lr, p) in trajectories(args.function, args.steps, lrs).items():
        note = "" if len(p) == args.steps + 1 else f" (diverged after {len(p) - 1} steps)"
        print(f"{o:>8} lr {lr:<8g} ends at ({p[-1, 0]:.4g}, {p[-1, 1]:.4g}){note}")
    print(f"wrote {out}")
    return 0


def add_optimizers_arguments(p):
    p.add_argument("--function", default="rosenbrock", help=", ".join(FUNCTIONS))
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("-o", "--output", default="optimizers.png", help="PNG (GIF with --animate)")
    p.add_argument("--lr", default=None, help="learning rates, e.g. sgd=0.001,adam=0.05 (defaults per function)")
    p.add_argument("--animate", action="store_true", help="write an animated GIF")
    p.add_argument("--lr-range", action="store_true", help="panels for lr / 10, lr and lr x 10")
