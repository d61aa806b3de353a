"""The Models page against a local hub server: download with progress, verify, use, delete, offline badge."""

from __future__ import annotations

import pytest
from desktop_support import app_dirs, make_controller  # noqa: F401

from stepvideo.presets import BASE_REPO
from tests.fixtures.local_hub import stepvideo_hub  # noqa: F401

WAIT_MS = 60_000


@pytest.fixture
def controller(qtbot, stepvideo_hub, app_dirs, monkeypatch):  # noqa: F811 (order: the hub, then our models dir)
    c = make_controller(qtbot, monkeypatch=monkeypatch)
    yield c
    c.shutdown()


def test_download_from_the_models_page_then_verify_use_and_delete(controller, qtbot, app_dirs):  # noqa: F811
    c = controller
    c.window.show_page("models")
    assert c.hub.wait_idle(WAIT_MS)
    page, card = c.models, c.models.cards[BASE_REPO]
    assert c.hub.online is True and page.network.text() == "online"
    assert not page.first_run.isHidden() and card.status.text() == "not installed"
    qtbot.waitUntil(lambda: "no model installed" in c.composer.llm_count.text())

    events = []
    c.hub.progress.connect(events.append)
    qtbot.mouseClick(card.download, qtbot_left())
    qtbot.waitUntil(lambda: card.status.text() == "installed", timeout=WAIT_MS)
    phases = [e["phase"] for e in events]
    assert phases[0] == "start" and phases[-1] == "done" and "file_done" in phases
    assert events[-1]["bytes_done"] == events[-1]["bytes_total"] > 0
    assert page.first_run.isHidden() and card.use.isEnabled()
    assert (app_dirs / "models").is_dir() and any((app_dirs / "models").iterdir())  # the chosen models folder
    c.composer.prompt.setPlainText("a fox")
    qtbot.waitUntil(lambda: "/ 320" in c.composer.llm_count.text())  # counted with the downloaded tokenizers

    card.verify.click()
    qtbot.waitUntil(lambda: "verified" in page.banner.text.text(), timeout=WAIT_MS)
    card.delete.click()
    qtbot.waitUntil(lambda: card.status.text() == "not installed", timeout=WAIT_MS)
    assert not page.first_run.isHidden()


def test_cancel_then_resume_then_use(controller, qtbot, stepvideo_hub):  # noqa: F811
    from tests.fixtures.local_hub import CHANGED_SHARD

    release = stepvideo_hub.hub.stall_after(BASE_REPO, CHANGED_SHARD, 1024)
    c = controller
    c.store.update(active_model="someone/another-model")  # so that "Use" has something to change
    c.window.show_page("models")
    assert c.hub.wait_idle(WAIT_MS)
    card = c.models.cards[BASE_REPO]
    qtbot.mouseClick(card.download, qtbot_left())
    qtbot.waitUntil(lambda: not card.cancel.isHidden(), timeout=WAIT_MS)
    qtbot.mouseClick(card.cancel, qtbot_left())
    release.set()
    qtbot.waitUntil(lambda: not c.hub.is_busy(), timeout=WAIT_MS)
    assert "resume" in card.progress_text.text().lower() or "cancel" in c.models.banner.text.text().lower()
    qtbot.waitUntil(lambda: card.download.text() == "Resume download", timeout=WAIT_MS)
    assert card.status.text() != "installed" and not card.use.isEnabled()

    stepvideo_hub.hub.reset_counters()
    qtbot.mouseClick(card.download, qtbot_left())  # "Resume download"
    qtbot.waitUntil(lambda: card.status.text() == "installed", timeout=WAIT_MS)
    assert card.download.text() == "Download" and card.use.isEnabled()
    assert stepvideo_hub.hub.bytes_served(BASE_REPO, CHANGED_SHARD) > 0  # the stalled file came on resume

    assert card.use.text() == "Use"
    qtbot.mouseClick(card.use, qtbot_left())
    assert c.store.value.active_model == "" and c.active_model() == BASE_REPO
    assert card.use.text() == "In use" and not card.active_badge.isHidden()
    c.composer.prompt.setPlainText("a fox")
    qtbot.waitUntil(lambda: "/ 320" in c.composer.llm_count.text())  # Create counts with the model now in use


def test_offline_is_shown_and_downloads_say_why(qtbot, app_dirs, monkeypatch):  # noqa: F811
    c = make_controller(qtbot, monkeypatch=monkeypatch)  # HF_ENDPOINT points where nothing listens
    try:
        assert c.hub.wait_idle(WAIT_MS)
        assert c.hub.online is False
        assert c.window.status_view.network.text() == "offline"
        c.download_model(BASE_REPO)
        assert c.hub.wait_idle(WAIT_MS)
        assert not c.models.banner.isHidden() and "failed" in c.models.banner.text.text().lower()
    finally:
        c.shutdown()


def qtbot_left():
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton
