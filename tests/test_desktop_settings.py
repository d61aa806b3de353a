"""Typed settings: validation, schema_version, atomic save, bad files kept aside, persistence through the UI."""

from __future__ import annotations

import json

import pytest
from desktop_support import app_dirs, make_controller  # noqa: F401

from stepvideo_desktop import settings as settings_mod
from stepvideo_desktop.settings import SCHEMA_VERSION, AppSettings, SettingsError


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


def test_settings_changed_in_the_window_apply_at_once_and_persist(qtbot, app_dirs, monkeypatch):  # noqa: F811
    from PySide6.QtCore import Qt

    from stepvideo.api import PROFILES

    renders = app_dirs / "renders"
    profile = next(name for name in PROFILES if name != "auto")
    first = make_controller(qtbot, monkeypatch=monkeypatch)
    try:
        first.window.activateWindow()
        qtbot.waitUntil(first.window.isActiveWindow)
        qtbot.keyClick(first.window, Qt.Key.Key_5, Qt.KeyboardModifier.ControlModifier)
        assert first.window.current_page() == "settings"
        page = first.settings_page
        page.default_preset.setCurrentIndex(page.default_preset.findData("turbo"))
        page.default_profile.setCurrentIndex(page.default_profile.findData(profile))
        page.preview_every.setValue(9)
        page.keep_loaded.setChecked(False)
        page.output_dir.edit.clear()
        qtbot.keyClicks(page.output_dir.edit, str(renders))
        qtbot.keyClick(page.output_dir.edit, Qt.Key.Key_Return)
        assert first.gallery_model.folder == renders  # applied at once: the gallery reads the new folder
        assert page.banner.isHidden() and first.window.banner.isHidden()
        first.window.close()
    finally:
        first.shutdown()

    second = make_controller(qtbot, monkeypatch=monkeypatch)  # the next launch
    try:
        s = second.store.value
        assert (s.default_preset, s.default_profile, s.preview_every_steps, s.keep_model_loaded, s.output_path) == (
            "turbo", profile, 9, False, renders)
        page = second.settings_page
        assert (page.default_preset.currentData(), page.default_profile.currentData()) == ("turbo", profile)
        assert (page.preview_every.value(), page.keep_loaded.isChecked(), page.output_dir.edit.text()) == (
            9, False, str(renders))
        assert second.composer.preset.value() == "turbo" and second.composer.profile.currentData() == profile
        assert second.window.current_page() == "settings"
        saved = json.loads((app_dirs / "config" / "settings.json").read_text())
        assert saved["schema_version"] == SCHEMA_VERSION and saved["preview_every_steps"] == 9
    finally:
        second.shutdown()
