"""The quantized copies of the weights on disk: where they live, what there is, removing them. Torch-free.

A copy is `<root>/<component>/<source id>/<qtype>/` (written by quantize.py, `manifest.json` last),
where the source id is the hub commit of the weights it was made from (or a fingerprint of a plain
folder). Copies are derived data, about 29 GB per DiT revision and qtype, rebuilt from the weights
on demand, so they live in the user cache folder, which backup tools skip. Versions before 0.2 kept
them in the user data folder; `root()` moves such a cache once (see `migrate_legacy`).
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import paths

log = logging.getLogger(__name__)

QTYPES = ("qint8", "qfloat8", "qint4")
MIGRATING_PREFIX = ".migrating-"
_migrated = False


@dataclass(frozen=True)
class QuantizedCopy:
    component: str  # dit | step_llm
    source_id: str  # the hub commit of the source weights (or a folder fingerprint)
    qtype: str
    path: Path
    size: int
    source_folder: str | None  # the weights folder it was made from (recorded since 0.2)

    def to_dict(self) -> dict[str, Any]:
        return {"component": self.component, "source_id": self.source_id, "qtype": self.qtype,
                "path": str(self.path), "size": self.size, "source_folder": self.source_folder}


def root() -> Path:
    """The quantized-weight cache folder, after moving an old one from the data folder (once per process)."""
    global _migrated
    if not _migrated:
        _migrated = True
        try:
            migrate_legacy(paths.legacy_quantized_cache_dir(), paths.quantized_cache_dir())
        except OSError as exc:  # what was not moved stays whole where it was; new copies go to the cache
            log.warning("could not move the quantized weights out of %s (%s); they stay there",
                        paths.legacy_quantized_cache_dir(), exc.strerror or exc)
    return paths.quantized_cache_dir()


def list_copies(folder: Path | None = None) -> list[QuantizedCopy]:
    """Every finished copy (one with a manifest), sorted by component, source and qtype."""
    base = Path(folder) if folder is not None else root()
    out = []
    for directory in sorted(base.glob("*/*/*")):
        if directory.name not in QTYPES or not (directory / "manifest.json").is_file():
            continue
        manifest = _read_manifest(directory)
        out.append(QuantizedCopy(directory.parent.parent.name, directory.parent.name, directory.name, directory,
                                 folder_size(directory), manifest.get("source_folder")))
    return out


def copies_of(commit: str, folder: Path | None = None) -> list[QuantizedCopy]:
    return [c for c in list_copies(folder) if c.source_id == commit]


def orphans(known_commits: set[str], folder: Path | None = None) -> list[QuantizedCopy]:
    """Copies whose source weights are gone: the recorded source folder no longer exists or, for a
    copy without that record, its source commit is not among `known_commits`. A copy made from a
    plain folder without a record (a fingerprint id) cannot be judged and is kept."""
    out = []
    for copy in list_copies(folder):
        if copy.source_folder:
            gone = not Path(copy.source_folder).is_dir()
        else:
            gone = _is_commit(copy.source_id) and copy.source_id not in known_commits
        if gone:
            out.append(copy)
    return out


def delete_copies(copies: list[QuantizedCopy]) -> int:
    """Remove the copies (and their source folder when it becomes empty); return the bytes freed."""
    freed = 0
    for copy in copies:
        freed += folder_size(copy.path)
        shutil.rmtree(copy.path, ignore_errors=True)
        for parent in (copy.path.parent, copy.path.parent.parent):
            try:
                parent.rmdir()  # only when empty
            except OSError:
                break
    return freed


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file() and not p.is_symlink())


# --- the one-time move out of the data folder ----------------------------------------------------
def migrate_legacy(old: Path, new: Path) -> bool:
    """Move a quantized cache from `old` to `new`: one rename on the same filesystem, else each copy is
    copied into a temporary folder, compared byte for byte, renamed into place, and only then removed
    from `old`. An interruption leaves every copy whole in one place or the other. True if it moved."""
    if not old.is_dir():
        return False
    from filelock import FileLock

    new.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(new.parent / ".quantized-migration.lock")):
        if not old.is_dir():
            return False  # another process finished it while we waited
        if not new.exists():
            try:
                os.rename(old, new)
                log.info("moved the quantized weights from %s to %s (a cache folder, which backups skip)", old, new)
                return True
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
        log.info("moving the quantized weights from %s to %s (copy by copy)", old, new)
        for copy in list_copies(old):
            _move_copy(copy.path, new / copy.path.relative_to(old))
        _remove_if_only_debris(old)
        return True


def _move_copy(source: Path, target: Path) -> None:
    if (target / "manifest.json").is_file():
        shutil.rmtree(source)  # already there (an earlier, interrupted migration): the old one is a duplicate
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        try:
            os.rename(source, target)  # same filesystem: instant, and atomic
            return
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
    tmp = target.parent / f"{MIGRATING_PREFIX}{target.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    for stale in target.parent.glob(f"{MIGRATING_PREFIX}{target.name}-*"):
        shutil.rmtree(stale, ignore_errors=True)  # a crashed earlier attempt: its source is still whole
    shutil.copytree(source, tmp)
    if not _same_files(source, tmp):
        shutil.rmtree(tmp, ignore_errors=True)
        raise OSError(errno.EIO, f"the copy of {source} in {tmp} does not match; the original is kept")
    if target.exists():
        shutil.rmtree(target)  # an unfinished copy (no manifest) is never a user's file
    os.replace(tmp, target)
    shutil.rmtree(source)


def _same_files(a: Path, b: Path) -> bool:
    names_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    names_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    return names_a == names_b and all(_digest(a / n) == _digest(b / n) for n in names_a)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def _remove_if_only_debris(old: Path) -> None:
    """Drop the old folder once no finished copy is left in it (half-built temporaries are debris)."""
    if not list_copies(old):
        shutil.rmtree(old, ignore_errors=True)


def _read_manifest(directory: Path) -> dict[str, Any]:
    try:
        data = json.loads((directory / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _is_commit(text: str) -> bool:
    return len(text) == 40 and all(c in "0123456789abcdef" for c in text)
