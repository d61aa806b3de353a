"""The engine worker: its options and environment, its events (progress, previews, results) and its crashes."""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer

from stepvideo.errors import StepVideoError
from stepvideo_desktop import live_progress, protocol
from stepvideo_desktop.live_progress import LiveProgress

if TYPE_CHECKING:
    from stepvideo_desktop.services import AppServices

log = logging.getLogger(__name__)

STATE_WORDS = {"stopped": "Worker: stopped", "starting": "Worker: starting…", "idle": "Worker: idle",
               "loading": "Worker: loading the model…", "running": "Worker: running", "stopping": "Worker: stopping…"}
OTHER_WORKER = "Worker: another process runs the queue (its progress shows here)"


class WorkerController(QObject):
    def __init__(self, app: AppServices) -> None:
        super().__init__(app)
        self.app = app
        self.live: LiveProgress | None = None  # the running job, as the job card, table and status bar show it
        self.other_worker = False  # our worker found another one (e.g. `stepvideo queue run`) on the queue

    def wire(self) -> None:
        engine = self.app.engine
        engine.event.connect(self.on_event)
        engine.state_changed.connect(self.on_state)
        engine.crashed.connect(self.on_crash)
        engine.stopped.connect(self.on_stopped)

    def options(self) -> protocol.WorkerOptions:
        s = self.app.store.value
        return protocol.WorkerOptions(queue_db=self.app.queue.path, checkpoint_every_steps=s.checkpoint_every_steps,
                                      preview_every_steps=s.preview_every_steps if s.previews else 0)

    def env(self) -> dict[str, str]:
        s = self.app.store.value
        env = {"STEPVIDEO_VIDEOS_DIR": str(s.output_path)}
        if s.models_dir:
            env["STEPVIDEO_MODELS_DIR"] = s.models_dir
        if s.gpu_index is not None:
            from stepvideo.gpus import gpu_environment

            env.update(gpu_environment(s.gpu_index))  # the worker sees only the chosen GPU, as cuda:0
        return env

    def on_event(self, ev: dict) -> None:
        app = self.app
        kind = ev["type"]
        job_id = ev.get("job_id")
        app.queue_view.detail.on_event(ev)
        self._follow(ev)
        if kind == "preview" and job_id is not None and ev.get("path"):
            app.queue_model.set_preview(job_id, ev["path"])
        elif kind == "ready":
            self.other_worker = False
        elif kind == "job_done":
            app.reload_queue()
            app.reload_gallery()
            app.notify("Video ready", self._prompt_of(job_id), ev.get("video_path"))  # a click opens it
            self._after_job()
        elif kind in ("job_failed", "job_paused", "job_interrupted"):
            app.reload_queue()
            if kind == "job_failed" and ev.get("kind") != "cancelled":
                app.queue_view.banner.show_message(f"Job {job_id} failed: {ev.get('message', '')}")
                app.notify("Job failed", ev.get("message", ""))
            self._after_job()
        elif kind == "log" and ev.get("level") == "error":
            log.warning("worker: %s", ev.get("message"))

    def _follow(self, ev: dict) -> None:
        """Fold the event into the running job's progress and show it in all three places at once."""
        app = self.app
        before = self.live
        self.live = live_progress.advance(before, ev)
        if ev["type"] == "job_started":
            app.reload_queue()  # the row turns "running" before its progress shows
            row = app.queue_model.row_of(ev.get("job_id"))
            job = app.queue_model.job_at(row) if row is not None else None
            if self.live is not None and job is not None and job.checkpoint_step and not self.live.resumed_from:
                self.live = dataclasses.replace(self.live, resumed_from=job.checkpoint_step)
        if self.live is before:
            return
        if before is not None and (self.live is None or self.live.job_id != before.job_id):
            app.queue_model.set_live(before.job_id, None)
        if self.live is not None:
            app.queue_model.set_live(self.live.job_id, self.live)
            app.queue_view.detail.show_live(self.live)
            app.window.status_view.set_worker_state(self.live.status_line())

    def _prompt_of(self, job_id: int | None) -> str:
        model = self.app.queue_model
        row = model.row_of(job_id) if job_id is not None else None
        return model.jobs[row].prompt[:120] if row is not None else ""

    def _after_job(self) -> None:
        app = self.app
        if app.lifecycle.quit_after_job:
            app.lifecycle.finish_close()
            return
        if not app.store.value.keep_model_loaded and not app.queue_ctl.runnable():
            app.engine.stop()  # exiting the worker is the only sure way to free all VRAM

    def on_state(self, state: str) -> None:
        app = self.app
        app.monitor.worker_pid = app.engine.pid if state != "stopped" else None
        if state in ("loading", "running") and self.live is not None:
            text = self.live.status_line()  # what the job card says, not a second opinion
        elif state == "stopped" and self.other_worker:
            text = OTHER_WORKER
        else:
            text = STATE_WORDS[state]
        app.window.status_view.set_worker_state(text)

    def _forget_live(self) -> None:
        if self.live is not None:
            self.app.queue_model.set_live(self.live.job_id, None)
            self.live = None

    def on_crash(self, message: str, details: str, pid: int) -> None:
        """The worker died on its own: mark its job, keep the app up, offer to resume."""
        app = self.app
        if app.queue_ctl.killed_on_purpose:  # a stop supervisor killed a hung worker and already said so
            app.queue_ctl.killed_on_purpose = False
            app.queue.recover_if_no_worker()
            app.reload_queue()
            return
        try:
            ids = app.queue.recover_interrupted(message, pid=pid) if pid else app.queue.recover_if_no_worker()
        except StepVideoError as exc:
            log.error("could not mark the interrupted job: %s", exc)
            ids = []
        if message.startswith("another worker"):
            self.other_worker = True  # not restarted in a loop: the next job added or resumed tries again
            app.window.status_view.set_worker_state(OTHER_WORKER)
            app.queue_view.banner.show_message(message.capitalize() + ". This window shows its progress.", kind="info")
            return
        if not app.lifecycle.closing:
            app.store.update(queue_paused=True)  # a job that kills its worker must not loop silently
        which = f"job {ids[0]}" if ids else "no job"
        app.queue_view.banner.show_message(
            f"The {message} while running {which}. The app is fine; the job is marked interrupted and resumes "
            "from its last checkpoint when you press Resume queue. A lighter memory profile may help.",
            details=details)
        app.notify("Worker stopped", message)
        app.reload_queue()

    def on_stopped(self) -> None:
        app = self.app
        if app.lifecycle.closing:
            app.lifecycle.finish_close()
            return
        app.reload_queue()
        self._forget_live()
        # A paused queue (by the user, or after a crash) stays stopped until Resume queue; a queue that
        # another process runs is left to it.
        if not self.other_worker and not app.store.value.queue_paused and app.queue_ctl.runnable() and app.engine.state == "stopped":
            QTimer.singleShot(0, app.queue_ctl.kick)
