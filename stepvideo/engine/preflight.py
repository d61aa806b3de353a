"""Check a model's files before anything loads: a missing or truncated file should fail in a second,
not after twenty minutes of denoising."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from stepvideo.engine import layout
from stepvideo.engine.loading import require_files
from stepvideo.engine.model_roots import ModelRoots
from stepvideo.engine.weights import read_safetensors_header, shard_map
from stepvideo.errors import InvalidRequest, OutputError
from stepvideo.memory.planner import checkpoint_file_bytes, video_file_bytes


def _shards(root: Path, index: str) -> list[Path]:
    index_path = root / index
    return sorted(set(shard_map(index_path.parent, index_path.name).values()))


def check_model_files(roots: ModelRoots) -> list[Path]:
    """Raise WeightsNotFound naming a missing file, or WeightsMismatch naming a truncated one; return
    the weight files."""
    for root, files, what in (
        (roots.transformer, layout.TRANSFORMER_FILES, "the transformer"),
        (roots.base, layout.ENCODER_FILES + layout.VAE_FILES, "the text encoders and VAE"),
    ):
        require_files(root, files, what)
    files = _shards(roots.transformer, layout.DIT_INDEX) + _shards(roots.base, layout.LLM_INDEX)
    files.append(roots.base / layout.VAE_WEIGHTS)
    for path in files:
        read_safetensors_header(path)  # raises WeightsMismatch when truncated
    return files


def check_output_folder(video: Path) -> None:
    """The video's folder must exist (or be creatable) and be writable before any work starts."""
    folder = Path(video).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidRequest(f"cannot create the output folder {folder} ({exc.strerror}); choose another --output") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InvalidRequest(f"the output folder {folder} is not writable; choose another --output")


def check_free_space(video: Path, checkpoint_dir: Path | None, height: int, width: int, frames: int) -> None:
    """Refuse to start when the disk cannot hold the planner's estimate of the video (and of the
    checkpoint, when checkpoints are written): finding out after the denoise wastes all of it."""
    needs: dict[tuple[int, str], int] = {}  # (device, folder shown) -> bytes
    for folder, size in ((Path(video).parent, video_file_bytes(height, width, frames)),
                         (checkpoint_dir, checkpoint_file_bytes(height, width, frames))):
        if folder is None:
            continue
        existing = _existing_ancestor(Path(folder))
        device = existing.stat().st_dev
        key = next((k for k in needs if k[0] == device), (device, str(existing)))
        needs[key] = needs.get(key, 0) + size
    for (_device, folder), size in needs.items():
        free = shutil.disk_usage(folder).free
        if free < size:
            raise OutputError(
                f"not enough free disk space in {folder}: this video needs up to {_size(size)} "
                f"(the mp4 while it is written, and its checkpoint), {_size(free)} is free; "
                "free some space or choose another --output"
            )


def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _size(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"
