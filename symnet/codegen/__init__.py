"""Code generation: Numba kernels printed from the derivation."""
