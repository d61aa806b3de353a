"""Sampling presets, published sizes and the official prompt suffixes (facts §5). Torch-free."""

from __future__ import annotations

from dataclasses import dataclass

BASE_REPO = "stepfun-ai/stepvideo-t2v"
TURBO_REPO = "stepfun-ai/stepvideo-t2v-turbo"
TI2V_REPO = "stepfun-ai/stepvideo-ti2v"  # image-to-video: a full repo (its own encoders and VAE)

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

# --- Step-Video-TI2V (image-to-video; ti2v-facts §3) -------------------------------------------
# The sampling defaults of an image request. The official sources disagree on the shift (CLI 7.0,
# README example / pipeline / ComfyUI node / MindSpeed 13.0, an early model card 12.573): we take
# 13.0, the value most of them run with, and it can be changed with --shift.
TI2V_PRESET = Preset("ti2v", steps=50, cfg=9.0, shift=13.0, transformer_repo=TI2V_REPO)
TI2V_DEFAULT_FRAMES = 102  # 6 chunks → 18 latent frames; 544×992 → 37,944 tokens
# Motion score: the official CLI default is 5 ("general"), the pipeline's own default 2. We take 5.
# The README's meaning: 2 calm/stable, 5 general, 10 best camera tracking, 20 intense. The official
# code has no range check; the official ComfyUI node offers 0–50, and so do we.
DEFAULT_MOTION = 5.0
MOTION_RANGE = (0.0, 50.0)
MOTION_MEANINGS = {2.0: "calm", 5.0: "general", 10.0: "camera tracking", 20.0: "intense"}
# The I2V prompt suffix and negative prompt of the official TI2V CLI (used like the T2V ones).
TI2V_POSITIVE_SUFFIX = (
    "画面中的主体动作表现生动自然、画面流畅、生动细节、光线统一柔和、超真实动态捕捉、大师级运镜、整体不变形、超高清、画面稳定、"
    "逼真的细节、专业级构图、超细节、清晰。"
)
TI2V_NEGATIVE_PROMPT = (
    "动画、模糊、变形、毁容、低质量、拼贴、粒状、标志、抽象、插图、计算机生成、扭曲、动作不流畅、面部有褶皱、表情僵硬、畸形手指"
)


def latent_shape(height: int, width: int, frames: int) -> tuple[int, int, int, int]:
    """(latent frames, channels, latent height, latent width) for a video of this size."""
    return (
        frames // FRAMES_PER_CHUNK * LATENTS_PER_CHUNK,
        LATENT_CHANNELS,
        height // SPATIAL_FACTOR,
        width // SPATIAL_FACTOR,
    )

