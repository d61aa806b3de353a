"""The worker's JSON-lines protocol as seen from the UI: decode events, encode commands, build the argv.

No Qt and no torch, so it is tested on its own (building a command is kept apart from running it).
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stepvideo.api import EVENT_TYPES, PROTOCOL_VERSION

log = logging.getLogger(__name__)

COMMANDS = ("cancel", "pause", "resume", "shutdown", "wake")
ALREADY_RUNNING_EXIT = 4
# A job's last event: done, failed (incl. cancelled), paused (checkpoint kept), interrupted (worker shut down).
JOB_END_EVENTS = ("job_done", "job_failed", "job_paused", "job_interrupted")  # stepvideo.jobs.lock.WorkerAlreadyRunning.exit_code


class ProtocolError(ValueError):
    """A line that claims to be an event but is not one this app understands."""


@dataclass(frozen=True)
class WorkerOptions:
    queue_db: Path
    checkpoint_every_steps: int = 10
    preview_every_steps: int = 0  # 0: no previews
    python: str = sys.executable


def worker_argv(options: WorkerOptions) -> list[str]:
    """The worker's command line (program first). Pure, so tests can check it without starting anything."""
    return [
        options.python, "-m", "stepvideo.jobs.worker_entry", "--serve",
        "--queue", str(options.queue_db),
        "--checkpoint-every-steps", str(options.checkpoint_every_steps),
        "--preview-every-steps", str(options.preview_every_steps),
    ]


def encode_command(name: str, job_id: int | None = None) -> bytes:
    if name not in COMMANDS:
        raise ValueError(f"unknown worker command {name!r}; allowed: {', '.join(COMMANDS)}")
    command: dict[str, Any] = {"v": PROTOCOL_VERSION, "cmd": name}
    if job_id is not None:
        command["job_id"] = int(job_id)
    return (json.dumps(command) + "\n").encode()


def decode_line(line: str | bytes) -> dict[str, Any] | None:
    """An event dict, or None for a line that is not JSON (stray output: shown as log text).

    Raises ProtocolError for JSON of another protocol version, so a mismatched worker is reported
    instead of misread. Event types this app does not know yet are passed on (and ignored by the views):
    a newer worker may add events without breaking an older window.
    """
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    if data.get("v") != PROTOCOL_VERSION:
        raise ProtocolError(f"the worker speaks protocol version {data.get('v')!r}, this app speaks {PROTOCOL_VERSION}")
    if not isinstance(data.get("type"), str):
        raise ProtocolError("an event without a type")
    if data["type"] not in EVENT_TYPES:
        log.debug("ignoring unknown event type %r", data["type"])
    return data


class LineBuffer:
    """Splits a byte stream into complete lines; keeps a partial tail until its newline arrives."""

    def __init__(self) -> None:
        self._tail = b""

    def feed(self, data: bytes) -> list[bytes]:
        data = self._tail + data
        *lines, self._tail = data.split(b"\n")
        return lines


def describe_exit(exit_code: int, crashed: bool, stderr_tail: str = "") -> str:
    """Words for a worker that stopped on its own: what happened and what the user can do."""
    tail = stderr_tail.lower()
    if "outofmemory" in tail.replace(" ", "") or "out of memory" in tail:
        return "worker stopped: out of memory"
    if crashed:  # QProcess reports the signal number as the exit code of a crashed child
        if exit_code == signal.SIGKILL:
            return "worker stopped: killed (often the system running out of RAM)"
        if exit_code == signal.SIGSEGV:
            return "worker stopped: crashed (segmentation fault)"
        if exit_code == signal.SIGABRT:
            return "worker stopped: aborted"
        return "worker stopped: crashed"
    if exit_code == ALREADY_RUNNING_EXIT:
        return "another worker (for example `stepvideo queue run` in a terminal) is already running this queue"
    if exit_code != 0:
        last = next((ln.strip() for ln in reversed(stderr_tail.splitlines()) if ln.strip()), "")
        return f"worker stopped with exit code {exit_code}" + (f": {last[:200]}" if last else "")
    return "worker stopped"
