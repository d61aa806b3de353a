"""HunyuanCLIP: the 24-layer Chinese BERT (hfl/chinese-roberta-wwm-ext-large lineage) Step-Video
uses as its second text encoder.

Module names follow HF `BertModel`, so a BertModel checkpoint loads with unchanged keys. We keep no
pooler: Step-Video discards `pooler_output`, so its 1.05M parameters would be dead weight. Load the
published `hunyuan_clip/clip_text_encoder/pytorch_model.bin` with `load_hunyuan_clip`, which also
accepts the `bert.`-prefixed layout of a pre-training checkpoint (see `bert_model_keys`); a bare
BertModel file also loads with `weights.load_torch_checkpoint(..., ignore=CHECKPOINT_IGNORE)`.
Inference only: dropout is never applied.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..engine.weights import load_torch_checkpoint
from ..errors import ConfigError
from .config_keys import config_values, require_number, require_positive_ints

_LABEL = "hunyuan_clip"

# Keys of the published config that do not change the encoder's math; accepted with their types.
_INERT_KEYS = {
    "_name_or_path": str,
    "bos_token_id": int,
    "eos_token_id": int,
    "pad_token_id": int,
    "directionality": str,
    "output_past": bool,
    "use_cache": bool,
    "initializer_range": (int, float),
    "torch_dtype": str,
    "transformers_version": str,
    "classifier_dropout": (float, type(None)),
    "attention_probs_dropout_prob": (int, float),  # dropout: inference never applies it
    "hidden_dropout_prob": (int, float),
    # The unused pooler's settings (pooler_type etc. are BERT-pretraining metadata).
    "pooler_fc_size": int,
    "pooler_num_attention_heads": int,
    "pooler_num_fc_layers": int,
    "pooler_size_per_head": int,
    "pooler_type": str,
}

# Keys of a BertModel checkpoint we do not use (for weights.load_torch_checkpoint's `ignore`).
CHECKPOINT_IGNORE = ("pooler.*", "embeddings.position_ids")
# Extra keys of a checkpoint saved from a BERT pre-training model: the MLM/NSP heads.
_HEAD_PREFIXES = ("cls.",)


@dataclass(frozen=True)
class CLIPConfig:
    """`hunyuan_clip/clip_text_encoder/config.json`. Defaults are the published values."""

    vocab_size: int = 47020
    hidden_size: int = 1024
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    intermediate_size: int = 4096
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_act: str = "gelu"
    position_embedding_type: str = "absolute"
    model_type: str = "bert"
    architectures: tuple[str, ...] = ("BertModel",)

    @classmethod
    def from_dict(cls, d: dict) -> CLIPConfig:
        config = cls(**config_values(_LABEL, d, cls, _INERT_KEYS))
        config.validate()
        return config

    def validate(self) -> None:
        require_positive_ints(_LABEL, self, ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                                             "intermediate_size", "max_position_embeddings", "type_vocab_size"))
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError("hunyuan_clip config: hidden_size must be a multiple of num_attention_heads")
        if self.hidden_act != "gelu":
            raise ConfigError(f"hunyuan_clip config: hidden_act must be 'gelu', got {self.hidden_act!r}")
        if self.position_embedding_type != "absolute":
            raise ConfigError("hunyuan_clip config: position_embedding_type must be 'absolute'")
        if self.model_type != "bert" or self.architectures != ("BertModel",):
            raise ConfigError("hunyuan_clip config: model_type must be 'bert' with architectures ['BertModel']")
        require_number(_LABEL, self, "layer_norm_eps", 0, 1)


class BertEmbeddings(nn.Module):
    def __init__(self, config: CLIPConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        length = input_ids.shape[1]
        positions = torch.arange(length, device=input_ids.device)
        # Single-segment input: token type 0 everywhere, as BertModel does without token_type_ids.
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions)[None]
        x = x + self.token_type_embeddings.weight[0]
        return self.LayerNorm(x)


class BertSelfAttention(nn.Module):
    def __init__(self, config: CLIPConfig) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        b, length, dim = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, length, self.num_heads, dim // self.num_heads).transpose(1, 2)

        out = F.scaled_dot_product_attention(heads(self.query(x)), heads(self.key(x)), heads(self.value(x)),
                                             attn_mask=mask_bias)
        return out.transpose(1, 2).reshape(b, length, dim)


class BertOutput(nn.Module):
    """dense → + residual → LayerNorm. HF has two copies of this, BertSelfOutput (after attention,
    input width hidden) and BertOutput (after the MLP, input width intermediate); keys are the same."""

    def __init__(self, config: CLIPConfig, in_features: int) -> None:
        super().__init__()
        self.dense = nn.Linear(in_features, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(hidden) + residual)


class BertAttention(nn.Module):
    def __init__(self, config: CLIPConfig) -> None:
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertOutput(config, config.hidden_size)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(x, mask_bias), x)


class BertIntermediate(nn.Module):
    def __init__(self, config: CLIPConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(x))  # exact (erf) GELU, as HF "gelu"


class BertLayer(nn.Module):
    def __init__(self, config: CLIPConfig) -> None:
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config, config.intermediate_size)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        attended = self.attention(x, mask_bias)
        return self.output(self.intermediate(attended), attended)


class BertEncoder(nn.Module):
    def __init__(self, config: CLIPConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        for layer in self.layer:
            x = layer(x, mask_bias)
        return x


def padding_bias(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, L) 0/1 mask → additive (B, 1, 1, L) bias: 0 on real tokens, dtype's minimum on padding
    (BERT's own convention; finite, so no row can turn into NaN)."""
    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


class HunyuanCLIP(nn.Module):
    """forward(input_ids (B, L), attention_mask (B, L)) -> last_hidden_state (B, L, hidden), every position."""

    def __init__(self, config: CLIPConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be (batch, length), got shape {tuple(input_ids.shape)}")
        if input_ids.shape[1] > self.config.max_position_embeddings:
            raise ValueError(f"at most {self.config.max_position_embeddings} tokens, got {input_ids.shape[1]}")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        x = self.embeddings(input_ids)
        return self.encoder(x, padding_bias(attention_mask, x.dtype))


def parameter_count(config: CLIPConfig) -> int:
    """Closed-form parameter count of HunyuanCLIP without pooler (for memory planning)."""
    h, i = config.hidden_size, config.intermediate_size
    embeddings = (config.vocab_size + config.max_position_embeddings + config.type_vocab_size) * h + 2 * h
    layer = 4 * (h * h + h) + 2 * (2 * h) + (h * i + i) + (i * h + h)
    return embeddings + config.num_hidden_layers * layer


def bert_model_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A BERT checkpoint's tensors under BertModel's own key names, without pooler/heads/buffers.

    HF `BertModel.from_pretrained` (what the official code calls) accepts both a bare BertModel
    checkpoint and one saved from a pre-training model, whose keys carry a `bert.` prefix next to
    `cls.*` heads. HunyuanDiT's CLIP file, which Step-Video ships, is read by DiffSynth-Studio as the
    prefixed kind, so we accept both, like from_pretrained: strip `bert.`, drop the rest we don't use.
    """
    prefixed = any(k.startswith("bert.") for k in state)
    out = {}
    for key, tensor in state.items():
        if prefixed:
            if not key.startswith("bert."):
                if key.startswith(_HEAD_PREFIXES):
                    continue
                out[key] = tensor  # kept, so compare_keys names it as unexpected
                continue
            key = key[len("bert."):]
        if any(fnmatch.fnmatchcase(key, p) for p in CHECKPOINT_IGNORE):
            continue
        out[key] = tensor
    return out


def load_hunyuan_clip(
    module: HunyuanCLIP, path: str | Path, dtype: torch.dtype | None = None, device: torch.device | str = "cpu"
) -> HunyuanCLIP:
    """Load `clip_text_encoder/pytorch_model.bin` (weights_only, never unpickles code) into a meta-built
    HunyuanCLIP, with a strict key/shape check after `bert_model_keys`."""
    return load_torch_checkpoint(module, path, dtype=dtype, device=device, normalize_keys=bert_model_keys)
