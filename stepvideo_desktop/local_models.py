"""Model folders the user already has on disk (huggingface-cli --local-dir, DiffSynth, ComfyUI setups).

Qt-free and torch-free: the checks are the engine's own file lists (`stepvideo.hub.resolve_model_roots`,
`stepvideo.engine.layout`), plus a cheap truncation check that compares the shards' sizes with the index's
`metadata.total_size` (the tensor bytes; each shard adds only its small header), so a half-copied
100 GB folder is refused in milliseconds instead of failing minutes into a job. The exact per-file
header check lives in stepvideo.engine.weights, which imports torch and so cannot run in the UI process.

Nothing here writes to, moves or deletes the user's folder.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from stepvideo.engine import layout
from stepvideo.errors import StepVideoError, WeightsMismatch, WeightsNotFound


@dataclass(frozen=True)
class LocalModel:
    path: str  # absolute, as stored in the settings and sent as the request's `model`
    size_bytes: int | None  # on disk (symlinked files counted at their target's size); None if unreadable
    components: str  # folder the text encoders and VAE come from (== path for a complete folder)
    problem: str = ""  # one line when the folder cannot be used now (moved, deleted, incomplete)

    @property
    def usable(self) -> bool:
        return not self.problem


def normalize(path: str | os.PathLike) -> str:
    return str(Path(path).expanduser().resolve())


def check_folder(path: str | os.PathLike, cache_dir: str | None = None) -> LocalModel:
    """Validate a model folder; raise a StepVideoError with one line naming the first problem."""
    root = Path(normalize(path))
    if not root.is_dir():
        raise WeightsNotFound(f"the folder {root} does not exist")
    # A folder with step_llm/ is a whole model; one without is a transformer only (like the turbo repo),
    # whose encoders and VAE the engine takes from the base model in the cache.
    whole = (root / "step_llm").is_dir()
    required = (*layout.TRANSFORMER_FILES, *layout.ENCODER_FILES, *layout.VAE_FILES) if whole else layout.TRANSFORMER_FILES
    missing = layout.missing_files(root, required)
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise WeightsNotFound(f"{missing[0]} is missing{more} in {root}")
    from stepvideo import hub  # the engine's own resolution, which also finds turbo's base components

    roots = hub.resolve_model_roots(str(root), None, cache_dir)
    check_shards(roots.transformer, layout.DIT_INDEX)
    check_shards(roots.components, layout.LLM_INDEX)
    return LocalModel(path=str(root), size_bytes=folder_size(root), components=str(roots.components))


def describe(path: str, cache_dir: str | None = None) -> LocalModel:
    """A listed folder as it is now: usable, or with the one-line reason it is not."""
    try:
        return check_folder(path, cache_dir)
    except StepVideoError as exc:
        size = folder_size(Path(path)) if Path(path).is_dir() else None
        return LocalModel(path=path, size_bytes=size, components="", problem=str(exc))


def check_shards(root: Path, index_name: str) -> None:
    """Every shard the index names exists, and together they hold at least the index's tensor bytes."""
    index_path = root / index_name
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
        shards = sorted(set(index["weight_map"].values()))
        total = int(index.get("metadata", {}).get("total_size", 0))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise WeightsMismatch(f"{index_path} cannot be read as a safetensors index ({exc}); copy it again") from None
    on_disk = 0
    for name in shards:
        shard = index_path.parent / name
        if not shard.is_file():
            raise WeightsNotFound(f"{shard.relative_to(root)} is missing in {root} (named by {index_name})")
        on_disk += shard.stat().st_size
    if on_disk < total:
        raise WeightsMismatch(f"the shards of {index_name} in {root} hold {on_disk} bytes but the index "
                              f"promises {total}: a file is truncated; copy or download it again")


def folder_size(root: Path) -> int | None:
    """Bytes of the files under root; file symlinks (HF snapshots) count at their target's size,
    symlinked folders are not followed (no loops, no double counting)."""
    total = 0
    try:
        stack = [Path(root)]
        while stack:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
                    elif entry.is_file(follow_symlinks=True):
                        total += entry.stat(follow_symlinks=True).st_size
    except OSError:
        return None
    return total
