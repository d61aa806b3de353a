"""Every memory profile runs the real pipeline end to end on CPU, and streams/quantizes what it says."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_generate_cli import frames_of

from stepvideo.api import GenerationRequest
from stepvideo.engine import loading, scheduler
from stepvideo.engine.denoise import DenoisePlan, _velocity
from stepvideo.engine.pipeline import generate
from stepvideo.engine.session import EngineSession
from stepvideo.engine.video_io import read_metadata
from stepvideo.memory import quantize
from stepvideo.memory.placement import place
from stepvideo.memory.profiles import PROFILES


@pytest.fixture(scope="module")
def runs(tiny_model, tmp_path_factory):
    """One video per (profile, quantization), all from the same request and seed."""
    folder = tmp_path_factory.mktemp("profiles")
    mp = pytest.MonkeyPatch()
    mp.setenv("STEPVIDEO_DATA_DIR", str(folder / "data"))
    mp.setenv("STEPVIDEO_CACHE_DIR", str(folder / "cache"))  # the quantized copies live in the cache folder
    out = {}
    try:
        for profile, q in [("auto", None), ("balanced", None), ("low-vram", None), ("low-ram", None),
                           ("low-vram", "qint8"), ("low-ram", "qint8")]:
            request = GenerationRequest(prompt="a lighthouse in a storm", model=str(tiny_model), height=64,
                                        width=96, frames=17, steps=3, seed=5, profile=profile,
                                        quantization=q, output=str(folder / f"{profile}-{q}.mp4"))
            result = generate(request, session=EngineSession("cpu", keep_loaded=False))
            out[(profile, q)] = (frames_of(result.video_path).astype(int), read_metadata(result.video_path))
    finally:
        mp.undo()
    out["cache_dir"] = folder / "cache"
    return out


def test_streaming_more_or_fewer_blocks_gives_identical_videos(runs):
    """balanced (2 blocks on the device) and low-vram (1) stream different numbers of blocks and chunk
    the FFN differently; both run CFG as two batches of one, so the videos must be bit-identical."""
    balanced, balanced_meta = runs[("balanced", None)]
    low_vram, low_meta = runs[("low-vram", None)]
    assert balanced_meta["profile"]["resident_blocks"] == 2 and low_meta["profile"]["resident_blocks"] == 1
    assert np.array_equal(balanced, low_vram)


def test_pinned_and_mmap_streaming_agree_exactly(runs):
    assert np.array_equal(runs[("low-vram", None)][0], runs[("low-ram", None)][0])
    assert np.array_equal(runs[("low-vram", "qint8")][0], runs[("low-ram", "qint8")][0])


def test_lean_profiles_stay_close_to_resident(runs):
    """low-vram runs CFG as two batches of one (bf16 rounding differs, the math does not: see below)
    and qint8 adds quantization error; on this random tiny model both stay within a few levels."""
    resident = runs[("auto", None)][0]
    assert runs[("auto", None)][1]["profile"]["name"] == "resident"
    for key in [("low-vram", None), ("low-vram", "qint8")]:
        assert np.abs(runs[key][0] - resident).mean() < 8.0, key
        assert runs[key][1]["profile"]["cfg_batch"] is False


def test_quantized_cache_is_built_once_per_component(runs):
    built = sorted(p.parent.parent.parent.name for p in runs["cache_dir"].rglob("manifest.json"))
    assert built == ["dit", "step_llm"]


def test_sequential_and_batched_cfg_are_the_same_math(tiny_model):
    settings = PROFILES["resident"].replace(quantization="none")
    dit = place(lambda: loading.dit_on_meta(tiny_model), loading.dit_spec(tiny_model), settings,
                torch.device("cpu"), torch.float32, None)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 3, 64, 4, 6, generator=g)
    llm, clip = torch.randn(2, 320, 64, generator=g), torch.randn(2, 77, 32, generator=g)
    mask = torch.zeros(2, 320, dtype=torch.long)
    mask[0, :40], mask[1, :25] = 1, 1
    outs = []
    for batched in (True, False):
        plan = DenoisePlan(steps=2, cfg=9.0, shift=13.0, seed=0, latent_shape=tuple(x.shape),
                           dtype=torch.float32, cfg_batch=batched)
        outs.append(_velocity(dit, x, torch.tensor(0.3), llm, mask, clip, plan, True, torch.device("cpu")))
    assert torch.allclose(outs[0], outs[1], rtol=1e-4, atol=1e-4)  # fp32 summation order only
    assert scheduler.cfg_combine(torch.cat([outs[0], outs[0]]), 9.0).shape == x.shape


def test_quantized_cache_round_trip_is_reused(tiny_model, sandbox):
    settings = PROFILES["low-vram"].replace(quantization="qint8")
    spec = loading.dit_spec(tiny_model)
    first = place(lambda: loading.dit_on_meta(tiny_model), spec, settings, torch.device("cpu"), torch.bfloat16, "rev1")
    directory = quantize.cache_dir("dit", "rev1", "qint8")
    stamp = (directory / "manifest.json").stat().st_mtime_ns
    first.close()
    again = place(lambda: loading.dit_on_meta(tiny_model), spec, settings, torch.device("cpu"), torch.bfloat16, "rev1")
    assert (directory / "manifest.json").stat().st_mtime_ns == stamp and again.qtype == "qint8"
    assert again.streamer is not None and again.streamer.n_fixed == 0
    again.close()


def test_a_model_too_big_for_cpu_ram_is_refused_before_loading(tiny_model, sandbox, monkeypatch):
    from stepvideo.errors import OutOfMemory
    from stepvideo.memory import choose

    monkeypatch.setattr(choose, "detect_ram_bytes", lambda: 1 << 20)  # pretend 1 MiB is available
    request = GenerationRequest(prompt="x", model=str(tiny_model), height=64, width=96, frames=17, steps=1,
                                output=str(sandbox / "x.mp4"))
    with pytest.raises(OutOfMemory, match="no CUDA GPU found") as caught:
        generate(request, session=EngineSession("cpu"))
    assert "\n" not in str(caught.value)
    assert not (sandbox / "x.mp4").exists()


def test_a_failed_write_is_one_line_and_keeps_the_checkpoint(tiny_model, sandbox, monkeypatch):
    import errno

    from stepvideo.engine import pipeline
    from stepvideo.engine.denoise import RunControl
    from stepvideo.errors import OutputError
    from stepvideo.jobs.checkpoints import CheckpointStore

    def disk_full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pipeline.video_io.Mp4Writer, "send", disk_full)  # the disk fills mid-decode
    store = CheckpointStore(sandbox / "data" / "checkpoints", "7")
    control = RunControl(checkpoints=store, checkpoint_every_steps=1)
    request = GenerationRequest(prompt="x", model=str(tiny_model), height=64, width=96, frames=17, steps=3,
                                output=str(sandbox / "x.mp4"))
    with pytest.raises(OutputError, match="No space left on device") as caught:
        generate(request, session=EngineSession("cpu"), control=control)
    assert "\n" not in str(caught.value)
    # Denoise checkpoints its last step too, so a retry goes straight to the decode and the write.
    assert store.load() is not None and store.load().step == 3
    assert not list(sandbox.glob("*.mp4")) and not list(sandbox.glob(".*partial*"))  # no half video left
