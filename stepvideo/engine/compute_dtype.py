"""The dtype the engine computes in, decided in one place.

GPUs compute in bf16, the published weights' dtype. A CPU computes in bf16 only when it runs bf16
natively (AVX-512 BF16 or AMX): elsewhere oneDNN emulates it, and one bf16 Conv3d of the VAE took
62.7 s against 0.26 s in fp32 on an AMD EPYC without AVX-512 (issue 11), so those CPUs compute in
fp32 and weights stored in bf16 are upcast as they load. STEPVIDEO_CPU_DTYPE=bf16|fp32 forces either
branch (tests, benchmarks).

Torch-free (names, not torch dtypes), so `stepvideo doctor` can say the choice without importing torch.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidRequest

OVERRIDE_ENV = "STEPVIDEO_CPU_DTYPE"
OVERRIDES = {"bf16": "bfloat16", "fp32": "float32"}
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo names of native bf16 arithmetic
GPU_DTYPE = "bfloat16"


@dataclass(frozen=True)
class DtypeChoice:
    name: str  # a torch dtype name: "bfloat16" or "float32"
    reason: str  # one line for logs, the doctor and the sidecar


def choose_cpu_dtype(cpu_flags: Iterable[str], override: str | None = None) -> DtypeChoice:
    """bf16 when the CPU has a native bf16 instruction set, else fp32; `override` (bf16|fp32) wins."""
    if override:
        value = override.strip().lower()
        if value not in OVERRIDES:
            raise InvalidRequest(f"{OVERRIDE_ENV}={override!r} is not allowed; allowed: {', '.join(OVERRIDES)}")
        return DtypeChoice(OVERRIDES[value], f"forced by {OVERRIDE_ENV}={value}")
    native = sorted(set(cpu_flags) & set(NATIVE_BF16_FLAGS))
    if native:
        return DtypeChoice("bfloat16", f"the CPU runs bf16 natively ({', '.join(native)})")
    return DtypeChoice("float32", "the CPU has no native bf16 (no AVX-512 BF16 or AMX), where bf16 is emulated "
                                  "and up to ~240x slower")


def read_cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The first CPU's feature flags; empty when /proc/cpuinfo is unreadable (then fp32: always safe)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def compute_dtype_for(device_type: str) -> DtypeChoice:
    """The engine's compute dtype on this machine for a device type ("cuda", "cpu")."""
    if device_type != "cpu":
        return DtypeChoice(GPU_DTYPE, "GPUs compute in the published weights' dtype")
    return choose_cpu_dtype(read_cpu_flags(), os.environ.get(OVERRIDE_ENV))
