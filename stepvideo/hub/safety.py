"""What the hub sends is checked before it names anything on disk (torch-free, pure functions).

A rogue or broken hub (HF_ENDPOINT can point anywhere) controls the file paths, the commit id and
the hashes of a version, and each of them becomes part of a path in the cache: snapshots/<commit>/
<path>, blobs/<sha256 or oid>, trees/<commit>.json. So every such name is checked for its syntax
(a relative path of plain segments, 40-hex commits, hex hashes) and, where it is joined onto a
folder, the result is checked to stay inside that folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from stepvideo.errors import HubError

COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
GIT_OID_RE = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")  # sha1, or sha256 for sha256 git repos
MAX_PATH_CHARS = 1024
_SHOWN_CHARS = 120  # of a rejected value, in the one-line message


class UnsafeHubData(HubError):
    """The hub sent a path, commit or hash that could not be used safely as a name on disk."""


def shown(value: object) -> str:
    """A value as it may appear in a one-line message: repr (escapes newlines, NUL), truncated."""
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "…"


def path_problem(path: object) -> str | None:
    """Why `path` is not a safe relative repo path (None when it is)."""
    if not isinstance(path, str) or not path:
        return "is empty or not text"
    if len(path) > MAX_PATH_CHARS:
        return f"is longer than {MAX_PATH_CHARS} characters"
    if any(ord(c) < 0x20 or c == "\x7f" for c in path):
        return "contains a control character (NUL, newline, …)"
    if "\\" in path:
        return "contains a backslash"
    if path.startswith("/"):
        return "is absolute"
    segments = path.split("/")
    if any(s == "" for s in segments):
        return "has an empty segment (// or a trailing /)"
    if any(s in (".", "..") for s in segments):
        return "contains a . or .. segment"
    return None


def check_repo_path(path: object, what: str = "file path") -> str:
    """`path` if it is a plain relative path (a/b/c), else UnsafeHubData naming it."""
    problem = path_problem(path)
    if problem:
        raise UnsafeHubData(f"{what} {shown(path)} {problem}")
    return path  # type: ignore[return-value]


def check_commit(commit: object) -> str:
    if not isinstance(commit, str) or not COMMIT_RE.match(commit):
        raise UnsafeHubData(f"commit {shown(commit)} is not 40 lowercase hex digits")
    return commit


def check_sha256(value: object, path: str) -> str:
    if not isinstance(value, str) or not SHA256_RE.match(value):
        raise UnsafeHubData(f"sha256 {shown(value)} of {shown(path)} is not 64 lowercase hex digits")
    return value


def check_oid(value: object, path: str) -> str:
    if not isinstance(value, str) or not GIT_OID_RE.match(value):
        raise UnsafeHubData(f"git oid {shown(value)} of {shown(path)} is not 40 (or 64) lowercase hex digits")
    return value


def check_size(value: object, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UnsafeHubData(f"size {shown(value)} of {shown(path)} is not a whole number of bytes")
    return value


def is_inside(child: Path, folder: Path) -> bool:
    """Whether `child` (its symlinks resolved) lies in `folder` (its symlinks resolved)."""
    try:
        Path(os.path.realpath(child)).relative_to(os.path.realpath(folder))
    except ValueError:
        return False
    return True


def join_inside(folder: Path, relpath: str, what: str = "file path") -> Path:
    """folder/relpath, refusing a relpath that is not plain or whose parent folder (followed through
    any symlinks already on disk) leaves `folder`. The last segment itself is not followed: snapshot
    entries are symlinks into blobs/ by design, and it is the entry we create or replace."""
    check_repo_path(relpath, what)
    target = Path(folder) / relpath
    if not is_inside(target.parent, folder):
        raise UnsafeHubData(f"{what} {shown(relpath)} leads outside {folder}")
    return target


def check_name(name: object, what: str) -> str:
    """A single path segment (a blob, commit or ref name part), never a separator or . / .."""
    problem = path_problem(name)
    if problem is None and "/" in name:  # type: ignore[operator]
        problem = "contains a /"
    if problem:
        raise UnsafeHubData(f"{what} {shown(name)} {problem}")
    return name  # type: ignore[return-value]
