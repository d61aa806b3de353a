"""Components kept between jobs, and whole components taking turns on the GPU.

A worker passes one EngineSession to every generate() call, so a queue of jobs on the same model and
profile loads each component from disk once. Between stages a component is parked in host RAM (or
dropped, when the session does not keep models), so the GPU only ever holds one component at a time.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from typing import Any

import torch

log = logging.getLogger(__name__)


def default_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


class EngineSession:
    def __init__(self, device: torch.device | str | None = None, keep_loaded: bool = True):
        self.device = torch.device(device) if device is not None else default_device()
        self.keep_loaded = keep_loaded
        self._parked: dict[tuple, Any] = {}

    def acquire(self, key: tuple, loader: Callable[[], Any]) -> Any:
        """The component for `key`, loaded with `loader()` if not parked, on the execution device."""
        component = self._parked.pop(key, None)
        if component is None:
            log.info("loading %s", key[0])
            component = loader()
        return _to_device(component, self.device)

    def release(self, key: tuple, component: Any) -> None:
        """Done with a component for now: park it in host RAM, or let it go."""
        if self.keep_loaded:
            self._parked[key] = _to_device(component, torch.device("cpu"))
        del component
        free_accelerator_memory()

    def matches(self, key: tuple) -> bool:
        return key in self._parked

    def drop_all(self) -> None:
        self._parked.clear()
        free_accelerator_memory()


def _to_device(component: Any, device: torch.device) -> Any:
    if isinstance(component, torch.nn.Module):
        current = next(iter(component.parameters()), None)
        if current is not None and current.device != device:
            component.to(device)
    return component


def free_accelerator_memory() -> None:
    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
