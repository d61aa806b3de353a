"""A card for a model folder the user already had on disk: path, size, "local folder", Use and Remove.

Remove only takes the folder off the app's list; the app never deletes files it did not download.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QWidget

from stepvideo_desktop import theme
from stepvideo_desktop.local_models import LocalModel
from stepvideo_desktop.views.widgets import GRID, Card, human_bytes, muted, push_button, title


class LocalModelCard(Card):
    use_requested = Signal(str)  # folder
    remove_requested = Signal(str)

    def __init__(self, model: LocalModel, parent: QWidget | None = None) -> None:
        super().__init__("", parent)
        self.path = model.path
        name = model.path.rstrip("/").rsplit("/", 1)[-1] or model.path
        self.setAccessibleName(f"Local model {name}")
        head = QHBoxLayout()
        head.setSpacing(GRID)
        head.addWidget(title(name, "heading"))
        self.active_badge = QLabel("In use")
        self.active_badge.setStyleSheet(f"color: {theme.colors().accent_text}; background: {theme.colors().accent};"
                                        " border-radius: 8px; padding: 2px 8px; font-weight: 600;")
        self.active_badge.hide()
        head.addWidget(self.active_badge)
        head.addStretch(1)
        self.status = QLabel()
        self.status.setAccessibleName(f"{name} status")
        head.addWidget(self.status)
        self.body.addLayout(head)
        self.path_label = muted(model.path)
        self.path_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.path_label.setWordWrap(True)
        self.body.addWidget(self.path_label)
        self.detail = muted()
        self.detail.setWordWrap(True)
        self.body.addWidget(self.detail)
        actions = QHBoxLayout()
        actions.setSpacing(GRID)
        self.use = push_button("Use", "check")
        self.use.setAccessibleName(f"Use the folder {name}")
        self.remove = push_button("Remove from list", "close")
        self.remove.setAccessibleName(f"Remove {name} from the list (its files stay on disk)")
        self.remove.setToolTip("Only forgets the folder; its files stay on disk")
        actions.addWidget(self.use)
        actions.addWidget(self.remove)
        actions.addStretch(1)
        self.body.addLayout(actions)
        self.use.clicked.connect(lambda: self.use_requested.emit(self.path))
        self.remove.clicked.connect(lambda: self.remove_requested.emit(self.path))
        self._active = False
        self.show_model(model)

    def show_model(self, model: LocalModel) -> None:
        c = theme.colors()
        parts = ["local folder", human_bytes(model.size_bytes) if model.size_bytes is not None else "size unknown"]
        if model.usable and model.components and model.components != model.path:
            parts.append(f"transformer only; encoders and VAE from {model.components}")
        self.detail.setText(" · ".join(parts) + (f"\n{model.problem}" if model.problem else ""))
        self.status.setText("ready" if model.usable else "cannot be used")
        self.status.setStyleSheet(f"color: {c.ok if model.usable else c.bad}; font-weight: 600;")
        self.usable = model.usable
        self.use.setEnabled(model.usable)
        self.set_active(self._active)

    def set_active(self, active: bool) -> None:
        self._active = active
        shown = active and self.usable
        self.active_badge.setVisible(shown)
        self.use.setText("In use" if shown else "Use")
