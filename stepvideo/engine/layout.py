"""The hub repo layout of Step-Video-T2V (facts §1), relative to a model root. Torch-free."""

from __future__ import annotations

from pathlib import Path

MODEL_INDEX = "model_index.json"
SCHEDULER_CONFIG = "scheduler/scheduler_config.json"
DIT_CONFIG = "transformer/config.json"
DIT_INDEX = "transformer/diffusion_pytorch_model.safetensors.index.json"
LLM_CONFIG = "step_llm/config.json"
LLM_INDEX = "step_llm/model.safetensors.index.json"
LLM_TOKENIZER = "step_llm/step1_chat_tokenizer.model"
CLIP_CONFIG = "hunyuan_clip/clip_text_encoder/config.json"
CLIP_WEIGHTS = "hunyuan_clip/clip_text_encoder/pytorch_model.bin"
CLIP_VOCAB = "hunyuan_clip/tokenizer/vocab.txt"
VAE_WEIGHTS = "vae/vae_v2.safetensors"

# What each stage needs; the turbo repo carries only the transformer.
TRANSFORMER_FILES = (DIT_CONFIG, DIT_INDEX)
ENCODER_FILES = (LLM_CONFIG, LLM_INDEX, LLM_TOKENIZER, CLIP_CONFIG, CLIP_WEIGHTS, CLIP_VOCAB)
VAE_FILES = (VAE_WEIGHTS,)


def missing_files(root: Path, files: tuple[str, ...]) -> list[str]:
    root = Path(root)
    return [f for f in files if not (root / f).is_file()]
