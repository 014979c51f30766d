"""symnet: neural networks written as mathematics.

From one symbolic source: backprop derivations (LaTeX/Markdown/PDF), generated
Numba training kernels, and a verifier for hand-derived gradient formulas.
"""
from .errors import (DataError, FormulaError, NotDifferentiableError, RenderError, ShapeError,
                     SpecError, SymnetError, TrainingError)
from .layers import Dense, Softmax
from .network import Network
from .spec import from_dict, load
from .derive import Derivation, derive

__version__ = "0.1.0"

__all__ = ["Network", "Dense", "Softmax", "load", "from_dict", "derive", "Derivation",
           "SymnetError", "SpecError", "ShapeError", "FormulaError", "NotDifferentiableError",
           "DataError", "TrainingError", "RenderError", "__version__"]
