"""Throughput of one full-width Step-Video DiT block (random bf16 weights) → JSON on stdout.

Default shape: 544×992×204 video (latent 36×34×62 = 75,888 tokens), batch 2 (CFG), 397 text
tokens. FLOPs are counted analytically (matmuls + attention score/value products), so TFLOP/s
is comparable across implementations. Without CUDA it prints {"skipped": true, …} and exits 0.

    python benchmarks/dit_block_gpu.py [--ff-chunk-tokens 16384] [--iters 3]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from stepvideo.models.dit_block import StepVideoBlock  # noqa: E402
from stepvideo.models.layers import key_length_mask, rope_3d_tables  # noqa: E402


def block_flops(batch: int, tokens: int, text: int, dim: int) -> dict[str, float]:
    """Forward FLOPs of one block (2 per multiply-add)."""
    linear = 2 * batch * tokens * dim * (3 * dim + dim + dim + dim + 8 * dim) + 2 * batch * text * dim * 2 * dim
    self_attention = 4 * batch * tokens * tokens * dim  # QKᵀ and PV over all heads
    cross_attention = 4 * batch * tokens * text * dim
    return {
        "linear": float(linear),
        "self_attention": float(self_attention),
        "cross_attention": float(cross_attention),
        "total": float(linear + self_attention + cross_attention),
    }


def timed(fn, device: torch.device, warmup: int, iters: int) -> float:
    """Mean seconds per call after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    sync()
    return (time.perf_counter() - start) / iters


def random_block(dim: int, head_dim: int, device: torch.device, dtype: torch.dtype) -> StepVideoBlock:
    with torch.device("meta"):
        block = StepVideoBlock(dim, head_dim)
    block = block.to_empty(device=device)
    gen = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        for name, p in block.named_parameters():
            if p.ndim == 2 and "scale_shift_table" not in name:
                p.normal_(0.0, 1.0 / math.sqrt(p.shape[1]), generator=gen)
            elif name.endswith("weight"):
                p.fill_(1.0)
            else:
                p.normal_(0.0, 0.02, generator=gen)
    return block.to(dtype).eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=36)
    parser.add_argument("--rows", type=int, default=34)
    parser.add_argument("--cols", type=int, default=62)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--text", type=int, default=397, help="caption tokens (77 CLIP + up to 320 LLM)")
    parser.add_argument("--heads", type=int, default=48)
    parser.add_argument("--head-dim", type=int, default=128)
    parser.add_argument("--ff-chunk-tokens", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--device", default="cuda", help="cuda (default); cpu only for a smoke run")
    args = parser.parse_args(argv)

    if args.device == "cuda" and not torch.cuda.is_available():
        print(json.dumps({"benchmark": "dit_block_gpu", "skipped": True, "reason": "CUDA is not available"}))
        return 0
    device = torch.device(args.device)
    dtype = torch.bfloat16
    dim = args.heads * args.head_dim
    tokens = args.frames * args.rows * args.cols

    block = random_block(dim, args.head_dim, device, dtype)
    gen = torch.Generator(device=device).manual_seed(1)
    x = torch.randn(args.batch, tokens, dim, device=device, dtype=dtype, generator=gen)
    context = torch.randn(args.batch, args.text, dim, device=device, dtype=dtype, generator=gen)
    modulation = 0.1 * torch.randn(args.batch, 6 * dim, device=device, dtype=dtype, generator=gen)
    # CFG-like: the conditional prompt uses every caption token, the negative one fewer.
    lengths = torch.tensor([args.text] + [max(77, args.text - 97)] * (args.batch - 1), device=device)
    key_mask = key_length_mask(lengths, args.text)
    cos, sin = rope_3d_tables(args.frames, args.rows, args.cols, args.head_dim, dtype, device)

    def run_block():
        return block(x, context, modulation, cos, sin, key_mask, args.ff_chunk_tokens)

    q = torch.randn(args.batch, args.heads, tokens, args.head_dim, device=device, dtype=dtype, generator=gen)

    def run_self_sdpa():
        return F.scaled_dot_product_attention(q, q, q)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    base_memory = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
    with torch.inference_mode():
        block_s = timed(run_block, device, args.warmup, args.iters)
        peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
        sdpa_s = timed(run_self_sdpa, device, args.warmup, args.iters)

    flops = block_flops(args.batch, tokens, args.text, dim)
    result = {
        "benchmark": "dit_block_gpu",
        "skipped": False,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "dtype": "bfloat16",
        "batch": args.batch,
        "video_tokens": tokens,
        "text_tokens": args.text,
        "dim": dim,
        "ff_chunk_tokens": args.ff_chunk_tokens,
        "block_seconds": round(block_s, 4),
        "block_tflops": round(flops["total"] / block_s / 1e12, 1),
        "block_tflop": round(flops["total"] / 1e12, 2),
        "self_attention_sdpa_seconds": round(sdpa_s, 4),
        "self_attention_sdpa_tflops": round(flops["self_attention"] / sdpa_s / 1e12, 1),
        "flop_share_self_attention": round(flops["self_attention"] / flops["total"], 3),
        "peak_activation_gib": round((peak - base_memory) / 2**30, 2),
        "estimated_step_seconds_48_blocks": round(48 * block_s, 1),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
