"""The app's life: showing the window, questions and notifications, closing while a job runs, shutting down."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QApplication, QMessageBox, QSystemTrayIcon

from stepvideo.errors import StepVideoError
from stepvideo_desktop.notifier import DesktopNotifier
from stepvideo_desktop.views.main_window import PAGE_KEYS

if TYPE_CHECKING:
    from stepvideo_desktop.services import AppServices

log = logging.getLogger(__name__)


class LifecycleController(QObject):
    def __init__(self, app: AppServices) -> None:
        super().__init__(app)
        self.app = app
        self.closing = False  # the window is on its way out: no new jobs, worker stopping
        self.quit_after_job = False  # "finish it, then quit" was chosen
        self._tray: QSystemTrayIcon | None = None
        self._notifier: DesktopNotifier | None = None  # made on first use (it asks the session bus)

    def wire(self) -> None:
        self.app.window.close_requested.connect(self.on_close)
        self.app.window.page_changed.connect(self._page_changed)

    # ---- talking to the user ---------------------------------------------------------------------
    def notify(self, title_text: str, message: str, open_path: str | None = None) -> None:
        """A desktop notification over D-Bus (people walk away from 20-minute renders; a click opens
        `open_path`), else a tray message, else the status bar."""
        app = self.app
        if not app.store.value.notifications:
            return
        if self._notifier is None:
            self._notifier = DesktopNotifier(self)
        if self._notifier.notify(title_text, message, open_path):
            return
        if self._tray is None and QSystemTrayIcon.isSystemTrayAvailable():
            self._tray = QSystemTrayIcon(QApplication.instance().windowIcon(), self)
            self._tray.show()
        if self._tray is not None:
            self._tray.showMessage(title_text, message)
        else:
            app.window.statusBar().showMessage(f"{title_text}: {message}", 8000)

    def confirm(self, title_text: str, text: str) -> bool:
        """Only destructive actions ask; Esc and the default button cancel."""
        box = QMessageBox(QMessageBox.Icon.Question, title_text, text,
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self.app.window)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.setEscapeButton(QMessageBox.StandardButton.Cancel)
        return box.exec() == QMessageBox.StandardButton.Yes

    def ask_close_choice(self) -> str:
        """Finish first / pause (checkpoint and quit) / stop / cancel. Esc cancels."""
        box = QMessageBox(self.app.window)
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

    def show_unexpected(self, line: str) -> None:
        """One line about a bug (the traceback is in the log file), above whichever page is shown."""
        self.app.window.banner.show_message(line)

    # ---- closing ---------------------------------------------------------------------------------
    def on_close(self, event: QCloseEvent) -> None:
        app = self.app
        if self.closing and not app.engine.is_alive():
            self.save_window()
            event.accept()
            return
        if not (app.engine.is_alive() and app.engine.job_id is not None):
            self.save_window()
            self.closing = True
            app.engine.stop()
            event.accept()
            return
        choice = app.ask_close_choice()
        event.ignore()
        if choice == "cancel":
            return
        self.save_window()
        if choice == "finish":
            self.quit_after_job = True
            app.window.statusBar().showMessage("The app quits when the current job finishes.")
            return
        self.closing = True
        if choice == "pause":
            app.store.update(queue_paused=True)
        else:
            job_id = app.engine.job_id
            try:
                app.queue.cancel(job_id)
            except StepVideoError as exc:
                log.warning("cancel on close: %s", exc)
            app.engine.cancel(job_id)
        app.window.statusBar().showMessage("Saving a checkpoint and stopping the worker…")
        app.engine.stop()

    def finish_close(self) -> None:
        self.closing = True
        self.quit_after_job = False
        if self.app.engine.is_alive():
            self.app.engine.stop()  # the worker's `stopped` signal comes back here when it has exited
            return
        self.app.window.close()

    def save_window(self) -> None:
        window = self.app.window
        try:
            self.app.store.update(window_geometry=window.geometry_b64(),
                                  last_page=PAGE_KEYS.index(window.current_page()))
        except StepVideoError as exc:
            log.warning("could not save the window state: %s", exc)

    def _page_changed(self, index: int) -> None:
        if PAGE_KEYS[index] == "gallery":
            self.app.reload_gallery()
        elif PAGE_KEYS[index] == "models":
            self.app.hub.refresh(online=self.app.hub.online)

    # ---- showing and stopping --------------------------------------------------------------------
    def show(self, page: str | None = None) -> None:
        if page:
            self.app.window.show_page(page)
        self.app.window.show()

    def screenshot(self, path: str, page: str, size: tuple[int, int]) -> bool:
        """Render one page at `size` to a PNG once the hub listing and thumbnails are in; then shut down."""
        app, window = self.app, self.app.window
        window.resize(*size)
        window.show_page(page)
        window.show()
        app.hub.wait_idle(5000)
        app.gallery_model.wait_for_thumbnails(5000)
        qt = QApplication.instance()
        for _ in range(5):
            qt.processEvents()
        if page == "gallery" and app.gallery_model.rowCount():
            app.gallery.grid.setCurrentIndex(app.gallery.proxy.index(0, 0))
            qt.processEvents()
        ok = window.grab().save(path, "PNG")
        self.shutdown()
        return ok

    def shutdown(self) -> None:
        """Stop timers, the worker and the hub thread; close the queue. Safe to call twice."""
        app = self.app
        app.queue_ctl.stop()
        app.monitor.stop()
        app.gallery.player.shutdown()
        if app.engine.is_alive():
            app.engine.stop()
            app.engine.wait_stopped(10_000)
        app.hub.shutdown()
        app.gallery_model.wait_for_thumbnails(3000)
