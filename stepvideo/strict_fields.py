"""Frozen dataclasses from dicts (JSON, the queue, settings): every key must be a field. Torch-free."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def from_known_fields(cls: type[T], data: dict[str, Any], error: type[Exception], what: str) -> T:
    """`cls(**data)`, or `error` with one line naming the unknown keys and the allowed ones."""
    if not isinstance(data, dict):
        raise error(f"a {what} must be a JSON object, not {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise error(f"unknown {what} field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(known))}")
    return cls(**data)
