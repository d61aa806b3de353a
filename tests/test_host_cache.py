"""Pinned host memory goes back to the OS on every torch: the public call, else torch 2.11's private one."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from stepvideo.engine import session
from stepvideo.memory.host_cache import empty_host_cache, host_cache_release


def test_the_public_call_is_preferred():
    calls = []
    fake = SimpleNamespace(accelerator=SimpleNamespace(empty_host_cache=lambda: calls.append("public")),
                           _C=SimpleNamespace(_host_emptyCache=lambda: calls.append("private")))
    assert empty_host_cache(fake) == "torch.accelerator.empty_host_cache" and calls == ["public"]


def test_torch_2_11_falls_back_to_the_private_call():
    calls = []
    fake = SimpleNamespace(accelerator=SimpleNamespace(), _C=SimpleNamespace(_host_emptyCache=lambda: calls.append(1)))
    assert empty_host_cache(fake) == "torch._C._host_emptyCache" and calls == [1]


def test_a_torch_with_neither_is_not_an_error():
    assert host_cache_release(SimpleNamespace(accelerator=SimpleNamespace(), _C=SimpleNamespace())) is None
    assert empty_host_cache(SimpleNamespace()) is None


def test_this_torch_has_one():
    assert host_cache_release(torch) is not None


def test_the_session_releases_through_the_fallback(monkeypatch):
    """free_accelerator_memory on a CUDA machine whose torch lacks the public call (monkeypatched)."""
    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append("cuda"))
    monkeypatch.delattr(torch.accelerator, "empty_host_cache", raising=False)
    monkeypatch.setattr(torch._C, "_host_emptyCache", lambda: calls.append("host"), raising=False)
    session.free_accelerator_memory()
    assert calls == ["cuda", "host"]
