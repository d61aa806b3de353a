"""HubClient: stepvideo.hub on a QThread (downloads, lists, verify, delete, clean); progress as signals.

One operation runs at a time, in order, so a delete can never race a download of the same version.
Downloads are cancelled through a flag the hub checks between chunks; what is on disk stays for a resume.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot

from stepvideo.errors import Cancelled, StepVideoError

log = logging.getLogger(__name__)


class _HubWorker(QObject):
    """Lives on the hub thread. Each op is (name, callable); results and errors go back as signals."""

    done = Signal(str, object)  # op name, result
    failed = Signal(str, str, bool)  # op name, one-line message, cancelled
    progress = Signal(dict)  # the hub's `download` events

    @Slot(str, object)
    def run(self, name: str, fn: Callable[[], Any]) -> None:
        try:
            result = fn()
        except Cancelled as exc:
            self.failed.emit(name, str(exc), True)
        except StepVideoError as exc:
            self.failed.emit(name, str(exc), False)
        except Exception as exc:  # a bug or an unexpected library error: words for the user, traceback to the log
            log.exception("hub operation %s failed", name)
            self.failed.emit(name, f"{type(exc).__name__}: {exc}", False)
        else:
            self.done.emit(name, result)


class HubClient(QObject):
    installed = Signal(list)  # list[hub.InstalledVersion]
    planned = Signal(object)  # hub.DownloadPlan
    sized = Signal(str, object, str)  # repo, its DownloadPlan (None when it failed), the failure's line
    progress = Signal(dict)
    finished = Signal(str, object)  # op name, result
    failed = Signal(str, str, bool)
    online_changed = Signal(bool)
    busy_changed = Signal(bool)
    _submit = Signal(str, object)

    def __init__(self, cache_dir: Callable[[], str | None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._cache_dir = cache_dir
        self._thread = QThread(self)
        self._thread.setObjectName("hub")
        self._worker = _HubWorker()
        self._worker.moveToThread(self._thread)
        self._submit.connect(self._worker.run)
        self._worker.done.connect(self._done)
        self._worker.failed.connect(self._failed)
        self._worker.progress.connect(self.progress)
        self._thread.finished.connect(self._worker.deleteLater)
        self._thread.start()
        self._cancel = threading.Event()
        self._pending = 0
        self.online: bool | None = None
        self.downloading: str | None = None  # repo id of the running download

    # ---- operations (GUI thread) -------------------------------------------------------------
    def _queue(self, name: str, fn: Callable[[], Any]) -> None:
        self._pending += 1
        if self._pending == 1:
            self.busy_changed.emit(True)
        self._submit.emit(name, fn)

    def refresh(self, online: bool | None = None) -> None:
        from stepvideo import hub

        cache = self._cache_dir()
        self._queue("list", lambda: hub.list_installed(cache, online=online))

    def check_online(self) -> None:
        from stepvideo.hub import remote as hub_remote
        from stepvideo.presets import BASE_REPO

        def probe() -> bool:
            if hub_remote.is_offline():
                return False
            try:
                hub_remote.fetch_refs(BASE_REPO)
            except hub_remote.HubUnreachable:
                return False
            except StepVideoError:
                return True  # the hub answered (e.g. repo not found on a mirror)
            return True

        self._queue("online", probe)

    def plan(self, model: str, revision: str | None = None) -> None:
        from stepvideo import hub

        cache = self._cache_dir()
        self._queue("plan", lambda: hub.plan_download(model, revision, cache_dir=cache))

    def size_of(self, model: str) -> None:
        """What downloading `model` would fetch given what is installed (shared blobs count as there);
        answered by `sized`, never by a banner: it is asked for on its own, not by the user."""
        from stepvideo import hub

        cache = self._cache_dir()
        self._queue(f"size:{model}", lambda: hub.plan_download(model, None, cache_dir=cache))

    def download(self, model: str, revision: str | None = None) -> None:
        from stepvideo import hub

        cache = self._cache_dir()
        self._cancel.clear()
        self.downloading = model

        def run():
            return hub.download(model, revision, cache_dir=cache, on_event=self._worker.progress.emit,
                                should_cancel=self._cancel.is_set)

        self._queue("download", run)

    def cancel_download(self) -> None:
        self._cancel.set()

    def verify(self, model: str, revision: str | None = None) -> None:
        from stepvideo import hub

        cache = self._cache_dir()
        self._queue("verify", lambda: hub.verify(model, revision, cache_dir=cache))

    def delete(self, model: str, revision: str) -> None:
        from stepvideo import hub

        cache = self._cache_dir()
        self._queue("delete", lambda: hub.delete_version(model, revision, cache_dir=cache))

    def clean(self) -> None:
        from stepvideo import hub

        cache = self._cache_dir()
        self._queue("clean", lambda: hub.clean(cache))

    # ---- results (GUI thread) ----------------------------------------------------------------
    def _settle(self) -> None:
        self._pending -= 1
        if self._pending == 0:
            self.busy_changed.emit(False)

    def _done(self, name: str, result: Any) -> None:
        self._settle()
        if name == "download":
            self.downloading = None
        if name == "list":
            self.installed.emit(result)
        elif name == "plan":
            self.planned.emit(result)
        elif name.startswith("size:"):
            self.sized.emit(name[5:], result, "")
        elif name == "online":
            self._set_online(bool(result))
        self.finished.emit(name, result)

    def _failed(self, name: str, message: str, cancelled: bool) -> None:
        self._settle()
        if name == "download":
            self.downloading = None
        if "unreachable" in message.lower() or "cannot reach" in message.lower():
            self._set_online(False)
        if name.startswith("size:"):
            self.sized.emit(name[5:], None, message)
            return
        self.failed.emit(name, message, cancelled)

    def _set_online(self, online: bool) -> None:
        if online != self.online:
            self.online = online
            self.online_changed.emit(online)

    def is_busy(self) -> bool:
        return self._pending > 0

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Cancel a running download (its bytes stay for a resume) and stop the thread."""
        self._cancel.set()
        self._thread.quit()
        if not self._thread.wait(timeout_ms):
            log.warning("hub thread did not stop within %d ms", timeout_ms)

    def wait_idle(self, timeout_ms: int = 10_000) -> bool:
        """For tests and shutdown: spin the event loop until every queued operation has answered."""
        from PySide6.QtCore import QDeadlineTimer, QEventLoop

        deadline = QDeadlineTimer(timeout_ms)
        loop = QEventLoop()
        while self._pending and not deadline.hasExpired():
            QTimer.singleShot(20, loop.quit)
            loop.exec()
        return self._pending == 0
