"""NumbaPrinter lives in symnet.numba_printer (a leaf module: derive and codegen both
print with it, and derive imports nothing from codegen)."""
from ..numba_printer import NumbaPrinter, numba_code, sigmoid, softplus

__all__ = ["NumbaPrinter", "numba_code", "sigmoid", "softplus"]
