"""Small building blocks: RMSNorm (DiT and Step-LLM), 3-D RoPE, timestep embedding, attention.

The math lives in pure functions so tests can check each against its formula; modules only own
parameters. Precision choices mirror the official Step-Video code so that bf16 results stay
bit-close to it (see the notes on each function).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


# --------------------------------------------------------------------------- RMSNorm
def rms_norm(x: torch.Tensor, weight: torch.Tensor | None, eps: float = 1e-6) -> torch.Tensor:
    """RMSNorm over the last dim, normalised in fp32 and cast back *before* the weight multiply.

    The order (fp32 normalise → cast → multiply by weight in the activation dtype) is what the
    published weights were trained with; doing the weight multiply in fp32 changes bf16 results.
    The official DiT and Step-LLM use one RMSNorm class with this math, so ours serves both.
    """
    x32 = x.to(torch.promote_types(x.dtype, torch.float32))  # fp64 stays fp64 (tests)
    normed = (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)
    del x32
    return normed if weight is None else normed * weight


class RMSNorm(nn.Module):
    """Learnable-scale RMSNorm (state-dict key `weight`)."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(x, self.weight, self.eps)


# --------------------------------------------------------------------------- timestep embedding
def timestep_sinusoid(
    timesteps: torch.Tensor, channels: int = 256, max_period: float = 10000.0
) -> torch.Tensor:
    """Sinusoidal embedding, fp32, [cos | sin] order (flip_sin_to_cos=True, freq shift 0).

    frequency_i = exp(-ln(max_period) · i / (channels/2)), i = 0 … channels/2 - 1.
    """
    if timesteps.ndim != 1:
        raise ValueError(f"timesteps must be 1-D (batch,), got shape {tuple(timesteps.shape)}")
    half = channels // 2
    exponent = -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=timesteps.device) / half
    angles = timesteps.float()[:, None] * torch.exp(exponent)[None, :]
    emb = torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)
    if channels % 2:
        emb = F.pad(emb, (0, 1))
    return emb


# --------------------------------------------------------------------------- 3-D RoPE
def rope_split(head_dim: int) -> tuple[int, int, int]:
    """Channel split of one head between the frame, row and column axes (64/32/32 for 128)."""
    return head_dim // 2, head_dim // 4, head_dim // 4


def rope_1d_table(
    positions: int, dim: int, dtype: torch.dtype, device: torch.device | str | None = None, base: float = 1e4
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables (positions, dim) for one RoPE sub-band, NeoX layout (angles duplicated).

    Quirk kept on purpose: the fp32 angle table is cast to `dtype` (bf16 in production) BEFORE
    cos/sin, exactly as the official code does; the published weights saw these rounded angles.
    """
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, device=device).float() / dim))
    pos = torch.arange(positions, device=device, dtype=torch.float32)
    angles = torch.outer(pos, inv_freq).to(dtype)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def rope_3d_tables(
    frames: int,
    rows: int,
    cols: int,
    head_dim: int,
    dtype: torch.dtype,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token cos/sin tables (frames·rows·cols, head_dim) for frame-major token order.

    Built once per forward and shared by all blocks (the official code recomputes per layer).
    """
    d_f, d_h, d_w = rope_split(head_dim)
    length = max(frames, rows, cols)
    tables = [rope_1d_table(length, d, dtype, device) for d in (d_f, d_h, d_w)]
    f_idx = torch.arange(frames, device=device).repeat_interleave(rows * cols)
    h_idx = torch.arange(rows, device=device).repeat_interleave(cols).repeat(frames)
    w_idx = torch.arange(cols, device=device).repeat(frames * rows)
    cos = torch.cat([t[0][idx] for t, idx in zip(tables, (f_idx, h_idx, w_idx))], dim=-1)
    sin = torch.cat([t[1][idx] for t, idx in zip(tables, (f_idx, h_idx, w_idx))], dim=-1)
    return cos, sin


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def apply_rope_3d(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x (B, L, heads, head_dim) with per-token tables (L, head_dim).

    rotate_half acts on each sub-band (frame/row/col) separately, never across them.
    """
    split = rope_split(x.shape[-1])
    rotated = torch.cat([_rotate_half(part) for part in torch.split(x, split, dim=-1)], dim=-1)
    cos = cos[None, :, None, :]
    sin = sin[None, :, None, :]
    return x * cos + rotated * sin


# --------------------------------------------------------------------------- q/k norm in place
# Heads per pass of `rms_norm_rope_`. Its temporaries (the fp32 copy, the RoPE products) come to about
# 5 bf16 copies of the heads in one pass: 5·4/48 ≈ 0.42 of a (B, L, 6144) tensor at the published
# width, below the ~1 unit of headroom under the block's peak (memory/planner.py).
QK_HEADS_PER_PASS = 4


def rms_norm_rope_(
    x: torch.Tensor,
    weight: torch.Tensor | None,
    eps: float = 1e-6,
    cos: torch.Tensor | None = None,
    sin: torch.Tensor | None = None,
    heads_per_pass: int = QK_HEADS_PER_PASS,
) -> torch.Tensor:
    """x (B, L, heads, head_dim) ← apply_rope_3d(rms_norm(x, weight, eps), cos, sin), IN PLACE, a few
    heads at a time (no RoPE when the tables are None). Returns x.

    The same ops in the same order as the out-of-place functions on each head group (RMSNorm reduces
    over head_dim only, RoPE is per element), so the result is bit-identical; but the fp32 copy and
    the RoPE temporaries never cover more than `heads_per_pass` heads. x may be a strided view (q or
    k inside the fused qkv projection), written through without a contiguous copy. Inference only:
    it overwrites x.
    """
    for start in range(0, x.shape[2], heads_per_pass):
        part = x[:, :, start : start + heads_per_pass]
        y = rms_norm(part, weight, eps)
        if cos is not None:
            y = apply_rope_3d(y, cos, sin)
        part.copy_(y)
        del y
    return x


# --------------------------------------------------------------------------- attention
def caption_kv_lengths(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Valid caption keys per sample (B,) long, from the (B, 77 + Lt) 0/1 mask over CLIP + LLM tokens.

    Quirk kept on purpose: the official pipeline casts this mask to the transformer's dtype and the
    model sums it in that dtype, so in bf16 (8 significant bits) a count above 256 is rounded to
    even: 77 + 200 = 277 keys becomes 276 (the last LLM token is dropped), 279 becomes 280 (one
    padding token is read). The published weights were tuned and evaluated with these lengths.
    Counts are exact in fp32/fp64 and, for these lengths, in fp16. A count rounded past the number
    of keys (the official code would fail on a mask wider than its keys) is capped at that number.
    """
    counts = mask.to(dtype).sum(dim=1).to(torch.int64)
    return counts.clamp(max=mask.shape[1])


def key_length_mask(kv_lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """Bool mask (B, 1, 1, max_len): key j of sample b is visible iff j < kv_lengths[b].

    Broadcast over heads and queries by SDPA — never expanded to (B, heads, Lq, Lkv), which
    at 75,888 queries would cost gigabytes.
    """
    keys = torch.arange(max_len, device=kv_lengths.device)
    return (keys[None, :] < kv_lengths[:, None])[:, None, None, :]


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Multi-head attention of (B, L, heads, head_dim) tensors via SDPA → (B, Lq, heads·head_dim).

    Softmax scale is the SDPA default 1/√head_dim.
    """
    batch, length = q.shape[:2]
    out = F.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=key_mask
    )
    return out.transpose(1, 2).reshape(batch, length, -1)
