"""Stage 3, the production streamer under every profile.

A real-width DiT of a few blocks (6 by default) with random weights is built on the GPU (no
download), quantized to qint8 with the production helpers, and driven through the production
`BlockStreamer` and `StepVideoDiT.forward`, as each profile places it:

- `bf16-resident`: bf16, every block on the GPU, CFG rows as one batch of 2 (the baseline);
- `resident`: qint8, every block on the GPU, batch 2;
- `balanced`: qint8, N blocks resident (`--balanced-resident`, about the share a 24 GB card keeps),
  the rest streamed from pinned memory, CFG rows one at a time, FFN in chunks;
- `low-vram`: one block at a time from pinned memory, rows one at a time;
- `low-ram`: one block at a time from safetensors files through the mmap ring; the files are evicted
  from the page cache (posix_fadvise DONTNEED) before each step and deleted afterwards.

Each runs at 544×992×204 (75,888 tokens) and 544×992×17 (6,324 tokens, where streaming overhead
shows): one warm step, one timed step. Attention may use only flash or memory-efficient SDPA: an
error there means the math path (a 553 GB score matrix at full size) would have run.
"""

from __future__ import annotations

import gc
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from stepvideo.memory import planner
from stepvideo.memory import quantize as qz
from stepvideo.memory.offload import BlockStreamer, block_state, tensor_bytes, to_meta
from stepvideo.memory.profiles import PROFILES
from stepvideo.models.dit import DiTConfig, StepVideoDiT
from stepvideo.presets import latent_shape

from .common import (
    GiB,
    NvmlPeak,
    StageContext,
    allocator_figures,
    allocator_reset,
    build_random,
    evict_from_page_cache,
    first_line,
    page_cache_bytes,
    release_host_cache,
    reset_vm_hwm,
    synchronize,
    vm_hwm_bytes,
)
from .schema import blank

ALLOWED_ATTENTION = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]
SIZES = ((544, 992, 204), (544, 992, 17))  # 75,888 and 6,324 video tokens
SMOKE_LATENTS = ((3, 4, 6), (1, 2, 3))  # (frames, rows, cols) standing in for SIZES on CPU
BALANCED_CARD_BYTES = 24 * GiB
LLM_TOKENS, CLIP_TOKENS = 320, 77
VALID_LLM_TOKENS = (300, 120)  # the prompt row and the negative-prompt row
MIN_SECONDS_FOR_A_RUN = 15.0  # below this much stage time left, the remaining runs are skipped


@dataclass(frozen=True)
class RunSpec:
    name: str
    planner_profile: str
    quantization: str
    resident_blocks: int | None  # None: every block stays on the GPU (no streamer)
    offload: str
    cfg_batch: bool
    ff_chunk_tokens: int | None


def run_specs(blocks: int, balanced_resident: int, smoke: bool) -> list[RunSpec]:
    def from_profile(name: str, profile: str, quantization: str, resident: int | None) -> RunSpec:
        p = PROFILES[profile]
        chunk = p.ff_chunk_tokens
        if smoke and chunk is not None:
            chunk = 16  # tiny shapes: still exercise the chunked FFN
        return RunSpec(name, profile, quantization, resident, p.offload, p.cfg_batch, chunk)

    return [
        from_profile("bf16-resident", "resident", "none", None),
        from_profile("resident", "resident", "qint8", None),
        from_profile("balanced", "balanced", "qint8", min(balanced_resident, blocks)),
        from_profile("low-vram", "low-vram", "qint8", 1),
        from_profile("low-ram", "low-ram", "qint8", 1),
    ]


def run(ctx: StageContext) -> None:
    ctx.require_device()
    blocks = int(ctx.options.get("blocks", 6))
    config = (DiTConfig(num_attention_heads=2, attention_head_dim=32, caption_channels=(64, 32), num_layers=blocks)
              if ctx.smoke else DiTConfig(num_layers=blocks))
    specs = run_specs(blocks, int(ctx.options.get("balanced_resident", 3)), ctx.smoke)
    ctx.result.update(blocks=blocks, dim=config.inner_dim, dtype=str(ctx.dtype),
                      attention_backends=[b.name for b in ALLOWED_ATTENTION],
                      balanced_card_bytes=BALANCED_CARD_BYTES, runs=[], host_cache_release=None)
    for spec in specs:
        if ctx.time_left() < MIN_SECONDS_FOR_A_RUN:
            for size in SIZES:
                _append(ctx, _skipped(spec, size, "stage time ran out"))
            continue
        _run_profile(ctx, config, spec)
    ctx.save()


def _run_profile(ctx: StageContext, config: DiTConfig, spec: RunSpec) -> None:
    """Build the model for one profile, run both sizes on it, tear it down."""
    scratch = Path(tempfile.mkdtemp(prefix="gpu-acceptance-", dir=ctx.scratch))
    placed = None
    try:
        placed = _place(ctx, config, spec, scratch)
        for index, size in enumerate(SIZES):
            latent = SMOKE_LATENTS[index] if ctx.smoke else None
            try:
                record = _measure(ctx, config, spec, placed, size, latent)
            except (RuntimeError, torch.OutOfMemoryError) as exc:
                record = _skipped(spec, size, _explain(exc))
                _empty_cache(ctx)
            _append(ctx, record)
    except (RuntimeError, torch.OutOfMemoryError) as exc:  # placing failed: both sizes carry the error
        done = {r["size"] for r in ctx.result["runs"] if r["profile"] == spec.name}
        for size in SIZES:
            if _size_label(size) not in done:
                _append(ctx, _skipped(spec, size, _explain(exc)))
    finally:
        if placed is not None and placed.streamer is not None:
            placed.streamer.detach()
            close = getattr(placed.streamer.store, "close", None)
            if close is not None:
                close()
        del placed
        gc.collect()
        _empty_cache(ctx)
        if ctx.device.type == "cuda":  # the pinned slabs go back to the OS before the next profile
            ctx.result["host_cache_release"] = release_host_cache()
        shutil.rmtree(scratch, ignore_errors=True)  # low-ram's files: never left on the disk


def _append(ctx: StageContext, record: dict) -> None:
    ctx.result["runs"].append(record)
    _add_ratios(ctx.result["runs"])
    ctx.save()


def _empty_cache(ctx: StageContext) -> None:
    if ctx.device.type == "cuda":
        torch.cuda.empty_cache()


@dataclass
class Placed:
    model: StepVideoDiT
    streamer: BlockStreamer | None
    files: list[Path]  # low-ram's block files
    block_bytes: int  # one block as it sits on the device (quanto's inner tensors counted)


def _place(ctx: StageContext, config: DiTConfig, spec: RunSpec, scratch: Path) -> Placed:
    """The model on the device as the profile places it."""
    model = build_random(lambda: StepVideoDiT(config), ctx.device, ctx.dtype, seed=0)
    if spec.quantization != "none":
        qz.quantize_model(model, spec.quantization, qz.DIT_POLICY)
    model.ff_chunk_tokens = spec.ff_chunk_tokens
    blocks = model.transformer_blocks
    block_bytes = tensor_bytes(blocks[0])
    if spec.resident_blocks is None:
        return Placed(model, None, [], block_bytes)
    if spec.offload == "pinned":
        streamer = BlockStreamer.from_modules(blocks, ctx.device, spec.resident_blocks).attach()
        return Placed(model, streamer, [], block_bytes)
    # low-ram: one safetensors file per block (host RAM holds one block while writing), then the ring.
    from safetensors.torch import save_file

    key_files, files = {}, []
    for i, block in enumerate(blocks):
        path = scratch / f"block{i}.safetensors"
        state = {f"transformer_blocks.{i}.{k}": v.cpu() for k, v in block_state(block).items()}
        save_file(state, str(path))
        key_files.update(dict.fromkeys(state, path))
        files.append(path)
        to_meta(block)
        del state
    streamer = BlockStreamer.from_files(blocks, key_files, "transformer_blocks.", ctx.device,
                                        spec.resident_blocks, mode="mmap").attach()
    return Placed(model, streamer, files, block_bytes)


def _inputs(ctx: StageContext, config: DiTConfig, latent: tuple[int, int, int]):
    gen = torch.Generator(device=ctx.device).manual_seed(2)
    frames, rows, cols = latent
    llm_channels, clip_channels = config.caption_channels
    llm_tokens, clip_tokens = (16, 8) if ctx.smoke else (LLM_TOKENS, CLIP_TOKENS)
    valid = (12, 5) if ctx.smoke else VALID_LLM_TOKENS
    x = torch.randn(1, frames, config.in_channels, rows, cols, device=ctx.device, dtype=ctx.dtype, generator=gen)
    llm = torch.randn(2, llm_tokens, llm_channels, device=ctx.device, dtype=ctx.dtype, generator=gen)
    mask = (torch.arange(llm_tokens, device=ctx.device)[None, :] < torch.tensor(valid, device=ctx.device)[:, None])
    clip = torch.randn(2, clip_tokens, clip_channels, device=ctx.device, dtype=ctx.dtype, generator=gen)
    return x, llm, mask.long(), clip


def _step(model, inputs, cfg_batch: bool, dtype: torch.dtype) -> None:
    """The DiT forwards of one CFG-guided step, as stepvideo.engine.denoise runs them."""
    x, llm, mask, clip = inputs
    if cfg_batch:
        t = torch.full((2,), 0.5, device=x.device, dtype=dtype)
        model(torch.cat([x, x]), t, llm, mask, clip)
        return
    t = torch.full((1,), 0.5, device=x.device, dtype=dtype)
    for r in (0, 1):
        model(x, t, llm[r:r + 1], mask[r:r + 1], clip[r:r + 1])


def _measure(ctx, config, spec, placed: Placed, size, latent) -> dict:
    f, _, h, w = latent_shape(*size)
    latent = latent or (f, h, w)
    tokens = latent[0] * latent[1] * latent[2]
    blocks = config.num_layers
    streamer = placed.streamer
    inputs = _inputs(ctx, config, latent)
    evicted: dict = {}
    start = allocator_reset(ctx.device)
    hwm_reset = reset_vm_hwm()
    loads_at = [streamer.loads if streamer is not None else 0]
    with NvmlPeak(ctx.device) as nvml, sdpa_kernel(ALLOWED_ATTENTION), torch.inference_mode():
        times = []
        for _ in ("warm", "timed"):
            if placed.files:
                evicted = _evict(placed.files)  # each step reads its blocks from the disk
            synchronize(ctx.device)
            t0 = time.perf_counter()
            _step(placed.model, inputs, spec.cfg_batch, ctx.dtype)
            synchronize(ctx.device)
            times.append(time.perf_counter() - t0)
            loads_at.append(streamer.loads if streamer is not None else 0)
    return {
        **_identity(spec, size),
        "error": None,
        "tokens": tokens,
        "batch_per_forward": 2 if spec.cfg_batch else 1,
        "forwards_per_step": 1 if spec.cfg_batch else 2,
        "warm_seconds": times[0],
        "seconds_per_step": times[1],
        "seconds_per_block_per_row": times[1] / (blocks * 2),
        "ratio_to_bf16": None,
        **allocator_figures(ctx.device, start),
        **nvml.figures(),
        "vm_hwm_bytes": vm_hwm_bytes() if hwm_reset else None,
        "host_store_bytes": getattr(streamer.store, "host_bytes", None) if streamer is not None else 0,
        "block_bytes": placed.block_bytes,
        "h2d_bytes_per_step": (loads_at[2] - loads_at[1]) * placed.block_bytes,
        "block_loads": loads_at[2] - loads_at[0],
        "peak_materialised_blocks": streamer.peak_materialised if streamer is not None else blocks,
        "page_cache_evicted_bytes": evicted.get("dropped"),
        "predicted": predicted(spec, tokens, blocks, size, ctx),
    }


def _evict(files: list[Path]) -> dict:
    before = page_cache_bytes()
    ok = evict_from_page_cache(files)
    after = page_cache_bytes()
    return {"ok": ok, "dropped": None if before is None or after is None else before - after}


def predicted(spec: RunSpec, tokens: int, blocks: int, size, ctx: StageContext) -> dict:
    """The planner's figures: for this very configuration (this many blocks and tokens, this batch),
    and what `plan` says for the real 48-block model at this size."""
    batch = 2 if spec.cfg_batch else 1
    on_gpu = blocks if spec.resident_blocks is None else min(blocks, spec.resident_blocks + 1)
    act = planner.dit_activation_bytes(tokens, batch, spec.ff_chunk_tokens)
    live = planner.dit_nonblock_bytes() + on_gpu * planner.dit_block_bytes(spec.quantization) + act
    total = (torch.cuda.get_device_properties(ctx.device).total_memory if ctx.device.type == "cuda" else 80 * GiB)
    card = BALANCED_CARD_BYTES if spec.planner_profile == "balanced" else int(total)
    p = planner.plan(*size, profile=spec.planner_profile, quantization=spec.quantization,
                     gpu_bytes=card, ram_bytes=1 << 40)
    pred = p.predictions[spec.planner_profile]
    return {
        "activation_bytes": act,
        "live_bytes": live,
        "reserved_bytes": int(live * planner.ALLOCATOR_OVERHEAD),
        "planner_48_blocks": {"gpu_bytes": card, "resident_blocks": pred.resident_blocks,
                              "denoise_bytes": pred.stage_vram["denoise"], "vram_bytes": pred.vram_bytes,
                              "ram_bytes": pred.ram_bytes},
    }


def _identity(spec: RunSpec, size) -> dict:
    return {"profile": spec.name, "size": _size_label(size), "quantization": spec.quantization,
            "resident_blocks": spec.resident_blocks, "offload": spec.offload, "cfg_batch": spec.cfg_batch,
            "ff_chunk_tokens": spec.ff_chunk_tokens}


def _size_label(size) -> str:
    return "x".join(map(str, size))


def _skipped(spec: RunSpec, size, reason: str) -> dict:
    return blank("streamer", **_identity(spec, size), error=reason)


def _explain(exc: BaseException) -> str:
    text = first_line(exc)
    if "No available kernel" in str(exc) or "No viable backend" in str(exc):
        return f"flash/memory-efficient attention refused this shape: the math path would have run ({text})"
    return text


def _add_ratios(runs: list[dict]) -> None:
    """seconds per block per CFG row relative to the bf16 resident baseline at the same size."""
    base = {r["size"]: r.get("seconds_per_block_per_row") for r in runs if r["profile"] == "bf16-resident"}
    for r in runs:
        if r.get("seconds_per_block_per_row") and base.get(r["size"]):
            r["ratio_to_bf16"] = r["seconds_per_block_per_row"] / base[r["size"]]
