"""The app's shipped text: the style sheet and the example prompts, found through resource_files.py
(the package data, or $STEPVIDEO_RESOURCES_DIR)."""

from __future__ import annotations

import logging
import random
from functools import lru_cache
from pathlib import Path

from stepvideo_desktop import resource_files as resources

log = logging.getLogger(__name__)

# The example chips, by file: English, Chinese, and a few of the official eval prompts (Chinese).
EXAMPLE_FILES = ("examples_en.txt", "examples_zh.txt", "step-video-t2v-eval.txt")


def has_cjk(text: str) -> bool:
    """Any CJK ideograph, kana, hangul or full-width punctuation (U+2E80 and up, below the surrogates)."""
    return any(0x2E80 <= ord(ch) < 0xD800 or 0xF900 <= ord(ch) < 0xFFF0 for ch in text)


def style_sheet() -> str | None:
    path = resources.resource_path("app.qss")
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        log.warning("could not read %s; using the built-in look", path)
        return None


def prompts(name: str) -> tuple[str, ...]:
    """The prompts of one file in resources/prompts/ (one a line); empty when it is not shipped."""
    path = resources.resource_path("prompts", name)
    return _read_lines(path) if path is not None else ()


@lru_cache(maxsize=8)
def _read_lines(path: Path) -> tuple[str, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("could not read the prompts in %s: %s", path, exc)
        return ()
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def example_prompts(count: int = 6, seed: int = 7, cjk: bool = True) -> list[str]:
    """`count` examples spread evenly over EXAMPLE_FILES (English, Chinese, eval), in that order.

    `cjk` False (no font can draw Chinese here) takes English examples only, rather than chips of boxes.

    A file that is missing or short leaves its share to the next ones. The picks are stable (fixed
    seed), so the chips do not reshuffle on every start.
    """
    rng = random.Random(seed)
    picked: list[str] = []
    files = EXAMPLE_FILES if cjk else EXAMPLE_FILES[:1]
    for index, name in enumerate(files):
        lines = [p for p in prompts(name) if p not in picked and (cjk or not has_cjk(p))]
        left_files = len(files) - index
        share = -(-(count - len(picked)) // left_files)  # ceil: the remainder goes to the earlier files
        picked += rng.sample(lines, min(share, len(lines)))
    return picked
