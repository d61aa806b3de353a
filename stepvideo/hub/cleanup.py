"""Freeing space: delete a version (only the blobs no other version uses, and the quantized copies made
from it) and clean leftover partial files and quantized copies whose weights are gone. Blobs a
running download holds a lock on are never touched."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from stepvideo.errors import HubError, WeightsNotFound
from stepvideo.hub.cache import PARTIAL_SUFFIX, RepoCache, cache_root, check_repo_id, snapshot_blob
from stepvideo.hub.inventory import cached_repos, present_files, resolve_cached_commit
from stepvideo.hub.listing import read_listing
from stepvideo.hub.resolve import canonical_model
from stepvideo.memory import quantized_store

STALE_TMP_S = 600  # leftovers of our atomic writes older than this are debris of a crash


@dataclass(frozen=True)
class DeleteReport:
    repo_id: str
    commit: str
    refs_removed: tuple[str, ...]
    freed_bytes: int  # blobs and quantized copies together
    quantized_removed: tuple[str, ...] = ()  # folders of the quantized copies made from this version


@dataclass(frozen=True)
class CleanReport:
    removed: tuple[str, ...]
    freed_bytes: int
    kept_resumable: int  # partial files of unfinished downloads left for a resume
    quantized_removed: tuple[str, ...] = ()  # quantized copies whose source weights are gone


def _version_blobs(repo: RepoCache, commit: str) -> set[str]:
    """Blob names a version uses or will use: its snapshot links plus its listing's etags (partials)."""
    names = set()
    for entry in present_files(repo.snapshot(commit)).values():
        blob = snapshot_blob(entry)
        if blob is not None and blob.parent == repo.blobs:
            names.add(blob.name)
    names.update(f.etag for f in (read_listing(repo, commit) or {}).values())
    return names


def dependents(root: Path, repo_id: str, commit: str) -> list[tuple[str, str]]:
    """(repo, commit) of every installed version whose manifest borrows its text encoders and VAE
    from `repo_id @ commit` (a turbo download names the base version in `components_from`)."""
    out = []
    for other in cached_repos(root):
        for c in other.commits():
            source = (other.read_manifest(c) or {}).get("components_from")
            if isinstance(source, dict) and source.get("repo") == repo_id and source.get("commit") == commit:
                out.append((other.repo_id, c))
    return out


def delete_version(model: str, revision: str | None = None, *, cache_dir: str | os.PathLike | None = None,
                   force: bool = False) -> DeleteReport:
    """Remove one version: its snapshot, refs, and the blobs (and partials) no other version uses.

    Refuses (one line) when another installed version borrows its components, e.g. the base version a
    turbo download uses for its text encoders and VAE; `force` deletes anyway (turbo then lists as
    partial until the base is downloaded again)."""
    from filelock import FileLock, Timeout

    repo_id = check_repo_id(canonical_model(model))
    repo = RepoCache(cache_root(cache_dir), repo_id)
    if not repo.folder.is_dir():
        raise WeightsNotFound(f"model {repo_id} is not downloaded in {repo.root}")
    commit = resolve_cached_commit(repo, revision)
    users = dependents(repo.root, repo_id, commit)
    if users and not force:
        named = ", ".join(f"{r} @ {c[:10]}" for r, c in users)
        raise HubError(
            f"{named} uses the text encoders and VAE of {repo_id} @ {commit[:10]}; delete "
            f"{'it' if len(users) == 1 else 'them'} first, or add --force to delete anyway (it stops working)"
        )
    others = [c for c in repo.commits() if c != commit]
    kept = set().union(*(_version_blobs(repo, c) for c in others)) if others else set()
    unique = _version_blobs(repo, commit) - kept
    locks = []
    try:
        for etag in sorted(unique):
            lock = FileLock(str(repo.lock(etag)))
            try:
                lock.acquire(timeout=0)
            except Timeout:
                raise HubError(f"{repo_id} @ {commit[:10]} is being downloaded right now; stop that first") from None
            locks.append(lock)
        freed = _remove_tree(repo.snapshot(commit))
        refs_removed = tuple(r for r, c in repo.all_refs().items() if c == commit)
        for ref in refs_removed:
            (repo.refs / ref).unlink()
        for extra in (repo.tree_file(commit), repo.listing_file(commit), repo.manifest_file(commit)):
            extra.unlink(missing_ok=True)
        for etag in unique:
            for path in (repo.blob(etag), repo.partial(etag)):
                freed += _remove_file(path)
        if not others:  # nothing left in this repo: drop the folder like huggingface_hub does
            freed += sum(_remove_file(p) for p in repo.blobs.glob("*")) if repo.blobs.is_dir() else 0
            shutil.rmtree(repo.folder, ignore_errors=True)
    finally:
        for lock in locks:
            lock.release()
    copies = quantized_store.copies_of(commit)
    freed += quantized_store.delete_copies(copies)
    return DeleteReport(repo_id, commit, refs_removed, freed, tuple(str(c.path) for c in copies))


def _remove_file(path: Path) -> int:
    try:
        st = path.lstat()
        # A symlink frees nothing, nor does a blob hard-linked into another repo (hub/shared_blobs.py).
        size = 0 if path.is_symlink() or st.st_nlink > 1 else st.st_size
        path.unlink()
        return size
    except FileNotFoundError:
        return 0


def _remove_tree(folder: Path) -> int:
    """Remove a snapshot folder; count the bytes of real files in it (symlinks free nothing)."""
    freed = 0
    if folder.is_dir():
        for p in folder.rglob("*"):
            if p.is_file() and not p.is_symlink():
                freed += p.stat().st_size
        shutil.rmtree(folder)
    return freed


def clean(cache_dir: str | os.PathLike | None = None, *, include_resumable: bool = False) -> CleanReport:
    """Remove partial files nothing will ever resume: huggingface_hub's `<etag>.<uuid8>.incomplete`
    orphans and our `<etag>.incomplete` files no downloaded version needs (all partials with
    `include_resumable`), plus debris of interrupted atomic writes, and quantized copies whose source
    weights are gone (judged against this models folder, see quantized_store.orphans). Files in use
    are left alone."""
    from filelock import FileLock, Timeout

    removed, freed, kept = [], 0, 0
    now = time.time()
    repos = cached_repos(cache_root(cache_dir))
    stale_copies = quantized_store.orphans({c for repo in repos for c in repo.commits()})
    freed += quantized_store.delete_copies(stale_copies)
    for repo in repos:
        wanted = set().union(*(_version_blobs(repo, c) for c in repo.commits())) if repo.commits() else set()
        candidates = list(repo.blobs.glob("*" + PARTIAL_SUFFIX)) if repo.blobs.is_dir() else []
        for path in candidates:
            etag = path.name.split(".", 1)[0]
            if not etag:
                continue  # not a blob's partial (".incomplete" alone): not ours to judge
            ours = path.name == etag + PARTIAL_SUFFIX
            if ours and etag in wanted and not include_resumable:
                kept += 1
                continue
            lock = FileLock(str(repo.lock(etag)))
            try:
                lock.acquire(timeout=0)
            except Timeout:
                continue  # a download is writing it
            try:
                size = path.stat().st_size
                path.unlink()
                removed.append(str(path))
                freed += size
            except FileNotFoundError:
                pass
            finally:
                lock.release()
        for path in list(repo.folder.rglob(".*.tmp")) + list(repo.folder.rglob(".*.link")):
            try:
                if now - path.lstat().st_mtime > STALE_TMP_S:
                    freed += path.lstat().st_size
                    path.unlink()
                    removed.append(str(path))
            except FileNotFoundError:
                pass
    return CleanReport(tuple(removed), freed, kept, tuple(str(c.path) for c in stale_copies))
