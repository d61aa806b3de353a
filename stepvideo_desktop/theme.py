"""The look: Fusion style, a light or dark palette that follows the system, one accent colour, and a QSS.

resources/app.qss (written by packaging) wins when present; `@token` names in it (e.g. `@accent`) are
replaced by this theme's colours so it follows light and dark. Otherwise the built-in sheet below is used.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from stepvideo_desktop import assets


@dataclass(frozen=True)
class Colors:
    dark: bool
    bg: str
    surface: str
    sidebar: str
    border: str
    text: str
    muted: str
    accent: str
    accent_text: str
    ok: str = "#10B981"
    warn: str = "#F59E0B"
    bad: str = "#EF4444"

    def tokens(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if isinstance(v, str)}


LIGHT = Colors(False, bg="#f5f6f8", surface="#ffffff", sidebar="#eceef2", border="#dcdfe5",
               text="#1b1e24", muted="#667085", accent="#6366F1", accent_text="#ffffff")
DARK = Colors(True, bg="#15171b", surface="#1e2127", sidebar="#111317", border="#2d313a",
              text="#e7e9ee", muted="#98a0ae", accent="#818CF8", accent_text="#0f1115")

_current: Colors = LIGHT


def colors() -> Colors:
    return _current


def system_is_dark() -> bool:
    hints = QGuiApplication.styleHints()
    return hints.colorScheme() == Qt.ColorScheme.Dark


def resolve(theme: str) -> Colors:
    if theme == "dark" or (theme == "system" and system_is_dark()):
        return DARK
    return LIGHT


def palette_for(c: Colors) -> QPalette:
    p = QPalette()
    role = QPalette.ColorRole
    for r, value in (
        (role.Window, c.bg), (role.Base, c.surface), (role.AlternateBase, c.bg), (role.Button, c.surface),
        (role.WindowText, c.text), (role.Text, c.text), (role.ButtonText, c.text), (role.ToolTipBase, c.surface),
        (role.ToolTipText, c.text), (role.PlaceholderText, c.muted), (role.Highlight, c.accent),
        (role.HighlightedText, c.accent_text), (role.Link, c.accent), (role.Accent, c.accent),
        (role.Mid, c.border), (role.Midlight, c.border), (role.Dark, c.border), (role.Shadow, c.border),
    ):
        p.setColor(r, QColor(value))
    disabled = QPalette.ColorGroup.Disabled
    for r in (role.WindowText, role.Text, role.ButtonText):
        p.setColor(disabled, r, QColor(c.muted))
    return p


def apply(app: QApplication, theme: str = "system") -> Colors:
    global _current
    _current = resolve(theme)
    app.setStyle("Fusion")
    app.setPalette(palette_for(_current))
    sheet = (assets.style_sheet() or BUILTIN_QSS) + EXTRAS_QSS
    for name, value in sorted(_current.tokens().items(), key=lambda kv: -len(kv[0])):
        sheet = sheet.replace(f"@{name}", value)
    app.setStyleSheet(sheet)
    return _current


# Hooks shared with resources/app.qss: QFrame[card], QLabel[role=title|heading|muted], QFrame[banner=...],
# QLabel[fit=green|amber|red], QPushButton[primary], #sidebar (a QListWidget). 8 px grid throughout.
BUILTIN_QSS = """
QWidget { font-size: 10pt; }
QMainWindow, QStackedWidget > QWidget#page { background: @bg; }
#sidebar { background: @sidebar; border: none; border-right: 1px solid @border; padding: 8px; }
#sidebar::item { min-height: 40px; padding: 0 16px; margin: 0 0 4px 0; border-radius: 8px; color: @text; }
#sidebar::item:hover { background: @border; }
#sidebar::item:selected { background: @surface; color: @accent; font-weight: 600; }
QLabel[role="title"] { font-size: 16pt; font-weight: 600; }
QLabel[role="heading"] { font-size: 11pt; font-weight: 600; }
QLabel[role="muted"] { color: @muted; }
QFrame[card="true"] { background: @surface; border: 1px solid @border; border-radius: 12px; }
QFrame[banner="info"], QFrame[banner="warning"], QFrame[banner="error"] { border-radius: 8px; background: @surface; border: 1px solid @accent; }
QFrame[banner="error"] { border: 1px solid @bad; }
QFrame[banner="warning"] { border: 1px solid @warn; }
QLabel[fit] { min-width: 8px; max-width: 8px; min-height: 8px; max-height: 8px; border-radius: 4px; background: @muted; }
QLabel[fit="green"] { background: @ok; }
QLabel[fit="amber"] { background: @warn; }
QLabel[fit="red"] { background: @bad; }
QPlainTextEdit, QLineEdit, QSpinBox, QDoubleSpinBox, QComboBox {
  background: @surface; border: 1px solid @border; border-radius: 8px; padding: 4px 8px;
  selection-background-color: @accent; selection-color: @accent_text;
}
QPlainTextEdit:focus, QLineEdit:focus, QSpinBox:focus, QDoubleSpinBox:focus, QComboBox:focus { border: 1px solid @accent; }
QLineEdit[invalid="true"] { border: 1px solid @bad; }
QPushButton { background: @surface; border: 1px solid @border; border-radius: 8px; padding: 6px 16px; min-height: 20px; }
QPushButton:hover { border-color: @accent; }
QPushButton:disabled { color: @muted; background: transparent; border: 1px dashed @border; }
QPushButton[primary="true"] { background: @accent; color: @accent_text; border: 1px solid @accent; font-weight: 600; }
QPushButton[primary="true"]:disabled { background: @border; border-color: @border; color: @muted; }
QToolButton { border: 1px solid transparent; border-radius: 8px; padding: 4px; }
QToolButton:hover { border-color: @border; background: @surface; }
QToolButton:checked { background: @border; }
QProgressBar { background: @border; border: none; border-radius: 4px; height: 8px; text-align: center; color: transparent; }
QProgressBar::chunk { background: @accent; border-radius: 4px; }
QProgressBar[fit="amber"]::chunk { background: @warn; }
QProgressBar[fit="red"]::chunk { background: @bad; }
QTableView, QListView { background: @surface; border: 1px solid @border; border-radius: 12px; gridline-color: transparent;
  selection-background-color: @accent; selection-color: @accent_text; alternate-background-color: @bg; }
QHeaderView::section { background: @surface; border: none; border-bottom: 1px solid @border; padding: 6px 8px; color: @muted; font-weight: 600; }
QStatusBar { background: @sidebar; border-top: 1px solid @border; }
QStatusBar QLabel { color: @muted; padding: 0 4px; }
QSlider::groove:horizontal { height: 4px; background: @border; border-radius: 2px; }
QSlider::sub-page:horizontal { background: @accent; border-radius: 2px; }
QSlider::handle:horizontal { background: @accent; width: 16px; height: 16px; margin: -6px 0; border-radius: 8px; }
QScrollArea { border: none; background: transparent; }
QScrollArea > QWidget > QWidget { background: transparent; }
QCheckBox { spacing: 8px; }
QToolTip { background: @surface; color: @text; border: 1px solid @border; padding: 4px 8px; }
"""

# Always appended: the app's own widgets that the shared sheet has no hook for.
EXTRAS_QSS = """
QLabel#appTitle { font-size: 12pt; font-weight: 700; padding: 8px 16px 16px 16px; }
QLabel#error { color: @bad; }
QFrame[card="true"] { padding: 0; }
QAbstractSpinBox::up-button, QAbstractSpinBox::down-button { width: 0px; border: none; }
QPushButton#chip { border-radius: 12px; padding: 4px 12px; min-height: 16px; color: @muted; }
QPushButton#chip:hover { color: @text; }
QPushButton[segment="true"] { padding: 4px 16px; }
QPushButton[segment="true"]:checked { background: @accent; color: @accent_text; border-color: @accent; font-weight: 600; }
QToolButton[quiet="true"] { border: 1px solid transparent; background: transparent; padding: 4px; }
QToolButton[quiet="true"]:hover { border-color: @border; }
QToolButton[quiet="true"]:checked { background: @border; }
QStatusBar QLabel { color: @muted; }
QStatusBar QPushButton { border: none; background: transparent; color: @accent; padding: 0 4px; min-height: 16px; }
"""
