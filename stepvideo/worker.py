"""The worker process: takes jobs from the queue in order and runs them (`python -m stepvideo.worker`).

Protocol (see design/ARCHITECTURE.md): one JSON event per line on stdout, logs on stderr and in
<log dir>/worker.log, commands on stdin as JSON lines:
  {"cmd": "cancel" | "pause" | "resume", "job_id": N}   (job_id left out: the running job)
  {"cmd": "shutdown"}   stop after the current step (checkpointed; the job resumes next time)
  {"cmd": "wake"}       look at the queue now instead of at the next poll
Commands may also arrive through the database (`stepvideo queue cancel|pause` in another terminal).

A paused job ends with `job_failed` kind "paused", a shut-down one with kind "interrupted"; neither is
a failure, both resume from their checkpoint.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import logging.handlers
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from . import paths
from .api import GenerationRequest, event
from .checkpoints import CheckpointStore
from .errors import Cancelled, InvalidRequest, Paused, StepVideoError
from .jobs import Job, JobQueue
from .memory.stats import memory_snapshot
from .worker_lock import WorkerLock

log = logging.getLogger(__name__)

MODES = ("once", "drain", "serve")
# The engine module providing generate, RunControl and EngineSession. Tests point it at a fake or a
# wrapper; nothing else should set it.
ENGINE_ENV = "STEPVIDEO_WORKER_ENGINE"
DEFAULT_ENGINE = "stepvideo.pipeline"


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


class _RecordingStore(CheckpointStore):
    """A CheckpointStore that also records the checkpoint's step in the job's row."""

    def __init__(self, queue: JobQueue, job_id: int) -> None:
        super().__init__(queue.checkpoint_dir, job_id)
        self._queue = queue

    def save(self, step, latents, rng_state=None, meta=None):  # type: ignore[override]
        path = super().save(step, latents, rng_state, meta)
        self._queue.mark_checkpoint(int(self.job_id), step)
        return path


class Worker:
    def __init__(
        self,
        queue: JobQueue,
        emit: Callable[[dict[str, Any]], None],
        *,
        mode: str = "drain",
        engine: Any = None,
        checkpoint_every_steps: int = 5,
        checkpoint_every_seconds: float = 60.0,
        preview_every_steps: int = 0,
        memory_interval_s: float = 0.5,
        poll_interval_s: float = 0.5,
        request_poll_interval_s: float = 0.2,
    ) -> None:
        if mode not in MODES:
            raise InvalidRequest(f"unknown worker mode {mode!r}; allowed: {', '.join(MODES)}")
        self.queue = queue
        self.emit = emit
        self.mode = mode
        self._engine = engine
        self.checkpoint_every_steps = checkpoint_every_steps
        self.checkpoint_every_seconds = checkpoint_every_seconds
        self.preview_every_steps = preview_every_steps
        self.memory_interval_s = memory_interval_s
        self.poll_interval_s = poll_interval_s
        self.request_poll_interval_s = request_poll_interval_s
        self._session: Any = None
        self._session_key: tuple | None = None
        self._current: int | None = None
        self._cancel: set[int] = set()
        self._pause: set[int] = set()
        self._shutdown = threading.Event()
        self._wake = threading.Event()
        self._working = threading.Event()
        self._state_lock = threading.Lock()
        self._db_request: tuple[float, str | None] = (0.0, None)

    # --- commands (any thread) --------------------------------------------------------------------

    def handle_command(self, command: dict[str, Any]) -> None:
        name = command.get("cmd", command.get("type"))
        job_id = command.get("job_id")
        try:
            if name == "shutdown":
                self.request_shutdown()
            elif name == "wake":
                self._wake.set()
            elif name in ("cancel", "pause"):
                with self._state_lock:
                    target = self._current if job_id is None else int(job_id)
                    running_here = target is not None and target == self._current
                    if running_here:
                        (self._cancel if name == "cancel" else self._pause).add(target)
                if target is None:
                    raise InvalidRequest(f"{name}: no job is running; give a job_id")
                if not running_here:
                    getattr(self.queue, name)(target)
            elif name == "resume":
                if job_id is None:
                    raise InvalidRequest("resume needs a job_id")
                self.queue.resume(int(job_id))
                self._wake.set()
            else:
                raise InvalidRequest(f"unknown command {name!r}; allowed: cancel, pause, resume, shutdown, wake")
        except (StepVideoError, ValueError, TypeError) as exc:
            log.warning("command %s failed: %s", command, exc)
            self.emit(event("log", level="error", message=f"command {name!r} failed: {exc}"))

    def request_shutdown(self) -> None:
        self._shutdown.set()
        self._wake.set()

    @property
    def shutdown_requested(self) -> bool:
        return self._shutdown.is_set()

    # --- the loop ---------------------------------------------------------------------------------

    def run(self, commands: TextIO | None = None) -> int:
        """Hold the queue's lock, recover jobs of a dead worker, then run jobs per `mode`. Returns jobs run.

        `commands`: a stream of JSON-line commands (stdin), read on a thread started after `ready`; in
        serve mode its end means shutdown.
        """
        with WorkerLock(self.queue.path):
            recovered = self.queue.recover_interrupted(
                "the previous worker stopped while running this job (killed or crashed); it resumes from its last checkpoint"
            )
            cleaned = self.queue.clean_orphans()
            self.emit(event("ready", pid=os.getpid(), mode=self.mode, queue=str(self.queue.path),
                            recovered=recovered, orphans_cleaned=cleaned))
            stop_memory = threading.Event()
            memory_thread = threading.Thread(target=self._memory_loop, args=(stop_memory,), name="memory-events",
                                             daemon=True)
            memory_thread.start()
            if commands is not None:
                threading.Thread(target=_stdin_loop, args=(self, commands, self.mode == "serve"),
                                 name="commands", daemon=True).start()
            ran = 0
            try:
                while not self._shutdown.is_set():
                    job = self.queue.claim_next(os.getpid())
                    if job is None:
                        if self.mode != "serve":
                            break
                        self._wake.wait(self.poll_interval_s)
                        self._wake.clear()
                        continue
                    self._run_job(job)
                    ran += 1
                    if self.mode == "once":
                        break
            finally:
                stop_memory.set()
                memory_thread.join(timeout=5)
                if self._session is not None and hasattr(self._session, "drop_all"):
                    self._session.drop_all()
            return ran

    def _memory_loop(self, stop: threading.Event) -> None:
        idle_every = max(5.0, self.memory_interval_s)
        last = 0.0
        while not stop.is_set():
            interval = self.memory_interval_s if self._working.is_set() else idle_every
            now = time.monotonic()
            if now - last >= interval:
                last = now
                self.emit(event("memory", job_id=self._current, **memory_snapshot()))
            stop.wait(min(self.memory_interval_s, 0.25))

    def _engine_module(self) -> Any:
        if self._engine is None:
            self._engine = importlib.import_module(os.environ.get(ENGINE_ENV) or DEFAULT_ENGINE)
        return self._engine

    def _run_job(self, job: Job) -> None:
        with self._state_lock:
            self._current = job.id
            self._db_request = (0.0, None)
        self._working.set()
        store = _RecordingStore(self.queue, job.id)
        resume_step = job.checkpoint_step if store.exists() else None
        try:
            request = GenerationRequest.from_dict(job.request)
            self.emit(event("job_started", job_id=job.id, request=job.request, attempt=job.attempts,
                            resume_from_step=resume_step, steps=request.effective_steps))
            log.info("job %d started%s", job.id, f" (resuming at step {resume_step})" if resume_step else "")
            engine = self._engine_module()
            self._prepare_session(engine, request)
            control = engine.RunControl(
                should_pause=lambda: self._should_pause(job.id),
                checkpoints=store,
                checkpoint_every_steps=self.checkpoint_every_steps,
                checkpoint_every_seconds=self.checkpoint_every_seconds,
                preview_every_steps=self.preview_every_steps,
                preview_dir=self.queue.preview_dir(job.id),
            )
            result = engine.generate(
                request, self._job_events(job.id), lambda: self._should_cancel(job.id),
                control=control, session=self._session,
            )
        except Paused as exc:
            self._finish_paused(job.id, store, str(exc))
        except Cancelled as exc:
            store.clear()
            self.queue.mark_failed(job.id, "cancelled", str(exc) or "cancelled")
            self.emit(event("job_failed", job_id=job.id, kind="cancelled", message=str(exc) or "cancelled"))
        except StepVideoError as exc:
            self._fail(job.id, exc.kind, str(exc))
        except Exception as exc:  # the engine's bug or the device's fault: report it, keep the worker alive
            kind = "out_of_memory" if type(exc).__name__ == "OutOfMemoryError" else "internal"
            log.exception("job %d failed", job.id)
            first = (str(exc).strip().splitlines() or [""])[0]
            self._fail(job.id, kind, f"{type(exc).__name__}: {first}" if kind == "internal" else
                       "the GPU ran out of memory; choose a lower-memory profile or a smaller size")
        else:
            outputs = {"video": result.video_path, "sidecar": result.sidecar_path}
            store.clear()
            self.queue.mark_done(job.id, outputs, result.to_dict())
            self.emit(event("job_done", job_id=job.id, outputs=outputs, video_path=result.video_path,
                            sidecar_path=result.sidecar_path, seconds=result.seconds))
            log.info("job %d done: %s", job.id, result.video_path)
        finally:
            self._working.clear()
            with self._state_lock:
                self._current = None
                self._cancel.discard(job.id)
                self._pause.discard(job.id)

    def _prepare_session(self, engine: Any, request: GenerationRequest) -> None:
        """One EngineSession while jobs share model and memory profile; a different one frees the parked
        components first, so host RAM never holds two models' weights."""
        key = _session_key(request)
        if self._session is not None and key != self._session_key and hasattr(self._session, "drop_all"):
            log.info("model or memory profile changed: releasing the loaded components")
            self._session.drop_all()
        if self._session is None:
            self._session = engine.EngineSession()
        self._session_key = key

    def _finish_paused(self, job_id: int, store: CheckpointStore, message: str) -> None:
        job = self.queue.get(job_id)
        step = job.checkpoint_step
        user_paused = job_id in self._pause or job.requested == "pause"
        if self._shutdown.is_set() and not user_paused:
            reason = f"the worker shut down at step {step}; the job resumes from there"
            self.queue.mark_interrupted(job_id, reason)
            self.emit(event("job_failed", job_id=job_id, kind="interrupted", message=reason, step=step))
        else:
            self.queue.mark_paused(job_id, message)
            self.emit(event("job_failed", job_id=job_id, kind="paused", message=message, step=step))
        log.info("job %d stopped at step %s: %s", job_id, step, message)

    def _fail(self, job_id: int, kind: str, message: str) -> None:
        self.queue.mark_failed(job_id, kind, message)
        self.emit(event("job_failed", job_id=job_id, kind=kind, message=message))
        log.warning("job %d failed (%s): %s", job_id, kind, message)

    def _job_events(self, job_id: int) -> Callable[[dict[str, Any]], None]:
        def on_event(ev: dict[str, Any]) -> None:
            ev = {**ev, "job_id": job_id}
            kind = ev.get("type")
            if kind == "step":
                self.queue.mark_progress(job_id, step=ev.get("i"), steps=ev.get("n"))
            elif kind == "stage" and ev.get("state") == "started":
                self.queue.mark_progress(job_id, stage=ev.get("name"))
            self.emit(ev)

        return on_event

    def _db_requested(self, job_id: int) -> str | None:
        """The job's 'cancel'/'pause' request from the database, read at most every request_poll_interval_s."""
        checked_at, value = self._db_request
        now = time.monotonic()
        if now - checked_at >= self.request_poll_interval_s:
            value = self.queue.requested(job_id)
            self._db_request = (now, value)
        return value

    def _should_cancel(self, job_id: int) -> bool:
        return job_id in self._cancel or self._db_requested(job_id) == "cancel"

    def _should_pause(self, job_id: int) -> bool:
        return job_id in self._pause or self._shutdown.is_set() or self._db_requested(job_id) == "pause"


def _session_key(request: GenerationRequest) -> tuple:
    """What decides which weights a job loads and how (the preset picks the turbo transformer)."""
    return (request.model, request.revision, getattr(request, "transformer_model", None), request.preset,
            request.profile, request.quantization)


# --- process entry point ---------------------------------------------------------------------------

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


def install_signal_handlers(worker: Worker) -> Callable[[], None]:
    """SIGTERM/SIGINT: stop after the current step with a checkpoint (the desktop escalates to SIGKILL).
    Returns a function that puts the previous handlers back."""
    def stop(signum: int, _frame: Any) -> None:
        if signum == signal.SIGINT and worker.shutdown_requested:
            raise KeyboardInterrupt  # a second Ctrl-C: leave now; the next worker marks the job interrupted
        log.info("signal %d: shutting down after the current step", signum)
        worker.request_shutdown()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stepvideo.worker", description="StepVideo queue worker")
    add_worker_arguments(parser)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    emit = EventWriter(sys.stdout)
    try:
        worker = build_worker(args, emit)
        install_signal_handlers(worker)
        worker.run(commands=sys.stdin)
    except StepVideoError as exc:
        log.error("%s", exc)
        sys.stderr.write(f"stepvideo worker: error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
