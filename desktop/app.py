"""Composition root: `stepvideo-desktop` builds the QApplication, settings, clients and the main window.

`--screenshot PATH [--page NAME]` renders one page offscreen at 1280×800 to a PNG and exits (no worker
is started), for docs and for checking the look without a display.
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import os
import sys

from stepvideo import paths

log = logging.getLogger("desktop")

SCREENSHOT_SIZE = (1280, 800)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from desktop.views.main_window import PAGE_KEYS

    parser = argparse.ArgumentParser(prog="stepvideo-desktop", description="StepVideo Desktop: local text-to-video.")
    parser.add_argument("--screenshot", metavar="PATH", help="render a page offscreen at 1280×800 to this PNG and exit")
    parser.add_argument("--page", choices=PAGE_KEYS, default="composer", help="the page to show (default: composer)")
    parser.add_argument("--theme", choices=("system", "light", "dark"), help="override the theme setting")
    parser.add_argument("--no-worker", action="store_true", help="do not start the engine worker")
    return parser.parse_args(argv)


def setup_logging() -> None:
    """Tracebacks go to a rotating file under the log dir; the user sees messages in words."""
    root = logging.getLogger()
    if any(isinstance(h, logging.handlers.RotatingFileHandler) for h in root.handlers):
        return
    try:
        handler = logging.handlers.RotatingFileHandler(
            paths.ensure(paths.log_dir()) / "desktop.log", maxBytes=2_000_000, backupCount=3, encoding="utf-8")
    except OSError:
        handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)


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
    setup_logging()
    app = make_application([sys.argv[0]])
    from desktop.controller import Controller

    controller = Controller(start_worker=not (args.no_worker or args.screenshot), theme_override=args.theme)
    if args.screenshot:
        return 0 if controller.screenshot(args.screenshot, args.page, SCREENSHOT_SIZE) else 1
    controller.show(page=args.page if "--page" in (argv or sys.argv) else None)
    code = app.exec()
    controller.shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
