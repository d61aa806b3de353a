"""Finds the app's resources (style sheet, example prompts) in a checkout or an installed package."""

from __future__ import annotations

import logging
import random
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

_HERE = Path(__file__).resolve().parent
# A checkout keeps resources/ next to desktop/; an installed wheel ships them as desktop/resources.
_CANDIDATES = (_HERE.parent / "resources", _HERE / "resources")

# Shown when no English example file ships with the install; the eval set is Chinese only.
_ENGLISH_EXAMPLES = (
    "A red fox trots through fresh snow at dawn, breath steaming, soft golden light, slow tracking shot.",
    "An astronaut rides a horse across a desert of white sand under two moons, cinematic wide shot.",
    "Close-up of coffee being poured into a glass cup, swirling cream, shallow depth of field.",
)


def resource_dir() -> Path | None:
    for candidate in _CANDIDATES:
        if candidate.is_dir():
            return candidate
    return None


def resource(*parts: str) -> Path | None:
    base = resource_dir()
    if base is None:
        return None
    path = base.joinpath(*parts)
    return path if path.exists() else None


def style_sheet() -> str | None:
    path = resource("app.qss")
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        log.warning("could not read %s; using the built-in look", path)
        return None


@lru_cache(maxsize=1)
def all_prompts() -> dict[str, tuple[str, ...]]:
    """Every prompt file in resources/prompts/, keyed by file stem; one prompt a line."""
    folder = resource("prompts")
    found: dict[str, tuple[str, ...]] = {}
    if folder is not None:
        for path in sorted(folder.glob("*.txt")):
            if path.name.upper().startswith("LICENSE"):
                continue
            lines = tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
            if lines:
                found[path.stem] = lines
    return found


def example_prompts(count: int = 6, seed: int = 7) -> list[str]:
    """A few English and Chinese examples: English from any non-eval file, Chinese from the eval set."""
    prompts = all_prompts()
    eval_set = [p for name, lines in prompts.items() if "eval" in name for p in lines]
    english = [p for name, lines in prompts.items() if "eval" not in name for p in lines] or list(_ENGLISH_EXAMPLES)
    rng = random.Random(seed)  # stable picks, so the screen does not reshuffle on every start
    half = count // 2
    picked = rng.sample(english, min(half, len(english)))
    picked += rng.sample(eval_set, min(count - len(picked), len(eval_set)))
    return picked
