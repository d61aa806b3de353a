"""Download progress: bytes done/total, speed over a sliding window, ETA, current file.
Thread-safe (one download runs several files in parallel); emits `download` protocol events."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from stepvideo.api import event

SPEED_WINDOW_S = 5.0
EMIT_EVERY_S = 0.25


def human_bytes(n: float | int | None) -> str:
    if n is None:
        return "?"
    n = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def human_seconds(s: float | None) -> str:
    if s is None:
        return "?"
    s = int(round(s))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


class Progress:
    """Counts bytes as they arrive. `bytes_done` starts at what is already on disk (finished files
    and resumable partials), so a resumed download shows its true position; speed counts only bytes
    fetched in this run."""

    def __init__(
        self, bytes_total: int, files_total: int, *, on_event: Callable[[dict[str, Any]], None] | None = None,
        context: dict[str, Any] | None = None, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bytes_total = bytes_total
        self.files_total = files_total
        self.bytes_done = 0
        self.files_done = 0
        self.current_file: str | None = None
        self._on_event = on_event
        self._context = dict(context or {})
        self._clock = clock
        self._lock = threading.Lock()
        self._fetched = 0
        self._window: deque[tuple[float, int]] = deque([(clock(), 0)])
        self._last_emit = float("-inf")

    def credit(self, n: int) -> None:
        """Bytes already on disk (not fetched now)."""
        with self._lock:
            self.bytes_done += n

    def add(self, n: int, path: str) -> None:
        with self._lock:
            self.bytes_done += n
            self._fetched += n
            self.current_file = path
            now = self._clock()
            self._window.append((now, self._fetched))
            while len(self._window) > 2 and now - self._window[1][0] > SPEED_WINDOW_S:
                self._window.popleft()
            due = now - self._last_emit >= EMIT_EVERY_S
            if due:
                self._last_emit = now
        if due:
            self.emit("progress")

    def uncount(self, n: int) -> None:
        """A partial file turned out unusable (server restarted it from 0): take its bytes back."""
        with self._lock:
            self.bytes_done -= n

    def file_done(self, path: str) -> None:
        with self._lock:
            self.files_done += 1
            self.current_file = path
        self.emit("file_done")

    def speed(self) -> float:
        """Bytes per second over the last few seconds of this run."""
        with self._lock:
            (t0, b0), (t1, b1) = self._window[0], self._window[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0

    def snapshot(self) -> dict[str, Any]:
        speed = self.speed()
        with self._lock:
            remaining = max(0, self.bytes_total - self.bytes_done)
            return {
                "bytes_done": self.bytes_done, "bytes_total": self.bytes_total,
                "files_done": self.files_done, "files_total": self.files_total,
                "file": self.current_file, "speed_bps": round(speed, 1),
                "eta_seconds": (round(remaining / speed, 1) if speed > 0 else (0.0 if remaining == 0 else None)),
            }

    def emit(self, phase: str, **extra: Any) -> None:
        if self._on_event is not None:
            self._on_event(event("download", phase=phase, **self._context, **self.snapshot(), **extra))
