"""Apply a memory profile to a block-structured component (the DiT, Step-LLM): quantized weights
from the on-disk cache, blocks resident or streamed, and the rest on the execution device.

A `Placed` component is called like the module it wraps and is closed when its stage ends: the
streamer's hooks and host buffers go, and the caller drops the last reference.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..engine.weights import (
    assign_tensors,
    compare_keys,
    expected_tensors,
    file_tensor_shapes,
    iter_safetensors,
    shard_map,
)
from . import quantize
from .offload import BlockStreamer, upcast
from .profiles import Profile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ComponentSpec:
    """How one component is laid out: its blocks' attribute path and its quantization policy."""

    name: str  # cache folder name: "dit", "step_llm"
    blocks_path: str  # "transformer_blocks", "transformer.layers"
    policy: quantize.QuantPolicy
    folder: Path  # the hub folder holding its shards
    index_name: str


class Placed:
    """A component on its execution device, with its blocks streamed when the profile says so."""

    def __init__(self, module: nn.Module, streamer: BlockStreamer | None, qtype: str):
        self.module = module
        self.streamer = streamer
        self.qtype = qtype

    def __call__(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def close(self) -> None:
        streamer, self.streamer = self.streamer, None
        if streamer is None:
            return
        try:
            streamer.detach()
        finally:
            close_store = getattr(streamer.store, "close", None)
            if close_store is not None:
                close_store()


def _blocks(module: nn.Module, path: str) -> nn.ModuleList:
    return module.get_submodule(path)


def place(
    build_meta: Callable[[], nn.Module],
    spec: ComponentSpec,
    settings: Profile,
    device: torch.device,
    dtype: torch.dtype,
    source_id: str | None,
) -> Placed:
    """Load the component as `settings` say and put it on `device`."""
    shards = shard_map(spec.folder, spec.index_name)
    files = sorted(set(shards.values()))
    qtype = settings.quantization
    prefix = spec.blocks_path + "."
    module = build_meta()
    compare_keys(expected_tensors(module), file_tensor_shapes(files), str(spec.folder))

    if qtype != "none":
        directory = quantize.cache_dir(spec.name, source_id or quantize.source_fingerprint(files),
                                       quantize.resolve_qtype(qtype, device.type))
        qtype = directory.name
        if not quantize.is_cached(directory):
            log.info("quantizing %s to %s once; later runs load the cache", spec.name, qtype)
            quantize.build_cache(module, files, qtype, directory, spec.policy, source_id=source_id or "")
        _manifest, qmap, key_files = quantize.read_cache(directory)
        quantize.prepare_quantized_modules(module, qmap)
    else:
        key_files = shards

    # Float tensors are cast to the compute dtype as they load (bf16 files → fp32 on CPUs without
    # native bf16); quantized payloads (int8, float8) are kept as they are.
    cast = lambda _key, t: upcast(t, dtype)  # noqa: E731
    if settings.streams:
        # Nothing whole ever sits in pageable host RAM: the non-block tensors go straight to the
        # device, fixed blocks to the device one at a time, and streamed blocks one at a time into
        # pinned slabs (or, for low-ram, a ring read from the files on demand).
        rest_files = sorted({Path(p) for k, p in key_files.items() if not k.startswith(prefix)})
        assign_tensors(module, iter_safetensors(rest_files, ignore=(prefix + "*",)), transform=cast,
                       device=device, require_complete=False)
        mode = "mmap" if settings.offload == "mmap" else "pinned"
        streamer = BlockStreamer.from_files(_blocks(module, spec.blocks_path), key_files, prefix, device,
                                            settings.resident_blocks, mode=mode, dtype=dtype).attach()
        return Placed(module, streamer, qtype)

    # Whole components load file by file straight onto the device (host RAM stays near one tensor).
    if qtype != "none":
        module = quantize.load_cache(build_meta(), directory, device, dtype=dtype)  # fresh meta model: load_cache swaps the Linears
    else:
        module = assign_tensors(module, iter_safetensors(files), transform=cast, device=device)
    return Placed(module.eval(), None, qtype)

