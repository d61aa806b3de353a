"""Text as it is safe to show: what a prompt or a path looks like on a screen or a terminal. Torch-free.

A prompt is shown in the queue, on job cards, in `stepvideo queue list`. Bidi controls (right-to-left
overrides, embeddings, isolates) would reorder the text around it ("Trojan Source"), terminal escape
sequences would drive the terminal, and lone surrogates cannot be encoded at all. `for_display` makes
such text harmless for display only: each bidi control is shown as a visible `[U+202E]` (so a person
sees that the prompt holds one, and "cat" never reads "tac"), other controls and lone surrogates as
U+FFFD. The stored request, and what the model reads, keep every character (request_text.py checks
those). The CLI and the desktop both show prompts through this one function.
"""

from __future__ import annotations

import unicodedata

# U+202A–U+202E embeddings and overrides, U+2066–U+2069 isolates, the LRM/RLM/ALM marks.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
REPLACEMENT = "\ufffd"


def for_display(text: str, *, one_line: bool = False) -> str:
    """`text` with bidi controls shown as `[U+XXXX]`, other control characters (escape sequences, C1)
    and lone surrogates as U+FFFD; newlines and tabs kept, or turned into spaces with `one_line`."""
    out = []
    for ch in str(text).replace("\r\n", "\n").replace("\r", "\n"):
        if ch in BIDI_CONTROLS:
            out.append(f"[U+{ord(ch):04X}]")
            continue
        if ch in "\n\t":
            out.append(" " if one_line else ch)
        elif "\ud800" <= ch <= "\udfff" or unicodedata.category(ch) == "Cc":
            out.append(REPLACEMENT)
        else:
            out.append(ch)
    return "".join(out)
