"""Memory figures for events and the sidecar: the torch allocator (when CUDA is in use) plus host RAM."""

from __future__ import annotations

import resource
import sys

import psutil


def memory_snapshot() -> dict[str, int]:
    """Bytes: vram_allocated/reserved/peak/total from this process's CUDA allocator, rss, rss_peak (the
    process's high-water mark so far) and ram_available.

    torch is consulted only if this process already imported it, so the UI can call this too.
    """
    figures = {"vram_allocated": 0, "vram_reserved": 0, "vram_peak": 0, "vram_total": 0}
    if _cuda_in_use():
        torch = sys.modules["torch"]
        figures.update(
            vram_allocated=int(torch.cuda.memory_allocated()),
            vram_reserved=int(torch.cuda.memory_reserved()),
            vram_peak=int(torch.cuda.max_memory_allocated()),
            vram_total=int(torch.cuda.get_device_properties(0).total_memory),
        )
    figures["rss"] = int(psutil.Process().memory_info().rss)
    figures["rss_peak"] = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # KiB on Linux
    figures["ram_available"] = int(psutil.virtual_memory().available)
    return figures


def reset_peak() -> None:
    if _cuda_in_use():
        sys.modules["torch"].cuda.reset_peak_memory_stats()


def _cuda_in_use() -> bool:
    """True once this process has a CUDA context. False while torch is still being imported (by
    another thread: the worker's memory reporter starts before the engine finishes importing)."""
    torch = sys.modules.get("torch")
    try:
        return torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized()
    except AttributeError:  # a partly imported torch
        return False
