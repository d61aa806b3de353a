"""Both prompt tokenizers (fixed layout, truncation, Chinese/English) and the tiny tokenizer builders."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import sentencepiece

from stepvideo.errors import InvalidRequest, WeightsMismatch, WeightsNotFound
from stepvideo.models.tokenizers import ClipTokenizer, StepLLMTokenizer, pack_rows
from stepvideo.testing.tiny_tokenizers import build_tiny_bert_vocab, build_tiny_sentencepiece

ROOT = Path(__file__).resolve().parent.parent
EVAL_PROMPTS = [p for p in (ROOT / "stepvideo_desktop" / "resources" / "prompts" / "step-video-t2v-eval.txt").read_text("utf-8").splitlines() if p]

SAMPLES = [
    "一只橘色的猫在窗台上晒太阳，尾巴轻轻摆动。",
    "A Golden Retriever runs across a green MEADOW on a sunny afternoon.",
    "Café crème: naïve déjà-vu, 4K HDR 60fps!",
    "雪山之巅 with an Eagle 盘旋, 超高清 (cinematic)。",
    "   spaces\tand\nnewlines   ",
    "",
]


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tok")
    start = time.perf_counter()
    n_pieces = build_tiny_sentencepiece(folder / "step1_chat_tokenizer.model")
    n_vocab = build_tiny_bert_vocab(folder / "vocab.txt")
    elapsed = time.perf_counter() - start
    return folder, n_pieces, n_vocab, elapsed


@pytest.fixture(scope="module")
def step(tiny_files):
    return StepLLMTokenizer.from_file(tiny_files[0] / "step1_chat_tokenizer.model")


@pytest.fixture(scope="module")
def clip(tiny_files):
    return ClipTokenizer.from_vocab(tiny_files[0] / "vocab.txt")


def test_tokenizers_module_does_not_import_torch():
    code = "import sys, stepvideo.models.tokenizers; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# --- tiny builders -----------------------------------------------------------------------------------


def test_tiny_builders_are_fast_and_real(tiny_files):
    folder, n_pieces, n_vocab, elapsed = tiny_files
    assert elapsed < 5
    sp = sentencepiece.SentencePieceProcessor(model_file=str(folder / "step1_chat_tokenizer.model"))
    assert sp.get_piece_size() == n_pieces <= 1024
    assert (sp.unk_id(), sp.bos_id(), sp.eos_id()) == (0, 1, 2)
    assert sp.is_control(sp.piece_to_id("<|BOT|>")) and sp.piece_to_id("<0xE2>") > 2  # byte fallback
    assert sp.piece_to_id("猫") != sp.unk_id() and 0 not in sp.encode_as_ids("猫☃")  # trained piece; bytes
    lines = (folder / "vocab.txt").read_text("utf-8").splitlines()
    assert len(lines) == n_vocab and lines[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert "猫" in lines and "##g" in lines


def test_tiny_sentencepiece_refuses_a_too_small_vocabulary(tmp_path):
    with pytest.raises(ValueError, match="vocab_size must be at least"):
        build_tiny_sentencepiece(tmp_path / "x.model", vocab_size=300)


def test_tiny_sentencepiece_is_deterministic(tmp_path, tiny_files):
    build_tiny_sentencepiece(tmp_path / "again.model")
    assert (tmp_path / "again.model").read_bytes() == (tiny_files[0] / "step1_chat_tokenizer.model").read_bytes()


# --- Step-LLM ------------------------------------------------------------------------------------------


def test_step_layout_bos_eos_pad(step, tiny_files):
    sp = sentencepiece.SentencePieceProcessor(model_file=str(tiny_files[0] / "step1_chat_tokenizer.model"))
    batch = step.encode(SAMPLES)
    for text, ids, mask, cut, n in zip(SAMPLES, batch.ids, batch.mask, batch.truncated, batch.lengths):
        content = sp.encode_as_ids(text)
        assert len(ids) == len(mask) == 320
        assert ids[: len(content) + 2] == [1, *content, 2]
        assert ids[len(content) + 2:] == [2] * (320 - len(content) - 2)
        assert mask == [1] * (len(content) + 2) + [0] * (320 - len(content) - 2)
        assert n == len(content) + 2 and not cut
        assert 0 not in content  # byte fallback: nothing becomes <unk>
    assert batch.ids[-1][:3] == [1, 2, 2] and batch.lengths[-1] == 2  # empty prompt


def test_pack_rows_boundary():
    fits = pack_rows([list(range(10, 328))], 320, [1], [2], 2)
    over = pack_rows([list(range(10, 329)), [7]], 320, [1], [2], 2)
    assert fits.truncated == [False] and fits.lengths == [320] and fits.ids[0] == [1, *range(10, 328), 2]
    assert over.truncated == [True, False] and over.lengths == [320, 3]
    assert over.ids[0] == [1, *range(10, 328), 2] and over.mask[0] == [1] * 320
    assert over.ids[1] == [1, 7, 2] + [2] * 317 and over.mask[1] == [1, 1, 1] + [0] * 317


def test_step_truncation_is_reported(step):
    long_prompt = "".join(EVAL_PROMPTS[:6])
    n = step.count(long_prompt)
    assert n > 318
    batch = step.encode([long_prompt, EVAL_PROMPTS[0]])
    assert batch.truncated == [True, False]
    assert batch.lengths[0] == 320 and batch.mask[0] == [1] * 320
    assert batch.ids[0] == [1, *step.tokenize(long_prompt)[:318], 2]
    assert step.max_content_tokens == 318


def test_step_counts_chinese_and_english(step):
    for prompt in EVAL_PROMPTS[:5] + ["A cat walks on the beach at sunset."]:
        assert step.count(prompt) == len(step.tokenize(prompt)) > 0
        assert step.encode([prompt]).lengths == [step.count(prompt) + 2]


def test_step_rejects_a_bare_string_and_bad_files(step, tmp_path):
    with pytest.raises(InvalidRequest, match="list of strings"):
        step.encode("a prompt")
    with pytest.raises(WeightsNotFound):
        StepLLMTokenizer.from_file(tmp_path / "none.model")
    (tmp_path / "bad.model").write_bytes(b"not a model")
    with pytest.raises(WeightsMismatch):
        StepLLMTokenizer.from_file(tmp_path / "bad.model")
    assert step.encode([]).ids == []


# --- CLIP (BERT WordPiece) -----------------------------------------------------------------------------


def hf_tokenizers(vocab: Path):
    from transformers import BertTokenizer, BertTokenizerLegacy

    # Legacy = the pure-Python reference implementation; BertTokenizer = transformers' fast backend.
    return [cls(str(vocab), do_lower_case=True, tokenize_chinese_chars=True) for cls in (BertTokenizerLegacy, BertTokenizer)]


def test_clip_matches_hf_bert_tokenizer(clip, tiny_files):
    long_prompt = "a red car drives along the winding mountain road " * 12
    texts = SAMPLES + EVAL_PROMPTS + [long_prompt]
    ours = clip.encode(texts)
    for hf in hf_tokenizers(tiny_files[0] / "vocab.txt"):
        ref = hf(texts, padding="max_length", max_length=77, truncation=True)
        assert ours.ids == ref["input_ids"], type(hf).__name__
        assert ours.mask == ref["attention_mask"]
    assert all(len(row) == 77 for row in ours.ids)
    assert ours.truncated[-1] and not any(ours.truncated[: len(SAMPLES)])
    assert ours.lengths[-1] == 77 and ours.ids[-1][-1] == clip.sep_id


def test_clip_lowercases_and_splits_chinese_characters(clip):
    assert clip.tokenize("MEADOW Café") == clip.tokenize("meadow cafe")
    pieces = clip.tokenize("雪山之巅")
    assert len(pieces) == 4 and clip.count("雪山之巅") == 4
    batch = clip.encode(["雪山"])
    assert batch.ids[0][:4] == [clip.cls_id, *clip.tokenize("雪山"), clip.sep_id]
    assert clip.pad_id == 0 and batch.ids[0][4:] == [0] * 73 and batch.lengths == [4]


def test_clip_truncation_flag(clip):
    fits = clip.encode(["猫" * 75])
    cut = clip.encode(["猫" * 76])
    assert fits.truncated == [False] and fits.lengths == [77]
    assert cut.truncated == [True] and cut.lengths == [77] and cut.ids[0][-1] == clip.sep_id
    assert clip.count("猫" * 76) == 76 and clip.max_content_tokens == 75


def test_clip_bad_files(tmp_path):
    with pytest.raises(WeightsNotFound):
        ClipTokenizer.from_vocab(tmp_path / "vocab.txt")
    (tmp_path / "vocab.txt").write_text("[UNK]\nhello\n")
    with pytest.raises(WeightsMismatch, match=r"\[(CLS|SEP|PAD)\]"):
        ClipTokenizer.from_vocab(tmp_path / "vocab.txt")
