"""Image-to-video through the real app and the real worker on the tiny TI2V model: drop an image on
Create, queue, run, find the video and its source image in the Queue and the Gallery, and reuse (from
both) restores the image and the motion. Slow-ish: the worker imports torch."""

from __future__ import annotations

import pytest
from desktop_support import app_dirs, drop_file, fill_composer, make_controller  # noqa: F401
from PySide6.QtCore import Qt
from ti2v_support import gradient_image

from stepvideo.engine import video_io
from stepvideo_desktop.views.queue_model import COL_PREVIEW

WAIT_MS = 120_000


@pytest.fixture
def ti2v_app(qtbot, app_dirs, tiny_ti2v_model, monkeypatch):  # noqa: F811
    c = make_controller(qtbot, start_worker=True, monkeypatch=monkeypatch)
    c.store.update(active_model=str(tiny_ti2v_model))
    yield c
    c.shutdown()


def test_drop_an_image_queue_run_and_find_video_and_source_in_the_gallery(ti2v_app, qtbot, tmp_path):
    c = ti2v_app
    composer = c.composer
    assert composer._defaults.image_to_video and "active model" in composer.image.note.text()
    image = gradient_image(tmp_path / "boat.png", 96, 64)
    drop_file(composer.image, image)
    assert composer.image.path == str(image)
    fill_composer(composer, "a small red boat drifts on a calm lake", steps=2)  # 32×32, 17 frames
    composer.image.motion.slider.setValue(20)  # 2.0: calm
    qtbot.waitUntil(composer.add_button.isEnabled)
    qtbot.mouseClick(composer.add_button, Qt.MouseButton.LeftButton)
    jobs = c.queue.list()
    assert jobs, composer.error.text()
    job = jobs[0]
    assert job.request["motion"] == 2.0 and job.request["model"] == composer._model
    assert job.request["image"] != str(image)  # the job's own copy
    assert c.queue_model.source_image(job) is not None

    image.unlink()  # the job never needed the user's file
    qtbot.waitUntil(lambda: c.queue.get(job.id).status in ("done", "failed"), timeout=WAIT_MS)
    job = c.queue.get(job.id)
    assert job.status == "done", job.error_message

    c.window.show_page("gallery")
    qtbot.waitUntil(lambda: c.gallery_model.rowCount() == 1)
    item = c.gallery_model.item(0)
    assert item.source_image == video_io.source_image_copy_path(item.path, image) and item.source_image.is_file()
    assert item.metadata["source_image"]["motion"] == 2.0
    c.gallery.select_path(str(item.path))
    assert not c.gallery.source_thumb.isHidden() and not c.gallery.source_thumb.pixmap().isNull()
    qtbot.waitUntil(lambda: item.thumbnail is not None)
    assert c.queue_model.data(c.queue_model.index(0, COL_PREVIEW), Qt.ItemDataRole.ToolTipRole) == "Source image: boat.png"

    composer.image.clear()
    c.gallery.reuse.click()  # from the sidecar: the copy beside the video
    assert c.window.current_page() == "composer"
    assert composer.image.path == str(item.source_image) and composer.image.motion.value() == 2.0
    assert composer.request().image == str(item.source_image)

    composer.image.clear()
    c.job_action("reuse", [job.id])  # from the queue: the job's own copy
    assert composer.image.path == job.request["image"] and composer.image.motion.value() == 2.0
