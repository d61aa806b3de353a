"""Batch work on the Queue page: editing a job in Create ("Update job"), exporting jobs as JSON Lines, and
the queue's GPU (Settings' picker) for the worker, the status bar, the memory graph and the planner."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog

from stepvideo.api import GenerationRequest
from stepvideo.errors import StepVideoError
from stepvideo.jobs.batch_export import export_jobs
from stepvideo.jobs.editing import CheckpointWouldBeLost

if TYPE_CHECKING:
    from stepvideo_desktop.services import AppServices

log = logging.getLogger(__name__)

# What the Create page decides about a job. The rest of the request (output path, revision, quantization,
# the model it was queued with) is not on the page, so an edit leaves it as it was.
EDITED_FIELDS = ("prompt", "negative_prompt", "positive_suffix", "preset", "steps", "cfg", "shift", "height",
                 "width", "frames", "seed", "profile")


class BatchController(QObject):
    def __init__(self, app: AppServices) -> None:
        super().__init__(app)
        self.app = app
        self._gpu: int | None = None

    def wire(self) -> None:
        self.app.composer.update_requested.connect(self.update_job)
        self.app.queue_view.export_requested.connect(self.export)

    # ---- editing -----------------------------------------------------------------------------------
    def begin_edit(self, job_id: int) -> bool:
        """Open a waiting, paused, interrupted or failed job in Create with an "Update job" button."""
        app = self.app
        try:
            job = app.queue.get(job_id)
            from stepvideo.jobs.editing import EDITABLE

            if job.status not in EDITABLE:
                raise StepVideoError(f"job {job_id} is {job.status}; only waiting, paused, interrupted or failed "
                                     "jobs can be edited")
            app.composer.begin_edit(job_id, job.generation_request, app.queue.checkpoint_of(job))
        except StepVideoError as exc:
            app.queue_view.banner.show_message(str(exc))
            return False
        app.window.show_page("composer")
        return True

    def update_job(self, job_id: int, request: GenerationRequest, discard: bool = False) -> bool:
        app = self.app
        changes = {name: getattr(request, name) for name in EDITED_FIELDS}
        try:
            app.queue.edit(job_id, changes, discard_checkpoint=discard)
        except CheckpointWouldBeLost as exc:
            if discard or not app._confirm("Discard the checkpoint?", f"{str(exc).split(' (pass')[0]}. Update the job anyway?"):
                return False
            return self.update_job(job_id, request, discard=True)
        except StepVideoError as exc:
            app.composer.error.setText(str(exc))  # e.g. it started running meanwhile
            return False
        app.composer.end_edit()
        app.window.statusBar().showMessage(f"Job {job_id} updated", 4000)
        app.reload_queue()
        app.window.show_page("queue")
        return True

    # ---- export ------------------------------------------------------------------------------------
    def export(self, which: str = "waiting", path: str | None = None) -> int | None:
        app = self.app
        if path is None:
            path, _ = QFileDialog.getSaveFileName(app.window, "Export jobs", str(Path.home() / "queue.jsonl"),
                                                  "JSON Lines (*.jsonl)")
            if not path:
                return None
            if not path.endswith(".jsonl"):
                path += ".jsonl"
        try:  # the save dialog already asked before replacing a file
            count = export_jobs(app.queue, path, which, replace=True)
        except StepVideoError as exc:
            app.queue_view.banner.show_message(str(exc))
            return None
        app.queue_view.banner.show_message(f"Exported {count} job(s) to {path}.", kind="info")
        return count

    # ---- GPU ---------------------------------------------------------------------------------------
    def apply_gpu(self, index: int | None, first: bool = False) -> None:
        """Point the monitor (status bar, memory graph, planner) at the chosen GPU; an idle worker is
        restarted on it, a busy one keeps its GPU until it next starts."""
        app = self.app
        app.monitor.set_gpu(index or 0)
        if first or index == self._gpu:
            self._gpu = index
            return
        self._gpu = index
        if app.engine.is_alive() and app.engine.state in ("idle", "starting"):
            app.engine.stop()  # on_stopped starts it again (on the new GPU) when jobs are waiting
        elif app.engine.is_alive():
            app.window.statusBar().showMessage(
                f"The running job stays on its GPU; the worker uses GPU {index or 0} from its next start.", 8000)
