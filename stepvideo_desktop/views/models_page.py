"""The Models page over stepvideo.hub: one card per known model, versions, download/verify/delete/use,
and cards for model folders the user already has on disk ("Use a folder on disk…")."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from stepvideo.presets import BASE_REPO, TI2V_REPO, TURBO_REPO
from stepvideo_desktop import theme
from stepvideo_desktop.local_models import LocalModel
from stepvideo_desktop.views import icons
from stepvideo_desktop.views.local_model_card import LocalModelCard
from stepvideo_desktop.views.widgets import (
    GRID,
    Banner,
    Card,
    human_bytes,
    human_duration,
    muted,
    push_button,
    title,
)

MODEL_CARDS = (
    (BASE_REPO, "Step-Video-T2V", "The 30B text-to-video model with its text encoders and VAE. "
                                  "About 100 GB on disk; 50 steps per video."),
    (TURBO_REPO, "Step-Video-T2V Turbo", "A distilled transformer for 10–15 steps. It needs the base model's "
                                         "text encoders and VAE, which are downloaded with it if missing."),
    (TI2V_REPO, "Step-Video-TI2V", "The 30B image-to-video model: animates an image under a prompt, with a "
                                   "motion score. Its text encoders and VAE are T2V's: when T2V is installed they "
                                   "are shared, not downloaded again."),
)
SIZED_CARDS = (TI2V_REPO,)  # cards that show what a download would fetch, given what is installed
def pick_directory(parent: QWidget, start: str) -> str:
    """The folder the user picked, or "" when they cancelled (tests replace ModelsPage.pick_directory)."""
    return QFileDialog.getExistingDirectory(parent, "Use a model folder on disk", start,
                                            QFileDialog.Option.ShowDirsOnly)


STATUS_WORDS = {"complete": "installed", "partial": "partial download", "corrupt": "corrupt files", "unknown": "installed (not checked)"}


def version_line(v) -> str:
    refs = ", ".join(v.refs) or "no branch"
    size = human_bytes(v.size_on_disk)
    if v.bytes_expected:
        size = f"{human_bytes(v.size_on_disk)} of {human_bytes(v.bytes_expected)}"
    status = STATUS_WORDS.get(v.status, v.status)
    line = f"{v.commit[:10]} · {refs} · {size} · {status}"
    if v.update_available:
        line += " · update available"
    quantized = v.quantized
    if quantized:  # derived copies in the cache folder; Delete removes them with the version
        kinds = ", ".join(f"{c.component} {c.qtype}" for c in quantized)
        line += f" · quantized copies {human_bytes(sum(c.size for c in quantized))} ({kinds})"
    return line


def download_size_text(plan) -> str:
    """A hub.DownloadPlan in words: what is left to fetch, and what installed models already provide."""
    shared = sum(f.size for p in plan.parts() for f in p.files if f.state == "shared")
    there = plan.bytes_on_disk - shared
    text = f"Download size: {human_bytes(plan.bytes_to_fetch)} of {human_bytes(plan.total_bytes)}"
    extras = []
    if shared:
        extras.append(f"{human_bytes(shared)} shared with models already installed")
    if there:
        extras.append(f"{human_bytes(there)} already downloaded")
    return text + (f" ({'; '.join(extras)})" if extras else "") + ("" if plan.fits else " — does NOT fit on the disk")


class ModelCard(Card):
    download_requested = Signal(str, str)  # repo, revision
    cancel_requested = Signal(str)
    verify_requested = Signal(str, str)
    delete_requested = Signal(str, str)
    use_requested = Signal(str)

    def __init__(self, repo: str, name: str, blurb: str, parent: QWidget | None = None) -> None:
        super().__init__("", parent)
        self.repo = repo
        self.setAccessibleName(f"Model {name}")
        head = QHBoxLayout()
        head.setSpacing(GRID)
        self.title = title(name, "heading")
        self.active_badge = QLabel("In use")
        self.active_badge.setStyleSheet(f"color: {theme.colors().accent_text}; background: {theme.colors().accent};"
                                        " border-radius: 8px; padding: 2px 8px; font-weight: 600;")
        self.active_badge.hide()
        head.addWidget(self.title)
        head.addWidget(self.active_badge)
        head.addStretch(1)
        self.status = QLabel("not installed")
        self.status.setAccessibleName(f"{name} status")
        head.addWidget(self.status)
        self.body.addLayout(head)
        desc = muted(f"{blurb}\n{repo}")
        desc.setWordWrap(True)
        self.body.addWidget(desc)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.bar.setFixedHeight(8)
        self.bar.setAccessibleName(f"{name} download progress")
        self.bar.hide()
        self.body.addWidget(self.bar)
        self.progress_text = muted()
        self.progress_text.hide()
        self.body.addWidget(self.progress_text)
        self.size_line = muted()  # e.g. TI2V: what a download would fetch next to what is installed
        self.size_line.setWordWrap(True)
        self.size_line.setAccessibleName(f"{name} download size")
        self.size_line.hide()
        self.body.addWidget(self.size_line)
        self.versions = QVBoxLayout()
        self.versions.setSpacing(GRID // 2)
        self.body.addLayout(self.versions)
        actions = QHBoxLayout()
        actions.setSpacing(GRID)
        self.revision = QLineEdit("main")
        self.revision.setAccessibleName(f"{name} revision to download")
        self.revision.setToolTip("Branch, tag or commit to download")
        self.revision.setMaximumWidth(20 * GRID)
        self.download = push_button("Download", "download", primary=True)
        self.download.setAccessibleName(f"Download {name}")
        self.cancel = push_button("Cancel", "close")
        self.cancel.setAccessibleName(f"Cancel the download of {name}")
        self.cancel.hide()
        self.verify = push_button("Verify", "shield")
        self.verify.setAccessibleName(f"Verify {name}")
        self.delete = push_button("Delete", "trash")
        self.delete.setAccessibleName(f"Delete {name}")
        self.use = push_button("Use", "check")
        self.use.setAccessibleName(f"Use {name}")
        for w in (self.revision, self.download, self.cancel, self.verify, self.delete, self.use):
            actions.addWidget(w)
        actions.addStretch(1)
        self.body.addLayout(actions)
        self.download.clicked.connect(lambda: self.download_requested.emit(self.repo, self.revision.text().strip() or "main"))
        self.cancel.clicked.connect(lambda: self.cancel_requested.emit(self.repo))
        self.verify.clicked.connect(lambda: self._installed and self.verify_requested.emit(self.repo, self._installed[0].commit))
        self.delete.clicked.connect(lambda: self._installed and self.delete_requested.emit(self.repo, self._installed[0].commit))
        self.use.clicked.connect(lambda: self.use_requested.emit(self.repo))
        self._installed: list = []
        self.show_versions([])

    def show_size(self, text: str) -> None:
        self.size_line.setText(text)
        self.size_line.setVisible(bool(text))

    def show_versions(self, versions: list) -> None:
        self._installed = sorted(versions, key=lambda v: (v.status != "complete", v.commit))
        while self.versions.count():
            item = self.versions.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        c = theme.colors()
        if not versions:
            self.status.setText("not installed")
            self.status.setStyleSheet(f"color: {c.muted}")
        else:
            best = self._installed[0]
            word = STATUS_WORDS.get(best.status, best.status)
            color = {"complete": c.ok, "partial": c.warn, "corrupt": c.bad}.get(best.status, c.muted)
            self.status.setText(word)
            self.status.setStyleSheet(f"color: {color}; font-weight: 600;")
            for v in self._installed:
                row = QLabel(version_line(v))
                row.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
                row.setToolTip(str(v.path))
                self.versions.addWidget(row)
        installed = bool(versions)
        complete = any(v.status in ("complete", "unknown") for v in versions)
        self.verify.setEnabled(installed)
        self.delete.setEnabled(installed)
        self.use.setEnabled(complete)
        why = "" if installed else "Not installed: download it first"
        self.verify.setToolTip(why or "Check every file against its hash")
        self.delete.setToolTip(why or "Delete this version from disk")
        self.use.setToolTip(why if not complete else "New jobs use this model")
        self.download.setText("Resume download" if installed and not complete else "Download")
        self.set_active(self.active_badge.property("wanted") is True)

    def show_progress(self, ev: dict) -> None:
        phase = ev.get("phase")
        done, total = ev.get("bytes_done", 0), ev.get("bytes_total", 0) or 1
        active = phase in ("start", "progress", "file_done")
        self.bar.setVisible(active)
        self.progress_text.setVisible(True)
        self.cancel.setVisible(active)
        self.download.setEnabled(not active)
        self.bar.setValue(int(done / total * 1000))
        if active:
            speed = ev.get("speed_bps") or 0
            text = f"downloading {done / total:.0%} ({human_bytes(done)} of {human_bytes(total)}"
            if speed:
                text += f", {human_bytes(speed)}/s, {human_duration(ev.get('eta_seconds'))} left"
            self.progress_text.setText(text + ")")
            self.status.setText(f"downloading {done / total:.0%}")
        elif phase == "done":
            self.progress_text.setText("Download complete.")
        elif phase == "cancelled":
            self.progress_text.setText("Download paused; press Resume download to continue where it stopped.")
        elif phase == "failed":
            self.progress_text.setText(f"Download stopped: {ev.get('error', '')}")

    def set_online(self, online: bool | None) -> None:
        """Offline, Download is not the highlighted action (it would fail); pressing it checks again."""
        offline = online is False
        self.download.setProperty("primary", not offline)
        c = theme.colors()
        self.download.setIcon(icons.icon("download", c.text if offline else c.accent_text))
        self.download.setToolTip("Offline: the hub cannot be reached; pressing Download tries again" if offline else "")
        self.download.style().unpolish(self.download)
        self.download.style().polish(self.download)

    def set_active(self, active: bool) -> None:
        self.active_badge.setProperty("wanted", active)
        shown = active and bool(self._installed)
        self.active_badge.setVisible(shown)
        self.use.setText("In use" if shown else "Use")


class ModelsPage(QWidget):
    add_repo_requested = Signal(str, str)
    clean_requested = Signal()
    plan_requested = Signal(str)
    change_folder_requested = Signal()
    local_folder_chosen = Signal(str)  # a folder picked with "Use a folder on disk…"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("page")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(3 * GRID, 3 * GRID, 3 * GRID, 3 * GRID)
        outer.setSpacing(2 * GRID)
        head = QHBoxLayout()
        head.addWidget(title("Models"))
        head.addStretch(1)
        self.network_icon = QLabel()
        self.network = QLabel()
        head.addWidget(self.network_icon)
        head.addWidget(self.network)
        outer.addLayout(head)
        self.banner = Banner()
        outer.addWidget(self.banner)

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        body = QWidget()
        self.col = QVBoxLayout(body)
        self.col.setContentsMargins(0, 0, GRID, 0)
        self.col.setSpacing(2 * GRID)
        scroll.setWidget(body)
        outer.addWidget(scroll, 1)

        self._hub_ready = False  # a downloaded model is complete (set by show_installed)
        self.first_run = Card("Get started: download the model")
        text = QLabel("No model is installed yet. Step-Video-T2V needs about 100 GB of disk: the 30B transformer "
                      "(~59 GB), the Step-LLM text encoder (~39 GB), CLIP and the VAE (~3 GB). Turbo adds its own "
                      "transformer (~59 GB). Downloads resume where they stopped. Already have the weights in a "
                      "folder (huggingface-cli --local-dir, DiffSynth, ComfyUI)? Use it where it is.")
        text.setWordWrap(True)
        self.first_run.body.addWidget(text)
        row = QHBoxLayout()
        self.check_size = push_button("Check size and free disk", "info")
        self.check_size.clicked.connect(lambda: self.plan_requested.emit(BASE_REPO))
        self.plan_text = muted()
        self.plan_text.setWordWrap(True)
        self.first_run_folder = push_button("Use a folder on disk…", "folder")
        self.first_run_folder.setAccessibleName("Use model weights already in a folder on disk")
        self.first_run_folder.clicked.connect(self._choose_folder)
        row.addWidget(self.check_size)
        row.addWidget(self.first_run_folder)
        row.addWidget(self.plan_text, 1)
        self.first_run.body.addLayout(row)
        self.col.addWidget(self.first_run)

        self.cards: dict[str, ModelCard] = {}
        for repo, name, blurb in MODEL_CARDS:
            self._add_card(repo, name, blurb)
        self._custom_anchor = self.col.count()

        self.pick_directory = pick_directory  # replaceable: tests answer the dialog without showing it
        self.local_cards: dict[str, LocalModelCard] = {}
        local = Card("Use weights you already have")
        text = muted("A folder in the Hugging Face layout of stepfun-ai/stepvideo-t2v (transformer/, step_llm/, "
                     "hunyuan_clip/, vae/), e.g. from huggingface-cli download --local-dir. Its files are checked, "
                     "used where they are, and never moved or deleted.")
        text.setWordWrap(True)
        local.body.addWidget(text)
        row = QHBoxLayout()
        self.use_folder = push_button("Use a folder on disk…", "folder")
        self.use_folder.setAccessibleName("Use a model folder on disk")
        self.use_folder.clicked.connect(self._choose_folder)
        row.addWidget(self.use_folder)
        row.addStretch(1)
        local.body.addLayout(row)
        self.col.addWidget(local)
        self._local_anchor = self.col.count()

        add = Card("Add a repository")
        row = QHBoxLayout()
        row.setSpacing(GRID)
        self.repo_edit = QLineEdit()
        self.repo_edit.setPlaceholderText("owner/name, e.g. stepfun-ai/stepvideo-t2v")
        self.repo_edit.setAccessibleName("Repository id")
        self.repo_revision = QLineEdit("main")
        self.repo_revision.setAccessibleName("Repository revision")
        self.repo_revision.setMaximumWidth(20 * GRID)
        add_button = push_button("Download", "download")
        add_button.setAccessibleName("Download this repository")
        add_button.clicked.connect(lambda: self.add_repo_requested.emit(self.repo_edit.text().strip(),
                                                                        self.repo_revision.text().strip() or "main"))
        row.addWidget(self.repo_edit, 1)
        row.addWidget(self.repo_revision)
        row.addWidget(add_button)
        add.body.addLayout(row)
        self.col.addWidget(add)
        self.col.addStretch(1)

        foot = QHBoxLayout()
        foot.setSpacing(GRID)
        self.folder = muted()
        self.folder.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        change = push_button("Change…", "folder")
        change.setAccessibleName("Change the model folder")
        change.clicked.connect(self.change_folder_requested)
        clean = push_button("Clean partial files", "trash")
        clean.clicked.connect(self.clean_requested)
        foot.addWidget(self.folder, 1)
        foot.addWidget(change)
        foot.addWidget(clean)
        outer.addLayout(foot)
        self.set_online(None)

    def _add_card(self, repo: str, name: str, blurb: str) -> ModelCard:
        card = ModelCard(repo, name, blurb)
        card.set_online(getattr(self, "_online", None))
        self.cards[repo] = card
        self.col.insertWidget(self.col.count() if not hasattr(self, "_custom_anchor") else self._custom_anchor, card)
        if hasattr(self, "_custom_anchor"):
            self._custom_anchor += 1
            self._local_anchor += 1
        return card

    # ---- folders on disk -------------------------------------------------------------------------
    def _choose_folder(self) -> None:
        # Start next to the last folder picked: model folders tend to live side by side.
        start = str(Path(next(reversed(self.local_cards))).parent) if self.local_cards else str(Path.home())
        folder = self.pick_directory(self, start)
        if folder:
            self.local_folder_chosen.emit(folder)

    def show_local(self, models: list[LocalModel]) -> None:
        """One card per listed folder, in list order; cards of folders no longer listed go away."""
        wanted = {m.path for m in models}
        for path in [p for p in self.local_cards if p not in wanted]:
            card = self.local_cards.pop(path)
            self.col.removeWidget(card)
            card.deleteLater()
        for i, model in enumerate(models):
            card = self.local_cards.get(model.path)
            if card is None:
                card = self.local_cards[model.path] = LocalModelCard(model)
                self.col.insertWidget(self._local_anchor + i, card)
                self.local_card_added(card)
            else:
                card.show_model(model)
        self._update_first_run()

    def local_card_added(self, card: LocalModelCard) -> None:
        """Hook for the controller to wire a new local folder card."""

    def card(self, repo: str) -> ModelCard:
        if repo not in self.cards:
            card = self._add_card(repo, repo, "A repository in the Step-Video hub layout.")
            self.card_added(card)
        return self.cards[repo]

    def card_added(self, card: ModelCard) -> None:
        """Hook for the controller to wire a card created for a custom repository."""

    def show_installed(self, versions: list) -> None:
        by_repo: dict[str, list] = {}
        for v in versions:
            by_repo.setdefault(v.repo_id, []).append(v)
        for repo in by_repo:
            self.card(repo)
        for repo, card in self.cards.items():
            card.show_versions(by_repo.get(repo, []))
        self._hub_ready = any(v.status in ("complete", "unknown") for v in versions)
        self._update_first_run()

    def _update_first_run(self) -> None:
        """The empty state only while neither a downloaded model nor a usable folder on disk exists."""
        local_ready = any(card.usable for card in self.local_cards.values())
        self.first_run.setVisible(not (self._hub_ready or local_ready))

    def set_online(self, online: bool | None) -> None:
        self._online = online
        for card in self.cards.values():
            card.set_online(online)
        c = theme.colors()
        if online is None:
            self.network.setText("checking the hub…")
            self.network_icon.setPixmap(icons.icon("online", c.muted).pixmap(16, 16))
        else:
            self.network.setText("online" if online else "offline: downloads are unavailable")
            self.network_icon.setPixmap(icons.icon("online" if online else "offline", c.ok if online else c.warn).pixmap(16, 16))
        self.network.setAccessibleName("Hub connection: " + self.network.text())

    def set_folder(self, folder: str, used: int | None, free: int | None) -> None:
        self.folder.setText(f"Model folder: {folder} · used {human_bytes(used)} · free {human_bytes(free)}")

    def set_active(self, repo: str) -> None:
        for key, card in self.cards.items():
            card.set_active(key == repo)
        for path, card in self.local_cards.items():
            card.set_active(path == repo)
