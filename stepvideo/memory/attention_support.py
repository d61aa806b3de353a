"""Which fused attention kernels a GPU has, and the order the DiT asks SDPA to try them in.

Pure functions of the compute capability, so the planner, the doctor and the pipeline agree and a
test can feed any GPU. Why it matters for memory: without a bf16 flash or memory-efficient kernel
(GPUs before Ampere, sm < 8.0) SDPA falls back to its math path, which materialises the full score
matrix — about 553 GB at 75,888 tokens. Such GPUs are refused before anything loads rather than
dying halfway through a job. (fp16 with the memory-efficient kernel would run there, but it is not
tested to be numerically sound for this model, so it is not offered.)

cuDNN attention can beat flash on sm90 (H100/H200); it is tried first only when
STEPVIDEO_CUDNN_ATTENTION=1, until benchmarks/gpu_acceptance.py has measured it.
"""

from __future__ import annotations

import os

MIN_FUSED_BF16_CAPABILITY = (8, 0)  # Ampere: bf16 flash and memory-efficient attention
CUDNN_FIRST_CAPABILITY = (9, 0)  # Hopper
CUDNN_ENV = "STEPVIDEO_CUDNN_ATTENTION"
DEFAULT_BACKENDS = ("flash", "efficient")  # never "math": at video lengths it cannot fit


def parse_capability(value: str | tuple[int, int]) -> tuple[int, int]:
    """'8.9' or (8, 9) → (8, 9)."""
    if isinstance(value, tuple):
        return int(value[0]), int(value[1])
    major, _, minor = str(value).partition(".")
    return int(major), int(minor or 0)


def bf16_attention_problem(capability: str | tuple[int, int] | None, name: str = "this GPU") -> str | None:
    """None when the GPU has bf16 flash/memory-efficient attention, else one line saying why not."""
    if capability is None:
        return None  # unknown: torch will tell at run time
    cap = parse_capability(capability)
    if cap >= MIN_FUSED_BF16_CAPABILITY:
        return None
    return (f"{name} (compute capability {cap[0]}.{cap[1]}) has no bf16 flash or memory-efficient attention, "
            f"which need compute capability 8.0 (Ampere) or newer; the fallback math attention would need "
            f"hundreds of GB at video lengths, so it cannot generate videos")


def cudnn_attention_enabled(environ: dict[str, str] | None = None) -> bool:
    value = (os.environ if environ is None else environ).get(CUDNN_ENV, "")
    return value.strip().lower() in ("1", "true", "yes", "on")


def attention_backends(capability: str | tuple[int, int], cudnn_first: bool = False) -> tuple[str, ...]:
    """The SDPA backends the DiT may use, in priority order: cuDNN first on sm90+ when enabled, then
    flash, then memory-efficient. Never math (see the module docstring)."""
    if cudnn_first and parse_capability(capability) >= CUDNN_FIRST_CAPABILITY:
        return ("cudnn", *DEFAULT_BACKENDS)
    return DEFAULT_BACKENDS
