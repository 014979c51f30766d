"""Shared fixtures."""
import pytest


@pytest.fixture(scope="session")
def kernel_dir(request, tmp_path_factory):
    """Where tests write generated kernels: pytest's cache folder, so Numba's
    on-disk cache makes later runs fast (a temporary folder if caching is off)."""
    try:
        return request.config.cache.mkdir("symnet-kernels")
    except Exception:  # pragma: no cover - cache plugin disabled
        return tmp_path_factory.mktemp("kernels")
