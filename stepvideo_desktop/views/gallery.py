"""The Gallery page: a searchable grid of finished videos, a player, the video's settings and actions."""

from __future__ import annotations

import html
import time
from datetime import datetime

from PySide6.QtCore import QModelIndex, QSize, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from stepvideo.display_text import for_display
from stepvideo.presets import PRESETS
from stepvideo_desktop import theme
from stepvideo_desktop.views.gallery_model import ITEM_ROLE, THUMB, GalleryItem, GalleryModel
from stepvideo_desktop.views.player import PlayerView
from stepvideo_desktop.views.source_thumb import load_image
from stepvideo_desktop.views.widgets import (
    GRID,
    Banner,
    Card,
    human_bytes,
    human_duration,
    muted,
    push_button,
    title,
)

SOURCE_THUMB = 96  # px, the longest side of the source image in Details
DATE_FILTERS = (("any", "Any time", None), ("day", "Today", 86400), ("week", "This week", 7 * 86400),
                ("month", "This month", 31 * 86400))


class GalleryFilter(QSortFilterProxyModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.text = ""
        self.preset = ""
        self.max_age: float | None = None

    def set_filters(self, text: str, preset: str, max_age: float | None) -> None:
        self.text, self.preset, self.max_age = text.strip().lower(), preset, max_age
        self.invalidateRowsFilter()

    def filterAcceptsRow(self, row: int, parent: QModelIndex) -> bool:  # noqa: N802
        item: GalleryItem = self.sourceModel().index(row, 0, parent).data(ITEM_ROLE)
        if self.text and self.text not in item.prompt.lower():
            return False
        if self.preset and item.preset != self.preset:
            return False
        return not (self.max_age is not None and time.time() - item.mtime > self.max_age)


class GalleryView(QWidget):
    reuse_requested = Signal(object)  # GalleryItem
    open_folder_requested = Signal(object)
    delete_requested = Signal(object)
    copy_prompt_requested = Signal(object)
    compare_requested = Signal(object)  # GalleryItem: compare its variation group side by side
    undo_requested = Signal()

    def __init__(self, model: GalleryModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("page")
        self.model = model
        self.proxy = GalleryFilter(self)
        self.proxy.setSourceModel(model)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(3 * GRID, 3 * GRID, 3 * GRID, 3 * GRID)
        outer.setSpacing(2 * GRID)
        head = QHBoxLayout()
        head.setSpacing(GRID)
        head.addWidget(title("Gallery"))
        head.addStretch(1)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search prompts")
        self.search.setAccessibleName("Search prompts")
        self.search.setClearButtonEnabled(True)
        self.search.setMinimumWidth(240)
        self.preset = QComboBox()
        self.preset.setAccessibleName("Filter by preset")
        self.preset.addItem("All presets", "")
        for name in PRESETS:
            self.preset.addItem(name.capitalize(), name)
        self.date = QComboBox()
        self.date.setAccessibleName("Filter by date")
        for key, label, _ in DATE_FILTERS:
            self.date.addItem(label, key)
        for w in (self.search, self.preset, self.date):
            head.addWidget(w)
        outer.addLayout(head)
        self.banner = Banner()
        self.undo = push_button("Undo")
        self.undo.clicked.connect(self.undo_requested)
        self.banner.layout().insertWidget(2, self.undo)
        outer.addWidget(self.banner)

        self.grid = QListView()
        self.grid.setModel(self.proxy)
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setIconSize(THUMB)
        self.grid.setGridSize(QSize(THUMB.width() + GRID, THUMB.height() + 6 * GRID))
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setMovement(QListView.Movement.Static)
        self.grid.setUniformItemSizes(True)
        self.grid.setWordWrap(True)
        self.grid.setSpacing(GRID)
        self.grid.setAccessibleName("Videos")
        self.grid.selectionModel().currentChanged.connect(self._selected)
        self.empty = muted("Finished videos appear here. Nothing has been rendered into the output folder yet.")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        left = QWidget()
        left_col = QVBoxLayout(left)
        left_col.setContentsMargins(0, 0, 0, 0)
        left_col.addWidget(self.grid, 1)
        left_col.addWidget(self.empty)

        right = QWidget()
        right_col = QVBoxLayout(right)
        right_col.setContentsMargins(0, 0, 0, 0)
        right_col.setSpacing(2 * GRID)
        self.player = PlayerView()
        right_col.addWidget(self.player, 3)
        actions = QHBoxLayout()
        actions.setSpacing(GRID)
        self.reuse = push_button("Reuse settings", "retry", primary=True)
        self.open_folder = push_button("Open folder", "folder")
        self.copy_prompt = push_button("Copy prompt", "copy")
        self.delete = push_button("Delete", "trash")
        self.compare = push_button("Compare variations", "gallery")
        self.compare.setToolTip("Play this video's variations (same request, other seeds) side by side")
        self.variation_groups: dict[str, list[str]] = {}  # video path -> the paths of its group's videos
        for button, signal in ((self.reuse, self.reuse_requested), (self.open_folder, self.open_folder_requested),
                               (self.copy_prompt, self.copy_prompt_requested), (self.compare, self.compare_requested),
                               (self.delete, self.delete_requested)):
            button.clicked.connect(lambda _=False, s=signal: self.current() and s.emit(self.current()))
            actions.addWidget(button)
        actions.addStretch(1)
        right_col.addLayout(actions)
        meta = Card("Details")
        self.source_thumb = QLabel()  # image-to-video: the image the video was made from
        self.source_thumb.setAccessibleName("Source image")
        self.source_thumb.hide()
        meta.body.addWidget(self.source_thumb)
        self.meta = QLabel()
        self.meta.setWordWrap(True)
        self.meta.setTextFormat(Qt.TextFormat.RichText)
        self.meta.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.meta.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.meta.setAccessibleName("Video details")
        meta.body.addWidget(self.meta)
        meta.body.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(meta)
        right_col.addWidget(scroll, 2)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        split.setSizes([600, 460])
        split.setChildrenCollapsible(False)
        outer.addWidget(split, 1)
        self.search.textChanged.connect(self._filter)
        self.preset.currentIndexChanged.connect(self._filter)
        self.date.currentIndexChanged.connect(self._filter)
        model.modelReset.connect(self._after_reset)
        self._after_reset()

    def _filter(self) -> None:
        max_age = dict((k, v) for k, _, v in DATE_FILTERS)[self.date.currentData()]
        self.proxy.set_filters(self.search.text(), self.preset.currentData(), max_age)

    def _after_reset(self) -> None:
        self.empty.setVisible(self.model.rowCount() == 0)
        self.grid.setVisible(self.model.rowCount() > 0)
        if self.current() is None:
            self.show_item(None)

    def current(self) -> GalleryItem | None:
        index = self.grid.currentIndex()
        return index.data(ITEM_ROLE) if index.isValid() else None

    def select_path(self, path: str) -> bool:
        row = self.model.row_of(path)
        if row is None:
            return False
        index = self.proxy.mapFromSource(self.model.index(row))
        if not index.isValid():
            self.search.clear()
            self.preset.setCurrentIndex(0)
            self.date.setCurrentIndex(0)
            index = self.proxy.mapFromSource(self.model.index(row))
        self.grid.setCurrentIndex(index)
        return True

    def _selected(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self.show_item(current.data(ITEM_ROLE) if current.isValid() else None)

    def show_item(self, item: GalleryItem | None) -> None:
        for b in (self.reuse, self.open_folder, self.copy_prompt, self.delete):
            b.setEnabled(item is not None)
        self.compare.setVisible(item is not None and len(self.variations_of(item)) > 1)
        self.reuse.setEnabled(item is not None and item.metadata is not None)
        if item is None:
            self.player.load(None)
            self.meta.setText(f"<span style='color:{theme.colors().muted}'>Select a video to see how it was made.</span>")
            self.source_thumb.hide()
            return
        self.player.load(str(item.path), poster=item.thumbnail)
        self._show_source(item)
        self.meta.setText(details_html(details(item)))
        self.meta.setAccessibleDescription("; ".join(f"{k}: {v}" for k, v in details(item)))

    def _show_source(self, item: GalleryItem) -> None:
        source = item.source_image
        picture = load_image(source, SOURCE_THUMB) if source is not None else None
        if picture is None:
            self.source_thumb.clear()
            self.source_thumb.hide()
            return
        self.source_thumb.setPixmap(QPixmap.fromImage(picture))
        self.source_thumb.setToolTip(f"Source image: {source.name}")
        self.source_thumb.show()

    def set_variation_groups(self, groups: dict[str, list[str]]) -> None:
        self.variation_groups = groups
        item = self.current()
        self.compare.setVisible(item is not None and len(self.variations_of(item)) > 1)

    def variations_of(self, item: GalleryItem) -> list[GalleryItem]:
        """The videos of `item`'s variation group that are in the gallery (queue order), itself included."""
        paths = self.variation_groups.get(str(item.path), [])
        found = [self.model.item(row) for row in (self.model.row_of(p) for p in paths) if row is not None]
        return [i for i in found if i is not None]


def details_html(rows: list[tuple[str, str]]) -> str:
    muted_color = theme.colors().muted
    cells = "".join(
        f"<tr><td style='color:{muted_color}; padding: 2px 16px 2px 0; white-space: nowrap;'>{html.escape(k)}</td>"
        f"<td style='padding: 2px 0;'>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table cellspacing='0'>{cells}</table>"


def details(item: GalleryItem) -> list[tuple[str, str]]:
    """The metadata panel's rows, from the sidecar JSON the pipeline wrote next to the video."""
    rows = [("File", item.path.name)]
    try:
        rows.append(("Size on disk", human_bytes(item.path.stat().st_size)))
    except OSError:
        pass
    rows.append(("Made", datetime.fromtimestamp(item.mtime).strftime("%Y-%m-%d %H:%M")))
    meta = item.metadata
    if meta is None:
        rows.append(("Settings", "no settings were found for this video (no sidecar JSON)"))
        return rows
    req, resolved = meta.get("request", {}), meta.get("resolved", {})
    rows += [
        ("Prompt", for_display(str(req.get("prompt", "")))),
        ("Negative", for_display(str(resolved.get("negative_prompt", req.get("negative_prompt") or "official")))),
        ("Seed", str(meta.get("seed", req.get("seed")))),
        ("Size", f"{req.get('width')}×{req.get('height')}, {req.get('frames')} frames"),
        ("Preset", str(req.get("preset", ""))),
        ("Steps · CFG · shift", f"{resolved.get('steps', req.get('steps'))} · {resolved.get('cfg', req.get('cfg'))} · "
                                f"{resolved.get('shift', req.get('shift'))}"),
        ("Profile", str(req.get("profile", ""))),
    ]
    source = meta.get("source_image")
    if isinstance(source, dict) and source:
        rows.append(("Source image", f"{source.get('file_name', '')} · motion {source.get('motion')}"
                                     + (f" · sha256 {str(source['sha256'])[:12]}…" if source.get("sha256") else "")))
    model = meta.get("model") or {}
    if isinstance(model, dict) and model:
        rows.append(("Model", ", ".join(f"{k}: {v}" for k, v in model.items() if v)[:300]))
    if meta.get("seconds") is not None:
        rows.append(("Time taken", human_duration(meta["seconds"])))
    memory = meta.get("memory") or {}
    peaks_v = [m.get("vram_peak", 0) for m in memory.values() if isinstance(m, dict)]
    peaks_r = [m.get("rss_peak", m.get("rss", 0)) for m in memory.values() if isinstance(m, dict)]
    if peaks_v and max(peaks_v):
        rows.append(("Peak VRAM", human_bytes(max(peaks_v))))
    if peaks_r and max(peaks_r):
        rows.append(("Peak RAM", human_bytes(max(peaks_r))))
    return rows
