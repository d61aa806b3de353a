"""The SDPA kernels the DiT runs with on a GPU, as memory/attention_support.py orders them.

Restricting SDPA to fused kernels turns a silent fall-back to the math path (hundreds of GB at
video lengths) into an immediate error. CPUs keep torch's own choice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from stepvideo.memory.attention_support import attention_backends, cudnn_attention_enabled

_BACKENDS = {
    "cudnn": "CUDNN_ATTENTION",
    "flash": "FLASH_ATTENTION",
    "efficient": "EFFICIENT_ATTENTION",
}


@contextlib.contextmanager
def dit_attention(device: torch.device) -> Iterator[tuple[str, ...]]:
    """Yield the backend names in force (empty on the CPU, where torch chooses)."""
    if device.type != "cuda":
        yield ()
        return
    from torch.nn.attention import SDPBackend, sdpa_kernel

    names = attention_backends(torch.cuda.get_device_capability(device), cudnn_attention_enabled())
    with sdpa_kernel([getattr(SDPBackend, _BACKENDS[n]) for n in names], set_priority=True):
        yield names
