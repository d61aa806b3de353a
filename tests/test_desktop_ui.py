"""The real main window, offscreen, without a worker: Create, the queue table, pages, drag & drop, screenshots."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from desktop_support import app_dirs, fill_composer, make_controller, set_custom_size  # noqa: F401
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDropEvent

from stepvideo.presets import OFFICIAL_NEGATIVE_PROMPT
from stepvideo_desktop.views.queue_model import MIME

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def root_logging():
    """app.setup_logging adds a file handler to the root logger; take it away again after the test."""
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


def test_typing_a_prompt_and_ctrl_enter_queues_it(controller, qtbot):
    composer = controller.composer
    assert composer.negative.toPlainText() == OFFICIAL_NEGATIVE_PROMPT
    composer.prompt.insertPlainText("一只猫在窗台上晒太阳")  # QTest can only type ASCII keys
    qtbot.keyClicks(composer.prompt, " a cat in the sun")
    composer.frames.setValue(2)
    composer.seed.setText("42")
    composer.lock.setChecked(True)
    qtbot.keyClick(composer.prompt, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    jobs = controller.queue.list()
    assert len(jobs) == 1
    req = jobs[0].request
    assert (req["prompt"], req["frames"], req["seed"], req["negative_prompt"]) == (
        "一只猫在窗台上晒太阳 a cat in the sun", 34, 42, None)
    assert controller.queue_model.rowCount() == 1
    assert controller.window.status_view.queue.text() == "queue: 1 waiting"
    assert composer.seed.text() == "42"  # locked: kept for the next job


def test_generate_next_puts_the_job_first_and_unlocked_seed_rolls(controller, qtbot, monkeypatch):
    from stepvideo_desktop.views import composer as composer_module

    rolls = iter([1111, 2222, 3333])
    monkeypatch.setattr(composer_module.random, "randrange", lambda _n: next(rolls))
    composer = controller.composer
    composer.seed.setText("42")
    composer.prompt.setPlainText("first")
    qtbot.waitUntil(composer.add_button.isEnabled)
    composer.add_button.click()
    assert composer.seed.text() == "1111"  # unlocked: a new seed for the next job
    composer.prompt.setPlainText("second")
    qtbot.waitUntil(composer.next_button.isEnabled)
    composer.next_button.click()
    assert [(j.prompt, j.request["seed"]) for j in controller.queue.list()] == [("second", 1111), ("first", 42)]
    assert composer.seed.text() == "2222"
    composer.lock.setChecked(True)
    composer.prompt.setPlainText("third")
    qtbot.waitUntil(composer.add_button.isEnabled)
    composer.add_button.click()
    assert controller.queue.list()[-1].request["seed"] == 2222 and composer.seed.text() == "2222"  # locked: kept
    composer.dice.click()
    assert composer.seed.text() == "3333"


def test_custom_size_is_validated_as_you_type_never_rounded(controller, qtbot):
    composer = controller.composer
    composer.prompt.setPlainText("a boat")
    set_custom_size(composer, 500, 992)
    qtbot.waitUntil(lambda: "height 500 is not allowed" in composer.error.text())
    assert "nearest: 496 or 512" in composer.error.text()
    assert not composer.add_button.isEnabled()
    composer.add_button.click()
    assert controller.queue.list() == []
    composer.custom_height.setText("512")
    qtbot.waitUntil(composer.add_button.isEnabled)
    assert composer.request().height == 512


def test_frames_show_seconds_and_quality_reset_to_preset(controller):
    composer = controller.composer
    composer.frames.setValue(5)
    assert composer.frames_text.text() == "85 frames · 3.4 s"
    composer.set_preset("turbo")
    assert composer.steps.spin.value() == 15 and composer.steps.default_label.text() == "default 15"
    composer.steps.spin.setValue(20)
    assert composer.steps.reset.isEnabled()
    composer.steps.reset.click()
    assert composer.steps.spin.value() == 15


def test_token_counts_need_a_model_and_use_its_tokenizers(controller, qtbot, tiny_model):  # noqa: F811
    composer = controller.composer
    qtbot.waitUntil(lambda: "no model installed" in composer.llm_count.text())
    controller.store.update(active_model=str(tiny_model))
    composer.prompt.setPlainText("a red fox in the snow")
    qtbot.waitUntil(lambda: composer.llm_count.text().startswith("Step-LLM ") and "/ 320" in composer.llm_count.text())
    assert "/ 77" in composer.clip_count.text()
    composer.prompt.setPlainText("fox " * 200)
    qtbot.waitUntil(lambda: "will be cut" in composer.clip_count.text())


def test_example_chip_fills_the_editor(controller):
    chip = controller.composer.example_buttons[0]
    chip.click()
    assert controller.composer.prompt.toPlainText() == chip.toolTip()


def test_ctrl_number_switches_pages(controller, qtbot):
    window = controller.window
    for i, key in enumerate(("composer", "queue", "gallery", "models", "settings")):
        qtbot.keyClick(window, Qt.Key(Qt.Key.Key_1 + i), Qt.KeyboardModifier.ControlModifier)
        assert window.current_page() == key


def test_queue_actions_duplicate_cancel_remove_and_reorder(controller):
    c = controller
    for prompt in ("one", "two", "three"):
        c.composer.prompt.setPlainText(prompt)
        c.composer._submit(False)
    ids = [j.id for j in c.queue.list()]
    c.job_action("duplicate", [ids[0]])
    assert [j.prompt for j in c.queue.list()] == ["one", "two", "three", "one"]
    c.job_action("cancel", [ids[1]])
    assert c.queue.get(ids[1]).status == "cancelled"
    c.reorder([ids[2], ids[0], ids[1], c.queue.list()[-1].id])
    assert [j.prompt for j in c.queue.list()][:2] == ["three", "one"]
    c.job_action("retry", [ids[0]])  # not allowed for a queued job: said in words, nothing breaks
    assert "only failed, cancelled or interrupted" in c.queue_view.banner.text.text()
    c.job_action("remove", [ids[1]])
    assert ids[1] not in [j.id for j in c.queue.list()]
    assert c.queue_model.rowCount() == 3


def test_drag_drop_in_the_table_reorders_the_queue(controller):
    c = controller
    for prompt in ("a", "b", "c"):
        c.composer.prompt.setPlainText(prompt)
        c.composer._submit(False)
    model = c.queue_model
    # What the view asks before it lets a row be dragged or dropped on (JobRowDrag, shared with the
    # variation-group model the table shows).
    view_model = c.queue_view.table.model()
    assert view_model.flags(view_model.index(0, 0)) & Qt.ItemFlag.ItemIsDragEnabled
    assert view_model.flags(view_model.index(-1, -1)) & Qt.ItemFlag.ItemIsDropEnabled
    assert model.supportedDropActions() == Qt.DropAction.MoveAction and view_model.mimeTypes() == [MIME]
    mime = model.mimeData([model.index(2, 0)])
    model.dropMimeData(mime, Qt.DropAction.MoveAction, 0, 0, model.index(-1, -1))
    assert [j.prompt for j in c.queue.list()] == ["c", "a", "b"]
    assert [j.prompt for j in model.jobs] == ["c", "a", "b"]


def test_import_prompts_uses_the_create_settings(controller, sandbox):
    file = sandbox / "prompts.txt"
    file.write_text("a lighthouse at night\n\n海边的灯塔\n", encoding="utf-8")
    controller.composer.frames.setValue(3)
    assert controller.import_prompts(str(file)) == 2
    jobs = controller.queue.list()
    assert [j.prompt for j in jobs] == ["a lighthouse at night", "海边的灯塔"]
    assert {j.request["frames"] for j in jobs} == {51}


def test_pause_queue_is_remembered(controller, qtbot):
    controller.queue_view.pause_button.click()
    assert controller.store.value.queue_paused
    assert controller.queue_view.pause_button.text() == "Resume queue"


def test_dropping_an_mp4_loads_its_settings_into_create(controller, sandbox):
    video = sandbox / "videos" / "made.mp4"
    video.write_bytes(b"\0" * 16)
    request = {"prompt": "a dropped fox", "height": 768, "width": 768, "frames": 51, "seed": 7, "preset": "turbo",
               "steps": 12, "negative_prompt": "blurry"}
    video.with_suffix(".json").write_text(json.dumps({"request": request}))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(video))])
    controller.window.show_page("queue")
    drop = QDropEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    controller.window.dropEvent(drop)
    composer = controller.composer
    assert controller.window.current_page() == "composer"
    assert composer.prompt.toPlainText() == "a dropped fox"
    assert composer.size.currentData() == "square" and composer.frames.value() == 3
    assert (composer.seed.text(), composer.preset.value(), composer.steps.spin.value()) == ("7", "turbo", 12)
    assert composer.negative.toPlainText() == "blurry" and composer.lock.isChecked()


def test_dropping_a_foreign_mp4_says_so(controller, sandbox):
    video = sandbox / "other.mp4"
    video.write_bytes(b"\0" * 16)
    assert not controller.load_video_settings(str(video))
    banner = controller.window.banner
    assert not banner.isHidden() and "other.mp4 has no StepVideo settings" in banner.text.text()


def _made_by_the_app(path: Path, prompt: str) -> Path:
    """A real mp4 with the app's metadata in its comment tag and no sidecar next to it."""
    import numpy as np

    from stepvideo.engine import video_io

    request = {"prompt": prompt, "height": 544, "width": 992, "frames": 34, "seed": 5, "steps": 20}
    return video_io.write_mp4(np.full((17, 32, 32, 3), 90, np.uint8), path, {"request": request})


def test_files_from_the_command_line_load_settings_or_say_why_not(controller, sandbox):
    from stepvideo_desktop.app import parse_args

    made = _made_by_the_app(sandbox / "elsewhere" / "made.mp4", "a heron at dawn")
    notes = sandbox / "notes.txt"
    notes.write_text("not a video")
    args = parse_args([str(notes), str(sandbox / "missing.mp4"), str(made)])  # Exec=stepvideo-desktop %F
    controller.window.show_page("queue")
    assert not controller.open_files(args.files)
    composer, banner = controller.composer, controller.window.banner
    assert composer.prompt.toPlainText() == "a heron at dawn" and composer.seed.text() == "5"  # from the mp4 tag
    assert (composer.size.currentData(), composer.frames.value(), composer.steps.spin.value()) == ("landscape", 2, 20)
    assert controller.window.current_page() == "composer" and banner.isVisible()  # its area shows with it
    assert banner.text.text() == ("notes.txt is not an mp4 video; StepVideo opens only the .mp4 videos it made, to "
                                  "load their settings into Create. (and 1 more file(s) that could not be opened)")
    assert controller.open_files([str(made)]) and banner.isHidden() and not banner.parentWidget().isVisible()
    assert not controller.open_files([str(sandbox)])
    assert "does not exist or is not a file" in banner.text.text()


@pytest.mark.qt_no_exception_capture
def test_an_exception_in_a_slot_is_logged_and_shown_in_one_line(controller, qtbot, root_logging):
    from PySide6.QtWidgets import QPushButton

    from stepvideo_desktop import app as app_module
    from stepvideo_desktop import crash_hook

    log_file = app_module.setup_logging()
    previous = crash_hook.install(controller.show_unexpected, log_file)
    try:
        button = QPushButton("broken")
        qtbot.addWidget(button)
        button.clicked.connect(lambda: {}["missing key"])
        button.click()
    finally:
        sys.excepthook = previous
    banner = controller.window.banner
    assert not banner.isHidden() and controller.window.isVisible()
    line = banner.text.text()
    assert "KeyError: 'missing key'" in line and str(log_file) in line and "\n" not in line and "Traceback" not in line
    logged = log_file.read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in logged and "KeyError: 'missing key'" in logged


def test_a_setting_that_cannot_be_saved_still_applies_and_says_so(controller, monkeypatch):
    from stepvideo_desktop import settings as settings_module

    def refuse(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(settings_module, "save", refuse)
    controller.queue_view.pause_button.click()
    assert controller.store.value.queue_paused and controller.queue_view.pause_button.text() == "Resume queue"
    banner = controller.window.banner
    assert not banner.isHidden()
    assert "Could not save the settings to" in banner.text.text() and "Permission denied" in banner.text.text()


def test_a_failed_delete_puts_back_what_moved_or_says_where_it_is(controller, sandbox, monkeypatch):
    import os

    from stepvideo_desktop.controllers import gallery as gallery_controller

    trash = sandbox / "trash"
    trash.mkdir()

    def only_videos_move(path):  # the sidecar cannot be moved to the trash
        if path.suffix == ".json":
            return None
        os.replace(path, trash / path.name)
        return str(trash / path.name)

    monkeypatch.setattr(gallery_controller, "move_to_trash", only_videos_move)
    video = sandbox / "videos" / "fox.mp4"
    video.write_bytes(b"video")
    video.with_suffix(".json").write_text(json.dumps({"request": {"prompt": "a fox"}}))
    controller.reload_gallery()
    item = controller.gallery_model.item(0)
    controller.delete_video(item)
    assert video.read_bytes() == b"video" and video.with_suffix(".json").exists()  # all or nothing
    assert "nothing was deleted" in controller.gallery.banner.text.text()

    def broken_move(*_args):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(gallery_controller.shutil, "move", broken_move)
    controller.delete_video(item)  # the put-back fails too: no exception, and the user learns where it is
    assert (trash / "fox.mp4").read_bytes() == b"video"
    text = controller.gallery.banner.text.text()
    assert f"is in the trash at {trash / 'fox.mp4'}" in text and "Input/output error" in text


def test_window_state_is_restored_on_launch(qtbot, app_dirs, monkeypatch):  # noqa: F811
    first = make_controller(qtbot, monkeypatch=monkeypatch)
    first.window.resize(1100, 720)
    first.window.show_page("gallery")
    first.window.close()
    first.shutdown()
    second = make_controller(qtbot, monkeypatch=monkeypatch)
    try:
        assert second.window.current_page() == "gallery"
        assert second.store.value.window_geometry
    finally:
        second.shutdown()


def test_screenshot_mode_writes_a_png_and_exits(sandbox, tmp_path):
    out = tmp_path / "models.png"
    stray = tmp_path / "notes.txt"  # a file argument (as the desktop entry passes) is not a usage error
    stray.write_text("x")
    proc = subprocess.run([sys.executable, "-m", "stepvideo_desktop", "--screenshot", str(out), "--page", "models", str(stray)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    from PySide6.QtGui import QImage

    image = QImage(str(out))
    assert (image.width(), image.height()) == (1280, 800)


def test_a_screenshot_that_cannot_be_written_names_the_path(app_dirs, root_logging, capsys):  # noqa: F811
    from stepvideo_desktop.app import main

    target = app_dirs / "no such folder" / "queue.png"
    assert main(["--screenshot", str(target), "--page", "queue"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"stepvideo-desktop: could not write the screenshot {target}: the folder {target.parent} does not exist"]


def test_reopening_shows_the_queue_exactly_as_it_was(qtbot, app_dirs, monkeypatch):  # noqa: F811
    first = make_controller(qtbot, monkeypatch=monkeypatch)
    for prompt in ("dawn", "noon", "dusk", "night"):
        first.composer.prompt.setPlainText(prompt)
        first.composer._submit(False)
    ids = [j.id for j in first.queue.list()]
    first.job_action("cancel", [ids[1]])
    first.job_action("pause", [ids[2]])
    first.reorder([ids[3], ids[0], ids[1], ids[2]])
    before = [(j.id, j.prompt, j.status, j.position) for j in first.queue.list()]
    shown_before = [first.queue_model.index(r, 4).data() for r in range(first.queue_model.rowCount())]
    first.window.close()
    first.shutdown()

    second = make_controller(qtbot, monkeypatch=monkeypatch)
    try:
        after = [(j.id, j.prompt, j.status, j.position) for j in second.queue_model.jobs]
        assert after == before
        assert [second.queue_model.index(r, 4).data() for r in range(second.queue_model.rowCount())] == shown_before
    finally:
        second.shutdown()


def test_a_job_left_running_by_a_dead_app_shows_as_interrupted(qtbot, app_dirs, monkeypatch):  # noqa: F811
    from stepvideo.api import GenerationRequest
    from stepvideo.jobs.store import JobQueue

    queue = JobQueue()
    job = queue.add(GenerationRequest(prompt="left behind"))
    queue.claim_next(pid=999_999)  # "running" in a worker that no longer exists
    queue.close()
    c = make_controller(qtbot, monkeypatch=monkeypatch)
    try:
        assert c.queue.get(job.id).status == "interrupted"
        assert c.queue_model.jobs[0].status == "interrupted"
    finally:
        c.shutdown()
