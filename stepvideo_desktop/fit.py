"""What the composer shows under "Memory": the planner's predicted peaks for this machine, as a fit light."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FitEstimate:
    level: str  # "ok" (green), "tight" (amber), "no" (red: the buttons are disabled)
    text: str  # e.g. "peak VRAM 14.8 / 24 GB · RAM 31 / 64 GB"
    advice: str = ""  # what would fit, when level is "no"
    profile: str = ""  # the profile the planner picked (for "auto")


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f}"


def estimate(request, gpu_free_bytes: int | None, ram_available_bytes: int | None = None) -> FitEstimate:
    """The planner's verdict for this request on this machine, worded for the Memory card.

    Without an NVIDIA GPU nothing is refused: the planner's figures are for the published 30B model,
    and the worker can still run small test models on the CPU.
    """
    from stepvideo.memory import planner

    if not gpu_free_bytes:
        p = planner.plan_request(request.replace(profile="auto"), gpu_bytes=0, ram_bytes=ram_available_bytes)
        low = min(p.predictions.values(), key=lambda pred: pred.vram_bytes)
        return FitEstimate(
            "tight", f"No NVIDIA GPU found. The full model needs at least {_gb(low.vram_bytes)} GB of VRAM "
                     f"(profile {low.profile}); without a GPU only small test models can run.", profile=p.profile)
    p = planner.plan_request(request, gpu_bytes=gpu_free_bytes, ram_bytes=ram_available_bytes)
    text = (f"peak VRAM {_gb(p.predicted_vram_bytes)} / {_gb(p.gpu_bytes)} GB free · "
            f"RAM {_gb(p.predicted_ram_bytes)} / {_gb(p.ram_bytes)} GB available")
    if request.profile == "auto":
        text += f" · profile {p.profile}, {p.quantization}"
    if not p.fits:
        advice = ("Would fit: " + p.suggestions[0].describe()) if p.suggestions else "Nothing fits this machine's memory."
        return FitEstimate("no", text, advice=advice, profile=p.profile)
    tight = p.predicted_vram_bytes > 0.9 * p.gpu_bytes or p.predicted_ram_bytes > 0.9 * p.ram_bytes
    return FitEstimate("tight" if tight else "ok", text, profile=p.profile)
