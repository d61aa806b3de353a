"""The worker process (`python -m stepvideo.jobs.worker_entry`): arguments, logging, signals and the stdin command
reader around a `Worker` (worker.py). The protocol it speaks is docs/PROTOCOL.md.

stdout carries only the JSON-lines events; logs go to stderr and <log dir>/worker.log.
"""

from __future__ import annotations

import argparse
import json
import logging
import logging.handlers
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

from stepvideo import paths
from stepvideo.api import event
from stepvideo.errors import InvalidRequest, StepVideoError
from stepvideo.jobs.store import JobQueue
from stepvideo.jobs.worker import Worker

log = logging.getLogger(__name__)


class EventWriter:
    """Thread-safe JSON-lines writer (the memory thread and the job thread both emit)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self.broken = False

    def __call__(self, ev: dict[str, Any]) -> None:
        line = json.dumps(ev, ensure_ascii=False, separators=(",", ":"))
        with self._lock:
            if self.broken:
                return
            try:
                self._stream.write(line + "\n")
                self._stream.flush()
            except (BrokenPipeError, ValueError):
                self.broken = True  # the reader is gone; keep working, the queue holds the truth


def run_worker(worker: Worker, commands: TextIO | None = None) -> int:
    """Run `worker`, reading JSON-line commands from `commands` (stdin) on a thread started after `ready`.
    In serve mode the end of `commands` means shutdown (the desktop went away). Returns the jobs run."""
    def start_reader() -> None:
        if commands is not None:
            threading.Thread(target=_stdin_loop, args=(worker, commands, worker.mode == "serve"),
                             name="commands", daemon=True).start()

    return worker.run(on_ready=start_reader)


def _stdin_loop(worker: Worker, stream: TextIO, eof_shuts_down: bool) -> None:
    try:
        for line in stream:
            _handle_line(worker, line.strip())
    except (OSError, ValueError) as exc:  # stdin closed under us or not readable: no commands, go on
        log.warning("cannot read commands from stdin: %s", exc)
    if eof_shuts_down:
        log.info("stdin closed: shutting down")
        worker.request_shutdown()


def _handle_line(worker: Worker, line: str) -> None:
    if not line:
        return
    try:
        command = json.loads(line)
        if not isinstance(command, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        worker.emit(event("log", level="error", message=f"unreadable command {line[:80]!r}: {exc}"))
        return
    worker.handle_command(command)


def setup_logging(verbose: bool = False, stderr: bool = True) -> None:
    """Logs to stderr and to <log dir>/worker.log (rotated), never to stdout (that is the event channel)."""
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for old in [h for h in root.handlers if getattr(h, "_stepvideo_worker", False)]:  # called again: replace
        root.removeHandler(old)
        old.close()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)] if stderr else []
    try:
        log_file = paths.ensure(paths.log_dir()) / "worker.log"
        handlers.append(logging.handlers.RotatingFileHandler(log_file, maxBytes=5_000_000, backupCount=3,
                                                             encoding="utf-8"))
    except OSError as exc:
        log.warning("cannot write the worker log file: %s", exc)
    for handler in handlers:
        handler.setFormatter(fmt)
        handler._stepvideo_worker = True  # type: ignore[attr-defined]
        root.addHandler(handler)


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--once", action="store_const", const="once", dest="mode", help="run one job, then exit")
    group.add_argument("--serve", action="store_const", const="serve", dest="mode",
                       help="keep waiting for new jobs until a shutdown command, SIGTERM or stdin closing")
    parser.set_defaults(mode="drain")
    parser.add_argument("--queue", default=None, help="queue database (default: the app's queue.sqlite3)")
    parser.add_argument("--checkpoint-every-steps", type=int, default=5, metavar="K")
    parser.add_argument("--checkpoint-every-seconds", type=float, default=60.0, metavar="S")
    parser.add_argument("--preview-every-steps", type=int, default=0, metavar="N", help="0: no previews")


def build_worker(args: argparse.Namespace, emit: Callable[[dict[str, Any]], None]) -> Worker:
    for name, value in (("--checkpoint-every-steps", args.checkpoint_every_steps),
                        ("--preview-every-steps", args.preview_every_steps)):
        if value < 0 or (name == "--checkpoint-every-steps" and value == 0):
            raise InvalidRequest(f"{name} {value} is not allowed; it must be a whole number ≥ {0 if 'preview' in name else 1}")
    if not args.checkpoint_every_seconds > 0:
        raise InvalidRequest(f"--checkpoint-every-seconds {args.checkpoint_every_seconds} is not allowed; it must be > 0")
    queue = JobQueue(args.queue) if args.queue else JobQueue()
    return Worker(queue, emit, mode=args.mode, checkpoint_every_steps=args.checkpoint_every_steps,
                  checkpoint_every_seconds=args.checkpoint_every_seconds,
                  preview_every_steps=args.preview_every_steps)


def install_signal_handlers(worker: Worker, on_stop: Callable[[], None] | None = None) -> Callable[[], None]:
    """SIGTERM/SIGINT: stop after the current denoising step or decode tile with a checkpoint (the
    desktop escalates to SIGKILL). `on_stop` runs on the first one (the CLI says what it waits for).
    Returns a function that puts the previous handlers back."""
    def stop(signum: int, _frame: Any) -> None:
        if signum == signal.SIGINT and worker.shutdown_requested:
            raise KeyboardInterrupt  # a second Ctrl-C: leave now; the next worker marks the job interrupted
        log.info("signal %d: shutting down after the current step or decode tile", signum)
        if on_stop is not None and not worker.shutdown_requested:
            on_stop()
        worker.request_shutdown()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stepvideo.jobs.worker_entry", description="StepVideo queue worker")
    add_worker_arguments(parser)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    emit = EventWriter(sys.stdout)
    try:
        worker = build_worker(args, emit)
        install_signal_handlers(worker)
        run_worker(worker, sys.stdin)
    except StepVideoError as exc:
        log.error("%s", exc)
        sys.stderr.write(f"stepvideo worker: error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
