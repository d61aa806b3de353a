"""The queue database's schema and its migrations. Torch-free.

The schema version lives in `PRAGMA user_version`. Each migration moves the database from version
i to i+1 inside one transaction (SQLite DDL is transactional), so a crash mid-migration leaves the
old version intact. A database written by a newer app (higher version) is refused, not guessed at.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable

from stepvideo.errors import QueueDatabaseError

log = logging.getLogger(__name__)

__all__ = ["MIGRATIONS", "STATUSES", "QueueDatabaseError", "migrate", "schema_version"]

STATUSES = ("queued", "running", "paused", "done", "failed", "cancelled", "interrupted")


def _v1(conn: sqlite3.Connection) -> None:
    statuses = ", ".join(f"'{s}'" for s in STATUSES)
    conn.execute(
        f"""
        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: ids (and checkpoint names) never reused
            request TEXT NOT NULL,                 -- GenerationRequest.to_dict() as JSON
            model TEXT NOT NULL,
            revision TEXT,
            status TEXT NOT NULL CHECK (status IN ({statuses})),
            position INTEGER NOT NULL,
            batch TEXT,                            -- jobs imported together share this label
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            started_at REAL,
            finished_at REAL,
            step INTEGER,
            steps INTEGER,
            stage TEXT,
            outputs TEXT,                          -- JSON object: video, sidecar
            result TEXT,                           -- GenerationResult.to_dict() as JSON
            error_kind TEXT,
            error_message TEXT,
            checkpoint_step INTEGER,
            worker_pid INTEGER,
            requested TEXT CHECK (requested IN ('cancel', 'pause')),  -- asks a running worker to stop
            attempts INTEGER NOT NULL DEFAULT 0,
            crashes INTEGER NOT NULL DEFAULT 0
        )
        """
    )
    conn.execute("CREATE INDEX jobs_by_position ON jobs (position)")
    conn.execute("CREATE INDEX jobs_by_status ON jobs (status, position)")


def _v2(conn: sqlite3.Connection) -> None:
    # When the last step ended and how long it took: a supervisor waiting for a cancel or pause to take
    # effect allows for the step in flight before it decides the worker is not answering.
    conn.execute("ALTER TABLE jobs ADD COLUMN step_at REAL")
    conn.execute("ALTER TABLE jobs ADD COLUMN seconds_per_step REAL")


def _v3(conn: sqlite3.Connection) -> None:
    # Variations of one request (`queue add --variations N`, a `group` column in a batch file) share a
    # group id, so the desktop shows them together and the gallery compares them. NULL: no group.
    conn.execute("ALTER TABLE jobs ADD COLUMN group_id TEXT")
    conn.execute("CREATE INDEX jobs_by_group ON jobs (group_id)")


# MIGRATIONS[i] turns a version-i database into version i+1.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1, _v2, _v3]


def schema_version() -> int:
    return len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, migrations: list[Callable[[sqlite3.Connection], None]] | None = None) -> int:
    """Bring the database to the newest version; return the version it ends at.

    `conn` must be in autocommit mode (isolation_level=None); each step is its own transaction.
    """
    steps = MIGRATIONS if migrations is None else migrations
    while True:
        conn.execute("BEGIN IMMEDIATE")  # one migrator at a time; others wait on the busy timeout
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(steps):
                raise QueueDatabaseError(
                    f"the queue database has schema version {version}, newer than this app's {len(steps)}; "
                    "update StepVideo or move the database aside"
                )
            if version == len(steps):
                conn.execute("COMMIT")
                return version
            log.info("migrating queue database from schema %d to %d", version, version + 1)
            steps[version](conn)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
