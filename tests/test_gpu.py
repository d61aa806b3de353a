"""Checks that need a CUDA GPU (marked `gpu`; skipped elsewhere): the streamer's side-stream
prefetch, quanto on CUDA, and the whole pipeline on the tiny model under each profile.

Runs on a bare GPU machine as `pytest -p no:pytest-qt tests/test_gpu.py` (benchmarks/gpu_acceptance.py
does): only torch is imported at module level; a test whose packages are missing there (optimum-quanto,
or the pipeline's platformdirs, imageio-ffmpeg, psutil, tokenizers …) skips and names the package.
"""

from __future__ import annotations

import importlib

import pytest
import torch
from memory_toy import make_toy, toy_inputs

from stepvideo.memory.offload import BlockStreamer, move

pytestmark = pytest.mark.gpu
BLOCKS = 6


def _import_or_skip(module: str):
    """Import `module`, or skip naming the third-party package that is missing. A missing module of
    our own is a bug, not a reason to skip."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] in ("stepvideo", "stepvideo_desktop", "memory_toy"):
            raise
        pytest.skip(f"needs the package that provides {exc.name!r} (see benchmarks/README.md for the wheel list)")


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
    _import_or_skip("optimum.quanto")
    qz = _import_or_skip("stepvideo.memory.quantize")
    reference = _steps(move(make_toy(blocks=BLOCKS).to(torch.bfloat16), "cuda"), "cuda")
    model = make_toy(blocks=BLOCKS).to(torch.bfloat16)
    qz.quantize_model(model, "qint8", qz.DIT_POLICY)
    out = _steps(move(model, "cuda"), "cuda")
    for a, b in zip(out, reference):
        assert (a - b).norm() / b.norm() < 0.02


@pytest.mark.parametrize("profile", ["auto", "balanced", "low-vram", "low-ram"])
def test_tiny_pipeline_runs_on_cuda_under_every_profile(request, sandbox, profile):
    for module in ("optimum.quanto", "stepvideo.engine.pipeline", "stepvideo.engine.session",
                   "stepvideo.testing.tiny_model"):
        _import_or_skip(module)
    from stepvideo.api import GenerationRequest
    from stepvideo.engine.pipeline import generate
    from stepvideo.engine.session import EngineSession

    tiny_model = request.getfixturevalue("tiny_model")  # after the checks: making it needs the same packages
    request_ = GenerationRequest(prompt="a lighthouse in a storm", model=str(tiny_model), height=64, width=96,
                                 frames=17, steps=2, profile=profile, output=str(sandbox / f"{profile}.mp4"))
    torch.cuda.reset_peak_memory_stats()
    result = generate(request_, session=EngineSession("cuda", keep_loaded=False))
    assert result.frames == 17 and result.memory["denoise"]["vram_peak"] > 0
    assert torch.cuda.memory_allocated() < 64 << 20  # every component left the GPU afterwards
