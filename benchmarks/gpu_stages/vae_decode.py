"""Stage 4, VAE decode of one 17-frame chunk at 544×992 (random weights at the published width):
tiled as `low-vram` tiles it, then untiled, each with its peak memory against the tile estimate the
planner uses (stepvideo/memory/tiling.py).

The untiled decode feeds Conv3d inputs of more than 2³¹ elements (256 channels × 20 frames × 544 ×
992 at the top level). A 32-bit index overflow there would not raise but write garbage, so a few
output positions of every such convolution — the last one, whose window reads the input's last
elements, among them — are recomputed by hand and compared.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from stepvideo.memory.profiles import PROFILES
from stepvideo.memory.tiling import estimate_tile_bytes, tiled_decode
from stepvideo.models.vae import VAEConfig, VideoVAE

from .common import StageContext, allocator_figures, allocator_reset, build_random, first_line, synchronize
from .schema import blank

INT32_LIMIT = 2**31
LATENT = (3, 34, 62)  # one chunk of 544×992: (latent frames, rows, cols)
SMOKE_LATENT = (3, 2, 4)
SPOT_CHECKS = 4  # output positions recomputed per checked convolution
SPOT_TOLERANCE = 2e-2  # relative to the sum of |terms|: bf16 inputs, fp32 accumulation


def run(ctx: StageContext) -> None:
    ctx.require_device()
    frames, rows, cols = SMOKE_LATENT if ctx.smoke else LATENT
    config = VAEConfig.tiny() if ctx.smoke else VAEConfig()
    tile = 3 if ctx.smoke else PROFILES["low-vram"].vae_tile  # smoke: 2 tiles across
    ctx.result.update(latent=[frames, config.z_channels, rows, cols], dtype=str(ctx.dtype), cases=[])
    vae = build_random(lambda: VideoVAE(config), ctx.device, ctx.dtype, seed=3)
    gen = torch.Generator(device=ctx.device).manual_seed(4)
    latents = torch.randn(1, frames, config.z_channels, rows, cols, device=ctx.device, dtype=ctx.dtype, generator=gen)
    # Smoke shapes never reach 2³¹; checking every convolution there keeps the check itself tested.
    threshold = 1 if ctx.smoke else INT32_LIMIT
    for name, case_tile in (("tiled", tile), ("untiled", None)):
        overlap = None if case_tile is None else max(1, case_tile // 4)  # as the pipeline tiles
        case = blank("vae_decode", case=name, tile=case_tile, overlap=overlap)
        try:
            case.update(_decode(ctx, vae, latents, case_tile, overlap, threshold))
        except (RuntimeError, torch.OutOfMemoryError) as exc:
            case["error"] = first_line(exc)
            if ctx.device.type == "cuda":
                torch.cuda.empty_cache()
        ctx.result["cases"].append(case)
        ctx.save()


def _decode(ctx: StageContext, vae: VideoVAE, latents: torch.Tensor, tile, overlap, threshold: int) -> dict:
    checker = Conv3dChecker(threshold)
    handles = [m.register_forward_hook(checker) for m in vae.modules() if isinstance(m, nn.Conv3d)]
    rows, cols = latents.shape[-2:]
    start = allocator_reset(ctx.device)
    base = torch.cuda.memory_allocated(ctx.device) if ctx.device.type == "cuda" else 0
    try:
        t0 = time.perf_counter()
        with torch.inference_mode():
            video = vae.decode(latents) if tile is None else tiled_decode(vae, latents, tile=tile, overlap=overlap)
        synchronize(ctx.device)
        seconds = time.perf_counter() - t0
    finally:
        for h in handles:
            h.remove()
    memory = allocator_figures(ctx.device, start)
    estimate = estimate_tile_bytes(min(tile or rows, rows), min(tile or cols, cols))
    peak = None if memory["peak_allocated_bytes"] is None else memory["peak_allocated_bytes"] - base
    return {
        "error": None,
        "seconds": seconds,
        **memory,
        "peak_allocated_bytes": peak,  # above what the weights and latents already held
        "estimate_bytes": estimate,
        "peak_over_estimate": None if peak is None else peak / estimate,
        "largest_conv3d_input_elements": checker.largest,
        "conv3d_over_2_31": checker.largest >= INT32_LIMIT,
        "conv3d_spot_checks": checker.checked,
        "conv3d_spot_check_max_error": checker.max_error,
        "output_finite": bool(torch.isfinite(video).all()),
    }


class Conv3dChecker:
    """Forward hook: notes the largest Conv3d input; for inputs of at least `threshold` elements,
    recomputes a few output values from the input window and the weights, and raises if one is off."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.largest = 0
        self.checked = 0
        self.max_error = 0.0

    def __call__(self, conv: nn.Conv3d, args, output: torch.Tensor) -> None:
        x = args[0]
        self.largest = max(self.largest, x.numel())
        if x.numel() < self.threshold or conv.groups != 1 or tuple(conv.dilation) != (1, 1, 1):
            return  # (the VAE has neither grouped nor dilated convolutions; the formula below assumes so)
        gen = torch.Generator().manual_seed(self.checked)
        _, _, t_out, h_out, w_out = output.shape
        positions = [(t_out - 1, h_out - 1, w_out - 1), (0, 0, 0)]
        positions += [tuple(int(torch.randint(n, (1,), generator=gen)) for n in (t_out, h_out, w_out))
                      for _ in range(SPOT_CHECKS - 2)]
        for t, y, x_ in positions:
            co = int(torch.randint(conv.out_channels, (1,), generator=gen))
            error = _relative_error(conv, x, output, co, t, y, x_)
            self.max_error = max(self.max_error, error)
            if error > SPOT_TOLERANCE:
                raise RuntimeError(f"Conv3d over {x.numel():,} input elements computed a wrong value at "
                                   f"(c={co}, t={t}, y={y}, x={x_}): relative error {error:.3g}")
        self.checked += 1


def _relative_error(conv: nn.Conv3d, x: torch.Tensor, out: torch.Tensor, co: int, t: int, y: int, x_: int) -> float:
    """|out − Σ w·x| / Σ|w·x| at one output position, in fp32 (groups=1, dilation 1 as in the VAE)."""
    kt, kh, kw = conv.kernel_size
    st, sh, sw = conv.stride
    _, ph, pw = conv.padding
    t0, y0, x0 = t * st, y * sh - ph, x_ * sw - pw
    window = torch.zeros(x.shape[1], kt, kh, kw, device=x.device, dtype=torch.float32)
    ys, xs = slice(max(y0, 0), min(y0 + kh, x.shape[3])), slice(max(x0, 0), min(x0 + kw, x.shape[4]))
    window[:, :, ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0] = x[0, :, t0:t0 + kt, ys, xs].float()
    terms = window * conv.weight[co].float()
    expected = terms.sum() + (conv.bias[co].float() if conv.bias is not None else 0.0)
    scale = float(terms.abs().sum()) + 1e-6
    return abs(float(out[0, co, t, y, x_].float()) - float(expected)) / scale
