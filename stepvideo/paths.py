"""Where the app keeps its files (platformdirs, app name "StepVideoDesktop"). Torch-free."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import PlatformDirs

APP_NAME = "StepVideoDesktop"


def _env_path(var: str) -> Path | None:
    value = os.environ.get(var)
    return Path(value) if value else None


def config_dir() -> Path:
    return _env_path("STEPVIDEO_CONFIG_DIR") or Path(PlatformDirs(APP_NAME, appauthor=False).user_config_dir)


def data_dir() -> Path:
    """queue.sqlite3, checkpoints, the quantized-weight cache."""
    return _env_path("STEPVIDEO_DATA_DIR") or Path(PlatformDirs(APP_NAME, appauthor=False).user_data_dir)


def log_dir() -> Path:
    return _env_path("STEPVIDEO_LOG_DIR") or Path(PlatformDirs(APP_NAME, appauthor=False).user_log_dir)


def videos_dir() -> Path:
    return _env_path("STEPVIDEO_VIDEOS_DIR") or Path(PlatformDirs(APP_NAME, appauthor=False).user_videos_dir) / "StepVideo"


def queue_db() -> Path:
    return data_dir() / "queue.sqlite3"


def checkpoints_dir() -> Path:
    return data_dir() / "checkpoints"


def quantized_cache_dir() -> Path:
    return data_dir() / "quantized"


def ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
