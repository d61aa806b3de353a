"""Step-Video-TI2V engine parts against independent computations written here: the motion embedding
by the sinusoid formula, the channel order of the condition, the crop geometry, one frame → one
latent frame, and the condition in every CFG row."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from stepvideo.api import GenerationRequest, validate
from stepvideo.engine import scheduler
from stepvideo.engine.denoise import DenoisePlan, denoise
from stepvideo.engine.image_condition import (
    ImageConditioned,
    condition_latents,
    encode_image,
    image_to_tensor,
)
from stepvideo.errors import ConfigError, InvalidRequest
from stepvideo.models.dit import CombinedTimestepEmbedding, DiTConfig, StepVideoDiT
from stepvideo.models.vae import VAEConfig, VideoVAE
from stepvideo.presets import TI2V_NEGATIVE_PROMPT, TI2V_POSITIVE_SUFFIX, TI2V_REPO
from stepvideo.source_image import cover_crop

DATA = Path(__file__).parent / "data"
PUBLISHED = json.loads((DATA / "hub_configs" / "transformer" / "config.json").read_text())
TI2V_CONFIG = {**PUBLISHED, "use_additional_conditions": True}  # the expected TI2V config (facts §1.1)
TINY = dict(num_attention_heads=2, attention_head_dim=128, num_layers=1, caption_channels=[64, 32],
            use_additional_conditions=True)


def sinusoid_by_formula(value: float, channels: int = 256) -> np.ndarray:
    """[cos(v·f_i) | sin(v·f_i)], f_i = 10000^(−i/128): diffusers' Timesteps(flip_sin_to_cos=True, shift 0)."""
    half = channels // 2
    freqs = np.exp(-math.log(10000.0) * np.arange(half) / half)
    return np.concatenate([np.cos(value * freqs), np.sin(value * freqs)])


def mlp(x: np.ndarray, module) -> np.ndarray:
    w1, b1 = module.linear_1.weight.detach().double().numpy(), module.linear_1.bias.detach().double().numpy()
    w2, b2 = module.linear_2.weight.detach().double().numpy(), module.linear_2.bias.detach().double().numpy()
    h = w1 @ x + b1
    return w2 @ (h / (1 + np.exp(-h))) + b2


# =========================================================================== config and keys
def test_ti2v_config_builds_the_published_key_shapes_and_count():
    with torch.device("meta"):
        model = StepVideoDiT(DiTConfig.from_dict(TI2V_CONFIG))
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["pos_embed.proj.weight"] == (6144, 128, 1, 1)
    assert shapes["adaln_single.emb.motion_score_embedder.linear_1.weight"] == (6144, 256)
    assert shapes["adaln_single.emb.motion_score_embedder.linear_1.bias"] == (6144,)
    assert shapes["adaln_single.emb.motion_score_embedder.linear_2.weight"] == (6144, 6144)
    assert shapes["proj_out.weight"] == (64, 6144)
    # ti2v-facts §1.2: T2V's 29,342,478,400 + 393,216 + 39,333,888.
    assert sum(p.numel() for p in model.parameters()) == 29_382_205_504


@pytest.mark.parametrize("value", ["true", 1, None])
def test_use_additional_conditions_must_be_a_json_bool(value):
    with pytest.raises(ConfigError, match="use_additional_conditions"):
        DiTConfig.from_dict({**TI2V_CONFIG, "use_additional_conditions": value})


def test_t2v_config_has_no_motion_embedder_and_64_channels():
    with torch.device("meta"):
        model = StepVideoDiT(DiTConfig.from_dict(PUBLISHED))
    keys = model.state_dict()
    assert keys["pos_embed.proj.weight"].shape[1] == 64
    assert not any("motion" in k for k in keys)


# =========================================================================== motion embedding
def test_motion_goes_through_the_timestep_sinusoid_unscaled_and_adds_to_t():
    torch.manual_seed(0)
    emb = CombinedTimestepEmbedding(16, motion=True).double()
    t, m = 0.37, 7.0
    with torch.no_grad():
        got = emb(torch.tensor([1000.0 * t], dtype=torch.float64), torch.tensor([m], dtype=torch.float64))[0].numpy()
    want = mlp(sinusoid_by_formula(1000.0 * t), emb.timestep_embedder) + mlp(sinusoid_by_formula(m), emb.motion_score_embedder)
    # The sinusoid is taken in fp32 (as the official Timesteps): angles up to 370 rad lose ~1e-5.
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    # Not ×1000: the same score scaled would give another embedding.
    scaled = mlp(sinusoid_by_formula(1000.0 * t), emb.timestep_embedder) + mlp(sinusoid_by_formula(1000 * m), emb.motion_score_embedder)
    assert np.abs(got - scaled).max() > 1e-3


def test_the_dit_feeds_the_motion_into_the_modulation():
    torch.manual_seed(1)
    model = StepVideoDiT(DiTConfig.from_dict(TINY)).eval()
    t = torch.tensor([0.5])
    with torch.no_grad():
        modulation_a, embedded_a = model.adaln_single(t, torch.tensor([2.0]))
        modulation_b, _ = model.adaln_single(t, torch.tensor([10.0]))
        want = model.adaln_single.emb.timestep_embedder(torch.from_numpy(sinusoid_by_formula(500.0)).float()) + \
            model.adaln_single.emb.motion_score_embedder(torch.from_numpy(sinusoid_by_formula(2.0)).float())
    torch.testing.assert_close(embedded_a[0], want, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(modulation_a, modulation_b)


# =========================================================================== channel order
def _tiny_inputs(batch=1, frames=2, h=2, w=3):
    g = torch.Generator().manual_seed(3)
    latents = torch.randn(batch, frames, 64, h, w, generator=g)
    condition = torch.randn(batch, frames, 64, h, w, generator=g)
    text = (torch.randn(batch, 5, 64, generator=g), torch.ones(batch, 5, dtype=torch.long),
            torch.randn(batch, 77, 32, generator=g))
    return latents, condition, text


def test_the_noisy_latent_comes_first_then_the_condition():
    torch.manual_seed(2)
    model = StepVideoDiT(DiTConfig.from_dict(TINY)).eval()
    latents, condition, text = _tiny_inputs()
    seen = {}
    model.pos_embed.register_forward_pre_hook(lambda _m, args: seen.setdefault("x", args[0]))
    with torch.no_grad():
        model(latents, torch.tensor([0.2]), *text, condition=condition, motion=torch.tensor([5.0]))
    x = seen["x"]
    assert x.shape[2] == 128
    assert torch.equal(x[:, :, :64], latents) and torch.equal(x[:, :, 64:], condition)


def test_patch_embed_input_channels_64_to_127_read_only_the_condition():
    """Zero the weights of channels 64..127: the condition no longer matters, the latent still does."""
    torch.manual_seed(4)
    model = StepVideoDiT(DiTConfig.from_dict(TINY)).eval()
    with torch.no_grad():
        model.pos_embed.proj.weight[:, 64:] = 0
    latents, condition, text = _tiny_inputs()
    t, m = torch.tensor([0.2]), torch.tensor([5.0])
    with torch.no_grad():
        a = model(latents, t, *text, condition=condition, motion=m)
        b = model(latents, t, *text, condition=torch.randn_like(condition), motion=m)
        c = model(latents + 1, t, *text, condition=condition, motion=m)
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_ti2v_dit_refuses_to_run_without_its_condition_and_t2v_with_one():
    ti2v = StepVideoDiT(DiTConfig.from_dict(TINY)).eval()
    t2v = StepVideoDiT(DiTConfig.from_dict({**TINY, "use_additional_conditions": False})).eval()
    latents, condition, text = _tiny_inputs()
    with pytest.raises(InvalidRequest, match="needs an image condition"):
        ti2v(latents, torch.tensor([0.1]), *text)
    with pytest.raises(InvalidRequest, match="text-to-video"):
        t2v(latents, torch.tensor([0.1]), *text, condition=condition, motion=torch.tensor([5.0]))


# =========================================================================== image geometry
@pytest.mark.parametrize(
    "src, target, want",
    [
        # landscape 1920x1080 into 544x992 (HxW): relatively taller than 992/544 → fit the width.
        ((1920, 1080), (544, 992), (992, 558, 7, 0)),
        # portrait 1080x1920 into a landscape video: fit the width, crop the middle rows.
        ((1080, 1920), (544, 992), (992, 1764, 610, 0)),
        # portrait into a portrait video (992x544): 1080/1920 = 0.5625 > 544/992 → fit the height.
        ((1080, 1920), (992, 544), (558, 992, 0, 7)),
        # square into square: a plain resize.
        ((1024, 1024), (768, 768), (768, 768, 0, 0)),
        # square into landscape: fit the width, crop rows.
        ((1000, 1000), (544, 992), (992, 992, 224, 0)),
        # a very wide panorama into landscape: fit the height, crop columns.
        ((4000, 1000), (544, 992), (2176, 544, 0, 592)),
    ],
)
def test_cover_crop_geometry(src, target, want):
    crop = cover_crop(src[0], src[1], target[1], target[0])
    assert (crop.resized_width, crop.resized_height, crop.top, crop.left) == want
    assert crop.resized_width >= target[1] and crop.resized_height >= target[0]


def test_image_to_tensor_maps_to_minus_one_one_and_takes_the_centre():
    """At scale 1 the resize is the identity: the result is the centre window, (v/255)·2 − 1."""
    rgb = np.random.default_rng(0).integers(0, 256, (32, 80, 3), dtype=np.uint8)
    out = image_to_tensor(rgb, 32, 48)
    assert out.shape == (1, 3, 32, 48)
    want = rgb[:, 16:64].transpose(2, 0, 1)[None] / 255.0 * 2 - 1
    np.testing.assert_allclose(out.numpy(), want, atol=1e-6)
    assert out.min() >= -1 and out.max() <= 1


def test_image_to_tensor_resizes_a_flat_image_to_the_same_flat_value():
    rgb = np.full((50, 50, 3), 200, dtype=np.uint8)
    out = image_to_tensor(rgb, 64, 96)
    np.testing.assert_allclose(out.numpy(), 200 / 255 * 2 - 1, atol=1e-5)


# =========================================================================== VAE encode
def test_one_frame_encodes_to_one_latent_frame_equal_to_a_clips_first():
    """The causal encoder (convs and the mid-block attention, causal in raster order) sees only the
    first frame when making the first latent frame; a lone frame must give exactly that."""
    torch.manual_seed(5)
    vae = VideoVAE(VAEConfig.tiny()).eval()
    clip = torch.rand(1, 17, 3, 64, 96) * 2 - 1
    alone = encode_image(vae, clip[:, 0])
    assert alone.shape == (1, 1, 64, 4, 6)
    first = vae.encode_mean(clip)[:, :1]
    assert vae.encode_mean(clip).shape[1] == 3
    torch.testing.assert_close(alone, first.float(), rtol=1e-5, atol=1e-5)
    # The mean is deterministic: no sample noise.
    assert torch.equal(alone, encode_image(vae, clip[:, 0]))


def test_condition_has_the_image_in_frame_zero_and_zeros_after():
    latent = torch.randn(1, 1, 64, 4, 6)
    cond = condition_latents(latent, 6)
    assert cond.shape == (1, 6, 64, 4, 6)
    assert torch.equal(cond[:, 0], latent[:, 0]) and not cond[:, 1:].any()


# =========================================================================== CFG rows
class SpyDiT:
    """Records the rows it is called with and returns a velocity that depends on the condition."""

    def __init__(self):
        self.calls = []

    def __call__(self, x, t, llm_hidden, llm_mask, clip_hidden, *, condition, motion):
        self.calls.append((x.shape[0], condition.clone(), motion.clone(), llm_hidden[:, 0, 0].clone()))
        return x * 0 + condition * 0.01 + llm_hidden[:, :1, :1, None, None] * 0.001


@pytest.mark.parametrize("cfg, cfg_batch, rows", [(9.0, True, [2]), (9.0, False, [1, 1]), (1.0, True, [1])])
def test_the_condition_and_motion_are_in_every_cfg_row(cfg, cfg_batch, rows):
    spy = SpyDiT()
    cond = condition_latents(torch.randn(1, 1, 64, 2, 3), 3)
    text = type("Text", (), {})()
    text.llm_hidden = torch.tensor([1.0, -1.0])[:, None, None].expand(2, 4, 8).clone()
    text.llm_mask = torch.ones(2, 4, dtype=torch.long)
    text.clip_hidden = torch.zeros(2, 77, 4)
    plan = DenoisePlan(steps=2, cfg=cfg, shift=13.0, seed=1, latent_shape=(1, 3, 64, 2, 3), dtype=torch.float32,
                       cfg_batch=cfg_batch)
    denoise(ImageConditioned(spy, cond, 7.0), text, plan, torch.device("cpu"))
    assert [c[0] for c in spy.calls] == rows * 2
    for n, condition, motion, _text in spy.calls:
        assert condition.shape == (n, 3, 64, 2, 3)
        for r in range(n):
            assert torch.equal(condition[r], cond[0])  # the same image in the cond and uncond rows
        assert motion.tolist() == [7.0] * n
    # Only the text differs between the two rows (guidance is text-only).
    texts = torch.cat([c[3] for c in spy.calls[: len(rows)]]).tolist()
    assert texts == ([1.0, -1.0] if cfg > 1 else [1.0])


# =========================================================================== requests
def test_image_requests_default_to_the_ti2v_values():
    r = validate(GenerationRequest(prompt="x", model=TI2V_REPO, image="a.png"))
    assert (r.effective_steps, r.effective_cfg, r.effective_shift, r.effective_motion) == (50, 9.0, 13.0, 5.0)
    assert r.effective_suffix == TI2V_POSITIVE_SUFFIX and r.effective_negative == TI2V_NEGATIVE_PROMPT
    assert r.full_prompt == "x" + TI2V_POSITIVE_SUFFIX
    t2v = GenerationRequest(prompt="x")
    assert t2v.effective_motion is None and t2v.effective_suffix != TI2V_POSITIVE_SUFFIX


@pytest.mark.parametrize(
    "fields, needle",
    [
        ({"image": "a.png", "motion": 51.0}, "from 0 to 50"),
        ({"image": "a.png", "motion": -1}, "from 0 to 50"),
        ({"image": "a.png", "motion": True}, "from 0 to 50"),
        ({"motion": 5.0}, "only to image-to-video"),
        ({"image": "a.png", "model": "stepfun-ai/stepvideo-t2v"}, "needs an image-to-video model"),
        ({"image": "a.png", "preset": "turbo"}, "no image-to-video model"),
        ({"image": " "}, "image path is empty"),
        ({"model": TI2V_REPO, "image": None}, "give --image"),
        ({"image": "a.png", "cfg": 0.5}, "≥ 1"),
    ],
)
def test_bad_image_requests_are_one_line(fields, needle):
    fields = {"prompt": "x", "model": TI2V_REPO, **fields}
    with pytest.raises(InvalidRequest) as info:
        validate(GenerationRequest(**fields))
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_scheduler_is_the_t2v_one():
    """TI2V ships the byte-identical scheduler (facts §0): shift 13 gives the T2V timesteps."""
    sigmas = scheduler.shifted_sigmas(50, 13.0)
    assert float(sigmas[0]) == 0.0 and abs(float(sigmas[1]) - 0.00157) < 1e-4
