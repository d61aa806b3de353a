"""One file from the hub into the cache, resumable across runs.

huggingface_hub 2.4 writes to `<etag>.<uuid8>.incomplete` and deletes it on any error, so a killed or
dropped 10 GB shard restarts from zero. This is the one place where we do it ourselves:
a ranged GET (`Range: bytes=<on disk>-`) appending to the stable `blobs/<etag>.incomplete`, each chunk
written straight to the kernel (so a SIGKILL loses nothing written), hashed as it arrives, checked
against the hub's published hash (sha256 = LFS oid, or the git blob sha1), then renamed to
`blobs/<etag>` — the same cache layout and lock files huggingface_hub uses.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from stepvideo.errors import Cancelled, HubError
from stepvideo.hub.cache import RepoCache
from stepvideo.hub.remote import HubUnreachable, RemoteFile, endpoint

log = logging.getLogger(__name__)

CHUNK = 1 << 20
RETRIES = 5
READ_TIMEOUT_S = float(os.environ.get("HF_HUB_DOWNLOAD_TIMEOUT") or 30)
CONNECT_TIMEOUT_S = float(os.environ.get("HF_HUB_ETAG_TIMEOUT") or 10)


class DiskFull(HubError):
    """No space left where the weights go (before or during a download)."""


class HashMismatch(HubError):
    """Bytes on disk differ from what the hub publishes for the file."""


def new_hasher(f: RemoteFile):
    """sha256 for LFS files (compares with lfs.oid), git's blob sha1 otherwise (compares with oid)."""
    if f.sha256:
        return hashlib.sha256()
    h = hashlib.sha1()
    h.update(b"blob %d\0" % f.size)
    return h


def expected_digest(f: RemoteFile) -> str:
    return f.sha256 or f.oid


def hash_file(path: Path, f: RemoteFile, on_bytes: Callable[[int], None] | None = None,
              limit: int | None = None):
    """The hasher after reading `path` (its first `limit` bytes when given)."""
    h = new_hasher(f)
    remaining = limit
    with open(path, "rb") as fh:
        while remaining is None or remaining > 0:
            chunk = fh.read(CHUNK if remaining is None else min(CHUNK, remaining))
            if not chunk:
                break
            h.update(chunk)
            if remaining is not None:
                remaining -= len(chunk)
            if on_bytes:
                on_bytes(len(chunk))
    return h


class BackgroundHasher:
    """Hashes chunks in its own thread (hashlib drops the GIL), so hashing overlaps the network.
    Chunks are handed over in batches of ~BATCH bytes: one thread hand-off per 64 KiB read costs more
    than the hashing it moves."""

    BATCH = 4 << 20

    def __init__(self, hasher) -> None:
        self.hasher = hasher
        self._queue: queue.Queue[list[bytes] | None] = queue.Queue(maxsize=8)
        self._batch: list[bytes] = []
        self._batched = 0
        self._thread = threading.Thread(target=self._run, daemon=True, name="hub-hash")
        self._thread.start()

    def _run(self) -> None:
        update = self.hasher.update
        while (batch := self._queue.get()) is not None:
            # One big update: hashlib drops the GIL per call, and many small calls make the network
            # thread queue for the GIL after every write.
            update(b"".join(batch))

    def update(self, chunk: bytes) -> None:
        self._batch.append(chunk)
        self._batched += len(chunk)
        if self._batched >= self.BATCH:
            self._queue.put(self._batch)
            self._batch, self._batched = [], 0

    def hexdigest(self) -> str:
        self.close()
        return self.hasher.hexdigest()

    def close(self) -> None:
        if self._thread.is_alive():
            if self._batch:
                self._queue.put(self._batch)
                self._batch, self._batched = [], 0
            self._queue.put(None)
            self._thread.join()


def file_url(repo_id: str, commit: str, path: str) -> str:
    return f"{endpoint()}/{repo_id}/resolve/{commit}/{quote(path)}"


def _disk_error(exc: OSError, target: Path, path: str) -> HubError:
    if exc.errno == errno.ENOSPC:
        return DiskFull(
            f"the disk is full while writing {path} in {target.parent}; free space and run the download "
            "again (it resumes from the bytes already written)"
        )
    return HubError(f"cannot write {target} ({exc.strerror or exc}); choose a writable folder with --cache-dir")


def fetch_blob(
    repo: RepoCache, commit: str, f: RemoteFile, *, on_bytes: Callable[[int], None],
    on_restart: Callable[[int], None], should_stop: Callable[[], bool], retries: int = RETRIES,
    replace_existing: bool = False,
) -> Path:
    """Make `blobs/<etag>` hold the exact published bytes of `f`, continuing a partial on disk.

    `on_bytes(n)` counts bytes fetched now; `on_restart(n)` takes back n bytes credited as already on
    disk when they turn out unusable. Holds huggingface_hub's lock for the blob while working.
    """
    from filelock import FileLock

    blob, partial = repo.blob(f.etag), repo.partial(f.etag)
    lock_path = repo.lock(f.etag)
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        repo.blobs.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _disk_error(exc, blob, f.path) from None
    with FileLock(str(lock_path)):
        if blob.is_file() and not replace_existing and blob.stat().st_size == f.size:
            return blob  # another process finished it while we waited for the lock
        digest = _download_partial(repo, commit, f, partial, on_bytes, on_restart, should_stop, retries)
        if digest != expected_digest(f):
            os.unlink(partial)
            on_restart(f.size)
            raise HashMismatch(
                f"{f.path}: the downloaded bytes do not match the hub's {'sha256' if f.sha256 else 'git sha1'}; "
                "the bad copy was removed, run the download again"
            )
        os.replace(partial, blob)
    return blob


def _open_partial(partial: Path) -> int:
    return os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)


_write = os.write  # unbuffered: a chunk is in the kernel once this returns (tests swap it to fill the disk)


class _Hashing:
    """The running hash of the partial file's bytes, rebuilt from disk whenever the two disagree."""

    def __init__(self, f: RemoteFile) -> None:
        self.f = f
        self.hasher: BackgroundHasher | None = None
        self.count = 0

    def sync(self, partial: Path, have: int) -> None:
        if self.hasher is not None and self.count == have:
            return
        self.close()
        base = hash_file(partial, self.f, limit=have) if have else new_hasher(self.f)
        self.hasher, self.count = BackgroundHasher(base), have

    def update(self, chunk: bytes) -> None:
        self.hasher.update(chunk)
        self.count += len(chunk)

    def hexdigest(self) -> str:
        return self.hasher.hexdigest()

    def close(self) -> None:
        if self.hasher is not None:
            self.hasher.close()
            self.hasher = None


def _download_partial(
    repo: RepoCache, commit: str, f: RemoteFile, partial: Path, on_bytes, on_restart, should_stop, retries: int,
) -> str:
    """Append the missing bytes of `f` to `partial` until it has f.size bytes (ranged GETs, retried);
    return the hex digest of the whole partial."""
    import httpx2
    from huggingface_hub.utils import build_hf_headers, get_session

    url = file_url(repo.repo_id, commit, f.path)
    timeout = httpx2.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
    hashing = _Hashing(f)
    failures = 0
    try:
        while True:
            have = partial.stat().st_size if partial.exists() else 0
            if have > f.size:  # not a prefix of this file: start over
                _restart(partial, have, on_restart)
                have = 0
            hashing.sync(partial, have)
            if have == f.size:
                return hashing.hexdigest()
            if should_stop():
                raise Cancelled(f"download of {f.path} stopped; run it again to resume")
            headers = build_hf_headers(library_name="stepvideo")
            headers["Accept-Encoding"] = "identity"
            if have:
                headers["Range"] = f"bytes={have}-"
            try:
                with get_session().stream("GET", url, headers=headers, timeout=timeout, follow_redirects=True) as resp:
                    if resp.status_code == 416:  # the server says our partial is no prefix: start over
                        _restart(partial, have, on_restart)
                        continue
                    if resp.status_code >= 400:
                        _raise_http(resp, f)
                    if have and resp.status_code != 206:  # range ignored: the body starts at 0
                        _restart(partial, have, on_restart)
                        hashing.sync(partial, 0)
                    _append_body(resp, partial, f, hashing, on_bytes, should_stop)
                failures = 0
            except (httpx2.TransportError, httpx2.StreamError) as exc:
                failures += 1
                if failures > retries:
                    raise HubUnreachable(
                        f"download of {f.path} failed {failures} times ({exc or type(exc).__name__}); "
                        "run it again to resume from the bytes already on disk"
                    ) from None
                log.info("retrying %s after %s (%d/%d)", f.path, exc, failures, retries)
                time.sleep(min(5.0, 0.1 * 2 ** failures))
    finally:
        hashing.close()


def _restart(partial: Path, have: int, on_restart) -> None:
    os.truncate(partial, 0)
    on_restart(have)


def _append_body(resp, partial: Path, f: RemoteFile, hashing: _Hashing, on_bytes, should_stop) -> None:
    try:
        fd = _open_partial(partial)
    except OSError as exc:
        raise _disk_error(exc, partial, f.path) from None
    try:
        for chunk in resp.iter_raw():  # as received: a chunker would lose its buffer when the link drops
            view = memoryview(chunk)
            while view:
                try:
                    written = _write(fd, view)
                except OSError as exc:
                    raise _disk_error(exc, partial, f.path) from None
                view = view[written:]
            hashing.update(chunk)
            on_bytes(len(chunk))
            if should_stop():
                raise Cancelled(f"download of {f.path} stopped; run it again to resume")
    finally:
        os.close(fd)


def _raise_http(resp, f: RemoteFile) -> None:
    code = resp.headers.get("X-Error-Code", "")
    if resp.status_code == 404 or code == "EntryNotFound":
        raise HubError(f"{f.path} is no longer on the hub at this commit (HTTP {resp.status_code})")
    if resp.status_code in (401, 403):
        raise HubError(f"the hub refused {f.path} (HTTP {resp.status_code}); gated or private repos need `hf auth login`")
    raise HubUnreachable(f"the hub answered HTTP {resp.status_code} for {f.path}; try again later")
