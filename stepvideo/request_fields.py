"""A request's fields by the names people write them: batch-file columns (CSV), JSON Lines keys and
`queue edit` options. Torch-free.

The words are the CLI's (`negative`, `size`, `suffix`, …), not the dataclass's, so a CSV header reads
like `stepvideo generate --help`. Request fields without a word of their own here are accepted under
their own name (so a field added to GenerationRequest later, such as an input image, needs no change).
Every value is parsed, never rounded, and a bad one raises InvalidRequest naming the field and what is
allowed; `row_from_request` is the inverse, so export → import gives the same request field for field.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
from collections.abc import Callable
from typing import Any

from .api import GenerationRequest
from .errors import InvalidRequest
from .presets import SIZES

_SIZE = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(f"{name} {value!r} is not allowed; it must be text")
    return value


def whole_number(name: str, value: Any, allowed: str) -> int:
    """An int from text or an int; `name` is how the message names it (`--steps`, `steps`)."""
    if isinstance(value, bool) or isinstance(value, float):  # 50.0 is not silently taken for 50
        raise InvalidRequest(f"{name} {value!r} is not allowed; it must be {allowed}")
    try:
        return int(str(value).strip())
    except ValueError:
        raise InvalidRequest(f"{name} {value!r} is not allowed; it must be {allowed}") from None


def finite_number(name: str, value: Any, allowed: str) -> float:
    """A finite float from text or a number (never a bool, NaN or infinity)."""
    if isinstance(value, bool):
        raise InvalidRequest(f"{name} {value!r} is not allowed; it must be {allowed}")
    try:
        number = float(str(value).strip())
    except ValueError:
        raise InvalidRequest(f"{name} {value!r} is not allowed; it must be {allowed}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise InvalidRequest(f"{name} {value!r} is not allowed; it must be {allowed}")
    return number


def parse_size(value: Any, name: str = "size") -> tuple[int, int]:
    """'544x992' (height x width) or a named size -> (height, width)."""
    text = str(value)
    named = SIZES.get(text.strip().lower())
    if named is not None:
        return named
    match = _SIZE.match(text)
    if match is None:
        raise InvalidRequest(f"{name} {value!r} is not allowed; write HEIGHTxWIDTH in pixels (e.g. 544x992) "
                             f"or one of {', '.join(SIZES)}")
    return int(match.group(1)), int(match.group(2))


def _seed(value: Any) -> int:
    if isinstance(value, str) and value.strip().lower() == "random":
        return secrets.randbelow(2**63)
    return whole_number("seed", value, "a whole number from 0 to 2^63-1, or 'random'")


# word -> (request attribute, parser of one value into {attribute: value})
_Parser = Callable[[Any], dict[str, Any]]
WORDS: dict[str, _Parser] = {
    "prompt": lambda v: {"prompt": _text("prompt", v)},
    "negative": lambda v: {"negative_prompt": _text("negative", v)},
    "suffix": lambda v: {"positive_suffix": _text("suffix", v)},
    "preset": lambda v: {"preset": _text("preset", v).strip()},
    "steps": lambda v: {"steps": whole_number("steps", v, "a whole number from 1 to 200")},
    "cfg": lambda v: {"cfg": finite_number("cfg", v, "a number ≥ 1")},
    "shift": lambda v: {"shift": finite_number("shift", v, "a number > 0")},
    "size": lambda v: dict(zip(("height", "width"), parse_size(v))),
    "frames": lambda v: {"frames": whole_number("frames", v, "a positive multiple of 17 (17, 34, …, 204)")},
    "seed": lambda v: {"seed": _seed(v)},
    "model": lambda v: {"model": _text("model", v).strip()},
    "revision": lambda v: {"revision": _text("revision", v).strip()},
    "transformer_model": lambda v: {"transformer_model": _text("transformer_model", v).strip()},
    "profile": lambda v: {"profile": _text("profile", v).strip()},
    "quantization": lambda v: {"quantization": _text("quantization", v).strip()},
    "output": lambda v: {"output": _text("output", v)},
    "image": lambda v: {"image": _text("image", v)},  # image-to-video: the source image's path
    "motion": lambda v: {"motion": finite_number("motion", v, "a number from 0 to 50")},
}
# Request attributes the words above already cover (under another name or together).
_COVERED = {"negative_prompt", "positive_suffix", "height", "width"}


def field_names() -> tuple[str, ...]:
    """Every word a batch file or `queue edit` accepts, in a stable order."""
    extra = [f.name for f in dataclasses.fields(GenerationRequest) if f.name not in WORDS and f.name not in _COVERED]
    return (*WORDS, *extra)


def request_changes(row: dict[str, Any]) -> dict[str, Any]:
    """{word: value} -> GenerationRequest keyword arguments. None means "not given" (the default stays).
    Raises InvalidRequest for an unknown word or a value that cannot be parsed (one line)."""
    allowed = field_names()
    unknown = [k for k in row if k not in allowed]
    if unknown:
        raise InvalidRequest(f"unknown field {unknown[0]!r}; allowed: {', '.join(allowed)}")
    changes: dict[str, Any] = {}
    for word, value in row.items():
        if value is None:
            continue
        parser = WORDS.get(word)
        changes.update(parser(value) if parser is not None else {word: value})
    return changes


def row_from_request(request: GenerationRequest) -> dict[str, Any]:
    """The request in batch-file words, leaving out what is unset (None): `request_changes` of the
    result, applied to a default request with the same prompt, gives `request` back exactly."""
    data = request.to_dict()
    row: dict[str, Any] = {}
    for word in field_names():
        if word == "size":
            row["size"] = f"{request.height}x{request.width}"
            continue
        attribute = {"negative": "negative_prompt", "suffix": "positive_suffix"}.get(word, word)
        if data.get(attribute) is not None:
            row[word] = data[attribute]
    return row
