"""Stage 2, DiT block throughput: one full-width block (random bf16 weights) at 544×992×204 (75,888
tokens, 397 caption tokens) — batch 2 as CFG-batched `resident` runs it, batch 1 with the FFN in
token chunks as the streamed profiles run it, and both again with cuDNN attention given priority
(`sdpa_kernel(..., set_priority=True)`) to decide whether it should be the default on this GPU.

FLOPs are counted analytically (matmuls + attention score/value products), so TFLOP/s compares
across implementations.
"""

from __future__ import annotations

import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from stepvideo.memory.profiles import PROFILES
from stepvideo.models.dit_block import StepVideoBlock
from stepvideo.models.layers import key_length_mask, rope_3d_tables

from .common import StageContext, allocator_figures, allocator_reset, build_random, first_line, synchronize

REAL = {"heads": 48, "head_dim": 128, "latent": (36, 34, 62), "text": 397, "warmup": 1, "iters": 2}
SMOKE = {"heads": 2, "head_dim": 32, "latent": (2, 4, 6), "text": 16, "warmup": 1, "iters": 1}
CUDNN_FIRST = [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
               SDPBackend.MATH]


def block_flops(batch: int, tokens: int, text: int, dim: int) -> dict[str, float]:
    """Forward FLOPs of one block (2 per multiply-add)."""
    linear = 2 * batch * tokens * dim * (3 * dim + dim + dim + dim + 8 * dim) + 2 * batch * text * dim * 2 * dim
    self_attention = 4 * batch * tokens * tokens * dim  # QKᵀ and PV over all heads
    cross_attention = 4 * batch * tokens * text * dim
    return {"self_attention": float(self_attention), "total": float(linear + self_attention + cross_attention)}


def timed(fn, device: torch.device, warmup: int, iters: int) -> float:
    """Mean seconds per call after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    synchronize(device)
    return (time.perf_counter() - start) / iters


def run(ctx: StageContext) -> None:
    ctx.require_device()
    shape = SMOKE if ctx.smoke else REAL
    dim = shape["heads"] * shape["head_dim"]
    frames, rows, cols = shape["latent"]
    tokens = frames * rows * cols
    chunk = PROFILES["low-vram"].ff_chunk_tokens if not ctx.smoke else max(1, tokens // 3)
    ctx.result.update(dim=dim, video_tokens=tokens, text_tokens=shape["text"], dtype=str(ctx.dtype), cases=[])
    block = build_random(lambda: StepVideoBlock(dim, shape["head_dim"]), ctx.device, ctx.dtype, seed=0)
    cos, sin = rope_3d_tables(frames, rows, cols, shape["head_dim"], ctx.dtype, ctx.device)
    cases = [("batch2", 2, None, False), ("batch1_ffn_chunked", 1, chunk, False),
             ("batch2_cudnn_first", 2, None, True), ("batch1_ffn_chunked_cudnn_first", 1, chunk, True)]
    for name, batch, ff_chunk, cudnn_first in cases:
        case = {"case": name, "batch": batch, "ff_chunk_tokens": ff_chunk, "cudnn_first": cudnn_first}
        try:
            case.update(_measure(ctx, block, shape, tokens, dim, cos, sin, batch, ff_chunk, cudnn_first))
            case["error"] = None
        except (RuntimeError, torch.OutOfMemoryError) as exc:
            case["error"] = first_line(exc)
        ctx.result["cases"].append(case)
        ctx.save()


def _measure(ctx, block, shape, tokens, dim, cos, sin, batch, ff_chunk, cudnn_first) -> dict:
    gen = torch.Generator(device=ctx.device).manual_seed(1)
    text = shape["text"]
    x = torch.randn(batch, tokens, dim, device=ctx.device, dtype=ctx.dtype, generator=gen)
    context = torch.randn(batch, text, dim, device=ctx.device, dtype=ctx.dtype, generator=gen)
    modulation = 0.1 * torch.randn(batch, 6 * dim, device=ctx.device, dtype=ctx.dtype, generator=gen)
    # CFG-like: the conditional row sees every caption token, the negative one fewer (a key mask);
    # one row alone has no mask, as in the model's forward.
    lengths = torch.tensor([text] + [max(1, text - 97)] * (batch - 1), device=ctx.device)
    key_mask = key_length_mask(lengths, text) if batch > 1 else None
    q = torch.randn(batch, shape["heads"], tokens, shape["head_dim"], device=ctx.device, dtype=ctx.dtype,
                    generator=gen)
    priority = sdpa_kernel(CUDNN_FIRST, set_priority=True) if cudnn_first else nullcontext()
    start = allocator_reset(ctx.device)
    base = torch.cuda.memory_allocated(ctx.device) if ctx.device.type == "cuda" else 0
    with priority, torch.inference_mode():
        block_s = timed(lambda: block(x, context, modulation, cos, sin, key_mask, ff_chunk), ctx.device,
                        shape["warmup"], shape["iters"])
        memory = allocator_figures(ctx.device, start)
        sdpa_s = timed(lambda: F.scaled_dot_product_attention(q, q, q), ctx.device, shape["warmup"], shape["iters"])
    flops = block_flops(batch, tokens, text, dim)
    peak = memory["peak_allocated_bytes"]
    return {
        "block_seconds": block_s,
        "block_tflops": flops["total"] / block_s / 1e12,
        "self_attention_seconds": sdpa_s,
        "self_attention_tflops": flops["self_attention"] / sdpa_s / 1e12,
        "flop_share_self_attention": flops["self_attention"] / flops["total"],
        "peak_activation_bytes": None if peak is None else peak - base,
        "alloc_retries": memory["alloc_retries"],
    }
