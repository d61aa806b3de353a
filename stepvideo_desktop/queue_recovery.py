"""Moving an unusable queue database aside so the app can start with a new, empty queue.

Nothing is deleted: the file and its SQLite siblings (-wal, -shm, -journal) are renamed together with
a timestamp, so the set stays a database SQLite can open (a WAL file belongs to the file whose name it
extends) and the jobs in it can still be recovered by hand. Qt-free, so it is tested on its own.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)

SIBLINGS = ("-wal", "-shm", "-journal")


def aside_name(path: Path, now: float | None = None) -> Path:
    """`queue.sqlite3.broken-20250101-120000`, with -2, -3… when that name is taken."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    candidate = path.with_name(f"{path.name}.broken-{stamp}")
    n = 2
    while any(Path(str(candidate) + s).exists() for s in ("", *SIBLINGS)):
        candidate = path.with_name(f"{path.name}.broken-{stamp}-{n}")
        n += 1
    return candidate


def move_aside(path: Path, now: float | None = None) -> Path:
    """Rename the database and its siblings; returns the new name of the database. Raises OSError.

    The siblings go first: a new database must never pick up the old write-ahead log. If the database
    itself cannot be renamed, the siblings are put back, so a failure leaves everything as it was.
    """
    aside = aside_name(path, now)
    moved: list[tuple[Path, Path]] = []
    try:
        for suffix in SIBLINGS:
            sibling = Path(str(path) + suffix)
            if sibling.exists():
                os.replace(sibling, Path(str(aside) + suffix))
                moved.append((sibling, Path(str(aside) + suffix)))
        if path.exists():
            os.replace(path, aside)
    except OSError:
        for original, renamed in reversed(moved):
            try:
                os.replace(renamed, original)
            except OSError:
                log.exception("could not put %s back as %s", renamed, original)
        raise
    log.warning("moved the unusable queue database %s aside as %s", path, aside)
    return aside
