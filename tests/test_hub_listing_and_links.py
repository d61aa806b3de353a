"""Our own file listing instead of huggingface_hub's private trees/ files (with a one-time migration of
the old ones), and downloads onto filesystems without symlinks (files move into the snapshot)."""

from __future__ import annotations

import errno
import json
import logging
import os

from stepvideo import hub
from stepvideo.engine import layout
from tests.fixtures import local_hub as hub_fixtures

stepvideo_hub = hub_fixtures.stepvideo_hub  # a pytest fixture, bound by name so pytest finds it

BASE = hub.BASE_REPO


def test_download_keeps_our_listing_and_migrates_an_old_trees_file(stepvideo_hub, tmp_path, monkeypatch):
    snap = hub.download(BASE, cache_dir=tmp_path)
    folder = tmp_path / "models--stepfun-ai--stepvideo-t2v"
    ours = folder / ".stepvideo" / "listings" / f"{snap.name}.json"
    data = json.loads(ours.read_text())
    assert data["format"] == "stepvideo-file-listing" and data["version"] == 1 and data["commit"] == snap.name
    assert not (folder / "trees").exists()  # huggingface_hub's private cache is not ours to write

    # What an older version wrote: the trees/ file only. It is read once and copied into ours.
    tree = {p: {"size": e["size"], "blob_id": e["oid"], **({"lfs_sha256": e["sha256"], "lfs_size": e["size"]}
                                                           if e["sha256"] else {})} for p, e in data["files"].items()}
    (folder / "trees").mkdir()
    (folder / "trees" / f"{snap.name}.json").write_text(json.dumps({"format_version": 1, "files": tree}))
    ours.unlink()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    [version] = hub.list_installed(tmp_path)
    assert version.tree_source == "cache" and version.status == "complete"
    assert json.loads(ours.read_text())["files"] == data["files"]
    assert version.size_on_disk == version.bytes_expected  # huggingface_hub's scan counts the same bytes


def test_download_without_symlinks_moves_files_into_the_snapshot(stepvideo_hub, tmp_path, monkeypatch, caplog):
    def no_symlinks(*args, **kwargs):  # what exFAT, FAT and some network shares answer
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "symlink", no_symlinks)
    events = []
    with caplog.at_level(logging.WARNING, logger="stepvideo.hub.downloader"):
        snap = hub.download(BASE, cache_dir=tmp_path, on_event=events.append)
    notes = [r for r in caplog.records if "does not support symbolic links" in r.getMessage()]
    assert len(notes) == 1  # said once, not once per file
    assert "does not support symbolic links" in events[-1]["note"] and events[-1]["phase"] == "done"
    vae = snap / layout.VAE_WEIGHTS
    assert vae.is_file() and not vae.is_symlink()
    assert not any(p.is_file() for p in (tmp_path / "models--stepfun-ai--stepvideo-t2v" / "blobs").iterdir())
    assert hub.verify(BASE, cache_dir=tmp_path).ok  # every file hashes to the hub's published hash
    [version] = hub.list_installed(tmp_path, online=False)
    assert version.status == "complete" and version.size_on_disk == version.bytes_expected

    stepvideo_hub.hub.reset_counters()
    plan = hub.plan_download(BASE, cache_dir=tmp_path)
    assert plan.bytes_to_fetch == 0  # the moved files count as downloaded
    assert hub.download(BASE, cache_dir=tmp_path) == snap
    assert not any(stepvideo_hub.hub.served.values())
    assert hub.resolve_model_dir(BASE, cache_dir=tmp_path) == snap
