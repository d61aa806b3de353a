"""The app must start and tell the truth: an unusable queue database, crash-hook coverage at start,
decode progress and ETAs on the job card, queue thumbnails, first-launch size, CJK fallback."""

from __future__ import annotations

import pytest
from desktop_support import app_dirs, make_controller  # noqa: F401
from PySide6.QtWidgets import QApplication

from stepvideo import paths


@pytest.fixture
def root_logging():
    """A root logger without another test's log file (setup_logging reuses one it finds), restored after."""
    import logging
    import logging.handlers

    root = logging.getLogger()
    before = list(root.handlers)
    earlier_files = [h for h in before if isinstance(h, logging.handlers.RotatingFileHandler)]
    for handler in earlier_files:
        root.removeHandler(handler)
    yield
    for handler in root.handlers[:]:
        if handler not in before:
            root.removeHandler(handler)
            handler.close()
    for handler in earlier_files:
        root.addHandler(handler)


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

    class LookInsteadOfLooping:  # the app's exec(): look at the window the user would see, then "quit"
        def exec(self):
            windows = _main_windows()
            seen["windows"] = len(windows)
            seen["rows"] = windows[0].pages["queue"].model.rowCount() if windows else None
            for w in windows:
                w.close()
            return 0

    real_make = desktop_app.make_application
    monkeypatch.setattr(desktop_app, "make_application", lambda argv: (real_make(argv), LookInsteadOfLooping())[1])
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


# ---- §6 first launch and small screens --------------------------------------------------------------

@pytest.mark.parametrize(("screen", "expected"), [
    ((1366, 738), (1161, 640)), ((1920, 1050), (1600, 892)), ((2560, 1400), (1600, 1000)),
    ((1024, 600), (960, 600)),  # smaller than the minimum: the window still fits the screen
])
def test_first_launch_size_suits_the_screen(screen, expected):
    from stepvideo_desktop.views.main_window import first_launch_size

    assert first_launch_size(*screen) == expected


def test_first_launch_opens_at_the_screens_size_not_the_minimum(qtbot, app_dirs, monkeypatch):  # noqa: F811
    from stepvideo_desktop.controller import Controller
    from stepvideo_desktop.views import main_window

    monkeypatch.setattr(main_window, "available_screen_size", lambda: (1920, 1050))
    c = Controller(start_worker=False)
    qtbot.addWidget(c.window)
    try:
        assert not c.store.value.window_geometry  # a first launch
        assert (c.window.width(), c.window.height()) == (1600, 892)
    finally:
        c.shutdown()


def test_narrow_queue_gives_the_prompt_its_share_and_keeps_eta_whole(controller, qtbot):
    from stepvideo_desktop.views.queue_model import COL_ETA, COL_PROMPT
    from stepvideo_desktop.views.queue_view import LEAST, PROMPT_SHARE, column_widths

    for available in (600, 700, 800, 1000, 1600):
        widths = column_widths(available)
        prompt = available - sum(widths.values())
        assert all(widths[col] >= LEAST[col] for col in widths)
        assert prompt >= int(available * PROMPT_SHARE) - 3 or widths == LEAST
    c = controller
    c.window.resize(940, 640)
    c.window.show_page("queue")
    qtbot.waitUntil(lambda: c.queue_view.table.viewport().width() < 720)
    c.queue_view.fit_columns()
    table, header = c.queue_view.table, c.queue_view.table.horizontalHeader()
    assert header.sectionSize(COL_PROMPT) >= int(table.viewport().width() * PROMPT_SHARE) - 3
    took = table.fontMetrics().horizontalAdvance("took 59 min 59 s")
    assert header.sectionSize(COL_ETA) >= took + 16  # "took 1 min…" is never cut
    summary = c.queue_view.summary
    assert summary.full_text() == "0 running · 0 waiting · 0 done" and summary.toolTip() == summary.full_text()


def test_add_to_queue_stays_above_the_fold_on_create(controller, qtbot):
    c = controller
    c.window.resize(1024, 640)
    c.window.show_page("composer")
    c.composer.advanced.setChecked(True)  # the tallest the page gets
    qtbot.waitUntil(lambda: c.window.width() == 1024)
    button = c.composer.add_button
    bottom = button.mapTo(c.window, button.rect().bottomLeft()).y()
    assert button.isVisible() and bottom < c.window.statusBar().mapTo(c.window, c.window.statusBar().rect().topLeft()).y()


# ---- §7 honest controls -----------------------------------------------------------------------------

def test_disabled_buttons_look_disabled(controller):
    from PySide6.QtGui import QIcon

    c = controller
    c.composer.prompt.setPlainText("")
    c.composer._update_fit()
    button = c.composer.next_button
    assert not button.isEnabled()
    normal = button.icon().pixmap(16, 16, QIcon.Mode.Normal).toImage()
    faded = button.icon().pixmap(16, 16, QIcon.Mode.Disabled).toImage()
    alpha = lambda img: max(img.pixelColor(x, y).alpha() for x in range(img.width()) for y in range(img.height()))  # noqa: E731
    assert alpha(faded) < alpha(normal) * 0.5
    sheet = QApplication.instance().styleSheet()
    assert "QPushButton:disabled" in sheet and "dashed" in sheet


def test_models_not_installed_and_offline_controls(controller):
    c = controller
    card = next(iter(c.models.cards.values()))
    card.show_versions([])
    assert not (card.verify.isEnabled() or card.delete.isEnabled() or card.use.isEnabled())
    assert "download it first" in card.verify.toolTip()
    c.models.set_online(False)
    assert card.download.property("primary") is False and "Offline" in card.download.toolTip()
    c.models.set_online(True)
    assert card.download.property("primary") is True


def test_settings_folders_show_the_folder_in_use_as_text(controller):
    page = controller.settings_page
    field = page.output_dir
    assert field.edit.text() == field.default and field.edit.text() and not field.edit.placeholderText()
    assert field.default_tag.isVisibleTo(page) and field.value() == ""


def test_create_names_the_active_model_and_takes_its_defaults(controller, tiny_model):
    c = controller
    assert c.composer.model_line.text().startswith("Model: Step-Video-T2V")
    assert (c.composer.size.currentData(), c.composer.frames.value() * 17) == ("landscape", 204)
    c.models_ctl.add_local_folder(str(tiny_model))
    composer = c.composer
    assert composer.model_line.text().startswith(f"Model: {tiny_model.name}") and "test model" in composer.model_line.text()
    assert (composer.custom_width.text(), composer.custom_height.text(), composer.frames.value()) == ("256", "144", 1)
    assert composer.steps.spin.value() == 4 and composer.steps.is_default()
    composer.prompt.setPlainText("a boat")
    request = composer.request()
    assert (request.width, request.height, request.frames, request.steps) == (256, 144, 17, 4)
    assert request.model == str(tiny_model)


def test_a_bad_field_in_settings_resets_only_it_and_says_so_once(qtbot, app_dirs, tiny_model, monkeypatch):  # noqa: F811
    import json

    path = app_dirs / "config" / "settings.json"
    path.write_text(json.dumps({"theme": "neon", "local_models": [str(tiny_model), "relative/folder"],
                                "preview_every_steps": 7}))
    first = make_controller(qtbot, monkeypatch=monkeypatch)
    try:
        s = first.store.value
        assert s.local_models == (str(tiny_model),) and s.preview_every_steps == 7 and s.theme == "system"
        banner = first.window.banner
        assert banner.isVisibleTo(first.window)
        assert "settings.json.bad-" in banner.text.text() and "theme" in banner.text.text()
        assert "model folders, was kept" in banner.text.text()
    finally:
        first.shutdown()
    second = make_controller(qtbot, monkeypatch=monkeypatch)  # once: the repaired file was saved
    try:
        assert not second.window.banner.isVisibleTo(second.window)
        assert second.store.value.local_models == (str(tiny_model),)
    finally:
        second.shutdown()


def test_queue_shows_a_thumbnail_for_a_finished_job(controller, qtbot):
    import subprocess

    import imageio_ffmpeg
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QPixmap

    from stepvideo.api import GenerationRequest
    from stepvideo_desktop.views.queue_model import COL_PREVIEW

    c = controller
    video = c.store.value.output_path / "fox.mp4"
    video.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "color=c=red:s=64x36:d=1",
                    "-pix_fmt", "yuv420p", str(video)], check=True, timeout=60)
    job = c.queue.add(GenerationRequest(prompt="a red fox"))
    c.queue.claim_next(pid=None)
    c.queue.mark_done(job.id, {"video": str(video)})
    c.reload_gallery()
    c.reload_queue()

    def thumbnail():  # the index is looked up each time: a reload may reset the model
        index = c.queue_model.index(c.queue_model.row_of(job.id), COL_PREVIEW)
        value = index.data(Qt.ItemDataRole.DecorationRole)
        return value if isinstance(value, QPixmap) and not value.isNull() else None

    qtbot.waitUntil(lambda: thumbnail() is not None, timeout=60_000)  # ffmpeg in a thread, on a busy machine
    pixmap = thumbnail()
    assert pixmap.width() <= 64 and pixmap.height() <= 36
    color = pixmap.toImage().pixelColor(pixmap.width() // 2, pixmap.height() // 2)
    assert color.red() > 200 and color.green() < 60  # the video's own frame, not a placeholder


# ---- §8 CJK text and §3's display side --------------------------------------------------------------

def test_without_a_cjk_font_create_falls_back_to_english(qtbot, app_dirs, monkeypatch):  # noqa: F811
    from stepvideo_desktop import assets, cjk_font

    monkeypatch.setattr(cjk_font, "has_cjk_font", lambda: False)
    c = make_controller(qtbot, monkeypatch=monkeypatch)
    try:
        chips = [b.toolTip() for b in c.composer.example_buttons]
        assert len(chips) == 6 and not any(assets.has_cjk(t) for t in chips)
        assert not assets.has_cjk(c.composer.prompt.placeholderText())
        assert any("fonts-noto-cjk" in w.text() for w in c.composer.advanced_box.findChildren(type(c.composer.error)))
    finally:
        c.shutdown()
    monkeypatch.setattr(cjk_font, "has_cjk_font", lambda: True)
    c = make_controller(qtbot, monkeypatch=monkeypatch)
    try:
        assert any(assets.has_cjk(b.toolTip()) for b in c.composer.example_buttons)
        assert assets.has_cjk(c.composer.prompt.placeholderText())
    finally:
        c.shutdown()


def test_bidi_controls_are_shown_not_obeyed(controller):
    from PySide6.QtCore import Qt

    from stepvideo.api import GenerationRequest
    from stepvideo.display_text import for_display
    from stepvideo_desktop.views.queue_model import COL_PROMPT

    assert for_display("abc\u202edef\u2066x") == "abc[U+202E]def[U+2066]x"
    job = controller.queue.add(GenerationRequest(prompt="cat \u202etac"))
    controller.reload_queue()
    index = controller.queue_model.index(controller.queue_model.row_of(job.id), COL_PROMPT)
    assert index.data(Qt.ItemDataRole.DisplayRole) == "cat [U+202E]tac"
    assert controller.queue.get(job.id).prompt == "cat \u202etac"  # what the model reads is untouched
