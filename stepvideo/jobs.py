"""The job queue: a SQLite database in WAL mode, shared by the desktop, the CLI and the worker. Torch-free.

Every change is one transaction, committed with fsync before the call returns, and nothing lives only in
memory: killing any process at any moment loses no job. Jobs move
queued → running → done | failed | cancelled | paused | interrupted; paused and interrupted jobs keep
their checkpoint and resume from it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import paths
from .api import GenerationRequest, validate
from .checkpoints import CheckpointStore, clean_orphans
from .errors import InvalidRequest
from .jobs_schema import STATUSES, migrate
from .worker_lock import worker_pid

log = logging.getLogger(__name__)

RUNNABLE = ("queued", "interrupted")  # what a worker takes, in position order
FINISHED = ("done", "failed", "cancelled")
MAX_CRASHES = 3  # a job that took its worker down this often is failed instead of resumed again


class JobNotFound(InvalidRequest):
    """No job with this id (it may have been removed)."""


class JobStateError(InvalidRequest):
    """The operation does not apply to the job's current status."""


@dataclass(frozen=True)
class Job:
    id: int
    status: str
    request: dict[str, Any]  # GenerationRequest.to_dict()
    model: str
    revision: str | None
    position: int
    batch: str | None
    created_at: float
    updated_at: float
    started_at: float | None
    finished_at: float | None
    step: int | None
    steps: int | None
    stage: str | None
    outputs: dict[str, Any]
    result: dict[str, Any] | None
    error_kind: str | None
    error_message: str | None
    checkpoint_step: int | None
    worker_pid: int | None
    requested: str | None
    attempts: int
    crashes: int

    @property
    def generation_request(self) -> GenerationRequest:
        return GenerationRequest.from_dict(self.request)

    @property
    def prompt(self) -> str:
        return str(self.request.get("prompt", ""))

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "status": self.status, "request": self.request, "model": self.model,
            "revision": self.revision, "position": self.position, "batch": self.batch,
            "created_at": self.created_at, "updated_at": self.updated_at,
            "started_at": self.started_at, "finished_at": self.finished_at,
            "progress": {"step": self.step, "steps": self.steps, "stage": self.stage},
            "outputs": self.outputs, "result": self.result,
            "error": {"kind": self.error_kind, "message": self.error_message} if self.error_kind else None,
            "checkpoint_step": self.checkpoint_step, "worker_pid": self.worker_pid,
            "requested": self.requested, "attempts": self.attempts, "crashes": self.crashes,
        }

    @classmethod
    def _from_row(cls, row: sqlite3.Row) -> Job:
        d = dict(row)
        d["request"] = json.loads(d["request"])
        d["outputs"] = json.loads(d["outputs"]) if d["outputs"] else {}
        d["result"] = json.loads(d["result"]) if d["result"] else None
        return cls(**d)


class JobQueue:
    """One open queue database. Safe to share between threads; many processes may open the same file."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path) if path is not None else paths.queue_db()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so every transaction is explicit.
        self._conn = sqlite3.connect(
            str(self.path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        self._conn.row_factory = sqlite3.Row
        mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            log.warning("queue database %s is in %s mode, not WAL", self.path, mode)
        # FULL: each commit is fsynced, so a power cut after a call returns loses nothing either.
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        migrate(self._conn)

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

    def __enter__(self) -> JobQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # --- reading ----------------------------------------------------------------------------------

    def list(self, statuses: Iterable[str] | None = None) -> list[Job]:
        """Jobs in queue order (position), optionally only those with the given statuses."""
        sql, args = "SELECT * FROM jobs", ()
        if statuses is not None:
            wanted = tuple(statuses)
            _check_statuses(wanted)
            sql += f" WHERE status IN ({','.join('?' * len(wanted))})"
            args = wanted
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY position, id", args).fetchall()
        return [Job._from_row(r) for r in rows]

    def get(self, job_id: int) -> Job:
        with self._lock:
            row = self._conn.execute("SELECT * FROM jobs WHERE id = ?", (int(job_id),)).fetchone()
        if row is None:
            raise JobNotFound(f"no job {job_id} in the queue; `stepvideo queue list` shows the job ids")
        return Job._from_row(row)

    def requested(self, job_id: int) -> str | None:
        """'cancel' or 'pause' when someone asked the running job to stop, else None (cheap; polled per step)."""
        with self._lock:
            row = self._conn.execute("SELECT requested FROM jobs WHERE id = ?", (int(job_id),)).fetchone()
        return row[0] if row else "cancel"  # a removed job must not keep running

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._conn.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        return {s: 0 for s in STATUSES} | {r[0]: r[1] for r in rows}

    # --- adding -----------------------------------------------------------------------------------

    def add(self, request: GenerationRequest, *, batch: str | None = None) -> Job:
        """Validate and append one job. On InvalidRequest the queue is unchanged."""
        return self.add_many([request], batch=batch)[0]

    def add_many(self, requests: Iterable[GenerationRequest], *, batch: str | None = None) -> list[Job]:
        """Validate every request first, then append all in one transaction (all or nothing)."""
        reqs = [validate(r) for r in requests]
        now = time.time()
        with self._write() as conn:
            top = conn.execute("SELECT COALESCE(MAX(position), 0) FROM jobs").fetchone()[0]
            ids = []
            for i, r in enumerate(reqs, start=1):
                cur = conn.execute(
                    "INSERT INTO jobs (request, model, revision, status, position, batch, created_at, updated_at)"
                    " VALUES (?, ?, ?, 'queued', ?, ?, ?, ?)",
                    (json.dumps(r.to_dict(), ensure_ascii=False), r.model, r.revision, top + i, batch, now, now),
                )
                ids.append(cur.lastrowid)
        return [self.get(i) for i in ids]

    def import_prompts(self, file: str | os.PathLike[str], settings: GenerationRequest) -> list[Job]:
        """One job per non-empty line of a UTF-8 text file, all with `settings` except the prompt."""
        path = Path(file)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InvalidRequest(f"prompt file {path} does not exist") from None
        except UnicodeDecodeError as exc:
            raise InvalidRequest(f"prompt file {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
        except OSError as exc:
            raise InvalidRequest(f"cannot read prompt file {path}: {exc.strerror}") from None
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
        """A new queued job with the same request (and any changed fields), at the end of the queue."""
        source = self.get(job_id)
        try:
            request = source.generation_request.replace(**changes)
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
            self._set(conn, job_id, status="queued", error_kind=None, error_message=None, finished_at=None,
                      requested=None, crashes=0)
        return self.get(job_id)

    def remove(self, job_id: int) -> None:
        """Delete a job that is not running, with its checkpoint and previews (its videos stay)."""
        with self._write() as conn:
            job = self._get_in(conn, job_id)
            if job.status == "running":
                raise JobStateError(f"job {job_id} is running; cancel it first")
            conn.execute("DELETE FROM jobs WHERE id = ?", (int(job_id),))
        self.checkpoints(job_id).clear()
        shutil.rmtree(self.preview_dir(job_id), ignore_errors=True)

    # --- the worker's side ------------------------------------------------------------------------

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
                " requested = NULL, error_kind = NULL, error_message = NULL, attempts = attempts + 1 WHERE id = ?",
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
                      stage: str | None = None) -> None:
        fields = {k: v for k, v in (("step", step), ("steps", steps), ("stage", stage)) if v is not None}
        if fields:
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
                      error_kind=kind, error_message=_one_line(message))

    def mark_paused(self, job_id: int, message: str) -> None:
        with self._write() as conn:
            self._set(conn, job_id, status="paused", requested=None, error_kind="paused", error_message=_one_line(message))

    def mark_interrupted(self, job_id: int, reason: str) -> None:
        with self._write() as conn:
            self._set(conn, job_id, status="interrupted", requested=None, error_kind="interrupted",
                      error_message=_one_line(reason))

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
                              error_kind="interrupted", error_message=_one_line(reason))
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

    # --- helpers ----------------------------------------------------------------------------------

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


def _check_statuses(statuses: tuple[str, ...]) -> None:
    bad = [s for s in statuses if s not in STATUSES]
    if bad:
        raise InvalidRequest(f"unknown job status {bad[0]!r}; allowed: {', '.join(STATUSES)}")


def _one_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    return lines[0] if lines else ""
