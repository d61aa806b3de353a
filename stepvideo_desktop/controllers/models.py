"""The Models page over the hub client: download (with resume), cancel, verify, delete, use, clean;
and model folders the user already has on disk (checked, listed in the settings, never deleted)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject

from stepvideo.errors import StepVideoError
from stepvideo.presets import BASE_REPO, TURBO_REPO
from stepvideo_desktop import local_models, model_defaults
from stepvideo_desktop.token_counter import TokenCounter
from stepvideo_desktop.views.local_model_card import LocalModelCard
from stepvideo_desktop.views.models_page import SIZED_CARDS, ModelCard, download_size_text

if TYPE_CHECKING:
    from stepvideo_desktop.services import AppServices


class ModelsController(QObject):
    def __init__(self, app: AppServices) -> None:
        super().__init__(app)
        self.app = app

    def wire(self) -> None:
        app, hub, page = self.app, self.app.hub, self.app.models
        hub.installed.connect(self._on_installed)
        hub.progress.connect(self._on_progress)
        hub.finished.connect(self._on_finished)
        hub.failed.connect(self._on_failed)
        hub.online_changed.connect(app.window.status_view.set_online)
        hub.online_changed.connect(page.set_online)
        hub.planned.connect(self._on_planned)
        hub.sized.connect(self._on_sized)
        hub.online_changed.connect(lambda online: online and self._ask_sizes())
        for card in page.cards.values():
            self._wire_card(card)
        page.card_added = self._wire_card
        page.add_repo_requested.connect(self.download)
        page.clean_requested.connect(self._clean)
        page.plan_requested.connect(hub.plan)
        page.change_folder_requested.connect(lambda: app.window.show_page("settings"))
        page.local_card_added = self._wire_local_card
        page.local_folder_chosen.connect(self.add_local_folder)
        self.show_local()

    def _wire_card(self, card: ModelCard) -> None:
        card.download_requested.connect(self.download)
        card.cancel_requested.connect(lambda _repo: self.app.hub.cancel_download())
        card.verify_requested.connect(self.app.hub.verify)
        card.delete_requested.connect(self.delete)
        card.use_requested.connect(self.use)

    def _wire_local_card(self, card: LocalModelCard) -> None:
        card.use_requested.connect(self.use_local)
        card.remove_requested.connect(self.remove_local)

    # ---- the active model ------------------------------------------------------------------------
    def active_model(self) -> str:
        return self.app.store.value.active_model or BASE_REPO

    def refresh_choice(self) -> None:
        """Tell Create which model new jobs use, with that model's tokenizers for the live counts."""
        from stepvideo import hub

        model = self.active_model()
        cache = self.app.store.value.models_dir or None
        transformer = None
        try:  # the tokenizers live with the components (a transformer-only folder takes them from the base)
            folders = hub.resolve_model_roots(model, None, cache)
            root, transformer = folders.components, folders.transformer
        except StepVideoError:
            try:
                root = hub.resolve_model_dir(model, None, cache)
            except StepVideoError:
                root = None
        defaults = model_defaults.for_model(model, transformer)
        self.app.composer.set_model("" if model == BASE_REPO else model, TokenCounter.for_model_root(root), defaults)
        self.app.models.set_active(model)

    # ---- actions ---------------------------------------------------------------------------------
    def download(self, repo: str, revision: str = "main") -> None:
        app = self.app
        if not repo:
            app.models.banner.show_message("Type a repository id such as stepfun-ai/stepvideo-t2v.")
            return
        if app.hub.downloading:
            app.models.banner.show_message(f"{app.hub.downloading} is downloading; wait for it or cancel it first.",
                                           kind="warn")
            return
        app.models.banner.hide()
        app.models.card(repo).show_progress({"phase": "start", "bytes_done": 0, "bytes_total": 1})
        app.hub.download(repo, revision)

    def delete(self, repo: str, commit: str) -> None:
        app = self.app
        if app.hub.downloading == repo:
            app.models.banner.show_message("Cancel the download before deleting this model.", kind="warn")
            return
        if not app._confirm("Delete model", f"Delete {repo} ({commit[:10]}) from disk? You can download it again later."):
            return
        app.hub.delete(repo, commit)

    def use(self, repo: str) -> None:
        app = self.app
        if repo == TURBO_REPO:  # turbo is a preset over the base model's encoders and VAE
            app.store.update(default_preset="turbo", active_model="")
            app.composer.set_preset("turbo")
        else:
            app.store.update(active_model="" if repo == BASE_REPO else repo)
        app.window.statusBar().showMessage(f"New jobs use {repo}", 4000)

    # ---- folders on disk ------------------------------------------------------------------------
    def show_local(self) -> None:
        cache = self.app.store.value.models_dir or None
        self.app.models.show_local([local_models.describe(p, cache) for p in self.app.store.value.local_models])
        self.app.models.set_active(self.active_model())

    def add_local_folder(self, folder: str) -> bool:
        """Check the folder with the engine's file lists; list it and make it active, or say in one line why not."""
        app = self.app
        try:
            model = local_models.check_folder(folder, app.store.value.models_dir or None)
        except StepVideoError as exc:
            app.models.banner.show_message(f"This folder cannot be used: {exc}")
            return False
        listed = app.store.value.local_models
        app.store.update(local_models=listed if model.path in listed else (*listed, model.path),
                         active_model=model.path)
        app.models.banner.hide()
        self.show_local()
        app.window.statusBar().showMessage(f"New jobs use {model.path}", 4000)
        return True

    def use_local(self, folder: str) -> None:
        """Checked again: the folder may have moved or lost a file since it was listed."""
        self.add_local_folder(folder)

    def remove_local(self, folder: str) -> None:
        """Forget the folder (its files stay); if it was in use, new jobs go back to the base model."""
        app = self.app
        s = app.store.value
        changes: dict = {"local_models": tuple(p for p in s.local_models if p != folder)}
        if s.active_model == folder:
            changes["active_model"] = ""
        app.store.update(**changes)
        self.show_local()
        app.window.statusBar().showMessage(f"Removed {folder} from the list; its files are still on disk", 4000)

    def _clean(self) -> None:
        if self.app._confirm("Clean partial files", "Delete unfinished download pieces that no download can resume?"):
            self.app.hub.clean()

    # ---- hub results -----------------------------------------------------------------------------
    def _on_installed(self, versions: list) -> None:
        from stepvideo import hub

        app = self.app
        app.models.show_installed(versions)
        root = hub.cache_root(app.store.value.models_dir or None)
        used = sum(v.size_on_disk for v in versions)
        try:
            free = shutil.disk_usage(root if root.exists() else root.parent if root.parent.exists() else Path.home()).free
        except OSError:
            free = None
        app.models.set_folder(str(root), used, free)
        self.refresh_choice()
        if app.hub.online:  # what is installed changed: so may what TI2V still needs
            self._ask_sizes()

    def _ask_sizes(self) -> None:
        for repo in SIZED_CARDS:
            card = self.app.models.cards.get(repo)
            if card is None:
                continue
            if card.status.text() == "installed":
                card.show_size("")
            else:
                card.show_size("Download size: checking…")
                self.app.hub.size_of(repo)

    def _on_sized(self, repo: str, plan, message: str) -> None:
        card = self.app.models.cards.get(repo)
        if card is not None:
            card.show_size(download_size_text(plan) if plan is not None else f"Download size unknown: {message}")

    def _on_progress(self, ev: dict) -> None:
        repo = ev.get("repo") or self.app.hub.downloading
        if repo:
            self.app.models.card(repo).show_progress(ev)
        if ev.get("phase") == "done" and ev.get("note"):  # e.g. a models folder without symlinks
            self.app.models.banner.show_message(ev["note"], kind="warn")

    def _on_planned(self, plan) -> None:
        verdict = "fits" if plan.fits else "does NOT fit"
        self.app.models.plan_text.setText(f"{plan.summary()} — {verdict}.")

    def _on_finished(self, name: str, result) -> None:
        app = self.app
        if name in ("download", "delete", "clean", "verify"):
            app.hub.refresh(online=app.hub.online)
        if name == "download":
            app.notify("Download complete", str(result))
            app.hub._set_online(True)
        elif name == "verify":
            bad = list(result.corrupt) + list(result.missing)
            if bad:
                app.models.banner.show_message(f"{result.repo_id}: {len(bad)} file(s) damaged or missing ({bad[0]}…). "
                                               "Press Resume download to fetch exactly those again.", kind="warn")
            else:
                app.models.banner.show_message(f"{result.repo_id}: all {result.checked} files verified.", kind="info")
        elif name == "clean":
            quantized = f" and {len(result.quantized_removed)} quantized copies of deleted models" \
                if result.quantized_removed else ""
            app.models.banner.show_message(f"Cleaned {len(result.removed)} partial files{quantized}.", kind="info")

    def _on_failed(self, name: str, message: str, cancelled: bool) -> None:
        app = self.app
        if name == "online":
            return
        if name == "download":
            app.hub.refresh(online=False)
        if cancelled:
            app.models.banner.show_message(message, kind="info")
        else:
            app.models.banner.show_message(f"{name.capitalize()} failed: {message}")
