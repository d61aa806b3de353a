"""Shared helpers for the desktop tests: an isolated app (real Controller + main window). The tiny model is
conftest's session fixture `tiny_model`."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

TINY_SIZE = {"height": 32, "width": 32}  # the tiny model renders 32×32, 17 frames in well under a second


@pytest.fixture
def app_dirs(sandbox, monkeypatch):
    """Per-test folders for settings, queue, logs, videos and models; nothing reaches the network."""
    (sandbox / "models").mkdir()
    monkeypatch.setenv("STEPVIDEO_MODELS_DIR", str(sandbox / "models"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return sandbox


def make_controller(qtbot, start_worker: bool = False, monkeypatch=None):
    from stepvideo_desktop.controller import Controller

    controller = Controller(start_worker=start_worker)
    qtbot.addWidget(controller.window)
    if monkeypatch is not None:  # destructive actions ask first; tests answer yes
        monkeypatch.setattr(controller, "_confirm", lambda *_a: True)
    controller.window.resize(1280, 800)
    controller.window.show()
    return controller


def set_custom_size(composer, height: int, width: int) -> None:
    composer.size.setCurrentIndex(composer.size.findData("custom"))
    composer.custom_height.setText(str(height))
    composer.custom_width.setText(str(width))


def fill_composer(composer, prompt: str, model: Path | None = None, steps: int = 2, frames_chunks: int = 1) -> None:
    """A small, fast request on the Create page, as a user would type it."""
    composer.prompt.setPlainText(prompt)
    set_custom_size(composer, TINY_SIZE["height"], TINY_SIZE["width"])
    composer.frames.setValue(frames_chunks)
    composer.steps.spin.setValue(steps)
    if model is not None:
        composer._model = str(model)


def drop_file(widget, path) -> QDropEvent:
    """A real QDropEvent with a file URL, delivered to the widget's drop handler."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(QPointF(widget.rect().center()), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    widget.dropEvent(event)
    return event
