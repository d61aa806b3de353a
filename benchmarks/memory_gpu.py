"""GPU memory benchmark (needs an NVIDIA GPU; prints {"skipped": ...} otherwise), prints JSON.

Random weights at the real architecture size. Per profile and size (544×992×204, 768×768×204):
a few denoise steps of the DiT with CFG batch 2 → peak VRAM (torch allocator), peak host RSS,
seconds per step and the ratio to a resident bf16 baseline. The baseline keeps `--baseline-blocks`
bf16 blocks resident (all 48 do not fit with activations) and is compared per block. Then a VAE
decode (tiled as the profile says) → peak VRAM and seconds. Also the planner's prediction.

    python benchmarks/memory_gpu.py [--steps 2] [--blocks 48] [--sizes 544x992x204,768x768x204]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def vm_hwm() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def random_blocks(model, qtype: str | None):
    """Fill the meta-built blocks with random weights, quantizing on the GPU block by block; return
    each block's host state (pinned) — the streamer's source — and leave the blocks on meta."""
    import torch

    from stepvideo.memory import quantize as qz
    from stepvideo.memory.offload import block_state, to_meta

    states = {}
    for i, block in enumerate(model.transformer_blocks):
        block.to_empty(device="cuda")
        with torch.no_grad():
            for p in block.parameters():
                p.normal_(0, 0.02)
        block.to(torch.bfloat16)
        if qtype:
            qz.quantize_model(block, qtype, qz.QuantPolicy(include=("*",)))
        states[i] = {k: v.to("cpu").pin_memory() for k, v in block_state(block).items()}
        to_meta(block)
    return states


def inputs(height: int, width: int, frames: int):
    import torch

    from stepvideo.presets import latent_shape

    f, c, h, w = latent_shape(height, width, frames)
    dev, bf = "cuda", torch.bfloat16
    return (torch.randn(2, f, c, h, w, device=dev, dtype=bf), torch.zeros(2, device=dev, dtype=bf),
            torch.randn(2, 320, 6144, device=dev, dtype=bf), torch.ones(2, 320, device=dev),
            torch.randn(2, 77, 1024, device=dev, dtype=bf))


def run_profile(name: str, size: tuple[int, int, int], blocks: int, steps: int, qtype: str | None) -> dict:
    import torch

    from stepvideo.memory.offload import BlockStreamer, PinnedStore
    from stepvideo.memory.planner import plan
    from stepvideo.memory.profiles import PROFILES
    from stepvideo.models.dit import DiTConfig, StepVideoDiT

    torch.cuda.empty_cache()
    with torch.device("meta"):
        model = StepVideoDiT(DiTConfig(num_layers=blocks))
    states = random_blocks(model, qtype)
    for name_, module in model.named_children():
        if name_ != "transformer_blocks":
            module.to_empty(device="cuda")
            for p in module.parameters():
                torch.nn.init.normal_(p, 0, 0.02)
            module.to(torch.bfloat16)
    model.scale_shift_table = torch.nn.Parameter(torch.randn(2, 6144, device="cuda", dtype=torch.bfloat16))
    profile = PROFILES.get(name, PROFILES["resident"])
    model.ff_chunk_tokens = profile.ff_chunk_tokens
    predicted = plan(*size, profile=name if name in PROFILES else "resident",
                     quantization=qtype or "none", gpu_bytes=int(torch.cuda.mem_get_info()[1]), ram_bytes=1 << 40)
    resident = blocks + 1 if name in ("resident", "baseline-bf16") else (predicted.settings.resident_blocks or blocks + 1)
    if name == "low-ram":
        # Stream from files through the ring: write the states once to safetensors.
        import tempfile

        from safetensors.torch import save_file
        tmp = Path(tempfile.mkdtemp())
        key_files = {}
        for i, s in states.items():
            save_file({f"transformer_blocks.{i}.{k}": v for k, v in s.items()}, str(tmp / f"b{i}.safetensors"))
            key_files.update({f"transformer_blocks.{i}.{k}": tmp / f"b{i}.safetensors" for k in s})
        states.clear()
        streamer = BlockStreamer.from_files(model.transformer_blocks, key_files, "transformer_blocks.", "cuda",
                                            resident_blocks=1, mode="mmap")
    else:
        n_fixed = min(resident - 1, blocks)
        fixed = {i: states.pop(i) for i in range(n_fixed)}
        pinned = PinnedStore(((i, states.pop(i)) for i in list(states)), pin=True)
        streamer = BlockStreamer(model.transformer_blocks, "cuda", resident, pinned, fixed)
    streamer.attach()
    x = inputs(*size)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    times = []
    with torch.inference_mode():
        for _ in range(steps):
            t0 = time.perf_counter()
            model(*x)
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
    result = {
        "profile": name, "size": "x".join(map(str, size)), "blocks": blocks, "quantization": qtype or "none",
        "resident_blocks": resident, "peak_vram_bytes": torch.cuda.max_memory_allocated(),
        "peak_vram_reserved_bytes": torch.cuda.max_memory_reserved(), "peak_host_rss_bytes": vm_hwm(),
        "seconds_per_step": min(times), "seconds_per_block": min(times) / blocks,
        "predicted_vram_bytes_48_blocks": predicted.predictions[predicted.profile].vram_bytes,
        "max_materialised_blocks": streamer.peak_materialised,
    }
    streamer.detach()
    del model, x
    return result


def vae_decode(size: tuple[int, int, int], tile: int | None) -> dict:
    import torch

    from stepvideo.memory import tiling
    from stepvideo.models.vae import VAEConfig, VideoVAE
    from stepvideo.presets import latent_shape

    vae = VideoVAE(VAEConfig()).to("cuda", torch.bfloat16).eval()
    _, c, h, w = latent_shape(*size)
    latents = torch.randn(1, 3, c, h, w, device="cuda", dtype=torch.bfloat16)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    with torch.inference_mode():
        vae.decode(latents) if tile is None else tiling.tiled_decode(vae, latents, tile=tile, overlap=min(8, tile // 2))
    torch.cuda.synchronize()
    return {"size": "x".join(map(str, size)), "tile": tile, "seconds_per_chunk": time.perf_counter() - t0,
            "peak_vram_bytes": torch.cuda.max_memory_allocated(),
            "predicted_bytes": tiling.estimate_tile_bytes(min(tile or h, h), min(tile or w, w))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--blocks", type=int, default=48)
    ap.add_argument("--baseline-blocks", type=int, default=8)
    ap.add_argument("--sizes", default="544x992x204,768x768x204")
    ap.add_argument("--profiles", default="resident,balanced,low-vram,low-ram")
    ap.add_argument("--qtype", default="qint8")
    a = ap.parse_args()
    try:
        import torch
    except ImportError:
        print(json.dumps({"benchmark": "memory_gpu", "skipped": "torch is not installed"}))
        return
    if not torch.cuda.is_available():
        print(json.dumps({"benchmark": "memory_gpu", "skipped": "no CUDA GPU"}))
        return
    from stepvideo.memory.profiles import PROFILES

    report = {"benchmark": "memory_gpu", "device": torch.cuda.get_device_name(), "runs": [], "vae": []}
    for spec in a.sizes.split(","):
        size = tuple(int(v) for v in spec.split("x"))
        base = run_profile("baseline-bf16", size, a.baseline_blocks, a.steps, None)
        report["runs"].append(base)
        for name in a.profiles.split(","):
            try:
                r = run_profile(name, size, a.blocks, a.steps, a.qtype)
                r["ratio_per_block_to_resident_bf16"] = r["seconds_per_block"] / base["seconds_per_block"]
            except torch.OutOfMemoryError as exc:
                r = {"profile": name, "size": spec, "error": f"out of memory: {str(exc).splitlines()[0]}"}
                torch.cuda.empty_cache()
            report["runs"].append(r)
            print(json.dumps(r), file=sys.stderr)
        for name in ("resident", "balanced", "low-vram"):
            try:
                report["vae"].append({"profile": name, **vae_decode(size, PROFILES[name].vae_tile)})
            except torch.OutOfMemoryError as exc:
                report["vae"].append({"profile": name, "error": str(exc).splitlines()[0]})
                torch.cuda.empty_cache()
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
