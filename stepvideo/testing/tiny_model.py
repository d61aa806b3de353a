"""make_tiny_model(dir): a complete Step-Video-T2V repo in the exact hub layout, tiny and random.

The same loaders that read the published weights read these files, so tests, the CLI and the desktop
exercise the real code paths on CPU in seconds. Configs are the published ones with small numbers.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
import math
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from stepvideo.engine import layout
from stepvideo.engine.loading import VAE_CONFIG_METADATA_KEY
from stepvideo.testing.tiny_tokenizers import build_tiny_bert_vocab, build_tiny_sentencepiece

# Package data (stepvideo/data/), read through importlib.resources like the app's resources.
REFERENCE_CONFIGS = Path(str(importlib.resources.files("stepvideo").joinpath("data", "hub_configs")))
TINY_LLM = {"hidden_size": 64, "num_layers": 2, "num_attention_heads": 4, "num_attention_groups": 2,
            "kv_channels": 16, "ffn_hidden_size": 96}
TINY_CLIP = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
             "max_position_embeddings": 80}
TINY_DIT = {"num_attention_heads": 2, "attention_head_dim": 128, "num_layers": 2}


def published_config(relative: str) -> dict[str, Any]:
    return json.loads((REFERENCE_CONFIGS / relative).read_text(encoding="utf-8"))


def _random_state(module: torch.nn.Module, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Scale-preserving random weights: unit norms, zero biases, fan-in-scaled matrices and kernels."""
    state = {}
    for name, tensor in module.state_dict().items():
        leaf = name.rsplit(".", 1)[-1]
        if tensor.ndim == 1 and ("norm" in name or leaf == "weight" and "norm" in name.lower()):
            value = torch.ones(tensor.shape)
        elif leaf == "bias":
            value = torch.randn(tensor.shape, generator=generator) * 0.02
        elif tensor.ndim == 1:
            value = torch.ones(tensor.shape)
        else:
            fan_in = max(1, tensor[0].numel()) if "scale_shift_table" not in name else tensor.shape[-1]
            value = torch.randn(tensor.shape, generator=generator) / math.sqrt(fan_in)
        state[name] = value.to(tensor.dtype).contiguous()
    return state


def _write_sharded(state: dict[str, torch.Tensor], folder: Path, stem: str, index_name: str, shards: int,
                   dtype: torch.dtype) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    keys = list(state)
    per_shard = math.ceil(len(keys) / shards)
    weight_map, total = {}, 0
    for i in range(shards):
        name = f"{stem}-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = {k: state[k].to(dtype).contiguous() for k in keys[i * per_shard:(i + 1) * per_shard]}
        save_file(part, str(folder / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(part, name))
        total += sum(t.numel() * t.element_size() for t in part.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / index_name).write_text(json.dumps(index, indent=2))


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False))


def _build(cls, config, generator) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        module = cls(config)
    return _random_state(module, generator)


def make_transformer(root: Path, seed: int = 0, llm_hidden: int = TINY_LLM["hidden_size"],
                     clip_hidden: int = TINY_CLIP["hidden_size"], ti2v: bool = False) -> None:
    from stepvideo.models.dit import DiTConfig, StepVideoDiT

    generator = torch.Generator().manual_seed(seed)
    config = {**published_config(layout.DIT_CONFIG), **TINY_DIT, "caption_channels": [llm_hidden, clip_hidden]}
    if ti2v:  # the TI2V config differs from T2V's in this one value (ti2v-facts §1.1)
        config["use_additional_conditions"] = True
    _write_json(root / layout.DIT_CONFIG, config)
    state = _build(StepVideoDiT, DiTConfig.from_dict(config), generator)
    _write_sharded(state, root / "transformer", "diffusion_pytorch_model", Path(layout.DIT_INDEX).name, 3, torch.bfloat16)


def make_tiny_model(directory: str | Path, turbo: bool = False, seed: int = 0, ti2v: bool = False) -> Path:
    """Write a tiny random model. `turbo=True` writes only a transformer, like stepvideo-t2v-turbo;
    `ti2v=True` a full image-to-video repo like stepvideo-ti2v: the same encoders and VAE as the T2V
    tiny model of the same seed (byte-identical files, as the hub repos are believed to be), and a
    transformer with 128 input channels and a motion-score embedder."""
    if turbo and ti2v:
        raise ValueError("a tiny model is turbo or TI2V, not both")
    from stepvideo.models.clip import CLIPConfig, HunyuanCLIP
    from stepvideo.models.step_llm import StepLLM, StepLLMConfig
    from stepvideo.models.vae import VAEConfig, VideoVAE

    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    make_transformer(root, seed=seed + (1 if turbo else 3 if ti2v else 0), ti2v=ti2v)
    if turbo:
        return root
    generator = torch.Generator().manual_seed(seed + 2)
    model_index = published_config(layout.MODEL_INDEX)
    if ti2v:  # the TI2V repo names the full module paths (ti2v-facts §4)
        model_index.update(scheduler=["stepvideo.diffusion.scheduler", "FlowMatchDiscreteScheduler"],
                           transformer=["stepvideo.modules.model", "StepVideoModel"])
    _write_json(root / layout.MODEL_INDEX, model_index)
    _write_json(root / layout.SCHEDULER_CONFIG, published_config(layout.SCHEDULER_CONFIG))

    (root / "step_llm").mkdir(parents=True, exist_ok=True)
    pieces = build_tiny_sentencepiece(root / layout.LLM_TOKENIZER)
    llm_config = {**published_config(layout.LLM_CONFIG), **TINY_LLM, "padded_vocab_size": pieces,
                  "orig_vocab_size": pieces}
    _write_json(root / layout.LLM_CONFIG, llm_config)
    state = _build(StepLLM, StepLLMConfig.from_dict(llm_config), generator)
    _write_sharded(state, root / "step_llm", "model", Path(layout.LLM_INDEX).name, 2, torch.bfloat16)

    (root / layout.CLIP_VOCAB).parent.mkdir(parents=True, exist_ok=True)
    vocab = build_tiny_bert_vocab(root / layout.CLIP_VOCAB)
    clip_config = {**published_config(layout.CLIP_CONFIG), **TINY_CLIP, "vocab_size": vocab}
    _write_json(root / layout.CLIP_CONFIG, clip_config)
    clip_state = _build(HunyuanCLIP, CLIPConfig.from_dict(clip_config), generator)
    torch.save(clip_state, root / layout.CLIP_WEIGHTS)

    vae_config = VAEConfig.tiny()
    vae_state = _build(VideoVAE, vae_config, generator)
    (root / "vae").mkdir(parents=True, exist_ok=True)
    vae_state = {k: v.to(torch.bfloat16) for k, v in vae_state.items()}  # half the bytes; it runs in bf16
    save_file(vae_state, str(root / layout.VAE_WEIGHTS),
              # One metadata key only: safetensors writes a metadata map in hash order, so two keys could
              # come out in either order and make byte-identical VAEs (T2V and TI2V tiny models) differ.
              metadata={VAE_CONFIG_METADATA_KEY: json.dumps(dataclasses.asdict(vae_config))})
    return root
