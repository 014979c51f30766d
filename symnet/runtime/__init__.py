"""The static half of every generated kernel module: ordinary source, linted and
unit-tested, compiled once per machine through Numba's cache and imported by the
generated files (`symnet generate --standalone` inlines it instead).

- arrays:    element-wise helpers, matrix products (BLAS and loops)
- optim:     fused optimiser updates (SGD, momentum, RMSprop, Adam, Adagrad; L2/L1)
- conv:      convolution, pooling and flatten kernels
- threads:   a batch cut into row shares run in a thread pool, CPU pinning
- workspace: per-thread work arrays kept between calls
- checks:    parameter, batch and dropout-mask checks of the Python API
- api:       the Python API itself (NetworkAPI): one object per generated module, bound to its kernels
- precompile: `python -m symnet.runtime.precompile` compiles the kernels above once per
  machine, with the signatures generated conv networks call (not inlined by --standalone)

Nothing here allocates at import, and nothing depends on a particular network.
"""
# The modules in the order `--standalone` inlines them (each one's imports hoisted).
MODULES = ("arrays", "optim", "conv", "threads", "workspace", "checks", "api")
