"""Components kept between jobs, and whole components taking turns on the GPU.

A worker passes one EngineSession to every generate() call, so a queue of jobs on the same model and
profile loads each component from disk once. Between stages a whole component is parked in host RAM
(when the session keeps models and RAM allows) or dropped, so the GPU holds one component at a time.
Streamed components are never parked: their blocks already live in host RAM or in the files.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from typing import Any

import psutil
import torch

from .memory.offload import move
from .memory.placement import Placed

log = logging.getLogger(__name__)
PARK_HEADROOM = 4 << 30  # leave this much RAM free after parking a component


def default_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def module_bytes(module: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in module.state_dict().values())


class EngineSession:
    def __init__(self, device: torch.device | str | None = None, keep_loaded: bool = True):
        self.device = torch.device(device) if device is not None else default_device()
        self.keep_loaded = keep_loaded
        self._parked: dict[tuple, Any] = {}

    def acquire(self, key: tuple, loader: Callable[[], Any]) -> Any:
        """The component for `key` (a module or a Placed), loaded with `loader()` unless parked,
        on the execution device."""
        component = self._parked.pop(key, None)
        if component is None:
            log.info("loading %s", key[0])
            return loader()
        module = component.module if isinstance(component, Placed) else component
        move(module, self.device)
        return component

    def release(self, key: tuple, component: Any) -> None:
        """Done with a component for now: park it in host RAM if allowed and affordable, else drop it."""
        streamed = isinstance(component, Placed) and component.streamer is not None
        module = component.module if isinstance(component, Placed) else component
        if self.keep_loaded and not streamed:
            if psutil.virtual_memory().available - module_bytes(module) > PARK_HEADROOM:
                move(module, "cpu")
                self._parked[key] = component
            else:
                log.info("not keeping %s loaded: too little free RAM", key[0])
        if isinstance(component, Placed) and key not in self._parked:
            component.close()
        del component, module
        free_accelerator_memory()

    def drop_all(self) -> None:
        self._parked.clear()
        free_accelerator_memory()


def free_accelerator_memory() -> None:
    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
