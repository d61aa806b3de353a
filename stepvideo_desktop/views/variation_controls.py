"""Create-page controls for batch work: how many variations to queue, and the bar shown while a queued job
is being edited ("Update job" instead of "Add to queue")."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSpinBox, QWidget

from stepvideo_desktop.views.widgets import GRID, muted, push_button

MAX_UI_VARIATIONS = 64  # the CLI takes up to 1000; a spin box past 64 is a slip of the wheel


class VariationsField(QWidget):
    """"Variations [4]": N jobs with seeds s, s+1, …, s+N-1, queued as one group."""

    changed = Signal(int)

    def __init__(self) -> None:
        super().__init__()
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(GRID)
        row.addWidget(QLabel("Variations"))
        self.spin = QSpinBox(minimum=1, maximum=MAX_UI_VARIATIONS)
        self.spin.setAccessibleName("Variations")
        self.spin.setToolTip("Queue this many videos with seeds s, s+1, s+2, …; they are shown together "
                             "in the queue and can be compared side by side in the gallery")
        self.spin.valueChanged.connect(self._changed)
        row.addWidget(self.spin)
        self.hint = muted()
        row.addWidget(self.hint, 1)
        self._changed(1)

    def value(self) -> int:
        return self.spin.value()

    def _changed(self, n: int) -> None:
        self.hint.setText(f"seeds s … s+{n - 1}" if n > 1 else "one video")
        self.changed.emit(n)


class EditJobBar(QWidget):
    """Shown on Create while a queued job is open for editing."""

    update_clicked = Signal()
    cancel_clicked = Signal()

    def __init__(self) -> None:
        super().__init__()
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(GRID)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setAccessibleName("Job being edited")
        row.addWidget(self.label, 1)
        self.cancel = push_button("Cancel edit", "close")
        self.update = push_button("Update job", "check", primary=True)
        self.update.setToolTip("Save these settings into the queued job (Ctrl+Enter)")
        self.cancel.clicked.connect(self.cancel_clicked)
        self.update.clicked.connect(self.update_clicked)
        row.addWidget(self.cancel)
        row.addWidget(self.update)
        self.job_id: int | None = None
        self.hide()

    def begin(self, job_id: int, checkpoint_step: int | None) -> None:
        self.job_id = job_id
        note = f" Its checkpoint (step {checkpoint_step}) will be discarded." if checkpoint_step else ""
        self.label.setText(f"Editing job {job_id}.{note}")
        self.show()

    def end(self) -> None:
        self.job_id = None
        self.hide()
