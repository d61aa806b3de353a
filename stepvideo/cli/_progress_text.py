"""Progress lines for a person, shared by `generate` and `queue run` (the events are docs/PROTOCOL.md)."""

from __future__ import annotations

from typing import Any


def describe_decode_progress(ev: dict[str, Any]) -> str:
    """'decode 5/12 · chunk 2/4 · tile 2/3 · ETA 41 s' from a decode_progress event."""
    text = f"decode {ev.get('done')}/{ev.get('total')} · chunk {ev.get('chunk')}/{ev.get('chunks')}"
    if (ev.get("tiles") or 1) > 1:
        text += f" · tile {ev.get('tile')}/{ev.get('tiles')}"
    eta = ev.get("eta_seconds")
    return text + (f" · ETA {eta:.0f} s" if eta is not None else "")
