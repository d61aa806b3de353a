"""The question asked when the queue database cannot be opened: move it aside and start a new queue, or quit.

Shown before the main window exists (the Controller cannot be built without a queue), so it is a
modal message box rather than a banner.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QMessageBox, QWidget

MOVE_ASIDE = "Move it aside and start a new queue"


class QueueDatabaseDialog(QMessageBox):
    def __init__(self, problem: str, path: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setIcon(QMessageBox.Icon.Warning)
        self.setWindowTitle("StepVideo: the job queue cannot be opened")
        self.setText("StepVideo cannot open its job queue, so it cannot start.")
        self.setInformativeText(
            f"What is wrong: {problem}\n\nThe file: {path}\n\n"
            "Moving it aside keeps the old file (renamed with today's date and time, next to it), so its jobs "
            "can still be recovered; the app then starts with a new, empty queue. Finished videos are not affected.")
        self.move_button = self.addButton(MOVE_ASIDE, QMessageBox.ButtonRole.AcceptRole)
        self.quit_button = self.addButton("Quit", QMessageBox.ButtonRole.RejectRole)
        self.setDefaultButton(self.quit_button)  # nothing is renamed by pressing Enter by accident
        self.setEscapeButton(self.quit_button)
        self.move_button.setAccessibleName(MOVE_ASIDE)
        self.quit_button.setAccessibleName("Quit")

    def choose_move_aside(self) -> bool:
        """True when the user chose to move the file aside; Quit and Esc say False."""
        self.exec()
        return self.clickedButton() is self.move_button
