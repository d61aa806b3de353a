"""Build each component on the meta device from its hub config and assign its published weights."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from stepvideo.engine import layout
from stepvideo.engine.weights import load_single, safetensors_metadata
from stepvideo.errors import WeightsNotFound

VAE_CONFIG_METADATA_KEY = "stepvideo_vae_config"

log = logging.getLogger(__name__)


def read_config(root: Path, relative: str) -> dict[str, Any]:
    path = Path(root) / relative
    if not path.is_file():
        raise WeightsNotFound(f"missing model file: {path}")
    return json.loads(path.read_text(encoding="utf-8"))


def require_files(root: Path, files: tuple[str, ...], what: str) -> None:
    missing = layout.missing_files(root, files)
    if missing:
        raise WeightsNotFound(f"{what} at {root} is incomplete: missing {', '.join(missing[:3])}")


def dit_on_meta(root: Path) -> torch.nn.Module:
    from stepvideo.models.dit import DiTConfig, StepVideoDiT

    config = DiTConfig.from_dict(read_config(root, layout.DIT_CONFIG))
    with torch.device("meta"):
        return StepVideoDiT(config).eval()


def step_llm_on_meta(root: Path) -> torch.nn.Module:
    from stepvideo.models.step_llm import StepLLM, StepLLMConfig

    config = StepLLMConfig.from_dict(read_config(root, layout.LLM_CONFIG))
    with torch.device("meta"):
        return StepLLM(config).eval()


def dit_spec(root: Path):
    """Where the DiT's shards are and which of its Linears may be quantized."""
    from stepvideo.memory.placement import ComponentSpec
    from stepvideo.memory.quantize import DIT_POLICY

    return ComponentSpec("dit", "transformer_blocks", DIT_POLICY, Path(root) / "transformer", Path(layout.DIT_INDEX).name)


def step_llm_spec(root: Path):
    from stepvideo.memory.placement import ComponentSpec
    from stepvideo.memory.quantize import STEP_LLM_POLICY

    return ComponentSpec("step_llm", "transformer.layers", STEP_LLM_POLICY, Path(root) / "step_llm",
                         Path(layout.LLM_INDEX).name)


def load_clip(root: Path, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> torch.nn.Module:
    """HunyuanCLIP runs in fp32 like the official caption server; its pooler is unused and not loaded."""
    from stepvideo.models.clip import CLIPConfig, HunyuanCLIP, load_hunyuan_clip

    config = CLIPConfig.from_dict(read_config(root, layout.CLIP_CONFIG))
    with torch.device("meta"):
        model = HunyuanCLIP(config)
    return load_hunyuan_clip(model, Path(root) / layout.CLIP_WEIGHTS, dtype=dtype, device=device).eval()


def load_vae(root: Path, dtype: torch.dtype = torch.bfloat16, device: str | torch.device = "cpu") -> torch.nn.Module:
    from stepvideo.models.vae import VAEConfig, VideoVAE

    require_files(root, layout.VAE_FILES, "the VAE")
    config = VAEConfig()
    # The published file carries no config (the official code hard-codes it); files we write for
    # small test models record theirs in the safetensors metadata.
    stored = safetensors_metadata(Path(root) / layout.VAE_WEIGHTS).get(VAE_CONFIG_METADATA_KEY)
    if stored:
        config = VAEConfig.from_dict(json.loads(stored))
    with torch.device("meta"):
        model = VideoVAE(config)
    return load_single(model, Path(root) / layout.VAE_WEIGHTS, dtype=dtype, device=device).eval()


@dataclass
class Tokenizers:
    llm: Any
    clip: Any


def load_tokenizers(root: Path) -> Tokenizers:
    from stepvideo.models.tokenizers import ClipTokenizer, StepLLMTokenizer

    return Tokenizers(
        llm=StepLLMTokenizer.from_file(Path(root) / layout.LLM_TOKENIZER),
        clip=ClipTokenizer.from_vocab(Path(root) / layout.CLIP_VOCAB),
    )
