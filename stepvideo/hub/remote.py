"""Hub metadata over HTTP through huggingface_hub's HfApi: revision → commit, file tree, refs.

huggingface_hub is imported lazily (it reads HF_* variables at import and costs startup time in the
UI); the endpoint is $HF_ENDPOINT read per call, so settings changes and tests apply without restarts.
Every failure becomes one HubError subclass with a line a user can act on.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from stepvideo.errors import HubError
from stepvideo.hub.safety import (
    UnsafeHubData,
    check_commit,
    check_oid,
    check_repo_path,
    check_sha256,
    check_size,
    shown,
)

DEFAULT_ENDPOINT = "https://huggingface.co"
# huggingface_hub reads this once, at its import (which happens lazily, below this module).
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


class RepoNotFound(HubError):
    """The hub has no such repo (or it is private and no token allows it)."""


class RevisionNotFound(HubError):
    """The repo has no such branch, tag or commit."""


class HubUnreachable(HubError):
    """No answer from the endpoint (network down, wrong HF_ENDPOINT, offline mode)."""


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def is_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class RemoteFile:
    """One file of a commit as the hub publishes it."""

    path: str
    size: int
    oid: str  # git blob sha1 (for LFS files: of the pointer)
    sha256: str | None  # the LFS object id; None for plain git files

    def __post_init__(self) -> None:
        # Every field becomes part of a path in the cache (snapshots/<commit>/<path>, blobs/<etag>),
        # and all of them come from the server: refuse anything that is not plainly a path or a hash.
        check_repo_path(self.path)
        check_size(self.size, self.path)
        check_oid(self.oid, self.path)
        if self.sha256 is not None:
            check_sha256(self.sha256, self.path)

    @property
    def etag(self) -> str:
        """The blob name in the cache (what huggingface_hub uses too)."""
        return self.sha256 or self.oid


@dataclass(frozen=True)
class RemoteVersion:
    repo_id: str
    revision: str  # as asked (branch, tag or commit)
    commit: str
    files: tuple[RemoteFile, ...]


def _api():
    from huggingface_hub import HfApi

    return HfApi(endpoint=endpoint(), library_name="stepvideo")


@contextlib.contextmanager
def hub_errors(repo_id: str, revision: str | None = None) -> Iterator[None]:
    """Turn huggingface_hub / httpx2 exceptions into one-line HubErrors."""
    if is_offline():
        raise HubUnreachable(f"offline mode (HF_HUB_OFFLINE=1): cannot reach the hub for {repo_id}; unset it to download")
    import httpx2
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        yield
    except GatedRepoError:
        raise HubError(f"{repo_id} is gated: accept its terms on the hub and log in with `hf auth login`") from None
    except RepositoryNotFoundError:
        raise RepoNotFound(
            f"model {repo_id} not found on {endpoint()}; check the name (private repos need `hf auth login`)"
        ) from None
    except RevisionNotFoundError:
        raise RevisionNotFound(
            f"revision {revision} not found in {repo_id}; give a branch, tag or commit (see: stepvideo models info {repo_id})"
        ) from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise HubError(f"the hub at {endpoint()} answered HTTP {status} for {repo_id}; try again later") from None
    except httpx2.TransportError as exc:
        raise HubUnreachable(
            f"cannot reach the model hub at {endpoint()} ({exc or type(exc).__name__}); check the network or "
            "HF_ENDPOINT (HF_HUB_OFFLINE=1 uses downloaded models only)"
        ) from None


def fetch_version(repo_id: str, revision: str | None = None) -> RemoteVersion:
    """Resolve a branch/tag/commit to its commit and list the commit's files (2 requests + paging)."""
    from huggingface_hub.hf_api import RepoFile

    revision = revision or "main"
    # A branch or tag name becomes refs/<name> in the cache; git's own rules already forbid .. and backslashes.
    try:
        check_repo_path(revision, "revision")
    except UnsafeHubData as exc:
        raise UnsafeHubData(f"{exc}; give a branch, tag or commit") from None
    with hub_errors(repo_id, revision):
        api = _api()
        commit = api.model_info(repo_id, revision=revision).sha
        if not commit:
            raise HubError(f"the hub at {endpoint()} gave no commit for {repo_id}@{revision}")
        try:
            check_commit(commit)
            files = []
            for item in api.list_repo_tree(repo_id, revision=commit, recursive=True):
                if isinstance(item, RepoFile):
                    sha256 = item.lfs.sha256 if item.lfs else None
                    files.append(RemoteFile(item.path, item.size, item.blob_id, sha256))
        except UnsafeHubData as exc:
            raise UnsafeHubData(
                f"refusing {repo_id}@{revision} from the hub at {endpoint()}: {exc} (nothing was written)"
            ) from None
    paths = [f.path for f in files]
    if len(set(paths)) != len(paths):
        dup = next(p for p in paths if paths.count(p) > 1)
        raise UnsafeHubData(f"refusing {repo_id}@{revision} from the hub at {endpoint()}: file path {shown(dup)} is"
                            " listed twice (nothing was written)")
    return RemoteVersion(repo_id, revision, commit, tuple(sorted(files, key=lambda f: f.path)))


def fetch_refs(repo_id: str) -> dict[str, dict[str, str]]:
    """{"branches": {name: commit}, "tags": {name: commit}}."""
    with hub_errors(repo_id):
        refs = _api().list_repo_refs(repo_id)
    return {
        "branches": {r.name: r.target_commit for r in refs.branches},
        "tags": {r.name: r.target_commit for r in refs.tags},
    }


def fetch_commits(repo_id: str, revision: str | None = None, limit: int = 10) -> list[dict[str, str]]:
    with hub_errors(repo_id, revision):
        commits = _api().list_repo_commits(repo_id, revision=revision or "main")
    return [{"commit": c.commit_id, "title": c.title, "date": c.created_at.isoformat()} for c in commits[:limit]]


def model_info(model: str, revision: str | None = None) -> dict[str, Any]:
    """What the hub offers for a model: commit of the revision, branches, tags, recent commits, files."""
    from stepvideo.hub.cache import check_repo_id
    from stepvideo.hub.resolve import canonical_model

    repo_id = check_repo_id(canonical_model(model))
    version = fetch_version(repo_id, revision)
    return {
        "repo": repo_id,
        "revision": version.revision,
        "commit": version.commit,
        "refs": fetch_refs(repo_id),
        "commits": fetch_commits(repo_id, version.commit),
        "files": [{"path": f.path, "size": f.size, "lfs": bool(f.sha256)} for f in version.files],
        "size": sum(f.size for f in version.files),
    }
