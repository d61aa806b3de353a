"""A small live chart of VRAM and host RAM over time (QPainter; no chart library needed).

A frame costs few Qt calls on purpose: the frame, axis labels, totals and legend are painted once into a
cached pixmap, and each series is one QPolygonF drawn with one drawPolyline. PySide6 6.12.0 on Python < 3.12
drops a reference to None on every void Qt call; the old loop (QPainterPath.lineTo per point, up to 2 × 2,000
a frame) used up None's ~5,000 references in minutes and aborted the app (issue 10, none_dealloc).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen, QPixmap, QPolygonF
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
        self._description = ""
        self._background: tuple[tuple, QPixmap] | None = None  # (what it shows, the pixmap)

    def add(self, t: float, vram: float | None, ram: float, vram_total: float | None, ram_total: float) -> None:
        self.points.append(Point(t, vram, ram))
        if vram_total:
            self.vram_total = vram_total
        self.ram_total = ram_total
        last = self.points[-1]
        desc = f"RAM {last.ram / 1e9:.1f} of {ram_total / 1e9:.0f} GB"
        if vram is not None and self.vram_total:
            desc = f"VRAM {vram / 1e9:.1f} of {self.vram_total / 1e9:.0f} GB, " + desc
        if desc != self._description:  # at 0.1 GB resolution it rarely changes: spare the Qt call
            self._description = desc
            self.setAccessibleDescription(desc)
        self.update()

    def clear(self) -> None:
        self.points.clear()
        self.update()

    def _area(self) -> QRectF:
        return QRectF(self.rect()).adjusted(40, 8, -8, -24)

    def _top(self) -> float:
        top = max([v for v in (self.vram_total, self.ram_total) if v] or [1e9])
        return max(top, max((max(pt.ram, pt.vram or 0) for pt in self.points), default=0)) * 1.05

    def paintEvent(self, _event) -> None:  # noqa: N802
        c = theme.colors()
        area, top = self._area(), self._top()
        p = QPainter(self)
        p.drawPixmap(0, 0, self._background_pixmap(c, area, top))
        if not self.points:
            return
        t_end = self.points[-1].t
        t_start = max(self.points[0].t, t_end - WINDOW_SECONDS)
        sx, sy = area.width() / max(t_end - t_start, 1.0), area.height() / top
        left, bottom = area.left(), area.bottom()
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        for getter, color in ((lambda pt: pt.ram, c.ok), (lambda pt: pt.vram, c.accent)):
            line = [QPointF(left + (pt.t - t_start) * sx, bottom - value * sy)
                    for pt in self.points if pt.t >= t_start and (value := getter(pt)) is not None]
            if line:
                p.setPen(QPen(QColor(color), 2))
                p.drawPolyline(QPolygonF(line))

    def _background_pixmap(self, c: theme.Colors, area: QRectF, top: float) -> QPixmap:
        ratio = self.devicePixelRatioF()
        key = (self.width(), self.height(), ratio, self.font().key(), c, top, self.vram_total, self.ram_total,
               bool(self.points))
        if self._background is None or self._background[0] != key:
            self._background = (key, self._paint_background(c, area, top, ratio))
        return self._background[1]

    def _paint_background(self, c: theme.Colors, area: QRectF, top: float, ratio: float) -> QPixmap:
        pixmap = QPixmap(round(self.width() * ratio), round(self.height() * ratio))
        pixmap.setDevicePixelRatio(ratio)
        pixmap.fill(Qt.GlobalColor.transparent)
        p = QPainter(pixmap)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(QPen(QColor(c.border), 1))
        p.drawRect(area)
        p.setPen(QColor(c.muted))
        font = QFont(self.font())
        font.setPointSizeF(max(7.0, font.pointSizeF() - 1.5))
        p.setFont(font)
        for frac in (0.0, 0.5, 1.0):
            y = area.bottom() - frac * area.height()
            p.drawText(QRectF(0, y - 8, 36, 16), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                       f"{top * frac / 1e9:.0f} GB")
        if not self.points:
            p.drawText(area, Qt.AlignmentFlag.AlignCenter, "Memory will appear here while the app runs")
            p.end()
            return pixmap
        ram_color, vram_color = QColor(c.ok), QColor(c.accent)
        for total, color in ((self.vram_total, vram_color), (self.ram_total, ram_color)):
            if total:
                p.setPen(QPen(color, 1, Qt.PenStyle.DashLine))
                y = area.bottom() - total / top * area.height()
                p.drawLine(QPointF(area.left(), y), QPointF(area.right(), y))
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
        p.end()
        return pixmap
