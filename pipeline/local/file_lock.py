"""One workspace, many commands: an exclusive lock around a file's read-modify-write.

Two `run --local` commands in one workspace each read the registry journal, add a package
and write it back; without a lock between processes the second write drops the first's
package (a thread lock guards one process only). `fcntl.flock` on a `<file>.lock` beside
the file serialises them across processes; the kernel releases it when a process dies, so
a killed command leaves no stale lock. POSIX only, as local mode is.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

__all__ = ["locked"]


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the exclusive lock of `path` (waits for another holder, in any process)."""
    lock_path = path.with_name(f".{path.name}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
