"""The named memory profiles: how much of the model lives on the GPU and how the rest gets there.

Torch-free (the UI shows these). The planner (`planner.py`) predicts the peak VRAM and host RAM of
each profile for a given request and machine; `auto` picks the fastest one that fits.

Profiles, fastest first:
- `resident`: every component visits the GPU whole, in turn (text encoders, then the DiT, then the
  VAE); the DiT stays on the GPU for the whole denoise, then makes room for the VAE.
- `balanced`: as many DiT blocks as fit stay on the GPU; the others stream from pinned host memory,
  one block ahead on a side CUDA stream. The planner decides the block count per machine. CFG's two
  rows run one after the other, so the activations it saves hold more resident blocks.
- `low-vram`: one DiT block at a time on the GPU (plus the one being prefetched); every block is
  pinned in host RAM. Text encoders stream the same way when they do not fit whole. CFG's two rows
  run one after the other, which halves the activations.
- `low-ram`: like `low-vram`, but blocks are read from memory-mapped safetensors through a ring of
  two pinned buffers, so host RAM holds only the ring (the OS page cache may keep the file warm).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, InvalidRequest
from ..strict_fields import from_known_fields

PROFILE_NAMES = ("resident", "balanced", "low-vram", "low-ram")
OFFLOAD_MODES = ("none", "pinned", "mmap")
QUANTIZATIONS = ("none", "qint8", "qfloat8", "qint4")
DEFAULT_QUANTIZATION = "qint8"


@dataclass(frozen=True)
class Profile:
    """One memory profile. `resident_blocks` counts the DiT blocks on the GPU at once, the one being
    computed included (N−1 stay fixed, one slot cycles through the rest, and one more block is in
    flight, so at most N+1 are materialised); None means all blocks, no streaming."""

    name: str
    resident_blocks: int | None
    quantization: str = DEFAULT_QUANTIZATION
    offload: str = "none"  # where streamed blocks come from: none | pinned host memory | mmap'd files
    vae_tile: int | None = None  # spatial tile side in latents (×16 px) for tiling.tiled_decode; None: whole frame
    ff_chunk_tokens: int | None = None  # token-chunked FFN in the DiT; None: one pass
    previews: bool = True
    # CFG's cond and uncond rows in one batched forward (True), or one after the other (False): the
    # same math, half the activations (4–6 GiB saved at 544×992×204), a few % slower at most.
    cfg_batch: bool = True
    speed_rank: int = 0  # 0 is the fastest; `auto` tries profiles in this order

    def __post_init__(self) -> None:
        if self.quantization not in QUANTIZATIONS:
            raise ConfigError(f"unknown quantization {self.quantization!r}; allowed: {', '.join(QUANTIZATIONS)}")
        if self.offload not in OFFLOAD_MODES:
            raise ConfigError(f"unknown offload mode {self.offload!r}; allowed: {', '.join(OFFLOAD_MODES)}")
        if self.resident_blocks is not None and self.resident_blocks < 1:
            raise ConfigError(f"resident_blocks {self.resident_blocks} is not allowed; it must be ≥ 1 or None (all)")
        if self.resident_blocks is not None and self.offload == "none":
            raise ConfigError("a profile that streams blocks needs offload 'pinned' or 'mmap'")
        for name in ("vae_tile", "ff_chunk_tokens"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise ConfigError(f"{name} {value!r} is not allowed; it must be a positive whole number or None")

    @property
    def streams(self) -> bool:
        return self.resident_blocks is not None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        return from_known_fields(cls, data, ConfigError, "profile")

    def replace(self, **changes: Any) -> Profile:
        return dataclasses.replace(self, **changes)


# Tile sizes and FFN chunks shrink as the profile gets leaner; they cost little speed (a few % at
# these sequence lengths) but cut the activation peaks the planner accounts for.
PROFILES: dict[str, Profile] = {
    "resident": Profile("resident", resident_blocks=None, offload="none", vae_tile=None,
                        ff_chunk_tokens=None, previews=True, speed_rank=0),
    # resident_blocks here is only the floor; the planner raises it to what the GPU holds.
    "balanced": Profile("balanced", resident_blocks=2, offload="pinned", vae_tile=32,
                        ff_chunk_tokens=16384, previews=True, cfg_batch=False, speed_rank=1),
    "low-vram": Profile("low-vram", resident_blocks=1, offload="pinned", vae_tile=16,
                        ff_chunk_tokens=8192, previews=False, cfg_batch=False, speed_rank=2),
    "low-ram": Profile("low-ram", resident_blocks=1, offload="mmap", vae_tile=16,
                       ff_chunk_tokens=8192, previews=False, cfg_batch=False, speed_rank=3),
}


def get_profile(name: str) -> Profile:
    """The named profile, or InvalidRequest naming the allowed names ('auto' is the planner's job)."""
    try:
        return PROFILES[name]
    except KeyError:
        raise InvalidRequest(f"unknown memory profile {name!r}; allowed: auto, {', '.join(PROFILE_NAMES)}") from None
