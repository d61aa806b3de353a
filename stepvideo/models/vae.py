"""Step-Video's causal video VAE, version 2 (z = 64): 16×16 spatial and 17 → 3 temporal compression.

`VAEConfig()` is the published `vae/vae_v2.safetensors` model (no config file ships with it: the
official server hard-codes `AutoencoderKL(z_channels=64, version=2)`). `VideoVAE(config)` builds
under `torch.device("meta")` and its `state_dict()` keys/shapes equal that file as stored, including
`decoder.conv_out.{weight,bias}` (the official loader renames those; we name the module so it needn't).

Decoding is chunked: every 3 latent frames are decoded on their own into 17 frames (no state flows
between chunks), and the two frames meeting at each chunk boundary are then blended.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import Cancelled, ConfigError, InvalidRequest
from .config_keys import config_values, require_number, require_positive_ints, type_ok
from .vae_blocks import (
    CausalConv,
    ConvPixelShuffleUp,
    ConvPixelUnshuffleDown,
    Downsample2D,
    Downsample3D,
    MidBlock,
    ResnetBlock3D,
    Upsample2D,
    Upsample3D,
    average_down,
    duplicate_up,
    frame_group_norm,
)

SPATIAL_FACTOR = 16  # pixels per latent along height and width
_LABEL = "vae"


@dataclass(frozen=True)
class VAEConfig:
    in_channels: int = 3
    out_channels: int = 3
    z_channels: int = 64
    encoder_ch: int = 32
    encoder_ch_mult: tuple[int, ...] = (4, 8, 16, 16)
    encoder_num_res_blocks: int = 2
    encoder_down_sampling_layers: tuple[int, ...] = (1, 2)  # levels that also halve time
    decoder_ch: int = 128
    decoder_ch_mult: tuple[int, ...] = (1, 2, 4, 4)
    decoder_num_res_blocks: int = 3  # official passes 2 and builds num_res_blocks + 1 per level
    temporal_up_layers: tuple[int, ...] = (2, 3)
    temporal_downsample: int = 4  # the decoder drops its first temporal_downsample − 1 frames
    patch_channel_mult: int = 4  # (un)patchify width = patch_channel_mult · z_channels · 2³
    norm_groups: int = 32
    norm_eps: float = 1e-5
    latent_chunk: int = 3  # latent frames decoded together

    @classmethod
    def from_dict(cls, d: Mapping) -> VAEConfig:
        return cls(**config_values(_LABEL, d, cls))  # __post_init__ validates the values

    @classmethod
    def tiny(cls) -> VAEConfig:
        """Same temporal/spatial structure (3 latent frames → 17 frames, ×16 space, z = 64), few channels."""
        return cls(
            encoder_ch=8, encoder_ch_mult=(2, 4, 8, 8), encoder_num_res_blocks=1,
            decoder_ch=16, decoder_ch_mult=(1, 2, 4, 4), decoder_num_res_blocks=1,
            patch_channel_mult=1, norm_groups=8,
        )

    def __post_init__(self) -> None:
        require_positive_ints(_LABEL, self, (
            "in_channels", "out_channels", "z_channels", "encoder_ch", "decoder_ch", "encoder_num_res_blocks",
            "decoder_num_res_blocks", "temporal_downsample", "patch_channel_mult", "norm_groups", "latent_chunk",
        ))
        require_number(_LABEL, self, "norm_eps", 0)
        for name in ("encoder_ch_mult", "decoder_ch_mult", "temporal_up_layers", "encoder_down_sampling_layers"):
            value = getattr(self, name)
            if not isinstance(value, tuple) or not all(type_ok(v, int) and v >= 0 for v in value):
                raise ConfigError(f"vae config: {name} must be a list of non-negative integers, got {value!r}")
        if len(self.encoder_ch_mult) != 4 or len(self.decoder_ch_mult) != 4 or 0 in self.encoder_ch_mult + self.decoder_ch_mult:
            raise ConfigError("vae config: encoder_ch_mult and decoder_ch_mult must have exactly 4 levels")
        if tuple(sorted(self.temporal_up_layers)) != (2, 3) or tuple(sorted(self.encoder_down_sampling_layers)) != (1, 2):
            raise ConfigError(
                "vae config: only temporal_up_layers=(2, 3) and encoder_down_sampling_layers=(1, 2) are supported"
            )
        channels = [self.encoder_ch * m for m in self.encoder_ch_mult] + [self.decoder_ch * m for m in self.decoder_ch_mult]
        if any(c % self.norm_groups for c in channels):
            raise ConfigError(f"vae config: every level width {channels} must be divisible by norm_groups={self.norm_groups}")
        patch = self.patch_channels
        if (self.encoder_block_out * 8) % patch or (self.decoder_block_in * 8) % patch or patch % (2 * self.z_channels):
            raise ConfigError(
                f"vae config: patch width {patch} must divide 8x the mid widths "
                f"({self.encoder_block_out}, {self.decoder_block_in}) and be a multiple of 2*z_channels"
            )
        if self.frames_per_chunk < 1:
            raise ConfigError(f"vae config: latent_chunk={self.latent_chunk} decodes to no frames")

    @property
    def patch_channels(self) -> int:
        return self.patch_channel_mult * self.z_channels * 8

    @property
    def encoder_block_out(self) -> int:
        return self.encoder_ch * self.encoder_ch_mult[-1]

    @property
    def decoder_block_in(self) -> int:
        return self.decoder_ch * self.decoder_ch_mult[-1]

    @property
    def frames_per_chunk(self) -> int:
        """Video frames from one latent chunk: unpatchify 2T−1, ×2 per temporal up layer, minus the crop."""
        t = (2 * self.latent_chunk - 1) * 2 ** len(self.temporal_up_layers)
        return t - (self.temporal_downsample - 1)


class VideoEncoder(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        g, eps = cfg.norm_groups, cfg.norm_eps
        self.conv_in = CausalConv(cfg.in_channels, cfg.encoder_ch, 3)
        widths = [cfg.encoder_ch] + [cfg.encoder_ch * m for m in cfg.encoder_ch_mult]
        self.down = nn.ModuleList()
        for level in range(4):
            stage = nn.Module()
            stage.block = nn.ModuleList(
                ResnetBlock3D(widths[level] if i == 0 else widths[level + 1], widths[level + 1], g, eps)
                for i in range(cfg.encoder_num_res_blocks)
            )
            if level != 3:
                down3d = level in cfg.encoder_down_sampling_layers
                stage.downsample = Downsample3D(widths[level + 1]) if down3d else Downsample2D(widths[level + 1])
            self.down.append(stage)
        mid = cfg.encoder_block_out
        self.mid = MidBlock(mid, g, eps)
        self.norm_out = nn.GroupNorm(g, mid, eps=eps)
        self.patch_channels, self.moment_channels = cfg.patch_channels, 2 * cfg.z_channels
        self.conv_patchify = ConvPixelUnshuffleDown(mid, cfg.patch_channels, factor=2)
        self.conv_out = CausalConv(cfg.patch_channels, self.moment_channels, 3)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """(B, C, 17, H, W) → moments (B, 2z, 3, H/16, W/16): mean ‖ logvar along channels."""
        h = self.conv_in(video)
        for stage in self.down:
            for block in stage.block:
                h = block(h)
            if hasattr(stage, "downsample"):
                h = stage.downsample(h)
        h = self.mid(h)
        h = frame_group_norm(h, self.norm_out, silu=True)
        h = self.conv_patchify(h).add_(average_down(h, self.patch_channels, 2))
        return self.conv_out(h).add_(average_down(h, self.moment_channels, 1))


class VideoDecoder(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        g, eps = cfg.norm_groups, cfg.norm_eps
        top = cfg.decoder_block_in
        self.patch_channels, self.block_in = cfg.patch_channels, top
        self.crop = cfg.temporal_downsample - 1
        self.conv_in = CausalConv(cfg.z_channels, cfg.patch_channels, 3)
        self.conv_unpatchify = ConvPixelShuffleUp(cfg.patch_channels, top, factor=2)
        self.mid = MidBlock(top, g, eps)
        widths = [cfg.decoder_ch * m for m in cfg.decoder_ch_mult]
        self.up = nn.ModuleList()
        for level in range(4):  # stored 0..3, run 3..0; a level's input is the level above's output
            width_in = widths[level + 1] if level < 3 else top
            stage = nn.Module()
            stage.block = nn.ModuleList(
                ResnetBlock3D(width_in if i == 0 else widths[level], widths[level], g, eps)
                for i in range(cfg.decoder_num_res_blocks)
            )
            if level != 0:
                up3d = level in cfg.temporal_up_layers
                stage.upsample = Upsample3D(widths[level], g, eps) if up3d else Upsample2D(widths[level])
            self.up.append(stage)
        self.norm_out = nn.GroupNorm(g, widths[0], eps=eps)
        # Plain Conv3d: the file stores `decoder.conv_out.weight`; its 2 causal zero frames come from
        # frame_group_norm(pad_front=2), space is padded by the conv itself.
        self.conv_out = nn.Conv3d(widths[0], cfg.out_channels, 3, padding=(0, 1, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(B, z, 3, h, w) → (B, C, 17, 16h, 16w), unclamped."""
        h = self.conv_in(z).add_(duplicate_up(z, self.patch_channels, 1))
        h = self.conv_unpatchify(h).add_(duplicate_up(h, self.block_in, 2))
        h = self.mid(h)
        for stage in reversed(self.up):
            for block in stage.block:
                h = block(h)
            if hasattr(stage, "upsample"):
                h = stage.upsample(h)
        h = self.conv_out(frame_group_norm(h, self.norm_out, silu=True, pad_front=2))
        return h[:, :, self.crop:]


def blend_chunk_boundaries(frames: torch.Tensor, chunk: int = 17, inplace: bool = False) -> torch.Tensor:
    """Blend the two frames meeting at each chunk boundary of (B, N, C, H, W), as the official `mix`.

    Sequential on purpose: back ← 0.6·back + 0.4·front, THEN front ← 0.6·front + 0.4·(updated back).
    """
    out = frames if inplace else frames.clone()
    n = out.shape[1]
    front = slice(chunk - 1, n - 1, chunk)
    back = slice(chunk, n, chunk)
    out[:, back] = out[:, back] * 0.6 + out[:, front] * 0.4
    out[:, front] = out[:, front] * 0.6 + out[:, back] * 0.4
    return out


ChunkDecoder = Callable[[torch.Tensor], torch.Tensor]


class VideoVAE(nn.Module):
    def __init__(self, config: VAEConfig | None = None):
        super().__init__()
        self.config = config or VAEConfig()
        self.encoder = VideoEncoder(self.config)
        self.decoder = VideoDecoder(self.config)

    @property
    def dtype(self) -> torch.dtype:
        return self.decoder.conv_out.weight.dtype

    def check_latents(self, latents: torch.Tensor) -> None:
        cfg = self.config
        if latents.ndim != 5 or latents.shape[2] != cfg.z_channels:
            raise InvalidRequest(f"VAE latents must be (B, T, {cfg.z_channels}, h, w); got {tuple(latents.shape)}")
        if latents.shape[1] == 0 or latents.shape[1] % cfg.latent_chunk:
            raise InvalidRequest(
                f"VAE latent frames must be a positive multiple of {cfg.latent_chunk}; got {latents.shape[1]}"
            )

    @torch.no_grad()
    def decode_chunk(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, 3, z, h, w) → (B, 17, C, 16h, 16w): one chunk, unclamped, no boundary blend."""
        if latents.ndim != 5 or latents.shape[1] != self.config.latent_chunk:
            raise InvalidRequest(
                f"decode_chunk takes (B, {self.config.latent_chunk}, {self.config.z_channels}, h, w); "
                f"got {tuple(latents.shape)}"
            )
        z = latents.to(self.dtype).transpose(1, 2).contiguous()
        return self.decoder(z).transpose(1, 2)

    @torch.no_grad()
    def decode(
        self,
        latents: torch.Tensor,
        *,
        chunk_decoder: ChunkDecoder | None = None,
        on_chunk: Callable[[int, int], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> torch.Tensor:
        """(B, T, z, h, w) → (B, T/3·17, C, 16h, 16w) in [-1, 1]: `iter_decode`'s pieces, gathered."""
        out, at = None, 0
        for piece in self.iter_decode(latents, chunk_decoder=chunk_decoder, on_chunk=on_chunk,
                                      should_cancel=should_cancel):
            if out is None:  # allocate once the first piece tells us the output dtype and size
                total = self.config.frames_per_chunk * (latents.shape[1] // self.config.latent_chunk)
                out = piece.new_empty(piece.shape[0], total, *piece.shape[2:])
            out[:, at:at + piece.shape[1]] = piece
            at += piece.shape[1]
        return out

    @torch.no_grad()
    def iter_decode(
        self,
        latents: torch.Tensor,
        *,
        chunk_decoder: ChunkDecoder | None = None,
        on_chunk: Callable[[int, int], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> Iterator[torch.Tensor]:
        """The decoded video as it comes: pieces of (B, n, C, 16h, 16w) frames in [-1, 1], in order,
        finished (chunk boundaries blended, clamped), so a caller can write each and keep none.

        The last frame of each chunk waits for the next chunk's first (the official `mix` blends the
        two), which is the same arithmetic as `blend_chunk_boundaries` on the whole video.
        `chunk_decoder` (default `decode_chunk`) is the seam tiled decoding plugs into;
        `on_chunk(done, total)` runs after each chunk; `should_cancel()` is checked before each and
        raises `Cancelled`.
        """
        self.check_latents(latents)
        decode_one = chunk_decoder or self.decode_chunk
        chunks = latents.split(self.config.latent_chunk, dim=1)
        held = None  # the previous chunk's last frame, (B, 1, C, H, W)
        for i, chunk in enumerate(chunks):
            if should_cancel is not None and should_cancel():
                raise Cancelled("VAE decode cancelled")
            frames = decode_one(chunk)
            if held is not None:
                front, back = held, frames[:, :1]
                back[:] = back * 0.6 + front * 0.4  # sequential, as the official mix: back first
                front[:] = front * 0.6 + back * 0.4
                yield front.clamp_(-1.0, 1.0)
            held = frames[:, -1:].clone()
            yield frames[:, :-1].clamp_(-1.0, 1.0)
            del frames
            if on_chunk is not None:
                on_chunk(i + 1, len(chunks))
        yield held.clamp_(-1.0, 1.0)

    @torch.no_grad()
    def encode_moments(self, video: torch.Tensor) -> torch.Tensor:
        """(B, N, C, H, W) with N a multiple of 17 → (B, N/17·3, 2z, H/16, W/16) (mean ‖ logvar).

        N = 1 (a still image, as TI2V encodes it) gives one latent frame: the causal encoder pads
        time with zeros in front, so the lone frame is encoded as a clip's first frame would be.
        """
        per = self.config.frames_per_chunk
        if video.ndim != 5 or video.shape[2] != self.config.in_channels:
            raise InvalidRequest(f"VAE encode takes (B, N, {self.config.in_channels}, H, W); got {tuple(video.shape)}")
        n, hgt, wid = video.shape[1], video.shape[3], video.shape[4]
        if n == 0 or (n % per and n != 1) or hgt % SPATIAL_FACTOR or wid % SPATIAL_FACTOR:
            raise InvalidRequest(
                f"VAE encode needs 1 frame or a multiple of {per} and height/width multiples of {SPATIAL_FACTOR}; "
                f"got {n} frames of {hgt}x{wid}"
            )
        dtype = self.encoder.conv_in.conv.weight.dtype
        moments = [
            self.encoder(chunk.to(dtype).transpose(1, 2).contiguous()).transpose(1, 2)
            for chunk in video.split(per, dim=1)
        ]
        return torch.cat(moments, dim=1)

    @torch.no_grad()
    def encode_mean(self, video: torch.Tensor) -> torch.Tensor:
        """The posterior mean (B, T, z, h, w): the deterministic latent of `video`."""
        return self.encode_moments(video).chunk(2, dim=2)[0]

    @torch.no_grad()
    def encode(self, video: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """A sample of the posterior: mean + exp(logvar / 2)·ε, logvar clamped to [−30, 20]."""
        mean, logvar = self.encode_moments(video).chunk(2, dim=2)
        std = torch.exp(0.5 * logvar.clamp(-30.0, 20.0))
        device = generator.device if generator is not None else mean.device
        noise = torch.randn(mean.shape, generator=generator, device=device).to(mean.device, mean.dtype)
        return mean + std * noise
