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


# ---- §5 honest progress: decode, resume, one source of truth ---------------------------------------

def _running_job(c, prompt="a fox in the snow", checkpoint_step=None):
    from stepvideo.api import GenerationRequest

    job = c.queue.add(GenerationRequest(prompt=prompt, height=32, width=32, frames=17, steps=40))
    c.queue.claim_next(pid=None)
    if checkpoint_step:
        c.queue.mark_checkpoint(job.id, checkpoint_step)
    c.reload_queue()
    return job.id


def _emit(c, type_, **fields):
    c.engine.event.emit({"v": 1, "type": type_, "time": 0.0, **fields})


def _table_text(c, job_id, column):
    from PySide6.QtCore import Qt

    return c.queue_model.index(c.queue_model.row_of(job_id), column).data(Qt.ItemDataRole.DisplayRole)


def test_decode_progress_reaches_the_job_card_table_and_status_bar(controller):
    from stepvideo_desktop.views.queue_model import COL_ETA, COL_STATUS

    c = controller
    job_id = _running_job(c)
    _emit(c, "job_started", job_id=job_id)
    _emit(c, "stage", job_id=job_id, name="denoise", state="started", steps=40)
    _emit(c, "step", job_id=job_id, i=40, n=40, seconds_per_step=2.0, eta_seconds=0.0)
    _emit(c, "stage", job_id=job_id, name="decode", state="started")
    detail = c.queue_view.detail
    assert detail.stage.text() == "Decoding video" and detail.eta.text() == "estimating…" and detail.bar.value() == 0
    _emit(c, "decode_progress", job_id=job_id, done=0, total=8, chunk=1, chunks=2, tile=1, tiles=4, eta_seconds=None)
    assert detail.eta.text() == "estimating…"  # no "ETA 0 s" and no full bar while decoding
    _emit(c, "decode_progress", job_id=job_id, done=3, total=8, chunk=1, chunks=2, tile=3, tiles=4, eta_seconds=90)
    assert detail.stage.text() == "Decoding video · part 3/8 · chunk 1/2 · tile 3/4"
    assert detail.step.text() == "40 / 40" and detail.eta.text() == "1 min 30 s"
    assert detail.bar.value() == 375
    status = c.window.status_view.worker.text()
    assert status == f"Job {job_id}: Decoding video · part 3/8 · chunk 1/2 · tile 3/4 · ETA 1 min 30 s"
    assert _table_text(c, job_id, COL_ETA) == "1 min 30 s"
    assert _table_text(c, job_id, COL_STATUS) == "Running · Decoding video · part 3/8 · chunk 1/2 · tile 3/4"
    assert c.queue_model.progress(c.queue.get(job_id)) == 3 / 8
    # the engine's own state changes cannot put a second opinion in the status bar
    c.worker_ctl.on_state("loading")
    assert c.window.status_view.worker.text() == status


def test_eta_after_a_resume_is_the_events_and_names_the_resume_step(controller):
    c = controller
    job_id = _running_job(c, checkpoint_step=20)
    _emit(c, "job_started", job_id=job_id)
    _emit(c, "stage", job_id=job_id, name="denoise", state="started", steps=40)
    _emit(c, "step", job_id=job_id, i=21, n=40, seconds_per_step=10.0, eta_seconds=190.0)
    detail = c.queue_view.detail
    assert detail.step.text() == "21 / 40 (resumed from step 20)"
    assert detail.eta.text() == "3 min 10 s"  # the worker's ETA (19 steps × 10 s), not 1 s from elapsed/steps
    assert detail.speed.text() == "10.00 s/step"
    assert c.window.status_view.worker.text() == f"Job {job_id}: Denoising · step 21/40 · ETA 3 min 10 s"
    c.reload_queue()  # the database's row (older than the events) does not overwrite the card
    assert detail.step.text() == "21 / 40 (resumed from step 20)"


def test_another_worker_is_said_once_and_not_restarted_in_a_loop(controller, monkeypatch):
    c = controller
    starts = []
    monkeypatch.setattr(c.engine, "start", lambda: starts.append(1))
    c.allow_worker = True
    _running_job(c)
    c.queue.add(__import__("stepvideo.api", fromlist=["GenerationRequest"]).GenerationRequest(prompt="next"))
    c.worker_ctl.on_state("stopped")
    c.worker_ctl.on_crash("another worker (for example `stepvideo queue run` in a terminal) is already running "
                          "this queue", "", 0)
    c.worker_ctl.on_stopped()
    QApplication.instance().processEvents()
    assert starts == []
    assert c.window.status_view.worker.text().startswith("Worker: another process runs the queue")
    assert "Another worker" in c.queue_view.banner.text.text()
