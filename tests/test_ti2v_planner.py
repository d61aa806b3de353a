"""The planner for Step-Video-TI2V: its extra DiT parameters, its VAE encode stage and its bigger input."""

from __future__ import annotations

import torch

from stepvideo.api import GenerationRequest
from stepvideo.memory import planner
from stepvideo.memory.profiles import PROFILE_NAMES
from stepvideo.models.dit import DiTConfig, StepVideoDiT

GB = 10**9


def test_extra_parameters_match_the_ti2v_model_built_on_meta():
    config = {"use_additional_conditions": True}
    with torch.device("meta"):
        ti2v = StepVideoDiT(DiTConfig(**config))
        t2v = StepVideoDiT(DiTConfig())
    extra = sum(p.numel() for p in ti2v.parameters()) - sum(p.numel() for p in t2v.parameters())
    assert extra == planner.TI2V_EXTRA_NONBLOCK_PARAMS == 39_727_104
    assert planner.dit_nonblock_bytes(True) - planner.dit_nonblock_bytes() == extra * 2


def test_every_profile_plans_the_vae_encode_stage_and_costs_more_than_t2v_at_the_same_size():
    kwargs = dict(gpu_bytes=24 * GB, ram_bytes=64 * GB)
    t2v = planner.plan(544, 992, 102, **kwargs)
    ti2v = planner.plan(544, 992, 102, image_to_video=True, **kwargs)
    assert set(ti2v.predictions) == set(PROFILE_NAMES)
    for name in PROFILE_NAMES:
        a, b = t2v.predictions[name], ti2v.predictions[name]
        assert "encode_image" not in a.stage_vram and "encode_image" in b.stage_vram
        # The image encode holds the VAE plus one frame's activations: less than the decode stage.
        assert planner.vae_bytes() < b.stage_vram["encode_image"] < b.stage_vram["decode"]
        if a.resident_blocks == b.resident_blocks:
            assert b.stage_vram["denoise"] > a.stage_vram["denoise"]


def test_a_request_with_an_image_is_planned_as_ti2v():
    request = GenerationRequest(prompt="x", model="stepfun-ai/stepvideo-ti2v", image="a.png", frames=102)
    plan = planner.plan_request(request, gpu_bytes=80 * GB, ram_bytes=64 * GB)
    assert plan.fits and "encode_image" in plan.predictions["resident"].stage_vram
    assert plan.tokens == 37_944  # ti2v-facts §3: 18 × 34 × 62


def test_encode_activation_counts_the_mid_block_attention():
    h, w = 544, 992
    positions = (h // 8) * (w // 8)
    assert positions == 8432
    assert planner.vae_encode_image_activation_bytes(h, w) == 6 * 128 * h * w * 2 + positions**2 * 4
