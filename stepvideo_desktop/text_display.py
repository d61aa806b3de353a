"""Prompts as the window shows them: bidi controls made visible, never obeyed.

A prompt may hold right-to-left overrides (U+202E) and other direction controls that would make a
label show text in another order than the one stored, so "cat" could read "tac". What the model reads
is never changed; only what is displayed. Each control becomes a visible `[U+202E]`.
(The engine may grow the same helper, stepvideo/display_text.py; until then the app has its own.)
"""

from __future__ import annotations

import re

BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_BIDI = re.compile(f"[{BIDI_CONTROLS}]")


def for_display(text: str) -> str:
    """`text` with every bidi control shown as `[U+XXXX]` (other text unchanged)."""
    return _BIDI.sub(lambda m: f"[U+{ord(m.group()):04X}]", text)
