"""One call from a request to an mp4: load → encode_text → denoise → decode → write.

Components take turns on the device: the text encoders are released before the DiT loads, and the
DiT before the VAE decodes, so the peak is the largest component rather than their sum.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from stepvideo import __version__
from stepvideo.api import GenerationRequest, GenerationResult, event, validate
from stepvideo.engine import loading, video_io
from stepvideo.engine.attention_kernels import dit_attention
from stepvideo.engine.compute_dtype import DtypeChoice, compute_dtype_for
from stepvideo.engine.conditioning import encode_texts
from stepvideo.engine.denoise import DenoisePlan, RunControl, denoise
from stepvideo.engine.eta import AttemptClock
from stepvideo.engine.image_condition import (
    ImageConditioned,
    condition_latents,
    encode_image,
    image_to_tensor,
)
from stepvideo.engine.model_kind import check_mode
from stepvideo.engine.model_roots import ModelRoots, commit_of, resolve_roots
from stepvideo.engine.output_path import free_output_path, wanted_output_path
from stepvideo.engine.preflight import check_free_space, check_model_files, check_output_folder
from stepvideo.engine.preview import latent_to_rgb, write_png
from stepvideo.engine.session import EngineSession
from stepvideo.errors import Cancelled, OutputError, Paused
from stepvideo.memory.choose import RunSettings, settings_for, usable_vram
from stepvideo.memory.offload import move
from stepvideo.memory.placement import place
from stepvideo.memory.profiles import Profile
from stepvideo.memory.stats import memory_snapshot, reset_peak
from stepvideo.memory.tiling import choose_tile_size
from stepvideo.presets import latent_shape
from stepvideo.source_image import SourceImage, check_image, file_sha256

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


VAE_DECODE_HEADROOM = 1 << 30  # cuDNN workspaces and fragmentation on top of the tile estimate


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
    cancelled = should_cancel or (lambda: False)

    roots = resolve_roots(request)
    check_mode(request, roots.transformer, roots.transformer_id)
    source = check_image(request.image, request.height, request.width) if request.is_image_to_video else None
    weight_files = check_model_files(roots)
    wanted_output = wanted_output_path(request.output, request.prompt, request.seed)
    check_output_folder(wanted_output)
    checkpoint_dir = getattr(control.checkpoints, "directory", None) if control is not None else None
    check_free_space(wanted_output, checkpoint_dir, request.height, request.width, request.frames)
    settings = settings_for(request, session.device, weight_files, on_event=run.emit)  # kernel builds report progress
    for note in settings.notes:
        log.warning(note)
        run.emit(event("log", level="warning", message=note))
    job = _Job(request, roots, settings, session, run, cancelled, control, source,
               file_sha256(source.path) if source is not None else None, compute_dtype_for(session.device.type))
    log.info("computing in %s: %s", job.compute.name, job.compute.reason)

    text = _encode(job)
    condition = _encode_image(job) if source is not None else None
    if cancelled():
        raise Cancelled("cancelled before denoising")
    latents = _denoise(job, text, control, condition)
    del text

    output = free_output_path(wanted_output)
    if output != wanted_output:
        note = f"{wanted_output.name} already exists in {wanted_output.parent}; writing {output} instead"
        log.info(note)
        run.emit(event("log", level="info", message=note))
    # Each decoded chunk goes to the mp4 writer as it comes (as uint8): no device ever holds the
    # whole video, let alone in fp32. The write stage is the remux with the metadata.
    with _output_errors(output), video_io.Mp4Writer(output, request.width, request.height) as writer:
        frames = _decode_video(job, latents, writer.send)
        with run.stage("write"):
            writer.finish(_metadata(job, time.monotonic() - began))
    if control is not None and control.checkpoints is not None:
        control.checkpoints.clear()
    seconds = time.monotonic() - began
    sidecar = video_io.sidecar_path(output)
    try:  # the video (with its metadata inside) is safe already: a sidecar problem is only a warning
        metadata = _metadata(job, seconds)
        if source is not None:  # a copy next to the sidecar, so the run can be reproduced exactly
            metadata["source_image"]["copy"] = video_io.copy_source_image(output, source.path).name
        video_io.write_sidecar(output, metadata)
    except OSError as exc:
        log.warning("could not write %s: %s", sidecar, exc)
    return GenerationResult(
        video_path=str(output), sidecar_path=str(sidecar), seconds=round(seconds, 3), seed=request.seed,
        frames=frames, stage_seconds=run.stage_seconds, memory=run.memory,
    )


@dataclasses.dataclass
class _Job:
    request: GenerationRequest
    roots: ModelRoots
    settings: RunSettings
    session: EngineSession
    run: _Run
    cancelled: Callable[[], bool]
    control: RunControl | None = None
    source: SourceImage | None = None  # image-to-video only
    source_sha256: str | None = None
    compute: DtypeChoice = DtypeChoice("bfloat16", "the published weights' dtype")  # see compute_dtype.py

    def check_stop(self, where: str) -> None:
        """Act on a cancel or pause (shutdown) outside the denoise loop. Denoise saves its last
        latents as a checkpoint, so a job stopped here resumes straight at the decode."""
        if self.cancelled():
            raise Cancelled(f"cancelled {where}")
        if self.control is not None and self.control.should_pause is not None and self.control.should_pause():
            raise Paused(f"stopped {where}; it resumes with the decode")

    @property
    def device(self) -> torch.device:
        return self.session.device

    @property
    def dtype(self) -> torch.dtype:
        return getattr(torch, self.compute.name)

    def key(self, component: str, root: Path, profile: Profile | None = None) -> tuple:
        variant = () if profile is None else (profile.name, profile.quantization, profile.resident_blocks)
        return (component, str(root), *variant)


def _encode(job: _Job):
    """Both text encoders on [prompt + suffix, negative]; they leave the GPU before the DiT loads."""
    base, llm_profile = job.roots.base, job.settings.llm
    with job.run.stage("load", part="text encoders"):
        tokenizers = loading.load_tokenizers(base)
    llm_loader = lambda: place(lambda: loading.step_llm_on_meta(base), loading.step_llm_spec(base),  # noqa: E731
                               llm_profile, job.device, job.dtype, commit_of(base))
    with job.session.using(job.key("step_llm", base, llm_profile), llm_loader) as llm, \
            job.session.using(job.key("clip", base), lambda: move(loading.load_clip(base), job.device)) as clip:
        with job.run.stage("encode_text"):
            text = encode_texts(job.request, tokenizers, llm, clip, job.device, job.dtype)
    for note in text.truncated:
        log.info(note)
        job.run.emit(event("log", level="info", message=note))
    return text


def _encode_image(job: _Job) -> torch.Tensor:
    """TI2V: the image's VAE latent in latent frame 0 of the condition (engine.image_condition). The
    VAE is the one that decodes later; a session that keeps models loaded reuses it."""
    request, base = job.request, job.roots.base
    loader = lambda: move(loading.load_vae(base, job.dtype), job.device)  # noqa: E731
    with ExitStack() as stack:
        with job.run.stage("load", part="vae"):
            vae = stack.enter_context(job.session.using(job.key("vae", base), loader))
        with job.run.stage("encode_image"):
            pixels = image_to_tensor(job.source.rgb, request.height, request.width).to(job.device)
            latent = encode_image(vae, pixels).cpu()
    return condition_latents(latent, latent_shape(request.height, request.width, request.frames)[0])


def _denoise(job: _Job, text, control: RunControl | None, condition: torch.Tensor | None = None) -> torch.Tensor:
    request, profile, root = job.request, job.settings.dit, job.roots.transformer
    plan = DenoisePlan(
        steps=request.effective_steps, cfg=float(request.effective_cfg), shift=float(request.effective_shift),
        seed=request.seed, latent_shape=(1, *latent_shape(request.height, request.width, request.frames)),
        dtype=job.dtype, cfg_batch=profile.cfg_batch, fingerprint=_fingerprint(request, job.roots, job.source_sha256),
    )
    if control is not None and not profile.previews:
        control = dataclasses.replace(control, preview_every_steps=0)
    loader = lambda: place(lambda: loading.dit_on_meta(root), loading.dit_spec(root), profile,  # noqa: E731
                           job.device, job.dtype, commit_of(root))
    with ExitStack() as stack:
        with job.run.stage("load", part="transformer"):
            dit = stack.enter_context(job.session.using(job.key("dit", root, profile), loader))
        dit.module.ff_chunk_tokens = profile.ff_chunk_tokens
        model = dit if condition is None else ImageConditioned(dit, condition, request.effective_motion)
        with job.run.stage("denoise", steps=plan.steps, profile=profile.name, quantization=dit.qtype), \
                dit_attention(job.device):
            return denoise(model, text.to(job.device), plan, job.device,
                           on_step=_step_reporter(job.run, control, plan.steps),
                           should_cancel=job.cancelled, control=control)


@contextmanager
def _output_errors(output: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or (str(exc).splitlines() or [type(exc).__name__])[0]
        raise OutputError(f"could not write the video to {output} ({reason}); "
                          "free some space or choose another folder, then run it again") from None


def _decode_video(job: _Job, latents: torch.Tensor, write: Callable[[Any], None]) -> int:
    base = job.roots.base
    loader = lambda: move(loading.load_vae(base, job.dtype), job.device)  # noqa: E731
    with ExitStack() as stack:
        with job.run.stage("load", part="vae"):
            vae = stack.enter_context(job.session.using(job.key("vae", base), loader))
        tile = _vae_tile(job, latents)
        job.check_stop("before the decode")
        with job.run.stage("decode", tile=tile):
            return _decode(vae, latents, job.device, job.dtype, job.cancelled, tile, _decode_reporter(job), write=write)


def _vae_tile(job: _Job, latents: torch.Tensor) -> int | None:
    """The profile's tile, made smaller when the VRAM left after loading the VAE needs it (on CUDA)."""
    tile = job.settings.dit.vae_tile
    if job.device.type != "cuda":
        return tile
    h, w = latents.shape[-2:]
    fits = choose_tile_size(usable_vram(job.device) - VAE_DECODE_HEADROOM, h, w)
    return None if tile is None and fits >= max(h, w) else min(tile or fits, fits)


def _step_reporter(run: _Run, control: RunControl | None, total: int, clock: Callable[[], float] = time.monotonic):
    attempt = AttemptClock(clock)

    def on_step(done: int, n: int, seconds: float, clean_estimate) -> None:
        if not attempt.started:  # the first step of this attempt: steps before it came from a checkpoint
            attempt.begin(done_before=done - 1, seconds_ago=seconds)
        run.emit(event("step", i=done, n=n, seconds_per_step=round(seconds, 4),
                       eta_seconds=round(attempt.eta(done, n) or 0.0, 1)))
        if control is not None and control.preview_every_steps and control.preview_dir is not None:
            if done % control.preview_every_steps == 0 or done == n:
                image = latent_to_rgb(clean_estimate()[0, 0].cpu())
                path = write_png(image, Path(control.preview_dir) / f"preview-{done:04d}.png")
                run.emit(event("preview", path=str(path), step=done, kind="latent-pca"))

    return on_step


def _decode_reporter(job: _Job, clock: Callable[[], float] = time.monotonic) -> Callable[[int, int, int, int], None]:
    """`decode_progress` after each unit (a tile of a chunk; a chunk when untiled), then a stop check,
    so a cancel, pause or shutdown waits for one unit. A first event (done 0) gives the totals."""
    attempt = AttemptClock(clock)

    def on_unit(chunk: int, chunks: int, tile: int, tiles: int) -> None:
        total = chunks * tiles
        done = (chunk - 1) * tiles + tile if chunk else 0
        if not attempt.started:
            attempt.begin()
        eta = attempt.eta(done, total)
        job.run.emit(event("decode_progress", done=done, total=total, chunk=chunk, chunks=chunks, tile=tile,
                           tiles=tiles, eta_seconds=None if eta is None else round(eta, 1)))
        if 0 < done < total:
            job.check_stop(f"during the decode (chunk {chunk} of {chunks})")

    return on_unit


@torch.inference_mode()
def _decode(vae, latents: torch.Tensor, device, dtype, cancelled, tile_latents: int | None = None,
            on_unit: Callable[[int, int, int, int], None] | None = None, *, write: Callable[[Any], None]) -> int:
    """Decode in independent 17-frame chunks, tiled in space when the memory profile asks for it,
    reporting each unit to `on_unit(chunk, chunks, tile, tiles)` (which may stop the decode), and
    hand each finished piece to `write` as (n, H, W, 3) uint8 frames (in a reused buffer: `write`
    consumes them before it returns). Returns the number of frames."""
    from stepvideo.memory.tiling import plan_tiles, tiled_chunk_decoder

    latents = latents.to(device=device, dtype=dtype)
    h, w = latents.shape[-2:]
    tile = tile_latents if tile_latents and (h > tile_latents or w > tile_latents) else max(h, w)
    overlap = max(1, tile // 4)
    if on_unit is not None:
        on_unit(0, len(latents.split(vae.config.latent_chunk, dim=1)), 0, len(plan_tiles(h, w, tile, overlap)))
    chunk_decoder = tiled_chunk_decoder(vae, latents, tile, overlap, on_tile=on_unit, should_cancel=cancelled)
    frames, host = 0, None
    for piece in vae.iter_decode(latents, chunk_decoder=chunk_decoder, should_cancel=cancelled):
        if host is None:  # one uint8 chunk on the host, reused: nothing per chunk for malloc to keep
            host = torch.empty(vae.config.frames_per_chunk, *piece.shape[-2:], 3, dtype=torch.uint8)
        write(to_uint8_frames(piece[0], host))
        frames += piece.shape[1]
    return frames


def to_uint8_frames(piece: torch.Tensor, out: torch.Tensor | None = None) -> Any:
    """(n, 3, H, W) in [-1, 1] on any device → (n, H, W, 3) uint8 numpy on the host, like the official
    post-processing ((x + 1) · 127.5 in fp32, truncated). The arithmetic runs on the device (in place:
    `piece` is consumed), so only uint8 crosses, into `out` (a host buffer of ≥ n frames) when given."""
    scaled = piece.float().clamp_(-1.0, 1.0).add_(1.0).mul_(127.5).clamp_(0, 255)
    n, _, height, width = piece.shape
    target = torch.empty(n, height, width, 3, dtype=torch.uint8) if out is None else out[:n]
    target.copy_(scaled.permute(0, 2, 3, 1))  # the cast truncates, as numpy's astype(uint8) does
    return target.numpy()


def _fingerprint(request: GenerationRequest, roots: ModelRoots, image_sha256: str | None = None) -> dict[str, Any]:
    """What must match for a checkpoint to be resumed into this run."""
    fingerprint = {
        "prompt": request.full_prompt, "negative": request.effective_negative, "seed": request.seed,
        "steps": request.effective_steps, "cfg": request.effective_cfg, "shift": request.effective_shift,
        "size": [request.height, request.width, request.frames], "transformer": str(roots.transformer),
    }
    if image_sha256 is not None:
        fingerprint.update(image_sha256=image_sha256, motion=request.effective_motion)
    return fingerprint


def _metadata(job: _Job, seconds: float) -> dict[str, Any]:
    request, plan = job.request, job.settings.plan
    return {
        "app": "StepVideo Desktop", "app_version": __version__,
        "request": request.to_dict(),
        "resolved": {
            "steps": request.effective_steps, "cfg": request.effective_cfg, "shift": request.effective_shift,
            "negative_prompt": request.effective_negative, "positive_suffix": request.effective_suffix,
        },
        "seed": request.seed,
        "model": job.roots.describe(),
        "created": datetime.now().astimezone().isoformat(timespec="seconds"),
        "seconds": round(seconds, 3),
        "stage_seconds": {k: round(v, 3) for k, v in job.run.stage_seconds.items()},
        "memory": job.run.memory,
        "profile": job.settings.dit.to_dict(),
        "compute_dtype": job.compute.name,
        "predicted": None if plan is None else {
            "vram_bytes": plan.predicted_vram_bytes, "ram_bytes": plan.predicted_ram_bytes},
        **({} if job.source is None else {"source_image": {
            "file_name": job.source.path.name, "sha256": job.source_sha256, "motion": request.effective_motion,
            "width": job.source.width, "height": job.source.height, "latent": "posterior mean",
        }}),
    }
