"""The denoising loop: CFG-batched Euler steps with cancel, pause, checkpoints and previews."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from stepvideo.engine import scheduler
from stepvideo.errors import Cancelled, Paused

log = logging.getLogger(__name__)


@dataclass
class RunControl:
    """How a run is steered from outside: pause, checkpoints and previews (all optional)."""

    should_pause: Callable[[], bool] | None = None
    checkpoints: Any | None = None  # stepvideo.jobs.checkpoints.CheckpointStore
    checkpoint_every_steps: int = 5
    checkpoint_every_seconds: float = 60.0
    preview_every_steps: int = 0
    preview_dir: Path | None = None


@dataclass
class DenoisePlan:
    steps: int
    cfg: float
    shift: float
    seed: int
    latent_shape: tuple[int, ...]  # (1, F, C, h, w)
    dtype: torch.dtype
    cfg_batch: bool = True  # cond and uncond in one forward (False: one after the other, half the activations)
    fingerprint: dict[str, Any] = field(default_factory=dict)  # what a checkpoint must match


def _start_state(plan: DenoisePlan, control: RunControl | None) -> tuple[int, torch.Tensor, torch.Tensor]:
    """(first step, latents, rng state): from a matching checkpoint, else seeded noise."""
    generator = scheduler.seeded_generator(plan.seed)
    noise = scheduler.initial_noise(plan.latent_shape, generator)
    rng_state = generator.get_state()
    if control is not None and control.checkpoints is not None:
        saved = control.checkpoints.load()
        if saved is not None:
            if saved.meta.get("fingerprint") == plan.fingerprint and tuple(saved.latents.shape) == plan.latent_shape:
                log.info("resuming from the checkpoint at step %d", saved.step)
                return saved.step, saved.latents, saved.rng_state
            log.warning("ignoring a checkpoint made for different settings")
    # The official pipeline starts from bf16 noise; keep that rounding.
    return 0, noise.to(plan.dtype), rng_state


@torch.inference_mode()
def _velocity(dit, x, sigma, llm_hidden, llm_mask, clip_hidden, plan: DenoisePlan, use_cfg: bool, device):
    """The guided velocity at one step. With CFG the rows are [cond, uncond], either as one batch of
    two or as two batches of one; the math is the same, the second needs half the activations."""
    if not use_cfg:
        t = scheduler.model_timestep(sigma, 1, plan.dtype).to(device)
        return dit(x, t, llm_hidden, llm_mask, clip_hidden)
    if plan.cfg_batch:
        t = scheduler.model_timestep(sigma, 2, plan.dtype).to(device)
        return scheduler.cfg_combine(dit(torch.cat([x, x]), t, llm_hidden, llm_mask, clip_hidden), plan.cfg)
    t = scheduler.model_timestep(sigma, 1, plan.dtype).to(device)
    rows = [dit(x, t, llm_hidden[r:r + 1], llm_mask[r:r + 1], clip_hidden[r:r + 1]) for r in (0, 1)]
    return scheduler.cfg_combine(torch.cat(rows), plan.cfg)


def denoise(
    dit: torch.nn.Module,
    text,  # conditioning.TextConditioning with rows [cond, uncond]
    plan: DenoisePlan,
    device: torch.device,
    on_step: Callable[[int, int, float, Callable[[], torch.Tensor]], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    control: RunControl | None = None,
) -> torch.Tensor:
    """Run the remaining steps and return the final fp32 latents on the CPU.

    `on_step(done, total, seconds, clean_estimate)` is called after every step; `clean_estimate()` gives
    the predicted clean latents on demand (previews), so steps without a preview pay nothing.
    """
    sigmas = scheduler.shifted_sigmas(plan.steps, plan.shift)
    start, latents, rng_state = _start_state(plan, control)
    use_cfg = plan.cfg > 1.0
    rows = slice(None) if use_cfg else slice(0, 1)
    llm_hidden, llm_mask, clip_hidden = text.llm_hidden[rows], text.llm_mask[rows], text.clip_hidden[rows]
    latents = latents.to(device)
    last_checkpoint = time.monotonic()

    def save(step: int) -> None:
        nonlocal last_checkpoint
        if control is not None and control.checkpoints is not None:
            control.checkpoints.save(step, latents.cpu(), rng_state, {"fingerprint": plan.fingerprint})
            last_checkpoint = time.monotonic()

    for i in range(start, plan.steps):
        if should_cancel is not None and should_cancel():
            raise Cancelled(f"cancelled before step {i + 1}/{plan.steps}")
        if control is not None and control.should_pause is not None and control.should_pause():
            save(i)
            raise Paused(f"paused at step {i}/{plan.steps}; it resumes from there")
        began = time.monotonic()
        velocity = _velocity(dit, latents.to(plan.dtype), sigmas[i], llm_hidden, llm_mask, clip_hidden,
                             plan, use_cfg, device)
        sigma, sigma_next = sigmas[i].to(device), sigmas[i + 1].to(device)
        previous = latents
        latents = scheduler.euler_step(latents, velocity, sigma, sigma_next)

        def clean_estimate(x=previous, v=velocity, s=sigma) -> torch.Tensor:
            return scheduler.predicted_clean(x, v, s)

        done = i + 1
        # The last step is always kept: a stop or a crash during the decode then resumes at the decode.
        if control is not None and (
            done == plan.steps
            or done % max(1, control.checkpoint_every_steps) == 0
            or time.monotonic() - last_checkpoint >= control.checkpoint_every_seconds
        ):
            save(done)
        if on_step is not None:
            on_step(done, plan.steps, time.monotonic() - began, clean_estimate)
    return latents.float().cpu()
