"""The live settings: one AppSettings value, saved on every change, with a `changed` signal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from desktop import settings as settings_mod
from desktop.settings import AppSettings


class SettingsStore(QObject):
    changed = Signal(object)  # AppSettings

    def __init__(self, path: Path | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._path = path or settings_mod.settings_path()
        self._value = settings_mod.load(self._path)

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
        settings_mod.save(new, self._path)
        self.changed.emit(new)
        return new
