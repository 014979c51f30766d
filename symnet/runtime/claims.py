"""Two processes compiling symnet.runtime at once split the work instead of doing it twice.

The first conv network on a machine compiles the runtime kernels it reaches while a
background process (symnet.runtime.precompile, started by symnet.codegen.runtime_link)
compiles the same kernels from the other end of the list. Without a word between them,
both compiled the kernels in the middle (LeNet-5: ~5 s of CPU twice). Here each
top-level kernel is compiled by whichever process claims it first; the other loads
it from Numba's cache once it is there.

A claim is the file FOLDER/<kernel>, created exclusively and holding the claimant's
pid; FOLDER/<kernel>.done says its code is in Numba's cache; FOLDER/order lists the
network's kernels, the last it reaches first (the background takes them in that order). The background never
waits: it skips what was claimed before it got there. The network's process waits
only for a kernel that another live process claimed and has not finished (at most
TIMEOUT seconds); when the claimant died, or its cached code does not fit the call
(another signature), the network's process compiles the kernel itself.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

POLL = 0.005       # seconds between looks at a claim being finished
TIMEOUT = 120.0    # longest wait for one kernel


def folder_for(note) -> Path:
    """The claims folder that goes with runtime_link's note of a background compile."""
    return Path(f"{note}.claims")


def _alive(pid: int) -> bool:
    if os.name == "nt":   # os.kill would end the process there: rely on TIMEOUT
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:   # it exists, owned by someone else
        return True
    return True


class Claims:
    """The claims of one folder (one runtime source, Numba cache and dtype)."""

    def __init__(self, folder):
        self.folder = Path(folder)

    def claim(self, name: str) -> bool:
        """True if this process may compile `name`: claimed now, or no folder to share through."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.folder / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        except OSError:   # not writable: compile here, as without claims
            return True
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()}\n")
        return True

    def finish(self, name: str) -> None:
        """Say that `name`'s compiled code is in Numba's cache."""
        try:
            (self.folder / f"{name}.done").touch()
        except OSError:
            pass

    def done(self, name: str) -> bool:
        return (self.folder / f"{name}.done").exists()

    def _claimant(self, name: str) -> int | None:
        """The pid holding the claim on `name`; None while it is being written."""
        try:
            text = (self.folder / name).read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def wait(self, name: str, timeout: float = TIMEOUT) -> bool:
        """Wait for another live process's claim on `name` to finish: True once it has."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.done(name):
                return True
            pid = self._claimant(name)
            if pid is not None and (pid == os.getpid() or not _alive(pid)):
                return False
            time.sleep(POLL)
        return False

    def set_order(self, names) -> None:
        """Tell the background which kernels to take first (the network's, the last reached first)."""
        from ..fileio import write_atomic
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            write_atomic(self.folder / "order", "\n".join(names) + "\n")
        except OSError:
            pass

    def order(self) -> list[str]:
        """The names set_order() wrote; [] before it did."""
        try:
            return (self.folder / "order").read_text().split()
        except OSError:
            return []


class _SharedCache:
    """A dispatcher's Numba cache that asks the claims before its dispatcher compiles
    (Numba's Dispatcher.compile: load_overload, else compile and save_overload)."""

    def __init__(self, cache, claims: Claims, name: str):
        self._cache, self.claims, self._name, self._mine = cache, claims, name, False

    def load_overload(self, sig, target_context):
        cres = self._cache.load_overload(sig, target_context)
        if cres is None and not self._mine:
            if self.claims.claim(self._name):
                self._mine = True
            elif self.claims.wait(self._name):
                cres = self._cache.load_overload(sig, target_context)
        return cres

    def save_overload(self, sig, data):
        self._cache.save_overload(sig, data)
        if self._mine:
            self.claims.finish(self._name)

    def __getattr__(self, attr):
        return getattr(self._cache, attr)


def share(kernels: dict, folder) -> None:
    """Let the dispatchers `kernels` (name -> Numba dispatcher) compile through the claims
    in `folder` from now on in this process."""
    claims = Claims(folder)
    for name, dispatcher in kernels.items():
        cache = getattr(dispatcher, "_cache", None)
        if isinstance(cache, _SharedCache):
            cache.claims, cache._mine = claims, False
        elif cache is not None and type(cache).__name__ != "NullCache" and hasattr(cache, "load_overload"):
            dispatcher._cache = _SharedCache(cache, claims, name)
