"""The queue's database file: opening it (WAL, fsync on commit, migrations), transactions, and the
places next to it (checkpoints, previews). Torch-free.

SQLite's complaints about the file become one QueueDatabaseError line naming it. The file is never
deleted or rewritten for the user (their queue must not be lost): the message says how to move it aside.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from stepvideo import paths
from stepvideo.errors import QueueDatabaseError
from stepvideo.jobs.checkpoints import CheckpointStore
from stepvideo.jobs.record import Job, JobNotFound
from stepvideo.jobs.schema import migrate

log = logging.getLogger(__name__)


class QueueDatabase:
    """One open queue database. Safe to share between threads; many processes may open the same file."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path) if path is not None else paths.queue_db()
        self.busy_timeout_s = busy_timeout_s
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise QueueDatabaseError(f"cannot create the queue's folder {self.path.parent}: {exc.strerror}") from None
        with self._guard():
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so every transaction is explicit.
            self._conn = sqlite3.connect(
                str(self.path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            try:
                self._conn.row_factory = sqlite3.Row
                mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if mode.lower() != "wal":
                    log.warning("queue database %s is in %s mode, not WAL", self.path, mode)
                # FULL: each commit is fsynced, so a power cut after a call returns loses nothing either.
                self._conn.execute("PRAGMA synchronous=FULL")
                self._conn.execute("PRAGMA foreign_keys=ON")
                migrate(self._conn)
            except BaseException:
                self._conn.close()
                raise

    # --- places next to the database --------------------------------------------------------------

    @property
    def checkpoint_dir(self) -> Path:
        return self.path.parent / "checkpoints"

    @property
    def preview_root(self) -> Path:
        return self.path.parent / "previews"

    def checkpoints(self, job_id: int) -> CheckpointStore:
        return CheckpointStore(self.checkpoint_dir, job_id)

    def preview_dir(self, job_id: int) -> Path:
        return self.preview_root / f"job-{job_id}"

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> QueueDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """SQLite's errors about the file (corrupt, unreadable, locked too long) become one line naming it."""
        try:
            yield
        except (sqlite3.IntegrityError, sqlite3.ProgrammingError):
            raise  # our own mistake, not the file's
        except sqlite3.DatabaseError as exc:
            raise unusable_database(self.path, exc, self.busy_timeout_s) from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._guard():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _read(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._lock, self._guard():
            return self._conn.execute(sql, args).fetchall()

    def get(self, job_id: int) -> Job:
        rows = self._read("SELECT * FROM jobs WHERE id = ?", (int(job_id),))
        if not rows:
            raise JobNotFound(f"no job {job_id} in the queue; `stepvideo queue list` shows the job ids")
        return Job._from_row(rows[0])

    def _get_in(self, conn: sqlite3.Connection, job_id: int) -> Job:
        row = conn.execute("SELECT * FROM jobs WHERE id = ?", (int(job_id),)).fetchone()
        if row is None:
            raise JobNotFound(f"no job {job_id} in the queue; `stepvideo queue list` shows the job ids")
        return Job._from_row(row)

    @staticmethod
    def _set(conn: sqlite3.Connection, job_id: int, **fields: Any) -> None:
        fields["updated_at"] = time.time()
        assignments = ", ".join(f"{name} = ?" for name in fields)
        cur = conn.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (*fields.values(), int(job_id)))
        if cur.rowcount != 1:
            raise JobNotFound(f"no job {job_id} in the queue; it may have been removed")




def unusable_database(path: Path, exc: sqlite3.DatabaseError, busy_timeout_s: float) -> QueueDatabaseError:
    """One line naming the file and what to do. We never delete or rewrite it: the user's queue must not be lost."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in reason or "busy" in reason):
        return QueueDatabaseError(
            f"the queue database {path} stayed locked by another process for {busy_timeout_s:g} s ({reason}); "
            "try again, or stop the other StepVideo process that holds it"
        )
    return QueueDatabaseError(
        f"the queue database {path} cannot be used ({reason}); StepVideo leaves it untouched: move "
        f"{path.name} and its {path.name}-wal and {path.name}-shm files out of {path.parent} "
        "(keep them to recover jobs) and a new, empty queue is made"
    )


