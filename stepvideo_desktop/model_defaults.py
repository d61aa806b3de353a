"""What Create offers for the active model: its name, and the size, frames and steps to start from.

The published 30B model starts at its published defaults (992×544, 204 frames, the preset's steps).
A small model (the tiny test model made by `stepvideo make-tiny-model`, or any transformer under a
billion parameters) starts at a small video that renders in seconds on a CPU, so nobody is offered
992×544×204 at 50 steps for a model that is only there to try the app. The size is read from the
model's own transformer/config.json. Qt-free, so it is tested on its own.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

from stepvideo.engine import layout
from stepvideo.engine.model_kind import is_image_to_video
from stepvideo.errors import ConfigError
from stepvideo.presets import BASE_REPO, DEFAULT_FRAMES, SIZES, TI2V_REPO, TURBO_REPO

log = logging.getLogger(__name__)

SMALL_MODEL_PARAMS = 1_000_000_000  # the published DiT is ~30 B; test models are a few million
SMALL_DEFAULTS = {"height": 144, "width": 256, "frames": 17, "steps": 4}  # seconds on a CPU
KNOWN_NAMES = {BASE_REPO: "Step-Video-T2V", TURBO_REPO: "Step-Video-T2V Turbo", TI2V_REPO: "Step-Video-TI2V"}


@dataclass(frozen=True)
class ModelDefaults:
    name: str  # what Create shows: "Step-Video-T2V", or the folder's name
    source: str  # the repo id or the folder (tooltip)
    height: int
    width: int
    frames: int
    steps: int | None  # None: the preset's
    installed: bool = True
    small: bool = False
    image_to_video: bool = False  # a TI2V transformer: its jobs need an image


def dit_parameters(config: dict) -> int | None:
    """A DiT's size from its config: ~12·hidden² per block (attention 4·h², MLP 8·h²). None when unreadable."""
    try:
        hidden = int(config["num_attention_heads"]) * int(config["attention_head_dim"])
        return 12 * int(config["num_layers"]) * hidden * hidden
    except (KeyError, TypeError, ValueError):
        return None


def read_dit_config(transformer_root: Path) -> dict | None:
    try:
        return json.loads((transformer_root / layout.DIT_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.info("no transformer config in %s: %s", transformer_root, exc)
        return None


def name_of(model: str) -> str:
    return KNOWN_NAMES.get(model) or Path(model).name or model


def for_model(model: str, transformer_root: Path | None) -> ModelDefaults:
    """Defaults for `model` (repo id or folder); `transformer_root` None means it is not installed."""
    height, width = SIZES["landscape"]
    full = ModelDefaults(name_of(model), model, height, width, DEFAULT_FRAMES, None, installed=transformer_root is not None,
                         image_to_video=model == TI2V_REPO)
    if transformer_root is None:
        return full
    try:
        ti2v = is_image_to_video(transformer_root)
    except ConfigError:
        ti2v = full.image_to_video
    full = replace(full, image_to_video=ti2v)
    config = read_dit_config(transformer_root)
    params = dit_parameters(config) if config else None
    if params is None or params >= SMALL_MODEL_PARAMS:
        return full
    return ModelDefaults(full.name, model, SMALL_DEFAULTS["height"], SMALL_DEFAULTS["width"], SMALL_DEFAULTS["frames"],
                         SMALL_DEFAULTS["steps"], small=True, image_to_video=ti2v)
