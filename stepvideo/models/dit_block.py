"""One Step-Video DiT block: AdaLN-single self-attention (3-D RoPE), cross-attention, FFN.

Module and parameter names match the published state dict (`attn1.wqkv`, `ff.net.0.proj`, …).
A block's forward takes everything it needs as arguments (no references to the parent model),
so a block streamer can move it between devices from a forward pre-hook.

Activation memory (inference only; issue 11 §2): every full-size temporary dies as soon as it has
been read. The block drives its attention and FFN sub-layers itself, because a module's forward
cannot drop its own argument (the modulated input would live through the whole attention);
q and k are normalised and rotated in place inside the fused qkv output, a few heads at a time
(`rms_norm_rope_`), and v is read from it without a copy; residual adds, the modulation and the
GELU write into temporaries of ours. Each in-place op is the same op, in the same order, as the
out-of-place expression it replaces, so results are bit-identical. The peaks this leaves (counted
by tests/test_activation_trace.py) are what memory/planner.py predicts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import RMSNorm, attention, rms_norm_rope_


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
        qkv = self.wqkv(x)
        out = self.attend(qkv, rope_cos, rope_sin)
        del qkv
        return self.wo(out)

    def attend(self, qkv: torch.Tensor, rope_cos: torch.Tensor, rope_sin: torch.Tensor) -> torch.Tensor:
        """Attention output before `wo`, (B, L, dim), from the wqkv output (B, L, 3·dim), which it
        overwrites: q and k are normalised and rotated in place, v is read where it lies."""
        batch, length, _ = qkv.shape
        # wqkv rows are interleaved per head: head h owns q(head_dim) | k | v, not [Q_all; K_all; V_all].
        q, k, v = qkv.view(batch, length, self.heads, 3 * self.head_dim).split(self.head_dim, dim=-1)
        rms_norm_rope_(q, self.q_norm.weight, self.q_norm.eps, rope_cos, rope_sin)
        rms_norm_rope_(k, self.k_norm.weight, self.k_norm.eps, rope_cos, rope_sin)
        return attention(q, k, v)


class CrossAttention(_QKNormAttention):
    """Attention from video tokens to caption tokens; q/k RMSNorm, no RoPE, key-length mask."""

    def __init__(self, dim: int, head_dim: int) -> None:
        super().__init__(
            dim, head_dim, wq=nn.Linear(dim, dim, bias=False), wkv=nn.Linear(dim, 2 * dim, bias=False)
        )

    def forward(self, x: torch.Tensor, context: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
        batch, length, _ = x.shape
        q = self.wq(x).view(batch, length, self.heads, self.head_dim)
        rms_norm_rope_(q, self.q_norm.weight, self.q_norm.eps)
        # wkv rows are interleaved per head as k | v.
        kv = self.wkv(context).view(batch, context.shape[1], self.heads, 2 * self.head_dim)
        k, v = kv.split(self.head_dim, dim=-1)
        rms_norm_rope_(k, self.k_norm.weight, self.k_norm.eps)
        out = attention(q, k, v, key_mask)
        del q, k, v, kv
        return self.wo(out)


class GELUProjection(nn.Module):
    """Linear followed by tanh-approximated GELU (state-dict key `proj`)."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.proj(x)
        if torch.is_grad_enabled() and hidden.requires_grad:
            return F.gelu(hidden, approximate="tanh")
        # In place on our own 4·dim output: the out-of-place GELU would hold two of them at once.
        return torch.ops.aten.gelu_(hidden, approximate="tanh")


class FeedForward(nn.Module):
    """dim → 4·dim → GELU(tanh) → dim, no biases. `net.1` is an Identity kept for key numbering."""

    def __init__(self, dim: int, mult: int = 4) -> None:
        super().__init__()
        self.net = nn.ModuleList([GELUProjection(dim, dim * mult), nn.Identity(), nn.Linear(dim * mult, dim, bias=False)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Nested calls: the 4·dim hidden is a temporary that dies once the output projection read it.
        return self.net[2](self.net[1](self.net[0](x)))


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

        # Self-attention, driven from here so the modulated input dies as soon as wqkv has read it
        # and the qkv output before `wo` runs (see the module docstring).
        qkv = self.attn1.wqkv(_mul_add_(self.norm1(x), 1 + scale_msa, shift_msa))
        out = self.attn1.attend(qkv, rope_cos, rope_sin)
        del qkv
        x = _mul_add_(self.attn1.wo(out), gate_msa, x)  # gate_msa·attn + x
        del out
        # Cross-attention reads the raw residual stream: no norm, no modulation, no gate.
        x = _mul_add_(self.attn2(x, context, key_mask), None, x)  # attn + x
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
        activations (every token is independent here, so chunking does not change the math).

        x is the block's own residual stream (made by the cross-attention add): each chunk's result
        is written back over its tokens, so no second full-size tensor is needed. The FFN's layers
        are called from here so the modulated chunk dies once the up projection has read it."""
        length = x.shape[1]
        step = chunk_tokens if chunk_tokens and chunk_tokens < length else length
        if torch.result_type(x, gate) != x.dtype:  # the result would change dtype: no writing back
            return gate * self.ff(self.norm2(x) * (1 + scale) + shift) + x
        up, _identity, down = self.ff.net  # up = Linear + GELU
        for start in range(0, length, step):
            part = x[:, start : start + step]
            hidden = up(_mul_add_(self.norm2(part), 1 + scale, shift))
            update = down(hidden)
            del hidden
            # gate·FF + part: the same two roundings as the out-of-place expression.
            part.add_(update.mul_(gate))
            del update
        return x


def _mul_add_(t: torch.Tensor, factor: torch.Tensor | None, addend: torch.Tensor) -> torch.Tensor:
    """t·factor + addend (t + addend without a factor), written into t, a temporary of ours.

    The same ops in the same order as the out-of-place expression, hence bit-identical; when that
    expression would promote to another dtype (mixed-dtype inputs) it is computed out of place.
    """
    keeps_dtype = torch.result_type(t, addend) == t.dtype
    if factor is not None:
        keeps_dtype = keeps_dtype and torch.result_type(t, factor) == t.dtype
    if not keeps_dtype:
        return (t if factor is None else t * factor) + addend
    if factor is not None:
        t.mul_(factor)
    return t.add_(addend)
