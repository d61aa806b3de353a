"""The app's icon set: line icons we draw ourselves (24 px grid, 2 px round strokes), tinted per palette.

One style for every icon, no icon library: each entry is the inside of an <svg viewBox="0 0 24 24">.
"""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtCore import QByteArray, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer

_SHAPES: dict[str, str] = {
    "create": '<path d="M4 20l10-10"/><path d="M14 4v3M17 5.5l-2 2M20 10h-3M18.5 13l-2-2"/><path d="M12 8l4 4"/>',
    "queue": '<path d="M8 6h12M8 12h12M8 18h12"/><circle cx="4" cy="6" r="1"/><circle cx="4" cy="12" r="1"/><circle cx="4" cy="18" r="1"/>',
    "gallery": '<rect x="3" y="4" width="18" height="16" rx="2"/><path d="M3 9h18M8 4v5M16 4v5"/><path d="M10.5 12.5v5l4-2.5z"/>',
    "models": '<path d="M12 3l8 4.5v9L12 21l-8-4.5v-9z"/><path d="M4 7.5l8 4.5 8-4.5M12 12v9"/>',
    "settings": '<path d="M4 6h10M18 6h2M4 12h4M12 12h8M4 18h12M20 18h0"/><circle cx="16" cy="6" r="2"/><circle cx="10" cy="12" r="2"/><circle cx="18" cy="18" r="2"/>',
    "play": '<path d="M7 4.5v15l12-7.5z"/>',
    "pause": '<path d="M8 5v14M16 5v14"/>',
    "stop": '<rect x="6" y="6" width="12" height="12" rx="1.5"/>',
    "trash": '<path d="M4 7h16M9 7V4.5h6V7M6.5 7l1 13h9l1-13M10 11v5M14 11v5"/>',
    "folder": '<path d="M3 7a2 2 0 0 1 2-2h4l2 2h8a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2z"/>',
    "download": '<path d="M12 4v11M7 10l5 5 5-5M5 20h14"/>',
    "import": '<path d="M12 15V4M7 9l5-5 5 5M5 20h14"/>',
    "check": '<path d="M5 12.5l4.5 4.5L19 7.5"/>',
    "retry": '<path d="M20 12a8 8 0 1 1-2.4-5.7"/><path d="M20 4v5h-5"/>',
    "copy": '<rect x="8" y="8" width="12" height="12" rx="2"/><path d="M16 8V6a2 2 0 0 0-2-2H6a2 2 0 0 0-2 2v8a2 2 0 0 0 2 2h2"/>',
    "close": '<path d="M6 6l12 12M18 6L6 18"/>',
    "plus": '<path d="M12 5v14M5 12h14"/>',
    "up": '<path d="M12 19V5M6 11l6-6 6 6"/>',
    "dice": '<rect x="4" y="4" width="16" height="16" rx="3"/><circle cx="9" cy="9" r="0.8"/><circle cx="15" cy="15" r="0.8"/><circle cx="15" cy="9" r="0.8"/><circle cx="9" cy="15" r="0.8"/><circle cx="12" cy="12" r="0.8"/>',
    "lock": '<rect x="5" y="11" width="14" height="9" rx="2"/><path d="M8 11V8a4 4 0 0 1 8 0v3"/>',
    "unlock": '<rect x="5" y="11" width="14" height="9" rx="2"/><path d="M8 11V8a4 4 0 0 1 7.5-2"/>',
    "reset": '<path d="M4 12a8 8 0 1 0 2.4-5.7"/><path d="M4 4v5h5"/>',
    "offline": '<path d="M3 3l18 18"/><path d="M8.5 16.5a5 5 0 0 1 7 0M5 12.5a10 10 0 0 1 4-2.3M19 12.5a10 10 0 0 0-3.5-2.2M2 9a15 15 0 0 1 5-3M22 9a15 15 0 0 0-11-3.8"/><circle cx="12" cy="20" r="0.8"/>',
    "online": '<path d="M8.5 16.5a5 5 0 0 1 7 0M5 12.5a10 10 0 0 1 14 0M2 9a15 15 0 0 1 20 0"/><circle cx="12" cy="20" r="0.8"/>',
    "chip": '<rect x="6" y="6" width="12" height="12" rx="2"/><path d="M9 3v3M15 3v3M9 18v3M15 18v3M3 9h3M3 15h3M18 9h3M18 15h3"/>',
    "film": '<rect x="3" y="5" width="18" height="14" rx="2"/><path d="M7 5v14M17 5v14M3 9h4M3 15h4M17 9h4M17 15h4"/>',
    "warning": '<path d="M12 4l9 16H3z"/><path d="M12 10v4M12 17.5v0"/>',
    "info": '<circle cx="12" cy="12" r="9"/><path d="M12 11v6M12 7.5v0"/>',
    "shield": '<path d="M12 3l7 3v6c0 4.5-3 7.5-7 9-4-1.5-7-4.5-7-9V6z"/><path d="M9 12l2 2 4-4"/>',
    "grip": '<circle cx="9" cy="6" r="1"/><circle cx="15" cy="6" r="1"/><circle cx="9" cy="12" r="1"/><circle cx="15" cy="12" r="1"/><circle cx="9" cy="18" r="1"/><circle cx="15" cy="18" r="1"/>',
    "chevron": '<path d="M9 6l6 6-6 6"/>',
    "expand": '<path d="M4 9V4h5M20 9V4h-5M4 15v5h5M20 15v5h-5"/>',
    "repeat": '<path d="M4 11V9a3 3 0 0 1 3-3h13M17 3l3 3-3 3M20 13v2a3 3 0 0 1-3 3H4M7 21l-3-3 3-3"/>',
}

NAMES = tuple(_SHAPES)


DISABLED_OPACITY = 0.35  # a disabled button's icon fades with its text, so it never looks pressable


def svg(name: str, color: str, opacity: float = 1.0) -> bytes:
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" '
        f'stroke="{color}" stroke-opacity="{opacity:g}" stroke-width="1.8" stroke-linecap="round" '
        f'stroke-linejoin="round">{_SHAPES[name]}</svg>'
    ).encode()


@lru_cache(maxsize=512)
def _pixmap(name: str, color: str, size: int, ratio: float, opacity: float = 1.0) -> QPixmap:
    renderer = QSvgRenderer(QByteArray(svg(name, color, opacity)))
    pixmap = QPixmap(int(size * ratio), int(size * ratio))
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter, QRectF(0, 0, size * ratio, size * ratio))
    painter.end()
    pixmap.setDevicePixelRatio(ratio)  # crisp on high-DPI screens
    return pixmap


def icon(name: str, color: QColor | str, size: int = 20, ratio: float = 2.0) -> QIcon:
    """An icon in one colour; `ratio` 2 renders at double resolution so it stays sharp when scaled."""
    hex_color = color.name() if isinstance(color, QColor) else color
    result = QIcon()
    result.addPixmap(_pixmap(name, hex_color, size, ratio))
    result.addPixmap(_pixmap(name, hex_color, size, ratio, DISABLED_OPACITY), QIcon.Mode.Disabled)
    return result


def icon_size(size: int = 20) -> QSize:
    return QSize(size, size)
