"""Mid-denoise checkpoints: latents + RNG state + step + meta, one safetensors file per job.

Writes are atomic (temporary file, fsync, os.replace, fsync of the folder): a kill at any moment
leaves either the previous checkpoint or the new one, never a torn file. The module imports torch
only inside save/load, so the torch-free queue can clear and clean checkpoint files.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_SUFFIX = ".safetensors"
_NAME = re.compile(r"^job-(?P<id>[A-Za-z0-9_-]+)\.safetensors$")
_TMP = re.compile(r"^\.job-(?P<id>[A-Za-z0-9_-]+)\.safetensors\.\d+\.tmp$")
_RNG_PREFIX = "rng."


@dataclass
class Checkpoint:
    step: int  # denoising steps already done; resume runs step `step` next
    latents: torch.Tensor
    rng_state: torch.Tensor | dict[str, torch.Tensor] | None
    meta: dict[str, Any] = field(default_factory=dict)


class CheckpointStore:
    """The checkpoint of one job: `<directory>/job-<job_id>.safetensors`."""

    def __init__(self, directory: str | os.PathLike[str], job_id: int | str) -> None:
        self.directory = Path(directory)
        self.job_id = str(job_id)
        if not re.fullmatch(r"[A-Za-z0-9_-]+", self.job_id):
            raise ValueError(f"job id {job_id!r} may hold only letters, digits, '-' and '_'")
        self.path = self.directory / f"job-{self.job_id}{_SUFFIX}"

    def exists(self) -> bool:
        return self.path.is_file()

    def save(
        self,
        step: int,
        latents: torch.Tensor,
        rng_state: torch.Tensor | dict[str, torch.Tensor] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Path:
        from safetensors.torch import save_file

        tensors = {"latents": latents.detach().to("cpu").contiguous()}
        if isinstance(rng_state, dict):
            for name, state in rng_state.items():
                tensors[_RNG_PREFIX + name] = state.detach().to("cpu").contiguous()
        elif rng_state is not None:
            tensors["rng_state"] = rng_state.detach().to("cpu").contiguous()
        header = {
            "format_version": str(FORMAT_VERSION),
            "step": str(int(step)),
            "meta": json.dumps(meta or {}, sort_keys=True),
        }
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / f".job-{self.job_id}{_SUFFIX}.{os.getpid()}.tmp"
        try:
            save_file(tensors, str(tmp), metadata=header)
            _fsync_file(tmp)
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(self.directory)
        log.debug("checkpoint of job %s at step %d: %s", self.job_id, step, self.path)
        return self.path

    def load(self) -> Checkpoint | None:
        """The saved checkpoint, or None when there is none or it cannot be read (then it is removed:
        starting over gives the same video, a broken file must not block the job)."""
        if not self.path.is_file():
            return None
        from safetensors import safe_open

        try:
            with safe_open(str(self.path), framework="pt") as f:
                header = f.metadata() or {}
                if header.get("format_version") != str(FORMAT_VERSION):
                    raise ValueError(f"format version {header.get('format_version')!r}")
                tensors = {name: f.get_tensor(name) for name in f.keys()}
            step = int(header["step"])
            meta = json.loads(header.get("meta", "{}"))
            latents = tensors.pop("latents")
        except Exception as exc:  # a torn or foreign file: say so, drop it, start the job over
            log.warning("checkpoint %s is unreadable (%s); the job starts over", self.path, exc)
            self.clear()
            return None
        rng: torch.Tensor | dict[str, torch.Tensor] | None
        if "rng_state" in tensors:
            rng = tensors["rng_state"]
        else:
            rng = {k[len(_RNG_PREFIX):]: v for k, v in tensors.items() if k.startswith(_RNG_PREFIX)} or None
        return Checkpoint(step=step, latents=latents, rng_state=rng, meta=meta)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
        for tmp in self.directory.glob(f".job-{self.job_id}{_SUFFIX}.*.tmp"):
            tmp.unlink(missing_ok=True)


def clean_orphans(directory: str | os.PathLike[str], live_job_ids: set[int | str] | list[int | str]) -> int:
    """Remove checkpoints (and leftover temporary files) of jobs not in `live_job_ids`; return how many."""
    root = Path(directory)
    if not root.is_dir():
        return 0
    live = {str(j) for j in live_job_ids}
    removed = 0
    for entry in root.iterdir():
        match = _NAME.match(entry.name) or _TMP.match(entry.name)
        if match is None:
            continue  # not ours: never delete a file we did not write
        is_tmp = entry.name.endswith(".tmp")
        if match.group("id") in live and not (is_tmp and _tmp_is_stale(entry)):
            continue
        entry.unlink(missing_ok=True)
        removed += 1
    if removed:
        log.info("removed %d orphaned checkpoint file(s) from %s", removed, root)
    return removed


def _tmp_is_stale(path: Path) -> bool:
    """A temporary file whose writer (pid in its name) is gone."""
    try:
        pid = int(path.name.rsplit(".", 2)[-2])
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return True
    except PermissionError:
        return False
    return False


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
