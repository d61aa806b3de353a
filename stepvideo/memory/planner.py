"""Predict peak VRAM and host RAM of a request for each memory profile; pick one or say what fits.

Pure arithmetic on the published model dimensions (facts §2–4), torch-free: the UI imports it.
The pipeline calls `plan_request` before loading anything and `require_fit` raises OutOfMemory
instead of letting the worker die. Coefficients marked [EST] are estimates to be calibrated by
benchmarks/gpu_acceptance.py on a real GPU; everything else is counted from the architecture.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidRequest, OutOfMemory, UnsupportedGpu
from ..presets import FRAMES_PER_CHUNK, LATENT_CHANNELS, SPATIAL_FACTOR, latent_shape
from .attention_support import bf16_attention_problem
from .profiles import DEFAULT_QUANTIZATION, PROFILE_NAMES, PROFILES, QUANTIZATIONS, Profile
from .tiling import estimate_tile_bytes

log = logging.getLogger(__name__)

GiB = 1 << 30
GB = 10**9

# --- Model dimensions (facts §2.2, §3.1, §3.2, §4.3) ---------------------------------------------
DIT_BLOCKS = 48
DIT_HIDDEN = 6144
DIT_HEADS = 48
DIT_HEAD_DIM = 128
DIT_BLOCK_PARAMS = 604_041_728
# Linear weights of one block: wqkv 18432·6144, wo, wq 6144², wkv 12288·6144, wo, ff up/down 24576·6144.
DIT_BLOCK_LINEAR_PARAMS = 603_979_776
DIT_BLOCK_LINEAR_ROWS = 18432 + 6144 + 6144 + 12288 + 6144 + 24576 + 6144  # one scale per output row
DIT_NONBLOCK_PARAMS = 348_475_456  # embeddings, adaln_single, projections: never quantized
DIT_PARAMS = DIT_BLOCKS * DIT_BLOCK_PARAMS + DIT_NONBLOCK_PARAMS  # 29,342,478,400
# Step-Video-TI2V adds 64 patch-embed input channels (6144·64) and the motion-score embedder
# (256·6144 + 6144 + 6144² + 6144), both outside the blocks (ti2v-facts §1.2): 29,382,205,504 in all.
TI2V_EXTRA_NONBLOCK_PARAMS = 6144 * 64 + (256 * 6144 + 6144 + 6144 * 6144 + 6144)  # 39,727,104

LLM_LAYERS = 48
LLM_LAYER_LINEAR_PARAMS = 8192 * 6144 + 6144 * 6144 + 33792 * 6144 + 6144 * 16896  # 399,507,456
LLM_LAYER_LINEAR_ROWS = 8192 + 6144 + 33792 + 6144
LLM_LAYER_NORM_PARAMS = 2 * 6144
LLM_EMBED_PARAMS = 65536 * 6144  # the embedding table stays bf16
LLM_PARAMS = LLM_LAYERS * (LLM_LAYER_LINEAR_PARAMS + LLM_LAYER_NORM_PARAMS) + LLM_EMBED_PARAMS  # 19,579,600,896
LLM_TOKENS = 320
CLIP_TOKENS = 77
CAPTION_TOKENS = CLIP_TOKENS + LLM_TOKENS  # the DiT's cross-attention keys at most (facts §2.4)

CLIP_PARAMS = 352_000_000  # ~351M + pooler; runs in fp32 like the official server
VAE_PARAMS = 498_800_000  # encoder + decoder, run in bf16

BF16 = 2
FP32 = 4
QINT4_GROUP = 128

# --- Activation coefficients ------------------------------------------------------------------------
# One "unit" = one bf16 tensor of shape (batch, tokens, 6144). Derived from an allocation trace of our
# own block (tests/test_activation_trace.py: the real StepVideoBlock at the published width on meta
# tensors, every live tensor's storage counted, a flash-style attention output standing in for SDPA),
# which these formulas match to within 0.01% for every profile at 544×992×204 and 768×768×204.
# The block input x stays alive throughout (the caller holds it). Per half, at its peak:
# - self-attention: x + the wqkv output (3; q and k are normalised and rotated in place inside it, a
#   few heads at a time, v is read from it) + the attention output (1) = 5 units, plus the attention's
#   fp32 softmax statistics (one per head and token). The same 5 units are held a moment earlier by
#   x + the modulated input + qkv while wqkv runs.
# - cross-attention: x + the residual stream + q + the attention output = 4 units (never the peak).
# - FFN: x + the residual stream (2 units; each token chunk's result is written back over it) + per
#   chunk the modulated input and the 4×-wide hidden (GELU in place), then the hidden and the output:
#   5 units × chunk fraction. Unchunked: 7 units.
# Plus what every block reads: the RoPE cos/sin tables (tokens × 128 each), the caption context and
# the per-row modulation vectors. Before this layout (issue 11 §2) the trace read 11.04 units at batch 1,
# set by full-size fp32 copies of q and k, and FFN chunking could not lower it.
ATTN_UNITS = 5.0
FFN_BASE_UNITS = 2.0
FFN_HIDDEN_UNITS = 5.0
ROW_VECTORS = 16  # modulation table, its chunks, 1 + scale: a few (batch, 6144) tensors; 16 is generous
# Text encoders at 2×320 tokens and 2×77 tokens: activations are small next to their weights [EST].
LLM_ACT_BYTES = GiB // 2
CLIP_ACT_BYTES = GiB // 4
# VAE encode of ONE frame (TI2V's image): the level-0 resnets run at full resolution and 128 channels;
# about this many such bf16 tensors are live at once [EST]. The encoder's causal mid-block attention
# runs over the (H/8)·(W/8) positions of that frame; counted as a full fp32 score matrix (the math
# kernel's worst case; 8,432 positions at 544×992 → 0.28 GB).
VAE_ENCODE_FULLRES_TENSORS = 6
VAE_ENCODE_FULLRES_CHANNELS = 128
# VAE decode of one 17-frame chunk: tiling.estimate_tile_bytes (measured on the real decoder at the
# published width: ~13,500 bf16 elements per output pixel + the mid-block attention, +25% margin).

# --- Fixed costs ---------------------------------------------------------------------------------------
CUDA_CONTEXT_BYTES = 600 * 2**20  # context + cuBLAS workspaces; outside torch's allocator [EST]
ALLOCATOR_OVERHEAD = 1.08  # caching-allocator fragmentation over the live bytes [EST]
VRAM_HEADROOM = GiB // 2  # keep this free for the desktop and other apps
HOST_BASE_BYTES = int(2.5 * GiB)  # interpreter, torch + CUDA libraries, the CUDA host context [EST]
HOST_STAGING_BYTES = GiB  # one tensor staged while loading (the largest is the 0.8 GB LLM embedding)
RAM_HEADROOM = 2 * GiB  # the OS, the UI and the page cache need some room
FFMPEG_ENCODER_BYTES = 200 << 20  # ffmpeg/libx264 at 544×992: 192 MiB peak RSS measured by benchmarks/host_ram.py
QUANT_OUTPUT_SHARD_BYTES = 2 * GiB  # quantize.py flushes its output file at this size
LARGEST_LINEAR_PARAMS = 33792 * 6144  # Step-LLM w1: the biggest tensor quantized at once

FAST_PROFILES = PROFILE_NAMES  # resident, balanced, low-vram, low-ram: fastest first


def weight_bytes(linear_params: int, linear_rows: int, quantization: str) -> int:
    """Bytes of quantizable Linear weights: bf16 2 B/param; qint8/qfloat8 1 B/param + one bf16 scale
    per output row; qint4 0.5 B/param + a bf16 scale and shift per group of 128 inputs."""
    if quantization == "none":
        return linear_params * BF16
    if quantization in ("qint8", "qfloat8"):
        return linear_params + linear_rows * BF16
    if quantization == "qint4":
        return linear_params // 2 + (linear_params // QINT4_GROUP) * 2 * BF16
    raise InvalidRequest(f"unknown quantization {quantization!r}; allowed: {', '.join(QUANTIZATIONS)}")


def dit_block_bytes(quantization: str) -> int:
    other = DIT_BLOCK_PARAMS - DIT_BLOCK_LINEAR_PARAMS  # norms, q/k norms, scale_shift_table: bf16
    return weight_bytes(DIT_BLOCK_LINEAR_PARAMS, DIT_BLOCK_LINEAR_ROWS, quantization) + other * BF16


def dit_nonblock_bytes(image_to_video: bool = False) -> int:
    return (DIT_NONBLOCK_PARAMS + (TI2V_EXTRA_NONBLOCK_PARAMS if image_to_video else 0)) * BF16


def llm_layer_bytes(quantization: str) -> int:
    return weight_bytes(LLM_LAYER_LINEAR_PARAMS, LLM_LAYER_LINEAR_ROWS, quantization) + LLM_LAYER_NORM_PARAMS * BF16


def llm_bytes(quantization: str) -> int:
    return LLM_LAYERS * llm_layer_bytes(quantization) + LLM_EMBED_PARAMS * BF16


def clip_bytes() -> int:
    return CLIP_PARAMS * FP32


def vae_bytes() -> int:
    return VAE_PARAMS * BF16


def video_tokens(height: int, width: int, frames: int) -> int:
    f, _, h, w = latent_shape(height, width, frames)
    return f * h * w


def dit_block_activation_bytes(tokens: int, batch: int, ff_chunk_tokens: int | None) -> int:
    """Peak bytes of activations while one DiT block runs, its input and shared inputs included:
    max(self-attention half, FFN half) + RoPE tables + caption context + per-row vectors (see the
    coefficients above; checked against a trace of the real block in tests/test_activation_trace.py)."""
    unit = batch * tokens * DIT_HIDDEN * BF16
    chunk_fraction = 1.0 if ff_chunk_tokens is None else min(1.0, ff_chunk_tokens / max(tokens, 1))
    attention = ATTN_UNITS * unit + batch * DIT_HEADS * tokens * FP32
    ffn = (FFN_BASE_UNITS + FFN_HIDDEN_UNITS * chunk_fraction) * unit
    shared = 2 * tokens * DIT_HEAD_DIM * BF16 + batch * (CAPTION_TOKENS + ROW_VECTORS) * DIT_HIDDEN * BF16
    return int(max(attention, ffn)) + shared


def dit_activation_bytes(tokens: int, batch: int, ff_chunk_tokens: int | None, image_to_video: bool = False) -> int:
    """Peak activation bytes of one DiT forward: one block's peak, plus the fp32 latents, velocity and
    CFG combination (4 fp32 copies of the latent, 64 channels per token). TI2V adds the condition (kept
    fp32, cast and expanded per row) and the 128-channel concatenated input."""
    latents = 4 * batch * tokens * LATENT_CHANNELS * FP32
    if image_to_video:
        latents += tokens * LATENT_CHANNELS * FP32 + batch * tokens * LATENT_CHANNELS * BF16 * (1 + 2)
    return dit_block_activation_bytes(tokens, batch, ff_chunk_tokens) + latents


def vae_encode_image_activation_bytes(height: int, width: int) -> int:
    """One frame through the VAE encoder (see VAE_ENCODE_FULLRES_TENSORS)."""
    fullres = VAE_ENCODE_FULLRES_TENSORS * VAE_ENCODE_FULLRES_CHANNELS * height * width * BF16
    positions = (height // 8) * (width // 8)
    return fullres + positions * positions * FP32


def vae_decode_activation_bytes(height: int, width: int, tile: int | None) -> int:
    """One 17-frame chunk at a time, one spatial tile of `tile`×`tile` latents (overlap included)
    or the whole frame when `tile` is None."""
    h, w = height // SPATIAL_FACTOR, width // SPATIAL_FACTOR
    if tile is not None:
        h, w = min(tile, h), min(tile, w)
    return estimate_tile_bytes(h, w)


def video_write_host_bytes(height: int, width: int, compute_bytes: int = 0) -> int:
    """Host RAM for handing the video to ffmpeg as it is decoded (pipeline._decode), whatever its
    length: one 17-frame chunk crosses into a reused uint8 buffer, plus ffmpeg's own memory (a child
    process). Decoding on the CPU (`compute_bytes` = the compute dtype's size) also holds the decoded
    chunk and its fp32 copy when the dtype is narrower."""
    chunk = FRAMES_PER_CHUNK * height * width * 3
    host = chunk  # the uint8 buffer
    if compute_bytes:
        host += chunk * compute_bytes + (chunk * FP32 if compute_bytes < FP32 else 0)
    return host + FFMPEG_ENCODER_BYTES


def streamed_load_host_bytes(n_blocks: int, resident_blocks: int, offload: str, quantization: str,
                             device_is_host: bool = False) -> int:
    """Host RAM a streamed DiT of `n_blocks` takes while it is placed (placement.place): every
    streamed block in pinned slabs (`pinned`) or a ring of two (`mmap`), plus the one block passing
    through pageable RAM as it is read. Nothing whole is ever read first. With `device_is_host` (a
    CPU run) the device's share is host RAM too: the N−1 fixed blocks. (Non-block tensors map the
    file and count only once touched.)"""
    block = dit_block_bytes(quantization)
    n_fixed = min(resident_blocks - 1, n_blocks)
    streamed = n_blocks - n_fixed
    store = 2 * block if offload == "mmap" else streamed * block
    transient = block if (offload != "mmap" or n_fixed) else 0
    return store + transient + (n_fixed * block if device_is_host else 0)


# Disk: what a run writes besides the quantized cache. x264 at our quality wrote 7.2 bits per pixel for
# pure noise (the worst case; real videos take a few % of that), and +faststart rewrites the file, so
# a second copy exists while it finishes. A checkpoint is the fp32 latents, written beside the old one.
MP4_BITS_PER_PIXEL_MAX = 8
MP4_COPIES_WHILE_WRITING = 2
SIDECAR_AND_METADATA_BYTES = 1 << 20
CHECKPOINT_COPIES_WHILE_WRITING = 2


def video_file_bytes(height: int, width: int, frames: int) -> int:
    """Upper estimate of the disk the finished mp4 (and its sidecar) needs while it is written."""
    pixels = height * width * frames
    return MP4_COPIES_WHILE_WRITING * pixels * MP4_BITS_PER_PIXEL_MAX // 8 + SIDECAR_AND_METADATA_BYTES


def checkpoint_file_bytes(height: int, width: int, frames: int) -> int:
    """The disk a denoise checkpoint needs while it is replaced: fp32 latents, twice, and the header."""
    f, c, h, w = latent_shape(height, width, frames)
    return CHECKPOINT_COPIES_WHILE_WRITING * f * c * h * w * 4 + (64 << 10)


def quantize_ram_bytes() -> int:
    """Host RAM while building the quantized cache (first run only): one output file being filled
    plus the bf16 tensor being quantized and its temporaries (abs, amax, scaled copy)."""
    return HOST_BASE_BYTES + QUANT_OUTPUT_SHARD_BYTES + 4 * LARGEST_LINEAR_PARAMS * BF16


@dataclass(frozen=True)
class Prediction:
    """What one profile would need for one request. Byte counts are peaks over the whole job."""

    profile: str
    quantization: str
    resident_blocks: int  # DiT blocks on the GPU at once (the computed one included); 48 = all
    vram_bytes: int
    ram_bytes: int  # one job, components loaded in turn (text encoders freed before the DiT)
    ram_keep_bytes: int  # if a session keeps every component's host copy between jobs
    stage_vram: dict[str, int]
    transfer_bytes_per_step: int  # host→GPU traffic per denoise step (streamed weights)
    fits: bool
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Alternative:
    """A change to the request that would fit this machine."""

    profile: str
    quantization: str
    frames: int
    height: int
    width: int
    vram_bytes: int
    ram_bytes: int

    def describe(self) -> str:
        return (f"{self.height}x{self.width}x{self.frames} with profile {self.profile}, quantization "
                f"{self.quantization} (needs {gib(self.vram_bytes)} VRAM, {gib(self.ram_bytes)} RAM)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Plan:
    profile: str  # chosen profile; the requested one when it was given explicitly
    quantization: str
    settings: Profile  # the profile's settings with the resident block count resolved
    predicted_vram_bytes: int
    predicted_ram_bytes: int
    fits: bool
    suggestions: tuple[Alternative, ...]
    predictions: dict[str, Prediction]
    gpu_bytes: int
    ram_bytes: int
    height: int
    width: int
    frames: int
    tokens: int
    quantize_ram_bytes: int  # host RAM the first run needs to build the quantized-weight cache
    notes: tuple[str, ...] = field(default_factory=tuple)
    unsupported: str = ""  # why this GPU cannot run the model at all (no fused bf16 attention)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["suggestions"] = [s.to_dict() for s in self.suggestions]
        return d

    def refusal(self) -> str:
        """One line: why it does not fit and what would."""
        if self.unsupported:
            return self.unsupported
        pred = self.predictions[self.profile]
        line = f"{self.height}x{self.width}x{self.frames} does not fit this machine ({pred.reason})"
        if self.suggestions:
            line += "; would fit: " + self.suggestions[0].describe()
        return line


def gib(n: int) -> str:
    return f"{n / GiB:.1f} GiB"


# --- Per-profile prediction ----------------------------------------------------------------------------


def _predict(
    profile: Profile, quantization: str, height: int, width: int, frames: int, batch: int,
    gpu_bytes: int, ram_bytes: int, image_to_video: bool = False,
) -> Prediction:
    tokens = video_tokens(height, width, frames)
    act = dit_activation_bytes(tokens, batch if profile.cfg_batch else 1, profile.ff_chunk_tokens, image_to_video)
    block = dit_block_bytes(quantization)
    nonblock = dit_nonblock_bytes(image_to_video)
    decode_act = vae_decode_activation_bytes(height, width, profile.vae_tile)
    llm_whole = llm_bytes(quantization)
    llm_stream_gpu = LLM_EMBED_PARAMS * BF16 + 3 * llm_layer_bytes(quantization)  # computed, in flight, released last
    stream_llm = llm_streams(profile.name, quantization, gpu_bytes)
    encode_stage = (llm_stream_gpu if stream_llm else llm_whole) + clip_bytes() + LLM_ACT_BYTES + CLIP_ACT_BYTES

    def dit_gpu(n_resident: int) -> int:
        # Streaming: N blocks on the GPU + one in flight + the one released last, which the GPU may
        # still be computing (offload.BlockStreamer waits two blocks back); all 48 when resident.
        on_gpu = DIT_BLOCKS if n_resident >= DIT_BLOCKS else min(DIT_BLOCKS, n_resident + 2)
        return nonblock + on_gpu * block

    def stages(n_resident: int) -> dict[str, int]:
        # Components take turns: the pipeline drops the DiT before the VAE loads.
        found = {"encode_text": encode_stage}
        if image_to_video:  # the VAE encodes the image between the text encoders and the DiT
            found["encode_image"] = vae_bytes() + vae_encode_image_activation_bytes(height, width)
        return found | {"denoise": dit_gpu(n_resident) + act, "decode": vae_bytes() + decode_act}

    if profile.name == "resident":
        n = DIT_BLOCKS
    elif profile.name == "balanced":
        # The largest N whose stages fit; N ≥ 47 would hold every block anyway (that is `resident`).
        n = profile.resident_blocks or 2
        for candidate in range(DIT_BLOCKS - 2, n - 1, -1):
            if _vram_total(max(stages(candidate).values())) <= gpu_bytes:
                n = candidate
                break
    else:
        n = profile.resident_blocks or 1
    stage_vram = stages(n)
    vram = _vram_total(max(stage_vram.values()))

    # Host RAM: base + staging + decoded video + the host copies the profile keeps.
    streamed_blocks = 0 if n >= DIT_BLOCKS else DIT_BLOCKS - (n - 1)
    if profile.offload == "mmap":
        dit_host = 2 * block  # the ring of two pinned buffers
        llm_host = 2 * llm_layer_bytes(quantization) if stream_llm else 0
    else:
        dit_host = streamed_blocks * block
        llm_host = LLM_LAYERS * llm_layer_bytes(quantization) if stream_llm else 0
    common = HOST_BASE_BYTES + HOST_STAGING_BYTES + video_write_host_bytes(height, width)
    ram = common + max(dit_host, llm_host)
    ram_keep = common + dit_host + llm_host
    transfer = streamed_blocks * block * (1 if profile.cfg_batch or batch == 1 else 2)  # one pass per forward

    reasons = []
    if vram > gpu_bytes:
        reasons.append(f"needs {gib(vram)} VRAM, {gib(gpu_bytes)} free")
    if ram + RAM_HEADROOM > ram_bytes:
        reasons.append(f"needs {gib(ram + RAM_HEADROOM)} RAM, {gib(ram_bytes)} available")
    return Prediction(
        profile=profile.name, quantization=quantization, resident_blocks=n, vram_bytes=vram,
        ram_bytes=ram, ram_keep_bytes=ram_keep, stage_vram=stage_vram,
        transfer_bytes_per_step=transfer, fits=not reasons, reason="; ".join(reasons),
    )


def llm_streams(profile: str, quantization: str, gpu_bytes: int) -> bool:
    """Whether Step-LLM streams its layers (embedding + one layer + one in flight on the GPU; all
    layers pinned, or a ring for low-ram) rather than visiting the GPU whole. Lean profiles always
    stream; balanced streams when the whole encoder does not fit; resident never does."""
    if profile in ("low-vram", "low-ram"):
        return True
    if profile == "balanced":
        return _vram_total(llm_bytes(quantization) + clip_bytes() + LLM_ACT_BYTES + CLIP_ACT_BYTES) > gpu_bytes
    return False


def _vram_total(live_bytes: int) -> int:
    """Device memory for `live_bytes` of tensors: fragmentation, CUDA context, headroom."""
    return int(live_bytes * ALLOCATOR_OVERHEAD) + CUDA_CONTEXT_BYTES + VRAM_HEADROOM


def predict_all(
    height: int, width: int, frames: int, quantization: str, batch: int, gpu_bytes: int, ram_bytes: int,
    image_to_video: bool = False,
) -> dict[str, Prediction]:
    return {
        name: _predict(PROFILES[name], quantization, height, width, frames, batch, gpu_bytes, ram_bytes,
                       image_to_video)
        for name in FAST_PROFILES
    }


def _first_fit(predictions: dict[str, Prediction]) -> Prediction | None:
    return next((p for p in predictions.values() if p.fits), None)


def _alternatives(
    height: int, width: int, frames: int, quantization: str, batch: int, gpu_bytes: int, ram_bytes: int,
    requested_profile: str | None, image_to_video: bool = False,
) -> tuple[Alternative, ...]:
    """What would fit: another profile; int4; fewer frames (requested quantization, then int4)."""
    found: list[Alternative] = []

    def add(pred: Prediction, f: int) -> None:
        alt = Alternative(pred.profile, pred.quantization, f, height, width, pred.vram_bytes, pred.ram_bytes)
        if alt not in found:
            found.append(alt)

    same = predict_all(height, width, frames, quantization, batch, gpu_bytes, ram_bytes, image_to_video)
    if requested_profile is not None:
        fit = _first_fit(same)
        if fit is not None:
            add(fit, frames)
    if quantization != "qint4":
        fit = _first_fit(predict_all(height, width, frames, "qint4", batch, gpu_bytes, ram_bytes, image_to_video))
        if fit is not None:
            add(fit, frames)
    for q in dict.fromkeys((quantization, "qint4")):
        for f in range(frames - FRAMES_PER_CHUNK, 0, -FRAMES_PER_CHUNK):
            fit = _first_fit(predict_all(height, width, f, q, batch, gpu_bytes, ram_bytes, image_to_video))
            if fit is not None:
                add(fit, f)
                break
    return tuple(found)


def plan(
    height: int,
    width: int,
    frames: int,
    *,
    cfg: float = 9.0,
    profile: str = "auto",
    quantization: str | None = None,
    gpu_bytes: int | None = None,
    ram_bytes: int | None = None,
    image_to_video: bool = False,
    capability: str | tuple[int, int] | None = None,
) -> Plan:
    """Predict every profile for this video and machine and pick one.

    `profile="auto"` takes the fastest profile that fits; a named profile is kept even if it does
    not fit (then `fits` is False). Without a fit, `suggestions` lists what would fit. Unset
    `gpu_bytes`/`ram_bytes` are read from this machine (free VRAM, available RAM in the cgroup).
    `image_to_video`: Step-Video-TI2V (its bigger DiT input, its VAE encode stage).
    A GPU `capability` without fused bf16 attention (before 8.0) fits nothing: `unsupported` says why.
    """
    _check_size(height, width, frames)
    if profile != "auto" and profile not in PROFILES:
        raise InvalidRequest(f"unknown memory profile {profile!r}; allowed: auto, {', '.join(PROFILE_NAMES)}")
    q = quantization or DEFAULT_QUANTIZATION
    if q not in QUANTIZATIONS:
        raise InvalidRequest(f"unknown quantization {q!r}; allowed: {', '.join(QUANTIZATIONS)}")
    notes: list[str] = []
    if gpu_bytes is None:
        gpu_bytes = detect_gpu_bytes()
        if gpu_bytes == 0:
            notes.append("no CUDA GPU found (NVML unavailable or no device)")
    if ram_bytes is None:
        ram_bytes = detect_ram_bytes()
    batch = 2 if cfg > 1.0 else 1  # CFG runs cond and uncond as one batch of 2
    predictions = predict_all(height, width, frames, q, batch, gpu_bytes, ram_bytes, image_to_video)
    if profile == "auto":
        chosen = _first_fit(predictions) or predictions["low-ram"]
    else:
        chosen = predictions[profile]
    suggestions: tuple[Alternative, ...] = ()
    unsupported = bf16_attention_problem(capability) or ""
    if unsupported:
        chosen = dataclasses.replace(chosen, fits=False, reason=unsupported)
    elif not chosen.fits:
        suggestions = _alternatives(height, width, frames, q, batch, gpu_bytes, ram_bytes,
                                    None if profile == "auto" else profile, image_to_video)
    settings = PROFILES[chosen.profile].replace(
        quantization=q,
        resident_blocks=None if chosen.resident_blocks >= DIT_BLOCKS else chosen.resident_blocks,
    )
    return Plan(
        profile=chosen.profile, quantization=q, settings=settings,
        predicted_vram_bytes=chosen.vram_bytes, predicted_ram_bytes=chosen.ram_bytes,
        fits=chosen.fits, suggestions=suggestions, predictions=predictions,
        gpu_bytes=gpu_bytes, ram_bytes=ram_bytes, height=height, width=width, frames=frames,
        tokens=video_tokens(height, width, frames), quantize_ram_bytes=quantize_ram_bytes(),
        notes=tuple(notes), unsupported=unsupported,
    )


def plan_request(request: Any, gpu_bytes: int | None = None, ram_bytes: int | None = None,
                 capability: str | tuple[int, int] | None = None) -> Plan:
    """`plan` for a GenerationRequest (its size, cfg, profile and quantization)."""
    return plan(
        request.height, request.width, request.frames, cfg=float(request.effective_cfg),
        profile=request.profile, quantization=request.quantization, gpu_bytes=gpu_bytes, ram_bytes=ram_bytes,
        image_to_video=bool(getattr(request, "is_image_to_video", False)),
        capability=capability,
    )


def require_fit(p: Plan) -> Plan:
    """Return the plan, or raise OutOfMemory with one line saying what would fit (UnsupportedGpu
    when the GPU cannot run the model at any size)."""
    if p.unsupported:
        raise UnsupportedGpu(p.unsupported)
    if not p.fits:
        raise OutOfMemory(p.refusal())
    return p


def _check_size(height: int, width: int, frames: int) -> None:
    from ..api import GenerationRequest, validate

    validate(GenerationRequest(prompt="plan", height=height, width=width, frames=frames))


# --- Reading the machine -------------------------------------------------------------------------------


def detect_gpu_bytes() -> int:
    """Free memory of the first visible CUDA device, or 0 without one.

    Uses torch only when the caller already imported it and made a CUDA context (no new context);
    otherwise NVML (nvidia-ml-py), which needs no context and degrades to 0 without a driver.
    """
    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
            free, _total = torch.cuda.mem_get_info()
            # Memory our own caching allocator holds but does not use is also available to us.
            return int(free + torch.cuda.memory_reserved() - torch.cuda.memory_allocated())
    except Exception as exc:  # a broken driver must not break planning
        log.debug("torch CUDA memory query failed: %s", exc)
    try:
        import pynvml
    except ImportError:
        return 0
    try:
        pynvml.nvmlInit()
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(_first_visible_index())
            return int(pynvml.nvmlDeviceGetMemoryInfo(handle).free)
        finally:
            pynvml.nvmlShutdown()
    except Exception as exc:  # NVMLError_LibraryNotFound, driver mismatch, no device
        log.debug("NVML unavailable: %s", exc)
        return 0


def _first_visible_index() -> int:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    return int(visible) if visible.isdigit() else 0


def detect_ram_bytes(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """Available host RAM: psutil's `available`, capped by what the cgroup limit still allows."""
    import psutil

    available = int(psutil.virtual_memory().available)
    limit = cgroup_available_bytes(cgroup_root)
    return min(available, limit) if limit is not None else available


def cgroup_available_bytes(root: Path) -> int | None:
    """Limit minus non-reclaimable usage for cgroup v2 (memory.max) or v1; None when unlimited."""
    try:
        v2 = root / "memory.max"
        if v2.is_file():
            raw = v2.read_text().strip()
            if raw == "max":
                return None
            usage = int((root / "memory.current").read_text())
            return max(0, int(raw) - (usage - _stat_value(root / "memory.stat", "inactive_file")))
        v1 = root / "memory" / "memory.limit_in_bytes"
        if v1.is_file():
            limit = int(v1.read_text())
            if limit >= 1 << 60:  # v1 writes a huge number for "unlimited"
                return None
            usage = int((root / "memory" / "memory.usage_in_bytes").read_text())
            inactive = _stat_value(root / "memory" / "memory.stat", "total_inactive_file")
            return max(0, limit - (usage - inactive))
    except (OSError, ValueError) as exc:
        log.debug("cgroup memory limit unreadable: %s", exc)
    return None


def _stat_value(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def parse_bytes(text: str) -> int:
    """'16GiB', '64GB', '24000MiB', '1.5TiB' → bytes. A unit is required (GB = 10⁹, GiB = 2³⁰)."""
    units = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
             "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
    s = text.strip().upper().replace(" ", "")
    number = s.rstrip("KMGTIB")
    unit = s[len(number):]
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if unit not in units or value < 0:
        raise InvalidRequest(f"memory size {text!r} is not allowed; write a number and a unit, e.g. 16GiB, 24GB, 8000MiB")
    return int(value * units[unit])
