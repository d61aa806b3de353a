"""Prompt → the DiT's text conditioning: Step-LLM and HunyuanCLIP on the batch [positive, negative]."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from stepvideo.api import GenerationRequest

log = logging.getLogger(__name__)


@dataclass
class TextConditioning:
    llm_hidden: torch.Tensor  # (B, 320, 6144) in the DiT's dtype
    llm_mask: torch.Tensor  # (B, 320) 0/1
    clip_hidden: torch.Tensor  # (B, 77, 1024) in the DiT's dtype
    truncated: list[str]  # human-readable notes about text an encoder could not read whole

    def to(self, device: torch.device | str) -> TextConditioning:
        return TextConditioning(
            self.llm_hidden.to(device), self.llm_mask.to(device), self.clip_hidden.to(device), self.truncated
        )


def truncation_notes(request: GenerationRequest, tokenizers, cut: dict[str, list[bool]]) -> list[str]:
    """Say what was cut: the user's own words (worth a warning) or only the appended quality suffix
    (common with CLIP's 77 tokens, and what the official pipeline does too)."""
    notes = []
    for label, tokenizer in (("Step-LLM", tokenizers.llm), ("CLIP", tokenizers.clip)):
        limit = tokenizer.max_content_tokens
        if cut[label][0]:
            if tokenizer.count(request.prompt) > limit:
                notes.append(f"your prompt is longer than {label}'s {limit} tokens; {label} reads only the first {limit}")
            else:
                notes.append(f"{label} reads your whole prompt but only part of the quality suffix ({limit} tokens)")
        if len(cut[label]) > 1 and cut[label][1]:
            notes.append(f"the negative prompt is longer than {label}'s {limit} tokens and was cut")
    return notes


@torch.inference_mode()
def encode_texts(request: GenerationRequest, tokenizers, llm, clip, device, dtype: torch.dtype) -> TextConditioning:
    """Encode [prompt + suffix, negative] with both encoders (the official row order is [cond, uncond])."""
    texts = [request.full_prompt, request.effective_negative]
    llm_batch = tokenizers.llm.encode(texts)
    clip_batch = tokenizers.clip.encode(texts)
    notes = truncation_notes(request, tokenizers, {"Step-LLM": llm_batch.truncated, "CLIP": clip_batch.truncated})
    ids = torch.tensor(llm_batch.ids, dtype=torch.long, device=device)
    mask = torch.tensor(llm_batch.mask, dtype=torch.long, device=device)
    llm_hidden = llm(ids, mask).to(dtype)
    clip_ids = torch.tensor(clip_batch.ids, dtype=torch.long, device=device)
    clip_mask = torch.tensor(clip_batch.mask, dtype=torch.long, device=device)
    clip_hidden = clip(clip_ids, clip_mask).to(dtype)
    return TextConditioning(llm_hidden, mask, clip_hidden, notes)
