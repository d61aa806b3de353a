"""Controller: the composition root. Builds the services and pages, hands each concern to its controller
(desktop/controllers/: queue, worker, gallery, models, lifecycle) and keeps the public API in one place.

Services: SettingsStore, the SQLite JobQueue (shared with the CLI and the worker), EngineClient
(worker process), HubClient (downloads), Monitor (psutil + NVML). Views only emit signals.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QApplication

from stepvideo.api import GenerationRequest
from stepvideo_desktop import assets, cjk_font, fit, theme
from stepvideo_desktop.controllers.batch import BatchController
from stepvideo_desktop.controllers.gallery import GalleryController
from stepvideo_desktop.controllers.lifecycle import LifecycleController
from stepvideo_desktop.controllers.models import ModelsController
from stepvideo_desktop.controllers.queue import QueueController
from stepvideo_desktop.controllers.worker import WorkerController
from stepvideo_desktop.engine_client import EngineClient
from stepvideo_desktop.hub_client import HubClient
from stepvideo_desktop.monitor import Monitor
from stepvideo_desktop.settings_store import SettingsStore
from stepvideo_desktop.views.composer import ComposerView
from stepvideo_desktop.views.gallery import GalleryView
from stepvideo_desktop.views.gallery_model import GalleryItem, GalleryModel
from stepvideo_desktop.views.main_window import PAGE_KEYS, MainWindow
from stepvideo_desktop.views.models_page import ModelsPage
from stepvideo_desktop.views.queue_model import QueueModel
from stepvideo_desktop.views.queue_view import QueueView
from stepvideo_desktop.views.settings_page import SettingsPage

log = logging.getLogger(__name__)

STOP_GRACE_S = 30.0  # a worker that has not cancelled/paused a job this long after its step ends is killed


class Controller(QObject):
    stop_grace_s = STOP_GRACE_S

    def __init__(self, start_worker: bool = True, theme_override: str | None = None,
                 queue_path: Path | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        from stepvideo import hub
        from stepvideo.jobs.store import JobQueue

        self.store = SettingsStore()
        self._theme_override = theme_override
        theme.apply(QApplication.instance(), theme_override or self.store.value.theme)
        self.queue = JobQueue(queue_path)
        self.allow_worker = start_worker

        self.queue_ctl = QueueController(self)
        self.batch_ctl = BatchController(self)
        self.worker_ctl = WorkerController(self)
        self.gallery_ctl = GalleryController(self)
        self.models_ctl = ModelsController(self)
        self.lifecycle = LifecycleController(self)

        self.monitor = Monitor(parent=self)
        self.engine = EngineClient(self.worker_ctl.options, self.worker_ctl.env, parent=self)
        self.hub = HubClient(lambda: self.store.value.models_dir or None, parent=self)
        self.queue_model = QueueModel(self)
        self.gallery_model = GalleryModel(self)

        cjk = cjk_font.has_cjk_font()
        if not cjk:
            log.warning("no font for Chinese text: English examples only; %s", cjk_font.INSTALL_HINT)
        self.composer = ComposerView(assets.example_prompts(cjk=cjk), cjk=cjk)
        self.queue_view = QueueView(self.queue_model)
        self.gallery = GalleryView(self.gallery_model)
        self.models = ModelsPage()
        self.settings_page = SettingsPage(self.store, str(hub.cache_root(None)))
        self.window = MainWindow({"composer": self.composer, "queue": self.queue_view, "gallery": self.gallery,
                                  "models": self.models, "settings": self.settings_page})
        self._wire()
        self._apply_settings(self.store.value, first=True)
        if self.store.reset_notice:  # shown once: the repaired file is saved
            self.window.banner.show_message(self.store.reset_notice, kind="warn")
        recovered = self.queue.recover_if_no_worker()  # the app (or its worker) died last time
        if recovered:
            log.info("marked jobs %s interrupted: no worker was running them", recovered)
        self.reload_queue()
        self.reload_gallery()
        self.hub.refresh(online=False)  # fast and local; the online check follows
        self.hub.check_online()
        self.monitor.start()
        self.queue_ctl.start_polling()
        if start_worker and not self.store.value.queue_paused and self.queue_ctl.runnable():
            self.engine.start()

    def _wire(self) -> None:
        for part in (self.queue_ctl, self.batch_ctl, self.worker_ctl, self.gallery_ctl, self.models_ctl, self.lifecycle):
            part.wire()
        self.composer.set_predictor(self._predict)
        self.queue_model.video_thumbnail = self.gallery_model.thumbnail_of
        self.gallery_model.dataChanged.connect(self.queue_model.refresh_previews)
        self.gallery_model.modelReset.connect(self.queue_model.refresh_previews)
        self.monitor.sampled.connect(self.window.status_view.show_sample)
        self.monitor.sampled.connect(self.queue_view.detail.on_sample)
        self.store.changed.connect(self._apply_settings)
        self.store.save_failed.connect(lambda line: self.window.banner.show_message(line, kind="warn"))

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
        self.batch_ctl.apply_gpu(s.gpu_index, first)
        self.models_ctl.refresh_choice()
        if not first:
            self.reload_gallery()
            self.hub.refresh(online=self.hub.online)

    def _predict(self, request: GenerationRequest):
        sample = self.monitor.last
        gpu_free = (sample.vram_total - sample.vram_used) if sample and sample.has_gpu else 0
        ram = sample.ram_total - sample.ram_used if sample else None
        return fit.estimate(request, gpu_free, ram)

    def active_model(self) -> str:
        return self.models_ctl.active_model()

    # ---- public API (tests, benchmarks, app.py) --------------------------------------------------
    def add_job(self, request: GenerationRequest, front: bool = False) -> int | None:
        return self.queue_ctl.add_job(request, front)

    def reload_queue(self) -> None:
        self.queue_ctl.reload()

    def _poll_queue(self) -> None:
        self.queue_ctl.poll()

    def job_action(self, action: str, ids: list[int]) -> None:
        self.queue_ctl.job_action(action, ids)

    def reorder(self, ids: list[int]) -> None:
        self.queue_ctl.reorder(ids)

    def set_queue_paused(self, paused: bool) -> None:
        self.queue_ctl.set_paused(paused)

    def import_prompts(self, path: str | None = None) -> int:
        return self.queue_ctl.import_prompts(path)

    def clear_finished(self) -> None:
        self.queue_ctl.clear_finished()

    def edit_job(self, job_id: int) -> bool:
        return self.batch_ctl.begin_edit(job_id)

    def export_queue(self, which: str = "waiting", path: str | None = None) -> int | None:
        return self.batch_ctl.export(which, path)

    def reload_gallery(self) -> None:
        self.gallery_ctl.reload()

    def reuse_item(self, item: GalleryItem) -> None:
        self.gallery_ctl.reuse_item(item)

    def load_video_settings(self, path: str) -> bool:
        return self.gallery_ctl.load_video_settings(path)

    def open_files(self, paths: list[str]) -> bool:
        return self.gallery_ctl.open_files(paths)

    def delete_video(self, item: GalleryItem) -> None:
        self.gallery_ctl.delete_video(item)

    def undo_delete(self) -> None:
        self.gallery_ctl.undo_delete()

    def download_model(self, repo: str, revision: str = "main") -> None:
        self.models_ctl.download(repo, revision)

    def delete_model(self, repo: str, commit: str) -> None:
        self.models_ctl.delete(repo, commit)

    def use_model(self, repo: str) -> None:
        self.models_ctl.use(repo)

    def notify(self, title_text: str, message: str, open_path: str | None = None) -> None:
        self.lifecycle.notify(title_text, message, open_path)

    def _confirm(self, title_text: str, text: str) -> bool:
        return self.lifecycle.confirm(title_text, text)

    def ask_close_choice(self) -> str:
        return self.lifecycle.ask_close_choice()

    def show_unexpected(self, line: str) -> None:
        self.lifecycle.show_unexpected(line)

    def show(self, page: str | None = None) -> None:
        self.lifecycle.show(page)

    def screenshot(self, path: str, page: str, size: tuple[int, int]) -> bool:
        return self.lifecycle.screenshot(path, page, size)

    def shutdown(self) -> None:
        self.lifecycle.shutdown()

    @property
    def page_keys(self) -> tuple[str, ...]:
        return PAGE_KEYS
