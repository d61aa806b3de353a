"""The Gallery page and everything that reads a finished video's settings back: reuse, drop, open a file."""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QFile, QObject, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication

from stepvideo.api import GenerationRequest
from stepvideo.errors import InvalidRequest, StepVideoError
from stepvideo_desktop.views.gallery_model import GalleryItem, read_sidecar, source_image_of

if TYPE_CHECKING:
    from stepvideo_desktop.services import AppServices

log = logging.getLogger(__name__)

VIDEO_SUFFIX = ".mp4"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")  # opened as Create's source image


def move_to_trash(path: Path) -> str | None:
    """The file's new place in the desktop trash, or None when it could not be moved there."""
    file = QFile(str(path))
    return file.fileName() if file.moveToTrash() else None  # on success fileName() is the trash path


def settings_of(path: Path) -> GenerationRequest:
    """The request a video made by this app was rendered with, from its sidecar JSON or mp4 metadata.

    Raises InvalidRequest with one line saying why the file cannot be used.
    """
    if not path.is_file():
        raise InvalidRequest(f"{path} does not exist or is not a file.")
    if path.suffix.lower() != VIDEO_SUFFIX:
        raise InvalidRequest(f"{path.name} is not an mp4 video; StepVideo opens only the .mp4 videos it made, "
                             "to load their settings into Create.")
    data = read_sidecar(path)
    if data is None:
        try:
            from stepvideo.engine import video_io

            data = video_io.read_metadata(path)
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            log.warning("reading the metadata of %s failed: %s", path, exc)
            data = None
    if not data or not isinstance(data.get("request"), dict):
        raise InvalidRequest(f"{path.name} has no StepVideo settings (it was not made by this app).")
    request = dict(data["request"])
    request.pop("output", None)  # a reused request writes a new file
    kept = source_image_of(path, data)
    if kept is not None:  # the copy beside the video outlives the job's own copy and the user's file
        request["image"] = str(kept)
    try:
        return GenerationRequest.from_dict(request)
    except (StepVideoError, TypeError, ValueError) as exc:
        raise InvalidRequest(f"The settings in {path.name} cannot be used: {exc}") from exc


class GalleryController(QObject):
    def __init__(self, app: AppServices) -> None:
        super().__init__(app)
        self.app = app
        self._trashed: list[tuple[str, str]] = []  # (original, place in the trash) of the last delete

    def wire(self) -> None:
        gallery = self.app.gallery
        gallery.reuse_requested.connect(self.reuse_item)
        gallery.open_folder_requested.connect(
            lambda item: QDesktopServices.openUrl(QUrl.fromLocalFile(str(item.path.parent))))
        gallery.copy_prompt_requested.connect(lambda item: QGuiApplication.clipboard().setText(item.prompt))
        gallery.delete_requested.connect(self.delete_video)
        gallery.compare_requested.connect(self.compare_variations)
        gallery.undo_requested.connect(self.undo_delete)
        self.app.window.video_dropped.connect(self.load_video_settings)

    def reload(self) -> None:
        gallery = self.app.gallery
        current = gallery.current()
        self.app.gallery_model.load(self.app.store.value.output_path)
        gallery.set_variation_groups(self.variation_groups())
        if current is not None:
            gallery.select_path(str(current.path))

    def variation_groups(self) -> dict[str, list[str]]:
        """video path -> the videos of its variation group, from the queue's finished jobs (a group is
        known while its jobs are in the queue; "Clear finished" forgets it, the videos stay)."""
        by_group: dict[str, list[str]] = {}
        for job in self.app.queue.list(["done"]):
            if job.group_id and job.outputs.get("video"):
                by_group.setdefault(job.group_id, []).append(str(job.outputs["video"]))
        return {path: paths for paths in by_group.values() for path in paths}

    def compare_variations(self, item: GalleryItem):
        from stepvideo_desktop.views.variation_compare import VariationCompareDialog

        items = self.app.gallery.variations_of(item)
        if len(items) < 2:
            return None
        dialog = VariationCompareDialog(items, self.app.window)
        dialog.setModal(False)
        dialog.show()
        return dialog

    def reuse_item(self, item: GalleryItem) -> None:
        self.load_video_settings(str(item.path))

    def load_video_settings(self, path: str) -> bool:
        """Settings from the sidecar JSON (or the mp4's own metadata) into Create; a banner says why not."""
        return self.open_files([path])

    def open_files(self, paths: list[str]) -> bool:
        """Files given on the command line (the desktop entry's %F) or dropped: each mp4 made by the app
        loads its settings into Create (the last one wins), an image becomes Create's source image;
        anything else is named in one banner line."""
        app = self.app
        problems, loaded = [], None
        for path in paths:
            if Path(path).suffix.lower() in IMAGE_SUFFIXES:  # image-to-video: the image goes to Create
                if app.composer.image.set_path(path):
                    loaded = Path(path).name
                else:
                    problems.append(app.composer.error.text())
                continue
            try:
                request = settings_of(Path(path))
            except StepVideoError as exc:
                problems.append(str(exc))
                continue
            app.composer.load_request(request)
            loaded = Path(path).name
        if loaded is not None or problems:
            app.window.show_page("composer")
        if loaded is not None:
            app.window.statusBar().showMessage(f"Loaded the settings of {loaded}", 4000)
        if problems:
            more = f" (and {len(problems) - 1} more file(s) that could not be opened)" if len(problems) > 1 else ""
            app.window.banner.show_message(problems[0] + more, kind="warn")
        elif loaded is not None:
            app.window.banner.hide()
        return not problems

    def delete_video(self, item: GalleryItem) -> None:
        app = self.app
        if not app._confirm("Delete video", f"Move {item.path.name} (and its settings file) to the trash?"):
            return
        moved: list[tuple[str, str]] = []
        for path in (item.path, item.path.with_suffix(".json")):
            if not path.exists():
                continue
            where = move_to_trash(path)
            if where is None:
                app.gallery.banner.show_message(self._roll_back(moved, path.name))
                self.reload()
                return
            moved.append((str(path), where))
        self._trashed = moved
        self.reload()
        app.gallery.undo.show()
        app.gallery.banner.show_message(f"Moved {item.path.name} to the trash.", kind="info")

    @staticmethod
    def _roll_back(moved: list[tuple[str, str]], failed: str) -> str:
        """Put back what already moved (all or nothing); the message says where anything stuck is."""
        stuck = []
        for original, trashed in moved:
            try:
                shutil.move(trashed, original)
            except OSError as exc:
                log.error("could not restore %s from %s: %s", original, trashed, exc)
                stuck.append(f"{Path(original).name} could not be put back and is in the trash at {trashed} ({exc})")
        if stuck:
            return f"Could not move {failed} to the trash; " + "; ".join(stuck) + "."
        return f"Could not move {failed} to the trash; nothing was deleted."

    def undo_delete(self) -> None:
        app = self.app
        restored = self._trashed[0][0] if self._trashed else None
        while self._trashed:  # what was put back leaves the list, so a second Undo retries only the rest
            original, trashed = self._trashed[0]
            try:
                shutil.move(trashed, original)
            except OSError as exc:
                app.gallery.banner.show_message(f"Could not restore {Path(original).name} from {trashed}: {exc}")
                return
            self._trashed.pop(0)
        self.reload()
        app.gallery.banner.hide()
        if restored:
            app.gallery.select_path(restored)
