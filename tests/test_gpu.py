"""Checks that need a CUDA GPU (marked `gpu`; skipped elsewhere): the streamer's side-stream
prefetch, quanto on CUDA, and the whole pipeline on the tiny model under each profile."""

from __future__ import annotations

import pytest
import torch
from memory_toy import make_toy, toy_inputs

from stepvideo.api import GenerationRequest
from stepvideo.engine.pipeline import generate
from stepvideo.engine.session import EngineSession
from stepvideo.memory import quantize as qz
from stepvideo.memory.offload import BlockStreamer, move

pytestmark = pytest.mark.gpu
BLOCKS = 6


def _steps(model, device, steps=3):
    x, t = toy_inputs()
    x, t = x.to(device), t.to(device)
    with torch.inference_mode():
        return [model(x + s, t).float().cpu() for s in range(steps)]


@pytest.mark.parametrize("resident", [1, 2, 4])
def test_cuda_streamer_equals_the_resident_model(resident):
    reference = _steps(move(make_toy(blocks=BLOCKS), "cuda"), "cuda")
    model = make_toy(blocks=BLOCKS)
    for name, module in model.named_children():
        if name != "transformer_blocks":
            move(module, "cuda")
    for name, p in list(model._parameters.items()):
        model._parameters[name] = torch.nn.Parameter(p.detach().cuda(), requires_grad=False)
    streamer = BlockStreamer.from_modules(model.transformer_blocks, "cuda", resident).attach()
    assert all(t.is_pinned() for s in streamer.store.states.values() for t in s.values())
    for a, b in zip(_steps(model, "cuda"), reference):
        assert torch.equal(a, b)
    assert streamer.peak_materialised <= min(BLOCKS, resident + 1)
    streamer.detach()


def test_qint8_on_cuda_stays_close_to_bf16():
    reference = _steps(move(make_toy(blocks=BLOCKS).to(torch.bfloat16), "cuda"), "cuda")
    model = make_toy(blocks=BLOCKS).to(torch.bfloat16)
    qz.quantize_model(model, "qint8", qz.DIT_POLICY)
    out = _steps(move(model, "cuda"), "cuda")
    for a, b in zip(out, reference):
        assert (a - b).norm() / b.norm() < 0.02


@pytest.mark.parametrize("profile", ["auto", "balanced", "low-vram", "low-ram"])
def test_tiny_pipeline_runs_on_cuda_under_every_profile(tiny_model, sandbox, profile):
    request = GenerationRequest(prompt="a lighthouse in a storm", model=str(tiny_model), height=64, width=96,
                                frames=17, steps=2, profile=profile, output=str(sandbox / f"{profile}.mp4"))
    torch.cuda.reset_peak_memory_stats()
    result = generate(request, session=EngineSession("cuda", keep_loaded=False))
    assert result.frames == 17 and result.memory["denoise"]["vram_peak"] > 0
    assert torch.cuda.memory_allocated() < 64 << 20  # every component left the GPU afterwards
