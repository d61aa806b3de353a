"""A stand-in for the `pynvml` module with the GPUs a test asks for (tests put it in sys.modules)."""

from __future__ import annotations

import types
from dataclasses import dataclass


class NVMLError(Exception):
    pass


@dataclass
class _Memory:
    total: int
    used: int

    @property
    def free(self) -> int:
        return self.total - self.used


def fake_nvml(devices: list[tuple[str, int, int]]) -> types.ModuleType:
    """devices: (name, total bytes, used bytes) per GPU, in NVML order."""
    module = types.ModuleType("pynvml")
    module.NVMLError = NVMLError
    module.nvmlInit = lambda: None
    module.nvmlShutdown = lambda: None
    module.nvmlDeviceGetCount = lambda: len(devices)

    def handle(index: int) -> int:
        if not 0 <= index < len(devices):
            raise NVMLError(f"Invalid Argument (device {index})")
        return index

    module.nvmlDeviceGetHandleByIndex = handle
    module.nvmlDeviceGetName = lambda h: devices[h][0]
    module.nvmlDeviceGetMemoryInfo = lambda h: _Memory(devices[h][1], devices[h][2])
    return module


GIB = 2**30
TWO_GPUS = [("NVIDIA RTX 4090", 24 * GIB, 2 * GIB), ("NVIDIA RTX A6000", 48 * GIB, 1 * GIB)]
