"""Composition root: `stepvideo-desktop` builds the QApplication, settings, clients and the main window.

`--screenshot PATH [--page NAME]` renders one page offscreen at 1280×800 to a PNG and exits (no worker
is started), for docs and for checking the look without a display. FILE arguments (the desktop entry's
%F: an mp4 opened from a file manager) load the settings of a video made by the app into Create.
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import os
import sys
from pathlib import Path

from stepvideo import paths

log = logging.getLogger("desktop")

SCREENSHOT_SIZE = (1280, 800)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from stepvideo_desktop.views.main_window import PAGE_KEYS

    parser = argparse.ArgumentParser(prog="stepvideo-desktop", description="StepVideo Desktop: local text-to-video.")
    parser.add_argument("--screenshot", metavar="PATH", help="render a page offscreen at 1280×800 to this PNG and exit")
    parser.add_argument("--page", choices=PAGE_KEYS, default="composer", help="the page to show (default: composer)")
    parser.add_argument("--theme", choices=("system", "light", "dark"), help="override the theme setting")
    parser.add_argument("--no-worker", action="store_true", help="do not start the engine worker")
    parser.add_argument("files", nargs="*", metavar="FILE",
                        help="an mp4 made by StepVideo: its settings are loaded into Create")
    return parser.parse_args(argv)


LOG_NAME = "desktop.log"


def setup_logging() -> Path | None:
    """Tracebacks go to a rotating file under the log dir (returned); the user sees messages in words."""
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler, logging.handlers.RotatingFileHandler):
            return Path(handler.baseFilename)
    log_file: Path | None = None
    try:
        log_file = paths.ensure(paths.log_dir()) / LOG_NAME
        handler = logging.handlers.RotatingFileHandler(log_file, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
    except OSError:
        log_file = None
        handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return log_file


def screenshot_problem(path: str) -> str:
    """Why a screenshot could not be written, in one line naming the path."""
    folder = Path(path).resolve().parent
    if not folder.is_dir():
        return f"stepvideo-desktop: could not write the screenshot {path}: the folder {folder} does not exist"
    return f"stepvideo-desktop: could not write the screenshot {path}: the folder is not writable or the disk is full"


def make_application(argv: list[str]):
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(argv)
    app.setApplicationName("StepVideo")
    app.setOrganizationName("StepVideoDesktop")
    QGuiApplication.setDesktopFileName("stepvideo-desktop")
    return app


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.screenshot:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before the QApplication exists
    log_file = setup_logging()
    app = make_application([sys.argv[0]])
    from stepvideo_desktop import crash_hook
    from stepvideo_desktop.controller import Controller

    controller = Controller(start_worker=not (args.no_worker or args.screenshot), theme_override=args.theme)
    previous_hook = crash_hook.install(controller.show_unexpected, log_file)
    try:
        if args.files:
            controller.open_files(args.files)
        if args.screenshot:
            if controller.screenshot(args.screenshot, args.page, SCREENSHOT_SIZE):
                return 0
            print(screenshot_problem(args.screenshot), file=sys.stderr)
            return 1
        given = sys.argv[1:] if argv is None else argv
        explicit_page = any(a == "--page" or a.startswith("--page=") for a in given)
        controller.show(page=args.page if explicit_page else None)
        code = app.exec()
        controller.shutdown()
        return code
    finally:
        sys.excepthook = previous_hook


if __name__ == "__main__":
    sys.exit(main())
