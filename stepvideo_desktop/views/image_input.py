"""The Create page's source image (image-to-video): drop, paste or browse; a thumbnail with the crop the
chosen video size keeps; the motion slider; Remove returns the page to text-to-video.

Every image goes through stepvideo.source_image (the same decode and checks as the CLI and the worker),
so a file the engine would refuse is refused here with its one line, never a traceback.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData, QSize, Qt, QUrl, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QWidget

from stepvideo.errors import InvalidRequest
from stepvideo.source_image import ALLOWED, MIN_SIDE, SourceImage, check_image_size, read_image
from stepvideo_desktop.pasted_images import save_pasted
from stepvideo_desktop.views.motion_field import MotionField
from stepvideo_desktop.views.source_thumb import crop_preview, rgb_to_image
from stepvideo_desktop.views.widgets import GRID, Card, muted, push_button

THUMB_BOX = QSize(30 * GRID, 17 * GRID)
FILE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.bmp *.tif *.tiff);;All files (*)"
HINT = "Optional: drop an image here, paste it (Ctrl+V) or browse, to animate it (image-to-video)."


def local_file_of(mime: QMimeData) -> str | None:
    """The first local file a drop or paste names: a URL list, or text that is a file:// URL or a path."""
    if mime.hasUrls():
        for url in mime.urls():
            if url.isLocalFile():
                return url.toLocalFile()
    if mime.hasText():
        text = mime.text().strip().splitlines()[0] if mime.text().strip() else ""
        if text.startswith("file://"):
            return QUrl(text).toLocalFile()
        if text.startswith("/") and Path(text).is_file():
            return text
    return None


def is_video(path: str) -> bool:
    return Path(path).suffix.lower() == ".mp4"  # an mp4 dropped on the window loads its settings instead


class ImageInput(Card):
    changed = Signal()  # the image or the motion changed
    problem = Signal(str)  # one line for the page's error label; "" when the last image was fine
    image_set = Signal(int, int)  # width, height of an image just chosen by the user (orientation)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Image", parent)
        self.setAcceptDrops(True)
        self.setAccessibleName("Source image: drop, paste or browse")
        self.source: SourceImage | None = None
        self._picture = None  # QImage of the source, for redrawing the crop
        self._target = (544, 992)  # (height, width) of the video, for the crop
        self.pick_file = lambda: QFileDialog.getOpenFileName(self, "Choose an image", "", FILE_FILTER)[0]

        row = QHBoxLayout()
        row.setSpacing(2 * GRID)
        self.thumb = QLabel()
        self.thumb.setAccessibleName("Source image with the kept crop")
        self.thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.thumb.hide()
        self.hint = muted(HINT)
        self.hint.setWordWrap(True)
        row.addWidget(self.thumb)
        row.addWidget(self.hint, 1)
        self.body.addLayout(row)
        self.details = muted()
        self.details.setWordWrap(True)
        self.details.setAccessibleName("Source image details")
        self.body.addWidget(self.details)
        self.note = muted()  # which model an image job uses (the page sets it)
        self.note.setWordWrap(True)
        self.note.setAccessibleName("Image-to-video model")
        self.body.addWidget(self.note)
        self.motion = MotionField()
        self.motion.changed.connect(lambda _v: self.changed.emit())
        self.body.addWidget(self.motion)
        buttons = QHBoxLayout()
        buttons.setSpacing(GRID)
        self.browse = push_button("Browse…", "folder")
        self.browse.setAccessibleName("Choose a source image")
        self.browse.clicked.connect(self._browse)
        self.remove = push_button("Remove image", "close")
        self.remove.setToolTip("Back to text-to-video")
        self.remove.clicked.connect(self.clear)
        buttons.addWidget(self.browse)
        buttons.addWidget(self.remove)
        buttons.addStretch(1)
        self.body.addLayout(buttons)
        paste = QShortcut(QKeySequence(QKeySequence.StandardKey.Paste), self)
        paste.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        paste.activated.connect(self.paste)
        self._show()

    # ---- what the page reads -------------------------------------------------------------------------
    @property
    def path(self) -> str | None:
        return str(self.source.path) if self.source is not None else None

    def set_note(self, text: str) -> None:
        self.note.setText(text)
        self.note.setVisible(self.source is not None and bool(text))

    def set_target(self, height: int, width: int) -> None:
        self._target = (height, width)
        self._draw()

    # ---- setting and removing ------------------------------------------------------------------------
    def set_path(self, path: str, user: bool = True) -> bool:
        """Read and check `path`; on a problem the old image stays and `problem` says why (one line)."""
        try:
            source = read_image(path)
            # the checks that do not depend on the video size (at least MIN_SIDE pixels a side); the size's
            # own check runs with the request, as the size can still change
            check_image_size(source, MIN_SIDE, MIN_SIDE)
        except InvalidRequest as exc:
            self.problem.emit(str(exc))
            return False
        self.source = source
        self._picture = rgb_to_image(source.rgb)
        self.problem.emit("")
        self._show()
        if user:
            self.image_set.emit(source.width, source.height)
        self.changed.emit()
        return True

    def clear(self) -> None:
        had = self.source is not None
        self.source = self._picture = None
        self.problem.emit("")
        self._show()
        if had:
            self.changed.emit()

    def take_mime(self, mime: QMimeData) -> bool:
        """A drop or a paste: a local file (URL or path), or raw image pixels from the clipboard."""
        path = local_file_of(mime)
        if path is not None:
            return self.set_path(path)
        if mime.hasImage():
            try:
                return self.set_path(str(save_pasted(mime.imageData())))
            except InvalidRequest as exc:
                self.problem.emit(str(exc))
                return False
        return False

    def paste(self) -> bool:
        mime = QGuiApplication.clipboard().mimeData()
        if mime is None or not (mime.hasImage() or local_file_of(mime)):
            self.problem.emit(f"the clipboard holds no image; copy {ALLOWED} or its file")
            return False
        return self.take_mime(mime)

    def _browse(self) -> None:
        path = self.pick_file()
        if path:
            self.set_path(path)

    # ---- drag and drop -------------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        path = local_file_of(event.mimeData())
        if (path is not None and not is_video(path)) or event.mimeData().hasImage():
            event.acceptProposedAction()
        else:
            event.ignore()  # an mp4 goes on to the window (it loads that video's settings)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        path = local_file_of(event.mimeData())
        if path is not None and is_video(path):
            event.ignore()
            return
        event.acceptProposedAction()
        self.take_mime(event.mimeData())

    # ---- drawing -------------------------------------------------------------------------------------
    def _show(self) -> None:
        has = self.source is not None
        self.thumb.setVisible(has)
        self.details.setVisible(has)
        self.note.setVisible(has and bool(self.note.text()))
        self.motion.setVisible(has)
        self.remove.setVisible(has)
        self.hint.setText(HINT if not has else "")
        self.hint.setVisible(not has)
        self._draw()

    def _draw(self) -> None:
        if self.source is None or self._picture is None:
            self.thumb.clear()
            self.details.setText("")
            return
        height, width = self._target
        s = self.source
        self.thumb.setPixmap(crop_preview(self._picture, s.width, s.height, width, height, THUMB_BOX))
        self.details.setText(f"{s.path.name} · {s.width}×{s.height} · the outlined part fills the "
                             f"{width}×{height} video")
        self.details.setToolTip(str(s.path))
