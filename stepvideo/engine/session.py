"""Components kept between jobs, and whole components taking turns on the GPU.

A worker passes one EngineSession to every generate() call, so a queue of jobs on the same model and
profile loads each component from disk once. When a stage ends (or fails) its component is parked in
host RAM (when the session keeps models and RAM allows) or dropped, so the GPU holds one component at a
time. Both happen in place — parameters move to the CPU or to the meta device — so a reference left
in a caller's frame or a traceback cannot keep VRAM busy. Streamed components are never parked: their
blocks already live in host RAM or in the files.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psutil
import torch

from stepvideo.memory.host_cache import empty_host_cache
from stepvideo.memory.offload import move, tensor_bytes, to_meta
from stepvideo.memory.placement import Placed

log = logging.getLogger(__name__)
PARK_HEADROOM = 4 << 30  # leave this much RAM free after parking a component


def default_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def _module_of(component: Any) -> torch.nn.Module:
    return component.module if isinstance(component, Placed) else component


class EngineSession:
    def __init__(self, device: torch.device | str | None = None, keep_loaded: bool = True):
        self.device = torch.device(device) if device is not None else default_device()
        self.keep_loaded = keep_loaded
        self._parked: dict[tuple, Any] = {}

    @contextmanager
    def using(self, key: tuple, loader: Callable[[], Any]) -> Iterator[Any]:
        """The component for `key` on the execution device for the length of the block; released
        afterwards whether the block finished, failed, or was cancelled or paused."""
        component = self.acquire(key, loader)
        try:
            yield component
        finally:
            self.release(key, component)

    def acquire(self, key: tuple, loader: Callable[[], Any]) -> Any:
        component = self._parked.pop(key, None)
        if component is None:
            # Another variant of the same component (other profile or quantization) would only
            # hold host RAM that this one needs.
            for other in [k for k in self._parked if k[:2] == key[:2]]:
                self._drop(self._parked.pop(other))
            log.info("loading %s", key[0])
            return loader()
        move(_module_of(component), self.device)
        return component

    def release(self, key: tuple, component: Any) -> None:
        streamed = isinstance(component, Placed) and component.streamer is not None
        module = _module_of(component)
        if self.keep_loaded and not streamed and self._affordable(module):
            move(module, "cpu")
            self._parked[key] = component
        else:
            self._drop(component)
        free_accelerator_memory()

    def _affordable(self, module: torch.nn.Module) -> bool:
        if psutil.virtual_memory().available - tensor_bytes(module) > PARK_HEADROOM:
            return True
        log.info("not keeping a component loaded: too little free RAM")
        return False

    def _drop(self, component: Any) -> None:
        if isinstance(component, Placed):
            component.close()
        to_meta(_module_of(component))

    def drop_all(self) -> None:
        for component in self._parked.values():
            self._drop(component)
        self._parked.clear()
        free_accelerator_memory()


def free_accelerator_memory() -> None:
    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
        empty_host_cache(torch)  # pinned host blocks go back to the OS
