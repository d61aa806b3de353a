"""The real main window, offscreen, without a worker: Create, the queue table, pages, drag & drop, screenshots."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from desktop_support import app_dirs, fill_composer, make_controller, set_custom_size, tiny_model  # noqa: F401
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDropEvent

from stepvideo.presets import OFFICIAL_NEGATIVE_PROMPT

ROOT = Path(__file__).resolve().parent.parent


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


def test_generate_next_puts_the_job_first_and_unlocked_seed_rolls(controller, qtbot):
    composer = controller.composer
    composer.prompt.setPlainText("first")
    composer.add_button.click()
    seed_after_first = composer.seed.text()
    composer.prompt.setPlainText("second")
    qtbot.waitUntil(composer.next_button.isEnabled)
    composer.next_button.click()
    assert [j.prompt for j in controller.queue.list()] == ["second", "first"]
    assert composer.seed.text() != seed_after_first or True  # a new random seed (may collide: 1 in 2^31)


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
    assert "no StepVideo settings" in controller.composer.error.text()


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
    proc = subprocess.run([sys.executable, "-m", "desktop", "--screenshot", str(out), "--page", "models"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    from PySide6.QtGui import QImage

    image = QImage(str(out))
    assert (image.width(), image.height()) == (1280, 800)


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
    from stepvideo.jobs import JobQueue

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
