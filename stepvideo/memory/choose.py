"""Which memory settings a run uses: the planner's choice on a GPU, the request's on a CPU."""

from __future__ import annotations

from pathlib import Path

import torch

from ..api import GenerationRequest
from ..errors import OutOfMemory
from .planner import GiB, Plan, detect_ram_bytes, plan_request, require_fit
from .profiles import PROFILES, Profile


def settings_for(request: GenerationRequest, device: torch.device, weight_files: list[Path] | None = None,
                 ) -> tuple[Profile, Plan | None]:
    """On CUDA: plan against the free VRAM and available RAM, refusing (OutOfMemory, one line saying
    what would fit) before anything loads. On the CPU there is no VRAM budget: `auto` keeps every
    component whole in bf16, and a named profile applies as asked (so it can be exercised anywhere)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        plan = require_fit(plan_request(request, gpu_bytes=int(free)))
        return plan.settings, plan
    _check_cpu_ram(weight_files or [])
    name = "resident" if request.profile == "auto" else request.profile
    return PROFILES[name].replace(quantization=request.quantization or "none"), None


def _check_cpu_ram(weight_files: list[Path]) -> None:
    """Without a GPU every component is held in host RAM in turn; the largest must fit (the real DiT
    does not on any ordinary machine, and a CPU run of it would take days anyway)."""
    largest = max((sum(Path(f).stat().st_size for f in group) for group in _by_folder(weight_files)), default=0)
    available = detect_ram_bytes()
    if largest > available:
        raise OutOfMemory(
            f"no CUDA GPU found, and on the CPU this model needs {largest / GiB:.1f} GiB of RAM "
            f"({available / GiB:.1f} GiB available); run it on a machine with an NVIDIA GPU"
        )


def _by_folder(files: list[Path]) -> list[list[Path]]:
    groups: dict[Path, list[Path]] = {}
    for f in files:
        groups.setdefault(Path(f).parent, []).append(Path(f))
    return list(groups.values())
