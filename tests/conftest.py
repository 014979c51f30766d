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


@pytest.fixture(scope="session")
def dask_client():
    """A LocalCluster of two single-threaded worker processes, shared by the
    cluster and sweep tests (started once: ~5 s)."""
    distributed = pytest.importorskip("distributed", reason="pip install 'symnet[cluster]'")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        yield client
