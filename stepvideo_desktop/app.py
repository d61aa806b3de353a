"""Composition root: `stepvideo-desktop` builds the QApplication, settings, clients and the main window.

`--screenshot PATH [--page NAME] [--size WxH]` renders one page offscreen (1280×800 unless --size) to a
PNG and exits (no worker is started), for docs and for checking the look without a display. FILE arguments (the desktop entry's
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


def screenshot_size(text: str) -> tuple[int, int]:
    """`1024x640` as (1024, 640); anything else is refused with what is allowed."""
    w, _, h = text.lower().partition("x")
    if not (w.isdigit() and h.isdigit() and 320 <= int(w) <= 7680 and 240 <= int(h) <= 4320):
        raise argparse.ArgumentTypeError(f"{text!r} is not a size; use WIDTHxHEIGHT, e.g. 1024x640 (320x240 to 7680x4320)")
    return int(w), int(h)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from stepvideo_desktop.views.main_window import PAGE_KEYS

    parser = argparse.ArgumentParser(prog="stepvideo-desktop", description="StepVideo Desktop: local text-to-video.")
    parser.add_argument("--screenshot", metavar="PATH", help="render a page offscreen to this PNG and exit")
    parser.add_argument("--size", type=screenshot_size, metavar="WxH",
                        help="the window size for --screenshot (default: 1280x800)")
    parser.add_argument("--page", choices=PAGE_KEYS, default="composer", help="the page to show (default: composer)")
    parser.add_argument("--theme", choices=("system", "light", "dark"), help="override the theme setting")
    parser.add_argument("--no-worker", action="store_true", help="do not start the engine worker")
    parser.add_argument("files", nargs="*", metavar="FILE",
                        help="an mp4 made by StepVideo (its settings are loaded into Create) or an image "
                             "(Create's source image, for image-to-video)")
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


def start_controller(args: argparse.Namespace):
    """The Controller, or None when it cannot start and the user chose Quit.

    An unusable queue database (corrupt, not a database, from a newer app) stops the Controller before
    any window exists: the user is asked whether to move it aside (kept, renamed) and start with a new
    queue. In screenshot mode nobody is there to ask, so the one line goes to stderr instead.
    """
    from stepvideo.errors import QueueDatabaseError
    from stepvideo_desktop import queue_recovery
    from stepvideo_desktop.controller import Controller
    from stepvideo_desktop.views.queue_db_dialog import QueueDatabaseDialog

    while True:
        try:
            return Controller(start_worker=not (args.no_worker or args.screenshot), theme_override=args.theme)
        except QueueDatabaseError as exc:
            path = paths.queue_db()
            log.error("the queue database %s cannot be used: %s", path, exc)
            if args.screenshot or not QueueDatabaseDialog(str(exc), path).choose_move_aside():
                print(f"stepvideo-desktop: {exc}", file=sys.stderr)
                return None
            try:
                queue_recovery.move_aside(path)
            except OSError as move_error:
                from stepvideo_desktop import crash_hook

                crash_hook.show_dialog(f"Could not move {path} aside ({move_error.strerror or move_error}); "
                                       "nothing was changed. Move it yourself, then start StepVideo again.")
                return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.screenshot:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before the QApplication exists
    log_file = setup_logging()
    from stepvideo_desktop import crash_hook

    # First, before anything can fail: an error nothing caught is logged and shown in words, in a
    # dialog until the window exists and in its banner after.
    controller = None

    def show(line: str) -> None:
        if controller is not None:
            controller.show_unexpected(line)
        else:
            crash_hook.show_dialog(line)

    previous_hook = crash_hook.install(show, log_file)
    try:
        app = make_application([sys.argv[0]])
        controller = start_controller(args)
        if controller is None:
            return 1
        if args.files:
            controller.open_files(args.files)
        if args.screenshot:
            if controller.screenshot(args.screenshot, args.page, args.size or SCREENSHOT_SIZE):
                return 0
            print(screenshot_problem(args.screenshot), file=sys.stderr)
            return 1
        given = sys.argv[1:] if argv is None else argv
        explicit_page = any(a == "--page" or a.startswith("--page=") for a in given)
        controller.show(page=args.page if explicit_page else None)
        code = app.exec()
        controller.shutdown()
        return code
    except Exception:  # a start that fails says so (log + one line in a dialog), never silently
        if controller is not None:
            controller.shutdown()
            controller = None  # the window is going: the dialog says it
        sys.excepthook(*sys.exc_info())
        return 1
    finally:
        sys.excepthook = previous_hook


if __name__ == "__main__":
    sys.exit(main())
