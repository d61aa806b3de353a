"""The always-visible bottom bar: GPU + VRAM, host RAM, the worker's state, online/offline, waiting jobs."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from stepvideo_desktop import theme
from stepvideo_desktop.monitor import MemorySample
from stepvideo_desktop.views import icons
from stepvideo_desktop.views.widgets import GRID, UsageBar


class StatusBarView(QWidget):
    queue_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(2 * GRID, GRID // 2, 2 * GRID, GRID // 2)
        row.setSpacing(2 * GRID)
        self.gpu = UsageBar("GPU")
        self.ram = UsageBar("RAM")
        self.worker = QLabel("Worker: stopped")
        self.worker.setAccessibleName("Worker state")
        self.network = QLabel()
        self.network_icon = QLabel()
        self.queue = QPushButton("queue: 0 waiting")
        self.queue.setFlat(True)
        self.queue.setAccessibleName("Open the queue")
        self.queue.setStyleSheet(f"color: {theme.colors().accent}; border: none; padding: 0 4px;")
        self.queue.clicked.connect(self.queue_clicked)
        row.addWidget(self.gpu)
        row.addWidget(self.ram)
        row.addStretch(1)
        row.addWidget(self.worker)
        row.addWidget(self.network_icon)
        row.addWidget(self.network)
        row.addWidget(self.queue)
        self.set_online(True)

    def show_sample(self, s: MemorySample) -> None:
        if s.has_gpu:
            self.gpu.label.setText(s.gpu_name or "GPU")
            self.gpu.set_usage(s.vram_used, s.vram_total)
            self.gpu.setToolTip(f"{s.gpu_name}: VRAM used by all processes")
        else:
            self.gpu.label.setText("No NVIDIA GPU")
            self.gpu.set_usage(None, None)
            self.gpu.setToolTip("NVML is not available: no NVIDIA driver or GPU was found")
        self.ram.set_usage(s.ram_used, s.ram_total)

    def set_worker_state(self, text: str) -> None:
        self.worker.setText(text)

    def set_online(self, online: bool) -> None:
        c = theme.colors()
        self.network.setText("online" if online else "offline")
        self.network_icon.setPixmap(icons.icon("online" if online else "offline", c.muted if online else c.warn).pixmap(16, 16))
        self.network.setAccessibleName("Network: " + ("online" if online else "offline"))

    def set_waiting(self, n: int) -> None:
        self.queue.setText(f"queue: {n} waiting")
