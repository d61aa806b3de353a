"""Typed app settings, stored as JSON with a schema_version under the user's config dir.

A file that cannot be read is moved aside (never deleted) and the defaults are used, so a bad edit
by hand never costs the user their window or their folders.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stepvideo import paths
from stepvideo.api import PROFILES
from stepvideo.errors import InvalidRequest
from stepvideo.presets import PRESETS

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
THEMES = ("system", "light", "dark")
FILE_NAME = "settings.json"


class SettingsError(InvalidRequest):
    """A settings value is outside what the app allows."""


@dataclass(frozen=True)
class AppSettings:
    output_dir: str = ""  # "" = the user's videos folder / StepVideo
    models_dir: str = ""  # "" = the shared Hugging Face cache
    default_preset: str = "standard"
    default_profile: str = "auto"
    previews: bool = True
    preview_every_steps: int = 5
    checkpoint_every_steps: int = 10
    keep_model_loaded: bool = True
    theme: str = "system"
    notifications: bool = True
    active_model: str = ""  # "" = the base repo; else a repo id or a model folder
    # Folders in the hub layout the user picked ("Use a folder on disk…"); only listed, never deleted.
    # Added without a schema bump: a file without it loads with the default (no folders).
    local_models: tuple[str, ...] = ()
    queue_paused: bool = False  # survives restarts: a queue paused at quit stays paused
    # The GPU the worker renders on (nvidia-smi's number); None: the first one (CUDA's default). Added
    # without a schema bump, like local_models.
    gpu_index: int | None = None
    window_geometry: str = ""  # base64 of QWidget.saveGeometry()
    last_page: int = 0
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.default_preset not in PRESETS:
            raise SettingsError(f"default preset {self.default_preset!r} is not allowed; allowed: {', '.join(PRESETS)}")
        if self.default_profile not in PROFILES:
            raise SettingsError(f"default profile {self.default_profile!r} is not allowed; allowed: {', '.join(PROFILES)}")
        if self.theme not in THEMES:
            raise SettingsError(f"theme {self.theme!r} is not allowed; allowed: {', '.join(THEMES)}")
        for name in ("preview_every_steps", "checkpoint_every_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1000:
                raise SettingsError(f"{name.replace('_', ' ')} {value!r} is not allowed; it must be a whole number from 1 to 1000")
        for name in ("previews", "keep_model_loaded", "notifications", "queue_paused"):
            if not isinstance(getattr(self, name), bool):
                raise SettingsError(f"{name.replace('_', ' ')} must be true or false")
        if self.gpu_index is not None and (isinstance(self.gpu_index, bool) or not isinstance(self.gpu_index, int)
                                           or self.gpu_index < 0):
            raise SettingsError(f"GPU {self.gpu_index!r} is not allowed; it must be a GPU number (0, 1, …) or null")
        if not 0 <= int(self.last_page) <= 4:
            raise SettingsError(f"last page {self.last_page!r} is not allowed; it must be 0 to 4")
        self._check_local_models()

    def _check_local_models(self) -> None:
        folders = self.local_models
        if not isinstance(folders, (list, tuple)):
            raise SettingsError("local models must be a list of absolute folder paths")
        for folder in folders:
            if not isinstance(folder, str) or not Path(folder).is_absolute():
                raise SettingsError(f"local model folder {folder!r} is not allowed; it must be an absolute path")
        if len(set(folders)) != len(folders):
            raise SettingsError("local models lists a folder twice; each folder may be listed once")
        object.__setattr__(self, "local_models", tuple(folders))  # JSON gives a list; keep it hashable

    @property
    def output_path(self) -> Path:
        return Path(self.output_dir) if self.output_dir else paths.videos_dir()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AppSettings:
        data = migrate(dict(data))
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(unknown)}; allowed: {', '.join(sorted(known))}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> AppSettings:
        return dataclasses.replace(self, **changes)


# Each entry upgrades a dict from version N to N+1. Empty while there is only one schema.
MIGRATIONS: dict[int, Any] = {}


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    version = data.get("schema_version", SCHEMA_VERSION)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise SettingsError(f"settings schema_version {version!r} is newer than this app ({SCHEMA_VERSION})")
    while version < SCHEMA_VERSION:
        data = MIGRATIONS[version](data)
        version += 1
        data["schema_version"] = version
    return data


def settings_path() -> Path:
    return paths.config_dir() / FILE_NAME


def load(path: Path | None = None) -> AppSettings:
    return load_with_notice(path)[0]


def load_with_notice(path: Path | None = None) -> tuple[AppSettings, str | None]:
    """The settings, and a sentence for the user when the file had to be (partly) reset.

    A missing file gives defaults. A file that cannot be used as it is is kept aside as
    settings.json.bad-<time>; every field that is still valid on its own (the registered model
    folders above all) is kept, and only the bad ones go back to their defaults.
    """
    path = path or settings_path()
    if not path.exists():
        return AppSettings(), None
    data = None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return AppSettings.from_dict(data), None
    except (OSError, ValueError, TypeError, SettingsError) as exc:
        problem = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    aside = path.with_name(f"{path.name}.bad-{time.strftime('%Y%m%d-%H%M%S')}")
    settings, reset = salvage(data) if isinstance(data, dict) else (AppSettings(), ["all settings"])
    log.warning("settings file %s could not be read (%s); kept it as %s; reset: %s", path, problem, aside, reset)
    try:
        os.replace(path, aside)
    except OSError:
        log.exception("could not move the bad settings file aside")
    notice = (f"Your settings file could not be read ({problem}). It was kept as {aside.name}; "
              f"{', '.join(reset)} went back to the default")
    notice += (". Everything else, including your model folders, was kept." if reset != ["all settings"]
               else "s.")
    return settings, notice


def salvage(data: dict[str, Any]) -> tuple[AppSettings, list[str]]:
    """Defaults plus every field of `data` that is valid on its own; returns the names of the others.

    A list of model folders keeps its good entries even when one entry is bad.
    """
    settings = AppSettings()
    reset: list[str] = []
    known = {f.name for f in dataclasses.fields(AppSettings)} - {"schema_version"}
    for key, value in data.items():
        if key == "schema_version":
            continue
        if key not in known:
            reset.append(f"the unknown setting {key!r}")
            continue
        if key == "local_models" and isinstance(value, list):
            good = [f for i, f in enumerate(value) if isinstance(f, str) and Path(f).is_absolute() and f not in value[:i]]
            if len(good) != len(value):
                reset.append("some model folders")
            value = good
        try:
            settings = settings.replace(**{key: value})
        except (SettingsError, TypeError, ValueError):
            reset.append(key.replace("_", " "))
    return settings, reset


def save(settings: AppSettings, path: Path | None = None) -> Path:
    """Write atomically: a crash mid-write leaves the previous file intact."""
    path = path or settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(settings.to_dict(), fh, indent=2, ensure_ascii=False)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path
