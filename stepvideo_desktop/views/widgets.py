"""Small building blocks shared by the pages: cards, banners, a flow layout, a segmented control, a usage bar."""

from __future__ import annotations

from PySide6.QtCore import QMargins, QPoint, QRect, QSize, Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLayout,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from stepvideo_desktop import theme
from stepvideo_desktop.views import icons

GRID = 8  # every margin and gap is a multiple of this


def muted(text: str = "", parent: QWidget | None = None) -> QLabel:
    label = QLabel(text, parent)
    label.setProperty("role", "muted")
    return label


def title(text: str, role: str = "title") -> QLabel:
    """role "title" for a page, "heading" for a card."""
    label = QLabel(text)
    label.setProperty("role", role)
    label.setAccessibleName(text)
    return label


def tool_button(icon_name: str, tip: str, checkable: bool = False) -> QToolButton:
    button = QToolButton()
    button.setIcon(icons.icon(icon_name, theme.colors().text))
    button.setIconSize(icons.icon_size(18))
    button.setToolTip(tip)
    button.setAccessibleName(tip)
    button.setCheckable(checkable)
    button.setProperty("quiet", True)
    button.setCursor(Qt.CursorShape.PointingHandCursor)
    return button


def push_button(text: str, icon_name: str | None = None, primary: bool = False) -> QPushButton:
    button = QPushButton(text)
    button.setAccessibleName(text.replace("&", ""))
    if primary:
        button.setProperty("primary", True)
    if icon_name:
        color = theme.colors().accent_text if primary else theme.colors().text
        button.setIcon(icons.icon(icon_name, color))
        button.setIconSize(icons.icon_size(16))
    button.setCursor(Qt.CursorShape.PointingHandCursor)
    return button


class ElidedLabel(QLabel):
    """A one-line label that gives up width gracefully: it ends in "…" (full text in the tooltip)
    instead of pushing its neighbours off the window or being cut mid-letter."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(4 * GRID)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt API)
        self._full = text
        self.setToolTip(text)
        self.setAccessibleName(text)
        self._elide()

    def full_text(self) -> str:
        return self._full

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt API): ask for the whole text, accept less
        return QSize(self.fontMetrics().horizontalAdvance(self._full) + GRID, super().sizeHint().height())

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        shown = self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, max(self.width(), 1))
        super().setText(shown)


class Card(QFrame):
    """A rounded surface with an optional title; add rows to `.body`."""

    def __init__(self, heading: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setProperty("card", True)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(2 * GRID, 2 * GRID, 2 * GRID, 2 * GRID)
        outer.setSpacing(GRID)
        if heading:
            outer.addWidget(title(heading, "heading"))
        self.body = outer


class Banner(QFrame):
    """An inline message on a page (never a modal), with an optional Details text and a close button."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setProperty("banner", "info")
        row = QHBoxLayout(self)
        row.setContentsMargins(GRID, GRID, GRID, GRID)
        row.setSpacing(GRID)
        self._icon = QLabel()
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._details = QPushButton("Details")
        self._details.setCheckable(True)
        self._details.setAccessibleName("Show details")
        self._details_text = QLabel()
        self._details_text.setWordWrap(True)
        self._details_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._details_text.hide()
        self._details.toggled.connect(self._details_text.setVisible)
        close = tool_button("close", "Dismiss message")
        close.clicked.connect(self.hide)
        col = QVBoxLayout()
        col.addWidget(self.text)
        col.addWidget(self._details_text)
        row.addWidget(self._icon, 0, Qt.AlignmentFlag.AlignTop)
        row.addLayout(col, 1)
        row.addWidget(self._details, 0, Qt.AlignmentFlag.AlignTop)
        row.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def show_message(self, text: str, kind: str = "error", details: str = "") -> None:
        c = theme.colors()
        color = {"error": c.bad, "warn": c.warn}.get(kind, c.accent)
        self._icon.setPixmap(icons.icon("warning" if kind in ("error", "warn") else "info", color).pixmap(18, 18))
        self.setProperty("banner", {"error": "error", "warn": "warning"}.get(kind, "info"))
        self.style().unpolish(self)
        self.style().polish(self)
        self.text.setText(text)
        self.setAccessibleName(text)
        self._details_text.setText(details)
        self._details.setVisible(bool(details))
        self._details.setChecked(False)
        self.show()


class FlowLayout(QLayout):
    """Lays children left to right and wraps, like words in a paragraph (for prompt chips)."""

    def __init__(self, parent: QWidget | None = None, spacing: int = GRID) -> None:
        super().__init__(parent)
        self._items = []
        self.setSpacing(spacing)
        self.setContentsMargins(0, 0, 0, 0)

    def addItem(self, item) -> None:  # noqa: N802 (Qt API)
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int):  # noqa: N802
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int):  # noqa: N802
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self):  # noqa: N802
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        return self._place(QRect(0, 0, width, 0), move=False)

    def setGeometry(self, rect: QRect) -> None:  # noqa: N802
        super().setGeometry(rect)
        self._place(rect, move=True)

    def sizeHint(self) -> QSize:  # noqa: N802
        return self.minimumSize()

    def minimumSize(self) -> QSize:  # noqa: N802
        size = QSize()
        for item in self._items:
            size = size.expandedTo(item.minimumSize())
        m: QMargins = self.contentsMargins()
        return size + QSize(m.left() + m.right(), m.top() + m.bottom())

    def _place(self, rect: QRect, move: bool) -> int:
        x, y, line = rect.x(), rect.y(), 0
        gap = self.spacing()
        for item in self._items:
            hint = item.sizeHint()
            if x + hint.width() > rect.right() + 1 and line > 0:
                x, y, line = rect.x(), y + line + gap, 0
            if move:
                item.setGeometry(QRect(QPoint(x, y), hint))
            x += hint.width() + gap
            line = max(line, hint.height())
        return y + line - rect.y()


class Segmented(QWidget):
    """Mutually exclusive choices shown as joined buttons (e.g. Standard · Turbo)."""

    changed = Signal(str)

    def __init__(self, options: list[tuple[str, str]], accessible_name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName(accessible_name)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        self._group = QButtonGroup(self)
        self._keys: list[str] = []
        for key, label in options:
            button = QPushButton(label)
            button.setCheckable(True)
            button.setProperty("segment", True)
            button.setAccessibleName(f"{accessible_name}: {label}")
            button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            self._group.addButton(button, len(self._keys))
            self._keys.append(key)
            row.addWidget(button)
        self._group.idClicked.connect(lambda i: self.changed.emit(self._keys[i]))

    def value(self) -> str:
        return self._keys[max(self._group.checkedId(), 0)]

    def set_value(self, key: str) -> None:
        self._group.button(self._keys.index(key)).setChecked(True)

    def button(self, key: str) -> QPushButton:
        return self._group.button(self._keys.index(key))


class UsageBar(QWidget):
    """A label + thin bar: '12.1 / 24 GB'. Turns amber above 85 % and red above 95 %."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(GRID)
        self.label = QLabel(name)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setFixedWidth(96)
        self.bar.setFixedHeight(8)
        self.bar.setTextVisible(False)
        self.bar.setAccessibleName(name)
        self.value_label = QLabel("—")
        row.addWidget(self.label)
        row.addWidget(self.bar)
        row.addWidget(self.value_label)
        self._name = name

    def set_usage(self, used: float | None, total: float | None, unit: str = "GB") -> None:
        if used is None or not total:
            self.bar.setValue(0)
            self.value_label.setText("—")
            return
        frac = max(0.0, min(1.0, used / total))
        self.bar.setValue(int(frac * 1000))
        level = "red" if frac > 0.95 else "amber" if frac > 0.85 else ""
        if self.bar.property("fit") != level:
            self.bar.setProperty("fit", level)
            self.bar.style().unpolish(self.bar)
            self.bar.style().polish(self.bar)
        text = f"{used / 1e9:.1f} / {total / 1e9:.0f} {unit}"
        self.value_label.setText(text)
        self.bar.setAccessibleDescription(text)


def human_bytes(n: float | None) -> str:
    if n is None:
        return "—"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit in ("B", "KB") else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def human_duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return "—"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {s:02d} s"
    hours, m = divmod(minutes, 60)
    return f"{hours} h {m:02d} min"
