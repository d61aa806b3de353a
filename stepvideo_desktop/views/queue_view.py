"""The Queue page: toolbar, the job table (drag to reorder, context menu), the running job's detail pane."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QAction, QColor, QKeySequence, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QMenu,
    QSplitter,
    QStyledItemDelegate,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from stepvideo_desktop import theme
from stepvideo_desktop.views.progress_panel import ProgressPanel
from stepvideo_desktop.views.queue_model import (
    COL_ETA,
    COL_HANDLE,
    COL_PREVIEW,
    COL_PROGRESS,
    COL_PROMPT,
    COL_SETTINGS,
    COL_STATUS,
    JOB_ROLE,
    PROGRESS_ROLE,
    QueueModel,
)
from stepvideo_desktop.views.variation_group_model import VariationGroupModel
from stepvideo_desktop.views.widgets import GRID, Banner, ElidedLabel, muted, push_button, title

# Which actions apply to which statuses (the queue enforces the same rules and says so if not).
ACTIONS = {
    "cancel": ("Cancel", ("queued", "running", "paused", "interrupted")),
    "pause": ("Pause", ("queued", "running", "interrupted")),
    "resume": ("Resume", ("paused",)),
    "retry": ("Retry", ("failed", "cancelled", "interrupted")),
    "duplicate": ("Duplicate", ("queued", "running", "paused", "done", "failed", "cancelled", "interrupted")),
    "reuse": ("Reuse settings", ("queued", "running", "paused", "done", "failed", "cancelled", "interrupted")),
    "edit": ("Edit…", ("queued", "paused", "interrupted", "failed")),  # opens in Create, "Update job"
    "remove": ("Remove", ("queued", "paused", "done", "failed", "cancelled", "interrupted")),
}


# Column widths: what each column would like, and the least it may shrink to before the prompt gives way.
PREFERRED = {COL_HANDLE: 3 * GRID, COL_PREVIEW: 10 * GRID, COL_SETTINGS: 30 * GRID, COL_STATUS: 25 * GRID,
             COL_PROGRESS: 14 * GRID, COL_ETA: 16 * GRID}
LEAST = {COL_HANDLE: 3 * GRID, COL_PREVIEW: 9 * GRID, COL_SETTINGS: 10 * GRID, COL_STATUS: 12 * GRID,
         COL_PROGRESS: 11 * GRID, COL_ETA: 13 * GRID}
SHRINKING = (COL_PREVIEW, COL_SETTINGS, COL_STATUS, COL_PROGRESS, COL_ETA)  # text elides, with a tooltip
PROMPT_SHARE = 0.28  # the prompt column keeps at least this share of the table (it says which job is which)


def column_widths(available: int, eta_least: int = LEAST[COL_ETA]) -> dict[int, int]:
    """Widths for every column but the prompt (which stretches into the rest). Pure.

    Columns start at their preferred widths; when that leaves the prompt less than its share, the
    SHRINKING ones give up width in proportion to what they can spare, down to their least widths.
    """
    least = LEAST | {COL_ETA: max(eta_least, LEAST[COL_ETA])}
    widths = {col: max(w, least[col]) for col, w in PREFERRED.items()}
    prompt_least = max(20 * GRID, int(available * PROMPT_SHARE))
    deficit = sum(widths.values()) + prompt_least - available
    spare = {col: widths[col] - least[col] for col in SHRINKING}
    total_spare = sum(spare.values())
    if deficit > 0 and total_spare:
        share = min(deficit / total_spare, 1.0)
        for col in SHRINKING:
            widths[col] -= round(spare[col] * share)
    return widths


def status_color(status: str) -> str:
    c = theme.colors()
    return {"running": c.accent, "done": c.ok, "failed": c.bad, "interrupted": c.warn, "paused": c.warn}.get(status, c.muted)


class QueueDelegate(QStyledItemDelegate):
    """Paints the status chip and the progress bar; everything else is standard."""

    def paint(self, painter: QPainter, option, index) -> None:
        col = index.column()
        if col not in (COL_STATUS, COL_PROGRESS):
            super().paint(painter, option, index)
            return
        c = theme.colors()
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if option.state & option.state.State_Selected:
            painter.fillRect(option.rect, QColor(c.accent).lighter(170) if not c.dark else QColor(c.accent).darker(250))
        r = QRectF(option.rect).adjusted(GRID, 0, -GRID, 0)
        if col == COL_STATUS:
            job = index.data(JOB_ROLE)
            text = index.data()
            color = QColor(status_color(job.status))
            fm = option.fontMetrics
            text = fm.elidedText(text, Qt.TextElideMode.ElideRight, int(r.width()) - 16)
            chip = QRectF(r.left(), r.center().y() - 11, fm.horizontalAdvance(text) + 16, 22)
            fill = QColor(color)
            fill.setAlpha(40)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(fill)
            painter.drawRoundedRect(chip, 11, 11)
            painter.setPen(color if not c.dark else color.lighter(130))
            painter.drawText(chip, Qt.AlignmentFlag.AlignCenter, text)
        else:
            value = index.data(PROGRESS_ROLE)
            bar = QRectF(r.left(), r.center().y() - 3, r.width(), 6)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(c.border))
            painter.drawRoundedRect(bar, 3, 3)
            if value:
                painter.setBrush(QColor(c.ok if value >= 1 else c.accent))
                painter.drawRoundedRect(QRectF(bar.left(), bar.top(), bar.width() * min(value, 1.0), 6), 3, 3)
        painter.restore()


class QueueView(QWidget):
    action_requested = Signal(str, list)  # action name, job ids
    pause_queue_toggled = Signal(bool)
    import_requested = Signal()
    export_requested = Signal(str)  # "waiting" or "all"
    clear_finished_requested = Signal()

    def __init__(self, model: QueueModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("page")
        self.model = model
        outer = QVBoxLayout(self)
        outer.setContentsMargins(3 * GRID, 3 * GRID, 3 * GRID, 3 * GRID)
        outer.setSpacing(2 * GRID)
        bar = QHBoxLayout()
        bar.setSpacing(GRID)
        bar.addWidget(title("Queue"))
        self.summary = ElidedLabel()  # narrow windows elide the counts instead of cutting them off
        self.summary.setProperty("role", "muted")
        bar.addWidget(self.summary, 1)
        self.pause_button = push_button("Pause queue", "pause")
        self.pause_button.setCheckable(True)
        self.pause_button.toggled.connect(self._pause_toggled)
        self.import_button = push_button("Import prompts…", "import")
        self.import_button.setToolTip("A CSV or JSON Lines file with settings per row, or a text file with one prompt "
                                      "per line; what a row leaves out comes from the settings on Create")
        self.import_button.clicked.connect(self.import_requested)
        self.export_button = push_button("Export…", "download")
        self.export_button.setToolTip("Save jobs as JSON Lines, to import on another machine")
        self.export_menu = QMenu(self.export_button)
        for key, label in (("waiting", "Export waiting jobs…"), ("all", "Export all jobs…")):
            self.export_menu.addAction(label, lambda k=key: self.export_requested.emit(k))
        self.export_button.setMenu(self.export_menu)
        self.clear_button = push_button("Clear finished", "check")
        self.clear_button.setToolTip("Remove finished, failed and cancelled jobs from the list (their videos stay)")
        self.clear_button.clicked.connect(self.clear_finished_requested)
        for b in (self.pause_button, self.import_button, self.export_button, self.clear_button):
            bar.addWidget(b)
        outer.addLayout(bar)
        self.banner = Banner()
        outer.addWidget(self.banner)

        self.table = QTableView()
        self.groups = VariationGroupModel(model, self)  # the jobs with a collapsible header per variation group
        self.table.setModel(self.groups)
        self.table.clicked.connect(self._clicked)
        self.table.doubleClicked.connect(self._double_clicked)
        delegate = QueueDelegate(self.table)  # only where it paints: other cells stay in C++, no Python call each
        for column in (COL_STATUS, COL_PROGRESS):
            self.table.setItemDelegateForColumn(column, delegate)
        self.table.setAccessibleName("Jobs")
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.table.setDragEnabled(True)
        self.table.setAcceptDrops(True)
        self.table.setDropIndicatorShown(True)
        self.table.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(5 * GRID)
        header = self.table.horizontalHeader()
        header.setHighlightSections(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(COL_PROMPT, QHeaderView.ResizeMode.Stretch)  # the prompt gets the room
        header.setMinimumSectionSize(3 * GRID)
        for col, width in PREFERRED.items():
            header.resizeSection(col, width)
        self.table.setIconSize(QSize(8 * GRID, 9 * GRID // 2))  # 64×36: a 16:9 thumbnail in the Preview column
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._menu)
        self.table.installEventFilter(self)
        self.table.viewport().installEventFilter(self)
        self.empty = muted("No jobs yet. Write a prompt on Create and press Add to queue (Ctrl+Enter).")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)

        self.detail = ProgressPanel()
        self.detail.setMinimumHeight(28 * GRID)
        split = QSplitter(Qt.Orientation.Vertical)
        left = QWidget()
        col = QVBoxLayout(left)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(self.table, 1)
        col.addWidget(self.empty)
        split.addWidget(left)
        split.addWidget(self.detail)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([420, 260])
        split.setChildrenCollapsible(False)
        outer.addWidget(split, 1)
        model.modelReset.connect(self._refresh_summary)
        model.dataChanged.connect(self._refresh_summary)
        self._refresh_summary()

    def set_paused(self, paused: bool) -> None:
        self.pause_button.blockSignals(True)
        self.pause_button.setChecked(paused)
        self.pause_button.blockSignals(False)
        self._style_pause(paused)

    def _pause_toggled(self, paused: bool) -> None:
        self._style_pause(paused)
        self.pause_queue_toggled.emit(paused)

    def _style_pause(self, paused: bool) -> None:
        from stepvideo_desktop.views import icons

        self.pause_button.setText("Resume queue" if paused else "Pause queue")
        self.pause_button.setAccessibleName(self.pause_button.text())
        self.pause_button.setIcon(icons.icon("play" if paused else "pause", theme.colors().text))

    def _refresh_summary(self, *_args) -> None:
        jobs = self.model.jobs
        waiting = sum(j.status in ("queued", "interrupted") for j in jobs)
        running = sum(j.status == "running" for j in jobs)
        done = sum(j.status == "done" for j in jobs)
        self.summary.setText(f"{running} running · {waiting} waiting · {done} done")
        self.empty.setVisible(not jobs)

    def selected_ids(self) -> list[int]:
        """The selected jobs; a selected group header stands for every job of its group."""
        return self.groups.job_ids_at(sorted({i.row() for i in self.table.selectionModel().selectedRows()}))

    def _clicked(self, index) -> None:
        group = self.groups.group_at(index.row())
        if group is not None and index.column() == COL_HANDLE:
            self.groups.toggle(group)

    def _double_clicked(self, index) -> None:
        group = self.groups.group_at(index.row())
        if group is not None and index.column() != COL_HANDLE:  # the handle's click already toggled
            self.groups.toggle(group)

    def _menu(self, pos) -> None:
        index = self.table.indexAt(pos)
        if index.isValid() and index.row() not in {i.row() for i in self.table.selectionModel().selectedRows()}:
            self.table.selectRow(index.row())
        ids = self.selected_ids()
        if not ids:
            return
        statuses = {self.model.jobs[self.model.row_of(i)].status for i in ids}
        menu = QMenu(self)
        for key, (label, allowed) in ACTIONS.items():
            action = QAction(label, menu)
            if key == "remove":
                action.setShortcut(QKeySequence.StandardKey.Delete)
            action.setEnabled(any(s in allowed for s in statuses) and (key != "edit" or len(ids) == 1))
            action.triggered.connect(lambda _=False, k=key: self.action_requested.emit(k, ids))
            menu.addAction(action)
        menu.popup(self.table.viewport().mapToGlobal(pos))

    def fit_columns(self) -> None:
        """Give the prompt column its share at any width; the others shrink and elide (see column_widths)."""
        eta_least = self.table.fontMetrics().horizontalAdvance("took 59 min 59 s") + 3 * GRID
        widths = column_widths(self.table.viewport().width(), eta_least)
        header = self.table.horizontalHeader()
        for col, width in widths.items():
            if header.sectionSize(col) != width:
                header.resizeSection(col, width)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if obj is self.table.viewport() and event.type() == QEvent.Type.Resize:  # the viewport has its new width
            self.fit_columns()
        if obj is self.table and event.type() == QEvent.Type.KeyPress and event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            ids = self.selected_ids()
            if ids:
                self.action_requested.emit("remove", ids)
                return True
        return super().eventFilter(obj, event)
