"""What every stage of gpu_acceptance.py shares: its context (device, dtype, deadline, JSON file),
random weights without a download, and the memory probes (torch allocator, NVML, VmHWM).

Only torch is imported at module level; NVML (nvidia-ml-py) is optional and imported on use, so a
machine without it still runs every stage (its figures are then null).
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[2]
GiB = 1 << 30


class StageError(RuntimeError):
    """A stage cannot run here (no GPU, a missing package): one line, recorded as the stage's error."""


@dataclass
class StageContext:
    name: str
    out_dir: Path
    smoke: bool
    deadline: float  # time.time() by which the stage must have written its last figure
    scratch: Path
    options: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        return torch.device("cpu" if self.smoke else "cuda")

    @property
    def dtype(self) -> torch.dtype:
        # bf16 as in production on the GPU; fp32 on CPU, where bf16 convolutions can be 240× slower.
        return torch.float32 if self.smoke else torch.bfloat16

    def require_device(self) -> None:
        if not self.smoke and not torch.cuda.is_available():
            raise StageError("no CUDA GPU is visible to torch (run with --cpu-smoke for the CPU check)")

    def time_left(self) -> float:
        return self.deadline - time.time()

    def save(self) -> None:
        """Write what the stage has so far (atomically: a kill mid-write leaves the previous file)."""
        path = self.out_dir / "stages" / f"{self.name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.result, indent=1, default=str))
        os.replace(tmp, path)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def fill_random_(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Deterministic random weights of a sane scale (materialised modules, any device): matrices and
    kernels N(0, 1/fan_in), norm weights 1, biases and modulation tables N(0, 0.02)."""
    gen = None
    for name, p in module.named_parameters():
        if gen is None:
            gen = torch.Generator(device=p.device).manual_seed(seed)
        if p.ndim >= 2 and "scale_shift_table" not in name:
            p.normal_(0.0, 1.0 / math.sqrt(p[0].numel()), generator=gen)
        elif name.endswith("weight"):
            p.fill_(1.0)
        else:
            p.normal_(0.0, 0.02, generator=gen)
    return module


def build_random(factory, device: torch.device, dtype: torch.dtype, seed: int) -> torch.nn.Module:
    """Build on meta, cast there (free), then materialise on `device`: no fp32 copy ever exists."""
    with torch.device("meta"):
        module = factory()
    module = module.to(dtype).to_empty(device=device)
    return fill_random_(module, seed).eval()


# --- Memory probes ---------------------------------------------------------------------------------------


def vm_hwm_bytes() -> int | None:
    """This process's peak resident set (VmHWM)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def reset_vm_hwm() -> bool:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0), so each run's host peak is its own."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def page_cache_bytes() -> int | None:
    """The kernel's page cache ("Cached" in /proc/meminfo): shows whether an eviction worked."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("Cached:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def evict_from_page_cache(paths: list[Path]) -> bool:
    """Drop the files' pages from the page cache (flushed first: dirty pages are not dropped)."""
    ok = True
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        except OSError:
            ok = False
        finally:
            os.close(fd)
    return ok


def allocator_reset(device: torch.device) -> dict[str, int]:
    """Empty the cache, reset the peaks; returns the counters to subtract at the end."""
    if device.type != "cuda":
        return {}
    synchronize(device)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    stats = torch.cuda.memory_stats(device)
    return {"retries": stats.get("num_alloc_retries", 0), "ooms": stats.get("num_ooms", 0)}


def allocator_figures(device: torch.device, start: dict[str, int]) -> dict[str, int | None]:
    if device.type != "cuda":
        return {"peak_allocated_bytes": None, "peak_reserved_bytes": None, "alloc_retries": None}
    stats = torch.cuda.memory_stats(device)
    return {
        "peak_allocated_bytes": int(torch.cuda.max_memory_allocated(device)),
        "peak_reserved_bytes": int(torch.cuda.max_memory_reserved(device)),
        # cudaMalloc failed and the allocator freed its cache to retry: the sign of fragmentation.
        "alloc_retries": int(stats.get("num_alloc_retries", 0) - start.get("retries", 0)),
    }


class NvmlPeak:
    """Samples NVML's 'used' memory of the device on a thread; `peak` is None without NVML or a GPU.
    NVML counts what torch's allocator cannot see: the CUDA context, cuDNN/cuBLAS workspaces."""

    def __init__(self, device: torch.device, interval_s: float = 0.02) -> None:
        self.device = device
        self.interval_s = interval_s
        self.peak: int | None = None
        self.start: int | None = None
        self.problem: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._nvml = None
        self._handle = None

    def __enter__(self) -> NvmlPeak:
        if self.device.type != "cuda":
            self.problem = "no CUDA device"
            return self
        try:
            import pynvml

            pynvml.nvmlInit()
            index = torch.cuda.current_device() if self.device.index is None else self.device.index
            # NVML numbers devices physically; CUDA_VISIBLE_DEVICES may renumber them for torch.
            visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")
            if visible[0].strip().isdigit():
                index = int(visible[index].strip())
            self._nvml, self._handle = pynvml, pynvml.nvmlDeviceGetHandleByIndex(index)
            self.start = self.peak = self._used()
        except Exception as exc:  # ImportError, NVMLError_*: figures stay null, the run goes on
            self.problem = first_line(exc)
            return self
        self._thread = threading.Thread(target=self._poll, name="nvml-peak", daemon=True)
        self._thread.start()
        return self

    def _used(self) -> int:
        return int(self._nvml.nvmlDeviceGetMemoryInfo(self._handle).used)

    def _poll(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak = max(self.peak or 0, self._used())

    def __exit__(self, *exc) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak or 0, self._used())
            self._nvml.nvmlShutdown()

    def figures(self) -> dict[str, Any]:
        return {"nvml_used_start_bytes": self.start, "nvml_used_peak_bytes": self.peak, "nvml_problem": self.problem}


def release_host_cache() -> str | None:
    """Give cached pinned host memory back to the OS; returns which function did it (None: none exists,
    as on torch 2.11 where torch.accelerator.empty_host_cache is missing)."""
    accelerator = getattr(torch, "accelerator", None)
    if accelerator is not None and hasattr(accelerator, "empty_host_cache"):
        accelerator.empty_host_cache()
        return "torch.accelerator.empty_host_cache"
    if hasattr(torch._C, "_host_emptyCache"):
        torch._C._host_emptyCache()
        return "torch._C._host_emptyCache"
    return None
