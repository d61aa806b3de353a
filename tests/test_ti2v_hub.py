"""The model manager and Step-Video-TI2V, against our own hub server: the `ti2v` alias, encoders and VAE
shared with an installed T2V (same etag and size) instead of downloaded twice, and delete keeping them."""

from __future__ import annotations

import hashlib

from stepvideo import hub
from stepvideo.engine import layout
from stepvideo.hub.resolve import canonical_model
from tests.fixtures import local_hub as hub_fixtures

local_hub = hub_fixtures.local_hub
BASE, TI2V = hub.BASE_REPO, hub.TI2V_REPO


def _folder(folder):
    return {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_ti2v_shares_the_t2v_encoders_and_vae_and_delete_keeps_them(local_hub, tiny_model, tiny_ti2v_model, tmp_path):
    t2v_files, ti2v_files = _folder(tiny_model), _folder(tiny_ti2v_model)
    shared = sorted(p for p in ti2v_files if not p.startswith("transformer/") and p != layout.MODEL_INDEX)
    # Precondition (as on the real hub): the re-shipped files are byte-identical, the transformer is not.
    assert shared and all(_sha(t2v_files[p]) == _sha(ti2v_files[p]) for p in shared)
    assert _sha(t2v_files[layout.DIT_CONFIG]) != _sha(ti2v_files[layout.DIT_CONFIG])
    local_hub.create_repo(BASE).commit(t2v_files, message="t2v")
    local_hub.create_repo(TI2V).commit(ti2v_files, message="ti2v")

    assert canonical_model("ti2v") == TI2V
    alone = hub.plan_download("ti2v", cache_dir=tmp_path / "empty")
    assert alone.bytes_to_fetch == alone.total_bytes  # nothing installed: everything is downloaded

    hub.download(BASE, cache_dir=tmp_path)
    plan = hub.plan_download("ti2v", cache_dir=tmp_path)
    states = {f.path: f.state for f in plan.files}
    assert {p for p, s in states.items() if s == "shared"} == set(shared)
    assert plan.bytes_to_fetch == sum(f.size for f in plan.files if not f.state == "shared")
    assert plan.bytes_to_fetch < plan.total_bytes

    local_hub.reset_counters()
    ti2v = hub.download("ti2v", cache_dir=tmp_path)
    assert all(local_hub.bytes_served(TI2V, p) == 0 for p in shared)  # not downloaded twice
    assert local_hub.bytes_served(TI2V, layout.DIT_CONFIG) > 0
    assert hub.verify(TI2V, cache_dir=tmp_path).ok
    vae = (ti2v / layout.VAE_WEIGHTS).resolve()
    assert vae.stat().st_nlink == 2  # one file on disk, named by both repos
    assert hub.resolve_model_dir("ti2v", cache_dir=tmp_path) == ti2v

    report = hub.delete_version(TI2V, cache_dir=tmp_path)
    assert report.freed_bytes < sum(f.size for f in plan.files)  # the shared blobs freed nothing
    assert hub.verify(BASE, cache_dir=tmp_path).ok  # T2V keeps every shared file
    t2v_vae = hub.resolve_model_dir(BASE, cache_dir=tmp_path) / layout.VAE_WEIGHTS
    assert t2v_vae.resolve().stat().st_nlink == 1 and _sha(t2v_vae) == _sha(t2v_files[layout.VAE_WEIGHTS])
