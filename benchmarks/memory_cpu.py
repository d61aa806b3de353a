"""CPU memory benchmark, prints JSON:
1. host RAM peak while building the quantized cache from bf16 shards of real-size DiT blocks
   (shard by shard, one tensor at a time) compared with the input and output sizes;
2. tiled vs untiled VAE decode at the real VAE width: peak RSS and the error of tiling.
Each measurement runs in a child process so its peak RSS (ru_maxrss) is its own.

    python benchmarks/memory_cpu.py [--blocks 2] [--latent 8] [--tile 4] [--skip-vae]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def hwm() -> int:
    """This process's peak RSS (VmHWM: unlike ru_maxrss it is not inherited across fork+exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class AnonPeak:
    """Samples RssAnon (private memory, excluding the page cache of memory-mapped inputs that
    VmHWM also counts) every 20 ms in a thread."""

    def __init__(self) -> None:
        import threading

        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("RssAnon:"):
                    self.peak = max(self.peak, int(line.split()[1]) * 1024)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def child_peak(args: list[str]) -> dict:
    """Run this script in a child mode (its own process, so its own peak RSS); return its JSON."""
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def write_blocks(folder: Path, blocks: int) -> tuple[list[Path], int]:
    """Random bf16 weights of `blocks` real-size DiT blocks, one shard per block."""
    import torch
    from safetensors.torch import save_file

    from stepvideo.models.dit import DiTConfig, StepVideoDiT

    with torch.device("meta"):
        model = StepVideoDiT(DiTConfig(num_layers=blocks))
    files, total = [], 0
    g = torch.Generator().manual_seed(0)
    shards: dict[str, dict] = {}
    for key, t in model.state_dict().items():
        shard = key.split(".")[1] if key.startswith("transformer_blocks.") else "rest"
        shards.setdefault(shard, {})[key] = t
    for name, tensors in shards.items():
        data = {k: (torch.randn(t.shape, generator=g) * 0.02).to(torch.bfloat16) for k, t in tensors.items()}
        path = folder / f"dit-{name}.safetensors"
        save_file(data, str(path))
        total += path.stat().st_size
        files.append(path)
        del data
    return files, total


def quantize_child(folder: str, blocks: int, qtype: str) -> None:
    import torch

    from stepvideo.memory import quantize as qz
    from stepvideo.models.dit import DiTConfig, StepVideoDiT

    with torch.device("meta"):
        model = StepVideoDiT(DiTConfig(num_layers=blocks))
    files = sorted(Path(folder).glob("dit-*.safetensors"))
    start_rss = hwm()
    anon = AnonPeak()
    t0 = time.monotonic()
    out = qz.build_cache(model, files, qtype, Path(folder) / "cache", qz.DIT_POLICY,
                         shard_bytes=512 << 20)
    seconds = time.monotonic() - t0
    anon_peak = anon.stop()
    out_bytes = sum(f.stat().st_size for f in out.glob("*.safetensors"))
    print(json.dumps({
        "qtype": qtype, "seconds": round(seconds, 1), "output_bytes": out_bytes,
        "rss_before_bytes": start_rss, "peak_rss_bytes": hwm(), "peak_anon_bytes": anon_peak,
        "output_shard_budget_bytes": 512 << 20,
    }))


def vae_child(latent: int, tile: int | None, overlap: int, out_path: str) -> None:
    import torch

    from stepvideo.memory import tiling
    from stepvideo.models.vae import VAEConfig, VideoVAE

    torch.manual_seed(0)
    vae = VideoVAE(VAEConfig()).eval().requires_grad_(False)  # real width, random weights, fp32
    latents = torch.randn(1, 3, 64, latent, latent, generator=torch.Generator().manual_seed(1))
    base = hwm()
    t0 = time.monotonic()
    with torch.inference_mode():
        video = vae.decode(latents) if tile is None else tiling.tiled_decode(vae, latents, tile=tile, overlap=overlap)
    torch.save(video, out_path)
    print(json.dumps({
        "tile": tile, "seconds": round(time.monotonic() - t0, 1), "rss_after_load_bytes": base,
        "peak_rss_bytes": hwm(),
        "decode_extra_bytes": hwm() - base,
    }))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--blocks", type=int, default=2)
    ap.add_argument("--qtype", default="qint8")
    ap.add_argument("--latent", type=int, default=8)
    ap.add_argument("--tile", type=int, default=4)
    ap.add_argument("--overlap", type=int, default=2)
    ap.add_argument("--skip-vae", action="store_true")
    ap.add_argument("--skip-quantize", action="store_true")
    ap.add_argument("--child", choices=["quantize", "vae"])
    ap.add_argument("--folder")
    ap.add_argument("--out")
    ap.add_argument("--untiled", action="store_true")
    a = ap.parse_args()
    if a.child == "quantize":
        return quantize_child(a.folder, a.blocks, a.qtype)
    if a.child == "vae":
        return vae_child(a.latent, None if a.untiled else a.tile, a.overlap, a.out)

    report: dict = {"benchmark": "memory_cpu"}
    with tempfile.TemporaryDirectory(prefix="stepvideo-bench-") as tmp:
        folder = Path(tmp)
        if not a.skip_quantize:
            files, input_bytes = write_blocks(folder, a.blocks)
            q = child_peak(["--child", "quantize", "--folder", tmp, "--blocks", str(a.blocks), "--qtype", a.qtype])
            q["input_bytes"] = input_bytes
            q["peak_anon_over_shard_budget"] = round(q["peak_anon_bytes"] / q["output_shard_budget_bytes"], 2)
            report["quantize"] = q
        if not a.skip_vae:
            import torch

            untiled = child_peak(["--child", "vae", "--latent", str(a.latent), "--untiled", "--out", f"{tmp}/u.pt"])
            tiled = child_peak(["--child", "vae", "--latent", str(a.latent), "--tile", str(a.tile),
                                "--overlap", str(a.overlap), "--out", f"{tmp}/t.pt"])
            u, t = torch.load(f"{tmp}/u.pt", weights_only=True), torch.load(f"{tmp}/t.pt", weights_only=True)
            report["vae_decode"] = {
                "latent": [3, 64, a.latent, a.latent], "untiled": untiled, "tiled": tiled,
                "max_abs_error": float((u - t).abs().max()), "mean_abs_error": float((u - t).abs().mean()),
            }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
