"""QueueModel: the live SQLite queue as a table (one row per job), plus the running job's step from events."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QAbstractTableModel, QMimeData, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QImage, QPixmap

from stepvideo.display_text import for_display
from stepvideo.jobs.store import Job
from stepvideo_desktop import theme
from stepvideo_desktop.live_progress import LiveProgress
from stepvideo_desktop.views import icons
from stepvideo_desktop.views.source_thumb import load_image, with_inset
from stepvideo_desktop.views.widgets import human_duration

COLUMNS = ("", "Preview", "Prompt", "Settings", "Status", "Progress", "ETA")
COL_HANDLE, COL_PREVIEW, COL_PROMPT, COL_SETTINGS, COL_STATUS, COL_PROGRESS, COL_ETA = range(len(COLUMNS))
JOB_ROLE = Qt.ItemDataRole.UserRole + 1
PROGRESS_ROLE = Qt.ItemDataRole.UserRole + 2  # float 0..1 or None
MIME = "application/x-stepvideo-job-ids"
STATUS_LABELS = {"queued": "Waiting", "running": "Running", "paused": "Paused", "done": "Done", "failed": "Failed",
                 "cancelled": "Cancelled", "interrupted": "Interrupted"}


def settings_summary(request: dict) -> str:
    preset = request.get("preset", "standard")
    frames = request.get("frames")
    steps = request.get("steps")
    size = f"{request.get('width')}×{request.get('height')}"
    parts = [preset.capitalize(), size, f"{frames} fr"]
    if steps:
        parts.append(f"{steps} steps")
    parts.append(f"seed {request.get('seed')}")
    return " · ".join(parts)


def status_text(job: Job, live: LiveProgress | None = None) -> str:
    label = STATUS_LABELS.get(job.status, job.status)
    if job.status == "running" and live is not None and live.stage != "denoise":
        return f"{label} · {live.stage_text()}"  # the same words as the job card and the status bar
    if job.status == "running" and job.stage and job.stage != "denoise":
        return f"{label} · {job.stage.replace('_', ' ')}"
    if job.status in ("interrupted", "paused") and job.checkpoint_step:
        return f"{'Paused at' if job.status == 'paused' else 'Resumes from'} step {job.checkpoint_step}/{job.steps or '?'}"
    return label


class JobRowDrag:
    """Rows drag to reorder, carrying job ids as MIME; mixed into the queue's table models before
    QAbstractTableModel (each model writes `mimeData` and `dropMimeData` for its own rows)."""

    def flags(self, index):
        base = super().flags(index)
        if index.isValid():
            return base | Qt.ItemFlag.ItemIsDragEnabled
        return base | Qt.ItemFlag.ItemIsDropEnabled

    def supportedDropActions(self):  # noqa: N802
        return Qt.DropAction.MoveAction

    def mimeTypes(self):  # noqa: N802
        return [MIME]


class QueueModel(JobRowDrag, QAbstractTableModel):
    reorder_requested = Signal(list)  # every job id, in the new order

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.jobs: list[Job] = []
        self._row_of: dict[int, int] = {}
        self.live: dict[int, LiveProgress] = {}  # job id -> its progress from the worker's events
        self.previews: dict[int, str] = {}
        self._pixmaps: dict[str, QPixmap] = {}
        self._sources: dict[str, QImage | None] = {}  # a job's source image (path -> small picture)
        # A finished job's thumbnail: the gallery's, of its video (set by the composition root).
        self.video_thumbnail: Callable[[str], QPixmap | None] | None = None
        self._grip: QPixmap | None = None

    # ---- data in ---------------------------------------------------------------------------------
    def set_jobs(self, jobs: list[Job]) -> None:
        same_rows = [j.id for j in jobs] == [j.id for j in self.jobs]
        if same_rows:
            changed = [i for i, (a, b) in enumerate(zip(self.jobs, jobs)) if a != b]
            self.jobs = jobs
            if changed:
                self.dataChanged.emit(self.index(min(changed), 0), self.index(max(changed), len(COLUMNS) - 1))
            return
        self.beginResetModel()
        self.jobs = jobs
        self._row_of = {j.id: i for i, j in enumerate(jobs)}
        self.endResetModel()

    def set_live(self, job_id: int, progress: LiveProgress | None) -> None:
        if progress is None:
            self.live.pop(job_id, None)
        else:
            self.live[job_id] = progress
        self._changed(job_id, COL_STATUS, COL_ETA)

    def set_preview(self, job_id: int, path: str) -> None:
        self.previews[job_id] = path
        self._pixmaps.pop(path, None)
        self._changed(job_id, COL_PREVIEW, COL_PREVIEW)

    def _changed(self, job_id: int, first: int, last: int) -> None:
        row = self._row_of.get(job_id)
        if row is not None:
            self.dataChanged.emit(self.index(row, first), self.index(row, last))

    def job_at(self, row: int) -> Job | None:
        return self.jobs[row] if 0 <= row < len(self.jobs) else None

    def row_of(self, job_id: int) -> int | None:
        return self._row_of.get(job_id)

    def progress(self, job: Job) -> float | None:
        live = self.live.get(job.id)
        if job.status == "running" and live is not None and live.fraction is not None:
            return live.fraction  # of the current stage: denoising, then decoding
        if job.status == "done":
            return 1.0
        if job.step and job.steps:
            return job.step / job.steps
        return None

    def eta(self, job: Job) -> str:
        live = self.live.get(job.id)
        if job.status == "running" and live is not None:
            return live.eta_text()
        if job.status == "done" and job.started_at and job.finished_at:
            return f"took {human_duration(job.finished_at - job.started_at)}"
        return ""

    # ---- Qt model API ----------------------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.jobs)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        job = self.jobs[index.row()]
        col = index.column()
        if role == JOB_ROLE:
            return job
        if role == PROGRESS_ROLE:
            return self.progress(job)
        if role == Qt.ItemDataRole.DisplayRole:
            if col == COL_PROMPT:
                return for_display(job.prompt).replace("\n", " ")
            if col == COL_SETTINGS:
                return settings_summary(job.request)
            if col == COL_STATUS:
                return status_text(job, self.live.get(job.id))
            if col == COL_ETA:
                return self.eta(job)
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == COL_PROMPT:
                return for_display(job.prompt)
            if col == COL_STATUS:  # the whole text, which a narrow column elides
                shown = status_text(job, self.live.get(job.id))
                return f"{shown}: {job.error_message}" if job.error_message else shown
            if col == COL_SETTINGS:
                return json.dumps(job.request, ensure_ascii=False, indent=1)
            if col == COL_PREVIEW and job.request.get("image"):
                return f"Source image: {Path(str(job.request['image'])).name}"
        if role == Qt.ItemDataRole.DecorationRole and col == COL_PREVIEW:
            return self._preview_pixmap(job)
        if role == Qt.ItemDataRole.DecorationRole and col == COL_HANDLE:
            if self._grip is None:  # a pixmap keeps its 16 px where the table's icon size is the thumbnail's
                self._grip = icons.icon("grip", theme.colors().muted, 16).pixmap(16, 16)
            return self._grip
        if role == Qt.ItemDataRole.ToolTipRole and col == COL_HANDLE:
            return "Drag to reorder"
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return f"Job {job.id}: {status_text(job)}: {for_display(job.prompt)[:80]}"
        return None

    def refresh_previews(self) -> None:
        """Thumbnails arrived (they are made in the background): repaint the Preview column."""
        if self.jobs:
            self.dataChanged.emit(self.index(0, COL_PREVIEW), self.index(len(self.jobs) - 1, COL_PREVIEW),
                                  [Qt.ItemDataRole.DecorationRole])

    def _preview_pixmap(self, job: Job) -> QPixmap | None:
        """The video's thumbnail (or the live preview); an image-to-video job's source image inset in
        its corner, or alone while there is nothing else to show."""
        picture = self._video_pixmap(job)
        source = self.source_image(job)
        if source is None:
            return picture
        if picture is None:
            return QPixmap.fromImage(source).scaled(64, 36, Qt.AspectRatioMode.KeepAspectRatio,
                                                    Qt.TransformationMode.SmoothTransformation)
        return with_inset(picture, source)

    def source_image(self, job: Job) -> QImage | None:
        """The job's own copy of its source image (jobs/job_images.py), small; None for text-to-video."""
        image = job.request.get("image")
        if not isinstance(image, str) or not image:
            return None
        if image not in self._sources:
            self._sources[image] = load_image(image, 72) if Path(image).is_file() else None
        return self._sources[image]

    def _video_pixmap(self, job: Job) -> QPixmap | None:
        video = job.outputs.get("video") if job.status == "done" and job.outputs else None
        if video and self.video_thumbnail is not None:
            thumb = self.video_thumbnail(video)
            if thumb is not None and not thumb.isNull():
                return thumb.scaled(64, 36, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        path = self.previews.get(job.id)
        if path is None:
            return None
        if path not in self._pixmaps:
            pixmap = QPixmap(path)
            self._pixmaps[path] = pixmap.scaled(64, 36, Qt.AspectRatioMode.KeepAspectRatioByExpanding,
                                                Qt.TransformationMode.SmoothTransformation) if not pixmap.isNull() else None
        return self._pixmaps[path]

    # ---- drag to reorder -------------------------------------------------------------------------
    def mimeData(self, indexes):  # noqa: N802
        ids = sorted({self.jobs[i.row()].id for i in indexes if i.isValid()}, key=lambda j: self._row_of[j])
        mime = QMimeData()
        mime.setData(MIME, json.dumps(ids).encode())
        return mime

    def dropMimeData(self, data, action, row, column, parent: QModelIndex | QPersistentModelIndex) -> bool:  # noqa: N802
        if not data.hasFormat(MIME):
            return False
        moved = [int(j) for j in json.loads(bytes(data.data(MIME)).decode())]
        target = row if row >= 0 else (parent.row() if parent.isValid() else len(self.jobs))
        order = [j.id for j in self.jobs]
        before = sum(1 for j in moved if self._row_of.get(j, len(order)) < target)
        rest = [j for j in order if j not in moved]
        at = max(0, min(target - before, len(rest)))
        new_order = rest[:at] + moved + rest[at:]
        if new_order != order:
            self.reorder_requested.emit(new_order)
        return False  # the queue database is the truth; the model reloads from it


def preview_of(queue_preview_dir: Path) -> str | None:
    """The newest preview PNG the worker left for a job (survives app restarts)."""
    if not queue_preview_dir.is_dir():
        return None
    pngs = sorted(queue_preview_dir.glob("*.png"))
    return str(pngs[-1]) if pngs else None
