"""GPU and host-memory sampling for the status bar and the live chart: psutil + NVML, no CUDA context.

NVML answers device-wide VRAM without creating a CUDA context, so it is safe in the UI process while the
worker renders. Without an NVIDIA driver (or nvidia-ml-py) the monitor reports host RAM only.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import psutil
from PySide6.QtCore import QObject, QTimer, Signal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MemorySample:
    time: float
    ram_used: int
    ram_total: int
    vram_used: int | None = None  # None: no NVML (no NVIDIA GPU or driver)
    vram_total: int | None = None
    gpu_name: str | None = None
    worker_rss: int | None = None

    @property
    def has_gpu(self) -> bool:
        return self.vram_total is not None


class NvmlProbe:
    """One device (the GPU chosen in Settings; nvidia-smi's numbering) through NVML, or nothing.
    Never raises after construction."""

    def __init__(self, index: int = 0) -> None:
        self.index = index
        self._handle = None
        self.name: str | None = None
        self.error: str | None = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(self._handle)
            self.name = name.decode() if isinstance(name, bytes) else str(name)
            if pynvml.nvmlDeviceGetCount() > 1:  # with several GPUs, say which one the figures are for
                self.name = f"GPU {index}: {self.name}"
        except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ImportError, no device …
            self.error = f"{type(exc).__name__}: {exc}"
            log.info("NVML unavailable (%s); showing host RAM only", self.error)
            self._handle = None

    @property
    def available(self) -> bool:
        return self._handle is not None

    def memory(self) -> tuple[int, int] | None:
        if self._handle is None:
            return None
        try:
            info = self._nvml.nvmlDeviceGetMemoryInfo(self._handle)
            return int(info.used), int(info.total)
        except Exception as exc:  # the driver can go away (reset, unload): degrade, don't crash
            log.warning("NVML stopped answering (%s); showing host RAM only", exc)
            self._handle = None
            return None


def sample(probe: NvmlProbe | None, worker_pid: int | None = None) -> MemorySample:
    vm = psutil.virtual_memory()
    vram = probe.memory() if probe is not None else None
    rss = None
    if worker_pid:
        try:
            rss = psutil.Process(worker_pid).memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            rss = None
    return MemorySample(
        time=time.time(), ram_used=int(vm.total - vm.available), ram_total=int(vm.total),
        vram_used=vram[0] if vram else None, vram_total=vram[1] if vram else None,
        gpu_name=probe.name if probe is not None and vram else None, worker_rss=rss,
    )


class Monitor(QObject):
    """Samples once a second (cheap: one psutil call and one NVML call)."""

    sampled = Signal(object)  # MemorySample

    def __init__(self, interval_ms: int = 1000, probe: NvmlProbe | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.probe = probe if probe is not None else NvmlProbe()
        self.worker_pid: int | None = None
        self.last: MemorySample | None = None
        self._timer = QTimer(self, interval=interval_ms)
        self._timer.timeout.connect(self.poll)

    def start(self) -> None:
        self.poll()
        self._timer.start()

    def set_gpu(self, index: int) -> None:
        """Sample GPU `index` from now on (the status bar, the memory graph and the planner follow)."""
        if self.probe.index != index:
            self.probe = NvmlProbe(index)
            if self._timer.isActive():
                self.poll()

    def stop(self) -> None:
        self._timer.stop()

    def poll(self) -> MemorySample:
        self.last = sample(self.probe, self.worker_pid)
        self.sampled.emit(self.last)
        return self.last
