"""Models page, "Use a folder on disk…": weights the user already has are checked, listed, used by new jobs,
and only ever forgotten (never deleted)."""

from __future__ import annotations

import json
import shutil

import pytest
from desktop_support import app_dirs, fill_composer, make_controller  # noqa: F401

from stepvideo.engine import layout


@pytest.fixture
def controller(qtbot, app_dirs, monkeypatch):  # noqa: F811
    c = make_controller(qtbot, monkeypatch=monkeypatch)
    c.window.show_page("models")
    yield c
    c.shutdown()


@pytest.fixture
def folder(tiny_model, tmp_path):
    """A private copy of the tiny model, as if fetched with huggingface-cli --local-dir."""
    return shutil.copytree(tiny_model, tmp_path / "my weights" / "stepvideo-t2v")


def pick(controller, monkeypatch, path, button=None) -> None:
    """Answer the folder dialog with `path`, then press the page's button as a user would."""
    asked = []
    monkeypatch.setattr(controller.models, "pick_directory", lambda parent, start: asked.append(start) or str(path))
    (button or controller.models.use_folder).click()
    assert asked, "the folder dialog was not asked"


def test_a_model_folder_is_accepted_becomes_active_and_new_jobs_use_it(controller, qtbot, monkeypatch, folder,
                                                                       app_dirs):  # noqa: F811
    c = controller
    assert not c.models.first_run.isHidden()  # no model yet: the empty state offers the folder too
    pick(c, monkeypatch, folder, button=c.models.first_run_folder)
    path = str(folder.resolve())
    assert c.models.banner.isHidden() and c.models.first_run.isHidden()
    assert c.store.value.active_model == path and c.active_model() == path
    card = c.models.local_cards[path]
    assert card.status.text() == "ready" and not card.active_badge.isHidden() and card.use.text() == "In use"
    assert "local folder" in card.detail.text() and path in card.path_label.text()
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    from stepvideo_desktop.views.widgets import human_bytes

    assert human_bytes(size) in card.detail.text()
    saved = json.loads((app_dirs / "config" / "settings.json").read_text())
    assert saved["local_models"] == [path] and saved["active_model"] == path

    fill_composer(c.composer, "a fox in the snow")
    qtbot.waitUntil(c.composer.add_button.isEnabled)
    qtbot.waitUntil(lambda: "/ 320" in c.composer.llm_count.text())  # counted with the folder's own tokenizers
    c.composer.add_button.click()
    job = c.queue.list()[-1]
    assert job.request["model"] == path and job.model == path

    # Listed again after a restart, still in use.
    c.shutdown()
    again = make_controller(qtbot, monkeypatch=monkeypatch)
    try:
        assert path in again.models.local_cards and again.active_model() == path
        assert not again.models.local_cards[path].active_badge.isHidden()
    finally:
        again.shutdown()


def test_a_folder_missing_the_vae_is_refused_in_one_line_naming_it(controller, monkeypatch, folder):
    c = controller
    before = c.store.value
    (folder / layout.VAE_WEIGHTS).unlink()
    pick(c, monkeypatch, folder)
    text = c.models.banner.text.text()
    assert not c.models.banner.isHidden()
    assert "vae/vae_v2.safetensors" in text and "\n" not in text and "Traceback" not in text
    assert c.store.value == before and c.models.local_cards == {}


def test_a_truncated_shard_is_refused_without_torch(controller, monkeypatch, folder):
    c = controller
    shard = sorted((folder / "transformer").glob("*.safetensors"))[0]
    with open(shard, "r+b") as fh:
        fh.truncate(shard.stat().st_size // 2)
    pick(c, monkeypatch, folder)
    assert "truncated" in c.models.banner.text.text() and c.models.local_cards == {}


def test_cancelling_the_dialog_changes_nothing(controller, monkeypatch):
    c = controller
    before = c.store.value
    pick(c, monkeypatch, "")
    assert c.store.value == before and c.models.banner.isHidden()


def test_remove_from_list_forgets_the_folder_but_keeps_its_files(controller, monkeypatch, folder):
    c = controller
    files = sorted(p for p in folder.rglob("*"))
    pick(c, monkeypatch, folder)
    path = str(folder.resolve())
    card = c.models.local_cards[path]
    card.remove.click()
    assert path not in c.models.local_cards
    assert c.store.value.local_models == () and c.store.value.active_model == ""  # back to the base model
    assert sorted(p for p in folder.rglob("*")) == files  # nothing deleted


def test_a_listed_folder_that_lost_a_file_says_why_and_cannot_be_used(qtbot, app_dirs, monkeypatch, folder):  # noqa: F811
    from stepvideo_desktop import settings as settings_mod

    path = str(folder.resolve())
    settings_mod.save(settings_mod.AppSettings(local_models=(path,)))
    (folder / layout.LLM_TOKENIZER).unlink()
    c = make_controller(qtbot, monkeypatch=monkeypatch)
    try:
        card = c.models.local_cards[path]
        assert card.status.text() == "cannot be used" and not card.use.isEnabled()
        assert "step_llm/step1_chat_tokenizer.model" in card.detail.text()
    finally:
        c.shutdown()


def test_settings_without_the_new_field_still_load(sandbox):
    from stepvideo_desktop import settings as settings_mod

    path = sandbox / "config" / "settings.json"
    path.write_text(json.dumps({"theme": "dark", "active_model": "", "schema_version": 1}))
    loaded = settings_mod.load()
    assert loaded.theme == "dark" and loaded.local_models == ()
    with pytest.raises(settings_mod.SettingsError, match="absolute path"):
        settings_mod.AppSettings(local_models=("relative/folder",))
