"""Peak activation memory of one 17-frame VAE decode chunk, measured without a GPU.

The full-width decoder runs on the meta device (no compute, no real memory) under a dispatch mode
that tracks every live tensor storage, so the peak is exact for this implementation's own
allocations (it cannot see cuDNN workspaces or allocator fragmentation; tiling.SAFETY_MARGIN covers
those). Prints JSON: per latent tile size, the peak bytes and the peak in elements per output pixel,
which is where the constants of `stepvideo.memory.tiling.estimate_tile_bytes` come from.

    PYTHONPATH=. python benchmarks/vae_decode_memory.py [--sizes 8x8,16x16,34x62]
"""

from __future__ import annotations

import argparse
import json
import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from stepvideo.memory.tiling import CONV_ELEMENTS_PER_PIXEL, SAFETY_MARGIN, estimate_tile_bytes
from stepvideo.models.vae import VideoVAE


class LiveTensorTracker(TorchDispatchMode):
    """Sums the bytes of storages created inside the mode while they are alive; keeps the peak."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, int] = {}
        self.current = 0
        self.peak = 0

    def _free(self, key: int) -> None:
        self.current -= self.live.pop(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                storage = t.untyped_storage()
                key = storage._cdata
                if key not in self.live:
                    self.live[key] = storage.nbytes()
                    self.current += storage.nbytes()
                    self.peak = max(self.peak, self.current)
                    weakref.finalize(storage, self._free, key)
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4x4,8x8,16x16,34x62", help="latent HxW tiles, comma separated")
    args = parser.parse_args()
    dtype = torch.bfloat16
    with torch.device("meta"):
        vae = VideoVAE().to(dtype)
    rows = []
    for size in args.sizes.split(","):
        h, w = (int(v) for v in size.lower().split("x"))
        latents = torch.empty(1, 3, 64, h, w, device="meta", dtype=dtype)
        with LiveTensorTracker() as tracker:
            out = vae.decode_chunk(latents)
            del out
        pixels = h * w * 16 * 16
        rows.append({
            "latent_hw": [h, w],
            "pixels": [h * 16, w * 16],
            "peak_bytes": tracker.peak,
            "peak_elements_per_pixel": round(tracker.peak / dtype.itemsize / pixels, 1),
            "planner_estimate_bytes": estimate_tile_bytes(h, w, dtype.itemsize),
            "planner_estimate_without_margin": round(estimate_tile_bytes(h, w, dtype.itemsize) / SAFETY_MARGIN),
        })
    print(json.dumps({
        "benchmark": "vae_decode_memory",
        "device": "meta (exact allocation tracking, no compute)",
        "dtype": str(dtype),
        "planner_conv_elements_per_pixel": CONV_ELEMENTS_PER_PIXEL,
        "planner_safety_margin": SAFETY_MARGIN,
        "results": rows,
    }, indent=2))


if __name__ == "__main__":
    main()
