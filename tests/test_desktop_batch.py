"""Batch work in the real main window (offscreen, no worker): variations from Create and their group in the
Queue, editing a waiting job in Create, export/import from the Queue page, and the Settings GPU picker
with a fake NVML of two GPUs."""

from __future__ import annotations

import json
import os
import sys

import pytest
from desktop_support import app_dirs, fill_composer, make_controller  # noqa: F401
from fake_nvml import GIB, TWO_GPUS, fake_nvml
from PySide6.QtCore import Qt


@pytest.fixture
def controller(qtbot, app_dirs, monkeypatch):  # noqa: F811
    c = make_controller(qtbot, monkeypatch=monkeypatch)
    yield c
    c.shutdown()


def test_four_variations_from_create_show_as_one_group(controller, qtbot):
    c = controller
    fill_composer(c.composer, "a lighthouse in a storm")
    c.composer.seed.setText("100")
    c.composer.variations.spin.setValue(4)
    assert c.composer.add_button.text() == "Add 4 to queue"
    qtbot.waitUntil(c.composer.add_button.isEnabled)
    qtbot.mouseClick(c.composer.add_button, Qt.MouseButton.LeftButton)
    jobs = c.queue.list()
    assert [j.request["seed"] for j in jobs] == [100, 101, 102, 103]
    assert len({j.group_id for j in jobs}) == 1 and jobs[0].group_id

    groups = c.queue_view.groups
    assert groups.rowCount() == 5  # the header, then its four jobs
    header = groups.index(0, 2)
    assert header.data() == "4 variations · a lighthouse in a storm"
    assert groups.index(0, 3).data() == "seeds 100…103" and groups.index(0, 4).data() == "0/4 done"
    assert groups.group_progress(jobs[0].group_id) == 0.0

    c.queue.claim_next(pid=os.getpid())  # one done, one half way: the group's bar shows 3/8
    c.queue.mark_done(jobs[0].id, {"video": "/nowhere.mp4"})
    c.queue.claim_next(pid=os.getpid())
    c.queue.mark_progress(jobs[1].id, step=1, steps=2)
    c.reload_queue()
    assert groups.group_progress(jobs[0].group_id) == pytest.approx(1.5 / 4)
    assert groups.index(0, 4).data() == "1/4 done · 1 running"

    c.queue_view.table.selectRow(0)  # the header stands for the whole group
    assert c.queue_view.selected_ids() == [j.id for j in jobs]
    c.queue_view._clicked(groups.index(0, 0))  # the chevron collapses it
    assert groups.rowCount() == 1 and groups.index(0, 0).data() == "▸"
    c.composer.prompt.setPlainText("a single one")
    c.composer.variations.spin.setValue(1)
    c.composer._submit(False)
    assert groups.rowCount() == 2 and c.queue.list()[-1].group_id is None
    c.queue_view._clicked(groups.index(0, 0))
    assert groups.rowCount() == 6


def test_edit_a_waiting_job_in_create(controller, qtbot, monkeypatch):
    c = controller
    fill_composer(c.composer, "a red ball", steps=3)
    c.composer._submit(False)
    job = c.queue.list()[0]
    c.job_action("edit", [job.id])
    assert c.window.current_page() == "composer"
    assert c.composer.editing_job == job.id
    assert c.composer.edit_bar.isVisibleTo(c.window) and not c.composer.add_button.isVisibleTo(c.window)
    assert c.composer.prompt.toPlainText() == "a red ball"
    c.composer.prompt.setPlainText("a blue cube")
    c.composer.steps.spin.setValue(5)
    qtbot.waitUntil(c.composer.edit_bar.update.isEnabled)
    qtbot.mouseClick(c.composer.edit_bar.update, Qt.MouseButton.LeftButton)
    edited = c.queue.get(job.id)
    assert (edited.prompt, edited.request["steps"], edited.status) == ("a blue cube", 5, "queued")
    assert edited.request["seed"] == job.request["seed"] and len(c.queue.list()) == 1  # changed, not added
    assert c.composer.editing_job is None and not c.composer.add_button.isHidden()
    assert c.window.current_page() == "queue"

    # A paused job with a checkpoint: the user is asked; "no" keeps job and checkpoint as they were.
    c.queue.mark_checkpoint(job.id, 2)
    c.queue.pause(job.id)
    store = c.queue.checkpoints(job.id)
    store.directory.mkdir(parents=True, exist_ok=True)
    store.path.write_bytes(b"latents")
    asked = []
    monkeypatch.setattr(c, "_confirm", lambda title, text: asked.append(text) or False)
    assert c.edit_job(job.id)
    assert "checkpoint (step 2)" in c.composer.edit_bar.label.text()
    c.composer.prompt.setPlainText("a green cone")
    c.composer._submit(False)
    assert "has a checkpoint at step 2" in asked[0] and c.queue.get(job.id).prompt == "a blue cube"
    assert store.path.exists() and c.composer.editing_job == job.id
    monkeypatch.setattr(c, "_confirm", lambda *_a: True)
    c.composer._submit(False)
    assert c.queue.get(job.id).prompt == "a green cone" and not store.path.exists()

    c.queue.resume(job.id)
    c.queue.claim_next(pid=os.getpid())  # running jobs are not offered for editing
    assert not c.edit_job(job.id) and "is running" in c.queue_view.banner.text.text()


def test_export_and_import_from_the_queue_page(controller, sandbox):
    c = controller
    fill_composer(c.composer, "waves")
    c.composer.variations.spin.setValue(2)
    c.composer._submit(False)
    out = sandbox / "queue.jsonl"
    assert c.export_queue("waiting", str(out)) == 2
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["seed"] for r in rows] == [c.queue.list()[0].request["seed"] + i for i in range(2)]
    csv = sandbox / "batch.csv"
    csv.write_text("prompt,steps,size\na fox,3,32x32\na hen,4,64x64\n", encoding="utf-8")
    assert c.import_prompts(str(csv)) == 2
    added = c.queue.list()[2:]
    assert [(j.prompt, j.request["steps"], j.request["height"]) for j in added] == [("a fox", 3, 32), ("a hen", 4, 64)]
    assert c.import_prompts(str(out)) == 2 and len(c.queue_view.groups.group_ids()) == 2


def test_settings_gpu_picker_with_two_gpus(qtbot, app_dirs, monkeypatch):  # noqa: F811
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(TWO_GPUS))
    c = make_controller(qtbot, monkeypatch=monkeypatch)
    try:
        page = c.settings_page
        c.window.show_page("settings")
        assert page.gpu_card.isVisibleTo(c.window) and page.gpu.count() == 2
        assert page.gpu.itemText(1) == "GPU 1: NVIDIA RTX A6000 (48 GiB)"
        assert c.monitor.poll().vram_total == 24 * GIB and "CUDA_VISIBLE_DEVICES" not in c.worker_ctl.env()
        page.gpu.setCurrentIndex(1)
        assert c.store.value.gpu_index == 1
        sample = c.monitor.poll()
        assert (sample.vram_total, sample.vram_used) == (48 * GIB, 1 * GIB)
        assert c.window.status_view.gpu.label.text() == "GPU 1: NVIDIA RTX A6000"
        env = c.worker_ctl.env()
        assert env["CUDA_VISIBLE_DEVICES"] == "1" and env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
        fill_composer(c.composer, "a fox")
        assert "/ 50.5 GB free" in c._predict(c.composer.request()).text  # GPU 1: 47 GiB free (GB are 10^9)
    finally:
        c.shutdown()


def test_no_gpu_picker_with_one_gpu(qtbot, app_dirs, monkeypatch):  # noqa: F811
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(TWO_GPUS[:1]))
    c = make_controller(qtbot, monkeypatch=monkeypatch)
    try:
        c.window.show_page("settings")
        assert c.settings_page.isVisible() and not c.settings_page.gpu_card.isVisibleTo(c.window)
        assert c.window.status_view.gpu.label.text() == "NVIDIA RTX 4090"
    finally:
        c.shutdown()


def test_gallery_compares_a_groups_videos_side_by_side(controller, sandbox):
    import numpy as np

    from stepvideo.engine import video_io
    from stepvideo.jobs.variations import add_variations

    c = controller
    jobs = add_variations(c.queue, c.composer.settings_request().replace(prompt="a kite", height=32, width=32,
                                                                          frames=17, seed=5), 3)
    for shade, job in enumerate(jobs[:2]):  # two of three finished: those two are compared
        path = sandbox / "videos" / f"kite-{job.id}.mp4"
        meta = {"request": job.request, "seed": job.request["seed"]}
        video_io.write_mp4(np.full((17, 32, 32, 3), 60 * shade, np.uint8), path, meta)
        video_io.write_sidecar(path, meta)
        c.queue.claim_next(pid=os.getpid())
        c.queue.mark_done(job.id, {"video": str(path)})
    lone = sandbox / "videos" / "lone.mp4"
    video_io.write_mp4(np.zeros((17, 32, 32, 3), np.uint8), lone, {"request": {"prompt": "lone", "seed": 1}})
    c.reload_gallery()
    c.window.show_page("gallery")
    assert c.gallery.select_path(str(lone)) and not c.gallery.compare.isVisibleTo(c.window)
    assert c.gallery.select_path(str(sandbox / "videos" / f"kite-{jobs[0].id}.mp4"))
    assert c.gallery.compare.isVisibleTo(c.window)
    dialog = c.gallery_ctl.compare_variations(c.gallery.current())
    try:
        assert [p.source for p in dialog.players] == [str(sandbox / "videos" / f"kite-{j.id}.mp4") for j in jobs[:2]]
        assert [label.text().split(" · ")[0] for label in dialog.labels] == ["seed 5", "seed 6"]
        dialog.play_all.click()
        assert dialog.play_all.text() == "Pause all"
    finally:
        dialog.close()
