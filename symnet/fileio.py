"""Writing files safely: every output of symnet goes through `atomic_file`.

A regular file is written to a temp file in the same folder, then renamed
onto its name, so nothing is ever half-written on disk. A symbolic link is
followed (its target is replaced, the link stays); a device or a pipe
(`-o /dev/stdout`) is written directly, since it cannot be replaced; a folder
is refused. The new file keeps the mode of the file it replaces, or gets the
mode the umask gives a new file. Every failure is an OutputError naming the
path; the temp file never outlives the call.
"""
from __future__ import annotations

import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import OutputError

TEMP_SUFFIX = ".tmp"


def _umask() -> int:
    """The process umask, read without changing it where Linux tells it."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)          # elsewhere: set and restore
    os.umask(mask)
    return mask


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def ensure_dir(path, what: str = "output folder") -> Path:
    """Create folder `path` (and its parents) or fail with one line: a file in
    the way, a read-only parent."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{what} {path}: exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"{what} {path}: a file is in the way of this folder") from None
    except OSError as exc:
        raise OutputError(f"{what} {path}: cannot create it ({_reason(exc)})") from None
    return path


def check_writable_dir(path, what: str = "output folder") -> Path:
    """Create folder `path` and prove it takes new files (a temp file is made
    and removed), before any long work whose results would be lost."""
    path = ensure_dir(path, what)
    try:
        fd, probe = tempfile.mkstemp(prefix=".symnet-probe.", suffix=TEMP_SUFFIX, dir=path)
    except OSError as exc:
        raise OutputError(f"{what} {path}: cannot write there ({_reason(exc)})") from None
    os.close(fd)
    os.unlink(probe)
    return path


def standard_stream(path) -> int | None:
    """The descriptor a name such as /dev/stdout or /dev/fd/3 stands for, else None."""
    text = os.path.normpath(str(path))
    named = {"/dev/stdout": 1, "/dev/stderr": 2}
    if text in named:
        return named[text]
    for prefix in ("/dev/fd/", "/proc/self/fd/"):
        if text.startswith(prefix) and text[len(prefix):].isdigit():
            return int(text[len(prefix):])
    return None


@contextmanager
def atomic_file(path):
    """Yield a binary file handle; on success its bytes are at `path` whole."""
    fd = standard_stream(path)
    if fd is not None:
        # Write where the descriptor points (a terminal, a pipe, a file the shell
        # opened with > or >>) at its own offset, instead of replacing a file.
        try:
            with os.fdopen(os.dup(fd), "wb") as fh:
                yield fh
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {_reason(exc)}") from None
        return
    target = Path(os.path.realpath(path))      # through symbolic links to the file they name
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {_reason(exc)}") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise OutputError(f"cannot write {path}: it is a folder; give a file name")
    if st is not None and not stat.S_ISREG(st.st_mode):
        # A device, pipe or socket cannot be replaced: write to it directly.
        try:
            with open(target, "wb") as fh:
                yield fh
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {_reason(exc)}") from None
        return
    mode = stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~_umask()
    ensure_dir(target.parent, f"cannot write {path}: folder")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=target.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {_reason(exc)}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write {path}: {_reason(exc)}") from None
        raise


def write_atomic(path, data: str | bytes) -> Path:
    """Write text (UTF-8, LF line ends) or bytes atomically; returns the path."""
    with atomic_file(path) as fh:
        fh.write(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


def sweep_temp_files(folder) -> list[Path]:
    """Remove the temp files an interrupted write left in `folder` (call it
    only while no other writer uses the folder, e.g. holding the run lock)."""
    removed = []
    for p in Path(folder).glob(f".*{TEMP_SUFFIX}"):
        try:
            if p.is_file():
                p.unlink()
                removed.append(p)
        except OSError:
            pass
    return removed
