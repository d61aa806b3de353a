"""Prompt → the DiT's text conditioning: Step-LLM and HunyuanCLIP on the batch [positive, negative]."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)


@dataclass
class TextConditioning:
    llm_hidden: torch.Tensor  # (B, 320, 6144) in the DiT's dtype
    llm_mask: torch.Tensor  # (B, 320) 0/1
    clip_hidden: torch.Tensor  # (B, 77, 1024) in the DiT's dtype
    truncated: list[str]  # human-readable notes for prompts that were cut

    def to(self, device: torch.device | str) -> TextConditioning:
        return TextConditioning(
            self.llm_hidden.to(device), self.llm_mask.to(device), self.clip_hidden.to(device), self.truncated
        )


@torch.inference_mode()
def encode_texts(texts: list[str], tokenizers, llm, clip, device, dtype: torch.dtype) -> TextConditioning:
    """Encode each text with both encoders; rows follow `texts` (the official order is [cond, uncond])."""
    llm_batch = tokenizers.llm.encode(texts)
    clip_batch = tokenizers.clip.encode(texts)
    notes = []
    for label, batch, limit in (("Step-LLM", llm_batch, 320), ("CLIP", clip_batch, 77)):
        for i, cut in enumerate(batch.truncated):
            if cut:
                which = "prompt (with its suffix)" if i == 0 else "negative prompt"
                notes.append(f"the {which} is longer than {label}'s {limit} tokens; {label} reads only the first {limit}")
    ids = torch.tensor(llm_batch.ids, dtype=torch.long, device=device)
    mask = torch.tensor(llm_batch.mask, dtype=torch.long, device=device)
    llm_hidden = llm(ids, mask).to(dtype)
    clip_ids = torch.tensor(clip_batch.ids, dtype=torch.long, device=device)
    clip_mask = torch.tensor(clip_batch.mask, dtype=torch.long, device=device)
    clip_hidden = clip(clip_ids, clip_mask).to(dtype)
    return TextConditioning(llm_hidden, mask, clip_hidden, notes)
