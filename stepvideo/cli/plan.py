"""`stepvideo plan`: which memory profile a video needs on this (or a described) machine.

Exit 0 when something fits, 3 (out of memory) with what would fit when nothing does, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json

from ..errors import InvalidRequest
from ..memory import planner
from ..memory.profiles import PROFILE_NAMES, QUANTIZATIONS
from ..presets import DEFAULT_FRAMES, DEFAULT_SIZE, PRESETS
from ._gpu_arg import add_gpu_argument, apply_gpu_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("plan", help="predict peak VRAM and RAM per memory profile and pick one")
    p.add_argument("--gpu-memory", help="free GPU memory, e.g. 16GiB (default: read this machine)")
    p.add_argument("--ram", help="available host RAM, e.g. 64GiB (default: read this machine)")
    p.add_argument("--size", default=f"{DEFAULT_SIZE[0]}x{DEFAULT_SIZE[1]}", help="HEIGHTxWIDTH, e.g. 544x992")
    p.add_argument("--frames", type=int, default=DEFAULT_FRAMES, help="multiple of 17 (default 204)")
    p.add_argument("--preset", default="standard", choices=list(PRESETS))
    p.add_argument("--profile", default="auto", choices=["auto", *PROFILE_NAMES])
    p.add_argument("--quantization", choices=list(QUANTIZATIONS), help="default: qint8")
    p.add_argument("--ti2v", action="store_true",
                   help="plan an image-to-video run (Step-Video-TI2V: its VAE encode stage and bigger DiT input)")
    p.add_argument("--json", action="store_true", help="print the whole plan as JSON")
    add_gpu_argument(p)
    p.set_defaults(handler=run)


def parse_size(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(s.strip().isdigit() for s in parts):
        raise InvalidRequest(f"size {text!r} is not allowed; write HEIGHTxWIDTH with multiples of 16, e.g. 544x992")
    return int(parts[0]), int(parts[1])


def run(args: argparse.Namespace) -> int:
    height, width = parse_size(args.size)
    if not args.gpu_memory:
        apply_gpu_argument(args)  # the free memory read below is the chosen GPU's
    gpu = planner.parse_bytes(args.gpu_memory) if args.gpu_memory else None
    ram = planner.parse_bytes(args.ram) if args.ram else None
    result = planner.plan(
        height, width, args.frames, cfg=PRESETS[args.preset].cfg, profile=args.profile,
        quantization=args.quantization, gpu_bytes=gpu, ram_bytes=ram, image_to_video=args.ti2v,
    )
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(render(result))
    return 0 if result.fits else 3


def render(p: planner.Plan) -> str:
    g = planner.gib
    lines = [
        f"video {p.height}x{p.width}x{p.frames} ({p.tokens:,} tokens), GPU {g(p.gpu_bytes)} free, RAM {g(p.ram_bytes)} available",
        f"{'profile':<10} {'fits':<5} {'VRAM':>10} {'RAM':>10}  blocks on GPU",
    ]
    for pred in p.predictions.values():
        lines.append(f"{pred.profile:<10} {'yes' if pred.fits else 'no':<5} {g(pred.vram_bytes):>10} "
                     f"{g(pred.ram_bytes):>10}  {pred.resident_blocks}")
    lines.extend(f"note: {n}" for n in p.notes)
    if p.fits:
        lines.append(f"chosen: {p.profile} ({p.quantization}), peak VRAM {g(p.predicted_vram_bytes)}, "
                     f"peak RAM {g(p.predicted_ram_bytes)}")
    else:
        lines.append(f"nothing fits as asked: {p.predictions[p.profile].reason}")
        lines.extend(f"would fit: {s.describe()}" for s in p.suggestions)
        if not p.suggestions:
            lines.append("nothing at this size fits; try a smaller size or a machine with more memory")
    return "\n".join(lines)
