"""The Derivation: ordered chain-rule steps plus what code generation needs."""
from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

# Scalar symbols the element-wise kernel math is written in.
Z = sp.Symbol("z", real=True)        # a pre-activation entry
A = sp.Symbol("a", real=True)        # the activation g(z)
Y = sp.Symbol("y", real=True)        # the target entry
P = sp.Symbol("p", real=True)        # a softmax probability
N_OUT = sp.Symbol("n", integer=True, positive=True)   # outputs per example
M = sp.Symbol("m", integer=True, positive=True)       # batch size

# Index symbols of the element-wise forms.
# i, j: element indices; h: a unit of the layer above (or a class) summed in a backward step
# (k is the kernel size in the documents, never an index).
I, J, K = sp.symbols("i j h", integer=True, nonnegative=True)


@dataclass(frozen=True)
class Step:
    """One line of a derivation: lhs = rhs, because `why`.

    lhs and rhs are SymPy objects or LaTeX strings; `form` says which view the
    step belongs to: "forward", "loss", "element", "matrix", "batch", "shape".
    """
    lhs: object
    rhs: object
    why: str
    form: str
    layer: int | None = None


@dataclass(frozen=True)
class Gradient:
    """The gradient of the batch loss with respect to one parameter or the input."""
    name: str                  # "W2", "b2", "x"
    shape: tuple
    layer: int
    element: Step              # per example, element-wise
    matrix: Step               # per example, matrix form
    batch: Step                # averaged over the batch (row-major batch matrices)


@dataclass(frozen=True)
class ActivationMath:
    """g and g' of one layer as expressions of the scalar symbol x, plus g'
    written through a = g(z) when SymPy can (sigma' = a(1 - a)), and g' defined
    at its removable singularities for numeric code (sinc'(0) = 0)."""
    name: str
    g: sp.Expr
    dg: sp.Expr
    dg_in_a: sp.Expr | None
    dg_numeric: sp.Expr


@dataclass(frozen=True)
class OutputMath:
    """The loss and delta^(L) of the output layer, per element.

    kind "elementwise": per example loss = (1/n) sum_i loss_value(z_i, y_i),
    delta_i = delta(z_i, y_i) (the 1/n included). kind "softmax": loss per
    example = logsumexp(z) - sum_i y_i z_i, delta_i = delta(p_i, y_i).
    """
    kind: str
    loss_value: sp.Expr | None     # in Z, Y (elementwise, stable form)
    delta: sp.Expr                 # in Z, Y, N_OUT (elementwise) or P, Y (softmax)
    delta_in_a: sp.Expr | None     # the same written through A where possible
    activation: ActivationMath | None


@dataclass
class Derivation:
    network: object
    steps: list[Step] = field(default_factory=list)
    gradients: dict[str, Gradient] = field(default_factory=dict)
    activations: dict[int, ActivationMath] = field(default_factory=dict)   # by layer position
    output: OutputMath | None = None
    shapes: dict[str, tuple] = field(default_factory=dict)   # quantity name -> shape

    def gradient(self, name: str) -> Gradient:
        from ..errors import SpecError
        if name not in self.gradients:
            raise SpecError(f"no gradient named {name!r} (known: {', '.join(self.gradients)})")
        return self.gradients[name]

    def steps_of(self, form: str) -> list[Step]:
        return [s for s in self.steps if s.form == form]

    # Rendering lives in symnet.render; these are the entry points.
    def to_latex(self) -> str:
        from ..render import to_latex
        return to_latex(self)

    def to_markdown(self) -> str:
        from ..render import to_markdown
        return to_markdown(self)

    def _repr_html_(self) -> str:
        from ..render import html_fragment
        return html_fragment(self)

    def _repr_latex_(self) -> str:
        from ..render import to_latex_fragment
        return to_latex_fragment(self)
