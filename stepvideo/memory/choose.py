"""Which memory settings a run uses: the planner's choice on a GPU, the request's on a CPU."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from ..api import GenerationRequest
from ..errors import OutOfMemory, UnsupportedGpu
from .attention_support import bf16_attention_problem
from .planner import GiB, Plan, detect_gpu_bytes, detect_ram_bytes, llm_streams, plan_request, require_fit
from .profiles import DEFAULT_QUANTIZATION, PROFILES, Profile
from .quantize import resolve_qtype

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSettings:
    dit: Profile  # the chosen profile, with the DiT's resident block count resolved
    llm: Profile  # the same profile, streamed or whole as the planner counted Step-LLM
    plan: Plan | None  # None on the CPU
    notes: tuple[str, ...] = ()  # things the user should hear (a quantization fallback)


def usable_vram(device: torch.device) -> int:
    """Free device memory plus what this process's caching allocator holds but does not use (the
    planner's reading, once this process has its CUDA context)."""
    torch.cuda.init()
    with torch.cuda.device(device):
        return detect_gpu_bytes()


def settings_for(request: GenerationRequest, device: torch.device, weight_files: list[Path] | None = None,
                 on_event=None) -> RunSettings:
    """On CUDA: plan against the usable VRAM and available RAM, refusing (OutOfMemory, one line saying
    what would fit) before anything loads. On the CPU there is no VRAM budget: `auto` keeps every
    component whole (in the CPU compute dtype, engine/compute_dtype.py), and a named profile applies as asked (so it can be exercised anywhere)."""
    if device.type == "cuda":
        capability = torch.cuda.get_device_capability(device)
        problem = bf16_attention_problem(capability, torch.cuda.get_device_name(device))
        if problem:  # before any kernel probe or load: this GPU cannot run the model at any size
            raise UnsupportedGpu(problem)
        wanted = request.quantization or DEFAULT_QUANTIZATION
        # Resolve a kernel fallback (qint4/qfloat8 → qint8) before planning, so the plan counts the
        # bytes that will really load.
        qtype = wanted if wanted == "none" else resolve_qtype(wanted, "cuda", on_event)
        notes = () if qtype == wanted else (f"{wanted} kernels are unavailable here; using {qtype} instead",)
        gpu = usable_vram(device)
        plan = require_fit(plan_request(request.replace(quantization=qtype), gpu_bytes=gpu, capability=capability))
        streams = llm_streams(plan.profile, plan.quantization, gpu)
        return RunSettings(plan.settings, _llm_profile(plan.settings, streams), plan, notes)
    _check_cpu_ram(weight_files or [])
    name = "resident" if request.profile == "auto" else request.profile
    profile = PROFILES[name].replace(quantization=request.quantization or "none")
    return RunSettings(profile, _llm_profile(profile, profile.streams), None)


def _llm_profile(profile: Profile, streams: bool) -> Profile:
    """Step-LLM either visits the GPU whole or streams one layer at a time (plus one in flight)."""
    if not streams:
        return profile.replace(resident_blocks=None, offload="none")
    offload = "mmap" if profile.offload == "mmap" else "pinned"
    return profile.replace(resident_blocks=1, offload=offload)


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
