"""Check a model's files before anything loads: a missing or truncated file should fail in a second,
not after twenty minutes of denoising."""

from __future__ import annotations

import json
from pathlib import Path

from . import layout
from .errors import WeightsNotFound
from .model_roots import ModelRoots
from .weights import read_safetensors_header


def _shards(root: Path, index: str) -> list[Path]:
    index_path = root / index
    weight_map = json.loads(index_path.read_text(encoding="utf-8"))["weight_map"]
    return [index_path.parent / name for name in sorted(set(weight_map.values()))]


def check_model_files(roots: ModelRoots) -> None:
    """Raise WeightsNotFound naming a missing file, or WeightsMismatch naming a truncated one."""
    for root, files, what in (
        (roots.transformer, layout.TRANSFORMER_FILES, "the transformer"),
        (roots.base, layout.ENCODER_FILES + layout.VAE_FILES, "the text encoders and VAE"),
    ):
        missing = layout.missing_files(root, files)
        if missing:
            raise WeightsNotFound(f"{what} at {root} is incomplete: missing {', '.join(missing[:3])}")
    files = _shards(roots.transformer, layout.DIT_INDEX) + _shards(roots.base, layout.LLM_INDEX)
    files.append(roots.base / layout.VAE_WEIGHTS)
    for path in files:
        if not path.is_file():
            raise WeightsNotFound(f"missing weight shard: {path}")
        read_safetensors_header(path)  # raises WeightsMismatch when truncated
