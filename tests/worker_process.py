"""Test helper: a `python -m stepvideo.jobs.worker_entry` subprocess with its events read on a thread."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent


class WorkerProcess:
    def __init__(self, db: Path, *args: str, engine: str = "worker_engine_fake", env: dict[str, str] | None = None,
                 log: Path | None = None) -> None:
        full_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)]),
                    "STEPVIDEO_WORKER_ENGINE": engine, "OMP_NUM_THREADS": "1", **(env or {})}
        self.log = log or db.parent / "worker-stderr.log"
        self._stderr = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stepvideo.jobs.worker_entry", "--queue", str(db), *args],
            cwd=ROOT, env=full_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True,
        )
        self.events: list[dict[str, Any]] = []
        self._queue: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                self._queue.put(json.loads(line))
            except ValueError:  # every stdout line must be one JSON event; tests check for this marker
                self._queue.put({"type": "NOT_JSON", "line": line})
        self._queue.put(None)

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching event in {timeout} s; last: {self.events[-5:]}\n{self.stderr()}")
            try:
                ev = self._queue.get(timeout=left)
            except queue.Empty:
                continue
            if ev is None:
                raise AssertionError(f"worker exited before the event; last: {self.events[-5:]}\n{self.stderr()}")
            self.events.append(ev)
            if predicate(ev):
                return ev

    def send(self, command: dict[str, Any]) -> None:
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 60.0) -> int:
        """Wait for exit; collect the remaining events."""
        rc = self.proc.wait(timeout=timeout)
        while True:
            ev = self._queue.get(timeout=10)
            if ev is None:
                break
            self.events.append(ev)
        self._stderr.close()
        return rc

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self._stderr.close()

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def of_job(self, job_id: int) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("job_id") == job_id and e["type"] != "memory"]
