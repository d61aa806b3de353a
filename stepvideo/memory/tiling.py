"""Spatially tiled VAE decode: a pure tile planner, a VRAM-driven tile-size choice, and the executor.

The planner works in latent units (1 latent = 16 pixels). Tiles overlap by `overlap` latents and are
cross-faded with linear ramps over the overlap in pixel space; the weights of all tiles covering a
pixel sum to exactly 1. Tiling is an approximation of the untiled decode: the VAE's per-frame
GroupNorm statistics and its mid-block attention see only the tile, and pixels near a tile edge see
zero padding instead of their neighbours. The overlap and the ramps hide most of that.

Time needs no tiling: the decoder already works on independent 3-latent (17-frame) chunks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import Cancelled, InvalidRequest, OutOfMemory

PIXELS_PER_LATENT = 16

# Peak decode activation memory of one 17-frame chunk, in elements of the compute dtype. Measured on
# the meta device with benchmarks/vae_decode_memory.py (live-storage tracking of this decoder at the
# published width, bf16): the convolution part peaks in the last two levels (256/128 channels at
# full resolution, 20 frames before the causal crop) at ~13,350 elements per output pixel (one
# pixel = one position of the 16h × 16w frame, all 17 frames counted). The mid-block attention
# runs over L = 5 · 2h · 2w tokens; if the GPU falls back to the math SDPA kernel it holds ~2.1 L²
# scores (measured: 20.4 GiB for a 34×62 tile instead of 13.4 GiB without that term), so the
# estimate counts it. SAFETY_MARGIN covers cuDNN workspaces and allocator fragmentation.
CONV_ELEMENTS_PER_PIXEL = 13_500
ATTENTION_SCORE_BUFFERS = 2.2
SAFETY_MARGIN = 1.25
MIN_TILE = 4  # latents; smaller tiles are mostly padding artefacts


@dataclass(frozen=True)
class Span:
    """A tile's extent along one axis: [start, stop) in latents, and its pixel blend weights."""

    start: int
    stop: int
    weights: tuple[float, ...]  # one per pixel of the span (length = 16 · (stop − start))


@dataclass(frozen=True)
class Tile:
    y: Span
    x: Span


def plan_axis(length: int, tile: int, overlap: int, scale: int = PIXELS_PER_LATENT) -> list[Span]:
    """Spans of `tile` latents stepping by tile − overlap, the last one flush with the end.

    Each span's weight ramps linearly up over its overlap with the previous span and down over its
    overlap with the next one; the weights are then normalised so they sum to 1 at every pixel.
    """
    if length < 1:
        raise InvalidRequest(f"tile planner: length must be at least 1 latent, got {length}")
    if tile < 1 or not 0 <= overlap < tile:
        raise InvalidRequest(f"tile planner: need tile >= 1 and 0 <= overlap < tile; got tile={tile}, overlap={overlap}")
    if tile >= length:
        return [Span(0, length, (1.0,) * (length * scale))]
    starts = list(range(0, length - tile, tile - overlap)) + [length - tile]
    if len(starts) > 1 and starts[-1] == starts[-2]:
        starts.pop()
    bounds = [(s, s + tile) for s in starts]
    raw = []
    for i, (start, stop) in enumerate(bounds):
        ramp_in = (bounds[i - 1][1] - start) * scale if i > 0 else 0
        ramp_out = (stop - bounds[i + 1][0]) * scale if i + 1 < len(bounds) else 0
        n = (stop - start) * scale
        w = []
        for p in range(n):
            v = 1.0
            if ramp_in:
                v = min(v, (p + 0.5) / ramp_in)
            if ramp_out:
                v = min(v, (n - p - 0.5) / ramp_out)
            w.append(v)
        raw.append(w)
    total = [0.0] * (length * scale)
    for (start, _), w in zip(bounds, raw):
        for p, v in enumerate(w):
            total[start * scale + p] += v
    return [
        Span(start, stop, tuple(v / total[start * scale + p] for p, v in enumerate(w)))
        for (start, stop), w in zip(bounds, raw)
    ]


def plan_tiles(latent_h: int, latent_w: int, tile: int | tuple[int, int], overlap: int) -> list[Tile]:
    """The grid of tiles (row-major). Weights are products of the per-axis weights, so they also sum to 1."""
    tile_h, tile_w = (tile, tile) if isinstance(tile, int) else tile
    rows = plan_axis(latent_h, tile_h, min(overlap, max(tile_h - 1, 0)))
    cols = plan_axis(latent_w, tile_w, min(overlap, max(tile_w - 1, 0)))
    return [Tile(y, x) for y in rows for x in cols]


def estimate_tile_bytes(tile_h: int, tile_w: int, dtype_bytes: int = 2) -> int:
    """Estimated peak decode activation bytes for one 17-frame chunk of a tile_h × tile_w latent tile."""
    pixels = tile_h * tile_w * PIXELS_PER_LATENT**2
    tokens = 5 * (2 * tile_h) * (2 * tile_w)  # mid-block attention sequence (t=5 at 2× latent size)
    elements = pixels * CONV_ELEMENTS_PER_PIXEL + ATTENTION_SCORE_BUFFERS * tokens**2
    return math.ceil(elements * dtype_bytes * SAFETY_MARGIN)


def choose_tile_size(vram_budget_bytes: int, latent_h: int, latent_w: int, dtype_bytes: int = 2) -> int:
    """The largest square tile (latents) whose estimated decode peak fits the budget.

    Returns max(latent_h, latent_w) when the whole frame fits (no tiling needed). Raises OutOfMemory
    when not even a MIN_TILE tile fits.
    """
    if latent_h < 1 or latent_w < 1:
        raise InvalidRequest(f"choose_tile_size: latent size must be positive, got {latent_h}x{latent_w}")
    if estimate_tile_bytes(latent_h, latent_w, dtype_bytes) <= vram_budget_bytes:
        return max(latent_h, latent_w)
    # The estimate grows faster than tile² (attention), so this square root is an upper bound.
    tile = min(math.isqrt(max(vram_budget_bytes, 0) // estimate_tile_bytes(1, 1, dtype_bytes)), max(latent_h, latent_w))
    while tile > 0 and estimate_tile_bytes(tile, tile, dtype_bytes) > vram_budget_bytes:
        tile -= 1
    if tile < MIN_TILE:
        need = estimate_tile_bytes(MIN_TILE, MIN_TILE, dtype_bytes)
        raise OutOfMemory(
            f"VAE decode needs at least {need / 2**30:.2f} GiB of free VRAM for the smallest tile; "
            f"{vram_budget_bytes / 2**30:.2f} GiB available"
        )
    return tile


def tiled_decode(
    vae,
    latents,
    tile: int | tuple[int, int] = 32,
    overlap: int = 8,
    *,
    on_chunk: Callable[[int, int], None] | None = None,
    on_tile: Callable[[int, int, int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
):
    """`vae.decode` with every 17-frame chunk decoded tile by tile and cross-faded in fp32.

    Same output contract as `VideoVAE.decode`: (B, T/3·17, C, 16h, 16w) in [-1, 1], chunk boundaries
    blended. `on_chunk(done, total)` runs after each chunk; `on_tile` and `should_cancel` as in
    `tiled_chunk_decoder`. To write the video as it comes instead of holding it whole, pass
    `tiled_chunk_decoder(...)` to `vae.iter_decode`.
    """
    vae.check_latents(latents)
    decoder = tiled_chunk_decoder(vae, latents, tile, overlap, on_tile=on_tile, should_cancel=should_cancel)
    return vae.decode(latents, chunk_decoder=decoder, on_chunk=on_chunk, should_cancel=should_cancel)


def tiled_chunk_decoder(
    vae,
    latents,
    tile: int | tuple[int, int],
    overlap: int,
    *,
    on_tile: Callable[[int, int, int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> Callable:
    """A chunk decoder for `vae.decode`/`vae.iter_decode` that decodes each 17-frame chunk tile by
    tile and cross-fades the tiles in fp32 (the plain `decode_chunk` when one tile covers the frame).

    `on_tile(chunk, chunks, tile, tiles)` (1-based, the unit just decoded) runs after each tile, with
    tile 1 of 1 when one tile covers the frame. `should_cancel()` is checked before every tile after
    the first (the VAE checks before each chunk) and raises `Cancelled`, so a stop waits for one
    tile, not for a whole chunk.
    """
    import torch

    tiles = plan_tiles(latents.shape[-2], latents.shape[-1], tile, overlap)
    chunks = len(latents.split(vae.config.latent_chunk, dim=1))
    chunk_index = 0

    def weight_map(tile_: Tile, device) -> torch.Tensor:
        wy = torch.tensor(tile_.y.weights, dtype=torch.float32, device=device)
        wx = torch.tensor(tile_.x.weights, dtype=torch.float32, device=device)
        return wy[:, None] * wx[None, :]

    def decode_chunk_tiled(chunk: torch.Tensor) -> torch.Tensor:
        nonlocal chunk_index
        chunk_index += 1
        if len(tiles) == 1:
            frames = vae.decode_chunk(chunk)
            if on_tile is not None:
                on_tile(chunk_index, chunks, 1, 1)
            return frames
        s = PIXELS_PER_LATENT
        acc = None
        for number, t in enumerate(tiles, start=1):
            if number > 1 and should_cancel is not None and should_cancel():  # vae.decode checks the first
                raise Cancelled("VAE decode cancelled")
            piece = vae.decode_chunk(chunk[..., t.y.start:t.y.stop, t.x.start:t.x.stop])
            if acc is None:
                acc = torch.zeros(*piece.shape[:3], chunk.shape[-2] * s, chunk.shape[-1] * s,
                                  dtype=torch.float32, device=piece.device)
                out_dtype = piece.dtype
            region = acc[..., t.y.start * s:t.y.stop * s, t.x.start * s:t.x.stop * s]
            region.addcmul_(piece.float(), weight_map(t, piece.device))
            del piece
            if on_tile is not None:
                on_tile(chunk_index, chunks, number, len(tiles))
        return acc.to(out_dtype)

    return decode_chunk_tiled
