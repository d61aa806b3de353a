"""Is a model text-to-video or image-to-video? Read from its transformer config, torch-free.

The request's mode (an image or not) must match the transformer: a TI2V transformer has 128 input
channels and cannot run without an image, and a T2V one has no place for it. Checked before anything
loads, so a mismatch is one line, not a shape error deep in the DiT.
"""

from __future__ import annotations

import json
from pathlib import Path

from stepvideo.api import GenerationRequest
from stepvideo.engine import layout
from stepvideo.errors import ConfigError, InvalidRequest
from stepvideo.presets import BASE_REPO, TI2V_REPO


def is_image_to_video(transformer_root: Path) -> bool:
    """True when transformer/config.json sets use_additional_conditions (the TI2V meaning)."""
    path = Path(transformer_root) / layout.DIT_CONFIG
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    return isinstance(config, dict) and config.get("use_additional_conditions") is True


def check_mode(request: GenerationRequest, transformer_root: Path, model_name: str) -> None:
    """InvalidRequest when the request's mode and the transformer's kind differ."""
    ti2v = is_image_to_video(transformer_root)
    if request.is_image_to_video and not ti2v:
        raise InvalidRequest(f"--image needs an image-to-video model such as {TI2V_REPO}; "
                             f"{model_name} is text-to-video")
    if ti2v and not request.is_image_to_video:
        raise InvalidRequest(f"{model_name} is an image-to-video model; give --image PATH, or use a "
                             f"text-to-video model such as {BASE_REPO}")
