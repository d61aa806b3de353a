"""Time left, from the units of work (denoise steps, decode tiles) run in this attempt only. Torch-free.

A job resumed from a checkpoint at step 20 of 40 has run one step when step 21 ends; dividing the time
since it (re)started by 21 steps done in total made the ETA a few seconds. Only the units this attempt
ran say how fast this machine goes now.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def remaining_seconds(elapsed: float, units_run: int, units_left: int) -> float | None:
    """The mean time of the units run so far times the units left; None before any unit finished."""
    if units_run <= 0:
        return None
    return max(elapsed, 0.0) / units_run * max(units_left, 0)


class AttemptClock:
    """Counts time and units from the start of this attempt (`begin`), not from the job's first unit."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._began: float | None = None
        self._done_before = 0

    def begin(self, done_before: int = 0, seconds_ago: float = 0.0) -> None:
        """This attempt starts now (or `seconds_ago`), with `done_before` units already done earlier."""
        self._began = self._clock() - seconds_ago
        self._done_before = done_before

    @property
    def started(self) -> bool:
        return self._began is not None

    def eta(self, done: int, total: int) -> float | None:
        if self._began is None:
            return None
        return remaining_seconds(self._clock() - self._began, done - self._done_before, total - done)
