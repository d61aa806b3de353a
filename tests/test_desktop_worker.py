"""The real app with the real worker process and a tiny model: queue → progress → gallery → play;
a killed worker; closing while a job runs. Slow-ish (each starts a worker that imports torch)."""

from __future__ import annotations

import os
import signal

import pytest
from desktop_support import app_dirs, fill_composer, make_controller  # noqa: F401
from PySide6.QtCore import Qt

WAIT_MS = 120_000  # a worker start imports torch; on 2 busy cores that can take a while


@pytest.fixture
def running_app(qtbot, app_dirs, tiny_model, monkeypatch):  # noqa: F811
    def build(**settings):
        c = make_controller(qtbot, start_worker=True, monkeypatch=monkeypatch)
        c.store.update(active_model=str(tiny_model), **settings)
        built.append(c)
        return c

    built = []
    yield build
    for c in built:
        c.shutdown()


def test_queue_watch_progress_find_in_gallery_and_play(running_app, qtbot, tiny_model):  # noqa: F811
    c = running_app(previews=True, preview_every_steps=1)
    events = []
    c.engine.event.connect(events.append)
    fill_composer(c.composer, "a small red boat on a calm lake", steps=3)
    qtbot.waitUntil(c.composer.add_button.isEnabled)
    qtbot.mouseClick(c.composer.add_button, Qt.MouseButton.LeftButton)
    assert c.queue.list(), c.composer.error.text()
    job_id = c.queue.list()[0].id
    qtbot.waitUntil(lambda: c.queue.get(job_id).status in ("done", "failed"), timeout=WAIT_MS)
    job = c.queue.get(job_id)
    assert job.status == "done", job.error_message
    steps = [e["i"] for e in events if e["type"] == "step" and e.get("job_id") == job_id]
    assert steps == [1, 2, 3]  # progress advanced one step at a time
    assert any(e["type"] == "preview" for e in events)
    assert c.queue_view.detail.step.text() == "3 / 3"
    assert c.queue_model.progress(c.queue_model.jobs[0]) == 1.0
    assert any(e["type"] == "memory" for e in events)  # the live chart was fed
    assert len(c.queue_view.detail.chart.points) > 0

    c.window.show_page("gallery")
    qtbot.waitUntil(lambda: c.gallery_model.rowCount() == 1)
    item = c.gallery_model.item(0)
    assert item.path == c.store.value.output_path / os.path.basename(job.outputs["video"])
    assert item.prompt == "a small red boat on a calm lake" and item.seconds is not None
    c.gallery.select_path(str(item.path))
    player = c.gallery.player
    assert player.source == str(item.path)
    if player.player is None:
        pytest.skip("QtMultimedia unavailable (needs libpulse0)")
    from PySide6.QtMultimedia import QMediaPlayer

    player.toggle()
    qtbot.waitUntil(lambda: player.player.playbackState() == QMediaPlayer.PlaybackState.PlayingState, timeout=10_000)
    qtbot.waitUntil(lambda: player.player.duration() > 0 and player.player.position() > 0, timeout=10_000)
    assert player.player.error() == QMediaPlayer.Error.NoError

    # Reuse settings, then delete (to the trash) and undo.
    c.gallery.reuse.click()
    assert c.window.current_page() == "composer"
    assert c.composer.prompt.toPlainText() == "a small red boat on a calm lake" and c.composer.steps.spin.value() == 3
    c.delete_video(item)
    assert not item.path.exists() and c.gallery_model.rowCount() == 0
    c.undo_delete()
    assert item.path.exists() and item.path.with_suffix(".json").exists()


def test_killed_worker_marks_the_job_app_stays_up_and_resume_finishes_it(running_app, qtbot, app_dirs, monkeypatch):  # noqa: F811
    marker = app_dirs / "blocked"
    monkeypatch.setenv("STEPVIDEO_WORKER_ENGINE", "tests.worker_engine_blocking")
    monkeypatch.setenv("FAKE_BLOCK_MARKER", str(marker))
    c = running_app(checkpoint_every_steps=1)
    fill_composer(c.composer, "a lighthouse in a storm [block]", steps=6)
    c.composer._submit(False)
    job_id = c.queue.list()[0].id
    qtbot.waitUntil(marker.exists, timeout=WAIT_MS)  # the worker stopped mid-job, a checkpoint on disk
    os.kill(c.engine.pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: c.queue.get(job_id).status == "interrupted", timeout=20_000)
    job = c.queue.get(job_id)
    assert "killed" in job.error_message
    assert c.window.isVisible() and c.engine.state == "stopped"
    assert not c.queue_view.banner.isHidden() and "killed" in c.queue_view.banner.text.text()
    assert c.store.value.queue_paused  # it does not silently start the job that killed it again
    row = c.queue_model.row_of(job_id)
    assert c.queue_model.index(row, 4).data().startswith("Resumes from step ")

    c.queue_view.pause_button.click()  # "Resume queue"
    qtbot.waitUntil(lambda: c.queue.get(job_id).status == "done", timeout=WAIT_MS)
    assert c.queue.get(job_id).attempts == 2


def test_closing_while_a_job_runs_asks_and_pause_keeps_a_checkpoint(running_app, qtbot, monkeypatch):
    c = running_app(checkpoint_every_steps=1)
    steps = []
    c.engine.event.connect(lambda e: e["type"] == "step" and steps.append(e["i"]))
    fill_composer(c.composer, "a train crossing a bridge", steps=200)
    c.composer._submit(False)
    job_id = c.queue.list()[0].id
    qtbot.waitUntil(lambda: len(steps) >= 2, timeout=WAIT_MS)
    asked = []
    monkeypatch.setattr(c, "ask_close_choice", lambda: asked.append(True) or "pause")
    c.window.close()
    assert asked
    qtbot.waitUntil(lambda: not c.engine.is_alive(), timeout=60_000)
    qtbot.waitUntil(lambda: not c.window.isVisible(), timeout=5_000)
    job = c.queue.get(job_id)
    assert job.status == "interrupted" and job.checkpoint_step and job.checkpoint_step < 200
    assert c.store.value.queue_paused


def test_cancel_of_a_running_job_stops_it_between_steps(running_app, qtbot):
    c = running_app()
    steps = []
    c.engine.event.connect(lambda e: e["type"] == "step" and steps.append(e["i"]))
    fill_composer(c.composer, "a kite over a beach", steps=200)
    c.composer._submit(False)
    job_id = c.queue.list()[0].id
    qtbot.waitUntil(lambda: len(steps) >= 1, timeout=WAIT_MS)
    c.job_action("cancel", [job_id])
    qtbot.waitUntil(lambda: c.queue.get(job_id).status == "cancelled", timeout=30_000)
    assert steps[-1] < 200 and c.engine.is_alive()  # the worker stays up for the next job


def test_a_hung_worker_is_killed_when_a_cancel_is_not_answered(running_app, qtbot, app_dirs, monkeypatch):  # noqa: F811
    marker = app_dirs / "blocked"
    monkeypatch.setenv("STEPVIDEO_WORKER_ENGINE", "tests.worker_engine_blocking")
    monkeypatch.setenv("FAKE_BLOCK_MARKER", str(marker))
    c = running_app(checkpoint_every_steps=1)
    c.stop_grace_s = 0.5
    fill_composer(c.composer, "a stuck render [block]", steps=6)
    c.composer._submit(False)
    job_id = c.queue.list()[0].id
    qtbot.waitUntil(marker.exists, timeout=WAIT_MS)
    c.job_action("cancel", [job_id])
    qtbot.waitUntil(lambda: c.queue.get(job_id).status == "cancelled", timeout=30_000)
    qtbot.waitUntil(lambda: "killed" in c.queue_view.banner.text.text(), timeout=10_000)
    assert c.window.isVisible() and not c.store.value.queue_paused
