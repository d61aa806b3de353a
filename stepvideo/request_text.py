"""Checks on the text of a request, made once at the request boundary (`api.validate`). Torch-free.

Text arrives from argv, files, the UI and the queue database. Three things must be refused before
any work starts, because each fails much later otherwise: a lone surrogate (argv bytes that are not
UTF-8, which Python keeps as U+DC80–U+DCFF and which no encoder, tokenizer or SQLite accepts), a NUL
byte (C strings and ffmpeg's argument list end there), and a prompt so long that writing it into the
video's metadata overflows the argument list. What the text *says* is never changed here: bidi
controls and the like are the model's input; only what is shown is neutralised (display_text.py).
"""

from __future__ import annotations

from pathlib import Path

from .errors import InvalidRequest

# The Step LLM reads 320 tokens and CLIP 77; 4,000 characters is far past both in any script, so the
# cap never cuts what the model reads. It bounds what goes into the mp4 metadata and the queue.
MAX_PROMPT_CHARS = 4000
MAX_PATH_CHARS = 4096  # Linux PATH_MAX


def _first_surrogate(text: str) -> int | None:
    for i, ch in enumerate(text):
        if "\ud800" <= ch <= "\udfff":
            return i
    return None


def check_text(name: str, text: str, max_chars: int) -> None:
    """Raise InvalidRequest (one line) when `text` cannot be carried through to the model and the file."""
    at = _first_surrogate(text)
    if at is not None:
        raise InvalidRequest(
            f"the {name} is not valid UTF-8 text (an undecodable byte at character {at + 1}); "
            "write it in UTF-8 (check the terminal's locale, or use a UTF-8 file)"
        )
    if "\x00" in text:
        raise InvalidRequest(f"the {name} contains a NUL byte (character {text.index(chr(0)) + 1}); remove it")
    if len(text) > max_chars:
        raise InvalidRequest(
            f"the {name} is {len(text):,} characters long; at most {max_chars:,} are allowed "
            f"(the text encoders read far fewer)"
        )


def read_utf8_file(path: Path, label: str) -> str:
    """A whole UTF-8 text file that a user named (a prompt list, a batch file), with a byte-order mark
    dropped (spreadsheets write one); one line naming `label` and the path when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InvalidRequest(f"{label} {path} does not exist") from None
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"{label} {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise InvalidRequest(f"cannot read {label} {path}: {exc.strerror}") from None
