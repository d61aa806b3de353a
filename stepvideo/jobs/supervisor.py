"""Stop a running job for sure: ask the worker through the queue, wait a grace period, then kill it.

Cancel and pause take effect between denoising steps, so a healthy worker answers within one step.
One that does not (a hung CUDA call, a deadlock) is SIGKILLed — the only sure way to free its GPU —
but only after checking that the pid recorded on the job still is this queue's StepVideo worker
(it holds the queue's lock and /proc/<pid>/cmdline says so), so a reused pid is never hit.

The grace period counts from the end of the step in flight (the job row records when the last step
ended and how long it took), so a slow memory profile with minute-long steps is not killed for being
slow. Torch-free and Qt-free: the CLI calls `stop_job` (blocking); the desktop drives a
`StopSupervisor` from a timer with `start()` and `poll()`.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stepvideo.errors import InvalidRequest, StepVideoError
from stepvideo.jobs.lock import worker_pid
from stepvideo.jobs.store import Job, JobQueue
from stepvideo.jobs.transitions import STOP_ACTIONS

log = logging.getLogger(__name__)

DEFAULT_GRACE_S = 30.0
LOCK_RELEASE_WAIT_S = 5.0  # after SIGKILL, how long to wait for the kernel to drop the worker's lock


class WorkerNotResponding(StepVideoError):
    """The worker did not stop the job in time and cannot safely be killed from here."""

    kind = "internal"
    exit_code = 1


@dataclass(frozen=True)
class StopOutcome:
    job: Job  # the job as it ended up
    killed: bool  # the worker did not answer in time and was SIGKILLed
    message: str  # one line for a person


def stop_deadline(requested_at: float, grace_s: float, step_at: float | None,
                  seconds_per_step: float | None) -> float:
    """Wall-clock time after which a worker that has not stopped the job counts as not answering: the
    grace period after the request, or after the step in flight is expected to end, whichever is later."""
    expected_step_end = requested_at
    if step_at is not None and seconds_per_step is not None:
        expected_step_end = step_at + max(seconds_per_step, 0.0)
    return max(requested_at, expected_step_end) + grace_s


def is_stepvideo_worker(pid: int) -> bool:
    """Whether /proc/<pid>/cmdline is a StepVideo worker: `… -m stepvideo.jobs.worker_entry …` (the desktop's and
    the bundle's) or `stepvideo [options] queue … run` (the CLI running the queue in a terminal)."""
    try:
        raw = Path(f"/proc/{int(pid)}/cmdline").read_bytes()
    except (OSError, ValueError):
        return False
    args = [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]
    if "stepvideo.jobs.worker_entry" in args:
        return True
    for i, arg in enumerate(args):
        if arg == "stepvideo" or Path(arg).name == "stepvideo":
            rest = args[i + 1:]
            return "queue" in rest and "run" in rest[rest.index("queue") + 1:]
    return False


def check_grace(grace_s: float) -> float:
    grace = float(grace_s)
    if not (grace > 0 and grace < float("inf")):
        raise InvalidRequest(f"--grace {grace_s} is not allowed; it must be a number of seconds > 0")
    return grace


class StopSupervisor:
    """One cancel or pause of one job, escalated to SIGKILL when the worker does not answer in time."""

    def __init__(self, queue: JobQueue, job_id: int, action: str, *, grace_s: float = DEFAULT_GRACE_S,
                 clock: Callable[[], float] = time.time) -> None:
        if action not in STOP_ACTIONS:
            raise InvalidRequest(f"unknown action {action!r}; allowed: {', '.join(STOP_ACTIONS)}")
        self.queue = queue
        self.job_id = int(job_id)
        self.action = action
        self.grace_s = check_grace(grace_s)
        self._clock = clock
        self.deadline: float | None = None  # set by start() when the job is running
        self._pid: int | None = None

    def start(self) -> StopOutcome | None:
        """Send the request through the queue. Returns the outcome at once when the job was not running
        (a waiting job is cancelled or paused on the spot), else None: call poll() until it answers."""
        before = self.queue.get(self.job_id)
        job = getattr(self.queue, self.action)(self.job_id)
        if job.status != "running":
            return StopOutcome(job, False, describe(job))
        self._pid = job.worker_pid
        self.deadline = stop_deadline(self._clock(), self.grace_s, before.step_at, before.seconds_per_step)
        log.info("job %d: %s requested; worker pid %s has until %.1f s from now", self.job_id, self.action,
                 self._pid, self.deadline - self._clock())
        return None

    def poll(self) -> StopOutcome | None:
        """None while the worker still has time; the outcome once it stopped the job or was killed."""
        if self.deadline is None:
            raise RuntimeError("poll() before start()")
        job = self.queue.get(self.job_id)
        if job.status != "running" or job.worker_pid != self._pid:
            return StopOutcome(job, False, describe(job))
        if self._clock() < self.deadline:
            return None
        return self._kill(job)

    def _kill(self, job: Job) -> StopOutcome:
        pid = job.worker_pid
        verb = "cancel" if self.action == "cancel" else "pause"
        if pid is None or worker_pid(self.queue.path) != pid:
            # Nobody holds the queue's lock under that pid: the worker died without anyone noticing.
            reason = self._settle(job, pid, f"the worker (pid {pid}) had stopped while running it")
            return StopOutcome(self.queue.get(job.id), False, f"job {job.id}: {reason}")
        if pid == os.getpid() or not is_stepvideo_worker(pid):
            raise WorkerNotResponding(
                f"the worker (pid {pid}) did not {verb} job {job.id} within {self.grace_s:g} s and is not a "
                f"separate StepVideo worker process, so it was not killed; stop that process yourself"
            )
        log.warning("job %d: worker pid %d did not %s it within %g s; killing it", job.id, pid, verb, self.grace_s)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # it died on its own meanwhile
        # After SIGKILL the process never runs its own code again, so the row is ours to write now.
        reason = self._settle(job, pid, f"the worker (pid {pid}) did not {verb} it within {self.grace_s:g} s "
                                        "and was killed")
        _wait_for_lock_release(self.queue.path, pid)
        return StopOutcome(self.queue.get(job.id), True, f"job {job.id}: {reason}")

    def _settle(self, job: Job, pid: int | None, what_happened: str) -> str:
        """Record the stop on the job (cancelled, or paused keeping its checkpoint); returns the reason."""
        if self.action == "pause":
            at = f"step {job.checkpoint_step}" if job.checkpoint_step else "the start"
            reason = f"{what_happened}; it is paused: resume it to continue from {at}"
        else:
            reason = f"{what_happened}; it is cancelled"
        self.queue.mark_stopped_after_kill(job.id, self.action, pid, reason)
        # The worker may have moved on to another job just before the kill: that one was interrupted.
        if pid is not None:
            self.queue.recover_interrupted(f"the worker (pid {pid}) was killed to {self.action} job {job.id}", pid=pid)
        return reason


def stop_job(queue: JobQueue, job_id: int, action: str, *, grace_s: float = DEFAULT_GRACE_S,
             poll_s: float = 0.1) -> StopOutcome:
    """Cancel or pause `job_id` and block until it took effect, killing an unanswering worker."""
    supervisor = StopSupervisor(queue, job_id, action, grace_s=grace_s)
    outcome = supervisor.start()
    while outcome is None:
        time.sleep(poll_s)
        outcome = supervisor.poll()
    return outcome


def describe(job: Job) -> str:
    """Where a stop request left the job, in words."""
    if job.status == "running" and job.requested:
        return f"job {job.id}: {job.requested} requested; the worker stops it after the current step"
    if job.status == "paused" and job.checkpoint_step:
        return f"job {job.id}: paused at step {job.checkpoint_step}"
    if job.status == "done":
        return f"job {job.id}: done (it finished before the request took effect)"
    return f"job {job.id}: {job.status}"


def _wait_for_lock_release(db_path: Path, pid: int) -> None:
    """Give the kernel a moment to reap the worker, so a worker started right after finds the lock free."""
    deadline = time.monotonic() + LOCK_RELEASE_WAIT_S
    while worker_pid(db_path) == pid and time.monotonic() < deadline:
        time.sleep(0.02)
