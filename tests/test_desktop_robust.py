"""The app must start and tell the truth: an unusable queue database, crash-hook coverage at start,
decode progress and ETAs on the job card, queue thumbnails, first-launch size, CJK fallback."""

from __future__ import annotations

import pytest
from desktop_support import app_dirs, make_controller  # noqa: F401
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from stepvideo import paths


@pytest.fixture
def root_logging():
    import logging

    before = list(logging.getLogger().handlers)
    yield
    for handler in logging.getLogger().handlers[:]:
        if handler not in before:
            logging.getLogger().removeHandler(handler)
            handler.close()


@pytest.fixture
def controller(qtbot, app_dirs, monkeypatch):  # noqa: F811
    c = make_controller(qtbot, monkeypatch=monkeypatch)
    yield c
    c.shutdown()


def _main_windows():
    from stepvideo_desktop.views.main_window import MainWindow

    return [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]


# ---- §2 an unusable queue database -------------------------------------------------------------------

def _corrupt_queue() -> tuple:
    db = paths.queue_db()
    db.parent.mkdir(parents=True, exist_ok=True)
    garbage = b"not a database at all " * 200
    db.write_bytes(garbage)
    return db, garbage


def test_corrupt_queue_moved_aside_app_starts_with_an_empty_queue(qtbot, app_dirs, root_logging, monkeypatch):  # noqa: F811
    from stepvideo.jobs.store import JobQueue
    from stepvideo_desktop import app as desktop_app
    from stepvideo_desktop.views.queue_db_dialog import QueueDatabaseDialog

    db, garbage = _corrupt_queue()
    asked = []

    def answer(dialog):  # the user reads the dialog and presses "Move it aside and start a new queue"
        asked.append(dialog.informativeText())
        dialog.move_button.click()
        return 0

    monkeypatch.setattr(QueueDatabaseDialog, "exec", answer)
    seen = {}

    def look_then_quit():
        windows = _main_windows()
        seen["windows"] = len(windows)
        seen["rows"] = windows[0].pages["queue"].model.rowCount() if windows else None
        for w in windows:
            w.close()
        QApplication.instance().quit()

    QTimer.singleShot(300, look_then_quit)
    assert desktop_app.main(["--no-worker", "--theme", "light"]) == 0
    assert len(asked) == 1 and str(db) in asked[0] and "file is not a database" in asked[0]
    assert seen == {"windows": 1, "rows": 0}
    [old] = [p for p in db.parent.iterdir() if ".broken-" in p.name]
    assert old.read_bytes() == garbage  # the user's old file is still on disk, untouched
    with JobQueue(db) as q:  # and the new queue is a real, empty one
        assert q.list() == []


def test_corrupt_queue_quit_leaves_everything_as_it_was(qtbot, app_dirs, root_logging, monkeypatch, capsys):  # noqa: F811
    from stepvideo_desktop import app as desktop_app
    from stepvideo_desktop.views.queue_db_dialog import QueueDatabaseDialog

    db, garbage = _corrupt_queue()
    monkeypatch.setattr(QueueDatabaseDialog, "exec", lambda dialog: dialog.quit_button.click() or 0)
    assert desktop_app.main(["--no-worker"]) == 1
    assert db.read_bytes() == garbage and not [p for p in db.parent.iterdir() if ".broken-" in p.name]
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(db) in err[0]
    assert not _main_windows()


def test_move_aside_keeps_the_wal_and_shm_with_their_database(tmp_path):
    from stepvideo_desktop import queue_recovery

    db = tmp_path / "queue.sqlite3"
    for name, data in (("queue.sqlite3", b"db"), ("queue.sqlite3-wal", b"wal"), ("queue.sqlite3-shm", b"shm")):
        (tmp_path / name).write_bytes(data)
    first = queue_recovery.move_aside(db, now=0)
    db.write_bytes(b"db2")  # the same second again: the second set gets its own name
    second = queue_recovery.move_aside(db, now=0)
    assert first != second and first.name.startswith("queue.sqlite3.broken-") and second.name.endswith("-2")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == {
        first.name: b"db", first.name + "-wal": b"wal", first.name + "-shm": b"shm", second.name: b"db2"}


def test_move_aside_failure_puts_the_siblings_back(tmp_path, monkeypatch):
    import os

    from stepvideo_desktop import queue_recovery

    db = tmp_path / "queue.sqlite3"
    db.write_bytes(b"x")
    Path_wal = tmp_path / "queue.sqlite3-wal"
    Path_wal.write_bytes(b"w")
    real_replace = os.replace

    def replace(src, dst):
        if str(src) == str(db):
            raise OSError(13, "Permission denied")
        real_replace(src, dst)

    monkeypatch.setattr(queue_recovery.os, "replace", replace)
    with pytest.raises(OSError):
        queue_recovery.move_aside(db)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["queue.sqlite3", "queue.sqlite3-wal"]


def test_an_error_while_starting_is_logged_and_shown_not_silent(qtbot, app_dirs, root_logging, monkeypatch):  # noqa: F811
    from stepvideo_desktop import app as desktop_app
    from stepvideo_desktop import controller as controller_mod
    from stepvideo_desktop import crash_hook

    shown = []
    monkeypatch.setattr(crash_hook, "show_dialog", shown.append)

    def broken_init(self, *a, **k):
        raise RuntimeError("the settings page exploded")

    monkeypatch.setattr(controller_mod.Controller, "__init__", broken_init)
    assert desktop_app.main(["--no-worker"]) == 1
    assert len(shown) == 1 and "RuntimeError: the settings page exploded" in shown[0]
    log_text = (paths.log_dir() / desktop_app.LOG_NAME).read_text()
    assert "Traceback" in log_text and "the settings page exploded" in log_text
