"""Sampling presets, published sizes and the official prompt suffixes (facts §5). Torch-free."""

from __future__ import annotations

from dataclasses import dataclass

BASE_REPO = "stepfun-ai/stepvideo-t2v"
TURBO_REPO = "stepfun-ai/stepvideo-t2v-turbo"

# Appended directly to the user's prompt by the official CLI (no separator).
OFFICIAL_POSITIVE_SUFFIX = (
    "超高清、HDR 视频、环境光、杜比全景声、画面稳定、流畅动作、逼真的细节、专业级构图、超现实主义、自然、生动、超细节、清晰。"
)
# The whole negative prompt of the official CLI.
OFFICIAL_NEGATIVE_PROMPT = (
    "画面暗、低分辨率、不良手、文本、缺少手指、多余的手指、裁剪、低质量、颗粒状、签名、水印、用户名、模糊。"
)

FPS = 25
FRAMES_PER_CHUNK = 17
LATENTS_PER_CHUNK = 3
SPATIAL_FACTOR = 16
LATENT_CHANNELS = 64
LLM_MAX_TOKENS = 320
CLIP_MAX_TOKENS = 77
DEFAULT_SEED = 1234


@dataclass(frozen=True)
class Preset:
    name: str
    steps: int
    cfg: float
    shift: float
    transformer_repo: str  # where the DiT comes from; encoders and VAE always come from BASE_REPO


PRESETS: dict[str, Preset] = {
    "standard": Preset("standard", steps=50, cfg=9.0, shift=13.0, transformer_repo=BASE_REPO),
    "turbo": Preset("turbo", steps=15, cfg=5.0, shift=17.0, transformer_repo=TURBO_REPO),
}

# (height, width) pairs the UI offers; any multiple of 16 is accepted.
SIZES: dict[str, tuple[int, int]] = {
    "landscape": (544, 992),
    "portrait": (992, 544),
    "square": (768, 768),
}
DEFAULT_SIZE = SIZES["landscape"]
DEFAULT_FRAMES = 204


def latent_shape(height: int, width: int, frames: int) -> tuple[int, int, int, int]:
    """(latent frames, channels, latent height, latent width) for a video of this size."""
    return (
        frames // FRAMES_PER_CHUNK * LATENTS_PER_CHUNK,
        LATENT_CHANNELS,
        height // SPATIAL_FACTOR,
        width // SPATIAL_FACTOR,
    )

