"""Step-Video-T2V diffusion transformer (published class StepVideoModel): config + model.

The same class serves Step-Video-TI2V: its config sets `use_additional_conditions: true`, which in
the TI2V code means "image condition + motion score" (ti2v-facts §1): the patch embed takes the noisy
latent AND the condition concatenated on channels (2·in_channels in), and a motion-score embedder is
added next to the timestep embedder. The T2V meaning of that flag (resolution/fps embedders) was
never published with weights, so there is nothing to confuse it with.

State-dict keys and shapes equal the published `transformer/` safetensors, so weights load with
no renaming. The model predicts a flow-matching velocity for latents (B, F, C, H, W).
Memory seams used by the block streamer / quantizer: blocks live in `transformer_blocks`, all
projections are plain `nn.Linear`, the FFN can run in token chunks (`ff_chunk_tokens`), attention
goes only through SDPA, and the cross-attention mask is a (B, 1, 1, Lkv) key-length mask.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, InvalidRequest
from .config_keys import config_values, require_number, require_positive_ints, type_ok
from .dit_block import StepVideoBlock
from .layers import caption_kv_lengths, key_length_mask, rope_3d_tables, timestep_sinusoid

_LABEL = "transformer"
# Config keys the published config.json carries as metadata; accepted and not stored
# (_class_name is also checked to name this model).
_METADATA_KEYS = {"_class_name": str, "_diffusers_version": str}
_CLASS_NAME = "StepVideoModel"
_ATTENTION_TYPES = ("parallel", "torch")  # both mean plain softmax attention here
TIMESTEP_RESCALE = 1000.0  # the model receives t in [0, 1) and embeds 1000·t
TIMESTEP_CHANNELS = 256


@dataclass(frozen=True)
class DiTConfig:
    """transformer/config.json. Defaults are the published 30B model."""

    num_attention_heads: int = 48
    attention_head_dim: int = 128
    in_channels: int = 64
    out_channels: int | None = 64
    num_layers: int = 48
    dropout: float = 0.0
    patch_size: int = 1
    norm_type: str = "ada_norm_single"
    norm_elementwise_affine: bool = False
    norm_eps: float = 1e-6
    use_additional_conditions: bool = False
    caption_channels: tuple[int, int] = (6144, 1024)
    attention_type: str = "parallel"

    @property
    def inner_dim(self) -> int:
        return self.num_attention_heads * self.attention_head_dim

    @property
    def image_conditioned(self) -> bool:
        """TI2V: a condition of in_channels is concatenated after the noisy latent, plus a motion score."""
        return self.use_additional_conditions

    @property
    def patch_in_channels(self) -> int:
        return 2 * self.in_channels if self.image_conditioned else self.in_channels

    @property
    def output_channels(self) -> int:
        return self.in_channels if self.out_channels is None else self.out_channels

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DiTConfig:
        """Build from a parsed config.json; ConfigError (one line) on any unknown key or value."""
        values = config_values(_LABEL, d, cls, _METADATA_KEYS)
        if d.get("_class_name", _CLASS_NAME) != _CLASS_NAME:
            raise ConfigError(f"transformer config: _class_name must be {_CLASS_NAME!r}, got {d['_class_name']!r}")
        config = cls(**values)
        config.validate()
        return config

    def validate(self) -> None:
        """Raise ConfigError naming the first unsupported value."""
        require_positive_ints(_LABEL, self, ("num_attention_heads", "attention_head_dim", "in_channels", "num_layers"))
        if self.out_channels is not None:
            require_positive_ints(_LABEL, self, ("out_channels",))
        cc = self.caption_channels
        if not (isinstance(cc, tuple) and len(cc) == 2 and all(type_ok(c, int) and c > 0 for c in cc)):
            raise ConfigError(
                f"transformer config: caption_channels must be a list [llm_channels, clip_channels] of positive "
                f"integers, got {cc!r}"
            )
        if self.attention_head_dim % 8:
            raise ConfigError(
                "transformer config: attention_head_dim must be a multiple of 8 (3-D RoPE splits it 1/2, 1/4, 1/4), "
                f"got {self.attention_head_dim}"
            )
        _require_value("patch_size", self.patch_size, (1,))
        _require_value("norm_type", self.norm_type, ("ada_norm_single",))
        _require_value("norm_elementwise_affine", self.norm_elementwise_affine, (False,))
        _require_value("use_additional_conditions", self.use_additional_conditions, (False, True))
        _require_value("attention_type", self.attention_type, _ATTENTION_TYPES)
        require_number(_LABEL, self, "norm_eps", 0)
        # Dropout is inactive at inference; any training value in [0, 1) is harmless.
        require_number(_LABEL, self, "dropout", 0, 1, low_inclusive=True)


def _require_value(name: str, value: Any, allowed: tuple) -> None:
    # `type(...) is` keeps True from passing as 1 and 1 from passing as True.
    if not any(type(value) is type(a) and value == a for a in allowed):
        shown = ", ".join(repr(a).replace("True", "true").replace("False", "false") for a in allowed)
        raise ConfigError(f"transformer config: {name} must be one of [{shown}], got {value!r}")


# --------------------------------------------------------------------------- non-block modules
class PatchEmbed(nn.Module):
    """1×1 conv (key `proj`, weight [dim, C, 1, 1]): a per-pixel linear map to tokens."""

    def __init__(self, in_channels: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=1, stride=1, bias=True)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, F, C, H, W) → (B, F·H·W, dim), token order frame, row, column."""
        batch, frames, channels, height, width = latents.shape
        tokens = self.proj(latents.reshape(batch * frames, channels, height, width))
        return tokens.flatten(2).transpose(1, 2).reshape(batch, frames * height * width, -1)


class TwoLayerMLP(nn.Module):
    """linear_1 → activation → linear_2, both with bias. Serves as the timestep embedder (SiLU) and
    the caption projection (tanh-GELU), which differ only in the activation (official classes
    TimestepEmbedding and PixArtAlphaTextProjection; same keys)."""

    def __init__(self, in_features: int, dim: int, activation: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(in_features, dim)
        self.linear_2 = nn.Linear(dim, dim)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.activation(self.linear_1(x)))


def _gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x, approximate="tanh")


class CombinedTimestepEmbedding(nn.Module):
    """Holds `timestep_embedder` (key path adaln_single.emb.timestep_embedder.*) and, for TI2V,
    `motion_score_embedder` (adaln_single.emb.motion_score_embedder.*)."""

    def __init__(self, dim: int, motion: bool = False) -> None:
        super().__init__()
        self.timestep_embedder = TwoLayerMLP(TIMESTEP_CHANNELS, dim, F.silu)
        if motion:
            self.motion_score_embedder = TwoLayerMLP(TIMESTEP_CHANNELS, dim, F.silu)

    def forward(self, scaled_timestep: torch.Tensor, motion: torch.Tensor | None = None) -> torch.Tensor:
        # The sinusoid is fp32; the embedder runs in the compute dtype (that of the timestep).
        embedded = self.timestep_embedder(timestep_sinusoid(scaled_timestep, TIMESTEP_CHANNELS).to(scaled_timestep.dtype))
        if motion is None:
            return embedded
        # The same sinusoid as t, of the raw score: the official code rescales only the timestep.
        return embedded + self.motion_score_embedder(timestep_sinusoid(motion, TIMESTEP_CHANNELS).to(motion.dtype))


class AdaLayerNormSingle(nn.Module):
    """t (and the TI2V motion score) → (modulation (B, 6·dim) shared by all blocks, embedded (B, dim))."""

    def __init__(self, dim: int, motion: bool = False) -> None:
        super().__init__()
        self.emb = CombinedTimestepEmbedding(dim, motion)
        self.linear = nn.Linear(dim, 6 * dim)

    def forward(self, timestep: torch.Tensor, motion: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        # Rescaled in the caller's dtype (bf16 in production), as the weights were trained.
        embedded = self.emb(timestep * TIMESTEP_RESCALE, motion)
        return self.linear(F.silu(embedded)), embedded


def concat_condition(latents: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
    """TI2V input: the noisy latent's channels first, then the condition's (official model.py order;
    pos_embed.proj input channels 0..C−1 read the latent, C..2C−1 the condition)."""
    return torch.cat([latents, condition], dim=2)


# --------------------------------------------------------------------------- model
class StepVideoDiT(nn.Module):
    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.inner_dim
        llm_channels, clip_channels = config.caption_channels
        self.pos_embed = PatchEmbed(config.patch_in_channels, dim)
        self.transformer_blocks = nn.ModuleList(
            [StepVideoBlock(dim, config.attention_head_dim) for _ in range(config.num_layers)]
        )
        self.norm_out = nn.LayerNorm(dim, eps=config.norm_eps, elementwise_affine=False)
        self.scale_shift_table = nn.Parameter(torch.randn(2, dim) / dim**0.5)
        self.proj_out = nn.Linear(dim, config.output_channels)
        self.adaln_single = AdaLayerNormSingle(dim, motion=config.image_conditioned)
        self.clip_projection = nn.Linear(clip_channels, dim)
        self.caption_norm = nn.LayerNorm(llm_channels, eps=config.norm_eps, elementwise_affine=False)
        # Step-LLM hidden states → model width.
        self.caption_projection = TwoLayerMLP(llm_channels, dim, _gelu_tanh)
        # Seam for the memory planner: run each block's FFN over this many tokens at a time.
        self.ff_chunk_tokens: int | None = None

    def forward(
        self,
        latents: torch.Tensor,
        timestep: torch.Tensor,
        llm_hidden: torch.Tensor,
        llm_mask: torch.Tensor,
        clip_hidden: torch.Tensor,
        condition: torch.Tensor | None = None,
        motion: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """latents (B, F, C, H, W); timestep (B,) in the compute dtype, t in [0, 1);
        llm_hidden (B, Lt, llm_channels); llm_mask (B, Lt) of 0/1; clip_hidden (B, Lc, clip_channels);
        TI2V only (and required there): condition like latents, motion (B,) in the compute dtype.
        Returns the velocity (B, F, out_channels, H, W)."""
        self._check_inputs(latents, timestep, llm_hidden, llm_mask, clip_hidden)
        self._check_image_inputs(latents, condition, motion)
        batch, frames, _, height, width = latents.shape
        x = self.pos_embed(latents if condition is None else concat_condition(latents, condition))
        modulation, embedded_t = self.adaln_single(timestep, motion)
        context, key_mask = self._caption_tokens(llm_hidden, llm_mask, clip_hidden)
        rope_cos, rope_sin = rope_3d_tables(
            frames, height, width, self.config.attention_head_dim, x.dtype, x.device
        )
        for block in self.transformer_blocks:
            x = block(x, context, modulation, rope_cos, rope_sin, key_mask, self.ff_chunk_tokens)

        shift, scale = (self.scale_shift_table[None] + embedded_t[:, None]).chunk(2, dim=1)
        x = self.proj_out(self.norm_out(x) * (1 + scale) + shift)
        return x.reshape(batch, frames, height, width, -1).permute(0, 1, 4, 2, 3).contiguous()

    def _caption_tokens(
        self, llm_hidden: torch.Tensor, llm_mask: torch.Tensor, clip_hidden: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """CLIP tokens first, then LLM tokens, truncated to the batch's longest valid length.

        All CLIP positions count as valid (BERT padding included), as in the official model. The
        mask marks the first kv_len keys of each sample valid, kv_len = 77 + sum(llm_mask) counted
        in the activation dtype: the official prefix semantics, equal to the real mask for
        right-padded LLM tokens (up to bf16 rounding of kv_len above 256).
        """
        llm = self.caption_projection(self.caption_norm(llm_hidden))
        clip = self.clip_projection(clip_hidden)
        context = torch.cat([clip, llm], dim=1)
        # As the official pipeline: CLIP positions are prepended to the mask as ones, and the count
        # is taken in the activation dtype (bf16 rounds it above 256; see caption_kv_lengths).
        full_mask = torch.cat([llm_mask.new_ones(llm_mask.shape[0], clip.shape[1]), llm_mask], dim=1)
        kv_lengths = caption_kv_lengths(full_mask, context.dtype)
        max_len = int(kv_lengths.max())
        if bool((kv_lengths == max_len).all()):
            # Every key left is visible (always so for one row, as when CFG runs its rows one at a
            # time): no mask, so SDPA may take its flash kernel. Same math.
            return context[:, :max_len], None
        return context[:, :max_len], key_length_mask(kv_lengths, max_len)

    def _check_image_inputs(
        self, latents: torch.Tensor, condition: torch.Tensor | None, motion: torch.Tensor | None
    ) -> None:
        if not self.config.image_conditioned:
            if condition is not None or motion is not None:
                raise InvalidRequest("this transformer is text-to-video: it takes no image condition or motion score")
            return
        if condition is None or motion is None:
            raise InvalidRequest("this transformer is image-to-video (TI2V): it needs an image condition and a motion score")
        if tuple(condition.shape) != tuple(latents.shape):
            raise InvalidRequest(f"DiT condition must have the latents' shape {tuple(latents.shape)}, "
                                 f"got {tuple(condition.shape)}")
        if tuple(motion.shape) != (latents.shape[0],) or not motion.is_floating_point():
            raise InvalidRequest(f"DiT motion must be a float tensor of shape ({latents.shape[0]},), "
                                 f"got {motion.dtype} {tuple(motion.shape)}")

    def _check_inputs(
        self,
        latents: torch.Tensor,
        timestep: torch.Tensor,
        llm_hidden: torch.Tensor,
        llm_mask: torch.Tensor,
        clip_hidden: torch.Tensor,
    ) -> None:
        cfg = self.config
        llm_channels, clip_channels = cfg.caption_channels
        if latents.ndim != 5 or latents.shape[2] != cfg.in_channels:
            raise InvalidRequest(
                f"DiT latents must be (B, F, {cfg.in_channels}, H, W), got {tuple(latents.shape)}"
            )
        if not timestep.is_floating_point():
            raise InvalidRequest(f"DiT timestep must be floating point t in [0, 1) in the compute dtype, got {timestep.dtype}")
        batch = latents.shape[0]
        expected = {
            "timestep": (timestep, (batch,)),
            "llm_hidden": (llm_hidden, (batch, llm_mask.shape[-1], llm_channels)),
            "llm_mask": (llm_mask, (batch, llm_hidden.shape[1] if llm_hidden.ndim == 3 else -1)),
            "clip_hidden": (clip_hidden, (batch, clip_hidden.shape[1] if clip_hidden.ndim == 3 else -1, clip_channels)),
        }
        for name, (tensor, shape) in expected.items():
            if tuple(tensor.shape) != shape:
                raise InvalidRequest(f"DiT {name} must have shape {shape}, got {tuple(tensor.shape)}")
