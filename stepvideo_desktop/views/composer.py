"""The Create page: prompt editor with token counts and examples on the left, settings cards on the right."""

from __future__ import annotations

import random
from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QScrollArea,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from stepvideo.api import MAX_STEPS, PROFILES, GenerationRequest, validate
from stepvideo.errors import InvalidRequest
from stepvideo.presets import (
    FPS,
    FRAMES_PER_CHUNK,
    OFFICIAL_NEGATIVE_PROMPT,
    OFFICIAL_POSITIVE_SUFFIX,
    PRESETS,
    SIZES,
    SPATIAL_FACTOR,
    TI2V_DEFAULT_FRAMES,
    TI2V_REPO,
)
from stepvideo.source_image import check_image_size
from stepvideo_desktop import cjk_font, theme
from stepvideo_desktop.fit import FitEstimate
from stepvideo_desktop.model_defaults import ModelDefaults
from stepvideo_desktop.token_counter import TokenCounter
from stepvideo_desktop.views import icons
from stepvideo_desktop.views.image_input import ImageInput, local_file_of
from stepvideo_desktop.views.orientation import follow_image
from stepvideo_desktop.views.variation_controls import EditJobBar, VariationsField
from stepvideo_desktop.views.widgets import (
    GRID,
    Card,
    FlowLayout,
    Segmented,
    muted,
    push_button,
    title,
    tool_button,
)

MIN_SIDE, MAX_SIDE = SPATIAL_FACTOR, 4096  # the engine takes any multiple of 16; 4096 catches typos
MAX_CHUNKS = 12  # 12 × 17 = 204 frames, the published maximum
SIZE_CHOICES = (("landscape", "Landscape 992×544"), ("portrait", "Portrait 544×992"),
                ("square", "Square 768×768"), ("custom", "Custom…"))
PROFILE_LABELS = {"auto": "Auto (let the planner choose)", "resident": "Resident (fastest, most VRAM)",
                  "balanced": "Balanced", "low-vram": "Low VRAM (streams blocks)", "low-ram": "Low RAM"}
PLACEHOLDER_EN = "Describe the video… e.g. A red fox trots through fresh snow at dawn."
PLACEHOLDER = PLACEHOLDER_EN + "\n描述你想要的视频……例如：一只红狐在黎明的雪地里小跑。"


def frames_label(frames: int) -> str:
    return f"{frames} frames · {frames / FPS:.1f} s"


def parse_dimension(text: str, name: str) -> int:
    """A custom height/width as typed; raises InvalidRequest naming what is allowed (never rounds)."""
    text = text.strip()
    if not text.isdigit():
        raise InvalidRequest(f"{name} must be a whole number of pixels, a multiple of {SPATIAL_FACTOR}")
    value = int(text)
    if value < MIN_SIDE or value > MAX_SIDE or value % SPATIAL_FACTOR:
        lower = max(value // SPATIAL_FACTOR * SPATIAL_FACTOR, MIN_SIDE)
        upper = min(lower + SPATIAL_FACTOR if value % SPATIAL_FACTOR else lower, MAX_SIDE)
        hint = f" (nearest: {lower} or {upper})" if MIN_SIDE <= value <= MAX_SIDE else ""
        raise InvalidRequest(f"{name} {value} is not allowed; use a multiple of {SPATIAL_FACTOR} from {MIN_SIDE} to {MAX_SIDE}{hint}")
    return value


def _chip_label(text: str) -> str:
    """Short enough that several chips share a row: ~28 columns, CJK characters counting double."""
    width, out = 0, ""
    for ch in text:
        width += 2 if ord(ch) > 0x2E80 else 1
        if width > 28:
            return out.rstrip(" ,，。") + "…"
        out += ch
    return out


class QualityField(QWidget):
    """A number with the preset's default shown in grey and a reset button."""

    def __init__(self, label: str, spin: QSpinBox | QDoubleSpinBox) -> None:
        super().__init__()
        self.spin = spin
        spin.setAccessibleName(label)
        self.default_label = muted()
        self.reset = tool_button("reset", f"Reset {label.lower()} to the preset's default")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(GRID)
        name = QLabel(label)
        name.setMinimumWidth(48)
        row.addWidget(name)
        row.addWidget(spin, 1)
        row.addWidget(self.default_label)
        row.addWidget(self.reset)
        self._default: float = 0
        self.reset.clicked.connect(lambda: spin.setValue(self._default))
        spin.valueChanged.connect(self._refresh)

    def set_default(self, value: float) -> None:
        self._default = value
        self.default_label.setText(f"default {value:g}")
        self._refresh()

    def is_default(self) -> bool:
        return abs(self.spin.value() - self._default) < 1e-9

    def _refresh(self) -> None:
        self.reset.setEnabled(not self.is_default())


class ComposerView(QWidget):
    """Emits `submitted(request, front)`; front=True for "Generate next". While a queued job is open for
    editing it emits `update_requested(job_id, request)` instead."""

    submitted = Signal(object, bool)
    update_requested = Signal(int, object)
    request_changed = Signal()

    def __init__(self, examples: list[str], predict: Callable[[GenerationRequest], FitEstimate | None] | None = None,
                 parent: QWidget | None = None, cjk: bool = True) -> None:
        super().__init__(parent)
        self.cjk = cjk  # a font can draw Chinese here; without one, Chinese text shows as boxes
        self.setObjectName("page")
        self._predict = predict
        self._counter: TokenCounter | None = None
        self._model = ""
        self._defaults: ModelDefaults | None = None  # the active model's starting values, once applied
        self._fit: FitEstimate | None = None
        self._image_problem = ""  # the last refused image's line; stays in the error label until the next try
        self._count_timer = QTimer(self, singleShot=True, interval=150)
        self._count_timer.timeout.connect(self._update_counts)
        self._fit_timer = QTimer(self, singleShot=True, interval=200)
        self._fit_timer.timeout.connect(self._update_fit)

        root = QHBoxLayout(self)
        root.setContentsMargins(3 * GRID, 3 * GRID, 3 * GRID, 3 * GRID)
        root.setSpacing(3 * GRID)
        root.addLayout(self._build_prompt_column(examples), 3)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self._build_settings_column())
        scroll.setMinimumWidth(360)
        right = QVBoxLayout()  # the settings scroll; the buttons stay pinned below them, above the fold
        right.setSpacing(GRID)
        right.addWidget(scroll, 1)
        right.addLayout(self._build_footer())
        root.addLayout(right, 2)

        QShortcut(QKeySequence("Ctrl+Return"), self, activated=lambda: self._submit(False))
        QShortcut(QKeySequence("Ctrl+Enter"), self, activated=lambda: self._submit(False))
        self.set_preset("standard")
        self.request_changed.connect(self._schedule)
        self._schedule()

    # ---- building ------------------------------------------------------------------------------
    def _build_prompt_column(self, examples: list[str]) -> QVBoxLayout:
        col = QVBoxLayout()
        col.setSpacing(2 * GRID)
        col.addWidget(title("Create"))
        self.prompt = QPlainTextEdit()
        self.prompt.setPlaceholderText(PLACEHOLDER if self.cjk else PLACEHOLDER_EN)
        self.prompt.setAccessibleName("Prompt")
        self.prompt.setTabChangesFocus(True)
        self.prompt.textChanged.connect(self.request_changed)
        col.addWidget(self.prompt, 3)

        counts = QHBoxLayout()
        counts.setSpacing(2 * GRID)
        self.llm_count = QLabel()
        self.llm_count.setAccessibleName("Step-LLM token count")
        self.clip_count = QLabel()
        self.clip_count.setAccessibleName("CLIP token count")
        counts.addWidget(self.llm_count)
        counts.addWidget(self.clip_count)
        counts.addStretch(1)
        col.addLayout(counts)

        col.addWidget(muted("Examples"))
        chips = QWidget()
        flow = FlowLayout(chips)
        self.example_buttons = []
        for text in examples:
            chip = push_button(_chip_label(text))
            chip.setObjectName("chip")
            chip.setToolTip(text)
            chip.setAccessibleName(f"Example prompt: {text}")
            chip.clicked.connect(lambda _=False, t=text: self.prompt.setPlainText(t))
            flow.addWidget(chip)
            self.example_buttons.append(chip)
        col.addWidget(chips)

        self.advanced = QToolButton()
        self.advanced.setText("Advanced")
        self.advanced.setCheckable(True)
        self.advanced.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced.setIcon(icons.icon("chevron", theme.colors().text))
        self.advanced.setAccessibleName("Show advanced prompt options")
        col.addWidget(self.advanced, 0, Qt.AlignmentFlag.AlignLeft)
        self.advanced_box = QWidget()
        adv = QVBoxLayout(self.advanced_box)
        adv.setContentsMargins(0, 0, 0, 0)
        adv.setSpacing(GRID)
        adv.addWidget(QLabel("Negative prompt (what the video should avoid)"))
        self.negative = QPlainTextEdit(OFFICIAL_NEGATIVE_PROMPT)
        self.negative.setAccessibleName("Negative prompt")
        self.negative.setTabChangesFocus(True)
        self.negative.setFixedHeight(72)
        self.negative.textChanged.connect(self.request_changed)
        adv.addWidget(self.negative)
        if not self.cjk:
            note = muted(f"The default negative prompt is the official one, in Chinese; {cjk_font.INSTALL_HINT}.")
            note.setWordWrap(True)
            adv.addWidget(note)
        self.suffix = QCheckBox("Add the official quality suffix to the prompt")
        self.suffix.setChecked(True)
        self.suffix.setToolTip(OFFICIAL_POSITIVE_SUFFIX)
        self.suffix.setAccessibleName("Add the official quality suffix")
        self.suffix.toggled.connect(self.request_changed)
        adv.addWidget(self.suffix)
        self.advanced_box.setVisible(False)
        self.advanced.toggled.connect(self.advanced_box.setVisible)
        col.addWidget(self.advanced_box)
        col.addStretch(0)
        return col

    def _build_settings_column(self) -> QWidget:
        host = QWidget()
        col = QVBoxLayout(host)
        col.setContentsMargins(0, 0, GRID, 0)
        col.setSpacing(2 * GRID)

        # First in the scrolling column: the card grows with an image and must never squeeze the prompt.
        self.image = ImageInput()
        self.image.changed.connect(self._image_changed)
        self.image.problem.connect(self._show_image_problem)
        self.image.image_set.connect(self._follow_image)
        self.prompt.installEventFilter(self)  # Ctrl+V of an image (or its file) in the prompt sets the image
        col.addWidget(self.image)

        video = Card("Video")
        self.model_line = muted("Model: —")  # which model new jobs use (chosen on Models)
        self.model_line.setWordWrap(True)
        self.model_line.setAccessibleName("Model for new jobs")
        video.body.addWidget(self.model_line)
        self.preset = Segmented([(name, name.capitalize()) for name in PRESETS], "Preset")
        self.preset.changed.connect(self.set_preset)
        video.body.addWidget(self.preset)
        self.size = QComboBox()
        self.size.setAccessibleName("Video size")
        for key, label in SIZE_CHOICES:
            self.size.addItem(label, key)
        self.size.currentIndexChanged.connect(self._size_changed)
        video.body.addWidget(self.size)
        self.custom_box = QWidget()
        custom = QHBoxLayout(self.custom_box)
        custom.setContentsMargins(0, 0, 0, 0)
        custom.setSpacing(GRID)
        self.custom_width = QLineEdit("992")
        self.custom_width.setAccessibleName("Custom width in pixels")
        self.custom_height = QLineEdit("544")
        self.custom_height.setAccessibleName("Custom height in pixels")
        custom.addWidget(QLabel("W"))
        custom.addWidget(self.custom_width)
        custom.addWidget(QLabel("H"))
        custom.addWidget(self.custom_height)
        for edit in (self.custom_width, self.custom_height):
            edit.textChanged.connect(self.request_changed)
        self.custom_box.hide()
        video.body.addWidget(self.custom_box)

        frames_row = QHBoxLayout()
        self.frames = QSlider(Qt.Orientation.Horizontal)
        self.frames.setRange(1, MAX_CHUNKS)
        self.frames.setPageStep(1)
        self.frames.setValue(MAX_CHUNKS)
        self.frames.setAccessibleName("Frames")
        self.frames_text = QLabel(frames_label(MAX_CHUNKS * FRAMES_PER_CHUNK))
        self.frames_text.setMinimumWidth(128)
        self.frames.valueChanged.connect(self._frames_changed)
        frames_row.addWidget(self.frames, 1)
        frames_row.addWidget(self.frames_text)
        video.body.addLayout(frames_row)

        seed_row = QHBoxLayout()
        seed_row.setSpacing(GRID)
        seed_row.addWidget(QLabel("Seed"))
        self.seed = QLineEdit(str(random.randrange(2**31)))
        self.seed.setAccessibleName("Seed")
        self.seed.textChanged.connect(self.request_changed)
        self.dice = tool_button("dice", "Roll a random seed")
        self.dice.clicked.connect(self.roll_seed)
        self.lock = tool_button("unlock", "Lock the seed (otherwise a new one is rolled after each job)", checkable=True)
        self.lock.toggled.connect(
            lambda on: self.lock.setIcon(icons.icon("lock" if on else "unlock", theme.colors().text)))
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.dice)
        seed_row.addWidget(self.lock)
        video.body.addLayout(seed_row)
        self.variations = VariationsField()
        self.variations.changed.connect(self._variations_changed)
        video.body.addWidget(self.variations)
        col.addWidget(video)

        quality = Card("Quality")
        self.steps = QualityField("Steps", QSpinBox(minimum=1, maximum=MAX_STEPS))
        self.cfg = QualityField("CFG", QDoubleSpinBox(minimum=1.0, maximum=30.0, singleStep=0.5, decimals=1))
        self.shift = QualityField("Shift", QDoubleSpinBox(minimum=0.1, maximum=50.0, singleStep=0.5, decimals=1))
        for field in (self.steps, self.cfg, self.shift):
            field.spin.valueChanged.connect(self.request_changed)
            quality.body.addWidget(field)
        col.addWidget(quality)

        memory = Card("Memory")
        self.profile = QComboBox()
        self.profile.setAccessibleName("Memory profile")
        for name in PROFILES:
            self.profile.addItem(PROFILE_LABELS.get(name, name), name)
        self.profile.currentIndexChanged.connect(self.request_changed)
        memory.body.addWidget(self.profile)
        fit_row = QHBoxLayout()
        self.fit_light = QLabel()
        self.fit_light.setProperty("fit", "")
        self.fit_text = QLabel()
        self.fit_text.setWordWrap(True)
        self.fit_text.setAccessibleName("Predicted memory use")
        fit_row.addWidget(self.fit_light, 0, Qt.AlignmentFlag.AlignTop)
        fit_row.addWidget(self.fit_text, 1)
        memory.body.addLayout(fit_row)
        col.addWidget(memory)
        col.addStretch(1)
        return host

    def _build_footer(self) -> QVBoxLayout:
        col = QVBoxLayout()
        col.setContentsMargins(0, 0, GRID, 0)
        col.setSpacing(GRID)
        self.error = QLabel()
        self.error.setObjectName("error")
        self.error.setWordWrap(True)
        self.error.setAccessibleName("Problem with the request")
        col.addWidget(self.error)
        buttons = QGridLayout()
        buttons.setSpacing(GRID)
        self.add_button = push_button("Add to queue", "plus", primary=True)
        self.add_button.setToolTip("Add to queue (Ctrl+Enter)")
        self.next_button = push_button("Generate next", "up")
        self.next_button.setToolTip("Put this job first in the queue")
        self.add_button.clicked.connect(lambda: self._submit(False))
        self.next_button.clicked.connect(lambda: self._submit(True))
        buttons.addWidget(self.next_button, 0, 0)
        buttons.addWidget(self.add_button, 0, 1)
        col.addLayout(buttons)
        self.edit_bar = EditJobBar()  # "Update job" / "Cancel edit" while a queued job is edited
        self.edit_bar.update_clicked.connect(lambda: self._submit(False))
        self.edit_bar.cancel_clicked.connect(self.end_edit)
        col.addWidget(self.edit_bar)
        return col

    # ---- state -----------------------------------------------------------------------------------
    def set_preset(self, name: str) -> None:
        preset = PRESETS[name]
        self.preset.set_value(name)
        steps = self._defaults.steps if self._defaults and self._defaults.steps else preset.steps
        for field, value in ((self.steps, steps), (self.cfg, preset.cfg), (self.shift, preset.shift)):
            field.set_default(value)
            field.spin.setValue(value)
        self.request_changed.emit()

    def set_profile(self, name: str) -> None:
        self.profile.setCurrentIndex(max(self.profile.findData(name), 0))

    def set_model(self, model: str, counter: TokenCounter | None, defaults: ModelDefaults | None = None) -> None:
        """The active model (repo id or folder, "" for the base repo) and its tokenizers (None: not installed).

        When the model changes, the form starts from that model's defaults (size, frames, steps): a
        small test model is not offered the full model's 992×544×204 at 50 steps.
        """
        self._model = model
        self._counter = counter
        if defaults is not None:
            self._show_model(defaults)
            if self._defaults is None or (defaults.source, defaults.small) != (self._defaults.source, self._defaults.small):
                self._defaults = defaults
                self._apply_defaults(defaults)
            self._defaults = defaults
        self._show_image_model()
        self._schedule()

    def _show_model(self, d: ModelDefaults) -> None:
        words = f"Model: {d.name}"
        if not d.installed:
            words += " (not installed: download it or use a folder on Models)"
        elif d.small:
            words += " (a small test model: small, quick videos)"
        self.model_line.setText(words)
        self.model_line.setToolTip(d.source)

    def _apply_defaults(self, d: ModelDefaults) -> None:
        key = next((k for k, hw in SIZES.items() if hw == (d.height, d.width)), "custom")
        self.size.setCurrentIndex(self.size.findData(key))
        if key == "custom":
            self.custom_width.setText(str(d.width))
            self.custom_height.setText(str(d.height))
        self.frames.setValue(max(1, min(d.frames // FRAMES_PER_CHUNK, MAX_CHUNKS)))
        self.set_preset(self.preset.value())

    def set_predictor(self, predict: Callable[[GenerationRequest], FitEstimate | None] | None) -> None:
        self._predict = predict
        self._schedule()

    def roll_seed(self) -> None:
        self.seed.setText(str(random.randrange(2**31)))

    def _size_changed(self) -> None:
        self.custom_box.setVisible(self.size.currentData() == "custom")
        self._retarget_image()
        self.request_changed.emit()

    # ---- the source image ----------------------------------------------------------------------------
    def _image_changed(self) -> None:
        self._retarget_image()
        self._show_image_model()
        self.request_changed.emit()

    def _show_image_problem(self, line: str) -> None:
        self._image_problem = line
        self.error.setText(line)

    def _follow_image(self, src_width: int, src_height: int) -> None:
        """A newly chosen image sets the orientation (and, for the published model, TI2V's 102 frames)."""
        small = self._defaults is not None and self._defaults.small
        base = (self._defaults.height, self._defaults.width) if small else SIZES["landscape"]
        height, width = follow_image(src_width, src_height, base if small else None)
        key = next((k for k, hw in SIZES.items() if hw == (height, width)), "custom")
        self.size.setCurrentIndex(self.size.findData(key))
        if key == "custom":
            self.custom_width.setText(str(width))
            self.custom_height.setText(str(height))
        if not small:
            self.frames.setValue(TI2V_DEFAULT_FRAMES // FRAMES_PER_CHUNK)

    def _retarget_image(self) -> None:
        try:
            self.image.set_target(*self._dimensions())
        except InvalidRequest:
            pass  # a half-typed custom size: keep the last crop

    def _show_image_model(self) -> None:
        d = self._defaults
        if d is not None and d.image_to_video:
            self.image.set_note(f"Image-to-video with the active model, {d.name}.")
        else:
            name = d.name if d is not None else "Step-Video-T2V"
            self.image.set_note(f"The active model, {name}, is text-to-video only: jobs with an image use "
                                f"Step-Video-TI2V ({TI2V_REPO}), download it on Models.")

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if watched is self.prompt and event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent) \
                and event.matches(QKeySequence.StandardKey.Paste):
            mime = QGuiApplication.clipboard().mimeData()
            # pixels without text, or a file copied in a file manager; typed text and paths stay text
            if mime is not None and ((mime.hasImage() and not mime.hasText()) or (mime.hasUrls() and local_file_of(mime))):
                self.image.take_mime(mime)
                return True
        return super().eventFilter(watched, event)

    def _frames_changed(self, chunks: int) -> None:
        self.frames_text.setText(frames_label(chunks * FRAMES_PER_CHUNK))
        self.request_changed.emit()

    def _dimensions(self) -> tuple[int, int]:
        key = self.size.currentData()
        if key != "custom":
            return SIZES[key]
        ok = True
        values = {}
        for name, edit in (("width", self.custom_width), ("height", self.custom_height)):
            try:
                values[name] = parse_dimension(edit.text(), name)
                edit.setProperty("invalid", False)
            except InvalidRequest:
                edit.setProperty("invalid", True)
                ok = False
            edit.style().unpolish(edit)
            edit.style().polish(edit)
        if not ok:  # raise the first problem, worded for the user
            parse_dimension(self.custom_width.text(), "width")
            parse_dimension(self.custom_height.text(), "height")
        return values["height"], values["width"]

    def request(self) -> GenerationRequest:
        """The request as the form stands; raises InvalidRequest with one line naming what is allowed."""
        seed_text = self.seed.text().strip()
        if not seed_text.isdigit():
            raise InvalidRequest("the seed must be a whole number from 0 to 2^63-1")
        height, width = self._dimensions()
        preset = self.preset.value()
        image = self._image_fields(height, width, preset)
        negative = self.negative.toPlainText()
        request = GenerationRequest(
            prompt=self.prompt.toPlainText().strip(),
            negative_prompt=None if negative == OFFICIAL_NEGATIVE_PROMPT else negative,
            positive_suffix=None if self.suffix.isChecked() else "",
            preset=preset,
            # None means "the preset's": a model's own default (e.g. 4 for a test model) is sent as a number
            steps=None if self.steps.spin.value() == PRESETS[preset].steps else self.steps.spin.value(),
            cfg=None if self.cfg.is_default() else round(self.cfg.spin.value(), 3),
            shift=None if self.shift.is_default() else round(self.shift.spin.value(), 3),
            height=height,
            width=width,
            frames=self.frames.value() * FRAMES_PER_CHUNK,
            seed=int(seed_text),
            profile=self.profile.currentData(),
            **image,
        )
        return validate(request)

    def _image_fields(self, height: int, width: int, preset: str) -> dict:
        """image, motion and model of the request: an image job runs on the TI2V model (the active one
        when it is a TI2V folder); raises InvalidRequest when the image and the model do not go together."""
        source = self.image.source
        ti2v_active = self._defaults is not None and self._defaults.image_to_video
        if source is None:
            if ti2v_active:
                raise InvalidRequest(f"{self._defaults.name} is an image-to-video model: add an image above, "
                                     "or choose a text-to-video model on Models")
            return {"model": self._model} if self._model else {}
        if preset != "standard":
            raise InvalidRequest(f"the {preset} preset has no image-to-video model; choose Standard, "
                                 "or remove the image")
        check_image_size(source, height, width)
        return {"image": str(source.path), "motion": self.image.motion.value(),
                "model": self._model if ti2v_active else TI2V_REPO}

    def settings_request(self) -> GenerationRequest:
        """The form's settings with a stand-in prompt (for importing a file of prompts)."""
        text = self.prompt.toPlainText()
        self.prompt.blockSignals(True)
        self.prompt.setPlainText(text if text.strip() else "prompt")
        try:
            return self.request()
        finally:
            self.prompt.setPlainText(text)
            self.prompt.blockSignals(False)

    def load_request(self, request: GenerationRequest) -> None:
        """Fill the form from a request (reuse settings, a dropped mp4). Sizes that are not presets become custom."""
        if request.image is None:
            self.image.clear()
        else:  # before the size: a reused request keeps its own size, whatever the image's orientation
            self.image.set_path(request.image, user=False)
            self.image.motion.set_value(request.effective_motion)
        self.prompt.setPlainText(request.prompt)
        self.negative.setPlainText(request.effective_negative)
        self.suffix.setChecked(request.effective_suffix != "")
        self.set_preset(request.preset)
        self.steps.spin.setValue(request.effective_steps)
        self.cfg.spin.setValue(request.effective_cfg)
        self.shift.spin.setValue(request.effective_shift)
        key = next((k for k, hw in SIZES.items() if hw == (request.height, request.width)), "custom")
        self.size.setCurrentIndex(self.size.findData(key))
        if key == "custom":
            self.custom_width.setText(str(request.width))
            self.custom_height.setText(str(request.height))
        if request.frames % FRAMES_PER_CHUNK == 0 and 1 <= request.frames // FRAMES_PER_CHUNK <= MAX_CHUNKS:
            self.frames.setValue(request.frames // FRAMES_PER_CHUNK)
        self.seed.setText(str(request.seed))
        self.lock.setChecked(True)  # reusing settings means this exact video again
        self.set_profile(request.profile)

    def variation_count(self) -> int:
        return self.variations.value()

    def _variations_changed(self, n: int) -> None:
        self.add_button.setText(f"Add {n} to queue" if n > 1 else "Add to queue")

    def begin_edit(self, job_id: int, request: GenerationRequest, checkpoint_step: int | None = None) -> None:
        """Open a queued job's request for editing: "Update job" replaces "Add to queue" until done."""
        self.load_request(request)
        self.edit_bar.begin(job_id, checkpoint_step)
        for w in (self.add_button, self.next_button, self.variations):
            w.hide()

    def end_edit(self) -> None:
        self.edit_bar.end()
        for w in (self.add_button, self.next_button, self.variations):
            w.show()

    @property
    def editing_job(self) -> int | None:
        return self.edit_bar.job_id

    def _submit(self, front: bool) -> None:
        try:
            request = self.request()
        except InvalidRequest as exc:
            self.error.setText(str(exc))
            return
        if self._fit is not None and self._fit.level == "no":
            return
        if self.editing_job is not None:
            self.update_requested.emit(self.editing_job, request)
            return
        self.submitted.emit(request, front)
        if not self.lock.isChecked():
            self.roll_seed()

    # ---- live feedback -------------------------------------------------------------------------
    def _schedule(self) -> None:
        self._count_timer.start()
        self._fit_timer.start()

    def _update_counts(self) -> None:
        c = theme.colors()
        if self._counter is None:
            for label, name in ((self.llm_count, "Step-LLM"), (self.clip_count, "CLIP")):
                label.setText(f"{name}: no model installed")
                label.setStyleSheet(f"color: {c.muted}")
            return
        text = self.prompt.toPlainText().strip()
        text += OFFICIAL_POSITIVE_SUFFIX if self.suffix.isChecked() and text else ""
        counts = self._counter.count(text) if text else None
        for label, name, n, limit, cut in (
            (self.llm_count, "Step-LLM", counts and counts.llm, counts.llm_max if counts else 320, counts and counts.llm_cut),
            (self.clip_count, "CLIP", counts and counts.clip, counts.clip_max if counts else 77, counts and counts.clip_cut),
        ):
            label.setText(f"{name} {n or 0} / {limit}" + (" · will be cut" if cut else ""))
            label.setStyleSheet(f"color: {c.warn if cut else c.muted}; font-weight: {600 if cut else 400}")

    def _update_fit(self) -> None:
        try:
            request = self.request()
            self.error.setText(self._image_problem)
        except InvalidRequest as exc:
            # An empty prompt is not an error yet: the user has not started typing.
            self.error.setText("" if not self.prompt.toPlainText().strip() and "prompt" in str(exc) else str(exc))
            self._set_buttons(False)
            if "prompt" not in str(exc):
                return
            request = None
        fit = None
        if self._predict is not None:
            try:
                fit = self._predict(request or GenerationRequest(prompt="x", **self._partial_fields()))
            except InvalidRequest as exc:
                fit = FitEstimate("no", str(exc))
        self._fit = fit
        if fit is None:
            self.fit_text.setText("No prediction: the memory planner is not available.")
        else:
            self.fit_text.setText(fit.text + (f"\n{fit.advice}" if fit.advice else ""))
        self.fit_light.setProperty("fit", {"ok": "green", "tight": "amber", "no": "red"}.get(fit.level if fit else "", ""))
        self.fit_light.style().unpolish(self.fit_light)
        self.fit_light.style().polish(self.fit_light)
        self.fit_light.setAccessibleDescription({"ok": "fits", "tight": "tight", "no": "does not fit"}.get(
            fit.level if fit else "", "unknown"))
        self._set_buttons(request is not None and (fit is None or fit.level != "no"))

    def _partial_fields(self) -> dict:
        try:
            height, width = self._dimensions()
        except InvalidRequest:
            height, width = SIZES["landscape"]
        image = {"image": str(self.image.source.path), "motion": self.image.motion.value(), "model": TI2V_REPO} \
            if self.image.source is not None else {}
        return {"height": height, "width": width, "frames": self.frames.value() * FRAMES_PER_CHUNK,
                "preset": self.preset.value(), "profile": self.profile.currentData(), **image}

    def _set_buttons(self, enabled: bool) -> None:
        self.add_button.setEnabled(enabled)
        self.next_button.setEnabled(enabled)
        self.edit_bar.update.setEnabled(enabled)
