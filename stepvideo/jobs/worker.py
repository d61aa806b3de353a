"""The worker: takes jobs from the queue in order and runs them, reporting events as it goes.

The process around it (`python -m stepvideo.jobs.worker_entry`: arguments, logging, signals, the stdin command
reader) is worker_entry.py; the protocol — commands in, events out, every field — is docs/PROTOCOL.md.
Commands arrive through `handle_command` (stdin) or the database (`stepvideo queue cancel|pause`).
A paused job ends with `job_paused`, a shut-down one with `job_interrupted`; neither is a failure, both
resume from their checkpoint.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from stepvideo.api import GenerationRequest, event
from stepvideo.errors import Cancelled, InvalidRequest, Paused, StepVideoError
from stepvideo.jobs.checkpoints import CheckpointStore
from stepvideo.jobs.lock import WorkerLock
from stepvideo.jobs.store import Job, JobQueue
from stepvideo.memory.profiles import get_profile
from stepvideo.memory.stats import memory_snapshot

log = logging.getLogger(__name__)

MODES = ("once", "drain", "serve")
# The engine module providing generate, RunControl and EngineSession. Tests point it at a fake or a
# wrapper; nothing else should set it.
ENGINE_ENV = "STEPVIDEO_WORKER_ENGINE"
DEFAULT_ENGINE = "stepvideo.engine.pipeline"


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

    def run(self, on_ready: Callable[[], None] | None = None) -> int:
        """Hold the queue's lock, recover jobs of a dead worker, then run jobs per `mode`. Returns jobs run.

        `on_ready` runs right after the `ready` event (worker_entry starts its stdin reader there).
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
            if on_ready is not None:
                on_ready()
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
                preview_every_steps=previews_for(request, self.preview_every_steps),
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
            self._fail(job.id, "cancelled", str(exc) or "cancelled")
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
            self.emit(event("job_interrupted", job_id=job_id, message=reason, step=step))
        else:
            self.queue.mark_paused(job_id, message)
            self.emit(event("job_paused", job_id=job_id, message=message, step=step))
        log.info("job %d stopped at step %s: %s", job_id, step, message)

    def _fail(self, job_id: int, kind: str, message: str) -> None:
        self.queue.mark_failed(job_id, kind, message)
        self.emit(event("job_failed", job_id=job_id, kind=kind, message=message))
        log.warning("job %d failed (%s): %s", job_id, kind, message)

    def _job_events(self, job_id: int) -> Callable[[dict[str, Any]], None]:
        unit_started: list[float | None] = [None]  # when the decode unit in flight began

        def on_event(ev: dict[str, Any]) -> None:
            ev = {**ev, "job_id": job_id}
            kind = ev.get("type")
            if kind == "step":
                self.queue.mark_progress(job_id, step=ev.get("i"), steps=ev.get("n"),
                                         seconds_per_step=ev.get("seconds_per_step"))
            elif kind == "stage" and ev.get("state") == "started":
                self.queue.mark_progress(job_id, stage=ev.get("name"))
            elif kind == "decode_progress":
                now = time.monotonic()
                if ev.get("done"):
                    began = unit_started[0]
                    self.queue.mark_unit_done(job_id, now - began if began is not None else None)
                unit_started[0] = now
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


def previews_for(request: GenerationRequest, every_steps: int) -> int:
    """Preview interval for this job: the worker's setting, but none when the job's memory profile has
    previews off (the lowest-memory profiles cannot spare the decode). `auto` follows the worker."""
    if every_steps <= 0 or request.profile == "auto":
        return max(every_steps, 0)
    return every_steps if get_profile(request.profile).previews else 0

