"""Our record of what the hub published for a commit (paths, sizes, hashes), in a file we own.

A commit never changes, so its file listing, fetched once at download time, serves `list` and
`verify` offline for ever. It lives in `models--org--name/.stepvideo/listings/<commit>.json`, in our
own versioned format, rather than in huggingface_hub's private `trees/<commit>.json`, whose format is
theirs to change. Older versions of this app wrote that file: when ours is missing it is read once
(checked like any hub answer) and copied into ours; the hub's file is left to huggingface_hub.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from stepvideo.hub.cache import RepoCache, read_json, write_atomic
from stepvideo.hub.remote import RemoteFile
from stepvideo.hub.safety import UnsafeHubData

log = logging.getLogger(__name__)

LISTING_FORMAT = "stepvideo-file-listing"
LISTING_VERSION = 1
LEGACY_TREE_VERSION = 1  # huggingface_hub's trees/<sha>.json "format_version" we once wrote


def read_listing(repo: RepoCache, commit: str) -> dict[str, RemoteFile] | None:
    """path → file for the commit, from our listing (or, once, from an older trees/ file); None if
    unknown or not trustworthy (a tampered file is treated as absent, with a warning)."""
    data = read_json(repo.listing_file(commit))
    if data is not None:
        return _parse(data, repo.listing_file(commit), commit)
    legacy = _read_legacy_tree(repo, commit)
    if legacy is None:
        return None
    try:
        write_listing(repo, commit, legacy.values())
        log.info("took the file listing of %s @ %s from %s into %s", repo.repo_id, commit[:10],
                 repo.tree_file(commit), repo.listing_file(commit))
    except OSError:
        pass  # a read-only cache still answers from the old file
    return legacy


def write_listing(repo: RepoCache, commit: str, files) -> None:
    payload = {
        "format": LISTING_FORMAT, "version": LISTING_VERSION, "repo": repo.repo_id, "commit": commit,
        "files": {f.path: {"size": f.size, "oid": f.oid, "sha256": f.sha256} for f in files},
    }
    write_atomic(repo.listing_file(commit), json.dumps(payload, indent=1, sort_keys=True).encode())


def _parse(data: Any, where, commit: str) -> dict[str, RemoteFile] | None:
    if not isinstance(data, dict) or data.get("format") != LISTING_FORMAT or data.get("version") != LISTING_VERSION:
        return None  # another (newer) version of the app: ignore rather than misread
    if data.get("commit") != commit or not isinstance(data.get("files"), dict):
        return None
    try:
        return {path: RemoteFile(path, e["size"], e["oid"], e.get("sha256")) for path, e in data["files"].items()}
    except (UnsafeHubData, KeyError, TypeError) as exc:
        log.warning("ignoring %s: %s", where, exc)
        return None


def _read_legacy_tree(repo: RepoCache, commit: str) -> dict[str, RemoteFile] | None:
    """huggingface_hub's trees/<commit>.json (format_version 1), which older versions of this app wrote."""
    path = repo.tree_file(commit)
    data = read_json(path)
    if not isinstance(data, dict) or data.get("format_version") != LEGACY_TREE_VERSION:
        return None
    files = data.get("files")
    if not isinstance(files, dict):
        return None
    try:
        return {p: RemoteFile(p, e["size"], e["blob_id"], e.get("lfs_sha256")) for p, e in files.items()}
    except (UnsafeHubData, KeyError, TypeError, AttributeError) as exc:
        log.warning("ignoring %s: %s", path, exc)
        return None
