"""Streaming offload of transformer blocks, and whole-component turns on the GPU.

`BlockStreamer` keeps N blocks of an nn.ModuleList on the execution device (N−1 fixed, plus the
one being computed) and streams the others from host memory, copying block i+1 on a side CUDA
stream while block i computes. Forward pre-hooks make a block present; post-hooks release it.
At most N+1 blocks are materialised at any time (the +1 is the prefetch in flight).

Blocks move as state dicts of plain tensors: a frozen quanto Linear flattens its QTensor weight into
`weight._data`, `weight._scale` (…) — we copy those ourselves and rebuild the module with
`load_state_dict(assign=True)`, which is quanto's own deserialisation (accelerate's hooks break on
QTensors). Released blocks go back to the meta device, so nothing is left behind on the GPU.

Host sources: `pinned` keeps every streamed block in pinned host memory (fast, costs their size in
RAM); `mmap` (the `low-ram` profile) reads blocks from memory-mapped safetensors into a ring of two
pinned staging buffers, so host RAM holds only the ring. Without CUDA the same code runs with
host→"execution" copies on the CPU (no streams), which is how the tests check it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn

log = logging.getLogger(__name__)

ALIGN = 64  # byte alignment of tensors carved out of a staging buffer


def _on_cuda(device: torch.device) -> bool:
    return device.type == "cuda"


def to_meta(module: nn.Module) -> None:
    """Replace every parameter and buffer with a meta tensor of the same shape (frees the memory)."""
    for sub in module.modules():
        for name, p in list(sub._parameters.items()):
            if p is not None:
                sub._parameters[name] = nn.Parameter(torch.empty(p.shape, dtype=p.dtype, device="meta"),
                                                     requires_grad=False)
        for name, b in list(sub._buffers.items()):
            if b is not None:
                sub._buffers[name] = torch.empty(b.shape, dtype=b.dtype, device="meta")


def block_state(block: nn.Module) -> dict[str, torch.Tensor]:
    """A block's tensors as plain tensors (quanto weights flattened), contiguous and detached."""
    return {k: v.detach().contiguous() for k, v in block.state_dict().items()}


# --- Host stores ---------------------------------------------------------------------------------------


PINNED_SLAB_BYTES = 1 << 30


class HostSlabs:
    """Host copies carved out of large buffers. torch's pinned-memory allocator rounds every request
    up to a power of two (a 0.6 GB int8 DiT block would take 1 GiB), so pinned tensors are packed
    into 1 GiB slabs instead; unpinned copies (CPU runs) are allocated exactly."""

    def __init__(self, pin: bool, slab_bytes: int = PINNED_SLAB_BYTES) -> None:
        self.pin = pin
        self.slab_bytes = slab_bytes
        self.slabs: list[torch.Tensor] = []
        self._offset = 0

    def copy(self, t: torch.Tensor) -> torch.Tensor:
        if not self.pin:
            return t.clone()  # owned: memory-mapped file views are unaligned
        view = self.carve(t.numel() * t.element_size()).view(t.dtype).view(t.shape)
        view.copy_(t)
        return view

    def carve(self, nbytes: int) -> torch.Tensor:
        """`nbytes` of uint8 host memory, 64-byte aligned, from the current slab or a new one."""
        if not self.pin:  # zeroed, so the RAM is really taken now, as pinning does (not on first use)
            self.slabs.append(torch.zeros(nbytes, dtype=torch.uint8))
            return self.slabs[-1]
        if not self.slabs or self._offset + nbytes > self.slabs[-1].numel():
            size = max(self.slab_bytes, 1 << max(nbytes - 1, 0).bit_length())
            self.slabs.append(torch.empty(size, dtype=torch.uint8, pin_memory=True))
            self._offset = 0
        view = self.slabs[-1][self._offset:self._offset + nbytes]
        self._offset += -(-nbytes // ALIGN) * ALIGN
        return view

    @property
    def nbytes(self) -> int:
        return sum(s.numel() for s in self.slabs)


class PinnedStore:
    """Every streamed block's tensors in host memory (pinned when CUDA is the target)."""

    def __init__(self, states: Iterable[tuple[int, dict[str, torch.Tensor]]], pin: bool) -> None:
        slabs = HostSlabs(pin)
        # One block at a time, dropping each source as soon as its copy exists: pinning every block
        # first and freeing afterwards would hold two copies of the model in host RAM at the peak.
        self.states = {}
        for i, source in states:
            self.states[i] = {k: slabs.copy(v) for k, v in source.items()}
            del source
        self.host_bytes = slabs.nbytes if pin else sum(
            v.numel() * v.element_size() for s in self.states.values() for v in s.values())
        self._slabs = slabs

    def fetch(self, index: int) -> dict[str, torch.Tensor]:
        return self.states[index]

    def after_copy(self, index: int, event: torch.cuda.Event | None) -> None:
        pass  # the host copy is kept for the next step


class MmapRingStore:
    """Blocks read on demand from memory-mapped safetensors through `ring` staging slots.

    Each slot holds one buffer per block-relative key (sized for the largest block's tensor of that
    key), carved from pinned slabs of RING_SLAB_BYTES: one pinned buffer per slot would be rounded up
    to a power of two by torch's pinned allocator (a 0.6 GB int8 DiT block would take 1 GiB)."""

    def __init__(self, sources: dict[int, dict[str, tuple[Path, str]]], pin: bool, ring: int = 2,
                 dtype: torch.dtype | None = None) -> None:
        self._files: dict[Path, object] = {}
        self.sources = sources
        self.layout: dict[int, list[tuple[str, Path, str]]] = {}  # key, file, file key
        self.shapes: dict[str, tuple[tuple[int, ...], torch.dtype]] = {}
        sizes: dict[str, int] = {}  # block-relative key → the most bytes any block needs for it
        for index, keys in sources.items():
            entries = []
            for key, (path, full) in keys.items():
                t = self._handle(path).get_slice(full)
                stored = _SAFE_DTYPES[t.get_dtype()]
                loaded = dtype if dtype is not None and stored in _FLOATS else stored
                shape = tuple(t.get_shape())
                self.shapes[f"{index}:{key}"] = (shape, loaded)
                entries.append((key, path, full))
                sizes[key] = max(sizes.get(key, 0), _numel(shape) * torch.empty((), dtype=loaded).element_size())
            self.layout[index] = entries
        slabs = HostSlabs(pin, RING_SLAB_BYTES)
        self.buffers = [{key: slabs.carve(n) for key, n in sizes.items()} for _ in range(ring)]
        self.events: list[torch.cuda.Event | None] = [None] * ring
        self.host_bytes = slabs.nbytes if pin else ring * sum(sizes.values())
        self._slabs = slabs
        self._next = 0
        self._slot_of: dict[int, int] = {}
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stepvideo-mmap-reader")
        self._pending: dict[int, Future] = {}

    def _handle(self, path: Path):
        if path not in self._files:
            self._files[path] = safe_open(str(path), framework="pt", device="cpu").__enter__()
        return self._files[path]

    def prepare(self, index: int) -> None:
        """Start reading block `index` from the file into a free slot in the background, so the
        disk/page-cache copy overlaps the GPU's work instead of stalling it before each block."""
        if index in self._pending or index not in self.layout:
            return
        self._pending[index] = self._reader.submit(self._fill, index, self._take_slot())

    def fetch(self, index: int) -> dict[str, torch.Tensor]:
        future = self._pending.pop(index, None)
        if future is None:
            self._drain()  # an unexpected order: prepared slots may be reused, so drop them first
            future = self._reader.submit(self._fill, index, self._take_slot())
        out, slot = future.result()
        self._slot_of[index] = slot
        return out

    def _take_slot(self) -> int:
        slot = self._next
        self._next = (self._next + 1) % len(self.buffers)
        return slot

    def _drain(self) -> None:
        """Wait for read-aheads nobody will use. A failed one is only logged: its block will be read
        again when needed, and an error here must not hide the one a caller is already handling."""
        for index, future in self._pending.items():
            if future.exception() is not None:
                log.warning("read-ahead of block %d failed: %s", index, future.exception())
        self._pending.clear()

    def _fill(self, index: int, slot: int) -> tuple[dict[str, torch.Tensor], int]:
        """Runs on the reader thread (one at a time, so the file handles are never shared)."""
        event = self.events[slot]
        if event is not None:
            event.synchronize()  # the previous H2D copy out of this buffer is done
            self.events[slot] = None
        buffers = self.buffers[slot]
        out = {}
        for key, path, full in self.layout[index]:
            shape, dtype = self.shapes[f"{index}:{key}"]
            nbytes = _numel(shape) * torch.empty((), dtype=dtype).element_size()
            view = buffers[key][:nbytes].view(dtype).view(shape)
            view.copy_(self._handle(path).get_tensor(full))  # casts bf16 → the compute dtype if they differ
            out[key] = view
        return out, slot

    def after_copy(self, index: int, event: torch.cuda.Event | None) -> None:
        self.events[self._slot_of.pop(index)] = event

    def close(self) -> None:
        try:
            self._drain()
            self._reader.shutdown(wait=True)
        finally:
            for handle in self._files.values():
                handle.__exit__(None, None, None)
            self._files.clear()


_SAFE_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool, "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
}


_FLOATS = (torch.bfloat16, torch.float16, torch.float32)
RING_SLAB_BYTES = 256 << 20  # a power of two (no rounding) larger than any one tensor of a block


def upcast(t: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """`t` in the compute dtype if it is a bf16/fp16/fp32 tensor; quantized payloads unchanged."""
    if dtype is None or t.dtype == dtype or t.dtype not in _FLOATS:
        return t
    return t.to(dtype)


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


# --- The streamer --------------------------------------------------------------------------------------


class BlockStreamer:
    """Stream the blocks of `blocks` onto `device`, N at a time plus one in flight.

    Build it with `from_modules` (blocks already materialised on the host) or `from_files`
    (blocks built on meta, weights in safetensors: the quantized cache or the hub shards).
    """

    def __init__(
        self,
        blocks: nn.ModuleList,
        device: torch.device | str,
        resident_blocks: int,
        store: PinnedStore | MmapRingStore,
        fixed_states: Iterable[tuple[int, dict[str, torch.Tensor]]] | dict[int, dict[str, torch.Tensor]],
    ) -> None:
        if resident_blocks < 1:
            raise ValueError("resident_blocks must be ≥ 1 (it counts the block being computed)")
        self.blocks = blocks
        self.device = torch.device(device)
        self.n_fixed = min(resident_blocks - 1, len(blocks))
        self.streamed = list(range(self.n_fixed, len(blocks)))
        self.store = store
        self.cuda = _on_cuda(self.device)
        self.copy_stream = torch.cuda.Stream(self.device) if self.cuda else None
        self.ready: dict[int, torch.cuda.Event | None] = {}  # loaded (or in flight) streamed blocks
        self.done: dict[int, torch.cuda.Event | None] = {}  # released, compute may still read them
        self.materialised: set[int] = set()
        self.peak_materialised = 0
        self.loads = 0
        self._handles: list = []
        fixed = fixed_states.items() if isinstance(fixed_states, dict) else fixed_states
        for i, state in fixed:  # one at a time: its host copy is dropped before the next is read
            self._load(i, state, sync=True)
            self.materialised.add(i)
            del state
        self._note_peak()

    # Construction ---------------------------------------------------------------------------------------

    @classmethod
    def from_modules(cls, blocks: nn.ModuleList, device: torch.device | str, resident_blocks: int) -> BlockStreamer:
        """Blocks are materialised on the host now: take their state, put them on meta."""
        device = torch.device(device)
        n_fixed = min(resident_blocks - 1, len(blocks))
        states = {i: block_state(b) for i, b in enumerate(blocks)}
        for b in blocks:
            to_meta(b)
        fixed = {i: states.pop(i) for i in range(n_fixed)}
        streamed = ((i, states.pop(i)) for i in list(states))
        return cls(blocks, device, resident_blocks, PinnedStore(streamed, pin=_on_cuda(device)), fixed)

    @classmethod
    def from_files(
        cls,
        blocks: nn.ModuleList,
        key_files: dict[str, Path],
        prefix: str,
        device: torch.device | str,
        resident_blocks: int,
        mode: str = "pinned",
        dtype: torch.dtype | None = None,
    ) -> BlockStreamer:
        """Blocks built on meta (quanto modules already swapped in); their keys `prefix<i>.<key>` are
        read from `key_files`. mode 'pinned': read every streamed block into pinned memory now;
        'mmap': read each block from the file on demand through a ring of two staging buffers.
        Float tensors are cast to `dtype` as they are read. One block at a time passes through
        pageable RAM, never the whole component."""
        device = torch.device(device)
        per_block: dict[int, dict[str, tuple[Path, str]]] = {i: {} for i in range(len(blocks))}
        for key, path in key_files.items():
            if key.startswith(prefix):
                index, _, rest = key[len(prefix):].partition(".")
                if index.isdigit() and int(index) in per_block:
                    per_block[int(index)][rest] = (Path(path), key)
        n_fixed = min(resident_blocks - 1, len(blocks))
        if mode not in ("pinned", "mmap"):
            raise ValueError(f"unknown offload mode {mode!r}; allowed: pinned, mmap")
        fixed_keys = {i: per_block.pop(i) for i in range(n_fixed)}
        fixed = ((i, _read(k, dtype)) for i, k in fixed_keys.items())  # read as each is loaded
        if mode == "pinned":
            store: PinnedStore | MmapRingStore = PinnedStore(
                ((i, _read(k, dtype)) for i, k in per_block.items()), pin=_on_cuda(device))
        else:
            store = MmapRingStore(per_block, pin=_on_cuda(device), dtype=dtype)
        return cls(blocks, device, resident_blocks, store, fixed)

    # Hooks --------------------------------------------------------------------------------------------------

    def attach(self) -> BlockStreamer:
        for i in self.streamed:
            self._handles.append(self.blocks[i].register_forward_pre_hook(self._make_pre(i)))
            self._handles.append(self.blocks[i].register_forward_hook(self._make_post(i)))
        return self

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        for i in list(self.ready):
            self._release(i)
        if self.cuda:
            torch.cuda.current_stream(self.device).synchronize()
        self.done.clear()

    def _make_pre(self, i: int):
        def pre(_module, _args):
            if i not in self.ready:
                self._fetch(i)  # first block of a forward, or after a detach: no prefetch happened
            event = self.ready[i]
            if event is not None:
                torch.cuda.current_stream(self.device).wait_event(event)
            nxt = self._next_streamed(i)
            if nxt is not None and nxt not in self.ready:
                self._wait_released(keep_latest=True)
                self._fetch(nxt)
                prepare = getattr(self.store, "prepare", None)
                if prepare is not None:  # low-ram: start reading the block after next from the file
                    prepare(self._next_streamed(nxt))
        return pre

    def _make_post(self, i: int):
        def post(_module, _args, _output):
            self._release(i)
        return post

    # Moving blocks -----------------------------------------------------------------------------------------

    def _next_streamed(self, i: int) -> int | None:
        if len(self.streamed) < 2:
            return None
        pos = self.streamed.index(i)
        return self.streamed[(pos + 1) % len(self.streamed)]  # wraps to the next forward's first

    def _fetch(self, i: int) -> None:
        host = self.store.fetch(i)
        self.ready[i] = self._load(i, host, sync=False)
        self.store.after_copy(i, self.ready[i])
        self.materialised.add(i)
        self._note_peak()

    def _load(self, i: int, host: dict[str, torch.Tensor], sync: bool) -> torch.cuda.Event | None:
        """Copy a block's tensors to the device and rebuild the module around them."""
        self.loads += 1
        if not self.cuda:
            state = {k: v.to(self.device, copy=True) for k, v in host.items()}
            self.blocks[i].load_state_dict(state, strict=True, assign=True)
            return None
        with torch.cuda.stream(self.copy_stream):
            state = {k: v.to(self.device, non_blocking=True) for k, v in host.items()}
            # quanto rebuilds QTensors here (and repacks for its kernels) on the copy stream.
            self.blocks[i].load_state_dict(state, strict=True, assign=True)
            event = torch.cuda.Event()
            event.record(self.copy_stream)
        if sync:
            event.synchronize()
        return event

    def _release(self, i: int) -> None:
        if i not in self.ready:
            return
        event = None
        if self.cuda:
            compute = torch.cuda.current_stream(self.device)
            # Allocated on the copy stream, used on the compute stream: tell the allocator.
            for t in _device_tensors(self.blocks[i]):
                t.record_stream(compute)
        event = self._compute_done_event()
        to_meta(self.blocks[i])
        del self.ready[i]
        self.done[i] = event
        self.materialised.discard(i)

    def _compute_done_event(self) -> torch.cuda.Event | None:
        """An event on the compute stream marking where a released block's last kernel is."""
        if not self.cuda:
            return None
        event = torch.cuda.Event()
        event.record(torch.cuda.current_stream(self.device))
        return event

    def _wait_released(self, keep_latest: bool = False) -> None:
        """Before allocating the next prefetch, make sure released blocks' memory is really free, so
        the allocator reuses it instead of growing without bound. `keep_latest` leaves the block
        released last alone: the GPU is usually still computing it, and waiting for it would leave
        the GPU idle while Python loads the next block (its kernels are not queued yet). Waiting
        two back costs one more block of VRAM (see `max_device_blocks`)."""
        pending = list(self.done.items())
        if keep_latest:
            pending = pending[:-1]
        for i, event in pending:
            if event is not None:
                event.synchronize()
            del self.done[i]

    def _note_peak(self) -> None:
        self.peak_materialised = max(self.peak_materialised, len(self.materialised))

    @property
    def max_materialised(self) -> int:
        """The bound this streamer promises: N resident + 1 in flight."""
        return min(len(self.blocks), self.n_fixed + 2)

    @property
    def max_device_blocks(self) -> int:
        """Blocks' memory on the device at once: the materialised ones plus the one released last,
        whose memory the GPU may still be reading (the planner counts this)."""
        return min(len(self.blocks), self.n_fixed + 3)


def _read(keys: dict[str, tuple[Path, str]], dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """Block-relative key → tensor, read from (file, full key) pairs, floats cast to `dtype`."""
    out: dict[str, torch.Tensor] = {}
    by_file: dict[Path, list[tuple[str, str]]] = {}
    for rel, (path, full) in keys.items():
        by_file.setdefault(path, []).append((rel, full))
    for path, names in by_file.items():
        with safe_open(str(path), framework="pt", device="cpu") as f:
            for rel, full in names:
                out[rel] = upcast(f.get_tensor(full), dtype)
    return out


def tensor_bytes(module: nn.Module) -> int:
    """Bytes a module really holds, counting quanto QTensors by their inner tensors. (`state_dict()`
    would unpack Marlin/TinyGemm weights into a second full-size copy on the GPU just to count them.)"""
    return sum(t.numel() * t.element_size() for t in _device_tensors(module))


def _device_tensors(module: nn.Module) -> Iterator[torch.Tensor]:
    """Every plain tensor a module holds, looking inside quanto QTensors."""
    for t in list(module.parameters()) + list(module.buffers()):
        yield from _leaves(t)


def _leaves(t: torch.Tensor) -> Iterator[torch.Tensor]:
    if hasattr(t, "__tensor_flatten__") and type(t) not in (torch.Tensor, nn.Parameter):
        names, _ = t.__tensor_flatten__()
        for n in names:
            yield from _leaves(getattr(t, n))
    else:
        yield t


# --- Whole components ----------------------------------------------------------------------------------


def move(module: nn.Module, device: torch.device | str, non_blocking: bool = False) -> nn.Module:
    """`module.to(device)` that works for frozen quanto modules: torch 2.13's `Module.to` swaps
    tensor subclasses in place and fails on QTensor weights ("Couldn't swap QLinear.weight"), so
    re-wrap each moved tensor instead (a QTensor's `.to()` moves its `_data`/`_scale`/… itself)."""
    for sub in module.modules():
        for name, p in list(sub._parameters.items()):
            if p is not None:
                sub._parameters[name] = nn.Parameter(p.detach().to(device, non_blocking=non_blocking),
                                                     requires_grad=False)
        for name, b in list(sub._buffers.items()):
            if b is not None:
                sub._buffers[name] = b.to(device, non_blocking=non_blocking)
    return module


@contextlib.contextmanager
def on_device(module: nn.Module, device: torch.device | str, after: str | None = "cpu") -> Iterator[nn.Module]:
    """Give a whole component its turn on the GPU: move it there, yield, then move it back to the
    host (`after="cpu"`) or drop its weights (`after=None`: back to meta, to be reloaded from disk).
    Quanto QTensors move through their own `.to()` (see `move`), unlike accelerate's hooks."""
    move(module, device)
    try:
        yield module
    finally:
        if after is None:
            to_meta(module)
        else:
            move(module, after)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
