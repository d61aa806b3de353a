"""Where the app keeps its files (platformdirs, app name "StepVideoDesktop"). Torch-free."""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "StepVideoDesktop"


def _dirs():
    # Imported on use: engine modules that only mention the data folder (quantize's cache) must also
    # import on a bare GPU machine (benchmarks/gpu_acceptance.py), where platformdirs may be absent.
    from platformdirs import PlatformDirs

    return PlatformDirs(APP_NAME, appauthor=False)


def _env_path(var: str) -> Path | None:
    value = os.environ.get(var)
    return Path(value) if value else None


def config_dir() -> Path:
    return _env_path("STEPVIDEO_CONFIG_DIR") or Path(_dirs().user_config_dir)


def data_dir() -> Path:
    """queue.sqlite3, checkpoints: what a backup should keep."""
    return _env_path("STEPVIDEO_DATA_DIR") or Path(_dirs().user_data_dir)


def cache_dir() -> Path:
    """Derived files we can rebuild (quantized weights): backup tools skip user_cache_dir."""
    return _env_path("STEPVIDEO_CACHE_DIR") or Path(_dirs().user_cache_dir)


def log_dir() -> Path:
    return _env_path("STEPVIDEO_LOG_DIR") or Path(_dirs().user_log_dir)


def videos_dir() -> Path:
    return _env_path("STEPVIDEO_VIDEOS_DIR") or Path(_dirs().user_videos_dir) / "StepVideo"


def queue_db() -> Path:
    return data_dir() / "queue.sqlite3"


def checkpoints_dir() -> Path:
    return data_dir() / "checkpoints"


def quantized_cache_dir() -> Path:
    return cache_dir() / "quantized"


def legacy_quantized_cache_dir() -> Path:
    """Where versions before 0.2 kept the quantized weights (moved once by memory/quantized_store.py)."""
    return data_dir() / "quantized"


def ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
