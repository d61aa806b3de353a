"""Counts a prompt's tokens with the installed model's own tokenizers (Qt-free, torch-free)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from stepvideo.engine import layout
from stepvideo.errors import StepVideoError
from stepvideo.models.tokenizers import ClipTokenizer, StepLLMTokenizer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TokenCounts:
    llm: int  # tokens the encoder sees, specials included, before any cut
    llm_max: int
    clip: int
    clip_max: int

    @property
    def llm_cut(self) -> bool:
        return self.llm > self.llm_max

    @property
    def clip_cut(self) -> bool:
        return self.clip > self.clip_max


class TokenCounter:
    def __init__(self, llm: StepLLMTokenizer, clip: ClipTokenizer) -> None:
        self._llm = llm
        self._clip = clip

    @classmethod
    def for_model_root(cls, root: Path | None) -> TokenCounter | None:
        """None when no model is installed there (or its tokenizer files cannot be read)."""
        if root is None:
            return None
        root = Path(root)
        if layout.missing_files(root, (layout.LLM_TOKENIZER, layout.CLIP_VOCAB)):
            return None
        try:
            return cls(StepLLMTokenizer.from_file(root / layout.LLM_TOKENIZER),
                       ClipTokenizer.from_vocab(root / layout.CLIP_VOCAB))
        except (StepVideoError, OSError, ValueError) as exc:
            log.warning("tokenizers under %s could not be loaded: %s", root, exc)
            return None

    def count(self, text: str) -> TokenCounts:
        # +2: BOS/EOS and [CLS]/[SEP] share the fixed window with the prompt.
        return TokenCounts(
            llm=self._llm.count(text) + 2, llm_max=self._llm.max_length,
            clip=self._clip.count(text) + 2, clip_max=self._clip.max_length,
        )
