"""An in-app video player: QMediaPlayer + QVideoWidget with play/pause, scrub, loop, frame step, full screen.

QtMultimedia needs libpulse.so.0 on Linux; without it the player says so and offers to open the file
in the system's player instead of failing the whole app.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QKeySequence, QShortcut
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QStackedLayout, QVBoxLayout, QWidget

from stepvideo.presets import FPS
from stepvideo_desktop import theme
from stepvideo_desktop.views import icons
from stepvideo_desktop.views.widgets import GRID, muted, tool_button

log = logging.getLogger(__name__)

try:  # noqa: SIM105 - the import itself is the check
    from PySide6.QtMultimedia import QMediaPlayer
    from PySide6.QtMultimediaWidgets import QVideoWidget

    MULTIMEDIA_ERROR = ""
except ImportError as exc:  # typically: libpulse.so.0 missing
    QMediaPlayer = QVideoWidget = None
    MULTIMEDIA_ERROR = str(exc)

FRAME_MS = 1000 // FPS


class PlayerView(QWidget):
    playing_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Video player")
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(GRID)
        self._screen = QWidget()
        self._screen.setMinimumHeight(200)
        self._screen.setStyleSheet("background: #000; border-radius: 8px;")
        self._stack = QStackedLayout(self._screen)
        self.message = QLabel("Select a video to play it here.")
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setStyleSheet("color: #bbb; background: transparent;")
        self.message.setWordWrap(True)
        self._stack.addWidget(self.message)
        self.poster = QLabel()  # the thumbnail until the first play: a QVideoWidget is black until then
        self.poster.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.poster.setStyleSheet("background: #000;")
        self.poster.setAccessibleName("Video thumbnail; press Play")
        self._stack.addWidget(self.poster)
        self._poster_pixmap = None
        self.player = None
        self.video = None
        if QMediaPlayer is not None:
            self.video = QVideoWidget()
            self.video.setAccessibleName("Video")
            self._stack.addWidget(self.video)
            self.player = QMediaPlayer(self)
            self.player.setVideoOutput(self.video)
            self.player.positionChanged.connect(self._position)
            self.player.durationChanged.connect(self._duration)
            self.player.playbackStateChanged.connect(self._state)
            self.player.mediaStatusChanged.connect(self._status)
            self.player.errorOccurred.connect(self._error)
        else:
            self.message.setText("Playback needs the PulseAudio client library (Debian/Ubuntu: libpulse0).\n"
                                 "Use Open to watch the video in your system's player.")
        col.addWidget(self._screen, 1)

        controls = QHBoxLayout()
        controls.setSpacing(GRID)
        self.play_button = tool_button("play", "Play (Space)")
        self.play_button.clicked.connect(self.toggle)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setAccessibleName("Position")
        self.slider.sliderMoved.connect(self.seek)
        self.time = muted("0:00 / 0:00")
        self.loop = tool_button("repeat", "Loop", checkable=True)
        self.loop.setChecked(True)
        self.loop.toggled.connect(self._loop_changed)
        self.full = tool_button("expand", "Full screen (F)")
        self.full.clicked.connect(self.toggle_full_screen)
        for w in (self.play_button, self.slider, self.time, self.loop, self.full):
            controls.addWidget(w, 1 if w is self.slider else 0)
        col.addLayout(controls)
        self._set_controls(False)
        self._loop_changed(True)
        for key, slot in ((Qt.Key.Key_Space, self.toggle), (Qt.Key.Key_Comma, lambda: self.step(-1)),
                          (Qt.Key.Key_Period, lambda: self.step(1)), (Qt.Key.Key_F, self.toggle_full_screen)):
            QShortcut(QKeySequence(key), self, activated=slot, context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.source: str | None = None

    def _set_controls(self, enabled: bool) -> None:
        for w in (self.play_button, self.slider, self.loop, self.full):
            w.setEnabled(enabled)

    def load(self, path: str | None, autoplay: bool = False, poster=None) -> None:
        self.source = path
        self._poster_pixmap = poster
        if self.player is None:
            return
        self.player.stop()
        if path is None:
            self.player.setSource(QUrl())
            self._stack.setCurrentWidget(self.message)
            self.message.setText("Select a video to play it here.")
            self._set_controls(False)
            return
        self.player.setSource(QUrl.fromLocalFile(path))
        if poster is not None and not poster.isNull():
            self._show_poster()
        else:
            self._stack.setCurrentWidget(self.video)
        self._set_controls(True)
        if autoplay:
            self.player.play()

    def toggle(self) -> None:
        if self.player is None or self.source is None:
            if self.source:
                QDesktopServices.openUrl(QUrl.fromLocalFile(self.source))
            return
        if self.player.playbackState() == QMediaPlayer.PlaybackState.PlayingState:
            self.player.pause()
        else:
            self._stack.setCurrentWidget(self.video)
            self.player.play()

    def _show_poster(self) -> None:
        size = self._screen.size()
        self.poster.setPixmap(self._poster_pixmap.scaled(size, Qt.AspectRatioMode.KeepAspectRatio,
                                                         Qt.TransformationMode.SmoothTransformation))
        self._stack.setCurrentWidget(self.poster)

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self._stack.currentWidget() is self.poster and self._poster_pixmap is not None:
            self._show_poster()

    def step(self, frames: int) -> None:
        if self.player is None or self.source is None:
            return
        self._stack.setCurrentWidget(self.video)
        self.player.pause()
        self.player.setPosition(max(0, self.player.position() + frames * FRAME_MS))

    def seek(self, ms: int) -> None:
        if self.player is not None:
            self.player.setPosition(ms)

    def toggle_full_screen(self) -> None:
        if self.video is None:
            return
        self.video.setFullScreen(not self.video.isFullScreen())

    def _loop_changed(self, on: bool) -> None:
        if self.player is not None:
            self.player.setLoops(QMediaPlayer.Loops.Infinite if on else 1)

    def _position(self, ms: int) -> None:
        if not self.slider.isSliderDown():
            self.slider.setValue(ms)
        self.time.setText(f"{_clock(ms)} / {_clock(self.player.duration())}")

    def _duration(self, ms: int) -> None:
        self.slider.setRange(0, max(ms, 0))
        self.time.setText(f"{_clock(self.player.position())} / {_clock(ms)}")

    def _state(self, state) -> None:
        playing = state == QMediaPlayer.PlaybackState.PlayingState
        self.play_button.setIcon(icons.icon("pause" if playing else "play", theme.colors().text))
        self.play_button.setToolTip("Pause (Space)" if playing else "Play (Space)")
        self.play_button.setAccessibleName("Pause" if playing else "Play")
        self.playing_changed.emit(playing)

    def _status(self, status) -> None:
        if status == QMediaPlayer.MediaStatus.InvalidMedia:
            self._error(None, "this file cannot be played")

    def _error(self, _error, text: str = "") -> None:
        message = text or (self.player.errorString() if self.player else "")
        log.warning("playback error for %s: %s", self.source, message)
        self._stack.setCurrentWidget(self.message)
        self.message.setText(f"Could not play this video: {message}")

    def shutdown(self) -> None:
        if self.player is not None:
            self.player.stop()
            self.player.setSource(QUrl())


def _clock(ms: int) -> str:
    seconds = max(ms, 0) / 1000
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"
