"""The live settings: one AppSettings value, saved on every change, with a `changed` signal.

A change that cannot be written (full disk, read-only config folder) still applies for this session:
`save_failed` says so in words, and nothing raises into the Qt slot that made the change.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from stepvideo_desktop import settings as settings_mod
from stepvideo_desktop.settings import AppSettings

log = logging.getLogger(__name__)


class SettingsStore(QObject):
    changed = Signal(object)  # AppSettings
    save_failed = Signal(str)  # one line for a banner

    def __init__(self, path: Path | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._path = path or settings_mod.settings_path()
        self._value, self.reset_notice = settings_mod.load_with_notice(self._path)
        self.last_error: str | None = None
        if self.reset_notice is not None:  # keep what was saved, so the notice shows once, not every launch
            try:
                settings_mod.save(self._value, self._path)
            except OSError as exc:
                log.error("could not save the repaired settings to %s: %s", self._path, exc)

    @property
    def value(self) -> AppSettings:
        return self._value

    @property
    def path(self) -> Path:
        return self._path

    def update(self, **changes: Any) -> AppSettings:
        """Validate (raises SettingsError, leaving the old value), store, save, announce."""
        new = self._value.replace(**changes)
        if new == self._value:
            return new
        self._value = new
        try:
            settings_mod.save(new, self._path)
            self.last_error = None
        except OSError as exc:
            log.error("could not save the settings to %s: %s", self._path, exc)
            self.last_error = (f"Could not save the settings to {self._path} ({exc.strerror or exc}); "
                               "the change applies until the app closes.")
            self.save_failed.emit(self.last_error)
        self.changed.emit(new)
        return new
