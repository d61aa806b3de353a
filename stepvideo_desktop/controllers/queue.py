"""The Queue page: adding, reordering, cancelling and importing jobs over the SQLite queue.

The database is shared with the CLI and the worker, so a cheap fingerprint query every second tells
the page when someone else changed it.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QFileDialog

from stepvideo.api import GenerationRequest
from stepvideo.errors import InvalidRequest, StepVideoError
from stepvideo.jobs.batch_files import import_file
from stepvideo.jobs.store import FINISHED
from stepvideo.jobs.variations import add_variations
from stepvideo_desktop.views.queue_model import preview_of

if TYPE_CHECKING:
    from stepvideo_desktop.services import AppServices

log = logging.getLogger(__name__)

POLL_MS = 1000  # how often the queue database is checked for changes made elsewhere (CLI, worker)


class QueueController(QObject):
    def __init__(self, app: AppServices) -> None:
        super().__init__(app)
        self.app = app
        self._fingerprint_conn: sqlite3.Connection | None = None
        self._fingerprint = None
        self._supervisors: list = []  # StopSupervisor per cancel/pause of a running job
        self.killed_on_purpose = False  # a supervisor killed a hung worker (and said so already)
        self._supervise = QTimer(self, interval=250)
        self._supervise.timeout.connect(self._poll_supervisors)
        self._poll = QTimer(self, interval=POLL_MS)
        self._poll.timeout.connect(self.poll)

    def wire(self) -> None:
        app = self.app
        app.composer.submitted.connect(self.add_job)
        app.queue_view.action_requested.connect(self.job_action)
        app.queue_view.pause_queue_toggled.connect(self.set_paused)
        app.queue_view.import_requested.connect(self.import_prompts)
        app.queue_view.clear_finished_requested.connect(self.clear_finished)
        app.queue_model.reorder_requested.connect(self.reorder)

    def start_polling(self) -> None:
        self._poll.start()

    def stop(self) -> None:
        self._poll.stop()
        self._supervise.stop()
        if self._fingerprint_conn is not None:
            self._fingerprint_conn.close()
            self._fingerprint_conn = None

    def runnable(self) -> bool:
        counts = self.app.queue.counts()
        return counts.get("queued", 0) + counts.get("interrupted", 0) > 0

    def add_job(self, request: GenerationRequest, front: bool = False) -> int | None:
        app = self.app
        count = app.composer.variation_count()
        try:
            jobs = add_variations(app.queue, request, count)  # one job (no group) when count is 1
            if front:
                for index, added in enumerate(jobs):
                    app.queue.move(added.id, index)
        except InvalidRequest as exc:
            app.composer.error.setText(str(exc))
            return None
        job = jobs[0]
        what = f"{count} variations (jobs {job.id}–{jobs[-1].id})" if count > 1 else f"Job {job.id}"
        app.window.statusBar().showMessage(f"{what} added to the queue" + (" (next)" if front else ""), 4000)
        self.reload()
        self.kick()
        return job.id

    def kick(self) -> None:
        """Wake the worker (starting it if needed) unless the queue is paused or the app is closing."""
        app = self.app
        if app.allow_worker and not app.store.value.queue_paused and not app.lifecycle.closing:
            app.engine.wake()

    def reload(self) -> None:
        app = self.app
        jobs = app.queue.list()
        for job in jobs:
            if job.id not in app.queue_model.previews and job.status in ("running", "paused", "interrupted"):
                path = preview_of(app.queue.preview_dir(job.id))
                if path:
                    app.queue_model.previews[job.id] = path
        app.queue_model.set_jobs(jobs)
        running = next((j for j in jobs if j.status == "running"), None)
        app.queue_view.detail.set_job(running)
        app.window.status_view.set_waiting(sum(j.status in ("queued", "interrupted") for j in jobs))
        self._fingerprint = self._read_fingerprint()

    def _read_fingerprint(self):
        try:
            if self._fingerprint_conn is None:
                self._fingerprint_conn = sqlite3.connect(f"file:{self.app.queue.path}?mode=ro", uri=True,
                                                         check_same_thread=False)
            return self._fingerprint_conn.execute(
                "SELECT COUNT(*), MAX(updated_at), MAX(id), SUM(position) FROM jobs").fetchone()
        except sqlite3.Error as exc:
            log.warning("queue fingerprint failed: %s", exc)
            return None

    def poll(self) -> None:
        fingerprint = self._read_fingerprint()
        if fingerprint is None or fingerprint != self._fingerprint:
            self.reload()

    def job_action(self, action: str, ids: list[int]) -> None:
        app = self.app
        if action == "remove":
            unfinished = [i for i in ids if app.queue.get(i).status not in FINISHED]
            if unfinished and not app._confirm(
                    "Remove jobs", f"Remove {len(ids)} job(s)? {len(unfinished)} not finished; their progress "
                                   "(checkpoints) will be deleted. Finished videos stay in the gallery."):
                return
        errors = []
        for job_id in ids:
            try:
                if action in ("cancel", "pause"):
                    self._stop_job(job_id, action)
                elif action == "resume":
                    app.queue.resume(job_id)
                elif action == "retry":
                    app.queue.retry(job_id)
                elif action == "duplicate":
                    app.queue.duplicate(job_id)
                elif action == "remove":
                    app.queue.remove(job_id)
                elif action == "edit":
                    app.batch_ctl.begin_edit(job_id)
                    return
                elif action == "reuse":
                    app.composer.load_request(app.queue.get(job_id).generation_request)
                    app.window.show_page("composer")
            except StepVideoError as exc:
                errors.append(str(exc))
        if errors:
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            app.queue_view.banner.show_message(errors[0] + more)
        self.reload()
        if action in ("resume", "retry", "duplicate"):
            self.kick()

    def _stop_job(self, job_id: int, action: str) -> None:
        """Cancel or pause through the queue; a running job's worker that does not answer in time is killed."""
        from stepvideo.jobs.supervisor import StopSupervisor

        supervisor = StopSupervisor(self.app.queue, job_id, action, grace_s=self.app.stop_grace_s)
        if supervisor.start() is not None:
            return  # it was waiting: done on the spot
        if self.app.engine.job_id == job_id:
            self.app.engine.send(action, job_id)  # faster than the worker's database poll
        self._supervisors.append(supervisor)
        if not self._supervise.isActive():
            self._supervise.start()

    def _poll_supervisors(self) -> None:
        for supervisor in list(self._supervisors):
            try:
                outcome = supervisor.poll()
            except StepVideoError as exc:
                self._supervisors.remove(supervisor)
                self.app.queue_view.banner.show_message(str(exc))
                continue
            if outcome is None:
                continue
            self._supervisors.remove(supervisor)
            if outcome.killed:
                self.killed_on_purpose = True
                self.app.queue_view.banner.show_message(outcome.message.capitalize() + ".", kind="warn")
            self.reload()
        if not self._supervisors:
            self._supervise.stop()

    def reorder(self, ids: list[int]) -> None:
        try:
            self.app.queue.reorder(ids)
        except StepVideoError as exc:
            self.app.queue_view.banner.show_message(str(exc))
        self.reload()

    def set_paused(self, paused: bool) -> None:
        app = self.app
        app.store.update(queue_paused=paused)
        if paused:
            app.engine.stop()  # the running job checkpoints and resumes when the queue does
            app.window.statusBar().showMessage("Queue paused: the running job saves a checkpoint and stops.", 6000)
        else:
            app.queue_view.banner.hide()
            self.kick()

    def import_prompts(self, path: str | None = None) -> int:
        app = self.app
        if path is None:
            path, _ = QFileDialog.getOpenFileName(
                app.window, "Import a batch", str(Path.home()),
                "Batches and prompt lists (*.csv *.jsonl *.ndjson *.txt);;All files (*)")
            if not path:
                return 0
        try:
            jobs = import_file(app.queue, path, app.composer.settings_request())
        except StepVideoError as exc:
            app.queue_view.banner.show_message(str(exc))
            return 0
        app.queue_view.banner.show_message(
            f"Imported {len(jobs)} jobs from {Path(path).name}; what the file leaves out comes from Create.",
            kind="info")
        self.reload()
        self.kick()
        return len(jobs)

    def clear_finished(self) -> None:
        for job in self.app.queue.list(FINISHED):
            try:
                self.app.queue.remove(job.id)
            except StepVideoError as exc:
                log.warning("could not remove job %d: %s", job.id, exc)
        self.reload()
