"""Step-LLM: config parsing, the published key list and sizes, and the attention math."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from stepvideo.engine.weights import load_sharded
from stepvideo.errors import ConfigError
from stepvideo.models.step_llm import (
    StepLLM,
    StepLLMConfig,
    alibi_slopes,
    parameter_count,
    sqrt_alibi_causal_bias,
)

CONFIG_PATH = Path(__file__).parent / "data" / "hub_configs" / "step_llm" / "config.json"

TINY = dict(
    hidden_size=48, num_layers=2, num_attention_heads=6, num_attention_groups=2, kv_channels=8,
    ffn_hidden_size=256, padded_vocab_size=97, orig_vocab_size=97, layernorm_epsilon=1e-5,
)


def published() -> dict:
    return json.loads(CONFIG_PATH.read_text())


# --- config ----------------------------------------------------------------------------------------


def test_published_config_is_accepted_exactly():
    config = StepLLMConfig.from_dict(published())
    assert (config.hidden_size, config.num_layers, config.num_attention_heads) == (6144, 48, 48)
    assert (config.num_attention_groups, config.kv_channels, config.ffn_hidden_size) == (8, 128, 16896)
    assert config.layernorm_epsilon == 1e-5 and config.padded_vocab_size == 65536
    assert config == StepLLMConfig()  # the defaults are the published model


@pytest.mark.parametrize(
    "change, words",
    [
        ({"rotary_base": 10000}, "unknown key 'rotary_base'"),
        ({"attention_impl": "MHA"}, "attention_impl"),
        ({"num_attention_groups": 7}, "multiple of num_attention_groups"),
        ({"kv_channels": 64}, "hidden_size must equal"),
        ({"fp32_residual_connection": True}, "fp32_residual_connection"),
        ({"architectures": ["LlamaForCausalLM"]}, "architectures"),
        ({"hidden_size": "6144"}, "hidden_size must be a positive integer"),
        ({"num_layers": 0}, "num_layers must be a positive integer"),
        ({"overlap_p2p_comm": "yes"}, "overlap_p2p_comm"),
        ({"virtual_pipeline_model_parallel_size": True}, "virtual_pipeline_model_parallel_size"),
        ({"torch_dtype": "int8"}, "dtype"),
        ({"orig_vocab_size": 70000}, "orig_vocab_size"),
    ],
)
def test_bad_configs_are_rejected_with_one_clear_line(change, words):
    with pytest.raises(ConfigError, match=words) as info:
        StepLLMConfig.from_dict({**published(), **change})
    assert "\n" not in str(info.value)


def test_training_only_keys_are_optional():
    config = StepLLMConfig.from_dict(TINY)
    assert config.num_attention_heads == 6 and config.heads_per_group == 3


# --- full size, on meta ----------------------------------------------------------------------------


def expected_published_tensors() -> dict[str, tuple[int, ...]]:
    """Key list of step_llm/model.safetensors.index.json (tests/data/hub_configs/README.md), with the
    shapes from the facts sheet, written out independently of the model code."""
    shapes = {"tok_embeddings.word_embeddings.weight": (65536, 6144)}
    for i in range(48):
        p = f"transformer.layers.{i}."
        shapes[p + "attention.wqkv.weight"] = (8192, 6144)
        shapes[p + "attention.wo.weight"] = (6144, 6144)
        shapes[p + "attention_norm.weight"] = (6144,)
        shapes[p + "feed_forward.w1.weight"] = (33792, 6144)
        shapes[p + "feed_forward.w2.weight"] = (6144, 16896)
        shapes[p + "ffn_norm.weight"] = (6144,)
    return shapes


def test_full_size_model_matches_the_published_index():
    with torch.device("meta"):
        model = StepLLM(StepLLMConfig.from_dict(published()))
    found = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert found == expected_published_tensors()
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == 19_579_600_896
    assert 2 * n_params == 39_159_201_792  # the index's metadata.total_size, in bf16
    assert parameter_count(model.config) == n_params
    assert len(model.transformer.layers) == 48


# --- ALiBi slopes ------------------------------------------------------------------------------------


def test_slopes_for_48_heads_follow_the_facts_sheet():
    expected = [2 ** (-8 * k / 32) for k in range(1, 33)] + [2 ** (-4 * (2 * m - 1) / 32) for m in range(1, 17)]
    assert alibi_slopes(48) == pytest.approx(expected, rel=1e-15)


def test_slopes_for_other_head_counts():
    assert alibi_slopes(8) == pytest.approx([2.0 ** -k for k in range(1, 9)])
    # 6 heads: the 4 of the power of two, then the odd terms of the 8-head sequence
    assert alibi_slopes(6) == pytest.approx([2**-2, 2**-4, 2**-6, 2**-8, 2**-1, 2**-3])
    assert alibi_slopes(1) == pytest.approx([2**-8])


# --- numerics on a tiny config -----------------------------------------------------------------------


def tiny_model(seed: int = 0) -> StepLLM:
    torch.manual_seed(seed)
    model = StepLLM(StepLLMConfig.from_dict(TINY)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.uniform_(0.5, 1.5)  # non-trivial norm scales, so a missing/extra norm shows
            elif p.dim() == 2:
                p.normal_(0, 0.3)
    return model


def reference_attention(x: torch.Tensor, wqkv: torch.Tensor, wo: torch.Tensor, heads: int, groups: int) -> torch.Tensor:
    """Explicit per-head softmax attention with the causal sqrt-ALiBi bias, reading wqkv row by row."""
    b, length, _ = x.shape
    d = wqkv.shape[0] // (heads + 2 * groups)
    n = 2 ** math.floor(math.log2(heads))
    slopes = [2 ** (-8 * k / n) for k in range(1, n + 1)] + [2 ** (-4 * (2 * m - 1) / n) for m in range(1, heads - n + 1)]
    outs = []
    for h in range(heads):
        g = h // (heads // groups)
        q = x @ wqkv[h * d:(h + 1) * d].T
        kv_start = heads * d + g * 2 * d
        k = x @ wqkv[kv_start:kv_start + d].T
        v = x @ wqkv[kv_start + d:kv_start + 2 * d].T
        scores = q @ k.transpose(-1, -2) / math.sqrt(d)
        for i in range(length):
            for j in range(length):
                scores[:, i, j] += -slopes[h] * math.sqrt(i - j) if j <= i else float("-inf")
        outs.append(torch.softmax(scores, dim=-1) @ v)
    return torch.cat(outs, dim=-1) @ wo.T


def reference_rms(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w


def reference_forward(model: StepLLM, ids: torch.Tensor) -> torch.Tensor:
    sd = model.state_dict()
    cfg = model.config
    x = sd["tok_embeddings.word_embeddings.weight"][ids]
    for i in range(cfg.num_layers):
        p = f"transformer.layers.{i}."
        a = reference_rms(x, sd[p + "attention_norm.weight"], cfg.layernorm_epsilon)
        x = x + reference_attention(a, sd[p + "attention.wqkv.weight"], sd[p + "attention.wo.weight"],
                                    cfg.num_attention_heads, cfg.num_attention_groups)
        f = reference_rms(x, sd[p + "ffn_norm.weight"], cfg.layernorm_epsilon)
        w1 = sd[p + "feed_forward.w1.weight"]
        half = w1.shape[0] // 2
        hidden = torch.nn.functional.silu(f @ w1[:half].T) * (f @ w1[half:].T)
        x = x + hidden @ sd[p + "feed_forward.w2.weight"].T
    return x  # no final norm


def test_attention_matches_explicit_softmax_with_sqrt_alibi():
    model = tiny_model()
    attn = model.transformer.layers[0].attention
    torch.manual_seed(1)
    x = torch.randn(2, 9, 48)
    ours = attn(x, sqrt_alibi_causal_bias(model.slopes, 9))
    ref = reference_attention(x, attn.wqkv.weight.detach(), attn.wo.weight.detach(), 6, 2)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def test_forward_matches_the_explicit_reference_model():
    model = tiny_model()
    ids = torch.randint(0, 97, (2, 11), generator=torch.Generator().manual_seed(2))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        out = model(ids, mask)
    assert out.shape == (2, 11, 48)
    torch.testing.assert_close(out, reference_forward(model, ids), rtol=1e-4, atol=1e-4)


def test_output_is_causal_and_ignores_the_padding_mask_like_the_official_op():
    model = tiny_model()
    ids = torch.randint(3, 97, (1, 10), generator=torch.Generator().manual_seed(3))
    changed = ids.clone()
    changed[0, 6:] = 2  # different tail (padding)
    mask = torch.tensor([[1] * 6 + [0] * 4])
    with torch.no_grad():
        a = model(ids, torch.ones_like(ids))
        b = model(changed, mask)
        c = model(changed, torch.ones_like(ids))
    torch.testing.assert_close(a[:, :6], b[:, :6])  # the past does not see the future
    assert not torch.allclose(a[:, 6:], b[:, 6:])
    torch.testing.assert_close(b, c)  # the mask changes nothing


def test_bfloat16_forward_stays_close_to_float32():
    model = tiny_model()
    ids = torch.randint(0, 97, (2, 16), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        ref = model(ids, torch.ones_like(ids))
        out = model.to(torch.bfloat16)(ids, torch.ones_like(ids))
    assert out.dtype == torch.bfloat16
    err = (out.float() - ref).norm() / ref.norm()
    assert err < 0.03


def test_sharded_safetensors_load_into_a_meta_model(tmp_path):
    source = tiny_model()
    sd = {k: v.contiguous() for k, v in source.state_dict().items()}
    keys = sorted(sd)
    shards = {"model-00001-of-00002.safetensors": keys[: len(keys) // 2],
              "model-00002-of-00002.safetensors": keys[len(keys) // 2:]}
    weight_map = {}
    for name, shard_keys in shards.items():
        save_file({k: sd[k] for k in shard_keys}, str(tmp_path / name))
        weight_map.update(dict.fromkeys(shard_keys, name))
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    with torch.device("meta"):
        model = StepLLM(StepLLMConfig.from_dict(TINY))
    load_sharded(model, tmp_path, "model.safetensors.index.json")
    ids = torch.randint(0, 97, (1, 7), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(ids, torch.ones_like(ids)), source(ids, torch.ones_like(ids)))


def test_ffn_width_is_rounded_up_to_256_like_the_official_feedforward():
    config = StepLLMConfig.from_dict({**TINY, "ffn_hidden_size": 100})
    with torch.device("meta"):
        model = StepLLM(config)
    assert tuple(model.transformer.layers[0].feed_forward.w1.weight.shape) == (512, 48)
    assert tuple(model.transformer.layers[0].feed_forward.w2.weight.shape) == (48, 256)


def test_block_norms_are_the_shared_rmsnorm_with_official_precision_order():
    from stepvideo.models.layers import RMSNorm

    model = tiny_model()
    block = model.transformer.layers[0]
    assert type(block.attention_norm) is RMSNorm and type(block.ffn_norm) is RMSNorm
    assert block.attention_norm.eps == TINY["layernorm_epsilon"]
    assert {k for k in block.state_dict() if "norm" in k} == {"attention_norm.weight", "ffn_norm.weight"}
    # Official order: normalise in fp32, cast to bf16, THEN multiply by the bf16 weight.
    norm = block.attention_norm.to(torch.bfloat16)
    x = torch.randn(4, 48, generator=torch.Generator().manual_seed(6)).to(torch.bfloat16)
    xf = x.float()
    normed = (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + norm.eps)).to(torch.bfloat16)
    with torch.no_grad():
        assert torch.equal(norm(x), normed * norm.weight)
        weight_in_fp32 = (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + norm.eps) * norm.weight.float())
        assert not torch.equal(norm(x), weight_in_fp32.to(torch.bfloat16))  # the order is observable
