"""Blobs one repo can take from another already in the cache, instead of downloading them again.

Step-Video-TI2V re-ships the text encoders, tokenizers and VAE of Step-Video-T2V (ti2v-facts §4). When
a file's etag (the sha256 of an LFS file, the git blob id of a small one: both name the exact bytes)
and size equal a blob another repo in the same cache holds, that blob is hard-linked into this repo:
no bytes move over the network and none are written twice. Deleting either repo later unlinks only
its own name, so the other keeps its file (delete reports such a blob as freeing nothing). Where a
hard link is impossible (another file system, a file system without links) the blob is copied.
A blob `verify` found corrupt is never shared.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from stepvideo.hub.cache import RepoCache, repo_id_from_folder
from stepvideo.hub.remote import RemoteFile
from stepvideo.hub.verified import is_verified_ok

log = logging.getLogger(__name__)


def find_shared_blob(repo: RepoCache, f: RemoteFile) -> Path | None:
    """A complete blob with `f`'s etag and size in another repo of the same cache root, or None."""
    try:
        folders = sorted(repo.root.glob("models--*"))
    except OSError:
        return None
    for folder in folders:
        other_id = repo_id_from_folder(folder.name)
        if other_id is None or other_id == repo.repo_id:
            continue
        other = RepoCache(repo.root, other_id)
        blob = other.blob(f.etag)
        try:
            if blob.is_symlink() or not blob.is_file() or blob.stat().st_size != f.size:
                continue
        except OSError:
            continue
        if is_verified_ok(other, f.etag) is False:
            continue
        return blob
    return None


def adopt_shared_blob(repo: RepoCache, f: RemoteFile) -> bool:
    """Link (or copy) another repo's identical blob into `repo`; False when none is there any more."""
    source = find_shared_blob(repo, f)
    if source is None:
        return False
    target = repo.blob(f.etag)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.sharing")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError as exc:
        log.info("cannot hard-link %s (%s); copying it", source, exc.strerror or exc)
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)
    log.info("%s: %s taken from %s, not downloaded", repo.repo_id, f.path, source.parent.parent.name)
    return True
