"""Controller: builds the services and pages and wires them. Views call only signals; this owns behaviour.

Services: SettingsStore, the SQLite JobQueue (shared with the CLI and the worker), EngineClient
(worker process), HubClient (downloads), Monitor (psutil + NVML).
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, QUrl
from PySide6.QtGui import QCloseEvent, QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox, QSystemTrayIcon

from desktop import assets, fit, protocol, theme
from desktop.engine_client import EngineClient
from desktop.hub_client import HubClient
from desktop.monitor import Monitor
from desktop.settings_store import SettingsStore
from desktop.token_counter import TokenCounter
from desktop.views.composer import ComposerView
from desktop.views.gallery import GalleryView
from desktop.views.gallery_model import GalleryItem, GalleryModel, read_sidecar
from desktop.views.main_window import PAGE_KEYS, MainWindow
from desktop.views.models_page import ModelCard, ModelsPage
from desktop.views.queue_model import QueueModel, preview_of
from desktop.views.queue_view import QueueView
from desktop.views.settings_page import SettingsPage
from desktop.views.widgets import human_duration
from stepvideo.api import GenerationRequest
from stepvideo.errors import InvalidRequest, StepVideoError
from stepvideo.jobs import FINISHED, JobQueue
from stepvideo.presets import BASE_REPO, TURBO_REPO

log = logging.getLogger(__name__)

POLL_MS = 1000  # how often the queue database is checked for changes made elsewhere (CLI, worker)
STOP_GRACE_S = 30.0  # a worker that has not cancelled/paused a job this long after its step ends is killed


class Controller(QObject):
    stop_grace_s = STOP_GRACE_S
    def __init__(self, start_worker: bool = True, theme_override: str | None = None,
                 queue_path: Path | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.store = SettingsStore()
        self._theme_override = theme_override
        theme.apply(QApplication.instance(), theme_override or self.store.value.theme)
        self.queue = JobQueue(queue_path)
        self._fingerprint_conn: sqlite3.Connection | None = None
        self._fingerprint = None
        self._allow_worker = start_worker
        self._quit_after_job = False
        self._closing = False
        self._tray: QSystemTrayIcon | None = None

        self.monitor = Monitor(parent=self)
        self.engine = EngineClient(self._worker_options, self._worker_env, parent=self)
        self.hub = HubClient(lambda: self.store.value.models_dir or None, parent=self)
        self.queue_model = QueueModel(self)
        self.gallery_model = GalleryModel(self)

        self.composer = ComposerView(assets.example_prompts())
        self.queue_view = QueueView(self.queue_model)
        self.gallery = GalleryView(self.gallery_model)
        self.models = ModelsPage()
        from stepvideo import hub

        self.settings_page = SettingsPage(self.store, str(hub.cache_root(None)))
        self.window = MainWindow({"composer": self.composer, "queue": self.queue_view, "gallery": self.gallery,
                                  "models": self.models, "settings": self.settings_page})
        self._wire()
        self._apply_settings(self.store.value, first=True)
        recovered = self.queue.recover_if_no_worker()  # the app (or its worker) died last time
        if recovered:
            log.info("marked jobs %s interrupted: no worker was running them", recovered)
        self.reload_queue()
        self.reload_gallery()
        self.hub.refresh(online=False)  # fast and local; the online check follows
        self.hub.check_online()
        self.monitor.start()
        self._supervisors: list = []  # StopSupervisor per cancel/pause of a running job
        self._killed_on_purpose = False
        self._supervise = QTimer(self, interval=250)
        self._supervise.timeout.connect(self._poll_supervisors)
        self._poll = QTimer(self, interval=POLL_MS)
        self._poll.timeout.connect(self._poll_queue)
        self._poll.start()
        if start_worker and not self.store.value.queue_paused and self._runnable():
            self.engine.start()

    # ---- wiring --------------------------------------------------------------------------------
    def _wire(self) -> None:
        self.composer.submitted.connect(self.add_job)
        self.composer.set_predictor(self._predict)
        self.queue_view.action_requested.connect(self.job_action)
        self.queue_view.pause_queue_toggled.connect(self.set_queue_paused)
        self.queue_view.import_requested.connect(self.import_prompts)
        self.queue_view.clear_finished_requested.connect(self.clear_finished)
        self.queue_model.reorder_requested.connect(self.reorder)
        self.gallery.reuse_requested.connect(self.reuse_item)
        self.gallery.open_folder_requested.connect(
            lambda item: QDesktopServices.openUrl(QUrl.fromLocalFile(str(item.path.parent))))
        self.gallery.copy_prompt_requested.connect(lambda item: QGuiApplication.clipboard().setText(item.prompt))
        self.gallery.delete_requested.connect(self.delete_video)
        self.gallery.undo_requested.connect(self.undo_delete)
        self._trashed: list[tuple[str, str]] = []  # (original, place in the trash), newest last

        self.engine.event.connect(self._on_event)
        self.engine.state_changed.connect(self._on_worker_state)
        self.engine.crashed.connect(self._on_crash)
        self.engine.stopped.connect(self._on_worker_stopped)
        self.monitor.sampled.connect(self.window.status_view.show_sample)
        self.monitor.sampled.connect(self.queue_view.detail.on_sample)

        self.hub.installed.connect(self._on_installed)
        self.hub.progress.connect(self._on_download_progress)
        self.hub.finished.connect(self._on_hub_finished)
        self.hub.failed.connect(self._on_hub_failed)
        self.hub.online_changed.connect(self.window.status_view.set_online)
        self.hub.online_changed.connect(self.models.set_online)
        self.hub.planned.connect(self._on_planned)
        for card in self.models.cards.values():
            self._wire_card(card)
        self.models.card_added = self._wire_card
        self.models.add_repo_requested.connect(self.download_model)
        self.models.clean_requested.connect(self._clean_models)
        self.models.plan_requested.connect(self.hub.plan)
        self.models.change_folder_requested.connect(lambda: self.window.show_page("settings"))

        self.store.changed.connect(self._apply_settings)
        self.window.video_dropped.connect(self.load_video_settings)
        self.window.close_requested.connect(self._on_close)
        self.window.page_changed.connect(self._page_changed)

    def _wire_card(self, card: ModelCard) -> None:
        card.download_requested.connect(self.download_model)
        card.cancel_requested.connect(lambda _repo: self.hub.cancel_download())
        card.verify_requested.connect(self.hub.verify)
        card.delete_requested.connect(self.delete_model)
        card.use_requested.connect(self.use_model)

    # ---- settings ------------------------------------------------------------------------------
    def _apply_settings(self, s, first: bool = False) -> None:
        if not first:
            theme.apply(QApplication.instance(), self._theme_override or s.theme)
        if first:
            self.composer.set_preset(s.default_preset)
            self.composer.set_profile(s.default_profile)
            self.window.restore_geometry_b64(s.window_geometry)
            self.window.show_page(s.last_page)
        self.queue_view.set_paused(s.queue_paused)
        self._refresh_model_choice()
        if not first:
            self.reload_gallery()
            self.hub.refresh(online=self.hub.online)

    def active_model(self) -> str:
        return self.store.value.active_model or BASE_REPO

    def _refresh_model_choice(self) -> None:
        from stepvideo import hub

        model = self.active_model()
        try:
            root = hub.resolve_model_dir(model, None, self.store.value.models_dir or None)
        except StepVideoError:
            root = None
        counter = TokenCounter.for_model_root(root)
        self.composer.set_model("" if model == BASE_REPO else model, counter)
        self.models.set_active(model)

    def _worker_options(self) -> protocol.WorkerOptions:
        s = self.store.value
        return protocol.WorkerOptions(queue_db=self.queue.path, checkpoint_every_steps=s.checkpoint_every_steps,
                                      preview_every_steps=s.preview_every_steps if s.previews else 0)

    def _worker_env(self) -> dict[str, str]:
        s = self.store.value
        env = {"STEPVIDEO_VIDEOS_DIR": str(s.output_path)}
        if s.models_dir:
            env["STEPVIDEO_MODELS_DIR"] = s.models_dir
        return env

    def _predict(self, request: GenerationRequest):
        sample = self.monitor.last
        gpu_free = (sample.vram_total - sample.vram_used) if sample and sample.has_gpu else 0
        ram = sample.ram_total - sample.ram_used if sample else None
        return fit.estimate(request, gpu_free, ram)

    # ---- queue ---------------------------------------------------------------------------------
    def _runnable(self) -> bool:
        counts = self.queue.counts()
        return counts.get("queued", 0) + counts.get("interrupted", 0) > 0

    def add_job(self, request: GenerationRequest, front: bool = False) -> int | None:
        try:
            job = self.queue.add(request)
            if front:
                self.queue.move(job.id, 0)
        except InvalidRequest as exc:
            self.composer.error.setText(str(exc))
            return None
        self.window.statusBar().showMessage(f"Job {job.id} added to the queue" + (" (next)" if front else ""), 4000)
        self.reload_queue()
        self._kick()
        return job.id

    def _kick(self) -> None:
        if self._allow_worker and not self.store.value.queue_paused and not self._closing:
            self.engine.wake()

    def reload_queue(self) -> None:
        jobs = self.queue.list()
        for job in jobs:
            if job.id not in self.queue_model.previews and job.status in ("running", "paused", "interrupted"):
                path = preview_of(self.queue.preview_dir(job.id))
                if path:
                    self.queue_model.previews[job.id] = path
        self.queue_model.set_jobs(jobs)
        running = next((j for j in jobs if j.status == "running"), None)
        self.queue_view.detail.set_job(running)
        waiting = sum(j.status in ("queued", "interrupted") for j in jobs)
        self.window.status_view.set_waiting(waiting)
        self._fingerprint = self._read_fingerprint()

    def _read_fingerprint(self):
        try:
            if self._fingerprint_conn is None:
                self._fingerprint_conn = sqlite3.connect(f"file:{self.queue.path}?mode=ro", uri=True,
                                                         check_same_thread=False)
            return self._fingerprint_conn.execute(
                "SELECT COUNT(*), MAX(updated_at), MAX(id), SUM(position) FROM jobs").fetchone()
        except sqlite3.Error as exc:
            log.warning("queue fingerprint failed: %s", exc)
            return None

    def _poll_queue(self) -> None:
        fingerprint = self._read_fingerprint()
        if fingerprint is None or fingerprint != self._fingerprint:
            self.reload_queue()

    def job_action(self, action: str, ids: list[int]) -> None:
        if action == "remove":
            unfinished = [i for i in ids if self.queue.get(i).status not in FINISHED]
            if unfinished and not self._confirm(
                    "Remove jobs", f"Remove {len(ids)} job(s)? {len(unfinished)} not finished; their progress "
                                   "(checkpoints) will be deleted. Finished videos stay in the gallery."):
                return
        errors = []
        for job_id in ids:
            try:
                if action in ("cancel", "pause"):
                    self._stop_job(job_id, action)
                elif action == "resume":
                    self.queue.resume(job_id)
                elif action == "retry":
                    self.queue.retry(job_id)
                elif action == "duplicate":
                    self.queue.duplicate(job_id)
                elif action == "remove":
                    self.queue.remove(job_id)
                elif action == "reuse":
                    self.composer.load_request(self.queue.get(job_id).generation_request)
                    self.window.show_page("composer")
            except StepVideoError as exc:
                errors.append(str(exc))
        if errors:
            self.queue_view.banner.show_message(errors[0] + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""))
        self.reload_queue()
        if action in ("resume", "retry", "duplicate"):
            self._kick()

    def _stop_job(self, job_id: int, action: str) -> None:
        """Cancel or pause through the queue; a running job's worker that does not answer in time is killed."""
        from stepvideo.worker_supervisor import StopSupervisor

        supervisor = StopSupervisor(self.queue, job_id, action, grace_s=self.stop_grace_s)
        if supervisor.start() is not None:
            return  # it was waiting: done on the spot
        if self.engine.job_id == job_id:
            self.engine.send(action, job_id)  # faster than the worker's database poll
        self._supervisors.append(supervisor)
        if not self._supervise.isActive():
            self._supervise.start()

    def _poll_supervisors(self) -> None:
        for supervisor in list(self._supervisors):
            try:
                outcome = supervisor.poll()
            except StepVideoError as exc:
                self._supervisors.remove(supervisor)
                self.queue_view.banner.show_message(str(exc))
                continue
            if outcome is None:
                continue
            self._supervisors.remove(supervisor)
            if outcome.killed:
                self._killed_on_purpose = True
                self.queue_view.banner.show_message(outcome.message.capitalize() + ".", kind="warn")
            self.reload_queue()
        if not self._supervisors:
            self._supervise.stop()

    def reorder(self, ids: list[int]) -> None:
        try:
            self.queue.reorder(ids)
        except StepVideoError as exc:
            self.queue_view.banner.show_message(str(exc))
        self.reload_queue()

    def set_queue_paused(self, paused: bool) -> None:
        self.store.update(queue_paused=paused)
        if paused:
            self.engine.stop()  # the running job checkpoints and resumes when the queue does
            self.window.statusBar().showMessage("Queue paused: the running job saves a checkpoint and stops.", 6000)
        else:
            self.queue_view.banner.hide()
            self._kick()

    def import_prompts(self, path: str | None = None) -> int:
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self.window, "Import prompts", str(Path.home()),
                                                  "Text files (*.txt);;All files (*)")
            if not path:
                return 0
        try:
            jobs = self.queue.import_prompts(path, self.composer.settings_request())
        except StepVideoError as exc:
            self.queue_view.banner.show_message(str(exc))
            return 0
        self.queue_view.banner.show_message(f"Imported {len(jobs)} prompts from {Path(path).name} with the settings on Create.",
                                            kind="info")
        self.reload_queue()
        self._kick()
        return len(jobs)

    def clear_finished(self) -> None:
        for job in self.queue.list(FINISHED):
            try:
                self.queue.remove(job.id)
            except StepVideoError as exc:
                log.warning("could not remove job %d: %s", job.id, exc)
        self.reload_queue()

    # ---- worker events -------------------------------------------------------------------------
    def _on_event(self, ev: dict) -> None:
        kind = ev["type"]
        job_id = ev.get("job_id")
        self.queue_view.detail.on_event(ev)
        if kind == "step" and job_id is not None:
            self.queue_model.update_step(job_id, ev)
            self.window.status_view.set_worker_state(
                f"Running job {job_id}: step {ev['i']}/{ev['n']} · ETA {human_duration(ev.get('eta_seconds'))}")
        elif kind == "preview" and job_id is not None and ev.get("path"):
            self.queue_model.set_preview(job_id, ev["path"])
        elif kind in ("job_started", "stage"):
            if kind == "job_started":
                self.reload_queue()
        elif kind == "job_done":
            self.reload_queue()
            self.reload_gallery()
            self.notify("Video ready", self.queue_model_prompt(job_id))
            self._after_job()
        elif kind in ("job_failed", "job_paused", "job_interrupted"):
            self.reload_queue()
            if kind == "job_failed" and ev.get("kind") != "cancelled":
                self.queue_view.banner.show_message(f"Job {job_id} failed: {ev.get('message', '')}")
                self.notify("Job failed", ev.get("message", ""))
            self._after_job()
        elif kind == "log" and ev.get("level") == "error":
            log.warning("worker: %s", ev.get("message"))

    def queue_model_prompt(self, job_id: int | None) -> str:
        row = self.queue_model.row_of(job_id) if job_id is not None else None
        return self.queue_model.jobs[row].prompt[:120] if row is not None else ""

    def _after_job(self) -> None:
        if self._quit_after_job:
            self._finish_close()
            return
        if not self.store.value.keep_model_loaded and not self._runnable():
            self.engine.stop()  # exiting the worker is the only sure way to free all VRAM

    def _on_worker_state(self, state: str) -> None:
        self.monitor.worker_pid = self.engine.pid if state != "stopped" else None
        words = {"stopped": "Worker: stopped", "starting": "Worker: starting…", "idle": "Worker: idle",
                 "loading": "Worker: loading the model…", "running": "Worker: running", "stopping": "Worker: stopping…"}
        if state != "running" or self.engine.last_step is None:
            self.window.status_view.set_worker_state(words[state])

    def _on_crash(self, message: str, details: str, pid: int) -> None:
        """The worker died on its own: mark its job, keep the app up, offer to resume."""
        if self._killed_on_purpose:  # a stop supervisor killed a hung worker and already said so
            self._killed_on_purpose = False
            self.queue.recover_if_no_worker()
            self.reload_queue()
            return
        try:
            ids = self.queue.recover_interrupted(message, pid=pid) if pid else self.queue.recover_if_no_worker()
        except StepVideoError as exc:
            log.error("could not mark the interrupted job: %s", exc)
            ids = []
        if message.startswith("another worker"):
            self.queue_view.banner.show_message(message.capitalize() + ". This window shows its progress.", kind="info")
            return
        if not self._closing:
            self.store.update(queue_paused=True)  # a job that kills its worker must not loop silently
        which = f"job {ids[0]}" if ids else "no job"
        self.queue_view.banner.show_message(
            f"The {message} while running {which}. The app is fine; the job is marked interrupted and resumes "
            "from its last checkpoint when you press Resume queue. A lighter memory profile may help.",
            details=details)
        self.notify("Worker stopped", message)
        self.reload_queue()

    def _on_worker_stopped(self) -> None:
        if self._closing:
            self._finish_close()
            return
        self.reload_queue()
        if not self.store.value.queue_paused and self._runnable() and self.engine.state == "stopped" and not self._crashed_recently():
            QTimer.singleShot(0, self._kick)

    def _crashed_recently(self) -> bool:
        return self.store.value.queue_paused

    # ---- gallery -------------------------------------------------------------------------------
    def reload_gallery(self) -> None:
        current = self.gallery.current()
        self.gallery_model.load(self.store.value.output_path)
        if current is not None:
            self.gallery.select_path(str(current.path))

    def reuse_item(self, item: GalleryItem) -> None:
        self.load_video_settings(str(item.path))

    def load_video_settings(self, path: str) -> bool:
        """Settings from the sidecar JSON (or the mp4's own metadata) into Create."""
        data = read_sidecar(Path(path))
        if data is None:
            try:
                from stepvideo import video_io

                data = video_io.read_metadata(Path(path))
            except (OSError, ValueError) as exc:
                log.warning("reading metadata of %s failed: %s", path, exc)
                data = None
        if not data or not isinstance(data.get("request"), dict):
            self.composer.error.setText(f"{Path(path).name} has no StepVideo settings (it was not made by this app).")
            self.window.show_page("composer")
            return False
        request = dict(data["request"])
        request.pop("output", None)  # a reused request writes a new file
        try:
            self.composer.load_request(GenerationRequest.from_dict(request))
        except (InvalidRequest, TypeError, ValueError) as exc:
            self.composer.error.setText(f"The settings in {Path(path).name} cannot be used: {exc}")
            return False
        self.window.show_page("composer")
        self.window.statusBar().showMessage(f"Loaded the settings of {Path(path).name}", 4000)
        return True

    def delete_video(self, item: GalleryItem) -> None:
        if not self._confirm("Delete video", f"Move {item.path.name} (and its settings file) to the trash?"):
            return
        moved = []
        for path in (item.path, item.path.with_suffix(".json")):
            if not path.exists():
                continue
            from PySide6.QtCore import QFile

            trashed = QFile(str(path))
            ok = trashed.moveToTrash()  # on success fileName() is the file's place in the trash
            where = trashed.fileName()
            if not ok:
                self.gallery.banner.show_message(f"Could not move {path.name} to the trash; nothing was deleted.")
                for original, trashed in moved:  # put back what already moved: all or nothing
                    shutil.move(trashed, original)
                return
            moved.append((str(path), where))
        self._trashed = moved
        self.reload_gallery()
        self.gallery.undo.show()
        self.gallery.banner.show_message(f"Moved {item.path.name} to the trash.", kind="info")

    def undo_delete(self) -> None:
        for original, trashed in self._trashed:
            try:
                shutil.move(trashed, original)
            except OSError as exc:
                self.gallery.banner.show_message(f"Could not restore {Path(original).name}: {exc}")
                return
        restored = self._trashed[0][0] if self._trashed else None
        self._trashed = []
        self.reload_gallery()
        self.gallery.banner.hide()
        if restored:
            self.gallery.select_path(restored)

    # ---- models --------------------------------------------------------------------------------
    def download_model(self, repo: str, revision: str = "main") -> None:
        if not repo:
            self.models.banner.show_message("Type a repository id such as stepfun-ai/stepvideo-t2v.")
            return
        if self.hub.downloading:
            self.models.banner.show_message(f"{self.hub.downloading} is downloading; wait for it or cancel it first.", kind="warn")
            return
        self.models.banner.hide()
        self.models.card(repo).show_progress({"phase": "start", "bytes_done": 0, "bytes_total": 1})
        self.hub.download(repo, revision)

    def delete_model(self, repo: str, commit: str) -> None:
        if self.hub.downloading == repo:
            self.models.banner.show_message("Cancel the download before deleting this model.", kind="warn")
            return
        if not self._confirm("Delete model", f"Delete {repo} ({commit[:10]}) from disk? You can download it again later."):
            return
        self.hub.delete(repo, commit)

    def use_model(self, repo: str) -> None:
        if repo == TURBO_REPO:
            self.store.update(default_preset="turbo", active_model="")
            self.composer.set_preset("turbo")
        else:
            self.store.update(active_model="" if repo == BASE_REPO else repo)
        self.window.statusBar().showMessage(f"New jobs use {repo}", 4000)

    def _clean_models(self) -> None:
        if self._confirm("Clean partial files", "Delete unfinished download pieces that no download can resume?"):
            self.hub.clean()

    def _on_installed(self, versions: list) -> None:
        self.models.show_installed(versions)
        from stepvideo import hub

        root = hub.cache_root(self.store.value.models_dir or None)
        used = sum(v.size_on_disk for v in versions)
        try:
            free = shutil.disk_usage(root if root.exists() else root.parent if root.parent.exists() else Path.home()).free
        except OSError:
            free = None
        self.models.set_folder(str(root), used, free)
        self._refresh_model_choice()

    def _on_download_progress(self, ev: dict) -> None:
        repo = ev.get("repo") or self.hub.downloading
        if repo:
            self.models.card(repo).show_progress(ev)

    def _on_planned(self, plan) -> None:
        verdict = "fits" if plan.fits else "does NOT fit"
        self.models.plan_text.setText(f"{plan.summary()} — {verdict}.")

    def _on_hub_finished(self, name: str, result) -> None:
        if name in ("download", "delete", "clean", "verify"):
            self.hub.refresh(online=self.hub.online)
        if name == "download":
            self.notify("Download complete", str(result))
            self._set_online(True)
        elif name == "verify":
            bad = list(result.corrupt) + list(result.missing)
            if bad:
                self.models.banner.show_message(f"{result.repo_id}: {len(bad)} file(s) damaged or missing ({bad[0]}…). "
                                                "Press Resume download to fetch exactly those again.", kind="warn")
            else:
                self.models.banner.show_message(f"{result.repo_id}: all {result.checked} files verified.", kind="info")
        elif name == "clean":
            self.models.banner.show_message(f"Cleaned {len(result.removed)} partial files.", kind="info")

    def _set_online(self, online: bool) -> None:
        self.hub._set_online(online)

    def _on_hub_failed(self, name: str, message: str, cancelled: bool) -> None:
        if name == "online":
            return
        if name == "download":
            self.hub.refresh(online=False)
        if cancelled:
            self.models.banner.show_message(message, kind="info")
        else:
            self.models.banner.show_message(f"{name.capitalize()} failed: {message}")

    # ---- app lifecycle -------------------------------------------------------------------------
    def notify(self, title_text: str, message: str) -> None:
        if not self.store.value.notifications:
            return
        if self._tray is None and QSystemTrayIcon.isSystemTrayAvailable():
            self._tray = QSystemTrayIcon(QApplication.instance().windowIcon(), self)
            self._tray.show()
        if self._tray is not None:
            self._tray.showMessage(title_text, message)
        else:
            self.window.statusBar().showMessage(f"{title_text}: {message}", 8000)

    def _confirm(self, title_text: str, text: str) -> bool:
        box = QMessageBox(QMessageBox.Icon.Question, title_text, text,
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self.window)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.setEscapeButton(QMessageBox.StandardButton.Cancel)
        return box.exec() == QMessageBox.StandardButton.Yes

    def ask_close_choice(self) -> str:
        """Finish first / pause (checkpoint and quit) / stop / cancel. Esc cancels."""
        box = QMessageBox(self.window)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("A job is running")
        box.setText("A video is being rendered. What should happen to it?")
        finish = box.addButton("Finish it, then quit", QMessageBox.ButtonRole.AcceptRole)
        pause = box.addButton("Pause and quit", QMessageBox.ButtonRole.DestructiveRole)
        stop = box.addButton("Stop it and quit", QMessageBox.ButtonRole.DestructiveRole)
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(pause)
        box.setEscapeButton(cancel)
        box.setInformativeText("Pause keeps a checkpoint: the job continues from it when you resume the queue.")
        box.exec()
        return {finish: "finish", pause: "pause", stop: "stop"}.get(box.clickedButton(), "cancel")

    def _on_close(self, event: QCloseEvent) -> None:
        if self._closing and not self.engine.is_alive():
            self._save_window()
            event.accept()
            return
        running = self.engine.is_alive() and self.engine.job_id is not None
        if not running:
            self._save_window()
            self._closing = True
            self.engine.stop()
            event.accept()
            return
        choice = self.ask_close_choice()
        event.ignore()
        if choice == "cancel":
            return
        self._save_window()
        if choice == "finish":
            self._quit_after_job = True
            self.window.statusBar().showMessage("The app quits when the current job finishes.")
            return
        self._closing = True
        if choice == "pause":
            self.store.update(queue_paused=True)
        else:
            job_id = self.engine.job_id
            try:
                self.queue.cancel(job_id)
            except StepVideoError as exc:
                log.warning("cancel on close: %s", exc)
            self.engine.cancel(job_id)
        self.window.statusBar().showMessage("Saving a checkpoint and stopping the worker…")
        self.engine.stop()

    def _finish_close(self) -> None:
        self._closing = True
        self._quit_after_job = False
        if self.engine.is_alive():
            self.engine.stop()  # _on_worker_stopped comes back here when it has exited
            return
        self.window.close()

    def _save_window(self) -> None:
        try:
            self.store.update(window_geometry=self.window.geometry_b64(),
                              last_page=PAGE_KEYS.index(self.window.current_page()))
        except (StepVideoError, OSError) as exc:
            log.warning("could not save the window state: %s", exc)

    def _page_changed(self, index: int) -> None:
        if PAGE_KEYS[index] == "gallery":
            self.reload_gallery()
        elif PAGE_KEYS[index] == "models":
            self.hub.refresh(online=self.hub.online)

    def show(self, page: str | None = None) -> None:
        if page:
            self.window.show_page(page)
        self.window.show()

    def screenshot(self, path: str, page: str, size: tuple[int, int]) -> bool:
        self.window.resize(*size)
        self.window.show_page(page)
        self.window.show()
        self.hub.wait_idle(5000)
        self.gallery_model.wait_for_thumbnails(5000)
        app = QApplication.instance()
        for _ in range(5):
            app.processEvents()
        if page == "gallery" and self.gallery_model.rowCount():
            self.gallery.grid.setCurrentIndex(self.gallery.proxy.index(0, 0))
            app.processEvents()
        ok = self.window.grab().save(path, "PNG")
        self.shutdown()
        return ok

    def shutdown(self) -> None:
        """Stop timers, the worker and the hub thread; close the queue. Safe to call twice."""
        self._poll.stop()
        self.monitor.stop()
        self.gallery.player.shutdown()
        if self.engine.is_alive():
            self.engine.stop()
            self.engine.wait_stopped(10_000)
        self.hub.shutdown()
        self.gallery_model.wait_for_thumbnails(3000)
        if self._fingerprint_conn is not None:
            self._fingerprint_conn.close()
            self._fingerprint_conn = None

    @property
    def page_keys(self) -> tuple[str, ...]:
        return PAGE_KEYS

