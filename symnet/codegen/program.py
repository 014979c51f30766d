"""The kernel program: a small intermediate form of the generated module.

Emitters (symnet.codegen.emitters, one per layer kind) return statements; Python
assembles them into the whole-network entry points (_evaluate, _loss_and_grads,
_train_step) with work arrays at fixed offsets, and the workspace sizes are
summed from the same statements, so the sizes and the slices cannot disagree.
The template (templates/network.py.jinja) only prints the program: one macro per
statement form, one macro per kernel, chosen here by name.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Take:
    """name = the next rows * size entries of the workspace (work, or iwork for int64
    indices), viewed with dims."""
    name: str
    size: int
    dims: str
    index: bool = False
    form: str = "take"


@dataclass(frozen=True)
class Call:
    """[target = ] fn(*args): a kernel call."""
    fn: str
    args: tuple[str, ...]
    target: str = ""
    form: str = "call"


@dataclass(frozen=True)
class Alias:
    """name = expr: another name or view of an array (no copy, no workspace)."""
    name: str
    expr: str
    form: str = "alias"


@dataclass(frozen=True)
class Alloc:
    """name = np.empty(shape, dtype): arrays the caller keeps (outputs, gradients to update with)."""
    name: str
    shape: str
    dtype: str = "DTYPE"
    form: str = "alloc"


@dataclass(frozen=True)
class When:
    """if cond: body (flat statements)."""
    cond: str
    body: tuple
    form: str = "when"


def flat(statements):
    """The statements with When bodies spliced in (for sizes and counts)."""
    for s in statements:
        if isinstance(s, When):
            yield from flat(s.body)
        else:
            yield s


def work_per_row(statements) -> tuple[int, int]:
    """(floats, int64 entries) per example that the statements take from the workspaces."""
    takes = [s for s in flat(statements) if isinstance(s, Take)]
    return (sum(t.size for t in takes if not t.index), sum(t.size for t in takes if t.index))


@dataclass
class Kernel:
    """One generated @njit function of a layer: printed by the template macro `macro`
    from the layer's op; `label` names its source (layer, rule) and op count."""
    macro: str
    op: dict
    label: str


@dataclass
class Entry:
    """A whole-network entry point: def name(args): body; return returns. Compiled by Numba
    (@njit) unless `python`: then a plain Python function calling the compiled kernels in
    sequence (Numba links every callee into a compiled caller and optimises it all again,
    so a compiled entry costs as much compile time as everything below it)."""
    name: str
    args: tuple[str, ...]
    body: list = field(default_factory=list)
    returns: str = ""
    doc: str = ""
    nogil: bool = True
    python: bool = False

    @property
    def work(self) -> tuple[int, int]:
        return work_per_row(self.body)


__all__ = ["Take", "Call", "Alias", "Alloc", "When", "Kernel", "Entry", "flat", "work_per_row"]
