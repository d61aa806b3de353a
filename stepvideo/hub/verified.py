"""What we know about each blob's integrity, remembered across runs in `.stepvideo/verified.json`.

A record is {etag: {"ok": bool, "size": n, "mtime_ns": t}} and counts only while the blob's size and
mtime are unchanged, so a blob replaced by any tool is judged afresh. `verify` writes records (that is
how a later `download` knows which files to fetch again); `download` records the blobs it hashed.
"""

from __future__ import annotations

import os

from stepvideo.hub.cache import RepoCache
from stepvideo.hub.remote import RemoteFile


def _stat_key(path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def blob_state(repo: RepoCache, f: RemoteFile, records: dict | None = None) -> str:
    """cached (usable as far as we know) | corrupt (wrong size, or verify found it bad) | missing."""
    key = _stat_key(repo.blob(f.etag))
    if key is None:
        return "missing"
    if key[0] != f.size:
        return "corrupt"
    record = (records if records is not None else repo.read_verified()).get(f.etag)
    if record and (record.get("size"), record.get("mtime_ns")) == key and not record.get("ok", True):
        return "corrupt"
    return "cached"


def is_verified_ok(repo: RepoCache, etag: str, records: dict | None = None) -> bool | None:
    """True/False when a current record exists for the blob, None when it was never checked."""
    key = _stat_key(repo.blob(etag))
    record = (records if records is not None else repo.read_verified()).get(etag)
    if key is None or not record or (record.get("size"), record.get("mtime_ns")) != key:
        return None
    return bool(record.get("ok"))


def record_results(repo: RepoCache, results: dict[str, bool]) -> None:
    """Merge {etag: ok} for the blobs as they are on disk now (cross-process safe)."""
    from filelock import FileLock

    repo.state_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(repo.state_dir / "verified.lock")):
        records = repo.read_verified()
        for etag, ok in results.items():
            key = _stat_key(repo.blob(etag))
            if key is None:
                records.pop(etag, None)
            else:
                records[etag] = {"ok": bool(ok), "size": key[0], "mtime_ns": key[1]}
        repo.write_verified(records)
