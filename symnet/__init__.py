"""symnet: neural networks written as mathematics.

From one symbolic source: backprop derivations (LaTeX/Markdown/PDF), generated
Numba training kernels, and a verifier for hand-derived gradient formulas.
"""
from .errors import (DataError, FormulaError, NotDifferentiableError, RenderError, ShapeError,
                     SpecError, SymnetError, TrainingError)
from .layers import AvgPool2D, BatchNorm, Conv2D, Dense, Dropout, Flatten, MaxPool2D, Softmax
from .network import Network
from .spec import from_dict, load
from .derive import Derivation, derive

__version__ = "0.1.0"

# Code generation, training and verification import numba and friends: load
# them on first use so `import symnet` and the CLI stay quick.
_LAZY = {"generate": ("symnet.codegen", "generate"), "train": ("symnet.train", "train"),
         "verify": ("symnet.verify", "verify"), "load_dataset": ("symnet.data", "load_dataset"),
         "gradient_check": ("symnet.check", "gradient_check")}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'symnet' has no attribute {name!r}")

__all__ = ["Network", "Dense", "Softmax", "Conv2D", "MaxPool2D", "AvgPool2D", "Flatten", "Dropout", "BatchNorm", "load", "from_dict", "derive", "Derivation",
           "SymnetError", "SpecError", "ShapeError", "FormulaError", "NotDifferentiableError",
           "DataError", "TrainingError", "RenderError", "__version__", *_LAZY]
