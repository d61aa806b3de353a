"""Download a model version into the cache: plan (dry run, disk space), parallel resumable transfers,
progress events, cancel. A transformer-only repo (turbo) also fetches the base repo's text encoders,
tokenizers and VAE. Refs (refs/<branch or tag>) move only once every file is in place, so an
interrupted update never breaks a version that worked before.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from stepvideo.errors import Cancelled, HubError
from stepvideo.hub.cache import (
    RepoCache,
    cache_root,
    check_repo_id,
    is_commit,
    link_snapshot_file,
    snapshot_file_in_place,
)
from stepvideo.hub.listing import read_listing, write_listing
from stepvideo.hub.progress import Progress, human_bytes
from stepvideo.hub.remote import RemoteFile, fetch_version
from stepvideo.hub.resolve import canonical_model
from stepvideo.hub.select import is_transformer_only, select
from stepvideo.hub.shared_blobs import adopt_shared_blob, find_shared_blob
from stepvideo.hub.transfer import DiskFull, fetch_blob
from stepvideo.hub.verified import blob_state, record_results
from stepvideo.presets import BASE_REPO

log = logging.getLogger(__name__)

DISK_MARGIN = 256 * 1024 * 1024  # keep this much free beyond the download
DEFAULT_WORKERS = 4


@dataclass(frozen=True)
class PlannedFile:
    path: str
    size: int
    etag: str
    state: str  # cached | shared | partial | missing | corrupt
    # usable bytes already there (whole file when cached or shared by another repo, the partial's length
    # when partial)
    on_disk: int

    @property
    def to_fetch(self) -> int:
        return self.size - self.on_disk


@dataclass(frozen=True)
class DownloadPlan:
    """What a download will do; `.fits` says whether the disk can take it."""

    repo_id: str
    revision: str
    commit: str
    cache_dir: Path
    files: tuple[PlannedFile, ...]
    remote_files: tuple[RemoteFile, ...] = field(repr=False)
    free_bytes: int
    include_lib: bool
    components: DownloadPlan | None = None  # turbo: what comes from the base repo
    components_only: bool = False  # this part is the base repo's encoders/VAE for a turbo download

    def parts(self) -> list[DownloadPlan]:
        return [self] + ([self.components] if self.components else [])

    @property
    def total_bytes(self) -> int:
        return sum(f.size for p in self.parts() for f in p.files)

    @property
    def bytes_to_fetch(self) -> int:
        return sum(f.to_fetch for p in self.parts() for f in p.files)

    @property
    def bytes_on_disk(self) -> int:
        return self.total_bytes - self.bytes_to_fetch

    @property
    def fits(self) -> bool:
        return self.bytes_to_fetch == 0 or self.bytes_to_fetch + DISK_MARGIN <= self.free_bytes

    def summary(self) -> str:
        n = sum(len(p.files) for p in self.parts())
        text = (f"{self.repo_id} @ {self.revision} ({self.commit[:10]}): {n} files, {human_bytes(self.total_bytes)}"
                f" total, {human_bytes(self.bytes_to_fetch)} to download, {human_bytes(self.free_bytes)} free in"
                f" {self.cache_dir}")
        if self.components:
            text += f" (includes {self.components.repo_id} @ {self.components.commit[:10]}: text encoders, VAE)"
        return text

    def to_dict(self) -> dict[str, Any]:
        out = {
            "repo": self.repo_id, "revision": self.revision, "commit": self.commit, "cache_dir": str(self.cache_dir),
            "files": [asdict(f) for f in self.files], "total_bytes": self.total_bytes,
            "bytes_to_fetch": self.bytes_to_fetch, "free_bytes": self.free_bytes, "fits": self.fits,
            "include_lib": self.include_lib,
        }
        if self.components:
            out["components"] = self.components.to_dict()
        return out


def free_bytes(path: Path) -> int:
    """Free space on the filesystem that holds `path` (or its nearest existing parent)."""
    path = Path(path).absolute()
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


def ensure_writable(root: Path) -> None:
    """Create the cache folder and prove we can write there, or raise one line."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".stepvideo-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno == errno.ENOSPC:
            raise DiskFull(f"the disk holding {root} is full") from None
        raise HubError(
            f"cannot write to the models folder {root} ({reason}); choose another with --cache-dir or STEPVIDEO_MODELS_DIR"
        ) from None


def _plan_files(repo: RepoCache, commit: str, files: list[RemoteFile]) -> tuple[PlannedFile, ...]:
    planned = []
    records = repo.read_verified()
    for f in files:
        state = blob_state(repo, f, records)
        if state == "missing" and snapshot_file_in_place(repo, commit, f.path, f.size):
            state = "cached"
        if state == "cached":
            planned.append(PlannedFile(f.path, f.size, f.etag, "cached", f.size))
            continue
        partial = repo.partial(f.etag)
        have = partial.stat().st_size if partial.is_file() else 0
        if state == "missing" and find_shared_blob(repo, f) is not None:  # e.g. TI2V's T2V encoders
            planned.append(PlannedFile(f.path, f.size, f.etag, "shared", f.size))
        elif 0 < have <= f.size:
            planned.append(PlannedFile(f.path, f.size, f.etag, "partial", have))
        else:
            planned.append(PlannedFile(f.path, f.size, f.etag, state, 0))
    return tuple(planned)


def plan_download(
    model: str, revision: str | None = None, *, cache_dir: str | os.PathLike | None = None,
    include_lib: bool = False, base_revision: str | None = None,
) -> DownloadPlan:
    """Ask the hub what `model@revision` holds, compare with the cache: the dry run (no file bytes move)."""
    repo_id = check_repo_id(canonical_model(model))
    root = cache_root(cache_dir)
    version = fetch_version(repo_id, revision)
    files = select(version.files, include_lib)
    if not files:
        raise HubError(f"{repo_id} @ {version.revision} has no model files (configs, tokenizers, safetensors)")
    components = None
    if repo_id != BASE_REPO and is_transformer_only(f.path for f in version.files):
        base = fetch_version(BASE_REPO, base_revision)
        base_files = select(base.files, include_lib, components_only=True)
        base_repo = RepoCache(root, BASE_REPO)
        components = DownloadPlan(BASE_REPO, base.revision, base.commit, root, _plan_files(base_repo, base.commit, base_files),
                                  tuple(base_files), free_bytes(root), include_lib, components_only=True)
    repo = RepoCache(root, repo_id)
    return DownloadPlan(repo_id, version.revision, version.commit, root, _plan_files(repo, version.commit, files),
                        tuple(files), free_bytes(root), include_lib, components)


def download(
    model: str, revision: str | None = None, *, cache_dir: str | os.PathLike | None = None,
    include_lib: bool = False, on_event: Callable[[dict[str, Any]], None] | None = None,
    should_cancel: Callable[[], bool] | None = None, workers: int = DEFAULT_WORKERS,
    plan: DownloadPlan | None = None, retries: int | None = None,
) -> Path:
    """Download (or finish, or repair) a version; return its snapshot folder.

    Files already complete are kept, partial files continue from their last byte, files `verify`
    found corrupt are fetched again. Raises HubError subclasses (one line each) and Cancelled.
    """
    root = cache_root(cache_dir)
    ensure_writable(root)
    plan = plan or plan_download(model, revision, cache_dir=root, include_lib=include_lib)
    if not plan.fits:
        raise DiskFull(
            f"not enough disk space for {plan.repo_id}: {human_bytes(plan.bytes_to_fetch)} to download plus"
            f" {human_bytes(DISK_MARGIN)} headroom, {human_bytes(plan.free_bytes)} free in {root};"
            " free space or choose another folder with --cache-dir"
        )
    parts = plan.parts()
    for part in parts:
        _write_bookkeeping(part, done=False, components_from=None)
    progress = Progress(
        plan.total_bytes, sum(len(p.files) for p in parts), on_event=on_event,
        context={"repo": plan.repo_id, "revision": plan.revision, "commit": plan.commit},
    )
    progress.credit(plan.bytes_on_disk)
    progress.emit("start")
    stop = threading.Event()

    def should_stop() -> bool:
        if not stop.is_set() and should_cancel is not None and should_cancel():
            stop.set()
        return stop.is_set()

    no_links = _NoSymlinkNote(root)
    jobs = [(part, pf, rf) for part in parts for pf, rf in zip(part.files, part.remote_files)]
    jobs.sort(key=lambda j: (j[1].state == "cached", j[1].path))  # links for cached files last, cheap
    errors: list[BaseException] = []
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="hub-dl") as pool:
        futures = [pool.submit(_fetch_one, part, pf, rf, progress, should_stop, retries, no_links) for part, pf, rf in jobs]
        try:
            for future in as_completed(futures):
                exc = future.exception()
                if exc is not None:
                    stop.set()  # the others stop at their next chunk; what they wrote stays for a resume
                    errors.append(exc)
        except BaseException:  # Ctrl-C: let the workers stop at their next chunk, then go
            stop.set()
            raise
    if errors:
        first = next((e for e in errors if not isinstance(e, Cancelled)), errors[0])
        progress.emit("cancelled" if isinstance(first, Cancelled) else "failed", error=str(first))
        if isinstance(first, Cancelled):
            raise Cancelled(f"download of {plan.repo_id} cancelled; run it again to resume") from None
        raise first
    if plan.components:
        _write_bookkeeping(plan.components, done=True, components_from=None)
    components_from = {"repo": plan.components.repo_id, "commit": plan.components.commit} if plan.components else None
    _write_bookkeeping(plan, done=True, components_from=components_from)
    progress.emit("done", **({"note": no_links.note} if no_links.seen else {}))
    return RepoCache(root, plan.repo_id).snapshot(plan.commit)


class _NoSymlinkNote:
    """Says once per download (a log line, and a note on the `done` event) that the models folder
    has no symlinks and files were moved into the snapshot instead of linked."""

    def __init__(self, root: Path) -> None:
        self.note = (f"the models folder {root} does not support symbolic links (exFAT, NTFS or a network share?):"
                     " files are stored in the version's folder itself, so versions do not share files")
        self.seen = False
        self._lock = threading.Lock()

    def saw(self) -> None:
        with self._lock:
            if not self.seen:
                self.seen = True
                log.warning("%s", self.note)


def _fetch_one(part: DownloadPlan, pf: PlannedFile, rf: RemoteFile, progress: Progress, should_stop, retries,
               no_links: _NoSymlinkNote) -> None:
    repo = RepoCache(part.cache_dir, part.repo_id)
    shared = pf.state == "shared" and adopt_shared_blob(repo, rf)
    if pf.state != "cached" and not shared:
        kwargs = {} if retries is None else {"retries": retries}
        fetch_blob(
            repo, part.commit, rf, on_bytes=lambda n: progress.add(n, rf.path), on_restart=progress.uncount,
            should_stop=should_stop, replace_existing=pf.state == "corrupt", **kwargs,
        )
        record_results(repo, {rf.etag: True})
    try:
        if not link_snapshot_file(repo, part.commit, rf.path, rf.etag).is_symlink():
            no_links.saw()
    except OSError as exc:
        raise HubError(f"cannot link {rf.path} into {repo.snapshot(part.commit)} ({exc.strerror or exc})") from None
    progress.file_done(rf.path)


def _write_bookkeeping(part: DownloadPlan, *, done: bool, components_from: dict | None) -> None:
    """The commit's file listing and our manifest (both ours), and — once complete — the ref."""
    repo = RepoCache(part.cache_dir, part.repo_id)
    try:
        repo.snapshot(part.commit).mkdir(parents=True, exist_ok=True)
        if read_listing(repo, part.commit) is None:
            write_listing(repo, part.commit, part.remote_files)
        manifest = repo.read_manifest(part.commit) or {}
        # once any download took the whole version, it stays "full"
        components_only = part.components_only and manifest.get("components_only", True)
        files = sorted(set(manifest.get("files", [])) | {f.path for f in part.remote_files})
        manifest.update(files=files, repo=part.repo_id, commit=part.commit, complete=done,
                        components_only=components_only,
                        include_lib=part.include_lib or manifest.get("include_lib", False))
        manifest.setdefault("requested", [])
        if part.revision not in manifest["requested"]:
            manifest["requested"].append(part.revision)
        if components_from:
            manifest["components_from"] = components_from
        if done:
            manifest["completed_at"] = time.time()
        repo.write_manifest(part.commit, manifest)
        if done and not is_commit(part.revision):
            repo.write_ref(part.revision, part.commit)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DiskFull(f"the disk holding {part.cache_dir} is full") from None
        raise HubError(f"cannot write to {repo.folder} ({exc.strerror or exc})") from None
