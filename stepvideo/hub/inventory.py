"""Installed versions: list (with status) and verify (hash against the hub's published hashes)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from stepvideo.errors import HubError, WeightsNotFound
from stepvideo.hub.cache import (
    RepoCache,
    cache_root,
    check_repo_id,
    is_commit,
    repo_id_from_folder,
    snapshot_blob,
)
from stepvideo.hub.listing import read_listing, write_listing
from stepvideo.hub.progress import Progress
from stepvideo.hub.remote import HubUnreachable, RemoteFile, fetch_refs, fetch_version, is_offline
from stepvideo.hub.resolve import COMPONENT_FILES, canonical_model
from stepvideo.hub.select import select
from stepvideo.hub.transfer import expected_digest, hash_file
from stepvideo.hub.verified import is_verified_ok, record_results
from stepvideo.memory import quantized_store
from stepvideo.memory.quantized_store import QuantizedCopy


@dataclass(frozen=True)
class InstalledVersion:
    repo_id: str
    commit: str
    refs: tuple[str, ...]
    requested: tuple[str, ...]  # revisions asked for when downloading (a partial version has no ref yet)
    path: Path
    size_on_disk: int  # this version's blobs, each counted once, plus its partial files
    bytes_expected: int | None
    files_expected: int
    files_present: int
    status: str  # complete | partial | corrupt | unknown (no file list known)
    missing: tuple[str, ...]
    corrupt: tuple[str, ...]
    partial_bytes: int
    tree_source: str  # cache | hub | none
    components_from: dict[str, str] | None
    update_available: bool | None  # a ref of this version now points elsewhere on the hub
    components_only: bool  # only the encoders/tokenizers/VAE a turbo download borrowed (no transformer)
    # turbo: files the engine needs from the borrowed base version that are gone ("repo@commit10:path")
    components_missing: tuple[str, ...] = ()
    quantized: tuple[QuantizedCopy, ...] = ()  # quantized copies made from this version (user cache folder)

    @property
    def quantized_bytes(self) -> int:
        return sum(c.size for c in self.quantized)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["path"] = str(self.path)
        out["quantized"] = [c.to_dict() for c in self.quantized]
        out["quantized_bytes"] = self.quantized_bytes
        return out


@dataclass(frozen=True)
class VerifyReport:
    repo_id: str
    commit: str
    checked: int
    corrupt: tuple[str, ...]
    missing: tuple[str, ...]
    source: str  # where the published hashes came from: hub | cache
    components: VerifyReport | None = None

    @property
    def ok(self) -> bool:
        return not self.corrupt and not self.missing and (self.components is None or self.components.ok)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ok"] = self.ok
        return out


# --- helpers ------------------------------------------------------------------------------------
def cached_repos(root: Path) -> list[RepoCache]:
    if not root.is_dir():
        return []
    out = []
    for entry in sorted(root.iterdir()):
        repo_id = repo_id_from_folder(entry.name)
        if repo_id and entry.is_dir():
            out.append(RepoCache(root, repo_id))
    return out


def present_files(snapshot: Path) -> dict[str, Path]:
    """Relative path → entry, for every file or symlink (even broken) in a snapshot."""
    out = {}
    if snapshot.is_dir():
        for p in snapshot.rglob("*"):
            debris = p.name.startswith(".") and p.name.endswith((".tmp", ".link"))  # our atomic writes
            if (p.is_symlink() or p.is_file()) and not debris:
                out[p.relative_to(snapshot).as_posix()] = p
    return out


def _expected(manifest: dict | None, tree: dict[str, RemoteFile], present: dict[str, Path]) -> list[str]:
    if manifest and manifest.get("files"):
        return sorted(manifest["files"])
    if tree:
        return sorted({f.path for f in select(tree.values())} | set(present))
    return sorted(present)


def _load_tree(repo: RepoCache, commit: str, online: bool) -> tuple[dict[str, RemoteFile], str]:
    tree = read_listing(repo, commit)
    if tree is not None:  # a commit's files never change: the listing kept at download is the hub's answer
        return tree, "cache"
    if online:
        try:
            version = fetch_version(repo.repo_id, commit)
        except HubError:
            return {}, "none"
        try:
            write_listing(repo, commit, version.files)
        except OSError:
            pass
        return {f.path: f for f in version.files}, "hub"
    return {}, "none"


def resolve_cached_commit(repo: RepoCache, revision: str | None, default_main: bool = False) -> str:
    commits = repo.commits()
    if revision is None and len(commits) == 1:
        return commits[0]
    if revision is None and default_main and repo.resolve_local("main"):
        revision = "main"
    commit = repo.resolve_local(revision) if revision else None
    if commit is None:
        listing = ", ".join(c[:10] for c in commits) or "none"
        if revision is None:
            raise HubError(f"{repo.repo_id} has {len(commits)} downloaded versions ({listing}); name one with --revision")
        raise WeightsNotFound(f"{repo.repo_id} has no downloaded version {revision} (downloaded: {listing})")
    return commit


# --- list -------------------------------------------------------------------------------------
def list_installed(cache_dir: str | os.PathLike | None = None, *, online: bool | None = None) -> list[InstalledVersion]:
    """Every version in the cache with its status. Offline (HF_HUB_OFFLINE=1, `online=False`, or an
    unreachable hub) it uses the file listings kept at download time."""
    online = (not is_offline()) if online is None else online
    out = []
    root = cache_root(cache_dir)
    scanned = _scanned_sizes(root)
    copies = quantized_store.list_copies()
    for repo in cached_repos(root):
        refs = repo.all_refs()
        remote_refs = _remote_refs(repo.repo_id) if online and refs else None
        if remote_refs is None and online and refs:
            online = False  # unreachable: don't try again for every version
        records = repo.read_verified()
        for commit in repo.commits():
            tree, source = _load_tree(repo, commit, online)
            my_refs = tuple(sorted(r for r, c in refs.items() if c == commit))
            update = None
            if remote_refs is not None and my_refs:
                update = any(remote_refs.get(r, commit) != commit for r in my_refs)
            version = _version_status(repo, commit, tree, source, my_refs, records, update,
                                      scanned.get((repo.repo_id, commit)))
            out.append(dataclasses.replace(version, quantized=tuple(c for c in copies if c.source_id == commit)))
    return out


def unlisted_quantized_copies(versions: list[InstalledVersion]) -> list[QuantizedCopy]:
    """Quantized copies made from weights not in this list (another models folder, a plain folder, or
    weights since deleted)."""
    listed = {c.path for v in versions for c in v.quantized}
    return [c for c in quantized_store.list_copies() if c.path not in listed]


def _scanned_sizes(root: Path) -> dict[tuple[str, str], int]:
    """(repo, commit) → bytes of its blobs, as huggingface_hub's scan_cache_dir counts them (each blob
    once). A repo the scan finds broken (e.g. a missing blob mid-download) is not in the answer; for
    those we count ourselves."""
    from huggingface_hub import CacheNotFound, scan_cache_dir

    try:
        info = scan_cache_dir(root)
    except (CacheNotFound, ValueError, OSError):
        return {}
    return {(repo.repo_id, rev.commit_hash): rev.size_on_disk
            for repo in info.repos if repo.repo_type == "model" for rev in repo.revisions}


def _remote_refs(repo_id: str) -> dict[str, str] | None:
    try:
        refs = fetch_refs(repo_id)
    except HubError:
        return None
    return {**refs["tags"], **refs["branches"]}


def _version_status(repo, commit, tree, source, refs, records, update, scanned_size=None) -> InstalledVersion:
    snapshot = repo.snapshot(commit)
    manifest = repo.read_manifest(commit)
    present = present_files(snapshot)
    expected = _expected(manifest, tree, present)
    missing, corrupt, blobs = [], [], {}
    partial_bytes = 0
    for path in expected:
        entry, info = present.get(path), tree.get(path)
        if entry is None or not entry.exists():
            missing.append(path)
            if info is not None and repo.partial(info.etag).is_file():
                partial_bytes += repo.partial(info.etag).stat().st_size
            continue
        blob = snapshot_blob(entry)
        blobs[blob] = entry.stat().st_size
        if info is not None and (entry.stat().st_size != info.size or is_verified_ok(repo, info.etag, records) is False):
            corrupt.append(path)
    for path, entry in present.items():  # files outside the expected set still take space
        if path not in expected and entry.exists():
            blobs[snapshot_blob(entry)] = entry.stat().st_size
    borrowed = (manifest or {}).get("components_from")
    components_missing = _components_missing(repo.root, borrowed) if borrowed else ()
    if corrupt:
        status = "corrupt"
    elif missing or components_missing:
        status = "partial"
    elif not tree and not manifest:
        status = "unknown"
    else:
        status = "complete"
    bytes_expected = sum(tree[p].size for p in expected if p in tree) if tree and all(p in tree for p in expected) else None
    return InstalledVersion(
        repo.repo_id, commit, refs, tuple((manifest or {}).get("requested", ())), snapshot,
        (sum(blobs.values()) if scanned_size is None else scanned_size) + partial_bytes, bytes_expected, len(expected), len(expected) - len(missing),
        status, tuple(missing), tuple(corrupt), partial_bytes, source, (manifest or {}).get("components_from"), update,
        bool((manifest or {}).get("components_only", False)), components_missing,
    )


def _components_missing(root: Path, source: object) -> tuple[str, ...]:
    """What a transformer-only version lacks of the base version it borrows from (recorded at
    download time): the files the engine loads from there, each as repo@commit10:path."""
    if not isinstance(source, dict) or not isinstance(source.get("repo"), str) or not is_commit(source.get("commit")):
        return ("(no valid base version recorded)",)
    base = RepoCache(root, source["repo"])
    label = f"{source['repo']}@{source['commit'][:10]}"
    snapshot = base.snapshot(source["commit"])
    return tuple(f"{label}:{rel}" for rel in COMPONENT_FILES if not (snapshot / rel).is_file())


# --- verify -----------------------------------------------------------------------------------
def verify(model: str, revision: str | None = None, *, cache_dir: str | os.PathLike | None = None,
           on_event=None, online: bool | None = None) -> VerifyReport:
    """Hash every file of a downloaded version against the hub's published hash (sha256 = LFS oid,
    git blob sha1 otherwise); name corrupt and missing files. Results are remembered so that the next
    `download` fetches exactly those files again. A turbo version also checks its base components."""
    repo_id = check_repo_id(canonical_model(model))
    repo = RepoCache(cache_root(cache_dir), repo_id)
    commit = resolve_cached_commit(repo, revision, default_main=True) if repo.folder.is_dir() else None
    if commit is None:
        raise WeightsNotFound(f"model {repo_id} is not downloaded in {repo.root}")
    report = _verify_version(repo, commit, on_event, (not is_offline()) if online is None else online)
    source = (repo.read_manifest(commit) or {}).get("components_from")
    if source:
        base = RepoCache(repo.root, source["repo"])
        if base.snapshot(source["commit"]).is_dir():
            components = _verify_version(base, source["commit"], on_event, online is not False and not is_offline())
        else:
            components = VerifyReport(source["repo"], source["commit"], 0, (), ("(whole version)",), "cache")
        report = VerifyReport(report.repo_id, report.commit, report.checked, report.corrupt, report.missing,
                              report.source, components)
    return report


def _verify_version(repo: RepoCache, commit: str, on_event, online: bool) -> VerifyReport:
    tree, source = {}, "none"
    if online:
        try:
            version = fetch_version(repo.repo_id, commit)
            tree, source = {f.path: f for f in version.files}, "hub"
            if read_listing(repo, commit) is None:
                write_listing(repo, commit, version.files)
        except HubUnreachable:
            pass
    if not tree:
        tree, source = _load_tree(repo, commit, online=False)
    if not tree:
        raise HubError(f"no published hashes known for {repo.repo_id} @ {commit[:10]}; connect to the hub and verify again")
    snapshot = repo.snapshot(commit)
    present = present_files(snapshot)
    expected = _expected(repo.read_manifest(commit), tree, present)
    checkable = [p for p in expected if p in tree and present.get(p) is not None and present[p].exists()]
    missing = [p for p in expected if p not in checkable and p in tree]
    progress = Progress(sum(tree[p].size for p in checkable), len(checkable), on_event=on_event,
                        context={"action": "verify", "repo": repo.repo_id, "commit": commit})
    corrupt, results = [], {}
    for path in checkable:
        f = tree[path]
        entry = snapshot / path
        ok = entry.stat().st_size == f.size and \
            hash_file(entry, f, on_bytes=lambda n, p=path: progress.add(n, p)).hexdigest() == expected_digest(f)
        results[f.etag] = ok
        if not ok:
            corrupt.append(path)
        progress.file_done(path)
    record_results(repo, results)
    progress.emit("done")
    return VerifyReport(repo.repo_id, commit, len(checkable), tuple(corrupt), tuple(missing), source)
