"""Editing a job that has not run to an end: its prompt, negative prompt and settings. Torch-free.

Mixed into `JobQueue` (store.py) like WorkerTransitions. The check and the change are one IMMEDIATE
transaction, so a worker cannot claim the job between them. A running job is never edited (the video in
progress would no longer match its request). A checkpoint belongs to the old request, so editing a job
that has one discards it, and only when the caller says so: the CLI asks for --discard-checkpoint,
the desktop for a confirmation.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from stepvideo.api import validate
from stepvideo.errors import InvalidRequest
from stepvideo.jobs.record import JobStateError

if TYPE_CHECKING:
    from stepvideo.jobs.record import Job

EDITABLE = ("queued", "paused", "interrupted", "failed")


class CheckpointWouldBeLost(JobStateError):
    """The edit would discard the job's checkpoint and the caller did not agree to that."""


class JobEditing:
    def checkpoint_of(self, job: Job) -> int | None:
        """The step a job would resume from, or None when it has no checkpoint on disk."""
        if job.checkpoint_step and self.checkpoints(job.id).exists():
            return job.checkpoint_step
        return None

    def edit(self, job_id: int, changes: dict[str, Any], *, discard_checkpoint: bool = False) -> Job:
        """Apply `changes` (GenerationRequest fields) to a waiting, paused, interrupted or failed job.

        The job keeps its place and status (a failed job stays failed until it is retried)."""
        if not changes:
            raise InvalidRequest("nothing to change; give at least one setting (e.g. --prompt, --seed, --steps)")
        with self._write() as conn:
            job = self._get_in(conn, job_id)
            if job.status not in EDITABLE:
                hint = {"running": "; pause it first (it keeps a checkpoint, which editing then discards)",
                        "done": "; duplicate it to make another with changes"}.get(job.status, "")
                raise JobStateError(f"job {job_id} is {job.status}; only waiting, paused, interrupted or failed jobs "
                                    f"can be edited{hint}")
            try:
                request = validate(job.generation_request.replace(**changes))
            except TypeError as exc:
                raise InvalidRequest(f"cannot change the request: {exc}") from None
            step = self.checkpoint_of(job)
            if step is not None and not discard_checkpoint:
                raise CheckpointWouldBeLost(
                    f"job {job_id} has a checkpoint at step {step}/{job.steps or '?'}; editing discards it and the "
                    "job starts again from step 0 (pass --discard-checkpoint to edit anyway)")
            self._set(conn, job_id, request=json.dumps(request.to_dict(), ensure_ascii=False), model=request.model,
                      revision=request.revision, checkpoint_step=None, step=None, steps=None, stage=None,
                      step_at=None, seconds_per_step=None)
            if step is not None or job.checkpoint_step:
                self.checkpoints(job_id).clear()  # inside the transaction: no worker can take the job meanwhile
        return self.get(job_id)
