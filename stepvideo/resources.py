"""Where the app's shipped files live: icons, style sheet, example prompts, desktop entry. Torch-free.

A checkout keeps them in `resources/` at the repository root. A wheel ships the same folder as
`desktop/resources/` (a symlink to ../resources in the checkout, which setuptools follows when it
builds the wheel; pyproject's package-data `desktop = ["resources/**/*"]` takes it in). Nothing here
imports Qt or the desktop package: the paths are computed, not imported.
"""

from __future__ import annotations

import os
from pathlib import Path

RESOURCES_ENV = "STEPVIDEO_RESOURCES_DIR"
APP_ID = "stepvideo-desktop"  # desktop entry, icon name, WM class and QGuiApplication.desktopFileName
MARKER = f"{APP_ID}.desktop"  # a folder holding this file is a resources folder
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)

_PACKAGE_PARENT = Path(__file__).resolve().parent.parent  # the checkout, or site-packages


def candidates() -> list[Path]:
    """Folders searched, in order: $STEPVIDEO_RESOURCES_DIR, the checkout, the installed package data."""
    found = [Path(os.environ[RESOURCES_ENV])] if os.environ.get(RESOURCES_ENV) else []
    return found + [_PACKAGE_PARENT / "resources", _PACKAGE_PARENT / "desktop" / "resources"]


def resources_dir() -> Path | None:
    for folder in candidates():
        if (folder / MARKER).is_file():
            return folder
    return None


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
