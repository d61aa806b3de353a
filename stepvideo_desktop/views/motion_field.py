"""The TI2V motion score as a slider, with the official meaning of its values beside it."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from stepvideo.presets import DEFAULT_MOTION, MOTION_MEANINGS, MOTION_RANGE
from stepvideo_desktop.views.widgets import GRID, muted

TENTHS = 10  # the slider moves in 0.1 steps; a finer value loaded from a video is kept exactly
LEGEND = " · ".join(f"{value:g} = {meaning}" for value, meaning in MOTION_MEANINGS.items())


def motion_meaning(value: float) -> str:
    """The documented meaning of a motion score: exact at 2/5/10/20, else the nearest one."""
    nearest = min(MOTION_MEANINGS, key=lambda v: abs(v - value))
    meaning = MOTION_MEANINGS[nearest]
    return meaning if nearest == value else f"near {nearest:g} ({meaning})"


class MotionField(QWidget):
    changed = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(GRID // 2)
        row = QHBoxLayout()
        row.setSpacing(GRID)
        row.addWidget(QLabel("Motion"))
        self.slider = QSlider(Qt.Orientation.Horizontal)
        low, high = MOTION_RANGE
        self.slider.setRange(round(low * TENTHS), round(high * TENTHS))
        self.slider.setSingleStep(TENTHS // 2)
        self.slider.setPageStep(TENTHS)
        self.slider.setAccessibleName("Motion score")
        self.slider.setToolTip(f"How much the video moves. {LEGEND}")
        self.text = QLabel()
        self.text.setMinimumWidth(17 * GRID)
        self.text.setAccessibleName("Motion score meaning")
        row.addWidget(self.slider, 1)
        row.addWidget(self.text)
        col.addLayout(row)
        legend = muted(LEGEND)
        legend.setWordWrap(True)
        col.addWidget(legend)
        self._exact: float | None = None
        self.slider.valueChanged.connect(self._moved)
        self.set_value(DEFAULT_MOTION)

    def value(self) -> float:
        return self._exact if self._exact is not None else self.slider.value() / TENTHS

    def set_value(self, motion: float) -> None:
        self._exact = float(motion)
        self.slider.blockSignals(True)
        self.slider.setValue(round(motion * TENTHS))
        self.slider.blockSignals(False)
        self._show()
        self.changed.emit(self.value())

    def _moved(self, _tenths: int) -> None:
        self._exact = None  # the user moved it: the slider's value is the value
        self._show()
        self.changed.emit(self.value())

    def _show(self) -> None:
        self.text.setText(f"{self.value():g} · {motion_meaning(self.value())}")
