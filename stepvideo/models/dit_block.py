"""One Step-Video DiT block: AdaLN-single self-attention (3-D RoPE), cross-attention, FFN.

Module and parameter names match the published state dict (`attn1.wqkv`, `ff.net.0.proj`, …).
A block's forward takes everything it needs as arguments (no references to the parent model),
so a block streamer can move it between devices from a forward pre-hook.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import RMSNorm, apply_rope_3d, attention


class _QKNormAttention(nn.Module):
    """What both attentions share: head layout, per-head q/k RMSNorm, output projection `wo`.

    The input projections are registered first, so parameter order stays that of the published
    state dict (tiny test models draw their random weights in this order).
    """

    def __init__(self, dim: int, head_dim: int, **input_projections: nn.Linear) -> None:
        super().__init__()
        self.head_dim = head_dim
        self.heads = dim // head_dim
        for name, layer in input_projections.items():
            self.add_module(name, layer)
        self.wo = nn.Linear(dim, dim, bias=False)
        self.q_norm = RMSNorm(head_dim)
        self.k_norm = RMSNorm(head_dim)


class SelfAttention(_QKNormAttention):
    """Self-attention with a fused q|k|v projection, per-head q/k RMSNorm and 3-D RoPE."""

    def __init__(self, dim: int, head_dim: int) -> None:
        super().__init__(dim, head_dim, wqkv=nn.Linear(dim, 3 * dim, bias=False))

    def forward(self, x: torch.Tensor, rope_cos: torch.Tensor, rope_sin: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        # wqkv rows are interleaved per head: head h owns q(head_dim) | k | v, not [Q_all; K_all; V_all].
        qkv = self.wqkv(x).view(batch, length, self.heads, 3 * self.head_dim)
        q, k, v = qkv.split(self.head_dim, dim=-1)
        q = apply_rope_3d(self.q_norm(q), rope_cos, rope_sin)
        k = apply_rope_3d(self.k_norm(k), rope_cos, rope_sin)
        out = attention(q, k, v)
        del q, k, v, qkv
        return self.wo(out)


class CrossAttention(_QKNormAttention):
    """Attention from video tokens to caption tokens; q/k RMSNorm, no RoPE, key-length mask."""

    def __init__(self, dim: int, head_dim: int) -> None:
        super().__init__(
            dim, head_dim, wq=nn.Linear(dim, dim, bias=False), wkv=nn.Linear(dim, 2 * dim, bias=False)
        )

    def forward(self, x: torch.Tensor, context: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
        batch, length, _ = x.shape
        q = self.q_norm(self.wq(x).view(batch, length, self.heads, self.head_dim))
        # wkv rows are interleaved per head as k | v.
        kv = self.wkv(context).view(batch, context.shape[1], self.heads, 2 * self.head_dim)
        k, v = kv.split(self.head_dim, dim=-1)
        out = attention(q, self.k_norm(k), v, key_mask)
        del q, k, v, kv
        return self.wo(out)


class GELUProjection(nn.Module):
    """Linear followed by tanh-approximated GELU (state-dict key `proj`)."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.proj(x), approximate="tanh")


class FeedForward(nn.Module):
    """dim → 4·dim → GELU(tanh) → dim, no biases. `net.1` is an Identity kept for key numbering."""

    def __init__(self, dim: int, mult: int = 4) -> None:
        super().__init__()
        self.net = nn.ModuleList([GELUProjection(dim, dim * mult), nn.Identity(), nn.Linear(dim * mult, dim, bias=False)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.net:
            x = layer(x)
        return x


class StepVideoBlock(nn.Module):
    """One transformer block (published class name: StepVideoTransformerBlock)."""

    def __init__(self, dim: int, head_dim: int, norm_eps: float = 1e-5) -> None:
        super().__init__()
        self.dim = dim
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn1 = SelfAttention(dim, head_dim)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn2 = CrossAttention(dim, head_dim)
        self.ff = FeedForward(dim)
        self.scale_shift_table = nn.Parameter(torch.randn(6, dim) / dim**0.5)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor,
        modulation: torch.Tensor,
        rope_cos: torch.Tensor,
        rope_sin: torch.Tensor,
        key_mask: torch.Tensor | None,
        ff_chunk_tokens: int | None = None,
    ) -> torch.Tensor:
        """x (B, L, dim); context (B, Lkv, dim); modulation (B, 6·dim) from the shared AdaLN-single;
        rope tables (L, head_dim); key_mask (B, 1, 1, Lkv) bool or None."""
        table = self.scale_shift_table[None] + modulation.reshape(-1, 6, self.dim)
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = table.chunk(6, dim=1)

        attn = self.attn1(self.norm1(x) * (1 + scale_msa) + shift_msa, rope_cos, rope_sin)
        x = gate_msa * attn + x
        del attn
        # Cross-attention reads the raw residual stream: no norm, no modulation, no gate.
        x = self.attn2(x, context, key_mask) + x
        return self._feed_forward(x, shift_mlp, scale_mlp, gate_mlp, ff_chunk_tokens)

    def _feed_forward(
        self,
        x: torch.Tensor,
        shift: torch.Tensor,
        scale: torch.Tensor,
        gate: torch.Tensor,
        chunk_tokens: int | None,
    ) -> torch.Tensor:
        """x + gate·FF(modulated norm2(x)), optionally in token chunks to bound the 4·dim hidden
        activations (every token is independent here, so chunking does not change the math)."""
        length = x.shape[1]
        if not chunk_tokens or chunk_tokens >= length:
            return gate * self.ff(self.norm2(x) * (1 + scale) + shift) + x
        out = torch.empty_like(x)
        for start in range(0, length, chunk_tokens):
            part = x[:, start : start + chunk_tokens]
            out[:, start : start + chunk_tokens] = gate * self.ff(self.norm2(part) * (1 + scale) + shift) + part
        return out
