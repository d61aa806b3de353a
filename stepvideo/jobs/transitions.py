"""The worker's side of the queue: the status changes a job goes through while a worker runs it. Torch-free.

Mixed into `JobQueue` (store.py) next to `QueueDatabase` (database.py), which provides `_write()` (one
IMMEDIATE transaction), `_get_in(conn, job_id)`, `_set(conn, job_id, **columns)`, `get(job_id)` and
`checkpoints(job_id)`; JobQueue provides `list()`. The user's side (add, cancel, pause, retry, …) is store.py.
"""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING, Any

from stepvideo.jobs.checkpoints import clean_orphans
from stepvideo.jobs.lock import worker_pid

if TYPE_CHECKING:
    from stepvideo.jobs.record import Job

RUNNABLE = ("queued", "interrupted")  # what a worker takes, in position order
MAX_CRASHES = 3  # a job that took its worker down this often is failed instead of resumed again
STOP_ACTIONS = ("cancel", "pause")


class WorkerTransitions:
    """claim → progress/checkpoint → done | failed | cancelled | paused | interrupted, and crash recovery."""

    def claim_next(self, pid: int | None = None) -> Job | None:
        """Atomically take the first runnable job (queued or interrupted, by position) and mark it running."""
        with self._write() as conn:
            row = conn.execute(
                f"SELECT id FROM jobs WHERE status IN ({','.join('?' * len(RUNNABLE))}) ORDER BY position, id LIMIT 1",
                RUNNABLE,
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE jobs SET status = 'running', worker_pid = ?, started_at = ?, updated_at = ?, finished_at = NULL,"
                " requested = NULL, error_kind = NULL, error_message = NULL, step_at = NULL,"
                " attempts = attempts + 1 WHERE id = ?",
                (pid if pid is not None else os.getpid(), time.time(), time.time(), row[0]),
            )
        return self.get(row[0])

    def mark_running(self, job_id: int, pid: int | None = None) -> Job:
        with self._write() as conn:
            self._get_in(conn, job_id)
            self._set(conn, job_id, status="running", worker_pid=pid if pid is not None else os.getpid(),
                      started_at=time.time(), finished_at=None, requested=None, error_kind=None, error_message=None)
        return self.get(job_id)

    def mark_progress(self, job_id: int, *, step: int | None = None, steps: int | None = None,
                      stage: str | None = None, seconds_per_step: float | None = None) -> None:
        """Record progress; a step also records when it ended (for the stop supervisor's allowance)."""
        fields: dict[str, Any] = {k: v for k, v in (("step", step), ("steps", steps), ("stage", stage),
                                                    ("seconds_per_step", seconds_per_step)) if v is not None}
        if step is not None:
            fields["step_at"] = time.time()
        if fields:
            with self._write() as conn:
                self._set(conn, job_id, **fields)

    def mark_unit_done(self, job_id: int, seconds: float | None) -> None:
        """A unit of decode work (a tile or a chunk) ended: it counts as a step for the stop supervisor,
        whose allowance is `step_at + seconds_per_step`, so a long decode tile is waited for like a step
        rather than killed 30 s after the last denoise step."""
        fields: dict[str, Any] = {"step_at": time.time()}
        if seconds is not None:
            fields["seconds_per_step"] = max(float(seconds), 0.0)
        with self._write() as conn:
            self._set(conn, job_id, **fields)

    def mark_checkpoint(self, job_id: int, step: int) -> None:
        with self._write() as conn:
            self._set(conn, job_id, checkpoint_step=int(step))

    def mark_done(self, job_id: int, outputs: dict[str, Any], result: dict[str, Any] | None = None) -> None:
        with self._write() as conn:
            self._set(conn, job_id, status="done", finished_at=time.time(), stage=None, requested=None,
                      outputs=json.dumps(outputs), result=json.dumps(result) if result is not None else None,
                      checkpoint_step=None, error_kind=None, error_message=None)

    def mark_failed(self, job_id: int, kind: str, message: str) -> None:
        status = "cancelled" if kind == "cancelled" else "failed"
        with self._write() as conn:
            self._set(conn, job_id, status=status, finished_at=time.time(), requested=None,
                      error_kind=kind, error_message=one_line(message))

    def mark_paused(self, job_id: int, message: str) -> None:
        with self._write() as conn:
            self._set(conn, job_id, status="paused", requested=None, error_kind="paused", error_message=one_line(message))

    def mark_interrupted(self, job_id: int, reason: str) -> None:
        with self._write() as conn:
            self._set(conn, job_id, status="interrupted", requested=None, error_kind="interrupted",
                      error_message=one_line(reason))

    def mark_stopped_after_kill(self, job_id: int, action: str, pid: int, reason: str) -> bool:
        """After the stop supervisor killed worker `pid`: its job becomes cancelled (cancel) or paused
        (pause; it keeps its checkpoint and waits for resume, as the user asked) with error kind
        'interrupted'. Returns False when the job is no longer that worker's running job."""
        if action not in STOP_ACTIONS:
            raise ValueError(f"unknown stop action {action!r}")
        with self._write() as conn:
            job = self._get_in(conn, job_id)
            if job.status != "running" or job.worker_pid != pid:
                return False
            if action == "cancel":
                self._set(conn, job_id, status="cancelled", finished_at=time.time(), requested=None,
                          checkpoint_step=None, error_kind="cancelled", error_message=one_line(reason))
            else:
                self._set(conn, job_id, status="paused", requested=None, error_kind="interrupted",
                          error_message=one_line(reason))
        if action == "cancel":
            self.checkpoints(job_id).clear()
        return True

    def recover_interrupted(self, reason: str, *, pid: int | None = None) -> list[int]:
        """Jobs left `running` by a dead worker (all, or only those of `pid`) become `interrupted`.

        A job whose worker died MAX_CRASHES times in a row is failed as `crashed` instead, so a job that
        kills its worker (OOM-killer) does not loop forever. Call only when that worker is known dead.
        """
        with self._write() as conn:
            sql, args = "SELECT id, crashes FROM jobs WHERE status = 'running'", ()
            if pid is not None:
                sql, args = sql + " AND worker_pid = ?", (pid,)
            rows = conn.execute(sql, args).fetchall()
            for job_id, crashes in rows:
                crashes += 1
                if crashes >= MAX_CRASHES:
                    self._set(conn, job_id, status="failed", crashes=crashes, requested=None, finished_at=time.time(),
                              error_kind="crashed",
                              error_message=f"the worker stopped {crashes} times while running this job ({reason}); "
                                            "retry it with a lighter memory profile")
                else:
                    self._set(conn, job_id, status="interrupted", crashes=crashes, requested=None,
                              error_kind="interrupted", error_message=one_line(reason))
        return [r[0] for r in rows]

    def recover_if_no_worker(self) -> list[int]:
        """For the UI: when no worker holds this queue's lock, mark its `running` jobs interrupted."""
        if worker_pid(self.path) is not None:
            return []
        return self.recover_interrupted("the worker process stopped while running this job")

    def clean_orphans(self) -> int:
        """Delete checkpoints of jobs that are gone or finished."""
        live = [j.id for j in self.list(("queued", "running", "paused", "interrupted", "failed"))]
        return clean_orphans(self.checkpoint_dir, live)


def one_line(text: str) -> str:
    """The first non-empty line: error messages in the queue are one line a user can act on."""
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    return lines[0] if lines else ""
