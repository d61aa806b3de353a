"""The queue table with variation groups: a header row per group (collapsible, one progress bar for the
group) above its jobs. A table model over QueueModel, which stays a flat list of jobs.

Jobs of one group are listed under their header in queue order, at the place of the group's first job,
so a group reads as one unit even when a member was moved. A "group" of one job is shown as a plain row.
Selecting a header selects the whole group for actions (cancel, pause, remove, …).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass

from PySide6.QtCore import QAbstractTableModel, QMimeData, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QFont

from stepvideo.jobs.store import Job
from stepvideo_desktop.views.queue_model import (
    COL_HANDLE,
    COL_PROGRESS,
    COL_PROMPT,
    COL_SETTINGS,
    COL_STATUS,
    COLUMNS,
    JOB_ROLE,
    MIME,
    PROGRESS_ROLE,
    JobRowDrag,
    QueueModel,
)

GROUP_ROLE = Qt.ItemDataRole.UserRole + 3  # the group id on a header row, None on a job row
# The status a group's chip shows: the first of these that any member has.
_GROUP_STATUS_ORDER = ("running", "failed", "interrupted", "queued", "paused", "cancelled", "done")


@dataclass(frozen=True)
class GroupSummary:
    """What a header row shows; `status` colours its chip like a job's."""

    group_id: str
    jobs: tuple[Job, ...]

    @property
    def status(self) -> str:
        statuses = {j.status for j in self.jobs}
        return next((s for s in _GROUP_STATUS_ORDER if s in statuses), "queued")

    def status_text(self) -> str:
        done = sum(j.status == "done" for j in self.jobs)
        running = sum(j.status == "running" for j in self.jobs)
        failed = sum(j.status == "failed" for j in self.jobs)
        parts = [f"{done}/{len(self.jobs)} done"]
        parts += [f"{running} running"] if running else []
        parts += [f"{failed} failed"] if failed else []
        return " · ".join(parts)

    def title(self) -> str:
        prompts = {j.prompt for j in self.jobs}
        prompt = self.jobs[0].prompt.replace("\n", " ") if len(prompts) == 1 else "different prompts"
        return f"{len(self.jobs)} variations · {prompt}"

    def settings_text(self) -> str:
        seeds = [j.request.get("seed") for j in self.jobs]
        others = {json.dumps({k: v for k, v in j.request.items() if k != "seed"}, sort_keys=True) for j in self.jobs}
        text = f"seeds {min(seeds)}…{max(seeds)}" if all(isinstance(s, int) for s in seeds) else "seeds vary"
        return text + ("" if len(others) == 1 else " · mixed settings")


class VariationGroupModel(JobRowDrag, QAbstractTableModel):
    """Rows: ("job", source row) or ("group", group id). Data of job rows comes from the QueueModel."""

    def __init__(self, source: QueueModel, parent=None) -> None:
        super().__init__(parent)
        self.source = source
        self.collapsed: set[str] = set()
        self._rows: list[tuple[str, object]] = []
        self._members: dict[str, list[int]] = {}  # group id -> source rows
        self._proxy_row_of_source: dict[int, int] = {}
        self._header_row: dict[str, int] = {}
        source.modelReset.connect(self._rebuild)
        source.dataChanged.connect(self._source_changed)
        self._rebuild()

    # ---- layout ------------------------------------------------------------------------------------
    def _layout(self) -> None:
        members: dict[str, list[int]] = defaultdict(list)
        for row, job in enumerate(self.source.jobs):
            if job.group_id is not None:
                members[job.group_id].append(row)
        self._members = {g: rows for g, rows in members.items() if len(rows) > 1}
        rows: list[tuple[str, object]] = []
        for row, job in enumerate(self.source.jobs):
            group = job.group_id if job.group_id in self._members else None
            if group is None:
                rows.append(("job", row))
            elif self._members[group][0] == row:
                rows.append(("group", group))
                if group not in self.collapsed:
                    rows.extend(("job", m) for m in self._members[group])
        self._rows = rows
        self._proxy_row_of_source = {payload: i for i, (kind, payload) in enumerate(rows) if kind == "job"}
        self._header_row = {payload: i for i, (kind, payload) in enumerate(rows) if kind == "group"}

    def _rebuild(self) -> None:
        self.beginResetModel()
        self._layout()
        self.endResetModel()

    def _source_changed(self, top: QModelIndex, bottom: QModelIndex, roles=()) -> None:
        touched = set()
        for source_row in range(top.row(), bottom.row() + 1):
            if source_row in self._proxy_row_of_source:
                touched.add(self._proxy_row_of_source[source_row])
            job = self.source.job_at(source_row)
            if job is not None and job.group_id in self._header_row:
                touched.add(self._header_row[job.group_id])  # the group's bar and chip follow its jobs
        if touched:
            self.dataChanged.emit(self.index(min(touched), 0), self.index(max(touched), len(COLUMNS) - 1))

    # ---- groups ------------------------------------------------------------------------------------
    def group_at(self, row: int) -> str | None:
        kind, payload = self._rows[row] if 0 <= row < len(self._rows) else ("", None)
        return payload if kind == "group" else None  # type: ignore[return-value]

    def summary(self, group_id: str) -> GroupSummary:
        return GroupSummary(group_id, tuple(self.source.jobs[r] for r in self._members.get(group_id, [])))

    def group_ids(self) -> list[str]:
        return list(self._members)

    def toggle(self, group_id: str) -> None:
        """Collapse an expanded group, expand a collapsed one."""
        self.collapsed ^= {group_id}
        self._rebuild()

    def job_ids_at(self, rows: list[int]) -> list[int]:
        """The jobs the rows stand for (a header stands for its whole group), in table order, once each."""
        ids: list[int] = []
        for row in sorted(rows):
            if not 0 <= row < len(self._rows):
                continue
            kind, payload = self._rows[row]
            source_rows = self._members.get(payload, []) if kind == "group" else [payload]
            ids.extend(self.source.jobs[r].id for r in source_rows if self.source.jobs[r].id not in ids)
        return ids

    def row_of_job(self, job_id: int) -> int | None:
        source_row = self.source.row_of(job_id)
        return self._proxy_row_of_source.get(source_row) if source_row is not None else None

    def group_progress(self, group_id: str) -> float:
        jobs = self.summary(group_id).jobs
        return sum(self.source.progress(j) or 0.0 for j in jobs) / max(len(jobs), 1)

    # ---- Qt model API ------------------------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        return self.source.headerData(section, orientation, role)

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        kind, payload = self._rows[index.row()]
        if kind == "job":
            return self.source.data(self.source.index(payload, index.column()), role)
        return self._group_data(payload, index.column(), role)

    def _group_data(self, group_id: str, col: int, role):
        summary = self.summary(group_id)
        expanded = group_id not in self.collapsed
        if role == GROUP_ROLE:
            return group_id
        if role == JOB_ROLE:
            return summary
        if role == PROGRESS_ROLE:
            return self.group_progress(group_id)
        if role == Qt.ItemDataRole.DisplayRole:
            return {COL_HANDLE: "▾" if expanded else "▸", COL_PROMPT: summary.title(),
                    COL_SETTINGS: summary.settings_text(), COL_STATUS: summary.status_text()}.get(col)
        if role == Qt.ItemDataRole.FontRole:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == COL_HANDLE:
                return "Collapse the group" if expanded else "Expand the group"
            if col == COL_PROGRESS:
                return f"{self.group_progress(group_id):.0%} of the group's steps"
            return summary.title()
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return f"Variation group, {'expanded' if expanded else 'collapsed'}: {summary.title()}: {summary.status_text()}"
        return None

    # ---- drag to reorder (the QueueModel does the work, on job ids) ----------------------------------
    def mimeData(self, indexes):  # noqa: N802
        mime = QMimeData()
        mime.setData(MIME, json.dumps(self.job_ids_at(list({i.row() for i in indexes if i.isValid()}))).encode())
        return mime

    def dropMimeData(self, data, action, row, column, parent: QModelIndex | QPersistentModelIndex) -> bool:  # noqa: N802
        target = row if row >= 0 else (parent.row() if parent.isValid() else len(self._rows))
        source_row = len(self.source.jobs)
        for kind, payload in self._rows[target:]:  # the first job at or after the drop point
            source_row = payload if kind == "job" else self._members[payload][0]
            break
        return self.source.dropMimeData(data, action, source_row, column, QModelIndex())
