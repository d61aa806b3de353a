"""Variations: N jobs of one request with seeds s, s+K, s+2K, …, grouped so that the desktop shows them
together and the gallery compares them side by side. Torch-free.

Seeds are checked before anything is queued: the last one must stay below 2^63 (the engine's range),
so a sweep is never wrapped or clipped silently.
"""

from __future__ import annotations

import uuid

from stepvideo.api import GenerationRequest, validate
from stepvideo.errors import InvalidRequest
from stepvideo.jobs.record import Job

MAX_VARIATIONS = 1000  # dozens is normal overnight; four digits is a typo
SEED_LIMIT = 2**63


def new_group_id() -> str:
    """A group id that no other queue (another machine's export) will have: rows never merge by accident."""
    return f"g-{uuid.uuid4().hex[:12]}"


def variation_seeds(seed: int, count: int, seed_step: int = 1) -> list[int]:
    """[seed, seed + step, …] (count of them); InvalidRequest when the count, the step or the last seed is out of range."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_VARIATIONS:
        raise InvalidRequest(f"variations {count!r} is not allowed; it must be a whole number from 1 to {MAX_VARIATIONS}")
    if isinstance(seed_step, bool) or not isinstance(seed_step, int) or seed_step < 1:
        raise InvalidRequest(f"seed step {seed_step!r} is not allowed; it must be a whole number ≥ 1 (distinct seeds)")
    last = seed + (count - 1) * seed_step
    if last >= SEED_LIMIT:
        raise InvalidRequest(f"the last variation's seed {last} is not allowed; seeds must stay below 2^63 "
                             "(start from a smaller seed or use a smaller seed step)")
    return [seed + i * seed_step for i in range(count)]


def variation_requests(request: GenerationRequest, count: int, seed_step: int = 1) -> list[GenerationRequest]:
    """The request once per seed; the video path is left to the videos folder (one --output cannot hold N videos)."""
    seeds = variation_seeds(request.seed, count, seed_step)
    if count > 1 and request.output is not None:
        raise InvalidRequest("variations cannot share one --output file; leave it out (videos go to the videos folder)")
    return [validate(request.replace(seed=s)) for s in seeds]


def add_variations(queue, request: GenerationRequest, count: int, seed_step: int = 1) -> list[Job]:
    """Queue the variations in one transaction (all or nothing), grouped when there is more than one."""
    requests = variation_requests(request, count, seed_step)
    group = new_group_id() if count > 1 else None
    return queue.add_many(requests, groups=[group] * len(requests))
