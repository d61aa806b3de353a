"""Flow-matching Euler sampler math (facts §5.1), as pure functions.

Convention of the published model: sigma runs 0 → 1, t = 0 is pure noise and t = 1 is clean data,
and the network predicts the velocity v = data − noise, so x(σ) = noise + σ·v.
"""

from __future__ import annotations

import torch


def shifted_sigmas(steps: int, shift: float) -> torch.Tensor:
    """The N+1 sigmas of an N-step run: s = linspace(1, 0), s ← shift·s / (1 + (shift−1)·s), σ = 1 − s."""
    if steps < 1:
        raise ValueError("steps must be ≥ 1")
    s = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float32)
    s = shift * s / (1.0 + (shift - 1.0) * s)
    return 1.0 - s


def timesteps(sigmas: torch.Tensor) -> torch.Tensor:
    """What the model is fed at each step (before the model's own ×1000): every sigma but the last."""
    return sigmas[:-1]


def model_timestep(t: torch.Tensor, batch: int, dtype: torch.dtype) -> torch.Tensor:
    """The official pipeline casts t to the compute dtype (bf16) *before* the DiT multiplies by 1000."""
    return t.reshape(1).expand(batch).to(dtype)


def euler_step(latents: torch.Tensor, velocity: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
    """x ← x + v·(σ_next − σ), in fp32 whatever the model's dtype."""
    return latents.float() + velocity.float() * (sigma_next - sigma).float()


def cfg_combine(velocity_batch: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance over a batch laid out as [cond, uncond]: v_u + g·(v_c − v_u)."""
    cond, uncond = velocity_batch.chunk(2)
    return uncond + scale * (cond - uncond)


def predicted_clean(latents: torch.Tensor, velocity: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """The data the current step points at: x + (1 − σ)·v (used for previews)."""
    return latents.float() + (1.0 - sigma.float()) * velocity.float()


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU generator, so a seed gives the same noise on any device. (The official code draws its
    noise from an unseeded generator: its --seed never reaches the noise. Ours does.)"""
    return torch.Generator(device="cpu").manual_seed(seed)


def initial_noise(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Gaussian noise in fp32 from `generator` (its state afterwards is what a checkpoint keeps)."""
    return torch.randn(shape, generator=generator, dtype=torch.float32)
