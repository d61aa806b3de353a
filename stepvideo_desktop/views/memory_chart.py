"""A small live chart of VRAM and host RAM over time (QPainter; no chart library needed)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from stepvideo_desktop import theme

WINDOW_SECONDS = 600.0  # the chart shows the last ten minutes


@dataclass(frozen=True)
class Point:
    t: float
    vram: float | None  # bytes
    ram: float


class MemoryChart(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAccessibleName("Memory over time")
        self.points: deque[Point] = deque(maxlen=2000)
        self.vram_total: float | None = None
        self.ram_total: float | None = None

    def add(self, t: float, vram: float | None, ram: float, vram_total: float | None, ram_total: float) -> None:
        self.points.append(Point(t, vram, ram))
        if vram_total:
            self.vram_total = vram_total
        self.ram_total = ram_total
        last = self.points[-1]
        desc = f"RAM {last.ram / 1e9:.1f} of {ram_total / 1e9:.0f} GB"
        if vram is not None and self.vram_total:
            desc = f"VRAM {vram / 1e9:.1f} of {self.vram_total / 1e9:.0f} GB, " + desc
        self.setAccessibleDescription(desc)
        self.update()

    def clear(self) -> None:
        self.points.clear()
        self.update()

    def paintEvent(self, _event) -> None:  # noqa: N802
        c = theme.colors()
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        area = QRectF(self.rect()).adjusted(40, 8, -8, -24)
        p.setPen(QPen(QColor(c.border), 1))
        p.drawRect(area)
        top = max([v for v in (self.vram_total, self.ram_total) if v] or [1e9])
        top = max(top, max((max(pt.ram, pt.vram or 0) for pt in self.points), default=0)) * 1.05
        p.setPen(QColor(c.muted))
        font = p.font()
        font.setPointSizeF(max(7.0, font.pointSizeF() - 1.5))
        p.setFont(font)
        for frac in (0.0, 0.5, 1.0):
            y = area.bottom() - frac * area.height()
            p.drawText(QRectF(0, y - 8, 36, 16), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                       f"{top * frac / 1e9:.0f} GB")
        if not self.points:
            p.drawText(area, Qt.AlignmentFlag.AlignCenter, "Memory will appear here while the app runs")
            return
        t_end = self.points[-1].t
        t_start = max(self.points[0].t, t_end - WINDOW_SECONDS)
        span = max(t_end - t_start, 1.0)

        def xy(t: float, value: float) -> QPointF:
            return QPointF(area.left() + (t - t_start) / span * area.width(), area.bottom() - value / top * area.height())

        ram_color, vram_color = QColor(c.ok), QColor(c.accent)
        for total, color in ((self.vram_total, vram_color), (self.ram_total, ram_color)):
            if total:
                pen = QPen(color, 1, Qt.PenStyle.DashLine)
                p.setPen(pen)
                p.drawLine(xy(t_start, total), xy(t_end, total))
        for getter, color in ((lambda pt: pt.ram, ram_color), (lambda pt: pt.vram, vram_color)):
            path = QPainterPath()
            started = False
            for pt in self.points:
                value = getter(pt)
                if pt.t < t_start or value is None:
                    continue
                if started:
                    path.lineTo(xy(pt.t, value))
                else:
                    path.moveTo(xy(pt.t, value))
                    started = True
            p.setPen(QPen(color, 2))
            p.drawPath(path)
        legend_y = area.bottom() + 6
        x = area.left()
        for name, color, present in (("VRAM", vram_color, self.vram_total is not None), ("RAM", ram_color, True),
                                     ("- - total", QColor(c.muted), True)):
            if not present:
                continue
            p.setPen(QPen(color, 3))
            p.drawLine(QPointF(x, legend_y + 7), QPointF(x + 12, legend_y + 7))
            p.setPen(QColor(c.muted))
            p.drawText(QRectF(x + 16, legend_y, 80, 16), Qt.AlignmentFlag.AlignVCenter, name)
            x += 96
        if self.vram_total is None:
            p.drawText(QRectF(x, legend_y, 240, 16), Qt.AlignmentFlag.AlignVCenter, "no NVIDIA GPU: RAM only")
