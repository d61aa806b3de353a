"""Stop escalation (stepvideo/jobs/supervisor.py): a worker that ignores cancel/pause is SIGKILLed after
the grace period and its job recorded; a worker that answers is left alone; nothing that is not this
queue's StepVideo worker is ever killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from worker_process import WorkerProcess

from stepvideo.api import GenerationRequest
from stepvideo.cli import main
from stepvideo.errors import InvalidRequest
from stepvideo.jobs.lock import WorkerLock, worker_pid
from stepvideo.jobs.store import JobQueue
from stepvideo.jobs.supervisor import (
    StopSupervisor,
    WorkerNotResponding,
    is_stepvideo_worker,
    stop_deadline,
    stop_job,
)


def req(prompt: str = "a cat", steps: int = 4, **kw) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, height=32, width=32, frames=17, steps=steps, seed=1, **kw)


@pytest.fixture
def queue(sandbox):
    with JobQueue() as q:
        yield q


def wait_for_file(path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_deadline_allows_for_the_step_in_flight():
    assert stop_deadline(100.0, 30.0, None, None) == 130.0  # no step yet (loading): grace from the request
    assert stop_deadline(100.0, 30.0, 90.0, 50.0) == 170.0  # a slow step ends at 140: grace from then
    assert stop_deadline(100.0, 30.0, 10.0, 5.0) == 130.0  # a step that should long be over
    with pytest.raises(InvalidRequest, match="--grace 0 is not allowed"):
        StopSupervisor(None, 1, "pause", grace_s=0)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest, match="unknown action 'stop'"):
        StopSupervisor(None, 1, "stop")  # type: ignore[arg-type]


def test_cmdline_check_recognises_only_stepvideo_workers():
    assert not is_stepvideo_worker(os.getpid())  # pytest
    assert not is_stepvideo_worker(2**22 + 12345)  # no such process
    sleeper = subprocess.Popen(["sleep", "30"])
    cli_like = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "stepvideo", "--verbose",
                                 "queue", "--queue", "/q.sqlite3", "run"])
    try:
        time.sleep(0.1)
        assert not is_stepvideo_worker(sleeper.pid)
        assert is_stepvideo_worker(cli_like.pid)  # `stepvideo … queue … run`
    finally:
        for proc in (sleeper, cli_like):
            proc.kill()
            proc.wait()


def test_ignoring_worker_is_killed_and_its_paused_job_resumes(queue, sandbox, capsys):
    job = queue.add(req("stuck [block]", steps=7))
    marker = sandbox / "blocked"
    env = {"FAKE_BLOCK_MARKER": str(marker)}
    worker = WorkerProcess(queue.path, "--checkpoint-every-steps", "3", env=env)
    wait_for_file(marker)  # the engine sits after its step-3 checkpoint and ignores every command
    assert is_stepvideo_worker(worker.proc.pid) and worker_pid(queue.path) == worker.proc.pid

    code = main(["queue", "--queue", str(queue.path), "pause", str(job.id), "--grace", "0.3"])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    assert out.strip() == (f"job {job.id}: the worker (pid {worker.proc.pid}) did not pause it within 0.3 s and "
                           "was killed; it is paused: resume it to continue from step 3")
    assert worker.proc.wait(timeout=10) == -signal.SIGKILL
    worker.kill()
    got = queue.get(job.id)
    assert (got.status, got.error_kind, got.checkpoint_step, got.requested) == ("paused", "interrupted", 3, None)
    assert queue.checkpoints(job.id).exists() and worker_pid(queue.path) is None

    queue.resume(job.id)  # the next worker continues from the checkpoint
    again = WorkerProcess(queue.path, "--checkpoint-every-steps", "3", env=env)
    assert again.finish() == 0
    assert [e["i"] for e in again.of_job(job.id) if e["type"] == "step"] == [4, 5, 6, 7]
    assert queue.get(job.id).status == "done"


def test_answering_worker_is_not_killed(queue):
    job = queue.add(req("long", steps=200))
    worker = WorkerProcess(queue.path, "--serve", env={"FAKE_STEP_SECONDS": "0.02"})
    worker.wait_for(lambda e: e["type"] == "step" and e["job_id"] == job.id)
    outcome = stop_job(queue, job.id, "cancel", grace_s=20)
    assert not outcome.killed and outcome.job.status == "cancelled"
    assert outcome.message == f"job {job.id}: cancelled"
    assert worker.proc.poll() is None  # alive and well
    worker.send({"cmd": "shutdown"})
    assert worker.finish() == 0
    # a job that is not running is stopped on the spot, without waiting
    waiting = queue.add(req("later"))
    outcome = stop_job(queue, waiting.id, "pause", grace_s=20)
    assert outcome.job.status == "paused" and outcome.message == f"job {waiting.id}: paused"


def test_never_kills_a_process_that_is_not_a_separate_worker(queue):
    job = queue.add(req())
    queue.claim_next(pid=os.getpid())  # an in-process worker: this very process holds the lock
    now = [1000.0]
    with WorkerLock(queue.path):
        supervisor = StopSupervisor(queue, job.id, "pause", grace_s=5, clock=lambda: now[0])
        assert supervisor.start() is None and supervisor.poll() is None
        now[0] += 6
        with pytest.raises(WorkerNotResponding, match=f"pid {os.getpid()}.*not a separate StepVideo worker"):
            supervisor.poll()
    got = queue.get(job.id)
    assert got.status == "running" and got.requested == "pause"  # untouched


def test_a_dead_workers_job_is_settled_and_a_reused_pid_is_left_alone(queue):
    sleeper = subprocess.Popen(["sleep", "30"])  # stands for an unrelated process that got the old pid
    try:
        job = queue.add(req())
        queue.claim_next(pid=sleeper.pid)
        now = [1000.0]
        supervisor = StopSupervisor(queue, job.id, "cancel", grace_s=1, clock=lambda: now[0])
        assert supervisor.start() is None
        now[0] += 2
        outcome = supervisor.poll()
        assert not outcome.killed and sleeper.poll() is None
        assert outcome.job.status == "cancelled" and "had stopped while running it" in outcome.message
    finally:
        sleeper.kill()
        sleeper.wait()
