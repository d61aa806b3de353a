"""The README's table of predicted peaks: the planner (`stepvideo plan`) for the standard request,
int8 (the default), on a few machines. Torch-free; prints Markdown.

    python benchmarks/planner_table.py

GPU and RAM sizes are decimal GB (as cards and machines are sold); the figures are GiB. A cell
that does not fit names what the planner would suggest at the same quantization (fewer frames).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stepvideo.memory.planner import GB, gib, plan  # noqa: E402
from stepvideo.presets import PRESETS  # noqa: E402

SIZES = [(544, 992, 204, False), (768, 768, 204, False), (544, 992, 136, False), (544, 992, 102, True)]
MACHINES = [(8, 64), (12, 64), (16, 32), (16, 64), (24, 64), (48, 64), (80, 64)]  # (GPU GB, RAM GB)


def cell(gpu_gb: int, ram_gb: int, height: int, width: int, frames: int, image_to_video: bool) -> str:
    p = plan(height, width, frames, cfg=PRESETS["standard"].cfg, gpu_bytes=gpu_gb * GB, ram_bytes=ram_gb * GB,
             image_to_video=image_to_video)
    if not p.fits:
        same_q = [s for s in p.suggestions if s.quantization == p.quantization]
        return f"no fit (→ {same_q[0].profile}, {same_q[0].frames} frames)" if same_q else "no fit"
    blocks = "" if p.profile != "balanced" else f" ({p.settings.resident_blocks} blocks)"
    return f"{p.profile}{blocks}: {gib(p.predicted_vram_bytes)[:-4]} / {gib(p.predicted_ram_bytes)}"


def table() -> str:
    head = "| GPU | RAM | " + " | ".join(f"{'TI2V ' if i2v else ''}{h}×{w}×{f}{' (image-to-video)' if i2v else ''}"
                                       for h, w, f, i2v in SIZES) + " |"
    lines = [head, "|---|---|" + "---|" * len(SIZES)]
    for gpu, ram in MACHINES:
        lines.append(f"| {gpu} GB | {ram} GB | " + " | ".join(cell(gpu, ram, *s) for s in SIZES) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
