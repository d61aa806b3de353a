"""The two prompt tokenizers, as fixed-length batches of plain lists (no torch: the UI counts tokens).

- Step-LLM: SentencePiece `step1_chat_tokenizer.model`. Each row is [BOS=1] + ids[:318] + [EOS=2],
  right-padded with PAD=2 to 320; the mask is 1 on BOS..EOS. The ids 1/2 are fixed by the official
  wrapper (`Wrapped_StepChatTokenizer`), not read from the model file, so they are fixed here too.
- HunyuanCLIP: BERT WordPiece from `vocab.txt` (lower-cased, accents stripped, every CJK character its
  own word, as HF `BertTokenizer(do_lower_case=True)`); [CLS] + pieces[:75] + [SEP], padded with
  [PAD] to 77, mask 1 on the real tokens.

A prompt that does not fit is cut, never rejected: `TokenBatch.truncated` says which rows were cut,
so the pipeline can tell the user.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidRequest, WeightsMismatch, WeightsNotFound

log = logging.getLogger(__name__)

STEP_LLM_MAX_LENGTH = 320
STEP_LLM_BOS = 1
STEP_LLM_EOS = 2
STEP_LLM_PAD = 2
CLIP_MAX_LENGTH = 77


@dataclass(frozen=True)
class TokenBatch:
    """Fixed-length token rows. `lengths[i]` = real tokens in row i (sum of its mask, specials included)."""

    ids: list[list[int]]
    mask: list[list[int]]
    truncated: list[bool]
    lengths: list[int]


def _check_texts(texts: Sequence[str]) -> list[str]:
    # A bare string would silently become one row per character.
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise InvalidRequest("texts must be a list of strings")
    return list(texts)


def pack_rows(
    contents: list[list[int]], max_length: int, prefix: list[int], suffix: list[int], pad_id: int
) -> TokenBatch:
    """prefix + content (cut to fit) + suffix, right-padded with pad_id to max_length. Pure function."""
    room = max_length - len(prefix) - len(suffix)
    if room < 0:
        raise ValueError(f"max_length {max_length} leaves no room for the special tokens")
    ids, mask, truncated, lengths = [], [], [], []
    for content in contents:
        row = prefix + content[:room] + suffix
        n = len(row)
        ids.append(row + [pad_id] * (max_length - n))
        mask.append([1] * n + [0] * (max_length - n))
        truncated.append(len(content) > room)
        lengths.append(n)
    return TokenBatch(ids, mask, truncated, lengths)


def _log_truncation(name: str, batch: TokenBatch, room: int) -> None:
    for i, cut in enumerate(batch.truncated):
        if cut:
            log.debug("%s prompt %d is longer than %d tokens and was cut", name, i, room)


class _FixedLengthTokenizer(abc.ABC):
    """What both tokenizers share: rows of start token + content cut to fit + end token, padded.

    Subclasses set `name`, the special ids and `max_length`, and implement `tokenize`.
    """

    name = ""

    def __init__(self, max_length: int, start_id: int, end_id: int, pad_id: int) -> None:
        self.max_length = max_length
        self.start_id, self.end_id, self.pad_id = start_id, end_id, pad_id

    @property
    def max_content_tokens(self) -> int:
        """Content tokens that fit between the two special tokens (Step-LLM 318, CLIP 75); the rest is cut."""
        return self.max_length - 2

    @abc.abstractmethod
    def tokenize(self, text: str) -> list[int]:
        """The text's content ids, without special tokens and before cutting."""

    def _tokenize_all(self, texts: list[str]) -> list[list[int]]:
        return [self.tokenize(t) for t in texts]

    def count(self, text: str) -> int:
        """Content tokens of `text`, without special tokens and before any cut (compare with max_content_tokens)."""
        return len(self.tokenize(text))

    def encode(self, texts: Sequence[str]) -> TokenBatch:
        texts = _check_texts(texts)
        batch = pack_rows(self._tokenize_all(texts), self.max_length, [self.start_id], [self.end_id], self.pad_id)
        _log_truncation(self.name, batch, self.max_content_tokens)
        return batch


class StepLLMTokenizer(_FixedLengthTokenizer):
    """SentencePiece tokenizer of Step-LLM with the official fixed-length layout."""

    name = "Step-LLM"

    def __init__(self, processor, max_length: int = STEP_LLM_MAX_LENGTH) -> None:
        super().__init__(max_length, STEP_LLM_BOS, STEP_LLM_EOS, STEP_LLM_PAD)
        self._sp = processor

    @classmethod
    def from_file(cls, path: str | Path, max_length: int = STEP_LLM_MAX_LENGTH) -> StepLLMTokenizer:
        import sentencepiece  # imported late: only needed once a tokenizer is actually loaded

        path = Path(path)
        if not path.is_file():
            raise WeightsNotFound(f"missing Step-LLM tokenizer: {path}")
        processor = sentencepiece.SentencePieceProcessor()
        try:
            processor.Load(str(path))
        except (OSError, RuntimeError) as exc:
            raise WeightsMismatch(f"{path} is not a readable SentencePiece model ({exc}); re-download it") from None
        return cls(processor, max_length)

    @property
    def vocab_size(self) -> int:
        return self._sp.get_piece_size()

    def tokenize(self, text: str) -> list[int]:
        return list(self._sp.encode_as_ids(text))


class ClipTokenizer(_FixedLengthTokenizer):
    """BERT WordPiece tokenizer of HunyuanCLIP (equivalent to HF BertTokenizer, do_lower_case=True)."""

    name = "CLIP"

    def __init__(self, wordpiece, max_length: int = CLIP_MAX_LENGTH) -> None:
        self._tok = wordpiece
        super().__init__(max_length, self._special_id("[CLS]"), self._special_id("[SEP]"), self._special_id("[PAD]"))

    def _special_id(self, token: str) -> int:
        token_id = self._tok.token_to_id(token)
        if token_id is None:
            raise WeightsMismatch(f"the CLIP vocab.txt has no {token} token; re-download the tokenizer")
        return token_id

    @classmethod
    def from_vocab(
        cls, path: str | Path, max_length: int = CLIP_MAX_LENGTH, lowercase: bool = True
    ) -> ClipTokenizer:
        from tokenizers import BertWordPieceTokenizer

        path = Path(path)
        if not path.is_file():
            raise WeightsNotFound(f"missing CLIP vocabulary: {path}")
        try:
            tokens = set(path.read_text(encoding="utf-8").splitlines())
        except (OSError, UnicodeDecodeError) as exc:
            raise WeightsMismatch(f"{path} is not a readable vocab.txt ({exc}); re-download the tokenizer") from None
        missing = [t for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]") if t not in tokens]
        if missing:
            raise WeightsMismatch(f"{path} lacks the BERT special tokens {', '.join(missing)}; re-download the tokenizer")
        try:
            wordpiece = BertWordPieceTokenizer(
                str(path),
                lowercase=lowercase,
                handle_chinese_chars=True,
                strip_accents=None,  # None = follow `lowercase`, as HF BertTokenizer does
                clean_text=True,
            )
        except Exception as exc:  # the library raises plain Exception on malformed vocabularies
            raise WeightsMismatch(f"{path} is not a readable WordPiece vocabulary ({exc})") from None
        # We add [CLS]/[SEP] and cut ourselves, so that a cut is reported and matches HF's truncation.
        wordpiece.no_truncation()
        wordpiece.no_padding()
        return cls(wordpiece, max_length)

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size()

    @property
    def cls_id(self) -> int:
        return self.start_id

    @property
    def sep_id(self) -> int:
        return self.end_id

    def tokenize(self, text: str) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=False).ids)

    def _tokenize_all(self, texts: list[str]) -> list[list[int]]:
        # One batched call: the Rust tokenizer parallelises it.
        return [list(e.ids) for e in self._tok.encode_batch(texts, add_special_tokens=False)] if texts else []
