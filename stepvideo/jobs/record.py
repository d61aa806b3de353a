"""One job of the queue as read from its database row, and the errors about jobs. Torch-free."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from stepvideo.api import GenerationRequest
from stepvideo.errors import InvalidRequest


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
    step_at: float | None = None  # wall-clock time the last step ended
    seconds_per_step: float | None = None  # how long the last step took
    group_id: str | None = None  # variations made together share it (schema v3); None: no group

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
            "progress": {"step": self.step, "steps": self.steps, "stage": self.stage,
                         "step_at": self.step_at, "seconds_per_step": self.seconds_per_step},
            "outputs": self.outputs, "result": self.result,
            "error": {"kind": self.error_kind, "message": self.error_message} if self.error_kind else None,
            "checkpoint_step": self.checkpoint_step, "worker_pid": self.worker_pid,
            "requested": self.requested, "attempts": self.attempts, "crashes": self.crashes,
            "group": self.group_id,
        }

    @classmethod
    def _from_row(cls, row: sqlite3.Row) -> Job:
        d = dict(row)
        d["request"] = json.loads(d["request"])
        d["outputs"] = json.loads(d["outputs"]) if d["outputs"] else {}
        d["result"] = json.loads(d["result"]) if d["result"] else None
        return cls(**d)
