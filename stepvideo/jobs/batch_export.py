"""`queue export`: jobs as JSON Lines that `queue import` reads back into the same requests. Torch-free.

Each line is the request in batch-file words (request_fields.row_from_request) plus the job's `group`
label, so a variation group stays a group on the other machine. The file is written next to its final
name and renamed into place, and an existing file is never replaced unless asked: an export must not
overwrite something the user made.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from stepvideo.errors import InvalidRequest
from stepvideo.jobs.batch_files import GROUP
from stepvideo.jobs.record import Job
from stepvideo.request_fields import row_from_request

# What "waiting" means for an export: jobs that have not run to an end and are not running now.
WAITING = ("queued", "paused", "interrupted")
EXPORT_CHOICES = ("waiting", "all")


def export_rows(jobs: list[Job]) -> list[dict]:
    rows = []
    for job in jobs:
        row = row_from_request(job.generation_request)
        if job.group_id is not None:
            row[GROUP] = job.group_id
        rows.append(row)
    return rows


def export_jobs(queue, path: str | os.PathLike[str], which: str = "waiting", *, replace: bool = False) -> int:
    """Write the chosen jobs (queue order) to `path` as JSON Lines; return how many."""
    if which not in EXPORT_CHOICES:
        raise InvalidRequest(f"export status {which!r} is not allowed; allowed: {', '.join(EXPORT_CHOICES)}")
    path = Path(path)
    if path.suffix.lower() != ".jsonl":
        raise InvalidRequest(f"export file {path.name} is not allowed; name it *.jsonl (JSON Lines, read back by import)")
    if path.exists() and not replace:
        raise InvalidRequest(f"{path} already exists; choose another name or pass --force to replace it")
    jobs = queue.list(WAITING if which == "waiting" else None)
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in export_rows(jobs))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InvalidRequest(f"cannot write {path}: {exc.strerror}") from None
    return len(jobs)
