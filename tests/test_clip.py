"""HunyuanCLIP: config parsing, published keys/sizes, numerics and checkpoint loading against HF BertModel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertModel

from stepvideo.engine.weights import load_torch_checkpoint
from stepvideo.errors import ConfigError, WeightsMismatch
from stepvideo.models.clip import (
    CHECKPOINT_IGNORE,
    CLIPConfig,
    HunyuanCLIP,
    load_hunyuan_clip,
    parameter_count,
)

CONFIG_PATH = Path(__file__).parent / "data" / "hub_configs" / "hunyuan_clip" / "clip_text_encoder" / "config.json"

TINY = dict(
    vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
    max_position_embeddings=80, type_vocab_size=2, layer_norm_eps=1e-12,
)


def published() -> dict:
    return json.loads(CONFIG_PATH.read_text())


def test_published_config_is_accepted_exactly():
    config = CLIPConfig.from_dict(published())
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads) == (24, 1024, 16)
    assert (config.intermediate_size, config.vocab_size, config.layer_norm_eps) == (4096, 47020, 1e-12)
    assert config == CLIPConfig()


@pytest.mark.parametrize(
    "change, words",
    [
        ({"rope_theta": 1.0}, "unknown key 'rope_theta'"),
        ({"hidden_act": "gelu_new"}, "hidden_act"),
        ({"position_embedding_type": "relative_key"}, "position_embedding_type"),
        ({"num_attention_heads": 15}, "multiple of num_attention_heads"),
        ({"model_type": "roberta"}, "model_type"),
        ({"use_cache": "true"}, "use_cache"),
        ({"vocab_size": -1}, "vocab_size"),
    ],
)
def test_bad_configs_are_rejected(change, words):
    with pytest.raises(ConfigError, match=words):
        CLIPConfig.from_dict({**published(), **change})


def test_full_size_keys_and_shapes_equal_hf_bertmodel_without_pooler():
    config = CLIPConfig.from_dict(published())
    hf_config = BertConfig.from_dict(published())
    with torch.device("meta"):
        ours = HunyuanCLIP(config)
        hf = BertModel(hf_config, add_pooling_layer=False)
    ours_shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    hf_shapes = {k: tuple(v.shape) for k, v in hf.state_dict().items() if k not in ("embeddings.position_ids",)}
    assert ours_shapes == hf_shapes
    assert ours_shapes["encoder.layer.23.attention.self.query.weight"] == (1024, 1024)
    n_params = sum(p.numel() for p in ours.parameters())
    assert n_params == sum(p.numel() for p in hf.parameters())
    assert n_params == parameter_count(config)
    # The facts sheet: ~351M without the 1.05M pooler.
    assert 350_000_000 < n_params < 352_000_000


def random_hf_bert(seed: int = 0) -> BertModel:
    torch.manual_seed(seed)
    config = BertConfig(**TINY, hidden_act="gelu", attn_implementation="eager")
    model = BertModel(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name:
                p.uniform_(0.5, 1.5) if name.endswith("weight") else p.normal_(0, 0.1)
            else:
                p.normal_(0, 0.2)
    return model


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(0, 120, (3, 77), generator=torch.Generator().manual_seed(1))
    lengths = [77, 20, 2]
    mask = torch.tensor([[1] * n + [0] * (77 - n) for n in lengths])
    ids = torch.where(mask.bool(), ids, torch.zeros_like(ids))  # [PAD]=0 after the prompt
    return ids, mask


def test_matches_hf_bertmodel_on_every_position():
    hf = random_hf_bert()
    ours = HunyuanCLIP(CLIPConfig.from_dict(TINY)).eval()
    missing, unexpected = ours.load_state_dict(hf.state_dict(), strict=False)
    assert missing == [] and all(k.startswith("pooler.") for k in unexpected)
    ids, mask = batch()
    with torch.no_grad():
        expected = hf(input_ids=ids, attention_mask=mask).last_hidden_state
        got = ours(ids, mask)
    assert got.shape == (3, 77, 32)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    # and padding matters (the DiT sees all 77 positions, computed with the mask)
    with torch.no_grad():
        unmasked = ours(ids, torch.ones_like(mask))
    assert not torch.allclose(unmasked[1], got[1], atol=1e-3)


def test_pytorch_model_bin_saved_by_transformers_loads_unchanged(tmp_path):
    hf = random_hf_bert(seed=3)
    state = dict(hf.state_dict())
    # Old checkpoints (transformers 4.22, as published) also store the position-id buffer.
    state["embeddings.position_ids"] = torch.arange(TINY["max_position_embeddings"])[None]
    torch.save(state, tmp_path / "pytorch_model.bin")
    with torch.device("meta"):
        ours = HunyuanCLIP(CLIPConfig.from_dict(TINY))
    load_torch_checkpoint(ours, tmp_path / "pytorch_model.bin", ignore=CHECKPOINT_IGNORE)
    ids, mask = batch()
    with torch.no_grad():
        torch.testing.assert_close(
            ours.eval()(ids, mask), hf(input_ids=ids, attention_mask=mask).last_hidden_state, rtol=1e-5, atol=1e-5
        )


def test_exact_gelu_not_tanh_approximation():
    ours = HunyuanCLIP(CLIPConfig.from_dict(TINY)).eval()
    x = torch.linspace(-4, 4, 64)
    layer = ours.encoder.layer[0].intermediate
    with torch.no_grad():
        layer.dense.weight.zero_()
        layer.dense.bias.copy_(x)
        out = layer(torch.zeros(1, 32))[0]
    torch.testing.assert_close(out, 0.5 * x * (1 + torch.erf(x / 2**0.5)), rtol=0, atol=1e-6)


def test_prefixed_pretraining_checkpoint_loads_with_load_hunyuan_clip(tmp_path):
    """HunyuanDiT's CLIP file is read by DiffSynth as `bert.*` keys (plus heads); accept that layout."""
    hf = random_hf_bert(seed=4)
    state = {f"bert.{k}": v for k, v in hf.state_dict().items()}
    state["bert.embeddings.position_ids"] = torch.arange(TINY["max_position_embeddings"])[None]
    state["cls.predictions.bias"] = torch.zeros(TINY["vocab_size"])
    state["cls.predictions.transform.dense.weight"] = torch.zeros(32, 32)
    torch.save(state, tmp_path / "pytorch_model.bin")
    with torch.device("meta"):
        ours = HunyuanCLIP(CLIPConfig.from_dict(TINY))
    load_hunyuan_clip(ours, tmp_path / "pytorch_model.bin")
    ids, mask = batch()
    with torch.no_grad():
        torch.testing.assert_close(
            ours.eval()(ids, mask), hf(input_ids=ids, attention_mask=mask).last_hidden_state, rtol=1e-5, atol=1e-5
        )


def test_bare_checkpoint_loads_with_load_hunyuan_clip_and_bad_ones_are_named(tmp_path):
    hf = random_hf_bert(seed=5)
    torch.save(dict(hf.state_dict()), tmp_path / "pytorch_model.bin")
    with torch.device("meta"):
        ours = HunyuanCLIP(CLIPConfig.from_dict(TINY))
    load_hunyuan_clip(ours, tmp_path / "pytorch_model.bin", dtype=torch.bfloat16)
    assert ours.encoder.layer[1].output.dense.weight.dtype == torch.bfloat16
    broken = dict(hf.state_dict())
    del broken["encoder.layer.1.output.dense.weight"]
    torch.save(broken, tmp_path / "broken.bin")
    with torch.device("meta"):
        again = HunyuanCLIP(CLIPConfig.from_dict(TINY))
    with pytest.raises(WeightsMismatch, match="missing encoder.layer.1.output.dense.weight"):
        load_hunyuan_clip(again, tmp_path / "broken.bin")
