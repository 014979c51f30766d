"""What a network needs in memory, estimated before anything is allocated, so
that `units = 1000000000` is refused with the figure instead of dying inside
numpy or at a kernel's import."""
from __future__ import annotations

import math
import os

from .errors import ShapeError

# Copies of the parameters while training: the parameters, their gradients,
# the optimiser's state (Adam: two moments) and the per-thread gradient sums.
PARAM_COPIES = 5
# Arrays per layer output and batch row: z, a, delta and workspace.
ROW_COPIES = 4


def estimate(net, batch_size: int = 64) -> dict:
    """Bytes of parameters (x PARAM_COPIES) and of per-row workspaces (x batch_size)."""
    itemsize = 8 if net.dtype == "float64" else 4
    params = sum(math.prod(s) for s in {**net.param_shapes, **net.state_shapes}.values())
    per_row = math.prod(net.input_shape) + sum(math.prod(p.out_shape) for p in net.placed)
    params_bytes = params * itemsize * PARAM_COPIES
    rows_bytes = per_row * itemsize * ROW_COPIES * int(batch_size)
    return {"parameters": params, "params_bytes": params_bytes, "rows_bytes": rows_bytes,
            "total": params_bytes + rows_bytes}


def available() -> int | None:
    """Bytes of memory available now (Linux: MemAvailable), None when unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def require(net, batch_size: int = 64, what: str = "training") -> dict:
    """Refuse (ShapeError, one line with the figures) a network whose estimate
    exceeds the memory available."""
    need = estimate(net, batch_size)
    have = available()
    if have is not None and need["total"] > have:
        raise ShapeError(
            f"network {net.name}: {what} needs about {gb(need['total'])} ({need['parameters']:,} parameters: "
            f"{gb(need['params_bytes'])} with gradients and optimiser state, plus {gb(need['rows_bytes'])} "
            f"of workspaces for {batch_size} rows) but {gb(have)} of memory is available; "
            "make the layers smaller")
    return need
