"""Typed settings: validation, schema_version, atomic save, bad files kept aside, persistence through the UI."""

from __future__ import annotations

import json

import pytest

from desktop import settings as settings_mod
from desktop.settings import SCHEMA_VERSION, AppSettings, SettingsError


def test_defaults_round_trip(sandbox):
    s = AppSettings(default_preset="turbo", preview_every_steps=3, output_dir=str(sandbox / "out"))
    path = settings_mod.save(s)
    assert path == sandbox / "config" / "settings.json"
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION
    assert settings_mod.load() == s


@pytest.mark.parametrize(("changes", "message"), [
    ({"default_preset": "fast"}, "allowed: standard, turbo"),
    ({"default_profile": "huge"}, "allowed: auto"),
    ({"theme": "neon"}, "allowed: system, light, dark"),
    ({"preview_every_steps": 0}, "from 1 to 1000"),
    ({"previews": "yes"}, "true or false"),
])
def test_bad_values_are_refused_in_one_line(changes, message):
    with pytest.raises(SettingsError, match=message):
        AppSettings(**changes)


def test_unknown_keys_and_newer_schema_are_refused():
    with pytest.raises(SettingsError, match="unknown setting"):
        AppSettings.from_dict({"colour": "red"})
    with pytest.raises(SettingsError, match="newer than this app"):
        AppSettings.from_dict({"schema_version": SCHEMA_VERSION + 1})


def test_unreadable_file_is_kept_aside_not_lost(sandbox):
    path = sandbox / "config" / "settings.json"
    path.write_text('{"theme": "neon"}')
    assert settings_mod.load() == AppSettings()
    kept = list((sandbox / "config").glob("settings.json.bad-*"))
    assert len(kept) == 1 and kept[0].read_text() == '{"theme": "neon"}'


def test_settings_page_changes_apply_at_once_and_persist(qtbot, sandbox):
    from desktop.settings_store import SettingsStore
    from desktop.views.settings_page import SettingsPage

    store = SettingsStore()
    page = SettingsPage(store, str(sandbox / "models"))
    qtbot.addWidget(page)
    page.default_preset.setCurrentIndex(page.default_preset.findData("turbo"))
    page.preview_every.setValue(9)
    page.keep_loaded.setChecked(False)
    page.output_dir.edit.setText(str(sandbox / "renders"))
    page.output_dir.edit.editingFinished.emit()
    again = SettingsStore()  # what the next launch reads
    assert (again.value.default_preset, again.value.preview_every_steps, again.value.keep_model_loaded) == ("turbo", 9, False)
    assert again.value.output_path == sandbox / "renders"
