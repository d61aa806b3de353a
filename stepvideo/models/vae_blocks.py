"""Building blocks of Step-Video's causal video VAE (v2).

Layout everywhere is (B, C, T, H, W). Every 3-D convolution is causal in time: its temporal context
comes from zero frames padded in FRONT, so output frame t never depends on input frames after t.
GroupNorm is computed per frame (statistics over C/groups × H × W of one frame), as the official v2
VAE does (`base_group_norm.spatial = True`).

Module and attribute names follow the official `stepvideo/vae/vae.py` so that `state_dict()` keys
equal the published `vae/vae_v2.safetensors`; the math is re-derived, the code is our own.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def frame_group_norm(
    x: torch.Tensor, norm: nn.GroupNorm, silu: bool, pad_front: int = 0, groups_per_step: int = 2
) -> torch.Tensor:
    """GroupNorm of each frame on its own (+ optional SiLU), returned with `pad_front` zero frames.

    The zero frames are the causal padding of the convolution that follows; writing the result
    straight into a buffer that already has them avoids a copy. Statistics are taken in (at least)
    fp32, a few groups at a time, so the only full-size allocation is the output: the decoder's
    peak memory is set by these norms at full resolution, and F.group_norm would need a transposed
    (B·T, C, H, W) copy plus its output.
    """
    b, c, t, h, w = x.shape
    per_group = c // norm.num_groups
    compute = torch.promote_types(x.dtype, torch.float32)
    out = x.new_empty(b, c, t + pad_front, h, w)
    if pad_front:
        out[:, :, :pad_front].zero_()
    step = per_group * groups_per_step
    for c0 in range(0, c, step):
        c1 = min(c, c0 + step)
        xs = x[:, c0:c1].to(compute)
        grouped = xs.view(b, (c1 - c0) // per_group, per_group, t, h, w)
        var, mean = torch.var_mean(grouped, dim=(2, 4, 5), keepdim=True, correction=0)
        y = (grouped - mean).mul_(torch.rsqrt(var + norm.eps)).view(b, c1 - c0, t, h, w)
        del xs, grouped
        y.mul_(norm.weight[c0:c1, None, None, None].to(compute)).add_(norm.bias[c0:c1, None, None, None].to(compute))
        if silu:
            F.silu(y, inplace=True)
        out[:, c0:c1, pad_front:] = y
    return out


class CausalConv(nn.Module):
    """3-D conv with `k_t - 1` zero frames in front (none behind) and `k // 2` zeros around space.

    `prepadded=True` means the caller already put the zero frames in front (see frame_group_norm).
    For a temporal stride of 2 the same front padding gives ceil(T / 2) output frames.
    """

    def __init__(self, chan_in: int, chan_out: int, kernel_size: int = 3, stride: int | tuple = 1):
        super().__init__()
        self.time_pad = kernel_size - 1
        stride = (stride, 1, 1) if isinstance(stride, int) else tuple(stride)
        p = kernel_size // 2
        self.conv = nn.Conv3d(chan_in, chan_out, kernel_size, stride=stride, padding=(0, p, p))

    def forward(self, x: torch.Tensor, prepadded: bool = False) -> torch.Tensor:
        if self.time_pad and not prepadded:
            x = F.pad(x, (0, 0, 0, 0, self.time_pad, 0))
        return self.conv(x)


class ResnetBlock3D(nn.Module):
    """norm1 → SiLU → causal conv1 → norm2 → SiLU → causal conv2, plus (1×1×1 conv) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, groups: int, eps: float):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_channels, eps=eps)
        self.conv1 = CausalConv(in_channels, out_channels, 3)
        self.norm2 = nn.GroupNorm(groups, out_channels, eps=eps)
        self.conv2 = CausalConv(out_channels, out_channels, 3)
        if in_channels != out_channels:
            self.nin_shortcut = CausalConv(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(frame_group_norm(x, self.norm1, silu=True, pad_front=2), prepadded=True)
        h = self.conv2(frame_group_norm(h, self.norm2, silu=True, pad_front=2), prepadded=True)
        shortcut = self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x
        return h.add_(shortcut)


class AttnBlock(nn.Module):
    """Single-head self-attention over all t·h·w positions, causal in that flattened order.

    (Causal over the raster order, not only over time, exactly as the official VAE.)
    """

    def __init__(self, channels: int, groups: int, eps: float):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels, eps=eps)
        self.q = CausalConv(channels, channels, 1)
        self.k = CausalConv(channels, channels, 1)
        self.v = CausalConv(channels, channels, 1)
        self.proj_out = CausalConv(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        normed = frame_group_norm(x, self.norm, silu=False)
        q, k, v = (m(normed).flatten(2).transpose(1, 2).unsqueeze(1) for m in (self.q, self.k, self.v))
        del normed
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        del q, k, v
        out = out.squeeze(1).transpose(1, 2).reshape(b, c, t, h, w)
        return self.proj_out(out).add_(x)


class MidBlock(nn.Module):
    """The middle of encoder and decoder alike: resnet → attention → resnet at constant width."""

    def __init__(self, width: int, groups: int, eps: float):
        super().__init__()
        self.block_1 = ResnetBlock3D(width, width, groups, eps)
        self.attn_1 = AttnBlock(width, groups, eps)
        self.block_2 = ResnetBlock3D(width, width, groups, eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))


class Downsample2D(nn.Module):
    """Per-frame stride-2 3×3 conv after padding one zero row/column at the bottom/right."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (0, 1, 0, 1))
        # A (1,3,3) 3-D conv applies the 2-D kernel to every frame without reshaping.
        return F.conv3d(x, self.conv.weight.unsqueeze(2), self.conv.bias, stride=(1, 2, 2))


class Downsample3D(nn.Module):
    """Causal 3×3×3 conv with stride 2 in t, h and w (T → ceil(T/2))."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = CausalConv(channels, channels, 3, stride=(2, 2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def nearest_up(x: torch.Tensor, time: int, space: int) -> torch.Tensor:
    """Nearest-neighbour upsampling by integer factors: every frame/pixel is repeated."""
    b, c, t, h, w = x.shape
    x = x[:, :, :, None, :, None, :, None].expand(b, c, t, time, h, space, w, space)
    return x.reshape(b, c, t * time, h * space, w * space)


class Upsample2D(nn.Module):
    """Per-frame nearest ×2 in space, then a 3×3 conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nearest_up(x, time=1, space=2)
        return F.conv3d(x, self.conv.weight.unsqueeze(2), self.conv.bias, padding=(0, 1, 1))


class Res3DBlockUpsample(nn.Module):
    """conv1 → GN → SiLU → conv2 → GN; out = SiLU(h + x) + x (official Res3DBlockUpsample)."""

    def __init__(self, channels: int, groups: int, eps: float):
        super().__init__()
        self.conv1 = CausalConv(channels, channels, 3)
        self.norm1 = nn.GroupNorm(groups, channels, eps=eps)
        self.conv2 = CausalConv(channels, channels, 3)
        self.norm2 = nn.GroupNorm(groups, channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(x)
        h = self.conv2(frame_group_norm(h, self.norm1, silu=True, pad_front=2), prepadded=True)
        h = frame_group_norm(h, self.norm2, silu=False)
        return F.silu(h.add_(x), inplace=True).add_(x)


class Upsample3D(nn.Module):
    """Nearest ×2 in t, h and w, then Res3DBlockUpsample."""

    def __init__(self, channels: int, groups: int, eps: float):
        super().__init__()
        self.conv3d = Res3DBlockUpsample(channels, groups, eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3d(nearest_up(x, time=2, space=2))


def pixel_shuffle_3d(x: torch.Tensor, factor: int) -> torch.Tensor:
    """(B, C·f³, T, H, W) → (B, C, f·T − (f−1), f·H, f·W); the first f−1 frames are dropped (causal)."""
    b, c, t, h, w = x.shape
    x = x.view(b, c // factor**3, factor, factor, factor, t, h, w)
    x = x.permute(0, 1, 5, 2, 6, 3, 7, 4).reshape(b, c // factor**3, t * factor, h * factor, w * factor)
    return x[:, :, factor - 1:]


def pixel_unshuffle_3d(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Inverse of pixel_shuffle_3d: f−1 zero frames in front, then (f,f,f) blocks → channels."""
    x = F.pad(x, (0, 0, 0, 0, factor - 1, 0))
    b, c, t, h, w = x.shape
    x = x.view(b, c, t // factor, factor, h // factor, factor, w // factor, factor)
    x = x.permute(0, 1, 3, 5, 7, 2, 4, 6)
    return x.reshape(b, c * factor**3, t // factor, h // factor, w // factor)


def duplicate_up(x: torch.Tensor, out_channels: int, factor: int) -> torch.Tensor:
    """Parameter-free shortcut of an up-sampling layer: repeat every channel, then pixel-shuffle."""
    repeats = out_channels * factor**3 // x.shape[1]
    return pixel_shuffle_3d(x.repeat_interleave(repeats, dim=1), factor)


def average_down(x: torch.Tensor, out_channels: int, factor: int) -> torch.Tensor:
    """Parameter-free shortcut of a down-sampling layer: pixel-unshuffle, then average channel groups."""
    x = pixel_unshuffle_3d(x, factor)
    b, c, t, h, w = x.shape
    return x.view(b, out_channels, c // out_channels, t, h, w).mean(dim=2)


class ConvPixelShuffleUp(nn.Module):
    """Causal conv to out·f³ channels, then pixel_shuffle_3d."""

    def __init__(self, chan_in: int, chan_out: int, factor: int):
        super().__init__()
        self.factor = factor
        self.conv = CausalConv(chan_in, chan_out * factor**3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_shuffle_3d(self.conv(x), self.factor)


class ConvPixelUnshuffleDown(nn.Module):
    """Causal conv to out/f³ channels, then pixel_unshuffle_3d."""

    def __init__(self, chan_in: int, chan_out: int, factor: int):
        super().__init__()
        self.factor = factor
        self.conv = CausalConv(chan_in, chan_out // factor**3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_unshuffle_3d(self.conv(x), self.factor)
