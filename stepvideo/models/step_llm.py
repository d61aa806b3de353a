"""Step-LLM ("Step1Model"), the 19.6B decoder used as Step-Video's main text encoder.

Pre-norm decoder without positional embeddings: every block is RMSNorm → grouped-query attention →
residual, RMSNorm → SwiGLU → residual; there is no final norm and no LM head, the output is the
residual stream after the last block. Positions enter only through the attention bias.

The official code delegates attention to a closed CUDA op (`liboptimus_ths*.so`) that holds the
positional encoding. We compute it in PyTorch as causal attention plus a square-root ALiBi bias,
bias(i, j) = -slope_h * sqrt(i - j) for j <= i, with the standard ALiBi slopes — the formulation of
StepFun's open Step-1 models (Step-Audio's `modeling_step1.py`, vLLM's `use_alibi_sqrt`), which the
facts sheet (§3.1) identifies as what the op computes. Not verified numerically against the op.

State-dict keys equal the published `step_llm/` safetensors, so the shards load unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .config_keys import config_values, require_number, require_positive_ints
from .layers import RMSNorm

# The official FeedForward rounds the configured width up to a multiple of this (16896 already is).
FFN_MULTIPLE_OF = 256

# config.json keys that only concern training or the original serving stack; accepted and ignored.
_TRAINING_ONLY_KEYS = {
    "_name_or_path": str,
    "allow_transformer_engine": bool,
    "base_batch_size": int,
    "overlap_p2p_comm": bool,
    "swiglu_recompute_silu_dot": bool,
    "tokens_to_generate": int,
    "transformers_version": str,
    "use_flash_attn": bool,  # the attention math is the same either way; ours is always PyTorch
    "virtual_pipeline_model_parallel_size": (int, type(None)),
}

_DTYPES = {"bfloat16", "float16", "float32"}
_LABEL = "step_llm"


@dataclass(frozen=True)
class StepLLMConfig:
    """`step_llm/config.json`. Defaults are the published values."""

    hidden_size: int = 6144
    num_layers: int = 48
    num_attention_heads: int = 48
    num_attention_groups: int = 8
    kv_channels: int = 128
    ffn_hidden_size: int = 16896
    layernorm_epsilon: float = 1e-5
    padded_vocab_size: int = 65536
    orig_vocab_size: int = 65536
    max_position_embeddings: int = 16384
    seq_length: int = 16384
    attention_dropout: float = 0.0
    hidden_dropout: float = 0.0
    embedding_weights_in_fp32: bool = False
    fp32_residual_connection: bool = False
    attention_impl: str = "GQA"
    architectures: tuple[str, ...] = ("Step1Model",)
    params_dtype: str = "torch.bfloat16"
    torch_dtype: str = "bfloat16"

    @classmethod
    def from_dict(cls, d: dict) -> StepLLMConfig:
        config = cls(**config_values(_LABEL, d, cls, _TRAINING_ONLY_KEYS))
        config.validate()
        return config

    def validate(self) -> None:
        require_positive_ints(_LABEL, self, (
            "hidden_size", "num_layers", "num_attention_heads", "num_attention_groups", "kv_channels",
            "ffn_hidden_size", "padded_vocab_size", "orig_vocab_size", "max_position_embeddings", "seq_length",
        ))
        if self.architectures != ("Step1Model",):
            raise ConfigError(f"step_llm config: architectures must be ['Step1Model'], got {list(self.architectures)}")
        if self.attention_impl != "GQA":
            raise ConfigError(f"step_llm config: attention_impl must be 'GQA', got {self.attention_impl!r}")
        if self.num_attention_heads % self.num_attention_groups:
            raise ConfigError("step_llm config: num_attention_heads must be a multiple of num_attention_groups")
        if self.hidden_size != self.num_attention_heads * self.kv_channels:
            raise ConfigError("step_llm config: hidden_size must equal num_attention_heads * kv_channels")
        if self.orig_vocab_size > self.padded_vocab_size:
            raise ConfigError("step_llm config: orig_vocab_size must not exceed padded_vocab_size")
        if self.fp32_residual_connection:
            raise ConfigError("step_llm config: fp32_residual_connection must be false (only false is supported)")
        if not isinstance(self.embedding_weights_in_fp32, bool):
            raise ConfigError("step_llm config: embedding_weights_in_fp32 must be true or false")
        require_number(_LABEL, self, "layernorm_epsilon", 0, 1)
        for name in ("attention_dropout", "hidden_dropout"):
            require_number(_LABEL, self, name, 0, 1, low_inclusive=True)
        if self.torch_dtype not in _DTYPES or self.params_dtype not in {f"torch.{t}" for t in _DTYPES}:
            raise ConfigError(f"step_llm config: dtype must be one of {sorted(_DTYPES)}")

    @property
    def head_dim(self) -> int:
        return self.kv_channels

    @property
    def heads_per_group(self) -> int:
        return self.num_attention_heads // self.num_attention_groups

    @property
    def ffn_width(self) -> int:
        """Width of the SwiGLU hidden layer (w1 has twice this many rows)."""
        return FFN_MULTIPLE_OF * math.ceil(self.ffn_hidden_size / FFN_MULTIPLE_OF)


# --- pure math -------------------------------------------------------------------------------------


def alibi_slopes(num_heads: int) -> list[float]:
    """Standard ALiBi slopes for any head count.

    With n = the largest power of two <= num_heads: heads 1..n get 2^(-8k/n); the remaining heads get
    the odd terms of the sequence for 2n, 2^(-4(2m-1)/n), m = 1..num_heads-n.  For 48 heads: 32 slopes
    2^(-k/4) then 16 slopes 2^(-(2m-1)/8).
    """
    if num_heads < 1:
        raise ValueError("num_heads must be positive")
    n = 2 ** int(math.floor(math.log2(num_heads)))
    slopes = [2.0 ** (-8.0 * k / n) for k in range(1, n + 1)]
    slopes += [2.0 ** (-4.0 * (2 * m - 1) / n) for m in range(1, num_heads - n + 1)]
    return slopes


def sqrt_alibi_causal_bias(
    slopes: list[float], length: int, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Additive attention bias (1, heads, L, L): -slope_h * sqrt(i - j) on and below the diagonal, -inf above."""
    pos = torch.arange(length, device=device, dtype=torch.float32)
    distance = pos[:, None] - pos[None, :]  # i - j
    causal = distance >= 0
    bias = -torch.sqrt(distance.clamp(min=0))[None] * torch.tensor(slopes, device=device)[:, None, None]
    bias = bias.masked_fill(~causal, float("-inf"))
    return bias[None].to(dtype)


def split_qkv(
    qkv: torch.Tensor, num_heads: int, num_groups: int, head_dim: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """wqkv output (B, L, (heads + 2*groups)*d) → q (B, heads, L, d), k and v (B, groups, L, d).

    Row layout of wqkv: all query heads first, then per KV group its key (d rows) then value (d rows).
    """
    b, length, _ = qkv.shape
    q, kv = qkv.split([num_heads * head_dim, 2 * num_groups * head_dim], dim=-1)
    q = q.view(b, length, num_heads, head_dim).transpose(1, 2)
    k, v = kv.view(b, length, num_groups, 2 * head_dim).chunk(2, dim=-1)
    return q, k.transpose(1, 2), v.transpose(1, 2)


def parameter_count(config: StepLLMConfig) -> int:
    """Closed-form parameter count (19,579,600,896 for the published config)."""
    h = config.hidden_size
    qkv = (config.num_attention_heads + 2 * config.num_attention_groups) * config.head_dim * h
    layer = qkv + h * h + 3 * h * config.ffn_width + 2 * h
    return config.padded_vocab_size * h + config.num_layers * layer


# --- modules ---------------------------------------------------------------------------------------


class TokenEmbedding(nn.Module):
    """Holds `word_embeddings` so the key is `tok_embeddings.word_embeddings.weight` as published."""

    def __init__(self, vocab_size: int, dim: int) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab_size, dim)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.word_embeddings(input_ids)


class GroupedQueryAttention(nn.Module):
    def __init__(self, config: StepLLMConfig) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.num_groups = config.num_attention_groups
        self.head_dim = config.head_dim
        qkv_rows = (self.num_heads + 2 * self.num_groups) * self.head_dim
        self.wqkv = nn.Linear(config.hidden_size, qkv_rows, bias=False)
        self.wo = nn.Linear(config.hidden_size, config.hidden_size, bias=False)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, length, _ = x.shape
        q, k, v = split_qkv(self.wqkv(x), self.num_heads, self.num_groups, self.head_dim)
        per_group = self.num_heads // self.num_groups
        # query head j reads KV group j // per_group
        k = k.repeat_interleave(per_group, dim=1)
        v = v.repeat_interleave(per_group, dim=1)
        # Scores, bias and softmax in fp32 (as a flash kernel accumulates): at L=320 this costs
        # nothing, and a bf16 bias would round sqrt-ALiBi values of up to ~9 to steps of 1/16.
        # autocast would otherwise run SDPA in bf16.
        with torch.autocast(device_type=x.device.type, enabled=False):
            out = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=bias)
        out = out.to(x.dtype).transpose(1, 2).reshape(b, length, self.num_heads * self.head_dim)
        return self.wo(out)


class SwiGLU(nn.Module):
    def __init__(self, dim: int, width: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(dim, 2 * width, bias=False)  # rows [0, width) gate, [width, 2*width) up
        self.w2 = nn.Linear(width, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.w1(x).chunk(2, dim=-1)
        return self.w2(F.silu(gate) * up)


class StepLLMBlock(nn.Module):
    def __init__(self, config: StepLLMConfig) -> None:
        super().__init__()
        self.attention = GroupedQueryAttention(config)
        self.feed_forward = SwiGLU(config.hidden_size, config.ffn_width)
        # The official Step-LLM imports the DiT's RMSNorm class (stepvideo.modules.normalization), so
        # both models share ours too: fp32 normalise, cast back, then scale.
        self.attention_norm = RMSNorm(config.hidden_size, config.layernorm_epsilon)
        self.ffn_norm = RMSNorm(config.hidden_size, config.layernorm_epsilon)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        h = x + self.attention(self.attention_norm(x), bias)
        return h + self.feed_forward(self.ffn_norm(h))


class StepLLMTransformer(nn.Module):
    def __init__(self, config: StepLLMConfig) -> None:
        super().__init__()
        # Blocks live in one ModuleList so forward pre-hooks can stream them to the GPU one at a time.
        self.layers = nn.ModuleList(StepLLMBlock(config) for _ in range(config.num_layers))

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, bias)
        return x


class StepLLM(nn.Module):
    """forward(input_ids (B, L) long, attention_mask (B, L)) -> last block's hidden states (B, L, hidden)."""

    def __init__(self, config: StepLLMConfig) -> None:
        super().__init__()
        self.config = config
        self.slopes = alibi_slopes(config.num_attention_heads)
        self.tok_embeddings = TokenEmbedding(config.padded_vocab_size, config.hidden_size)
        self.transformer = StepLLMTransformer(config)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be (batch, length), got shape {tuple(input_ids.shape)}")
        if attention_mask is not None and attention_mask.shape != input_ids.shape:
            raise ValueError("attention_mask must have the shape of input_ids")
        # The mask is deliberately not applied, like the official op (which ignores it): attention is
        # causal and prompts are right-padded, so real tokens never see padding; pad positions keep
        # exactly the values the official encoder gives them.
        x = self.tok_embeddings(input_ids)
        bias = sqrt_alibi_causal_bias(self.slopes, input_ids.shape[1], device=x.device)
        return self.transformer(x, bias)
