"""Where the app's shipped files live: icons, style sheet, example prompts, desktop entry. Torch-free.

They are package data of `stepvideo_desktop` (the folder `stepvideo_desktop/resources/`), found with
importlib.resources, so a checkout, an editable install, a wheel and a pipx install all read the same
folder the same way. $STEPVIDEO_RESOURCES_DIR replaces the folder, for themers and for tests.
"""

from __future__ import annotations

import os
from importlib import resources as importlib_resources
from pathlib import Path

RESOURCES_ENV = "STEPVIDEO_RESOURCES_DIR"
APP_ID = "stepvideo-desktop"  # desktop entry, icon name, WM class and QGuiApplication.desktopFileName
MARKER = f"{APP_ID}.desktop"  # a folder holding this file is a resources folder
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def packaged_dir() -> Path:
    """The package's own resources folder. The package is always installed as plain files (never from a
    zip: Qt needs real paths for icons and QtMultimedia), so the Traversable is a filesystem path."""
    return Path(str(importlib_resources.files("stepvideo_desktop").joinpath("resources")))


def resources_dir() -> Path | None:
    """$STEPVIDEO_RESOURCES_DIR when set, else the packaged folder; None when it lacks the marker file."""
    override = os.environ.get(RESOURCES_ENV)
    folder = Path(override) if override else packaged_dir()
    return folder if (folder / MARKER).is_file() else None


def resource_path(*parts: str) -> Path | None:
    """A file under the resources folder, or None when it (or the folder) is missing."""
    base = resources_dir()
    if base is None:
        return None
    path = base.joinpath(*parts)
    return path if path.exists() else None


def icon_path(size: int | None = None) -> Path | None:
    """The app icon: the PNG of one hicolor size, or the SVG when size is None."""
    if size is None:
        return resource_path("icons", "hicolor", "scalable", "apps", f"{APP_ID}.svg")
    if size not in ICON_SIZES:
        raise ValueError(f"icon size {size} is not shipped; shipped sizes: {', '.join(map(str, ICON_SIZES))}")
    return resource_path("icons", "hicolor", f"{size}x{size}", "apps", f"{APP_ID}.png")
