"""The running job in detail: stage, step i/N, seconds per step, ETA, the latest preview, the memory chart."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QProgressBar, QVBoxLayout, QWidget

from stepvideo.display_text import for_display
from stepvideo.jobs.store import Job
from stepvideo_desktop import theme
from stepvideo_desktop.live_progress import STAGE_WORDS, LiveProgress
from stepvideo_desktop.monitor import MemorySample
from stepvideo_desktop.views.memory_chart import MemoryChart
from stepvideo_desktop.views.widgets import GRID, Card, muted

NEAR_LIMIT = 0.92  # warn above this share of VRAM or RAM


class ProgressPanel(Card):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Running job", parent)
        row = QHBoxLayout()
        row.setSpacing(3 * GRID)
        self.body.addLayout(row, 1)
        facts = QVBoxLayout()  # left: what is happening, in words and numbers
        facts.setSpacing(GRID)
        self.prompt = QLabel("Nothing is running.")
        self.prompt.setWordWrap(True)
        self.prompt.setAccessibleName("Running job prompt")
        facts.addWidget(self.prompt)
        grid = QGridLayout()
        grid.setHorizontalSpacing(2 * GRID)
        grid.setVerticalSpacing(GRID // 2)
        self.stage = QLabel("—")
        self.step = QLabel("—")
        self.speed = QLabel("—")
        self.eta = QLabel("—")
        for i, (name, value) in enumerate((("Stage", self.stage), ("Step", self.step),
                                           ("Speed", self.speed), ("ETA", self.eta))):
            value.setAccessibleName(name)
            grid.addWidget(muted(name), i, 0)
            grid.addWidget(value, i, 1)
        grid.setColumnStretch(1, 1)
        facts.addLayout(grid)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.bar.setFixedHeight(8)
        self.bar.setAccessibleName("Job progress")
        facts.addWidget(self.bar)
        self.warning = QLabel()
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet(f"color: {theme.colors().warn}; font-weight: 600;")
        self.warning.setAccessibleName("Memory warning")
        self.warning.hide()
        facts.addWidget(self.warning)
        facts.addStretch(1)
        row.addLayout(facts, 2)
        self.preview = QLabel("The latest preview\nappears here.")  # middle: the newest preview frame
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setFixedSize(30 * GRID, 17 * GRID)
        self.preview.setAccessibleName("Latest preview")
        self.preview.setStyleSheet(f"color: {theme.colors().muted}; border: 1px dashed {theme.colors().border}; border-radius: 8px;")
        row.addWidget(self.preview, 0, Qt.AlignmentFlag.AlignTop)
        self.chart = MemoryChart()  # right: VRAM and RAM over time
        row.addWidget(self.chart, 3)
        self.job_id: int | None = None
        self.live: LiveProgress | None = None  # what the worker said last about this job
        self._worker_vram: tuple[float, float] | None = None  # (reserved, total) from the worker's allocator

    def set_job(self, job: Job | None) -> None:
        if job is None:
            if self.job_id is not None:  # keep the last job's figures until the next one starts
                self.stage.setText("Finished")
                self.eta.setText("—")
                self.prompt.setText("Nothing is running. Last job: " + self.prompt.toolTip()[:200])
                self.job_id = None
            elif not self.prompt.text().startswith("Nothing is running. Last"):
                self.prompt.setText("Nothing is running.")
            return
        if job.id != self.job_id:
            self.job_id = job.id
            self.preview.setPixmap(QPixmap())
            self.preview.setText("The latest preview\nappears here.")
        shown = for_display(job.prompt)
        self.prompt.setText(shown if len(shown) < 240 else shown[:238] + "…")
        self.prompt.setToolTip(shown)
        if self.live is not None and self.live.job_id == job.id:
            return  # the worker's events are newer than the database's row
        if job.stage:  # a job another process runs: what the database knows
            self.stage.setText(STAGE_WORDS.get(job.stage, job.stage))
        if job.step is not None and job.steps:
            self.step.setText(f"{job.step} / {job.steps}")
            self.bar.setValue(int(job.step / job.steps * 1000))

    def show_live(self, p: LiveProgress) -> None:
        """The running job as the worker reports it: the same LiveProgress the table and status bar show."""
        self.live = p
        self.stage.setText(p.stage_text())
        self.step.setText(p.counter_text())
        if p.stage == "denoise" and p.seconds_per_step:
            self.speed.setText(f"{p.seconds_per_step:.2f} s/step")
        elif p.stage != "denoise":
            self.speed.setText("—")
        self.eta.setText(p.eta_text())
        fraction = p.fraction
        self.bar.setValue(int((fraction or 0) * 1000))
        self.bar.setAccessibleDescription(f"{p.stage_text()}: {p.counter_text()}")

    def on_event(self, ev: dict) -> None:
        kind = ev.get("type")
        if kind == "preview" and ev.get("path"):
            self.show_preview(ev["path"])
        elif kind == "memory" and ev.get("vram_total"):
            self._worker_vram = (float(ev.get("vram_reserved", 0)), float(ev["vram_total"]))

    def show_preview(self, path: str) -> None:
        pixmap = QPixmap(path)
        if pixmap.isNull():
            return
        self.preview.setPixmap(pixmap.scaled(self.preview.width(), self.preview.height(),
                                             Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation))

    def on_sample(self, s: MemorySample) -> None:
        vram, vram_total = s.vram_used, s.vram_total
        if vram is None and self._worker_vram:  # no NVML: fall back to the worker's own allocator figures
            vram, vram_total = self._worker_vram
        self.chart.add(s.time, vram, s.ram_used, vram_total, s.ram_total)
        warnings = []
        if vram is not None and vram_total and vram / vram_total > NEAR_LIMIT:
            warnings.append(f"VRAM is {vram / vram_total:.0%} full")
        if s.ram_total and s.ram_used / s.ram_total > NEAR_LIMIT:
            warnings.append(f"host RAM is {s.ram_used / s.ram_total:.0%} full")
        self.warning.setVisible(bool(warnings))
        if warnings:
            self.warning.setText("Memory is close to its limit: " + " and ".join(warnings)
                                 + ". If the job fails, choose a lower-memory profile.")
