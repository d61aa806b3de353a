"""Seconds per pipeline stage for the tiny model on CPU, as JSON (issue: Engine).

    python benchmarks/engine_cpu.py [--size 64x128] [--frames 34] [--steps 3] [--repeats 3] [--dtype auto|bf16|fp32]

It runs in a temporary folder and touches none of the user's folders. `--dtype` sets
STEPVIDEO_CPU_DTYPE (auto: the engine's own choice by CPU capability); the JSON says which dtype ran,
read back from the video's metadata, and whether this CPU has native bf16.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default="64x128")
    parser.add_argument("--frames", type=int, default=34)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", choices=("auto", "bf16", "fp32"), default="auto")
    args = parser.parse_args()
    if args.dtype == "auto":
        os.environ.pop("STEPVIDEO_CPU_DTYPE", None)
    else:
        os.environ["STEPVIDEO_CPU_DTYPE"] = args.dtype
    height, width = (int(v) for v in args.size.lower().split("x"))

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["STEPVIDEO_VIDEOS_DIR"] = tmp
        import torch

        from stepvideo.api import GenerationRequest
        from stepvideo.engine.compute_dtype import NATIVE_BF16_FLAGS, read_cpu_flags
        from stepvideo.engine.pipeline import generate
        from stepvideo.engine.session import EngineSession
        from stepvideo.engine.video_io import read_metadata
        from stepvideo.testing.tiny_model import make_tiny_model

        began = time.perf_counter()
        model = make_tiny_model(Path(tmp) / "tiny")
        make_seconds = time.perf_counter() - began
        runs, dtypes = [], set()
        for i in range(args.repeats):
            request = GenerationRequest(prompt="A red fox jumps over a snowy log at dawn", model=str(model),
                                        height=height, width=width, frames=args.frames, steps=args.steps,
                                        seed=i, output=str(Path(tmp) / f"{i}.mp4"))
            result = generate(request, session=EngineSession(device="cpu", keep_loaded=False))
            runs.append({"total": result.seconds, **result.stage_seconds})
            dtypes.add(read_metadata(Path(result.video_path))["compute_dtype"])
        stages = sorted({k for run in runs for k in run})
        print(json.dumps({
            "benchmark": "engine_cpu",
            "model": "tiny random (stepvideo make-tiny-model)",
            "request": {"height": height, "width": width, "frames": args.frames, "steps": args.steps},
            "dtype_asked": args.dtype,
            "compute_dtype": sorted(dtypes),
            "cpu_native_bf16_flags": sorted(read_cpu_flags() & set(NATIVE_BF16_FLAGS)),
            "make_tiny_model_seconds": round(make_seconds, 3),
            "median_seconds": {k: round(statistics.median(r[k] for r in runs), 4) for k in stages},
            "runs": runs,
            "machine": {"cpu_count": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version(),
                        "torch_threads": torch.get_num_threads()},
        }, indent=2))


if __name__ == "__main__":
    main()
