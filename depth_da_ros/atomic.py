"""Atomic file writes: a temporary file in the target folder, fsync, then rename. A killed
writer leaves the previous file intact instead of a torn one (checkpoints, exports, engines).

The file gets the mode a plain ``open(path, "w")`` would give it (0666 minus the umask,
e.g. 0644), or keeps the mode of the file it replaces; the temporary file's private 0600
(``mkstemp``) never reaches the result, so other users and services can read exports."""
from __future__ import annotations

import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator


def current_umask() -> int:
    """The process umask, read without changing it (Linux /proc; elsewhere the set-and-restore
    fallback, which is not thread-safe but only runs where /proc is missing)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _final_mode(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)  # replacing a file: keep its permissions
    except FileNotFoundError:
        return 0o666 & ~current_umask()


@contextmanager
def atomic_writer(path: str | Path) -> Iterator[BinaryIO]:
    """Binary file object whose contents replace ``path`` atomically when the block ends
    without an exception (nothing is replaced otherwise)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), _final_mode(path))
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_writer(path) as f:
        f.write(data)
