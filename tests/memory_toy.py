"""A small model shaped like the DiT (for the memory tests): `transformer_blocks`, a modulation
Linear `adaln_single.linear`, per-block `scale_shift_table`, norms, and a projection out."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class ToyBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.wqkv = nn.Linear(dim, 3 * dim, bias=False)
        self.wo = nn.Linear(dim, dim, bias=False)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(approximate="tanh"), nn.Linear(4 * dim, dim))
        self.scale_shift_table = nn.Parameter(torch.randn(4, dim) / dim**0.5)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        shift1, scale1, shift2, scale2 = (self.scale_shift_table[None] + t.unflatten(-1, (4, -1))).unbind(1)
        h = self.norm1(x) * (1 + scale1[:, None]) + shift1[:, None]
        q, k, v = self.wqkv(h).chunk(3, dim=-1)
        x = x + self.wo(F.scaled_dot_product_attention(q, k, v))
        h = self.norm2(x) * (1 + scale2[:, None]) + shift2[:, None]
        return x + self.ff(h)


class ToyAdaLN(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, 4 * dim)


class ToyDiT(nn.Module):
    def __init__(self, dim: int = 256, blocks: int = 4) -> None:
        super().__init__()
        self.pos_embed = nn.Linear(16, dim)
        self.adaln_single = ToyAdaLN(dim)
        self.transformer_blocks = nn.ModuleList(ToyBlock(dim) for _ in range(blocks))
        self.proj_out = nn.Linear(dim, 16)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = self.pos_embed(x)
        mod = self.adaln_single.linear(F.silu(t))
        for block in self.transformer_blocks:
            h = block(h, mod)
        return self.proj_out(h)


def make_toy(dim: int = 256, blocks: int = 4, seed: int = 0, dtype: torch.dtype = torch.bfloat16) -> ToyDiT:
    torch.manual_seed(seed)
    return ToyDiT(dim, blocks).to(dtype).eval().requires_grad_(False)


def toy_inputs(dim: int = 256, tokens: int = 24, seed: int = 1, dtype: torch.dtype = torch.bfloat16):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, tokens, 16, generator=g).to(dtype), torch.randn(2, dim, generator=g).to(dtype)
