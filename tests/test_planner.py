"""Planner: arithmetic from the model dimensions, monotonic in machine size, sensible picks."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from stepvideo.api import GenerationRequest
from stepvideo.cli import main
from stepvideo.errors import ConfigError, InvalidRequest, OutOfMemory
from stepvideo.memory import planner
from stepvideo.memory.planner import GB, GiB, plan
from stepvideo.memory.profiles import PROFILE_NAMES, PROFILES, Profile

SIZES = [(544, 992, 204), (768, 768, 204), (544, 992, 136)]
GPUS = [8, 16, 24, 48, 80]
RAMS = [32, 64, 128]
RANK = {name: i for i, name in enumerate(PROFILE_NAMES)}


def test_model_dimensions_match_the_fact_sheet():
    assert planner.DIT_PARAMS == 29_342_478_400
    assert planner.LLM_PARAMS == 19_579_600_896
    assert planner.video_tokens(544, 992, 204) == 75_888
    assert planner.video_tokens(768, 768, 204) == 82_944
    assert planner.video_tokens(544, 992, 136) == 50_592
    # qint8 halves the quantizable weights; qint4 is about 53% of qint8 (scale + shift per 128).
    q8, q4 = planner.dit_block_bytes("qint8"), planner.dit_block_bytes("qint4")
    assert planner.dit_block_bytes("none") == planner.DIT_BLOCK_PARAMS * 2
    assert 0.50 < q8 / planner.dit_block_bytes("none") < 0.51
    assert 0.52 < q4 / q8 < 0.54


def test_cfg_batch_doubles_activations():
    one = planner.dit_activation_bytes(75_888, 1, None)
    two = planner.dit_activation_bytes(75_888, 2, None)
    assert two == pytest.approx(2 * one, rel=0.01)  # the RoPE tables are shared by the rows
    unit = 2 * 75_888 * 6144 * 2  # one bf16 (2, 75888, 6144) tensor: 1.87 GB
    assert 7 * unit <= two < 7.15 * unit  # unchunked FFN (2 + 5 units) is the peak, + latents
    chunked = planner.dit_activation_bytes(75_888, 2, 4096)
    assert 5 * unit <= chunked < 5.15 * unit  # chunked: the self-attention half (5 units) is the peak
    # (both checked against a trace of the real block in test_activation_trace.py)


@pytest.mark.parametrize("size", SIZES)
def test_matrix_is_monotonic_in_gpu_and_ram(size):
    results = {(g, r): plan(*size, gpu_bytes=g * GB, ram_bytes=r * GB) for g in GPUS for r in RAMS}
    for (g, r), p in results.items():
        if p.fits:
            assert p.predicted_vram_bytes <= g * GB
            assert p.predicted_ram_bytes <= r * GB
            assert not p.suggestions
        else:
            assert p.suggestions, f"{g} GB / {r} GB: a refusal must say what would fit"
        for gi, g2 in enumerate(GPUS[:-1]):
            bigger = results[(GPUS[gi + 1], r)]
            smaller = results[(g2, r)]
            if smaller.fits:
                assert bigger.fits
                assert RANK[bigger.profile] <= RANK[smaller.profile]
        for ri, r2 in enumerate(RAMS[:-1]):
            if results[(g, r2)].fits:
                assert results[(g, RAMS[ri + 1])].fits
    # An 80 GB GPU runs the published sizes resident (qint8 default); 8 GB never does at 204 frames.
    assert results[(80, 32)].profile == "resident" and results[(80, 32)].fits
    if size[2] == 204:
        assert not results[(8, 128)].fits


def test_expected_picks_at_the_published_size():
    # balanced runs CFG's rows one after the other, so on 24 GB a third of the blocks stay resident,
    # within the targets (≤ 24 GB VRAM, ≤ 40 GB host RAM).
    p24 = plan(544, 992, 204, gpu_bytes=24 * GB, ram_bytes=64 * GB)
    assert p24.fits and p24.profile == "balanced" and 8 < p24.settings.resident_blocks < 48
    assert p24.predicted_vram_bytes <= 24 * GB and p24.predicted_ram_bytes <= 40 * GB
    p16 = plan(544, 992, 204, gpu_bytes=16 * GB, ram_bytes=64 * GB, profile="low-vram")
    assert p16.fits and p16.predicted_vram_bytes <= 16 * GB and p16.settings.resident_blocks == 1
    # Not enough RAM to pin 29 GB of blocks: low-ram streams from the files instead.
    p12small = plan(544, 992, 136, gpu_bytes=12 * GB, ram_bytes=32 * GB)
    assert p12small.fits and p12small.profile == "low-ram"
    # 48 GB holds the whole qint8 DiT with CFG's rows batched; balanced would keep most blocks.
    p48 = plan(544, 992, 204, gpu_bytes=48 * GB, ram_bytes=64 * GB)
    assert p48.profile == "resident" and p48.predicted_vram_bytes <= 48 * GB
    assert 2 < p48.predictions["balanced"].resident_blocks < 48
    assert p48.predictions["balanced"].vram_bytes <= 48 * GB
    # bf16 resident: 58.7 GB of weights + batched-CFG activations, just inside 80 GB; not in 72 GB.
    bf16 = plan(544, 992, 204, gpu_bytes=80 * GB, ram_bytes=128 * GB, quantization="none")
    assert bf16.predictions["resident"].fits and bf16.predictions["resident"].vram_bytes > 75 * GB
    bf16_72 = plan(544, 992, 204, gpu_bytes=72 * GB, ram_bytes=128 * GB, quantization="none")
    assert not bf16_72.predictions["resident"].fits and bf16_72.predictions["balanced"].fits


def test_more_frames_never_need_less():
    last = 0
    for frames in range(17, 205, 17):
        p = plan(544, 992, frames, profile="low-vram", gpu_bytes=80 * GB, ram_bytes=128 * GB)
        assert p.predicted_vram_bytes >= last
        last = p.predicted_vram_bytes


def test_refusal_suggests_fewer_frames_or_int4():
    p = plan(544, 992, 204, gpu_bytes=8 * GB, ram_bytes=32 * GB)
    assert not p.fits
    assert any(s.frames < 204 for s in p.suggestions)
    for s in p.suggestions:
        check = plan(s.height, s.width, s.frames, profile=s.profile, quantization=s.quantization,
                     gpu_bytes=8 * GB, ram_bytes=32 * GB)
        assert check.fits, s.describe()
    with pytest.raises(OutOfMemory, match="would fit"):
        planner.require_fit(p)


def test_named_profile_is_kept_and_other_profile_suggested():
    p = plan(544, 992, 204, profile="resident", gpu_bytes=24 * GB, ram_bytes=64 * GB)
    assert p.profile == "resident" and not p.fits
    assert p.suggestions[0].profile in ("balanced", "low-vram", "low-ram") and p.suggestions[0].frames == 204


def test_plan_request_uses_cfg_and_profile():
    req = GenerationRequest(prompt="a cat", preset="turbo", profile="low-ram", cfg=1.0)
    p = planner.plan_request(req, gpu_bytes=80 * GB, ram_bytes=64 * GB)
    assert p.profile == "low-ram" and p.fits
    p2 = planner.plan_request(req.replace(cfg=None), gpu_bytes=80 * GB, ram_bytes=64 * GB)
    # Batched CFG (resident) doubles the denoise activations; low-ram runs the two rows one after the
    # other, so guidance costs it no extra VRAM.
    assert p2.predictions["resident"].stage_vram["denoise"] > p.predictions["resident"].stage_vram["denoise"]
    assert p2.predictions["low-ram"].stage_vram["denoise"] == p.predictions["low-ram"].stage_vram["denoise"]


def test_bad_inputs_are_one_line_errors():
    with pytest.raises(InvalidRequest, match="multiple of 16"):
        plan(545, 992, 204, gpu_bytes=GB, ram_bytes=GB)
    with pytest.raises(InvalidRequest, match="multiple of 17"):
        plan(544, 992, 200, gpu_bytes=GB, ram_bytes=GB)
    with pytest.raises(InvalidRequest, match="allowed"):
        plan(544, 992, 204, profile="fast", gpu_bytes=GB, ram_bytes=GB)
    with pytest.raises(InvalidRequest, match="unit"):
        planner.parse_bytes("24")
    assert planner.parse_bytes("16GiB") == 16 * GiB
    assert planner.parse_bytes("24 GB") == 24 * GB
    assert planner.parse_bytes("1.5TiB") == int(1.5 * 2**40)


def test_profiles_reject_unknown_fields_and_values():
    assert Profile.from_dict(PROFILES["low-vram"].to_dict()) == PROFILES["low-vram"]
    with pytest.raises(ConfigError, match="unknown profile field"):
        Profile.from_dict({"name": "x", "resident_blocks": 1, "turbo": True})
    with pytest.raises(ConfigError, match="quantization"):
        Profile("x", None, quantization="int3")
    with pytest.raises(ConfigError, match="offload"):
        Profile("x", 2, offload="none")


def test_cgroup_limits(tmp_path):
    (tmp_path / "memory.max").write_text("8589934592\n")
    (tmp_path / "memory.current").write_text(str(3 * GiB))
    (tmp_path / "memory.stat").write_text(f"anon 123\ninactive_file {GiB}\n")
    assert planner.cgroup_available_bytes(tmp_path) == 8 * GiB - 2 * GiB
    (tmp_path / "memory.max").write_text("max\n")
    assert planner.cgroup_available_bytes(tmp_path) is None
    assert planner.detect_ram_bytes(tmp_path / "missing") > 0


def test_detect_gpu_without_nvml_is_zero():
    assert planner.detect_gpu_bytes() >= 0  # no GPU here: NVML reports library-not-found → 0


def test_cli_plan(capsys):
    assert main(["plan", "--gpu-memory", "24GB", "--ram", "64GiB", "--size", "544x992", "--frames", "204"]) == 0
    out = capsys.readouterr().out
    assert "chosen: balanced" in out
    assert main(["plan", "--gpu-memory", "8GB", "--ram", "32GiB", "--json"]) == 3
    data = json.loads(capsys.readouterr().out)
    assert data["fits"] is False and data["suggestions"]
    assert main(["plan", "--size", "544by992"]) == 2
    assert "HEIGHTxWIDTH" in capsys.readouterr().err


def test_planner_module_does_not_import_torch():
    code = ("import sys; import stepvideo.memory.planner, stepvideo.memory.profiles, stepvideo.cli.plan; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_streamed_loads_hold_the_store_and_one_block_never_the_whole_model():
    block = planner.dit_block_bytes("qint8")
    assert planner.streamed_load_host_bytes(48, 1, "pinned", "qint8") == 49 * block
    assert planner.streamed_load_host_bytes(48, 1, "mmap", "qint8") == 2 * block  # the ring only
    assert planner.streamed_load_host_bytes(48, 10, "pinned", "qint8") == 40 * block  # 39 streamed + 1 read
    # on a CPU the device's share (the fixed blocks) is host RAM too
    assert planner.streamed_load_host_bytes(3, 2, "pinned", "qint8", device_is_host=True) == 4 * block


def test_streaming_counts_the_block_released_last():
    """The streamer waits two blocks back, so the GPU holds N + one in flight + the one it may still
    be computing."""
    p = planner.plan(544, 992, 204, cfg=9.0, profile="low-vram", gpu_bytes=80 * GiB, ram_bytes=256 * GiB)
    pred = p.predictions["low-vram"]
    assert pred.resident_blocks == 1
    act = planner.dit_activation_bytes(planner.video_tokens(544, 992, 204), 1, PROFILES["low-vram"].ff_chunk_tokens)
    assert pred.stage_vram["denoise"] == planner.dit_nonblock_bytes() + 3 * planner.dit_block_bytes("qint8") + act
