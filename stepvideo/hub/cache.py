"""The Hugging Face cache layout on disk, read and written without any network (torch-free).

Layout (identical to huggingface_hub's, so other tools' downloads are reused and ours are theirs):
`<cache>/models--org--name/{blobs/<etag>, snapshots/<sha>/<path> -> ../../blobs/<etag>, refs/<name>}`
and locks in `<cache>/.locks/models--org--name/<etag>.lock`. huggingface_hub's private
`trees/<sha>.json` is theirs: we only read it once, to migrate what older versions of this app wrote.
Our own additions stay out of the way of huggingface_hub: a resumable partial is
`blobs/<etag>.incomplete` (a stable name, so a later run continues it; huggingface_hub itself uses
`<etag>.<uuid8>.incomplete`), and our bookkeeping (manifests, file listings, verification records)
lives in `models--org--name/.stepvideo/`.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stepvideo.errors import HubError
from stepvideo.hub.safety import (
    COMMIT_RE,
    UnsafeHubData,
    check_commit,
    check_name,
    join_inside,
)

log = logging.getLogger(__name__)

MODELS_DIR_ENV = "STEPVIDEO_MODELS_DIR"
REPO_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,95})?$")
PARTIAL_SUFFIX = ".incomplete"


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where weights live: the argument, else $STEPVIDEO_MODELS_DIR, else the standard HF hub cache.

    Read at call time (not at import, unlike huggingface_hub.constants) so settings changes apply.
    """
    if cache_dir:
        return Path(cache_dir).expanduser()
    for var in (MODELS_DIR_ENV, "HF_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "huggingface" / "hub"


def is_commit(revision: str | None) -> bool:
    return bool(revision) and COMMIT_RE.match(revision) is not None


def check_repo_id(repo_id: str) -> str:
    if not isinstance(repo_id, str) or not REPO_ID_RE.match(repo_id) or ".." in repo_id:
        raise HubError(f"{repo_id!r} is not a model repo id; write it as owner/name (e.g. stepfun-ai/stepvideo-t2v)")
    return repo_id


def repo_folder_name(repo_id: str) -> str:
    return "models--" + repo_id.replace("/", "--")


def repo_id_from_folder(name: str) -> str | None:
    if not name.startswith("models--"):
        return None
    return name[len("models--"):].replace("--", "/")


@dataclass(frozen=True)
class RepoCache:
    """Paths of one repo inside a cache root. Pure path arithmetic plus small atomic reads/writes."""

    root: Path
    repo_id: str

    @property
    def folder(self) -> Path:
        return self.root / repo_folder_name(self.repo_id)

    @property
    def blobs(self) -> Path:
        return self.folder / "blobs"

    @property
    def snapshots(self) -> Path:
        return self.folder / "snapshots"

    @property
    def refs(self) -> Path:
        return self.folder / "refs"

    @property
    def state_dir(self) -> Path:
        return self.folder / ".stepvideo"

    # Names joined onto folders here come from the hub (etags, commits): each must be one plain segment.
    def blob(self, etag: str) -> Path:
        return self.blobs / check_name(etag, "blob name")

    def partial(self, etag: str) -> Path:
        return self.blobs / (check_name(etag, "blob name") + PARTIAL_SUFFIX)

    def lock(self, etag: str) -> Path:
        return self.root / ".locks" / repo_folder_name(self.repo_id) / f"{check_name(etag, 'blob name')}.lock"

    def snapshot(self, commit: str) -> Path:
        return self.snapshots / check_commit(commit)

    def tree_file(self, commit: str) -> Path:
        """huggingface_hub's listing of the commit (theirs; older versions of this app wrote it)."""
        return self.folder / "trees" / f"{check_commit(commit)}.json"

    def listing_file(self, commit: str) -> Path:
        """Our listing of the commit's published files (see listing.py)."""
        return self.state_dir / "listings" / f"{check_commit(commit)}.json"

    def manifest_file(self, commit: str) -> Path:
        return self.state_dir / "versions" / f"{check_commit(commit)}.json"

    def ref_file(self, name: str) -> Path:
        """refs/<name>; a ref name may have folders (refs/pr/1) but must stay inside refs/."""
        return join_inside(self.refs, name, "revision")

    @property
    def verified_file(self) -> Path:
        return self.state_dir / "verified.json"

    # --- refs ------------------------------------------------------------------------------
    def read_ref(self, name: str) -> str | None:
        try:
            value = self.ref_file(name).read_text().strip()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError, UnsafeHubData):
            return None
        return value if is_commit(value) else None

    def write_ref(self, name: str, commit: str) -> None:
        write_atomic(self.ref_file(name), check_commit(commit).encode())

    def all_refs(self) -> dict[str, str]:
        """ref name (e.g. main, v1.0, refs/pr/1) → commit."""
        out: dict[str, str] = {}
        if not self.refs.is_dir():
            return out
        for path in sorted(self.refs.rglob("*")):
            if path.is_file():
                commit = self.read_ref(path.relative_to(self.refs).as_posix())
                if commit:
                    out[path.relative_to(self.refs).as_posix()] = commit
        return out

    def commits(self) -> list[str]:
        if not self.snapshots.is_dir():
            return []
        return sorted(p.name for p in self.snapshots.iterdir() if p.is_dir() and is_commit(p.name))

    def resolve_local(self, revision: str | None) -> str | None:
        """A revision → a commit present in the cache, without network (None if not cached)."""
        revision = revision or "main"
        if is_commit(revision):
            return revision if self.snapshot(revision).is_dir() else None
        commit = self.read_ref(revision)
        return commit if commit and self.snapshot(commit).is_dir() else None

    # --- our bookkeeping ---------------------------------------------------------------------
    def read_manifest(self, commit: str) -> dict[str, Any] | None:
        return read_json(self.manifest_file(commit))

    def write_manifest(self, commit: str, manifest: dict[str, Any]) -> None:
        write_atomic(self.manifest_file(commit), json.dumps(manifest, indent=1, sort_keys=True).encode())

    def read_verified(self) -> dict[str, dict[str, Any]]:
        data = read_json(self.verified_file)
        return data if isinstance(data, dict) else {}

    def write_verified(self, records: dict[str, dict[str, Any]]) -> None:
        write_atomic(self.verified_file, json.dumps(records, indent=1, sort_keys=True).encode())


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def write_atomic(path: Path, data: bytes) -> None:
    """tmp + fsync + rename: a crash leaves the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# What os.symlink raises on filesystems without symlinks (exFAT, FAT, some NTFS mounts and network shares).
NO_SYMLINK_ERRNOS = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EINVAL, errno.EACCES})


def link_snapshot_file(repo: RepoCache, commit: str, path: str, etag: str) -> Path:
    """snapshots/<commit>/<path> → ../../blobs/<etag> as a relative symlink (replaced atomically).

    On a filesystem without symlinks the blob itself moves into the snapshot (what huggingface_hub
    does): the file is then a plain file, which callers see with `is_symlink()`; versions no longer
    share such files, and a later download of another version fetches them again.

    `path` and `etag` come from the hub: the link must land inside the snapshot folder (no .., no
    absolute path, no symlinked folder leading out) and point at a blob named by one plain segment.
    """
    snapshot = repo.snapshot(commit)
    pointer = join_inside(snapshot, path)
    blob = repo.blob(etag)
    pointer.parent.mkdir(parents=True, exist_ok=True)
    target = os.path.relpath(blob, pointer.parent)
    if pointer.is_symlink() and os.readlink(pointer) == target:
        return pointer
    if not blob.exists() and pointer.is_file() and not pointer.is_symlink():
        return pointer  # moved here earlier, on a filesystem without symlinks
    tmp = pointer.with_name(f".{pointer.name}.{os.getpid()}.link")
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    try:
        os.symlink(target, tmp)
    except OSError as exc:
        if exc.errno not in NO_SYMLINK_ERRNOS:
            raise
        os.replace(blob, pointer)  # same filesystem (both in the repo folder): atomic, no second copy
        return pointer
    os.replace(tmp, pointer)
    return pointer


def snapshot_file_in_place(repo: RepoCache, commit: str, path: str, size: int) -> bool:
    """True when the snapshot holds the file itself (moved there on a filesystem without symlinks)
    with the expected size: it counts as downloaded although blobs/ no longer has it."""
    try:
        pointer = join_inside(repo.snapshot(commit), path)
    except UnsafeHubData:
        return False
    return not pointer.is_symlink() and pointer.is_file() and pointer.stat().st_size == size


def snapshot_blob(pointer: Path) -> Path | None:
    """The blob a snapshot entry points to (its first symlink hop), or the file itself."""
    if pointer.is_symlink():
        return Path(os.path.abspath(pointer.parent / os.readlink(pointer)))
    return pointer if pointer.exists() else None
