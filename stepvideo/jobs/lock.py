"""One worker per queue: an fcntl lock file next to the database. Torch-free.

The kernel drops an fcntl lock when its process dies, however it dies (SIGKILL, OOM-killer), so a
stale lock file never blocks the next worker, and "can I take the lock?" answers "is a worker alive?".
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from stepvideo.errors import StepVideoError


class WorkerAlreadyRunning(StepVideoError):
    kind = "internal"
    exit_code = 4


def lock_path_for(db_path: Path) -> Path:
    return Path(str(db_path) + ".worker.lock")


class WorkerLock:
    """Held for the worker's whole life. The file holds the holder's pid (for messages only)."""

    def __init__(self, db_path: Path) -> None:
        self.path = lock_path_for(Path(db_path))
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f" (pid {holder})" if holder else ""
            raise WorkerAlreadyRunning(
                f"another worker{who} is already running this queue ({self.path.parent}); stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> WorkerLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def worker_pid(db_path: Path) -> int | None:
    """The pid of the live worker of this queue, or None when no worker holds the lock."""
    path = lock_path_for(Path(db_path))
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            # A shared lock succeeds only when no worker holds the exclusive one.
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd) or -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
