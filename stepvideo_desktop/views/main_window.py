"""The frame: a sidebar with five pages, an app-wide banner, the page stack, the status bar. Layout only;
the controllers wire behaviour."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QEvent, Qt, Signal
from PySide6.QtGui import QCloseEvent, QColor, QDragEnterEvent, QDropEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from stepvideo_desktop import theme
from stepvideo_desktop.views import icons
from stepvideo_desktop.views.status_bar import StatusBarView
from stepvideo_desktop.views.widgets import GRID, Banner

PAGES = (("composer", "Create", "create"), ("queue", "Queue", "queue"), ("gallery", "Gallery", "gallery"),
         ("models", "Models", "models"), ("settings", "Settings", "settings"))
PAGE_KEYS = tuple(key for key, _, _ in PAGES)
MIN_SIZE = (960, 640)
ROOMY_SIZE = (1600, 1000)  # beyond this a first window only spreads the same controls further apart


def first_launch_size(available_width: int, available_height: int) -> tuple[int, int]:
    """The first window: most of the screen's free area (85 %), at least the minimum, at most roomy,
    never larger than the screen. Pure, so it is tested for many screens."""
    def side(free: int, least: int, most: int) -> int:
        return min(max(int(free * 0.85), least), most, free)

    return side(available_width, MIN_SIZE[0], ROOMY_SIZE[0]), side(available_height, MIN_SIZE[1], ROOMY_SIZE[1])


def available_screen_size() -> tuple[int, int]:
    """The primary screen's area without panels and docks."""
    from PySide6.QtGui import QGuiApplication

    screen = QGuiApplication.primaryScreen()
    if screen is None:
        return ROOMY_SIZE
    area = screen.availableGeometry()
    return area.width(), area.height()


class MainWindow(QMainWindow):
    video_dropped = Signal(str)  # an mp4 dropped onto the window
    close_requested = Signal(object)  # QCloseEvent; app.py decides (ask about a running job)
    page_changed = Signal(int)

    def __init__(self, pages: dict[str, QWidget], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("StepVideo")
        self.setAcceptDrops(True)
        free_w, free_h = available_screen_size()
        self.setMinimumSize(min(MIN_SIZE[0], free_w), min(MIN_SIZE[1], free_h))  # small screens still fit
        self.pages = pages
        central = QWidget()
        row = QHBoxLayout(central)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        row.addWidget(self._build_sidebar())
        right = QVBoxLayout()
        right.setContentsMargins(0, 0, 0, 0)
        right.setSpacing(0)
        # App-wide messages (a file that cannot be opened, an unexpected error): above every page.
        self.banner = Banner()
        self.banner.setAccessibleName("Message")
        self._banner_area = QWidget()  # the banner's margins, shown only while the banner is
        banner_row = QHBoxLayout(self._banner_area)
        banner_row.setContentsMargins(3 * GRID, 2 * GRID, 3 * GRID, 0)
        banner_row.addWidget(self.banner)
        self._banner_area.hide()
        self.banner.installEventFilter(self)
        right.addWidget(self._banner_area)
        self.stack = QStackedWidget()
        self.stack.setCurrentIndex(-1)
        for key in PAGE_KEYS:
            self.stack.addWidget(pages[key])
        right.addWidget(self.stack, 1)
        row.addLayout(right, 1)
        self.setCentralWidget(central)
        self.status_view = StatusBarView()
        self.statusBar().addPermanentWidget(self.status_view, 1)
        self.statusBar().setSizeGripEnabled(False)
        for i in range(len(PAGES)):
            QShortcut(QKeySequence(f"Ctrl+{i + 1}"), self, activated=lambda i=i: self.show_page(i))
        self.status_view.queue_clicked.connect(lambda: self.show_page(PAGE_KEYS.index("queue")))
        self.show_page(0)

    def _build_sidebar(self) -> QWidget:
        side = QWidget()
        side.setFixedWidth(25 * GRID)
        col = QVBoxLayout(side)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(0)
        self.nav = QListWidget()
        self.nav.setObjectName("sidebar")
        self.nav.setAccessibleName("Pages")
        self.nav.setIconSize(icons.icon_size(20))
        self.nav.setFrameShape(QListWidget.Shape.NoFrame)
        self.nav.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        c = theme.colors()
        header = QListWidgetItem("StepVideo")
        header.setFlags(Qt.ItemFlag.NoItemFlags)
        font = header.font()
        font.setPointSizeF(font.pointSizeF() + 2)
        font.setBold(True)
        header.setFont(font)
        header.setForeground(QColor(c.text))
        self.nav.addItem(header)
        for i, (_key, label, icon_name) in enumerate(PAGES):
            item = QListWidgetItem(icons.icon(icon_name, c.text), label)
            item.setToolTip(f"{label} (Ctrl+{i + 1})")
            item.setData(Qt.ItemDataRole.AccessibleTextRole, label)
            self.nav.addItem(item)
        self.nav.currentRowChanged.connect(lambda row: row >= 1 and self.show_page(row - 1))
        col.addWidget(self.nav)
        return side

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt API)
        # ShowToParent/HideToParent come even while the window itself is hidden (unlike Show/Hide).
        if watched is self.banner and event.type() in (QEvent.Type.ShowToParent, QEvent.Type.HideToParent):
            self._banner_area.setVisible(event.type() == QEvent.Type.ShowToParent)
        return super().eventFilter(watched, event)

    def show_page(self, index: int | str) -> None:
        if isinstance(index, str):
            index = PAGE_KEYS.index(index)
        if self.stack.currentIndex() != index or self.nav.currentRow() != index + 1:
            self.stack.setCurrentIndex(index)
            self.nav.setCurrentRow(index + 1)
            self.page_changed.emit(index)

    def current_page(self) -> str:
        return PAGE_KEYS[self.stack.currentIndex()]

    def geometry_b64(self) -> str:
        return bytes(self.saveGeometry().toBase64()).decode()

    def restore_geometry_b64(self, value: str) -> bool:
        """The last session's size and place; on first launch (or a bad value) a size that suits the screen."""
        if value and self.restoreGeometry(QByteArray.fromBase64(value.encode())):
            return True
        self.resize(*first_launch_size(*available_screen_size()))
        return False

    # Dropping an mp4 made by the app restores its settings into Create.
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if _first_mp4(event) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        path = _first_mp4(event)
        if path is not None:
            event.acceptProposedAction()
            self.video_dropped.emit(path)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self.close_requested.emit(event)


def _first_mp4(event) -> str | None:
    mime = event.mimeData()
    if not mime.hasUrls():
        return None
    for url in mime.urls():
        if url.isLocalFile() and Path(url.toLocalFile()).suffix.lower() == ".mp4":
            return url.toLocalFile()
    return None
