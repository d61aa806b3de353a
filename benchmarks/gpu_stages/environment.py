"""Stage 1, environment facts: versions, the device, which host-cache release function this torch has,
the SDPA backend order, and which attention backends accept the DiT's shape (bf16, head_dim 128)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from .common import StageContext, first_line

OPTIONAL_MODULES = ("optimum.quanto", "safetensors", "numpy", "pynvml", "pytest", "platformdirs", "psutil",
                    "imageio_ffmpeg", "sentencepiece", "tokenizers", "PySide6")
DISTRIBUTIONS = ("optimum-quanto", "safetensors", "numpy", "nvidia-ml-py", "pytest")
BACKENDS = ("FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION", "MATH")


def run(ctx: StageContext) -> None:
    ctx.result.update(software())
    ctx.result.update(device_facts(ctx))
    ctx.result["host_cache_release"] = {
        "torch.accelerator.empty_host_cache": hasattr(getattr(torch, "accelerator", None), "empty_host_cache"),
        "torch._C._host_emptyCache": hasattr(torch._C, "_host_emptyCache"),
    }
    ctx.result["sdpa"] = sdpa_facts(ctx)
    ctx.save()


def software() -> dict:
    versions = {}
    for dist in DISTRIBUTIONS:
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "packages": versions,
        "importable": {m: _importable(m) for m in OPTIONAL_MODULES},
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # the parent package is missing
        return False


def device_facts(ctx: StageContext) -> dict:
    facts = {"cuda_available": torch.cuda.is_available(), "device_name": None, "compute_capability": None,
             "total_memory_bytes": None, "bf16_supported": None, "driver": None}
    if not facts["cuda_available"]:
        return facts
    props = torch.cuda.get_device_properties(0)
    facts.update(device_name=props.name, compute_capability=f"{props.major}.{props.minor}",
                 total_memory_bytes=int(props.total_memory), bf16_supported=torch.cuda.is_bf16_supported())
    try:
        import pynvml

        pynvml.nvmlInit()
        facts["driver"] = pynvml.nvmlSystemGetDriverVersion()
        pynvml.nvmlShutdown()
    except Exception as exc:  # no nvidia-ml-py: the driver version stays unknown
        facts["driver"] = f"unknown ({first_line(exc)})"
    return facts


def sdpa_facts(ctx: StageContext) -> dict:
    """The backend priority torch uses, the enabled flags, and for each backend whether it runs the
    DiT's attention (self-attention without a mask, cross-attention with a key-length mask)."""
    names = {b.value: name for name, b in SDPBackend.__members__.items()}
    order = torch._C._get_sdp_priority_order() if hasattr(torch._C, "_get_sdp_priority_order") else None
    enabled = {}
    for flag in ("flash_sdp_enabled", "mem_efficient_sdp_enabled", "cudnn_sdp_enabled", "math_sdp_enabled"):
        getter = getattr(torch.backends.cuda, flag, None)
        enabled[flag] = bool(getter()) if getter is not None else None
    heads, head_dim = (2, 32) if ctx.smoke else (48, 128)
    q = torch.randn(1, heads, 256, head_dim, device=ctx.device, dtype=ctx.dtype)
    kv = torch.randn(1, heads, 97, head_dim, device=ctx.device, dtype=ctx.dtype)
    mask = (torch.arange(97, device=ctx.device) < 80)[None, None, None, :]
    accepts = {}
    for name in BACKENDS:
        backend = getattr(SDPBackend, name)
        accepts[name] = {"self": _try(backend, q, q, q, None), "cross_masked": _try(backend, q, kv, kv, mask)}
    return {"priority_order": [names.get(int(v), str(v)) for v in order] if order is not None else None,
            "enabled": enabled, "accepts_dit_shapes": accepts}


def _try(backend, q, k, v, mask) -> str:
    try:
        with sdpa_kernel([backend]):
            F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return "ok"
    except RuntimeError as exc:
        return first_line(exc)
