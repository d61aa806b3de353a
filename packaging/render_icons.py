"""Render the app icon's hicolor PNG sizes from its SVG, with Qt's own SVG renderer (offscreen).

Run from anywhere after editing the SVG, then commit the PNGs:

    QT_QPA_PLATFORM=offscreen python packaging/render_icons.py

`--check` renders to memory and exits 1 if a committed PNG is missing or has the wrong size, so a
test can tell when the PNGs are stale in shape (pixels may differ slightly between Qt versions).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ICON_NAME = "stepvideo-desktop"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
RESOURCES = Path(__file__).resolve().parent.parent / "stepvideo_desktop" / "resources"
HICOLOR = RESOURCES / "icons" / "hicolor"
SVG = HICOLOR / "scalable" / "apps" / f"{ICON_NAME}.svg"


def png_path(size: int, root: Path = HICOLOR) -> Path:
    return root / f"{size}x{size}" / "apps" / f"{ICON_NAME}.png"


def _app():
    # Qt needs a GUI application for raster painting; offscreen works without a display.
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    return QGuiApplication.instance() or QGuiApplication([])


def render(size: int, svg: Path = SVG):
    """The icon at size×size pixels as a QImage with a transparent background."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise ValueError(f"{svg} is not a valid SVG for Qt")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    return image


def write_all(root: Path = HICOLOR, svg: Path = SVG) -> list[Path]:
    _app()
    written = []
    for size in SIZES:
        target = png_path(size, root)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not render(size, svg).save(str(target), "PNG"):
            raise OSError(f"Qt could not write {target}")
        written.append(target)
    return written


def check(root: Path = HICOLOR) -> list[str]:
    """Problems with the committed PNGs (missing, unreadable, wrong size); empty when all is well."""
    _app()
    from PySide6.QtGui import QImage

    problems = []
    for size in SIZES:
        path = png_path(size, root)
        image = QImage(str(path))
        if image.isNull():
            problems.append(f"{path}: missing or unreadable")
        elif (image.width(), image.height()) != (size, size):
            problems.append(f"{path}: {image.width()}x{image.height()}, expected {size}x{size}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check the committed PNGs")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        for line in problems:
            print(line, file=sys.stderr)
        return 1 if problems else 0
    for path in write_all():
        print(path.relative_to(RESOURCES.parent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
