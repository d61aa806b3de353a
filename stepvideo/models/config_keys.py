"""Shared parsing of a published config.json into a frozen config dataclass.

Every model config follows the same rule: keys that are dataclass fields are
taken; keys the published files carry but that do not change inference (training or serving
metadata) are type-checked and dropped; anything else is rejected with one line naming what is
allowed, so a config for a different model is never silently half-read. Values are checked by each
config's own validation; the small checks they all share live here too.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import ConfigError

# JSON type names for error messages: the user edits JSON, not Python.
_JSON_NAMES = {bool: "true/false", int: "integer", float: "number", str: "string", type(None): "null"}


def type_ok(value: object, types: type | tuple[type, ...]) -> bool:
    """isinstance, except that a bool passes only where bool is declared (bool is an int subclass)."""
    declared = types if isinstance(types, tuple) else (types,)
    if isinstance(value, bool):
        return bool in declared
    return isinstance(value, declared)


def config_values(
    label: str,
    d: Any,
    cls: type,
    ignored: Mapping[str, type | tuple[type, ...]] | None = None,
) -> dict[str, Any]:
    """The field values of dataclass `cls` found in config dict `d`, JSON lists turned into tuples.

    `ignored` maps keys to accept and drop onto the type(s) their value must have. Raises ConfigError
    (one line, prefixed by `label`) for a non-object, an unknown key or a mistyped ignored key.
    """
    ignored = ignored or {}
    if not isinstance(d, Mapping):
        raise ConfigError(f"{label} config must be a JSON object, got {type(d).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known - set(ignored))
    if unknown:
        noun = "key" if len(unknown) == 1 else "keys"
        raise ConfigError(
            f"{label} config: unknown {noun} {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(sorted(known | set(ignored)))}"
        )
    for key, types in ignored.items():
        if key in d and not type_ok(d[key], types):
            declared = types if isinstance(types, tuple) else (types,)
            expected = " or ".join(_JSON_NAMES.get(t, t.__name__) for t in declared)
            raise ConfigError(f"{label} config: {key}={d[key]!r} has the wrong type; expected {expected}")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in known}


def require_positive_ints(label: str, config: object, names: Iterable[str]) -> None:
    """ConfigError naming the first of `names` whose value on `config` is not a positive integer."""
    for name in names:
        value = getattr(config, name)
        if not type_ok(value, int) or value <= 0:
            raise ConfigError(f"{label} config: {name} must be a positive integer, got {value!r}")


def require_number(
    label: str, config: object, name: str, low: float, high: float = math.inf, *, low_inclusive: bool = False
) -> None:
    """ConfigError unless `config.name` is a number in (low, high), or [low, high) with low_inclusive."""
    value = getattr(config, name)
    if type_ok(value, (int, float)) and (low <= value if low_inclusive else low < value) and value < high:
        return
    if low == 0 and not low_inclusive and high == math.inf:
        wanted = "a positive number"
    else:
        wanted = f"a number in {'[' if low_inclusive else '('}{low:g}, {high:g})"
    raise ConfigError(f"{label} config: {name} must be {wanted}, got {value!r}")
