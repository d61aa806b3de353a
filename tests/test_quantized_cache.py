"""Quantized copies live in the user cache folder: an old cache in the data folder moves there once
(a rename, or copy + compare + delete across filesystems, never losing a copy half way), `models
list` shows them, `models delete` removes a version's copies, `models clean` those whose weights are gone."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil

import pytest
import torch
from memory_toy import make_toy, toy_inputs
from safetensors.torch import save_file

from stepvideo import hub, paths
from stepvideo.cli import main
from stepvideo.hub.progress import human_bytes
from stepvideo.memory import quantize as qz
from stepvideo.memory import quantized_store
from tests.fixtures import local_hub as hub_fixtures

stepvideo_hub = hub_fixtures.stepvideo_hub  # a pytest fixture, bound by name so pytest finds it


def _shards(folder):
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in make_toy().state_dict().items()}
    save_file(state, str(folder / "model.safetensors"))
    return [folder / "model.safetensors"]


def _meta_toy():
    from memory_toy import ToyDiT

    with torch.device("meta"):
        return ToyDiT().to(torch.bfloat16)


def _build(directory, weights_folder, source_id="rev1"):
    return qz.build_cache(_meta_toy(), _shards(weights_folder), "qint8", directory, qz.DIT_POLICY, source_id=source_id)


@pytest.fixture
def fresh_store(sandbox, monkeypatch):
    monkeypatch.setattr(quantized_store, "_migrated", False)  # as in a new process
    return sandbox


def test_cache_lives_in_the_cache_folder_not_the_data_folder(fresh_store):
    assert qz.cache_dir("dit", "rev1", "qint8") == fresh_store / "cache" / "quantized" / "dit" / "rev1" / "qint8"
    assert not paths.quantized_cache_dir().is_relative_to(paths.data_dir())


def test_an_old_cache_in_the_data_folder_moves_once(fresh_store, tmp_path, caplog):
    old = paths.legacy_quantized_cache_dir() / "dit" / "rev1" / "qint8"
    _build(old, tmp_path / "weights")
    before = {p.name: p.read_bytes() for p in old.iterdir()}
    with caplog.at_level(logging.INFO, logger="stepvideo.memory.quantized_store"):
        directory = qz.cache_dir("dit", "rev1", "qint8")
        assert qz.cache_dir("dit", "rev1", "qint8") == directory  # second call: no second move
    moved = [r for r in caplog.records if "moved the quantized weights" in r.getMessage()]
    assert len(moved) == 1
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == before
    assert not paths.legacy_quantized_cache_dir().exists()
    x, t = toy_inputs()
    assert qz.load_cache(_meta_toy(), directory)(x, t).isfinite().all()  # usable where it landed


def test_across_filesystems_each_copy_is_copied_checked_then_removed(fresh_store, tmp_path, monkeypatch):
    old_root, new_root = paths.legacy_quantized_cache_dir(), paths.quantized_cache_dir()
    _build(old_root / "dit" / "rev1" / "qint8", tmp_path / "w1")
    _build(old_root / "step_llm" / "rev2" / "qint8", tmp_path / "w2", "rev2")
    originals = {p.relative_to(old_root): p.read_bytes() for p in old_root.rglob("*") if p.is_file()}
    real_rename = os.rename

    def cross_device(src, dst):  # what rename says between two filesystems
        if str(src).startswith(str(old_root)):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", cross_device)
    # A copy that does not compare equal (a bad disk) is dropped; the original stays whole.
    monkeypatch.setattr(quantized_store, "_same_files", lambda a, b: False)
    with pytest.raises(OSError, match="does not match; the original is kept"):
        quantized_store.migrate_legacy(old_root, new_root)
    assert {p.relative_to(old_root): p.read_bytes() for p in old_root.rglob("*") if p.is_file()} == originals
    assert not list(new_root.rglob("manifest.json")) and not list(new_root.rglob(".migrating-*"))

    monkeypatch.undo()
    monkeypatch.setattr(os, "rename", cross_device)
    assert quantized_store.migrate_legacy(old_root, new_root)
    assert {p.relative_to(new_root): p.read_bytes() for p in new_root.rglob("*") if p.is_file()} == originals
    assert not old_root.exists()


def test_list_delete_and_clean_handle_quantized_copies(stepvideo_hub, fresh_store, tmp_path, capsys):
    h = stepvideo_hub
    cache = tmp_path / "models"
    hub.download(hub.BASE_REPO, "v1.0", cache_dir=cache)
    v2_snapshot = hub.download(hub.BASE_REPO, "main", cache_dir=cache)
    v1_copy = _build(qz.cache_dir("dit", h.v1, "qint8"), tmp_path / "weights-v1", h.v1)
    v2_copy = _build(qz.cache_dir("dit", h.v2, "qint8"), v2_snapshot / "transformer-toy", h.v2)
    orphan = _build(qz.cache_dir("dit", "f" * 40, "qint8"), tmp_path / "gone", "f" * 40)
    shutil.rmtree(tmp_path / "gone")  # the weights this copy was made from are gone

    assert main(["models", "list", "--offline", "--json", "--cache-dir", str(cache)]) == 0
    listed = json.loads(capsys.readouterr().out)
    by_commit = {v["commit"]: v for v in listed["versions"]}
    assert [c["path"] for c in by_commit[h.v1]["quantized"]] == [str(v1_copy)]
    assert by_commit[h.v1]["quantized_bytes"] == quantized_store.folder_size(v1_copy) > 0
    assert [c["path"] for c in listed["other_quantized"]] == [str(orphan)]
    assert main(["models", "list", "--offline", "--cache-dir", str(cache)]) == 0
    assert "quantized dit qint8" in capsys.readouterr().out
    from stepvideo_desktop.views.models_page import version_line  # the Models page's line for a version

    v1 = next(v for v in hub.list_installed(cache, online=False) if v.commit == h.v1)
    assert version_line(v1).endswith(f"quantized copies {human_bytes(v1.quantized_bytes)} (dit qint8)")

    report = hub.delete_version(hub.BASE_REPO, "v1.0", cache_dir=cache)
    assert report.quantized_removed == (str(v1_copy),) and not v1_copy.exists()
    assert not v1_copy.parent.exists()  # the emptied source folder goes too
    assert v2_copy.exists() and orphan.exists()

    assert main(["models", "clean", "--cache-dir", str(cache)]) == 0
    out = capsys.readouterr().out
    assert f"removed quantized copy {orphan}" in out and not orphan.exists()
    assert v2_copy.exists()  # its weights are still there
