"""The model manager against our own hub server: revisions, selection, turbo, progress, cancel,
verify/repair, delete, clean, offline listing, huggingface_hub interoperability."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stepvideo import hub
from stepvideo.engine import layout
from stepvideo.errors import Cancelled, WeightsNotFound
from tests.fixtures import local_hub as hub_fixtures
from tests.fixtures.local_hub import CHANGED_SHARD, EXTRAS

# pytest fixtures from tests/fixtures (bound by name here so pytest finds them)
local_hub = hub_fixtures.local_hub
stepvideo_hub = hub_fixtures.stepvideo_hub

BASE, TURBO = hub.BASE_REPO, hub.TURBO_REPO


def served_files(h) -> dict[str, int]:
    return {path: n for (_repo, path), n in h.hub.served.items() if n}


def test_hub_module_is_torch_free():
    code = "import sys, stepvideo.hub, stepvideo.cli.models; sys.exit('torch' in sys.modules)"
    root = Path(__file__).resolve().parent.parent
    assert subprocess.run([sys.executable, "-c", code], cwd=root).returncode == 0


def test_download_by_branch_tag_and_commit(stepvideo_hub, tmp_path):
    h = stepvideo_hub
    main = hub.download(BASE, cache_dir=tmp_path)
    assert main.name == h.v2 and (main / layout.VAE_WEIGHTS).is_file()
    first = sum(served_files(h).values())

    h.hub.reset_counters()
    tagged = hub.download(BASE, "v1.0", cache_dir=tmp_path)
    assert tagged.name == h.v1
    # The two commits differ in one shard: only that one is fetched again (blobs are shared).
    assert set(served_files(h)) == {CHANGED_SHARD}

    h.hub.reset_counters()
    by_commit = hub.download(BASE, h.v1, cache_dir=tmp_path)
    assert by_commit == tagged and not served_files(h)  # nothing new

    refs = tmp_path / "models--stepfun-ai--stepvideo-t2v" / "refs"
    assert (refs / "main").read_text() == h.v2 and (refs / "v1.0").read_text() == h.v1
    assert hub.resolve_model_dir(BASE, cache_dir=tmp_path) == main
    assert hub.resolve_model_dir(BASE, "v1.0", cache_dir=tmp_path) == tagged
    assert hub.resolve_model_dir("base", h.v1, cache_dir=tmp_path) == tagged
    assert first == sum(f.stat().st_size for f in main.rglob("*") if f.is_file())
    # Snapshots hold relative symlinks into blobs/, like huggingface_hub's cache.
    link = main / layout.VAE_WEIGHTS
    assert link.is_symlink() and not os.path.isabs(os.readlink(link))


def test_default_download_skips_docs_old_vae_and_native_lib(stepvideo_hub, tmp_path):
    snap = hub.download(BASE, "v1.0", cache_dir=tmp_path)
    for extra in EXTRAS:
        assert not (snap / extra).exists(), extra
    assert (snap / layout.CLIP_WEIGHTS).is_file()  # the CLIP pytorch_model.bin is needed
    snap = hub.download(BASE, "v1.0", cache_dir=tmp_path, include_lib=True)
    assert any((snap / "lib").glob("*.so"))


def test_turbo_also_fetches_the_base_components(stepvideo_hub, tmp_path):
    h = stepvideo_hub
    plan = hub.plan_download("turbo", cache_dir=tmp_path)
    assert plan.components is not None and plan.components.repo_id == BASE
    assert not any(f.path.startswith("transformer/") for f in plan.components.files)
    turbo = hub.download(TURBO, cache_dir=tmp_path)
    assert not (turbo / "step_llm").exists()
    assert h.hub.bytes_served(BASE, CHANGED_SHARD) == 0  # the base transformer is not fetched
    folders = hub.resolve_model_roots(TURBO, cache_dir=tmp_path)
    assert folders.transformer == turbo
    assert folders.components.name == h.v2 and (folders.components / layout.LLM_CONFIG).is_file()
    assert hub.verify(TURBO, cache_dir=tmp_path).ok
    versions = {v.repo_id: v for v in hub.list_installed(tmp_path)}
    assert versions[BASE].components_only and versions[BASE].status == "complete"
    assert not versions[TURBO].components_only and versions[TURBO].components_from == {"repo": BASE, "commit": h.v2}
    hub.download(BASE, cache_dir=tmp_path)  # the whole base version afterwards: no longer partial-by-design
    assert not {v.repo_id: v for v in hub.list_installed(tmp_path)}[BASE].components_only
    assert h.hub.bytes_served(BASE, CHANGED_SHARD) > 0


def test_progress_events_cancel_and_resume(stepvideo_hub, tmp_path):
    h = stepvideo_hub
    events = []
    hub.download(BASE, "v1.0", cache_dir=tmp_path / "a", on_event=events.append)
    assert {e["type"] for e in events} == {"download"}
    assert events[0]["phase"] == "start" and events[-1]["phase"] == "done"
    done = [e["bytes_done"] for e in events]
    assert done == sorted(done) and done[-1] == events[-1]["bytes_total"] > 20_000_000
    assert events[-1]["files_done"] == events[-1]["files_total"]
    assert any(e["phase"] == "file_done" and e["file"] == layout.VAE_WEIGHTS for e in events)
    assert all(k in events[-1] for k in ("speed_bps", "eta_seconds", "file", "repo", "commit", "revision"))

    # Cancel part-way (should_cancel is asked before each file and after each chunk received):
    # Cancelled, the bytes already written stay, and the resume fetches only the rest.
    h.hub.reset_counters()
    seen, asked = [], []

    def should_cancel() -> bool:
        asked.append(1)
        return len(asked) > 40

    with pytest.raises(Cancelled):
        hub.download(BASE, "v1.0", cache_dir=tmp_path / "b", on_event=seen.append, workers=1,
                     should_cancel=should_cancel)
    assert seen[-1]["phase"] == "cancelled"
    plan = hub.plan_download(BASE, "v1.0", cache_dir=tmp_path / "b")
    [cut] = [f for f in plan.files if f.state == "partial"]  # cut mid-file, its bytes kept
    assert 0 < cut.on_disk < cut.size and 0 < plan.bytes_on_disk < plan.total_bytes
    h.hub.reset_counters()
    hub.download(BASE, "v1.0", cache_dir=tmp_path / "b")
    assert sum(served_files(h).values()) == plan.bytes_to_fetch
    assert h.hub.bytes_served(BASE, cut.path) == cut.size - cut.on_disk


def test_verify_finds_corruption_and_download_repairs_only_that(stepvideo_hub, tmp_path):
    h = stepvideo_hub
    snap = hub.download(BASE, cache_dir=tmp_path)
    assert hub.verify(BASE, cache_dir=tmp_path).ok
    target = snap / layout.LLM_TOKENIZER
    blob = target.resolve()
    data = bytearray(blob.read_bytes())
    data[100] ^= 0xFF  # same size, different bytes: only a hash finds it
    blob.write_bytes(bytes(data))
    config = snap / layout.DIT_CONFIG
    config.resolve().write_text(config.read_text() + " ")  # a plain git file (sha1 checked)

    report = hub.verify(BASE, cache_dir=tmp_path)
    assert not report.ok and set(report.corrupt) == {layout.LLM_TOKENIZER, layout.DIT_CONFIG}
    [version] = hub.list_installed(tmp_path)
    assert version.status == "corrupt"

    h.hub.reset_counters()
    hub.download(BASE, cache_dir=tmp_path)
    assert set(served_files(h)) == {layout.LLM_TOKENIZER, layout.DIT_CONFIG}
    assert hub.verify(BASE, cache_dir=tmp_path).ok
    assert hub.list_installed(tmp_path)[0].status == "complete"


def test_verify_names_missing_files(stepvideo_hub, tmp_path):
    snap = hub.download(BASE, cache_dir=tmp_path)
    (snap / layout.VAE_WEIGHTS).unlink()
    report = hub.verify(BASE, cache_dir=tmp_path)
    assert report.missing == (layout.VAE_WEIGHTS,)
    with pytest.raises(WeightsNotFound, match="vae/vae_v2.safetensors is missing"):
        hub.resolve_model_dir(BASE, cache_dir=tmp_path)
    hub.download(BASE, cache_dir=tmp_path)  # the blob is still there: only the link comes back
    assert hub.resolve_model_dir(BASE, cache_dir=tmp_path) == snap


def test_delete_frees_only_blobs_no_other_version_uses(stepvideo_hub, tmp_path):
    h = stepvideo_hub
    hub.download(BASE, cache_dir=tmp_path)
    old = hub.download(BASE, "v1.0", cache_dir=tmp_path)
    shard_size = (old / CHANGED_SHARD).stat().st_size
    report = hub.delete_version(BASE, "v1.0", cache_dir=tmp_path)
    assert report.commit == h.v1 and report.refs_removed == ("v1.0",)
    assert report.freed_bytes == shard_size  # everything else is shared with main
    assert not old.exists()
    assert hub.verify(BASE, cache_dir=tmp_path).ok  # main untouched
    with pytest.raises(WeightsNotFound, match="v1.0"):
        hub.resolve_model_dir(BASE, "v1.0", cache_dir=tmp_path)
    size = hub.list_installed(tmp_path, online=False)[0].size_on_disk
    assert hub.delete_version(BASE, cache_dir=tmp_path).freed_bytes == size
    assert not (tmp_path / "models--stepfun-ai--stepvideo-t2v").exists()


def test_clean_removes_orphans_and_keeps_resumable_partials(stepvideo_hub, tmp_path):
    with pytest.raises(Cancelled):
        hub.download(BASE, "v1.0", cache_dir=tmp_path, workers=1, should_cancel=lambda: True)
    blobs = tmp_path / "models--stepfun-ai--stepvideo-t2v" / "blobs"
    vae_etag = next(f.etag for f in hub.plan_download(BASE, "v1.0", cache_dir=tmp_path).files
                    if f.path == layout.VAE_WEIGHTS)
    resumable = blobs / f"{vae_etag}.incomplete"
    resumable.write_bytes(b"x" * 1000)
    hf_orphan = blobs / f"{vae_etag}.0a1b2c3d.incomplete"  # huggingface_hub's name after a crash
    hf_orphan.write_bytes(b"y" * 500)
    unknown = blobs / ("f" * 64 + ".incomplete")
    unknown.write_bytes(b"z" * 250)

    report = hub.clean(tmp_path)
    assert set(report.removed) == {str(hf_orphan), str(unknown)} and report.freed_bytes == 750
    assert resumable.exists() and report.kept_resumable == 1
    assert hub.list_installed(tmp_path, online=False)[0].partial_bytes == 1000
    report = hub.clean(tmp_path, include_resumable=True)
    assert report.removed == (str(resumable),) and report.freed_bytes == 1000


def test_list_offline_uses_cached_trees(stepvideo_hub, tmp_path, monkeypatch):
    hub.download(BASE, cache_dir=tmp_path)
    with pytest.raises(Cancelled):
        hub.download(BASE, "v1.0", cache_dir=tmp_path, workers=1, should_cancel=lambda: True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    versions = {v.commit: v for v in hub.list_installed(tmp_path)}
    h = stepvideo_hub
    assert versions[h.v2].status == "complete" and versions[h.v2].refs == ("main",)
    assert versions[h.v2].tree_source == "cache" and versions[h.v2].update_available is None
    assert versions[h.v2].size_on_disk == versions[h.v2].bytes_expected > 20_000_000
    # The cancelled one shares all but one blob with main: only that file is missing.
    assert versions[h.v1].status == "partial" and versions[h.v1].requested == ("v1.0",)
    assert versions[h.v1].missing == (CHANGED_SHARD,) and versions[h.v1].refs == ()
    assert hub.resolve_model_dir(BASE, cache_dir=tmp_path).name == h.v2  # offline, no network


def test_list_online_reports_updates(stepvideo_hub, tmp_path):
    hub.download(BASE, "dev", cache_dir=tmp_path)
    h = stepvideo_hub
    repo = h.hub.repos[BASE]
    repo.branches["dev"] = h.v2  # the branch moves on the hub
    try:
        [version] = hub.list_installed(tmp_path)
        assert version.update_available is True and version.refs == ("dev",)
    finally:
        repo.branches["dev"] = h.v1


def test_resolve_model_dir(tmp_path):
    folder = tmp_path / "my-model"
    folder.mkdir()
    assert hub.resolve_model_dir(str(folder)) == folder
    with pytest.raises(WeightsNotFound, match="stepfun-ai/stepvideo-t2v .*not downloaded.*models download"):
        hub.resolve_model_dir(BASE, cache_dir=tmp_path)
    with pytest.raises(WeightsNotFound, match="does not exist"):
        hub.resolve_model_dir(str(tmp_path / "nope" / "x" / "y"))


def test_models_dir_env_and_huggingface_hub_interop(stepvideo_hub, tmp_path, monkeypatch):
    import huggingface_hub as hfh

    monkeypatch.setenv("STEPVIDEO_MODELS_DIR", str(tmp_path))
    snap = hub.download(BASE, "v1.0")
    assert snap.is_relative_to(tmp_path)
    info = hfh.scan_cache_dir(tmp_path)
    assert not info.warnings and {r.repo_id for r in info.repos} == {BASE}
    check = hfh.HfApi(endpoint=stepvideo_hub.url).verify_repo_checksums(BASE, revision="v1.0", cache_dir=tmp_path)
    assert not check.mismatches
    # A version huggingface_hub downloaded is listed and verified by us (and shares blobs).
    path = hfh.snapshot_download(BASE, revision="main", cache_dir=tmp_path, endpoint=stepvideo_hub.url,
                                 allow_patterns=["*.json", "*.safetensors", "*.model", "*.bin", "*.txt"])
    versions = {v.commit: v for v in hub.list_installed()}
    assert versions[stepvideo_hub.v2].status == "complete" and Path(path).name == stepvideo_hub.v2
    assert hub.verify(BASE).ok


def test_any_repo_paged_tree_cdn_redirect_and_commit_revision(local_hub, tmp_path):
    local_hub.page_size = 2  # the tree comes in pages (Link: rel="next")
    local_hub.redirect_lfs = True  # LFS files answer 302 to another origin, like the hub's CDN
    repo = local_hub.create_repo("someone/other-model")
    weights = os.urandom(2_000_000)
    first = repo.commit({"config.json": b"{}", "model.safetensors": weights, "sub/tokenizer.json": b"{}",
                         "notes.md": b"not a model file"})
    repo.commit({"config.json": b'{"v": 2}'}, base=True)
    snap = hub.download("someone/other-model", first, cache_dir=tmp_path)
    assert sorted(p.relative_to(snap).as_posix() for p in snap.rglob("*") if p.is_file()) == [
        "config.json", "model.safetensors", "sub/tokenizer.json"]
    assert (snap / "model.safetensors").read_bytes() == weights
    assert local_hub.bytes_served("someone/other-model", "model.safetensors") == len(weights)
    assert any(path.startswith("/__lfs/") for _m, path, _r in local_hub.requests)
    assert not (tmp_path / "models--someone--other-model" / "refs").exists()  # a commit is no ref
    assert hub.resolve_model_dir("someone/other-model", first, cache_dir=tmp_path) == snap
    [version] = hub.list_installed(tmp_path)
    assert version.status == "complete" and version.refs == () and version.requested == (first,)
