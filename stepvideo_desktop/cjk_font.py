"""Whether this machine can draw Chinese text: without a CJK font the Chinese examples, placeholder
and the official negative prompt show as boxes, so Create falls back to English examples and says how
to get a font (Debian/Ubuntu: fonts-noto-cjk). `stepvideo doctor` checks the same with fc-list."""

from __future__ import annotations

INSTALL_HINT = "install a Chinese font to read it (Debian/Ubuntu: sudo apt install fonts-noto-cjk)"


def has_cjk_font() -> bool:
    """True when Qt knows a font family that covers Simplified Chinese (needs a QGuiApplication)."""
    from PySide6.QtGui import QFontDatabase

    return bool(QFontDatabase.families(QFontDatabase.WritingSystem.SimplifiedChinese))
