"""Which memory settings a run uses: the planner's choice on a GPU, the request's on a CPU."""

from __future__ import annotations

import torch

from ..api import GenerationRequest
from .planner import Plan, plan_request, require_fit
from .profiles import PROFILES, Profile


def settings_for(request: GenerationRequest, device: torch.device) -> tuple[Profile, Plan | None]:
    """On CUDA: plan against the free VRAM and available RAM, refusing (OutOfMemory, one line saying
    what would fit) before anything loads. On the CPU there is no VRAM budget: `auto` keeps every
    component whole in bf16, and a named profile applies as asked (so it can be exercised anywhere)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        plan = require_fit(plan_request(request, gpu_bytes=int(free)))
        return plan.settings, plan
    name = "resident" if request.profile == "auto" else request.profile
    return PROFILES[name].replace(quantization=request.quantization or "none"), None
