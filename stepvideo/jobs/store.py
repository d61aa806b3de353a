"""The job queue: a SQLite database in WAL mode, shared by the desktop, the CLI and the worker. Torch-free.

Every change is one transaction, committed with fsync before the call returns, and nothing lives only in
memory: killing any process at any moment loses no job. Jobs move
queued → running → done | failed | cancelled | paused | interrupted; paused and interrupted jobs keep
their checkpoint and resume from it.

This module holds the user's side (add, import, order, cancel, pause, resume, retry, duplicate,
remove). The worker's transitions are in transitions.py, the file itself (WAL, migrations, unreadable
databases) in database.py, the Job record in record.py. `from stepvideo.jobs.store import JobQueue, Job`
is the public import.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from stepvideo.api import GenerationRequest, validate
from stepvideo.errors import InvalidRequest, QueueDatabaseError
from stepvideo.jobs.database import QueueDatabase
from stepvideo.jobs.editing import JobEditing
from stepvideo.jobs.job_images import copy_into_job, remove_job_images
from stepvideo.jobs.record import Job, JobNotFound, JobStateError
from stepvideo.jobs.schema import STATUSES
from stepvideo.jobs.transitions import MAX_CRASHES, RUNNABLE, WorkerTransitions
from stepvideo.request_text import read_utf8_file
from stepvideo.source_image import check_image

log = logging.getLogger(__name__)

__all__ = ["FINISHED", "MAX_CRASHES", "RUNNABLE", "Job", "JobNotFound", "JobQueue", "JobStateError",
           "QueueDatabaseError"]

FINISHED = ("done", "failed", "cancelled")
# Request fields that name where a job writes its video: a copy must not write over the original's file.
OUTPUT_FIELDS = ("output",)


class JobQueue(WorkerTransitions, JobEditing, QueueDatabase):
    """The queue: reading, adding, ordering and the user's actions on jobs. The file and its
    transactions are QueueDatabase's (database.py); the worker's transitions are WorkerTransitions';
    editing a job that has not run is JobEditing's (editing.py)."""

    @property
    def image_root(self) -> Path:
        """Where image-to-video jobs keep their own copy of the source image (jobs/job_images.py)."""
        return self.path.parent / "job-images"

    # --- reading ----------------------------------------------------------------------------------

    def list(self, statuses: Iterable[str] | None = None) -> list[Job]:
        """Jobs in queue order (position), optionally only those with the given statuses."""
        sql, args = "SELECT * FROM jobs", ()
        if statuses is not None:
            wanted = tuple(statuses)
            _check_statuses(wanted)
            sql += f" WHERE status IN ({','.join('?' * len(wanted))})"
            args = wanted
        return [Job._from_row(r) for r in self._read(sql + " ORDER BY position, id", args)]

    def requested(self, job_id: int) -> str | None:
        """'cancel' or 'pause' when someone asked the running job to stop, else None (cheap; polled per step)."""
        rows = self._read("SELECT requested FROM jobs WHERE id = ?", (int(job_id),))
        return rows[0][0] if rows else "cancel"  # a removed job must not keep running

    def counts(self) -> dict[str, int]:
        rows = self._read("SELECT status, COUNT(*) FROM jobs GROUP BY status")
        return {s: 0 for s in STATUSES} | {r[0]: r[1] for r in rows}

    # --- adding -----------------------------------------------------------------------------------

    def add(self, request: GenerationRequest, *, batch: str | None = None) -> Job:
        """Validate and append one job. On InvalidRequest the queue is unchanged."""
        return self.add_many([request], batch=batch)[0]

    def add_many(self, requests: Iterable[GenerationRequest], *, batch: str | None = None,
                 groups: Iterable[str | None] | None = None) -> list[Job]:
        """Validate every request first, then append all in one transaction (all or nothing).
        `groups` gives each request's group id (variations shown together), None for none."""
        reqs = [validate(r) for r in requests]
        group_ids = list(groups) if groups is not None else [None] * len(reqs)
        if len(group_ids) != len(reqs):
            raise ValueError(f"{len(group_ids)} group ids for {len(reqs)} requests")
        for r in reqs:  # a bad image is refused before anything is queued
            if r.image is not None:
                check_image(r.image, r.height, r.width)
        now = time.time()
        ids: list[int] = []
        try:
            with self._write() as conn:
                top = conn.execute("SELECT COALESCE(MAX(position), 0) FROM jobs").fetchone()[0]
                for i, (r, group_id) in enumerate(zip(reqs, group_ids), start=1):
                    cur = conn.execute(
                        "INSERT INTO jobs (request, model, revision, status, position, batch, group_id, created_at,"
                        " updated_at) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?)",
                        (json.dumps(r.to_dict(), ensure_ascii=False), r.model, r.revision, top + i, batch, group_id,
                         now, now),
                    )
                    ids.append(cur.lastrowid)
                    if r.image is not None:  # the job's own copy: it never depends on the user's file
                        own = r.replace(image=str(copy_into_job(self.image_root, cur.lastrowid, r.image)))
                        conn.execute("UPDATE jobs SET request = ? WHERE id = ?",
                                     (json.dumps(own.to_dict(), ensure_ascii=False), cur.lastrowid))
        except BaseException:
            for job_id in ids:  # rolled back: no job owns these copies
                remove_job_images(self.image_root, job_id)
            raise
        return [self.get(i) for i in ids]

    def import_prompts(self, file: str | os.PathLike[str], settings: GenerationRequest) -> list[Job]:
        """One job per non-empty line of a UTF-8 text file, all with `settings` except the prompt."""
        path = Path(file)
        text = read_utf8_file(path, "prompt file")
        if settings.output is not None:
            raise InvalidRequest("an imported batch cannot share one --output file; leave it out (videos go to the videos folder)")
        requests = []
        for number, line in enumerate(text.splitlines(), start=1):
            prompt = line.strip()
            if not prompt:
                continue
            try:
                requests.append(validate(settings.replace(prompt=prompt)))
            except InvalidRequest as exc:
                raise InvalidRequest(f"{path}:{number}: {exc}") from None
        if not requests:
            raise InvalidRequest(f"prompt file {path} holds no prompts; write one prompt per line")
        return self.add_many(requests, batch=f"{path.name}@{time.strftime('%Y-%m-%d %H:%M:%S')}")

    def duplicate(self, job_id: int, **changes: Any) -> Job:
        """A new queued job with the same request (and any changed fields), at the end of the queue.

        The copy writes its own video: the source's output path is dropped (the copy goes to the videos
        folder) unless `changes` names one."""
        source = self.get(job_id)
        try:
            request = source.generation_request.replace(**({name: None for name in OUTPUT_FIELDS} | changes))
        except TypeError as exc:
            raise InvalidRequest(f"cannot change the request: {exc}") from None
        return self.add(request, batch=source.batch)

    # --- ordering ---------------------------------------------------------------------------------

    def move(self, job_id: int, index: int) -> Job:
        """Put the job at `index` (0 = first) of the whole queue order; others keep their relative order."""
        with self._write() as conn:
            order = [r[0] for r in conn.execute("SELECT id FROM jobs ORDER BY position, id")]
            if int(job_id) not in order:
                raise JobNotFound(f"no job {job_id} in the queue; `stepvideo queue list` shows the job ids")
            order.remove(int(job_id))
            order.insert(max(0, min(int(index), len(order))), int(job_id))
            self._renumber(conn, order)
        return self.get(job_id)

    def reorder(self, job_ids: list[int]) -> None:
        """Give the listed jobs the slots they already occupy, in the listed order (a drag in a filtered view)."""
        ids = [int(j) for j in job_ids]
        if len(set(ids)) != len(ids):
            raise InvalidRequest("reorder lists a job more than once; give each job id once")
        with self._write() as conn:
            order = [r[0] for r in conn.execute("SELECT id FROM jobs ORDER BY position, id")]
            missing = sorted(set(ids) - set(order))
            if missing:
                raise JobNotFound(f"no job(s) {', '.join(map(str, missing))} in the queue")
            slots = sorted(order.index(j) for j in ids)
            for slot, j in zip(slots, ids):
                order[slot] = j
            self._renumber(conn, order)

    @staticmethod
    def _renumber(conn: sqlite3.Connection, order: list[int]) -> None:
        now = time.time()
        conn.executemany(
            "UPDATE jobs SET position = ?, updated_at = ? WHERE id = ? AND position != ?",
            [(i, now, j, i) for i, j in enumerate(order, start=1)],
        )

    # --- user actions -----------------------------------------------------------------------------

    def cancel(self, job_id: int) -> Job:
        """Cancel a waiting job now; ask a running one to stop after its current step."""
        with self._write() as conn:
            job = self._get_in(conn, job_id)
            if job.status == "running":
                self._set(conn, job_id, requested="cancel")
            elif job.status in ("queued", "paused", "interrupted"):
                self._set(conn, job_id, status="cancelled", finished_at=time.time(), requested=None,
                          error_kind="cancelled", error_message="cancelled before it finished", checkpoint_step=None)
            else:
                raise JobStateError(f"job {job_id} is {job.status}; only queued, running, paused or interrupted jobs can be cancelled")
        if job.status != "running":
            self.checkpoints(job_id).clear()
        return self.get(job_id)

    def pause(self, job_id: int) -> Job:
        """Hold a waiting job; ask a running one to pause after its current step (it keeps a checkpoint)."""
        with self._write() as conn:
            job = self._get_in(conn, job_id)
            if job.status == "running":
                if job.requested != "cancel":  # a pending cancel wins
                    self._set(conn, job_id, requested="pause")
            elif job.status in ("queued", "interrupted"):
                self._set(conn, job_id, status="paused")
            elif job.status != "paused":
                raise JobStateError(f"job {job_id} is {job.status}; only queued, running or interrupted jobs can be paused")
        return self.get(job_id)

    def resume(self, job_id: int) -> Job:
        """Put a paused job back in line (it continues from its checkpoint); withdraw a pending pause request."""
        with self._write() as conn:
            job = self._get_in(conn, job_id)
            if job.status == "paused":
                self._set(conn, job_id, status="queued", error_kind=None, error_message=None)
            elif job.status == "running" and job.requested == "pause":
                self._set(conn, job_id, requested=None)
            elif job.status not in ("queued", "running"):
                raise JobStateError(f"job {job_id} is {job.status}; only paused jobs can be resumed (use retry for failed ones)")
        return self.get(job_id)

    def retry(self, job_id: int) -> Job:
        """Queue a failed, cancelled or interrupted job again (from its checkpoint, if one is left)."""
        with self._write() as conn:
            job = self._get_in(conn, job_id)
            if job.status not in ("failed", "cancelled", "interrupted"):
                hint = "; use duplicate to run it again" if job.status == "done" else ""
                raise JobStateError(f"job {job_id} is {job.status}; only failed, cancelled or interrupted jobs can be retried{hint}")
            changes = {"request": self._request_without_taken_outputs(job)}
            if job.status in FINISHED:  # a fresh run: forget the last one's progress and results
                changes |= {"outputs": None, "result": None, "step": None, "stage": None, "step_at": None}
            self._set(conn, job_id, status="queued", error_kind=None, error_message=None, finished_at=None,
                      requested=None, crashes=0, **changes)
        if job.status in FINISHED:
            shutil.rmtree(self.preview_dir(job_id), ignore_errors=True)  # the last run's previews
        return self.get(job_id)

    @staticmethod
    def _request_without_taken_outputs(job: Job) -> str:
        """The job's request, less any output path where a file now exists: the job never finished, so
        that file is someone else's (or a copy's) and a retry must not write over it."""
        request = dict(job.request)
        for name in OUTPUT_FIELDS:
            if request.get(name) and Path(request[name]).exists() and not Path(request[name]).is_dir():
                log.info("job %d: %s already exists; the retry writes to the videos folder", job.id, request[name])
                request[name] = None
        return json.dumps(request, ensure_ascii=False)

    def remove(self, job_id: int) -> None:
        """Delete a job that is not running, with its checkpoint and previews (its videos stay)."""
        with self._write() as conn:
            job = self._get_in(conn, job_id)
            if job.status == "running":
                raise JobStateError(f"job {job_id} is running; cancel it first")
            conn.execute("DELETE FROM jobs WHERE id = ?", (int(job_id),))
        self.checkpoints(job_id).clear()
        shutil.rmtree(self.preview_dir(job_id), ignore_errors=True)
        remove_job_images(self.image_root, job_id)


def _check_statuses(statuses: tuple[str, ...]) -> None:
    bad = [s for s in statuses if s not in STATUSES]
    if bad:
        raise InvalidRequest(f"unknown job status {bad[0]!r}; allowed: {', '.join(STATUSES)}")

