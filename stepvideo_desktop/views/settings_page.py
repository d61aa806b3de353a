"""Settings: folders, defaults, previews and checkpoints, theme. Every change applies and is saved at once."""

from __future__ import annotations

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from stepvideo import paths
from stepvideo.api import PROFILES
from stepvideo.gpus import Gpu, list_gpus
from stepvideo.presets import PRESETS
from stepvideo_desktop.settings import THEMES, AppSettings, SettingsError
from stepvideo_desktop.settings_store import SettingsStore
from stepvideo_desktop.views.composer import PROFILE_LABELS
from stepvideo_desktop.views.widgets import GRID, Banner, Card, muted, push_button, title


class FolderField(QWidget):
    """A folder setting. The folder in use is always shown as real text (the default too, marked
    "default"), never as grey placeholder text that reads like an empty field; "" is stored for the default."""

    def __init__(self, name: str, default: str) -> None:
        super().__init__()
        self.default = default
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(GRID)
        self.edit = QLineEdit()
        self.edit.setAccessibleName(name)
        self.edit.setToolTip(f"The {name.lower()}; Default goes back to {default}")
        self.default_tag = muted("default")
        self.default_tag.setAccessibleName(f"{name} is the default")
        self.browse = push_button("Choose…", "folder")
        self.browse.setAccessibleName(f"Choose {name.lower()}")
        self.reset = push_button("Default")
        self.reset.setAccessibleName(f"Use the default {name.lower()}")
        row.addWidget(self.edit, 1)
        row.addWidget(self.default_tag)
        row.addWidget(self.browse)
        row.addWidget(self.reset)
        self.browse.clicked.connect(self._choose)
        self.reset.clicked.connect(lambda: (self.edit.setText(self.default), self.edit.editingFinished.emit()))
        self.edit.textChanged.connect(self._mark)

    def value(self) -> str:
        """What to store: "" while the field shows the default folder (or is emptied)."""
        text = self.edit.text().strip()
        return "" if text in ("", self.default) else text

    def show_value(self, stored: str) -> None:
        self.edit.setText(stored or self.default)
        self._mark()

    def _mark(self) -> None:
        is_default = self.value() == ""
        self.default_tag.setVisible(is_default)
        self.reset.setEnabled(not is_default)

    def _choose(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder", self.edit.text() or self.default)
        if folder:
            self.edit.setText(folder)
            self.edit.editingFinished.emit()


class SettingsPage(QWidget):
    def __init__(self, store: SettingsStore, default_models_dir: str, gpus: list[Gpu] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("page")
        self._store = store
        self.gpus = list_gpus() if gpus is None else gpus  # NVML, never torch: the UI makes no CUDA context
        outer = QVBoxLayout(self)
        outer.setContentsMargins(3 * GRID, 3 * GRID, 3 * GRID, 3 * GRID)
        outer.setSpacing(2 * GRID)
        outer.addWidget(title("Settings"))
        self.banner = Banner()
        outer.addWidget(self.banner)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        body = QWidget()
        body.setMaximumWidth(110 * GRID)  # long lines of settings are hard to scan
        col = QVBoxLayout(body)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(2 * GRID)
        scroll.setWidget(body)
        outer.addWidget(scroll, 1)

        folders = Card("Folders")
        form = self._form(folders)
        self.output_dir = FolderField("Output folder", str(paths.videos_dir()))
        self.models_dir = FolderField("Model folder", default_models_dir)
        form.addRow("Videos", self.output_dir)
        form.addRow("Models", self.models_dir)
        folders.body.addWidget(muted("Models use the Hugging Face cache layout, so downloads made by other tools are reused."))
        col.addWidget(folders)

        defaults = Card("Defaults")
        form = self._form(defaults)
        self.default_preset = QComboBox()
        self.default_preset.setAccessibleName("Default preset")
        for name in PRESETS:
            self.default_preset.addItem(name.capitalize(), name)
        self.default_profile = QComboBox()
        self.default_profile.setAccessibleName("Default memory profile")
        for name in PROFILES:
            self.default_profile.addItem(PROFILE_LABELS.get(name, name), name)
        form.addRow("Preset", self.default_preset)
        form.addRow("Memory profile", self.default_profile)
        col.addWidget(defaults)

        self.gpu_card = Card("GPU")  # only with a choice to make: more than one NVIDIA GPU
        form = self._form(self.gpu_card)
        self.gpu = QComboBox()
        self.gpu.setAccessibleName("GPU for rendering")
        for gpu in self.gpus:
            self.gpu.addItem(gpu.label(), gpu.index)
        form.addRow("Render on", self.gpu)
        self.gpu_card.body.addWidget(muted("The worker runs on this GPU; the status bar, the memory graph and the "
                                           "memory prediction on Create show it. A running job finishes where it is."))
        self.gpu_card.setVisible(len(self.gpus) > 1)
        col.addWidget(self.gpu_card)

        render = Card("While rendering")
        form = self._form(render)
        self.previews = QCheckBox("Show preview frames while a job runs")
        self.previews.setAccessibleName("Show preview frames")
        self.preview_every = QSpinBox(minimum=1, maximum=1000, suffix=" steps")
        self.preview_every.setAccessibleName("Preview interval in steps")
        self.checkpoint_every = QSpinBox(minimum=1, maximum=1000, suffix=" steps")
        self.checkpoint_every.setAccessibleName("Checkpoint interval in steps")
        self.keep_loaded = QCheckBox("Keep the model loaded between jobs (faster, holds memory)")
        self.keep_loaded.setAccessibleName("Keep the model loaded between jobs")
        self.notifications = QCheckBox("Notify me when a job finishes or fails")
        self.notifications.setAccessibleName("Notifications")
        form.addRow("", self.previews)
        form.addRow("Preview every", self.preview_every)
        form.addRow("Checkpoint every", self.checkpoint_every)
        form.addRow("", self.keep_loaded)
        form.addRow("", self.notifications)
        col.addWidget(render)

        look = Card("Appearance and logs")
        form = self._form(look)
        self.theme = QComboBox()
        self.theme.setAccessibleName("Theme")
        for name in THEMES:
            self.theme.addItem({"system": "Follow the system"}.get(name, name.capitalize()), name)
        form.addRow("Theme", self.theme)
        logs = push_button("Open log folder", "folder")
        logs.clicked.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(paths.ensure(paths.log_dir())))))
        form.addRow("Logs", logs)
        form.addRow("", muted(f"Settings are stored in {store.path}"))
        col.addWidget(look)
        col.addStretch(1)

        for w in (self.default_preset, self.default_profile, self.preview_every, self.checkpoint_every, self.theme):
            w.setMaximumWidth(40 * GRID)
        self.gpu.setMaximumWidth(60 * GRID)
        self.show_settings(store.value)
        self._connect()
        store.changed.connect(self.show_settings)

    @staticmethod
    def _form(card: Card) -> QFormLayout:
        form = QFormLayout()
        form.setHorizontalSpacing(2 * GRID)
        form.setVerticalSpacing(GRID)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        card.body.addLayout(form)
        return form

    def _connect(self) -> None:
        self.output_dir.edit.editingFinished.connect(lambda: self._apply(output_dir=self.output_dir.value()))
        self.models_dir.edit.editingFinished.connect(lambda: self._apply(models_dir=self.models_dir.value()))
        self.default_preset.currentIndexChanged.connect(lambda: self._apply(default_preset=self.default_preset.currentData()))
        self.default_profile.currentIndexChanged.connect(lambda: self._apply(default_profile=self.default_profile.currentData()))
        self.previews.toggled.connect(lambda on: self._apply(previews=on))
        self.preview_every.valueChanged.connect(lambda v: self._apply(preview_every_steps=v))
        self.checkpoint_every.valueChanged.connect(lambda v: self._apply(checkpoint_every_steps=v))
        self.keep_loaded.toggled.connect(lambda on: self._apply(keep_model_loaded=on))
        self.notifications.toggled.connect(lambda on: self._apply(notifications=on))
        self.theme.currentIndexChanged.connect(lambda: self._apply(theme=self.theme.currentData()))
        self.gpu.currentIndexChanged.connect(lambda: self._apply(gpu_index=self.gpu.currentData()))

    def _apply(self, **changes) -> None:
        try:
            self._store.update(**changes)
            self.banner.hide()
        except SettingsError as exc:  # a save that fails (disk full) is announced by the store, app-wide
            self.banner.show_message(f"Could not save settings: {exc}")

    def show_settings(self, s: AppSettings) -> None:
        widgets = (self.output_dir.edit, self.models_dir.edit, self.default_preset, self.default_profile, self.previews,
                   self.preview_every, self.checkpoint_every, self.keep_loaded, self.notifications, self.theme, self.gpu)
        for w in widgets:
            w.blockSignals(True)
        self.output_dir.show_value(s.output_dir)
        self.models_dir.show_value(s.models_dir)
        self.default_preset.setCurrentIndex(self.default_preset.findData(s.default_preset))
        self.default_profile.setCurrentIndex(self.default_profile.findData(s.default_profile))
        self.previews.setChecked(s.previews)
        self.preview_every.setValue(s.preview_every_steps)
        self.checkpoint_every.setValue(s.checkpoint_every_steps)
        self.keep_loaded.setChecked(s.keep_model_loaded)
        self.notifications.setChecked(s.notifications)
        self.theme.setCurrentIndex(self.theme.findData(s.theme))
        self.gpu.setCurrentIndex(max(self.gpu.findData(s.gpu_index or 0), 0))
        for w in widgets:
            w.blockSignals(False)
