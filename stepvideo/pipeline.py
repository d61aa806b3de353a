"""One call from a request to an mp4: load → encode_text → denoise → decode → write.

Components take turns on the device: the text encoders are released before the DiT loads, and the
DiT before the VAE decodes, so the peak is the largest component rather than their sum.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from . import __version__, loading, paths, video_io
from .api import GenerationRequest, GenerationResult, event, validate
from .conditioning import encode_texts
from .denoise import DenoisePlan, RunControl, denoise
from .errors import Cancelled
from .memory.choose import settings_for
from .memory.offload import move
from .memory.placement import place
from .memory.planner import Plan
from .memory.profiles import Profile
from .memory.stats import memory_snapshot, reset_peak
from .model_roots import ModelRoots, commit_of, resolve_roots
from .preflight import check_model_files, check_output_folder
from .presets import latent_shape
from .preview import latent_to_rgb, write_png
from .session import EngineSession

log = logging.getLogger(__name__)
EventSink = Callable[[dict[str, Any]], None]

__all__ = ["generate", "RunControl", "EngineSession"]


class _Run:
    """Bookkeeping of one generate() call: events, stage timings and memory peaks."""

    def __init__(self, on_event: EventSink | None):
        self.emit: EventSink = on_event or (lambda _e: None)
        self.stage_seconds: dict[str, float] = {}
        self.memory: dict[str, dict[str, int]] = {}

    @contextmanager
    def stage(self, name: str, part: str | None = None, **fields: Any) -> Iterator[None]:
        label = f"{name}:{part}" if part else name
        if part:
            fields["part"] = part
        reset_peak()
        began = time.monotonic()
        self.emit(event("stage", name=name, state="started", **fields))
        yield
        seconds = time.monotonic() - began
        snapshot = memory_snapshot()
        self.stage_seconds[name] = self.stage_seconds.get(name, 0.0) + seconds
        self.memory[label] = snapshot
        self.emit(event("memory", stage=name, **snapshot))
        self.emit(event("stage", name=name, state="finished", seconds=round(seconds, 3)))


def _dtype_for(device: torch.device) -> torch.dtype:
    return torch.bfloat16


def default_output_path(request: GenerationRequest) -> Path:
    slug = re.sub(r"[^\w]+", "-", request.prompt.strip(), flags=re.UNICODE).strip("-")[:40] or "video"
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return paths.videos_dir() / f"{stamp}-{slug}-s{request.seed}.mp4"


def free_output_path(wanted: Path) -> Path:
    """`wanted`, or `name-2.mp4`, `name-3.mp4`… when a video or sidecar of that name exists: we never
    overwrite anything the user has."""
    candidate, n = wanted, 2
    while candidate.exists() or video_io.sidecar_path(candidate).exists():
        candidate = wanted.with_name(f"{wanted.stem}-{n}{wanted.suffix}")
        n += 1
    return candidate


def generate(
    request: GenerationRequest,
    on_event: EventSink | None = None,
    should_cancel: Callable[[], bool] | None = None,
    *,
    control: RunControl | None = None,
    session: EngineSession | None = None,
) -> GenerationResult:
    validate(request)
    began = time.monotonic()
    run = _Run(on_event)
    session = session or EngineSession(keep_loaded=False)
    device = session.device
    dtype = _dtype_for(device)
    cancelled = should_cancel or (lambda: False)

    roots = resolve_roots(request)
    weight_files = check_model_files(roots)
    wanted_output = Path(request.output).expanduser() if request.output else default_output_path(request)
    check_output_folder(wanted_output)
    settings, memory_plan = settings_for(request, device, weight_files)
    profile_key = (settings.name, settings.quantization, settings.resident_blocks)
    llm_key = ("step_llm", str(roots.base), profile_key)
    clip_key = ("clip", str(roots.base))
    dit_key = ("dit", str(roots.transformer), profile_key)

    with run.stage("load", part="text encoders"):
        tokenizers = loading.load_tokenizers(roots.base)
        llm = session.acquire(llm_key, lambda: place(
            lambda: loading.step_llm_on_meta(roots.base), loading.step_llm_spec(roots.base), settings,
            device, dtype, commit_of(roots.base)))
        clip = session.acquire(clip_key, lambda: move(loading.load_clip(roots.base), device))
    if cancelled():
        raise Cancelled("cancelled before encoding the prompt")

    with run.stage("encode_text"):
        text = encode_texts(request, tokenizers, llm, clip, device, dtype)
        for note in text.truncated:
            log.info(note)
            run.emit(event("log", level="info", message=note))
    session.release(llm_key, llm)
    session.release(clip_key, clip)
    del llm, clip

    with run.stage("load", part="transformer"):
        dit = session.acquire(dit_key, lambda: place(
            lambda: loading.dit_on_meta(roots.transformer), loading.dit_spec(roots.transformer), settings,
            device, dtype, commit_of(roots.transformer)))
        dit.module.ff_chunk_tokens = settings.ff_chunk_tokens

    frames_shape = latent_shape(request.height, request.width, request.frames)
    plan = DenoisePlan(
        steps=request.effective_steps,
        cfg=float(request.effective_cfg),
        shift=float(request.effective_shift),
        seed=request.seed,
        latent_shape=(1, *frames_shape),
        dtype=dtype,
        cfg_batch=settings.cfg_batch,
        fingerprint=_fingerprint(request, roots),
    )
    if control is not None and not settings.previews:
        control = dataclasses.replace(control, preview_every_steps=0)
    with run.stage("denoise", steps=plan.steps, profile=settings.name, quantization=dit.qtype):
        latents = denoise(
            dit, text.to(device), plan, device,
            on_step=_step_reporter(run, control, plan.steps),
            should_cancel=cancelled, control=control,
        )
    session.release(dit_key, dit)
    del dit, text

    with run.stage("load", part="vae"):
        vae = session.acquire(("vae", str(roots.base)), lambda: move(loading.load_vae(roots.base, dtype), device))
    with run.stage("decode", tile=settings.vae_tile):
        video = _decode(vae, latents, device, dtype, cancelled, settings.vae_tile)
    session.release(("vae", str(roots.base)), vae)
    del vae

    with run.stage("write"):
        output = free_output_path(wanted_output)
        metadata = _metadata(request, roots, run, time.monotonic() - began, settings, memory_plan)
        video_io.write_mp4(video_io.to_uint8_frames(video), output, metadata)
        sidecar = video_io.write_sidecar(output, metadata)
    if control is not None and control.checkpoints is not None:
        control.checkpoints.clear()
    seconds = time.monotonic() - began
    metadata = _metadata(request, roots, run, seconds, settings, memory_plan)
    video_io.write_sidecar(output, metadata)  # again, now with the write stage's figures
    return GenerationResult(
        video_path=str(output), sidecar_path=str(sidecar), seconds=round(seconds, 3), seed=request.seed,
        frames=int(video.shape[0]), stage_seconds=run.stage_seconds, memory=run.memory,
    )


def _step_reporter(run: _Run, control: RunControl | None, total: int):
    first_step_at = time.monotonic()

    def on_step(done: int, n: int, seconds: float, clean_estimate) -> None:
        per_step = (time.monotonic() - first_step_at) / max(done, 1)
        run.emit(event("step", i=done, n=n, seconds_per_step=round(seconds, 4), eta_seconds=round(per_step * (n - done), 1)))
        if control is not None and control.preview_every_steps and control.preview_dir is not None:
            if done % control.preview_every_steps == 0 or done == n:
                image = latent_to_rgb(clean_estimate()[0, 0].cpu())
                path = write_png(image, Path(control.preview_dir) / f"preview-{done:04d}.png")
                run.emit(event("preview", path=str(path), step=done, kind="latent-pca"))

    return on_step


@torch.inference_mode()
def _decode(vae, latents: torch.Tensor, device, dtype, cancelled, tile_latents: int | None = None) -> Any:
    """Decode in independent 17-frame chunks (cancel is checked between them), tiled in space when the
    memory profile asks for it, and return (frames, 3, H, W) floats in [-1, 1] on the CPU."""
    from .memory.tiling import tiled_decode

    latents = latents.to(device=device, dtype=dtype)
    if tile_latents and (latents.shape[-2] > tile_latents or latents.shape[-1] > tile_latents):
        video = tiled_decode(vae, latents, tile=tile_latents, overlap=max(1, tile_latents // 4), should_cancel=cancelled)
    else:
        video = vae.decode(latents, should_cancel=cancelled)
    return video[0].float().cpu().numpy()


def _fingerprint(request: GenerationRequest, roots: ModelRoots) -> dict[str, Any]:
    """What must match for a checkpoint to be resumed into this run."""
    return {
        "prompt": request.full_prompt, "negative": request.effective_negative, "seed": request.seed,
        "steps": request.effective_steps, "cfg": request.effective_cfg, "shift": request.effective_shift,
        "size": [request.height, request.width, request.frames], "transformer": str(roots.transformer),
    }


def _metadata(request: GenerationRequest, roots: ModelRoots, run: _Run, seconds: float, settings: Profile,
              memory_plan: Plan | None) -> dict[str, Any]:
    return {
        "app": "StepVideo Desktop", "app_version": __version__,
        "request": request.to_dict(),
        "resolved": {
            "steps": request.effective_steps, "cfg": request.effective_cfg, "shift": request.effective_shift,
            "negative_prompt": request.effective_negative, "positive_suffix": request.effective_suffix,
        },
        "seed": request.seed,
        "model": roots.describe(),
        "created": datetime.now().astimezone().isoformat(timespec="seconds"),
        "seconds": round(seconds, 3),
        "stage_seconds": {k: round(v, 3) for k, v in run.stage_seconds.items()},
        "memory": run.memory,
        "profile": settings.to_dict(),
        "predicted": None if memory_plan is None else {
            "vram_bytes": memory_plan.predicted_vram_bytes, "ram_bytes": memory_plan.predicted_ram_bytes},
    }
