"""Painting never loses a reference to None (issue 10).

PySide6 6.12.0 on Python < 3.12 drops one reference to None on every call of a void Qt method; the memory
chart's QPainterPath.lineTo per point used up None's ~5,000 references within minutes and the app aborted
with "Fatal Python error: none_dealloc". pyproject excludes that release. Here every widget with Python paint
code (and the cards, bars and icons around it) is painted a few thousand times while None's reference count
is watched, so a release that brings the bug back fails this test instead of a user's window.
"""

from __future__ import annotations

import ctypes
import dataclasses
import gc
import sys
from collections import deque

import pytest

pytestmark = pytest.mark.skipif(sys.version_info >= (3, 12),
                                reason="None is immortal on Python 3.12+: its count never moves and cannot reach zero")

PAINTS = 800
CHECK_EVERY = 10  # stop a leaking loop early: each check bounds how far None's count can fall
SLACK = 20  # references Python itself may let go of (caches settling); the bug costs one per Qt call
HEADROOM = 200_000


@pytest.fixture(scope="module", autouse=True)
def none_headroom():
    """Permanent extra references to None, so a leaking build fails an assertion instead of aborting pytest.
    (Never given back: a list holding them would drop None to zero when freed at exit.)"""
    incref = ctypes.PYFUNCTYPE(None, ctypes.py_object)(("Py_IncRef", ctypes.pythonapi))
    for _ in range(HEADROOM):
        incref(None)


def painter_gain() -> int:
    """References to None PySide6 keeps for each QPainter opened on a new device (6 in 6.11.3 and 6.12.0 alike).
    Harmless, as None only gains, but it would hide losses in code that opens painters: measured, then allowed."""
    from PySide6.QtGui import QImage, QPainter

    def open_painter():
        image = QImage(8, 8, QImage.Format.Format_ARGB32)  # a name: the image must outlive the painter
        painter = QPainter(image)
        painter.end()

    open_painter()
    before = sys.getrefcount(None)
    for _ in range(100):
        open_painter()
    return round((sys.getrefcount(None) - before) / 100)


def assert_keeps_none(paint, times: int = PAINTS, painters: int = 0) -> None:
    """`painters`: QPainters each paint opens on a new device (see painter_gain)."""
    gain = painters * painter_gain() if painters else 0
    paint()  # the first paint fills caches (fonts, pixmaps, style) that may hold None
    gc.collect()
    before = sys.getrefcount(None)
    for i in range(1, times + 1):
        paint()
        if i % CHECK_EVERY == 0 and sys.getrefcount(None) < before - SLACK:
            break
    gc.collect()
    lost = before - sys.getrefcount(None) + gain * i
    assert lost <= SLACK, (f"None lost {lost} references in {i} paints ({lost / i:.1f} per paint): this PySide6 "
                           "decrefs None in Qt calls (see pyproject's desktop extra)")


def _sample_chart(chart, n: int = 600, gpu: bool = True) -> None:
    for i in range(n):
        vram = 6e9 + 2e9 * ((i // 40) % 2) if gpu and i % 97 else None  # gaps: no reading for a second
        chart.add(float(i), vram, 8e9 + 3e9 * i / n, 24e9 if gpu else None, 32e9)


@pytest.mark.parametrize("gpu", [True, False], ids=["vram+ram", "ram-only"])
def test_memory_chart_live(qtbot, gpu):
    from stepvideo_desktop.views.memory_chart import MemoryChart

    chart = MemoryChart()
    qtbot.addWidget(chart)
    chart.resize(480, 180)
    chart.show()
    chart.points = deque(maxlen=600)  # shorter than the app's history, to stay fast; full, so a new
    _sample_chart(chart, 600, gpu=gpu)  # sample drops the oldest and None's count holds still
    t = iter(range(600, 10**6))

    def paint():  # a new sample per frame, as the monitor does once a second
        i = next(t)
        chart.add(float(i), 7e9 if gpu else None, 9e9 + i, 24e9 if gpu else None, 32e9)
        chart.grab()

    assert_keeps_none(paint)


def test_memory_chart_empty(qtbot):
    from stepvideo_desktop.views.memory_chart import MemoryChart

    chart = MemoryChart()
    qtbot.addWidget(chart)
    chart.resize(480, 180)
    assert_keeps_none(chart.grab)


def _job(job_id: int, status: str, step: int | None = None):
    from stepvideo.jobs.record import Job

    request = {"prompt": f"a fox number {job_id}", "preset": "standard", "width": 544, "height": 992,
               "frames": 51, "steps": 30, "seed": job_id}
    job = Job(id=job_id, status=status, request=request, model="m", revision=None, position=job_id, batch=None,
              created_at=0.0, updated_at=0.0, started_at=None, finished_at=None, step=None, steps=30, stage=None,
              outputs={}, result=None, error_kind=None, error_message=None, checkpoint_step=None,
              worker_pid=None, requested=None, attempts=0, crashes=0)
    return dataclasses.replace(job, step=step, stage="denoise" if step else None)


def test_progress_panel_with_chart(qtbot):
    from stepvideo_desktop.monitor import MemorySample
    from stepvideo_desktop.views.progress_panel import ProgressPanel

    panel = ProgressPanel()
    qtbot.addWidget(panel)
    panel.resize(900, 260)
    panel.show()
    panel.set_job(_job(1, "running", step=12))
    for i in range(300):
        panel.on_sample(MemorySample(time=float(i), ram_used=int(8e9 + i * 1e7), ram_total=int(32e9),
                                     vram_used=int(6e9), vram_total=int(24e9)))
    assert_keeps_none(panel.grab, PAINTS // 4)


def test_queue_table_delegate(qtbot):
    from stepvideo_desktop.views.queue_model import QueueModel
    from stepvideo_desktop.views.queue_view import QueueView

    model = QueueModel()
    statuses = ("running", "queued", "paused", "done", "failed", "cancelled", "interrupted", "queued")
    model.set_jobs([_job(i + 1, s, step=12 if s == "running" else None) for i, s in enumerate(statuses)])
    view = QueueView(model)
    qtbot.addWidget(view)
    view.resize(1100, 700)
    view.show()
    view.table.selectRow(2)  # the delegate paints selected rows differently
    assert_keeps_none(view.table.viewport().grab, PAINTS // 8)


def test_cards_bars_and_icons(qtbot):
    from stepvideo_desktop.views import icons
    from stepvideo_desktop.views.gallery_model import placeholder_pixmap
    from stepvideo_desktop.views.widgets import Banner, Card, Segmented, UsageBar

    card = Card("Memory")
    qtbot.addWidget(card)
    usage, banner = UsageBar("VRAM"), Banner()
    card.body.addWidget(usage)
    card.body.addWidget(banner)
    card.body.addWidget(Segmented([("standard", "Standard"), ("turbo", "Turbo")], "Preset"))
    usage.set_usage(20e9, 24e9)
    banner.show_message("The model is not downloaded", "warn", details="details")
    card.resize(600, 240)
    card.show()
    render_icon = icons._pixmap.__wrapped__  # uncached: the QPainter + QSvgRenderer path each time
    names = iter(icons.NAMES * PAINTS)

    def paint():
        card.grab()
        render_icon(next(names), "#667085", 20, 2.0)

    assert_keeps_none(paint, painters=1)
    assert_keeps_none(placeholder_pixmap, PAINTS // 10, painters=1)
