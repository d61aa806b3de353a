"""sys.excepthook for the app: an exception nothing caught (in a Qt slot, a timer, an event handler) is a
bug. Its traceback goes to the log file and the window shows one line, so the user is told without a
traceback in their face, and the app stays up."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)

Hook = Callable[[type[BaseException], BaseException, TracebackType | None], object]


def one_line(exc: BaseException, log_file: Path | None) -> str:
    what = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    where = f"the details are in {log_file}" if log_file else "the details are in the log"
    return (f"Something went wrong inside the app ({type(exc).__name__}{': ' + what if what else ''}); {where}. "
            "Your jobs and videos are safe.")


def show_dialog(line: str) -> None:
    """Before the main window exists: a modal message box (or stderr when there is no QApplication)."""
    try:
        from PySide6.QtWidgets import QApplication, QMessageBox

        if QApplication.instance() is not None:
            QMessageBox.critical(None, "StepVideo", line)
            return
    except Exception:  # Qt itself may be what failed; the line still reaches the user
        log.exception("could not show the error dialog")
    print(f"stepvideo-desktop: {line}", file=sys.stderr)


def install(show: Callable[[str], None], log_file: Path | None) -> Hook:
    """Replace sys.excepthook; returns the previous hook so the caller can put it back."""
    previous = sys.excepthook

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):  # Ctrl+C in the terminal still ends the app
            previous(exc_type, exc, tb)
            return
        log.error("unexpected error", exc_info=(exc_type, exc, tb))
        try:
            show(one_line(exc, log_file))
        except Exception:  # the window may be gone already; the log has the error either way
            log.exception("could not show the error banner")

    sys.excepthook = hook
    return previous
