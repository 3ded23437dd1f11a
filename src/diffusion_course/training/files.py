"""Writing files so that no interruption loses work: every write is atomic, and the manifest is updated under a lock.

A write goes to a temporary file in the same folder, is flushed to disk, then renamed over the target in one step
(`os.replace`): a reader, or the next run after a kill, sees the old file or the new one, never half of one. The lock
is a file created exclusively (`O_EXCL`), so it works on every platform and across processes: two runs saving into one
folder update its manifest one after the other instead of one overwriting the other's entry.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Callable


def atomic_write(path: str | Path, write: Callable[[str], None]) -> None:
    """Call `write(temporary_path)` to fill a temporary file next to `path`, then move it onto `path` atomically."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:  # on disk before the rename makes it visible
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


@contextlib.contextmanager
def locked(path: str | Path, timeout: float = 60.0, stale: float = 600.0):
    """Hold the lock file `path` while the block runs; waits up to `timeout` seconds for another holder. A lock older
    than `stale` seconds is taken to be left by a killed process and removed."""
    path, start = Path(path), time.monotonic()
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            with contextlib.suppress(FileNotFoundError):
                if time.time() - path.stat().st_mtime > stale:
                    os.remove(path)
                    continue
            if time.monotonic() - start > timeout:
                raise TimeoutError(f"{path} has been locked for over {timeout:.0f} s by another run; if none is "
                                   "running, delete that file") from None
            time.sleep(0.05)
    try:
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
