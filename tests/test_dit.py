"""Step-Video DiT: config parsing, published key/shape layout, and numerics against independent
reference computations written here (explicit softmax attention, RoPE by its formula, …)."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from stepvideo.errors import ConfigError, InvalidRequest
from stepvideo.models.dit import DiTConfig, StepVideoDiT
from stepvideo.models.dit_block import CrossAttention, SelfAttention, StepVideoBlock
from stepvideo.models.layers import apply_rope_3d, key_length_mask, rope_3d_tables

DATA = Path(__file__).parent / "data"
PUBLISHED = json.loads((DATA / "hub_configs" / "transformer" / "config.json").read_text())
EXPECTED = json.loads((DATA / "dit_expected_keys.json").read_text())
TINY = dict(
    num_attention_heads=2, attention_head_dim=128, num_layers=2, in_channels=64, out_channels=64,
    caption_channels=[64, 32],
)
HEAD = 128


# =========================================================================== references
def ref_rms(x, w, eps=1e-6):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w


def ref_layer_norm(x, w=None, b=None, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    y = (x - mu) / torch.sqrt(var + eps)
    return y if w is None else y * w + b


def ref_gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def positions_of(frames, rows, cols):
    """(L, 3) integer (frame, row, col) of each token in frame-major order."""
    return torch.tensor(list(itertools.product(range(frames), range(rows), range(cols))))


def ref_rope(x, positions):
    """RoPE on x (..., L, 128) by the pair formula. Bands: dims 0-63 frame, 64-95 row, 96-127 col;
    in each band of size D, dim j pairs with j + D/2 and turns by pos·10000^(-2j/D), that angle
    rounded to x.dtype before cos/sin (the official bf16 quirk)."""
    out = x.clone()
    for start, size, axis in ((0, 64, 0), (64, 32, 1), (96, 32, 2)):
        half = size // 2
        j = torch.arange(half)
        inv_freq = 1.0 / (10000 ** (torch.arange(0, size, 2).float() / size))
        angle = (positions[:, axis].float()[:, None] * inv_freq[j][None, :]).to(x.dtype)
        c, s = angle.cos(), angle.sin()
        x1 = x[..., start : start + half]
        x2 = x[..., start + half : start + size]
        out[..., start : start + half] = x1 * c - x2 * s
        out[..., start + half : start + size] = x2 * c + x1 * s
    return out


def ref_softmax_attention(q, k, v, kv_len=None):
    """q (Lq, d), k/v (Lk, d); keys at index >= kv_len are excluded."""
    scores = q @ k.T / math.sqrt(q.shape[-1])
    if kv_len is not None:
        scores[:, kv_len:] = float("-inf")
    return torch.softmax(scores, dim=-1) @ v


def ref_self_attention(attn, x, positions):
    """Per head h: rows [3·128h, 3·128h+128) of wqkv are q, the next 128 k, the next 128 v."""
    qkv = x @ attn.wqkv.weight.T
    batch_out = []
    for b in range(x.shape[0]):
        heads = []
        for h in range(attn.heads):
            base = 3 * HEAD * h
            q = ref_rms(qkv[b, :, base : base + HEAD], attn.q_norm.weight)
            k = ref_rms(qkv[b, :, base + HEAD : base + 2 * HEAD], attn.k_norm.weight)
            v = qkv[b, :, base + 2 * HEAD : base + 3 * HEAD]
            heads.append(ref_softmax_attention(ref_rope(q, positions), ref_rope(k, positions), v))
        batch_out.append(torch.cat(heads, dim=-1))
    return torch.stack(batch_out) @ attn.wo.weight.T


def ref_cross_attention(attn, x, context, kv_lengths):
    """Per head h: rows [2·128h, 2·128h+128) of wkv are k, the next 128 v. No RoPE."""
    q_all = x @ attn.wq.weight.T
    kv = context @ attn.wkv.weight.T
    batch_out = []
    for b in range(x.shape[0]):
        heads = []
        for h in range(attn.heads):
            q = ref_rms(q_all[b, :, HEAD * h : HEAD * (h + 1)], attn.q_norm.weight)
            k = ref_rms(kv[b, :, 2 * HEAD * h : 2 * HEAD * h + HEAD], attn.k_norm.weight)
            v = kv[b, :, 2 * HEAD * h + HEAD : 2 * HEAD * (h + 1)]
            heads.append(ref_softmax_attention(q, k, v, int(kv_lengths[b])))
        batch_out.append(torch.cat(heads, dim=-1))
    return torch.stack(batch_out) @ attn.wo.weight.T


def ref_block(blk, x, context, modulation, positions, kv_lengths):
    dim = x.shape[-1]
    table = blk.scale_shift_table[None] + modulation.reshape(-1, 6, dim)
    shift_msa, scale_msa, gate_msa = table[:, 0:1], table[:, 1:2], table[:, 2:3]
    shift_mlp, scale_mlp, gate_mlp = table[:, 3:4], table[:, 4:5], table[:, 5:6]
    h = ref_layer_norm(x, blk.norm1.weight, blk.norm1.bias) * (1 + scale_msa) + shift_msa
    x = x + gate_msa * ref_self_attention(blk.attn1, h, positions)
    x = x + ref_cross_attention(blk.attn2, x, context, kv_lengths)
    h = ref_layer_norm(x, blk.norm2.weight, blk.norm2.bias) * (1 + scale_mlp) + shift_mlp
    ff = ref_gelu_tanh(h @ blk.ff.net[0].proj.weight.T) @ blk.ff.net[2].weight.T
    return x + gate_mlp * ff


def ref_forward(model, latents, t, llm, llm_mask, clip):
    """The whole DiT written out plainly; the context is NOT truncated (masked keys must not count)."""
    batch, frames, _, rows, cols = latents.shape
    conv = model.pos_embed.proj
    x = torch.einsum("bfchw,dc->bfhwd", latents, conv.weight[:, :, 0, 0]) + conv.bias
    x = x.reshape(batch, frames * rows * cols, -1)
    # The sinusoid is specified in fp32 (as published), whatever the compute dtype.
    i = torch.arange(128, dtype=torch.float32)
    args = (t * 1000).float()[:, None] * torch.exp(-math.log(10000) * i / 128)[None]
    sinus = torch.cat([args.cos(), args.sin()], dim=-1).to(x.dtype)
    te = model.adaln_single.emb.timestep_embedder
    emb_t = te.linear_2(torch.nn.functional.silu(te.linear_1(sinus)))
    modulation = model.adaln_single.linear(torch.nn.functional.silu(emb_t))
    cp = model.caption_projection
    llm_tokens = cp.linear_2(ref_gelu_tanh(cp.linear_1(ref_layer_norm(llm, eps=1e-6))))
    clip_tokens = clip @ model.clip_projection.weight.T + model.clip_projection.bias
    context = torch.cat([clip_tokens, llm_tokens], dim=1)
    kv_lengths = clip.shape[1] + llm_mask.sum(dim=1)
    positions = positions_of(frames, rows, cols)
    for blk in model.transformer_blocks:
        x = ref_block(blk, x, context, modulation, positions, kv_lengths)
    shift = model.scale_shift_table[0] + emb_t[:, None]
    scale = model.scale_shift_table[1] + emb_t[:, None]
    x = ref_layer_norm(x, eps=1e-6) * (1 + scale) + shift
    x = x @ model.proj_out.weight.T + model.proj_out.bias
    return x.reshape(batch, frames, rows, cols, -1).permute(0, 1, 4, 2, 3)


# =========================================================================== helpers
def randomize(module: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights everywhere (norm scales and tables too, so a wrong one shows)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype)
            if p.ndim >= 2 and "scale_shift_table" not in name:
                fan_in = p[0].numel()
                p.copy_(noise / math.sqrt(fan_in))
            elif name.endswith("norm.weight") or name.endswith(("norm1.weight", "norm2.weight")):
                p.copy_(1 + 0.2 * noise)
            else:
                p.copy_(0.2 * noise)
    return module


def tiny_model(dtype=torch.float64, seed=0) -> StepVideoDiT:
    return randomize(StepVideoDiT(DiTConfig.from_dict(TINY)), seed).to(dtype)


def tiny_inputs(dtype=torch.float64, frames=2, rows=3, cols=4, seed=1, t=(0.25, 0.875)):
    gen = torch.Generator().manual_seed(seed)
    latents = torch.randn(2, frames, 64, rows, cols, generator=gen, dtype=torch.float64).to(dtype)
    t = torch.tensor(t, dtype=dtype)
    llm = torch.randn(2, 8, 64, generator=gen, dtype=torch.float64).to(dtype)
    llm_mask = torch.tensor([[1] * 5 + [0] * 3, [1] * 6 + [0] * 2])
    clip = torch.randn(2, 77, 32, generator=gen, dtype=torch.float64).to(dtype)
    return latents, t, llm, llm_mask, clip


# =========================================================================== config
def test_published_config_parses_in_both_attention_types():
    cfg = DiTConfig.from_dict(PUBLISHED)
    assert (cfg.num_layers, cfg.inner_dim, cfg.caption_channels) == (48, 6144, (6144, 1024))
    assert DiTConfig.from_dict({**PUBLISHED, "attention_type": "torch"}).attention_type == "torch"
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.num_layers = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"flash": True}, "unknown key"),
        ({"patch_size": 2}, "patch_size"),
        ({"norm_type": "layer_norm"}, "norm_type"),
        ({"use_additional_conditions": "yes"}, "use_additional_conditions"),
        ({"norm_elementwise_affine": True}, "norm_elementwise_affine"),
        ({"attention_type": "flash"}, "attention_type"),
        ({"caption_channels": 6144}, "caption_channels"),
        ({"num_layers": 0}, "num_layers"),
        ({"num_attention_heads": 48.0}, "num_attention_heads"),
        ({"attention_head_dim": 100}, "attention_head_dim"),
        ({"_class_name": "PixArtTransformer2DModel"}, "_class_name"),
        ({"norm_eps": -1}, "norm_eps"),
    ],
)
def test_config_rejects_unsupported(change, needle):
    with pytest.raises(ConfigError) as info:
        DiTConfig.from_dict({**PUBLISHED, **change})
    message = str(info.value)
    assert needle in message and "\n" not in message


# =========================================================================== published layout
def test_full_size_on_meta_matches_published_keys_shapes_and_count():
    with torch.device("meta"):
        model = StepVideoDiT(DiTConfig.from_dict(PUBLISHED))
    expected = {k: v for k, v in EXPECTED["top_level"].items()}
    for i in range(EXPECTED["num_blocks"]):
        expected.update({f"transformer_blocks.{i}.{k}": v for k, v in EXPECTED["per_block"].items()})
    got = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert sorted(set(expected) - set(got)) == []
    assert sorted(set(got) - set(expected)) == []
    assert got == expected
    assert sum(p.numel() for p in model.parameters()) == EXPECTED["total_parameters"] == 29_342_478_400


def test_memory_seams():
    model = StepVideoDiT(DiTConfig.from_dict(TINY))
    assert isinstance(model.transformer_blocks, nn.ModuleList) and len(model.transformer_blocks) == 2
    assert model.ff_chunk_tokens is None
    allowed = (nn.Linear, nn.LayerNorm, nn.Conv2d)
    for name, module in model.named_modules():
        own = list(module.parameters(recurse=False))
        if own and not isinstance(module, allowed):
            # only norms' scales and modulation tables live outside Linear/LayerNorm/Conv2d
            assert all(p.ndim == 1 or p.shape[0] in (2, 6) for p in own), name


def test_block_pre_hooks_see_every_input_as_arguments():
    """A block streamer's pre-hook gets (x, context, modulation, cos, sin, mask, chunk) and may
    replace them (e.g. moved to another device)."""
    model = tiny_model(torch.float32)
    seen = []

    def hook(module, args):
        seen.append(len(args))
        return tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)

    for block in model.transformer_blocks:
        block.register_forward_pre_hook(hook)
    with torch.no_grad():
        model(*tiny_inputs(torch.float32))
    assert seen == [7, 7]


# =========================================================================== RoPE
def test_rope_matches_formula_with_bf16_angle_quirk():
    frames, rows, cols = 2, 3, 40  # col positions up to 39: large enough for bf16 angle rounding
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(1, frames * rows * cols, 2, HEAD, generator=gen).to(torch.bfloat16)
    cos, sin = rope_3d_tables(frames, rows, cols, HEAD, torch.bfloat16)
    got = apply_rope_3d(x, cos, sin)
    positions = positions_of(frames, rows, cols)
    for h in range(2):
        assert torch.equal(got[0, :, h], ref_rope(x[0, :, h], positions))
    # The quirk matters: fp32 angles would give different cos values at these positions.
    inv = 1.0 / (10000 ** (torch.arange(0, 32, 2).float() / 32))
    exact_cos = (positions[:, 2].float()[:, None] * inv[None]).cos().to(torch.bfloat16)
    assert not torch.equal(cos[:, 96:112], exact_cos)


def test_rope_float64_is_a_rotation_by_the_formula():
    frames, rows, cols = 3, 2, 5
    x = torch.randn(2, frames * rows * cols, 1, HEAD, dtype=torch.float64)
    cos, sin = rope_3d_tables(frames, rows, cols, HEAD, torch.float64)
    got = apply_rope_3d(x, cos, sin)
    torch.testing.assert_close(got[1, :, 0], ref_rope(x[1, :, 0], positions_of(frames, rows, cols)))
    torch.testing.assert_close(got.norm(dim=-1), x.norm(dim=-1))


# =========================================================================== attention
def test_self_attention_per_head_interleave_and_softmax():
    attn = randomize(SelfAttention(2 * HEAD, HEAD)).double()
    frames, rows, cols = 2, 2, 3
    x = torch.randn(2, frames * rows * cols, 2 * HEAD, dtype=torch.float64)
    cos, sin = rope_3d_tables(frames, rows, cols, HEAD, torch.float64)
    with torch.no_grad():
        got = attn(x, cos, sin)
        want = ref_self_attention(attn, x, positions_of(frames, rows, cols))
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


def test_cross_attention_with_key_length_mask():
    attn = randomize(CrossAttention(2 * HEAD, HEAD)).double()
    x = torch.randn(2, 7, 2 * HEAD, dtype=torch.float64)
    context = torch.randn(2, 9, 2 * HEAD, dtype=torch.float64)
    lengths = torch.tensor([4, 9])
    mask = key_length_mask(lengths, 9)
    assert mask.shape == (2, 1, 1, 9) and mask.dtype == torch.bool
    with torch.no_grad():
        got = attn(x, context, mask)
        want = ref_cross_attention(attn, x, context, lengths)
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


# =========================================================================== block
def block_case():
    blk = randomize(StepVideoBlock(2 * HEAD, HEAD)).double()
    frames, rows, cols = 2, 3, 4
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(2, frames * rows * cols, 2 * HEAD, generator=gen, dtype=torch.float64)
    context = torch.randn(2, 6, 2 * HEAD, generator=gen, dtype=torch.float64)
    modulation = 0.3 * torch.randn(2, 6 * 2 * HEAD, generator=gen, dtype=torch.float64)
    lengths = torch.tensor([6, 3])
    cos, sin = rope_3d_tables(frames, rows, cols, HEAD, torch.float64)
    args = (x, context, modulation, cos, sin, key_length_mask(lengths, 6))
    return blk, args, positions_of(frames, rows, cols), lengths


def test_block_modulation_order_matches_reference():
    blk, args, positions, lengths = block_case()
    x, context, modulation = args[:3]
    with torch.no_grad():
        got = blk(*args)
        want = ref_block(blk, x, context, modulation, positions, lengths)
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


def test_ffn_chunking_equals_unchunked():
    blk, args, _, _ = block_case()
    with torch.no_grad():
        whole = blk(*args, None)
        for chunk in (5, 12, 24, 1000):
            torch.testing.assert_close(blk(*args, chunk), whole, rtol=1e-12, atol=1e-12)


def out_of_place_block(blk, x, context, modulation, cos, sin, key_mask, chunk=None):
    """The block as written before its in-place memory layout: every step a new tensor, q/k norm and
    RoPE over all heads at once, contiguous q and k, FFN chunks into a new output (same library
    functions, same op order)."""
    from stepvideo.models.layers import apply_rope_3d, attention, rms_norm

    a1, a2, ff = blk.attn1, blk.attn2, blk.ff
    table = blk.scale_shift_table[None] + modulation.reshape(-1, 6, blk.dim)
    shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = table.chunk(6, dim=1)
    b, n, _ = x.shape
    qkv = a1.wqkv(blk.norm1(x) * (1 + scale_msa) + shift_msa).view(b, n, a1.heads, 3 * HEAD)
    q, k, v = qkv.split(HEAD, dim=-1)
    q = apply_rope_3d(rms_norm(q, a1.q_norm.weight), cos, sin)
    k = apply_rope_3d(rms_norm(k, a1.k_norm.weight), cos, sin)
    x = gate_msa * a1.wo(attention(q, k, v)) + x
    q = rms_norm(a2.wq(x).view(b, n, a2.heads, HEAD), a2.q_norm.weight)
    k, v = a2.wkv(context).view(b, context.shape[1], a2.heads, 2 * HEAD).split(HEAD, dim=-1)
    x = a2.wo(attention(q, rms_norm(k, a2.k_norm.weight), v, key_mask)) + x
    out = torch.empty_like(x)
    step = chunk or n
    for start in range(0, n, step):
        part = x[:, start : start + step]
        hidden = ff.net[0].proj(blk.norm2(part) * (1 + scale_mlp) + shift_mlp)
        hidden = torch.nn.functional.gelu(hidden, approximate="tanh")
        out[:, start : start + step] = gate_mlp * ff.net[2](hidden) + part
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_in_place_block_is_bit_identical_to_out_of_place_math(dtype):
    """The memory layout (q/k normalised and rotated in place a few heads at a time, in-place residual
    adds, modulation and GELU, FFN chunks written back) changes no bit, in fp32 or bf16."""
    heads = 6  # more than one pass of rms_norm_rope_ (4 heads per pass)
    blk = randomize(StepVideoBlock(heads * HEAD, HEAD)).to(dtype)
    frames, rows, cols = 2, 3, 4
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(2, frames * rows * cols, heads * HEAD, generator=gen).to(dtype)
    context = torch.randn(2, 6, heads * HEAD, generator=gen).to(dtype)
    modulation = (0.3 * torch.randn(2, 6 * heads * HEAD, generator=gen)).to(dtype)
    cos, sin = rope_3d_tables(frames, rows, cols, HEAD, dtype)
    args = (x, context, modulation, cos, sin, key_length_mask(torch.tensor([6, 3]), 6))
    x_before = x.clone()
    with torch.no_grad():
        for chunk in (None, 5, 24):
            # (chunks of another size may round differently: the matmuls see other row counts)
            assert torch.equal(blk(*args, chunk), out_of_place_block(blk, *args, chunk)), chunk
    assert torch.equal(x, x_before)  # the caller's input is never written


# =========================================================================== whole model
def test_tiny_forward_matches_plain_reference():
    model = tiny_model()
    inputs = tiny_inputs()
    with torch.no_grad():
        got = model(*inputs)
        want = ref_forward(model, *inputs)
    assert got.shape == (2, 2, 64, 3, 4)
    torch.testing.assert_close(got, want, rtol=1e-8, atol=1e-8)


def test_clip_first_and_all_77_clip_positions_count():
    model = tiny_model()
    latents, t, llm, llm_mask, clip = tiny_inputs()
    with torch.no_grad():
        base = model(latents, t, llm, llm_mask, clip)
        # LLM tokens beyond the mask are invisible (sample 0 has 5 valid tokens). With LLM-first
        # ordering both checks below would fail: keys 0..81 would cover LLM padding, not CLIP 76.
        llm2 = llm.clone()
        llm2[0, 5:] += 10
        torch.testing.assert_close(model(latents, t, llm2, llm_mask, clip)[0], base[0], rtol=1e-12, atol=1e-12)
        # CLIP position 76 (BERT padding in practice) is always visible.
        clip2 = clip.clone()
        clip2[0, 76] += 10
        assert not torch.allclose(model(latents, t, llm, llm_mask, clip2)[0], base[0])
        # With no LLM tokens only the 77 leading (CLIP) keys are visible: LLM content is ignored.
        empty = torch.zeros_like(llm_mask)
        llm3 = llm + 10
        torch.testing.assert_close(
            model(latents, t, llm3, empty, clip), model(latents, t, llm, empty, clip), rtol=1e-12, atol=1e-12
        )


def test_cross_attention_mask_is_never_expanded(monkeypatch):
    seen = []
    real = torch.nn.functional.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, **kw):
        seen.append(None if attn_mask is None else tuple(attn_mask.shape))
        return real(q, k, v, attn_mask=attn_mask, **kw)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    model = tiny_model(torch.float32)
    with torch.no_grad():
        model(*tiny_inputs(torch.float32))
    # per block: self (no mask) then cross with (B,1,1,Lkv), Lkv = 77 + 6 (batch max)
    assert seen == [None, (2, 1, 1, 83)] * 2


def test_bf16_forward_runs_close_to_fp64_reference():
    # 1000·t must be exact in bf16 here (250, 500), else the rescale quirk below dominates.
    model64 = tiny_model()
    model16 = tiny_model(torch.bfloat16)
    with torch.no_grad():
        got = model16(*tiny_inputs(torch.bfloat16, t=(0.25, 0.5)))
        want = model64(*tiny_inputs(t=(0.25, 0.5)))
    assert got.dtype == torch.bfloat16 and torch.isfinite(got).all()
    rel = (got.double() - want).norm() / want.norm()
    assert rel < 0.03


def test_timestep_is_rescaled_in_the_compute_dtype():
    """As published: t arrives in bf16 and 1000·t is rounded in bf16 (0.875 → 876, not 875)."""
    model64 = tiny_model()
    model16 = tiny_model(torch.bfloat16)
    with torch.no_grad():
        _, emb16 = model16.adaln_single(torch.tensor([0.875], dtype=torch.bfloat16))
        _, emb_876 = model64.adaln_single(torch.tensor([0.876], dtype=torch.float64))
        _, emb_875 = model64.adaln_single(torch.tensor([0.875], dtype=torch.float64))
    assert (emb16.double() - emb_876).norm() < 0.2 * (emb16.double() - emb_875).norm()


def test_bad_inputs_raise_one_line():
    model = tiny_model(torch.float32)
    latents, t, llm, llm_mask, clip = tiny_inputs(torch.float32)
    for bad in (
        (latents[:, :, :32], t, llm, llm_mask, clip),
        (latents, t[:1], llm, llm_mask, clip),
        (latents, (t * 1000).long(), llm, llm_mask, clip),
        (latents, t, llm[..., :16], llm_mask, clip),
        (latents, t, llm, llm_mask[:, :4], clip),
        (latents, t, llm, llm_mask, clip[..., :8]),
    ):
        with pytest.raises(InvalidRequest) as info:
            model(*bad)
        assert "\n" not in str(info.value)


def test_tiny_weights_round_trip_through_safetensors_onto_meta(tmp_path):
    from safetensors.torch import save_file

    from stepvideo.engine.weights import load_single

    model = tiny_model(torch.float32)
    path = tmp_path / "dit.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    with torch.device("meta"):
        loaded = StepVideoDiT(DiTConfig.from_dict(TINY))
    load_single(loaded, path)
    inputs = tiny_inputs(torch.float32)
    with torch.no_grad():
        assert torch.equal(loaded(*inputs), model(*inputs))


# =========================================================================== caption key length (bf16 quirk)
@pytest.mark.parametrize(
    "dtype, valid, want",
    [
        (torch.bfloat16, 277, 276),  # 8 significant bits: 277 is a tie, rounded to even
        (torch.bfloat16, 279, 280),
        (torch.bfloat16, 256, 256),  # exact up to 256
        (torch.bfloat16, 255, 255),
        (torch.float32, 277, 277),
        (torch.float32, 279, 279),
        (torch.float64, 397, 397),
    ],
)
def test_caption_kv_lengths_are_counted_in_the_compute_dtype(dtype, valid, want):
    from stepvideo.models.layers import caption_kv_lengths

    mask = torch.zeros(1, 77 + 320, dtype=torch.long)
    mask[0, :valid] = 1
    assert caption_kv_lengths(mask, dtype).tolist() == [want]
    assert caption_kv_lengths(mask, dtype).dtype == torch.int64


def test_caption_kv_length_rounded_past_the_keys_is_capped():
    from stepvideo.models.layers import caption_kv_lengths

    # 279 of 279 valid rounds to 280 in bf16, one more key than exists.
    assert caption_kv_lengths(torch.ones(2, 279), torch.bfloat16).tolist() == [279, 279]


@pytest.mark.parametrize("dtype, want", [(torch.bfloat16, [276, 264]), (torch.float32, [277, 263])])
def test_dit_cross_attention_sees_the_dtype_rounded_key_count(dtype, want):
    # 77 CLIP + 200 / 186 LLM tokens; bf16 rounds ties to even: 277 → 276 (the last LLM token is
    # dropped) and 263 → 264 (one padding token is read).
    model = tiny_model(dtype)
    latents, t, _, _, clip = tiny_inputs(dtype, frames=1, rows=1, cols=2)
    llm = torch.randn(2, 220, 64, generator=torch.Generator().manual_seed(3)).to(dtype)
    llm_mask = torch.zeros(2, 220, dtype=torch.long)
    llm_mask[0, :200] = 1
    llm_mask[1, :186] = 1
    seen = []
    hook = model.transformer_blocks[0].attn2.register_forward_pre_hook(
        lambda module, args: seen.append((args[1].shape[1], args[2][:, 0, 0].sum(-1).tolist()))
    )
    with torch.no_grad():
        model(latents, t, llm, llm_mask, clip)
    hook.remove()
    assert seen == [(want[0], want)]  # context cut to the longest count, mask of each sample's count


def test_attention_parameters_keep_the_published_order():
    # Tiny test models draw random weights in state-dict order; the shared attention base keeps it.
    with torch.device("meta"):
        assert list(SelfAttention(256, 128).state_dict()) == ["wqkv.weight", "wo.weight", "q_norm.weight", "k_norm.weight"]
        assert list(CrossAttention(256, 128).state_dict()) == [
            "wq.weight", "wkv.weight", "wo.weight", "q_norm.weight", "k_norm.weight"
        ]


def test_one_row_needs_no_cross_attention_mask_and_gives_the_same_answer():
    """A single row (CFG run one row at a time) is cut to its own key count, so no mask is passed and
    SDPA may use its flash kernel; the result equals that row of the masked batch."""
    model = tiny_model(torch.float64)
    latents, t, llm, llm_mask, clip = tiny_inputs(torch.float64, frames=1, rows=2, cols=2)
    masks = []
    hook = model.transformer_blocks[0].attn2.register_forward_pre_hook(lambda m, args: masks.append(args[2]))
    with torch.no_grad():
        both = model(latents, t, llm, llm_mask, clip)
        rows = [model(latents[r:r + 1], t[r:r + 1], llm[r:r + 1], llm_mask[r:r + 1], clip[r:r + 1]) for r in (0, 1)]
    hook.remove()
    assert masks[0] is not None and masks[1] is None and masks[2] is None
    torch.testing.assert_close(torch.cat(rows), both, rtol=1e-10, atol=1e-10)
