"""What a controller may reach: the services and pages that the composition root builds.

Controllers (controllers/*.py) are typed against `AppServices`, never against `Controller`, so
controller.py imports the controllers and nothing imports controller.py back. The two controllers
that others call are seen through the small protocols below, not through their classes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # types only: none of these modules imports a controller
    from stepvideo.jobs.store import JobQueue
    from stepvideo_desktop.engine_client import EngineClient
    from stepvideo_desktop.hub_client import HubClient
    from stepvideo_desktop.monitor import Monitor
    from stepvideo_desktop.settings_store import SettingsStore
    from stepvideo_desktop.views.composer import ComposerView
    from stepvideo_desktop.views.gallery import GalleryView
    from stepvideo_desktop.views.gallery_model import GalleryModel
    from stepvideo_desktop.views.main_window import MainWindow
    from stepvideo_desktop.views.models_page import ModelsPage
    from stepvideo_desktop.views.queue_model import QueueModel
    from stepvideo_desktop.views.queue_view import QueueView


class QueueRunner(Protocol):
    """The queue controller as the worker and lifecycle controllers use it."""

    killed_on_purpose: bool

    def runnable(self) -> bool: ...
    def kick(self) -> None: ...
    def stop(self) -> None: ...


class Lifecycle(Protocol):
    """The lifecycle controller as the queue and worker controllers use it."""

    closing: bool
    quit_after_job: bool

    def finish_close(self) -> None: ...


class BatchActions(Protocol):
    """The batch controller as the queue controller uses it."""

    def begin_edit(self, job_id: int) -> bool: ...


class AppServices(Protocol):
    store: SettingsStore
    queue: JobQueue
    engine: EngineClient
    hub: HubClient
    monitor: Monitor
    window: MainWindow
    composer: ComposerView
    queue_view: QueueView
    gallery: GalleryView
    models: ModelsPage
    queue_model: QueueModel
    gallery_model: GalleryModel
    queue_ctl: QueueRunner
    batch_ctl: BatchActions
    lifecycle: Lifecycle
    allow_worker: bool
    stop_grace_s: float

    def reload_queue(self) -> None: ...
    def reload_gallery(self) -> None: ...
    def notify(self, title_text: str, message: str, open_path: str | None = None) -> None: ...
    def _confirm(self, title_text: str, text: str) -> bool: ...
    def ask_close_choice(self) -> str: ...
