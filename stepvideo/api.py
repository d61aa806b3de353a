"""The engine's torch-free surface: requests, results, events and request validation."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidRequest
from .memory.profiles import PROFILE_NAMES, QUANTIZATIONS
from .presets import (
    BASE_REPO,
    DEFAULT_FRAMES,
    DEFAULT_MOTION,
    DEFAULT_SEED,
    DEFAULT_SIZE,
    FRAMES_PER_CHUNK,
    MOTION_RANGE,
    OFFICIAL_NEGATIVE_PROMPT,
    OFFICIAL_POSITIVE_SUFFIX,
    PRESETS,
    SPATIAL_FACTOR,
    TI2V_NEGATIVE_PROMPT,
    TI2V_POSITIVE_SUFFIX,
    TI2V_PRESET,
    TI2V_REPO,
    TURBO_REPO,
    Preset,
)
from .request_text import MAX_PATH_CHARS, MAX_PROMPT_CHARS, check_text
from .strict_fields import from_known_fields

PROTOCOL_VERSION = 1
PROFILES = ("auto", *PROFILE_NAMES)  # `auto`: the planner picks the fastest profile that fits
MAX_STEPS = 200


@dataclass(frozen=True)
class GenerationRequest:
    """Everything that decides a video. Unset sampling values come from the preset."""

    prompt: str
    model: str = BASE_REPO  # a hub repo id or a local folder in the hub layout
    revision: str | None = None
    transformer_model: str | None = None  # where the DiT comes from; None: the preset's repo (turbo) or `model`
    negative_prompt: str | None = None  # None: the official negative prompt
    positive_suffix: str | None = None  # None: the official suffix; "" turns it off
    preset: str = "standard"
    steps: int | None = None
    cfg: float | None = None
    shift: float | None = None
    height: int = DEFAULT_SIZE[0]
    width: int = DEFAULT_SIZE[1]
    frames: int = DEFAULT_FRAMES
    seed: int = DEFAULT_SEED
    profile: str = "auto"
    quantization: str | None = None  # None: the profile's choice
    output: str | None = None  # mp4 path; None: the videos folder
    # Image-to-video (Step-Video-TI2V): the source image file. A queued job's copy lives in the job's
    # own folder, under the original file name. None: text-to-video.
    image: str | None = None
    motion: float | None = None  # TI2V motion score; None: DEFAULT_MOTION

    @property
    def is_image_to_video(self) -> bool:
        return self.image is not None

    @property
    def sampling_preset(self) -> Preset:
        """The preset whose values fill unset steps/cfg/shift: TI2V's for an image request."""
        return TI2V_PRESET if self.is_image_to_video else PRESETS[self.preset]

    # Resolved values: what actually runs.
    @property
    def effective_steps(self) -> int:
        return self.steps if self.steps is not None else self.sampling_preset.steps

    @property
    def effective_cfg(self) -> float:
        return self.cfg if self.cfg is not None else self.sampling_preset.cfg

    @property
    def effective_shift(self) -> float:
        return self.shift if self.shift is not None else self.sampling_preset.shift

    @property
    def effective_motion(self) -> float | None:
        """The motion score an image request runs with; None for text-to-video."""
        if not self.is_image_to_video:
            return None
        return float(self.motion) if self.motion is not None else DEFAULT_MOTION

    @property
    def effective_negative(self) -> str:
        if self.negative_prompt is not None:
            return self.negative_prompt
        return TI2V_NEGATIVE_PROMPT if self.is_image_to_video else OFFICIAL_NEGATIVE_PROMPT

    @property
    def effective_suffix(self) -> str:
        if self.positive_suffix is not None:
            return self.positive_suffix
        return TI2V_POSITIVE_SUFFIX if self.is_image_to_video else OFFICIAL_POSITIVE_SUFFIX

    @property
    def full_prompt(self) -> str:
        return self.prompt + self.effective_suffix

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationRequest:
        return from_known_fields(cls, data, InvalidRequest, "request")

    def replace(self, **changes: Any) -> GenerationRequest:
        return dataclasses.replace(self, **changes)


def validate(request: GenerationRequest) -> GenerationRequest:
    """Raise InvalidRequest (one line, naming what is allowed) or return the request unchanged."""
    r = request
    if not isinstance(r.prompt, str) or not r.prompt.strip():
        raise InvalidRequest("the prompt is empty; write what the video should show")
    _check_texts(r)
    if r.preset not in PRESETS:
        raise InvalidRequest(f"unknown preset {r.preset!r}; allowed: {', '.join(PRESETS)}")
    for name, value in (("height", r.height), ("width", r.width)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0 or value % SPATIAL_FACTOR:
            raise InvalidRequest(f"{name} {value} is not allowed; it must be a positive multiple of {SPATIAL_FACTOR} (e.g. 544, 768, 992)")
    if not isinstance(r.frames, int) or isinstance(r.frames, bool) or r.frames <= 0 or r.frames % FRAMES_PER_CHUNK:
        raise InvalidRequest(f"frames {r.frames} is not allowed; it must be a positive multiple of {FRAMES_PER_CHUNK} (17, 34, …, 204)")
    steps = r.effective_steps
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= MAX_STEPS:
        raise InvalidRequest(f"steps {steps} is not allowed; it must be a whole number from 1 to {MAX_STEPS}")
    cfg = r.effective_cfg
    if not isinstance(cfg, (int, float)) or isinstance(cfg, bool) or not cfg >= 1.0:
        raise InvalidRequest(f"cfg {cfg} is not allowed; it must be a number ≥ 1")
    shift = r.effective_shift
    if not isinstance(shift, (int, float)) or isinstance(shift, bool) or not shift > 0:
        raise InvalidRequest(f"shift {shift} is not allowed; it must be a number > 0")
    if not isinstance(r.seed, int) or isinstance(r.seed, bool) or not 0 <= r.seed < 2**63:
        raise InvalidRequest(f"seed {r.seed} is not allowed; it must be a whole number from 0 to 2^63-1")
    if r.profile not in PROFILES:
        raise InvalidRequest(f"unknown memory profile {r.profile!r}; allowed: {', '.join(PROFILES)}")
    if r.quantization is not None and r.quantization not in QUANTIZATIONS:
        raise InvalidRequest(f"unknown quantization {r.quantization!r}; allowed: {', '.join(QUANTIZATIONS)}")
    if not isinstance(r.model, str) or not r.model.strip():
        raise InvalidRequest("the model is empty; give a hub repo id (stepfun-ai/stepvideo-t2v) or a model folder")
    _validate_image_mode(r)
    return r


_TEXT_FIELDS = (  # field, how a message names it, length cap
    ("prompt", "prompt", MAX_PROMPT_CHARS), ("negative_prompt", "negative prompt", MAX_PROMPT_CHARS),
    ("positive_suffix", "prompt suffix", MAX_PROMPT_CHARS), ("model", "model", MAX_PATH_CHARS),
    ("revision", "revision", MAX_PATH_CHARS), ("transformer_model", "transformer model", MAX_PATH_CHARS),
    ("output", "output path", MAX_PATH_CHARS), ("image", "image path", MAX_PATH_CHARS),
)


def _check_texts(r: GenerationRequest) -> None:
    """Every text field: valid UTF-8, no NUL, not over its cap (request_text.py says why)."""
    for name, label, cap in _TEXT_FIELDS:
        value = getattr(r, name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidRequest(f"the {label} must be text, not {type(value).__name__}")
        check_text(label, value, cap)


_T2V_REPOS = (BASE_REPO, TURBO_REPO)


def _validate_image_mode(r: GenerationRequest) -> None:
    """The image/motion fields, and the model kinds known by name (a local folder's kind is checked
    when its transformer config is read: engine.model_kind)."""
    if r.image is None:
        if r.motion is not None:
            raise InvalidRequest("--motion applies only to image-to-video; give --image too, or drop --motion")
        if r.model == TI2V_REPO:
            raise InvalidRequest(f"{TI2V_REPO} is an image-to-video model; give --image PATH, or use {BASE_REPO}")
        return
    if not isinstance(r.image, str) or not r.image.strip():
        raise InvalidRequest("the image path is empty; give a PNG, JPEG or WebP file")
    if r.model in _T2V_REPOS or r.transformer_model in _T2V_REPOS:
        raise InvalidRequest(f"--image needs an image-to-video model such as {TI2V_REPO}; "
                             f"{r.transformer_model if r.transformer_model in _T2V_REPOS else r.model} is text-to-video")
    if r.preset != "standard":
        raise InvalidRequest(f"--preset {r.preset} has no image-to-video model; use --preset standard with --image")
    low, high = MOTION_RANGE
    m = r.motion
    if m is not None and (not isinstance(m, (int, float)) or isinstance(m, bool) or not low <= m <= high):
        raise InvalidRequest(f"motion {m} is not allowed; it must be a number from {low:g} to {high:g} "
                             "(2 calm, 5 general, 10 camera tracking, 20 intense)")


@dataclass(frozen=True)
class GenerationResult:
    video_path: str
    sidecar_path: str
    seconds: float
    seed: int
    frames: int
    stage_seconds: dict[str, float] = field(default_factory=dict)
    memory: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --- Events (worker → UI). One JSON object per line; see design/ARCHITECTURE.md. ---------------

EVENT_TYPES = (
    "ready", "job_started", "stage", "step", "memory", "preview", "job_done", "job_failed", "log",
    "download", "job_paused", "job_interrupted", "decode_progress",
)


def event(type_: str, **fields: Any) -> dict[str, Any]:
    """Build a protocol event. Every event carries the protocol version and a wall-clock time."""
    if type_ not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type_!r}")
    return {"v": PROTOCOL_VERSION, "type": type_, "time": round(time.time(), 3), **fields}
