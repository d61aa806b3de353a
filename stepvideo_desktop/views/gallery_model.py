"""GalleryModel: finished videos in the output folder (newest first), with their sidecar settings and thumbnails."""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QRunnable,
    QSize,
    Qt,
    QThreadPool,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap

from stepvideo import paths
from stepvideo.display_text import for_display
from stepvideo_desktop import theme
from stepvideo_desktop.views import icons
from stepvideo_desktop.views.source_thumb import load_image, with_inset

log = logging.getLogger(__name__)

ITEM_ROLE = Qt.ItemDataRole.UserRole + 1
THUMB = QSize(208, 117)  # 16:9, a multiple of the 8 px grid in width


@dataclass
class GalleryItem:
    path: Path
    mtime: float
    metadata: dict[str, Any] | None = None
    thumbnail: QPixmap | None = field(default=None, repr=False)

    @property
    def request(self) -> dict[str, Any]:
        return (self.metadata or {}).get("request", {})

    @property
    def prompt(self) -> str:
        return str(self.request.get("prompt", "")) or self.path.stem

    @property
    def preset(self) -> str:
        return str(self.request.get("preset", ""))

    @property
    def source_image(self) -> Path | None:
        """Image-to-video: the copy of the source image the run kept beside the video (NAME.source.<ext>)."""
        return source_image_of(self.path, self.metadata)

    @property
    def seconds(self) -> float | None:
        value = (self.metadata or {}).get("seconds")
        return float(value) if isinstance(value, (int, float)) else None


def source_image_of(video: Path, metadata: dict[str, Any] | None) -> Path | None:
    info = (metadata or {}).get("source_image")
    name = info.get("copy") if isinstance(info, dict) else None
    if not isinstance(name, str) or not name or Path(name).name != name:  # a bare name beside the video only
        return None
    path = video.with_name(name)
    return path if path.is_file() else None


def read_sidecar(video: Path) -> dict[str, Any] | None:
    side = video.with_suffix(".json")
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("request"), dict) else None


def scan(folder: Path) -> list[GalleryItem]:
    """Every finished mp4 (not the hidden .partial ones the writer uses), newest first."""
    if not folder.is_dir():
        return []
    items = []
    for path in folder.glob("*.mp4"):
        if path.name.startswith("."):
            continue
        try:
            mtime = path.stat().st_mtime
        except OSError:
            continue
        items.append(GalleryItem(path, mtime, read_sidecar(path)))
    items.sort(key=lambda i: i.mtime, reverse=True)
    return items


def thumbnail_cache() -> Path:
    return paths.data_dir() / "thumbnails"


def thumbnail_path(video: Path, mtime: float) -> Path:
    key = hashlib.sha1(f"{video.resolve()}:{mtime}".encode()).hexdigest()[:20]
    return thumbnail_cache() / f"{key}.png"


def make_thumbnail(video: Path, target: Path) -> bool:
    """One frame (the middle of the first second) scaled to the grid's size, via the bundled ffmpeg."""
    import imageio_ffmpeg

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.stem + ".tmp.png")
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-ss", "0.3", "-i", str(video), "-frames:v", "1",
           "-vf", f"scale={THUMB.width() * 2}:-2", str(tmp)]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("thumbnail of %s failed: %s", video, exc)
        return False
    if proc.returncode != 0 or not tmp.exists():
        # very short clips: -ss past the end gives nothing; take the first frame instead
        cmd[cmd.index("-ss"):cmd.index("-ss") + 2] = []
        proc = subprocess.run(cmd, capture_output=True, timeout=30)
        if proc.returncode != 0 or not tmp.exists():
            log.warning("thumbnail of %s failed: %s", video, proc.stderr.decode(errors="replace")[-300:])
            return False
    tmp.replace(target)
    return True


class _ThumbSignals(QObject):
    done = Signal(str, str)  # video path, png path ("" when it failed)


class _ThumbJob(QRunnable):
    def __init__(self, video: Path, target: Path, signals: _ThumbSignals) -> None:
        super().__init__()
        self.video, self.target, self.signals = video, target, signals

    def run(self) -> None:
        ok = self.target.exists() or make_thumbnail(self.video, self.target)
        self.signals.done.emit(str(self.video), str(self.target) if ok else "")


def placeholder_pixmap() -> QPixmap:
    c = theme.colors()
    pixmap = QPixmap(THUMB)
    pixmap.fill(QColor(c.border))
    painter = QPainter(pixmap)
    icons.icon("film", c.muted, 32).paint(painter, THUMB.width() // 2 - 16, THUMB.height() // 2 - 16, 32, 32)
    painter.end()
    return pixmap


class GalleryModel(QAbstractListModel):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.items: list[GalleryItem] = []
        self.folder: Path | None = None
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(2)
        self._signals = _ThumbSignals()
        self._signals.done.connect(self._thumb_ready)
        self._pending: set[str] = set()
        self._placeholder: QPixmap | None = None
        self.loaded_at = 0.0

    def load(self, folder: Path) -> None:
        self.folder = folder
        items = scan(folder)
        old = {str(i.path): i for i in self.items}
        for item in items:  # keep thumbnails already made
            prev = old.get(str(item.path))
            if prev is not None and prev.mtime == item.mtime:
                item.thumbnail = prev.thumbnail
        self.beginResetModel()
        self.items = items
        self.endResetModel()
        self.loaded_at = time.time()

    def item(self, row: int) -> GalleryItem | None:
        return self.items[row] if 0 <= row < len(self.items) else None

    def row_of(self, path: Path | str) -> int | None:
        target = str(path)
        return next((i for i, item in enumerate(self.items) if str(item.path) == target), None)

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.items)

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        item = self.items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            text = for_display(item.prompt).replace("\n", " ")
            return text if len(text) <= 38 else text[:36] + "…"
        if role == Qt.ItemDataRole.ToolTipRole:
            return for_display(item.prompt)
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return f"Video: {for_display(item.prompt)[:80]}"
        if role == Qt.ItemDataRole.DecorationRole:
            if item.thumbnail is None:
                self._request_thumb(item)
                if self._placeholder is None:
                    self._placeholder = placeholder_pixmap()
                return QIcon(self._placeholder)
            return QIcon(item.thumbnail)
        if role == ITEM_ROLE:
            return item
        return None

    def thumbnail_of(self, video: str | Path) -> QPixmap | None:
        """The thumbnail of one video in the gallery (the Queue's Preview column shows it for finished
        jobs); None while it is being made (dataChanged follows) or when the video is not here."""
        target = Path(video)
        row = self.row_of(target)
        if row is None:
            resolved = str(target.resolve())
            row = next((i for i, item in enumerate(self.items) if str(item.path.resolve()) == resolved), None)
        if row is None:
            return None
        item = self.items[row]
        if item.thumbnail is None:
            self._request_thumb(item)
        return item.thumbnail

    def _request_thumb(self, item: GalleryItem) -> None:
        key = str(item.path)
        if key in self._pending:
            return
        self._pending.add(key)
        target = thumbnail_path(item.path, item.mtime)
        if target.exists():  # cached from an earlier run: no thread, but never emit from inside data()
            QTimer.singleShot(0, lambda: self._thumb_ready(key, str(target)))
            return
        self._pool.start(_ThumbJob(item.path, target, self._signals))

    def _thumb_ready(self, video: str, png: str) -> None:
        self._pending.discard(video)
        row = self.row_of(video)
        if row is None:
            return
        pixmap = QPixmap(png) if png else QPixmap()
        if pixmap.isNull():
            pixmap = placeholder_pixmap()
        scaled = pixmap.scaled(THUMB, Qt.AspectRatioMode.KeepAspectRatioByExpanding, Qt.TransformationMode.SmoothTransformation)
        x, y = (scaled.width() - THUMB.width()) // 2, (scaled.height() - THUMB.height()) // 2
        thumb = scaled.copy(x, y, THUMB.width(), THUMB.height())  # centre crop to 16:9
        source = self.items[row].source_image
        picture = load_image(source, THUMB.height()) if source is not None else None
        self.items[row].thumbnail = with_inset(thumb, picture) if picture is not None else thumb
        index = self.index(row)
        self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])

    def wait_for_thumbnails(self, ms: int = 5000) -> bool:
        return self._pool.waitForDone(ms)
