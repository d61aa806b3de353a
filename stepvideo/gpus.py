"""Which GPUs this machine has and how a process is pointed at one. Torch-free (NVML only).

GPU numbers are nvidia-smi's (NVML's, in PCI bus order). A process is given its GPU through the
environment before CUDA starts: CUDA_DEVICE_ORDER=PCI_BUS_ID makes CUDA count in the same order as
NVML, and CUDA_VISIBLE_DEVICES=N leaves that one device visible, as cuda:0. So everything that reads
"the GPU" afterwards (torch in the engine, the planner's NVML read of the first visible device, memory
stats) reads the chosen one without knowing about the choice.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass

from .errors import InvalidRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    total_bytes: int

    def label(self) -> str:
        return f"GPU {self.index}: {self.name} ({self.total_bytes / 2**30:.0f} GiB)"


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def list_gpus() -> list[Gpu]:
    """Every NVIDIA GPU NVML sees; [] without nvidia-ml-py, a driver or a device (never raises)."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound / DriverNotLoaded: no usable driver
        log.debug("NVML unavailable: %s", exc)
        return []
    try:
        gpus = []
        for i in range(int(pynvml.nvmlDeviceGetCount())):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            gpus.append(Gpu(i, _text(pynvml.nvmlDeviceGetName(handle)),
                            int(pynvml.nvmlDeviceGetMemoryInfo(handle).total)))
        return gpus
    except Exception as exc:  # a driver that stops answering mid-listing: what we have is not trustworthy
        log.warning("NVML could not list the GPUs: %s", exc)
        return []
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:  # noqa: BLE001 - shutting down a half-working NVML must not hide the listing
            pass


def describe(gpus: list[Gpu]) -> str:
    return ", ".join(f"{g.index} ({g.name})" for g in gpus) if gpus else "none"


def parse_gpu(text: object) -> int:
    """A --gpu value: a whole number ≥ 0 (as nvidia-smi numbers them)."""
    value = str(text).strip()
    if not value.isdigit():
        raise InvalidRequest(f"--gpu {text!r} is not allowed; it must be a GPU number as nvidia-smi shows it "
                             f"(GPUs present: {describe(list_gpus())})")
    return int(value)


def find_gpu(index: int, gpus: list[Gpu] | None = None) -> Gpu:
    """The GPU numbered `index`, or InvalidRequest naming the GPUs that are present."""
    present = list_gpus() if gpus is None else gpus
    for gpu in present:
        if gpu.index == index:
            return gpu
    raise InvalidRequest(f"GPU {index} is not present; GPUs present: {describe(present)}")


def gpu_environment(index: int) -> dict[str, str]:
    """What a process's environment needs to run on GPU `index` (and only there)."""
    return {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": str(int(index))}


def use_gpu(index: int) -> Gpu:
    """Point this process at GPU `index`. Must run before CUDA starts in this process."""
    gpu = find_gpu(index)
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():  # too late: CUDA already chose its devices
        raise InvalidRequest("--gpu must be chosen before CUDA starts; this process already uses CUDA")
    os.environ.update(gpu_environment(index))
    log.info("using %s", gpu.label())
    return gpu
