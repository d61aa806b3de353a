"""Real, small tokenizer files for tiny test models (used by `make-tiny-model`), built offline in well
under a second.

- `build_tiny_sentencepiece`: a genuine SentencePiece BPE model trained on the small Chinese/English
  corpus below, with byte fallback (any text encodes, nothing maps to <unk>), the same id layout as
  Step-LLM's tokenizer (unk=0, BOS=1, EOS=2, no pad piece) and its special pieces.
- `build_tiny_bert_vocab`: a WordPiece `vocab.txt` with [PAD]=0 like HunyuanCLIP's (the five specials
  first), every CJK character of the corpus, ASCII characters, every letter as a
  `##` continuation (so any lower-case English word tokenizes without [UNK]) and common English words.

Neither imports torch.
"""

from __future__ import annotations

import io
import string
from pathlib import Path

# Chinese: short video prompts in the style of the official eval set (written for this file).
_CHINESE = """\
一名足球运动员在球场上带球奔跑，然后射门得分。
一只橘色的猫在窗台上晒太阳，尾巴轻轻摆动。
夕阳下，海浪拍打着金色的沙滩，远处有一艘小船。
城市夜景，车流在高架桥上穿行，霓虹灯闪烁。
一位老人在公园里打太极拳，动作缓慢而流畅。
雪山之巅，云雾缭绕，一只雄鹰在空中盘旋。
厨师在厨房里快速翻炒青菜，锅里冒着热气。
小女孩在草地上放风筝，风筝越飞越高。
雨滴落在湖面上，激起一圈圈涟漪。
宇航员在月球表面行走，身后是蓝色的地球。
一辆红色跑车在山路上疾驰，镜头跟随车辆转弯。
熊猫坐在竹林里吃竹子，神情悠闲。
舞者在舞台中央旋转，裙摆随着音乐飘动。
清晨的森林里，阳光穿过树叶洒在小路上。
一群鱼在珊瑚礁之间游动，海水清澈透明。
画家用毛笔在宣纸上画出一朵盛开的荷花。
火车穿过隧道，驶向远方的田野。
小狗在雪地里奔跑，留下一串脚印。
镜头缓慢推进，展示一杯冒着热气的咖啡。
烟花在夜空中绽放，照亮了整个城市。
超高清、HDR 视频、环境光、杜比全景声、画面稳定、流畅动作、逼真的细节、专业级构图、超现实主义、自然、生动。
画面暗、低分辨率、不良手、文本、缺少手指、多余的手指、裁剪、低质量、颗粒状、签名、水印、用户名、模糊。
"""

# English: the same kind of prompts, for the Latin side of the vocabulary.
_ENGLISH = """\
A golden retriever runs across a green meadow on a sunny afternoon.
An astronaut walks slowly on the surface of the moon, the earth rising behind him.
Waves crash against the rocks while seagulls fly over the ocean at sunset.
A chef chops fresh vegetables in a busy restaurant kitchen, close-up shot.
A red sports car drives fast along a winding mountain road.
Snow falls quietly on a small wooden cabin in the forest at night.
A little girl flies a kite in the park, the camera follows the kite into the sky.
Time-lapse of clouds moving over a city skyline, cinematic lighting, 4K.
A panda eats bamboo in a bamboo forest, slow motion, high detail.
Fireworks explode over the river and light up the night sky.
A dancer spins on stage under a bright spotlight.
The camera pans from left to right across an old library full of books.
A cup of hot coffee steams on a table next to the window on a rainy morning.
Two people walk hand in hand along the beach, wide angle, golden hour.
"""


def tiny_corpus() -> list[str]:
    """The training sentences (Chinese and English), one per line."""
    return [line for line in (_CHINESE + _ENGLISH).splitlines() if line.strip()]


# Special pieces the official Step-LLM tokenizer declares (checked by its wrapper).
_STEP_CONTROL_PIECES = ["<|BOT|>", "<|EOT|>", "<|CALL_START|>", "<|CALL_END|>", "<|THINK_START|>", "<|THINK_END|>"]
_STEP_USER_PIECES = ["<|MASK_1e69f|>", "<|UNMASK_1e69f|>"]


def build_tiny_sentencepiece(path: str | Path, vocab_size: int = 1024) -> int:
    """Train a small SentencePiece BPE model with byte fallback and write it to `path`.

    Returns the number of pieces (≤ vocab_size; a tiny Step-LLM needs padded_vocab_size ≥ that).
    vocab_size must leave room for the 256 byte pieces, the specials and every corpus character.
    """
    import sentencepiece

    characters = {ch for line in tiny_corpus() for ch in line if not ch.isspace()}
    minimum = 256 + 3 + len(_STEP_CONTROL_PIECES) + len(_STEP_USER_PIECES) + len(characters) + 1
    if vocab_size < minimum:
        raise ValueError(f"vocab_size must be at least {minimum} (256 byte pieces, specials, corpus characters)")
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(tiny_corpus()),
        model_writer=model,
        model_type="bpe",
        vocab_size=vocab_size,
        hard_vocab_limit=False,  # the corpus may not support vocab_size merges; take what it gives
        byte_fallback=True,
        character_coverage=1.0,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        control_symbols=_STEP_CONTROL_PIECES,
        user_defined_symbols=_STEP_USER_PIECES,
        num_threads=1,
        minloglevel=2,
    )
    Path(path).write_bytes(model.getvalue())
    return sentencepiece.SentencePieceProcessor(model_proto=model.getvalue()).get_piece_size()


_BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_ENGLISH_SUFFIXES = ["##s", "##es", "##ed", "##ing", "##ly", "##er", "##est", "##tion"]


def _is_cjk(ch: str) -> bool:
    return 0x4E00 <= ord(ch) <= 0x9FFF or 0x3400 <= ord(ch) <= 0x4DBF


def tiny_bert_tokens() -> list[str]:
    """The vocabulary of the tiny WordPiece tokenizer, in id order."""
    corpus = "".join(tiny_corpus())
    cjk = sorted({ch for ch in corpus if _is_cjk(ch)})
    ascii_chars = list(string.digits + string.ascii_lowercase + string.punctuation)
    punctuation_cjk = list("，。、！？：；“”（）《》")
    continuation = [f"##{c}" for c in string.ascii_lowercase + string.digits]
    words = sorted({w.strip(string.punctuation).lower() for w in _ENGLISH.split()} - {""})
    tokens: list[str] = []
    for token in _BERT_SPECIALS + ascii_chars + punctuation_cjk + cjk + continuation + _ENGLISH_SUFFIXES + words:
        if token not in tokens:
            tokens.append(token)
    return tokens


def build_tiny_bert_vocab(path: str | Path) -> int:
    """Write a WordPiece vocab.txt ([PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3, [MASK]=4, ...). Returns its size."""
    tokens = tiny_bert_tokens()
    Path(path).write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return len(tokens)
