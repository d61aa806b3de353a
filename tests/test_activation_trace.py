"""Allocation trace of our own DiT block at the published width, against the planner's figure.

The real StepVideoBlock runs on `meta` tensors (shapes and strides, no data, no allocator), under a
TorchDispatchMode that sees every op's outputs and counts the bytes of each distinct storage while a
tensor refers to it (a weakref finalizer per tensor; views share their base's storage; parameters
are not counted). The peak of that sum is the block's activation peak. SDPA's math path on meta
would allocate the full score matrix, which no real kernel does: a flash-style stand-in allocates
what the flash kernel returns (the output in (B, L, heads, d) layout and its fp32 softmax
statistics) and nothing else. Each trace takes a fraction of a second.
"""

from __future__ import annotations

import weakref

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from stepvideo.memory import planner
from stepvideo.memory.profiles import PROFILES
from stepvideo.models.dit_block import StepVideoBlock

GiB = 1 << 30
SIZES = [(544, 992, 204), (768, 768, 204)]
HIDDEN, HEAD_DIM = planner.DIT_HIDDEN, planner.DIT_HEAD_DIM


class LiveBytes(TorchDispatchMode):
    """Bytes of distinct storages referenced by live tensors made under this mode; peak and, per
    phase (set by `mark`), the peak within that phase."""

    def __init__(self, ignore: set[int]) -> None:
        super().__init__()
        self.ignore = ignore  # storages not counted (parameters)
        self.storages: dict[int, list[int]] = {}  # storage key -> [nbytes, live tensors]
        self.tensors: set[int] = set()
        self.now = self.peak = 0
        self.phase = "inputs"
        self.phase_peaks: dict[str, int] = {}

    def mark(self, phase: str) -> None:
        if phase != self.phase:
            self.phase = phase
            self.phase_peaks.setdefault(phase, self.now)

    def track(self, t: torch.Tensor) -> None:
        if id(t) in self.tensors:  # an in-place op returns its input
            return
        storage = t.untyped_storage()
        key = storage._cdata
        if key in self.ignore:
            return
        entry = self.storages.get(key)
        if entry is None:
            entry = self.storages[key] = [storage.nbytes(), 0]
            self.now += entry[0]
            self.peak = max(self.peak, self.now)
            self.phase_peaks[self.phase] = max(self.phase_peaks.get(self.phase, 0), self.now)
        entry[1] += 1
        self.tensors.add(id(t))
        weakref.finalize(t, self._release, id(t), key)

    def _release(self, tensor_id: int, key: int) -> None:
        self.tensors.discard(tensor_id)
        entry = self.storages[key]
        entry[1] -= 1
        if entry[1] == 0:
            del self.storages[key]
            self.now -= entry[0]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self.track(t)
        return out


def flash_like_sdpa(q, k, v, attn_mask=None, **_):
    """What a flash / memory-efficient SDPA kernel allocates: the output, laid out (B, Lq, heads, dv)
    and returned transposed, and its fp32 log-sum-exp (B, heads, Lq), dropped at once in inference."""
    batch, heads, length, _ = q.shape
    out = q.new_empty(batch, length, heads, v.shape[-1]).transpose(1, 2)
    lse = q.new_empty(batch, heads, length, dtype=torch.float32)
    del lse
    return out


@pytest.fixture
def flash_stand_in(monkeypatch):
    monkeypatch.setattr(F, "scaled_dot_product_attention", flash_like_sdpa)


def trace_block(tokens: int, batch: int, ff_chunk_tokens: int | None) -> LiveBytes:
    """One forward of a full-width bf16 block; caption at its longest (77 CLIP + 320 LLM keys), with
    a key mask when two CFG rows run together (their key counts differ), none for one row."""
    with torch.device("meta"):
        block = StepVideoBlock(HIDDEN, HEAD_DIM).to(torch.bfloat16)
    params = {t.untyped_storage()._cdata for t in block.parameters()}
    mode = LiveBytes(params)
    block.norm1.register_forward_pre_hook(lambda *_: mode.mark("self-attention"))
    block.attn2.register_forward_pre_hook(lambda *_: mode.mark("cross-attention"))
    block.norm2.register_forward_pre_hook(lambda *_: mode.mark("ffn"))
    keys = planner.CAPTION_TOKENS

    def bf16(*shape: int) -> torch.Tensor:
        return torch.empty(*shape, dtype=torch.bfloat16, device="meta")

    with torch.no_grad(), mode:
        x, context = bf16(batch, tokens, HIDDEN), bf16(batch, keys, HIDDEN)
        modulation = bf16(batch, 6 * HIDDEN)
        cos, sin = bf16(tokens, HEAD_DIM), bf16(tokens, HEAD_DIM)
        key_mask = torch.ones(batch, 1, 1, keys, dtype=torch.bool, device="meta") if batch > 1 else None
        out = block(x, context, modulation, cos, sin, key_mask, ff_chunk_tokens)
        assert out.shape == x.shape
        del out
    return mode


def unit(tokens: int, batch: int) -> int:
    return batch * tokens * HIDDEN * 2


# Each profile's batch (resident runs CFG's two rows together, the others one row at a time) and FFN chunk.
CASES = [
    (name, size, 2 if profile.cfg_batch else 1, profile.ff_chunk_tokens)
    for name, profile in PROFILES.items() for size in SIZES
]
CASE_IDS = [f"{name}-{'x'.join(map(str, size))}" for name, size, _, _ in CASES]


@pytest.mark.parametrize("name, size, batch, chunk", CASES, ids=CASE_IDS)
def test_planner_block_activations_cover_the_trace_tightly(flash_stand_in, name, size, batch, chunk):
    tokens = planner.video_tokens(*size)
    traced = trace_block(tokens, batch, chunk).peak
    predicted = planner.dit_block_activation_bytes(tokens, batch, chunk)
    assert traced <= predicted <= 1.10 * traced, (
        f"{name} {size}: traced {traced / GiB:.3f} GiB ({traced / unit(tokens, batch):.3f} units), "
        f"planner {predicted / GiB:.3f} GiB"
    )


def test_ffn_chunking_lowers_the_block_peak(flash_stand_in):
    """The attention half no longer sets a peak above the FFN's: chunking the FFN lowers the block's."""
    tokens = planner.video_tokens(544, 992, 204)
    u = unit(tokens, 1)
    whole = trace_block(tokens, 1, None)
    chunked = trace_block(tokens, 1, 8192)
    assert chunked.peak < 0.75 * whole.peak
    # self-attention: x + qkv + attention output; no full-size fp32 copy of q or k, no modulated input
    assert chunked.phase_peaks["self-attention"] < 5.1 * u
    assert chunked.phase_peaks["cross-attention"] < 4.1 * u
    assert chunked.phase_peaks["ffn"] < 2.1 * u + 5 * 8192 / tokens * u
    # unchunked: x + residual + modulated input + the 4-wide hidden (GELU in place)
    assert whole.phase_peaks["ffn"] < 7.1 * u


def test_tracer_counts_storages_not_views():
    mode = LiveBytes(set())
    with mode:
        a = torch.empty(1000, device="meta")  # 4,000 bytes
        view = a.view(10, 100)
        b = view * 2  # 4,000 more
        del a
        assert mode.now == 8000  # `view` keeps a's storage alive
        del view
        assert mode.now == 4000
        torch.ops.aten.gelu_(b)  # in place: nothing new
        assert mode.now == 4000 and mode.peak == 8000


def test_stand_in_matches_sdpa_output():
    q, k, v = (torch.randn(2, 3, 5, 8) for _ in range(3))
    real = F.scaled_dot_product_attention(q, k, v)
    assert flash_like_sdpa(q, k, v).shape == real.shape
