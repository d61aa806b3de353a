"""Peak host RAM (VmHWM) on the CPU against the planner, as JSON (issue 11 §3).

    python benchmarks/host_ram.py [--blocks 3] [--work DIR] > benchmarks/results/<date>-host_ram-cpu.json

Two measurements, each in its own child process so its VmHWM is clean (the peak is reset with
/proc/self/clear_refs after the imports; the figure compared is the peak above that baseline):

- load: a real-width DiT (hidden 6144, the published block) of `--blocks` blocks with random weights,
  quantized once to the qint8 cache, placed by placement.place as each streamed profile says
  (balanced with 2 resident, low-vram, low-ram) — against planner.streamed_load_host_bytes;
- write: a 204-frame 544×992 video handed to the mp4 writer chunk by chunk as pipeline._decode does
  (synthetic decoded chunks in the compute dtype), against planner.video_write_host_bytes; ffmpeg's
  own peak (a child process) is read from RUSAGE_CHILDREN.

Everything happens under --work (a temporary folder by default), deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MODES = {"balanced": 2, "low-vram": 1, "low-ram": 1}  # profile → resident blocks (the computed one included)


def status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def reset_peak() -> int:
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := current RSS
    return status_bytes("VmRSS")


def make_model(root: Path, blocks: int) -> None:
    """A hub-layout transformer folder: the real config with `blocks` layers, random bf16 weights
    written one block per shard (never the whole model in RAM)."""
    import torch
    from safetensors.torch import save_file

    from stepvideo.engine import layout
    from stepvideo.models.dit import DiTConfig, StepVideoDiT

    config = {**{k: v for k, v in DiTConfig().__dict__.items()}, "num_layers": blocks}
    (root / layout.DIT_CONFIG).parent.mkdir(parents=True, exist_ok=True)
    (root / layout.DIT_CONFIG).write_text(json.dumps(config, default=list))
    with torch.device("meta"):
        meta = StepVideoDiT(DiTConfig.from_dict(config))
    groups: dict[str, dict[str, tuple]] = {}
    for key, t in meta.state_dict().items():
        part = key.split(".")[1] if key.startswith("transformer_blocks.") else "rest"
        groups.setdefault(part, {})[key] = (tuple(t.shape), t.dtype)
    gen = torch.Generator().manual_seed(0)
    weight_map = {}
    for n, (_part, keys) in enumerate(sorted(groups.items())):
        name = f"diffusion_pytorch_model-{n + 1:05d}-of-{len(groups):05d}.safetensors"
        state = {k: (torch.randn(shape, generator=gen) * 0.02).to(torch.bfloat16) for k, (shape, _d) in keys.items()}
        save_file(state, str(root / Path(layout.DIT_INDEX).parent / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(state, name))
        del state
    (root / layout.DIT_INDEX).write_text(json.dumps({"weight_map": weight_map}))


def measure_load(root: Path, profile: str, blocks: int) -> dict:
    import optimum.quanto  # noqa: F401  (a library, part of the process base like torch, not of the load)
    import torch

    from stepvideo.engine import loading
    from stepvideo.memory import planner
    from stepvideo.memory.placement import place
    from stepvideo.memory.profiles import PROFILES

    settings = PROFILES[profile].replace(quantization="qint8", resident_blocks=MODES[profile])
    spec = loading.dit_spec(root)
    baseline = reset_peak()
    began = time.monotonic()
    placed = place(lambda: loading.dit_on_meta(root), spec, settings, torch.device("cpu"), torch.bfloat16, "bench")
    seconds = time.monotonic() - began
    peak = status_bytes("VmHWM") - baseline
    predicted = planner.streamed_load_host_bytes(blocks, MODES[profile], settings.offload, "qint8", device_is_host=True)
    placed.close()
    return {"profile": profile, "offload": settings.offload, "resident_blocks": MODES[profile], "blocks": blocks,
            "peak_above_baseline_bytes": peak, "predicted_bytes": predicted, "ratio": round(peak / predicted, 4),
            "baseline_rss_bytes": baseline, "seconds": round(seconds, 2)}


def measure_write(out: Path, height: int, width: int, frames: int, dtype_name: str) -> dict:
    import psutil  # noqa: F401  (ChildPeak's; imported before the baseline)
    import torch

    from stepvideo.engine import video_io
    from stepvideo.engine.pipeline import to_uint8_frames
    from stepvideo.memory import planner

    dtype = getattr(torch, dtype_name)
    per = planner.FRAMES_PER_CHUNK
    baseline = reset_peak()
    began = time.monotonic()
    gen = torch.Generator().manual_seed(0)
    ffmpeg = ChildPeak()
    host = torch.empty(per, height, width, 3, dtype=torch.uint8)  # as pipeline._decode reuses one
    with ffmpeg, video_io.Mp4Writer(out, width, height) as writer:
        for _ in range(frames // per):
            # a decoded chunk as the VAE hands it over: (1, 17, 3, H, W) in the compute dtype
            chunk = torch.rand(1, per, 3, height, width, generator=gen).mul_(2).sub_(1).to(dtype)
            writer.send(to_uint8_frames(chunk[0], host))
            del chunk
        writer.finish({"request": {"prompt": "host RAM benchmark"}})
    seconds = time.monotonic() - began
    peak = status_bytes("VmHWM") - baseline
    element = torch.empty((), dtype=dtype).element_size()
    ffmpeg_peak = ffmpeg.peak
    in_process = planner.video_write_host_bytes(height, width, element) - planner.FFMPEG_ENCODER_BYTES
    return {"height": height, "width": width, "frames": frames, "compute_dtype": dtype_name,
            "peak_above_baseline_bytes": peak, "predicted_in_process_bytes": in_process,
            "ratio": round(peak / in_process, 4), "ffmpeg_peak_rss_bytes": ffmpeg_peak,
            "planner_ffmpeg_bytes": planner.FFMPEG_ENCODER_BYTES,
            "process_peak_rss_bytes": status_bytes("VmHWM"), "baseline_rss_bytes": baseline,
            "total_with_ffmpeg_bytes": status_bytes("VmHWM") + ffmpeg_peak, "seconds": round(seconds, 2)}


class ChildPeak:
    """The largest RSS of any child process (ffmpeg), sampled every 20 ms. (RUSAGE_CHILDREN cannot
    tell: a forked child's peak includes the parent's pages from before its exec.)"""

    def __enter__(self) -> ChildPeak:
        import psutil

        self.peak, self._stop = 0, threading.Event()

        def sample() -> None:
            me = psutil.Process()
            while not self._stop.wait(0.02):
                for c in me.children(recursive=True):
                    try:
                        self.peak = max(self.peak, c.memory_info().rss)
                    except psutil.Error:
                        pass

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def child(args: list[str], env: dict | None = None) -> dict:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False,
                          env=env or os.environ.copy())
    if done.returncode != 0:
        raise SystemExit(f"child {args} failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--size", default="544x992x204")
    parser.add_argument("--child", choices=("prepare", "load", "write"), help=argparse.SUPPRESS)
    parser.add_argument("--profile", default="balanced", help=argparse.SUPPRESS)
    parser.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)
    args = parser.parse_args()
    height, width, frames = (int(v) for v in args.size.lower().split("x"))

    if args.child:
        root = args.work / "model"
        if args.child == "prepare":
            make_model(root, args.blocks)
            measure_load(root, "low-vram", args.blocks)  # the first place() builds the qint8 cache
            print(json.dumps({"ok": True}))
        elif args.child == "load":
            print(json.dumps(measure_load(root, args.profile, args.blocks)))
        else:
            print(json.dumps(measure_write(args.work / "video.mp4", height, width, frames, args.dtype)))
        return

    import torch

    from stepvideo.engine.compute_dtype import compute_dtype_for

    work = Path(tempfile.mkdtemp(prefix="stepvideo-host-ram-", dir=args.work))
    env = dict(os.environ, STEPVIDEO_DATA_DIR=str(work / "data"), STEPVIDEO_VIDEOS_DIR=str(work))
    try:
        common = ["--work", str(work), "--blocks", str(args.blocks), "--size", args.size]
        began = time.monotonic()
        child(["--child", "prepare", *common], env)
        prepare_seconds = time.monotonic() - began
        loads = [child(["--child", "load", "--profile", p, *common], env) for p in MODES]
        writes = [child(["--child", "write", "--dtype", d, *common], env)
                  for d in dict.fromkeys((compute_dtype_for("cpu").name, "float32", "bfloat16"))]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({
        "benchmark": "host_ram",
        "what": "peak RSS above the post-import baseline (VmHWM, reset via /proc/self/clear_refs), one child "
                "process per measurement, against the planner's prediction for the same configuration",
        "prepare_seconds": round(prepare_seconds, 1),
        "load": loads,
        "write": writes,
        "all_within_10_percent": all(abs(r["ratio"] - 1) <= 0.10 for r in loads + writes),
        "ffmpeg_within_10_percent": all(abs(w["ffmpeg_peak_rss_bytes"] / w["planner_ffmpeg_bytes"] - 1) <= 0.10
                                        for w in writes),
        "write_under_1_5_GiB": all(w["total_with_ffmpeg_bytes"] < 1.5 * 2**30 for w in writes),
        "machine": {"cpu_count": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version()},
    }, indent=2))


if __name__ == "__main__":
    main()
