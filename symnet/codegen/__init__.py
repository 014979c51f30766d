"""Code generation: Numba kernels whose element-wise math is printed by SymPy
from the Derivation, with loops, memory and BLAS calls from Jinja templates."""
from .generate import cli_generate, default_cache_dir, generate, load_module, main_generate, render, write
from .printer import NumbaPrinter, numba_code

__all__ = ["generate", "render", "write", "load_module", "default_cache_dir", "cli_generate",
           "main_generate", "NumbaPrinter", "numba_code"]
