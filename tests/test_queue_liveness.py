"""`queue list|show` show a job whose worker process is gone as interrupted (not running), and
`queue run` exits non-zero when a job of that run failed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from stepvideo.api import GenerationRequest
from stepvideo.cli import main
from stepvideo.jobs.liveness import pid_alive, reap_dead_workers
from stepvideo.jobs.store import JobQueue


@pytest.fixture
def queue(sandbox):
    with JobQueue() as q:
        yield q


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_pid_alive_sees_dead_and_zombie_processes():
    import os

    assert pid_alive(os.getpid())
    assert not pid_alive(dead_pid()) and not pid_alive(0) and not pid_alive(-1)
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        for _ in range(200):  # until it exited (a zombie: we have not waited for it)
            if not pid_alive(zombie.pid):
                break
            subprocess.run(["sleep", "0.05"])
        assert not pid_alive(zombie.pid)
    finally:
        zombie.wait()


def test_queue_list_shows_a_dead_workers_job_interrupted(queue, capsys):
    import os

    dead = queue.add(GenerationRequest(prompt="a fox"))
    alive = queue.add(GenerationRequest(prompt="a hare"))
    queue.claim_next(pid=dead_pid())
    queue.mark_checkpoint(dead.id, 5)
    queue.claim_next(pid=os.getpid())  # a live process: left alone

    assert main(["queue", "list"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert "interrupted" in lines[str(dead.id)] and "(checkpoint at step 5)" in lines[str(dead.id)]
    assert "running" in lines[str(alive.id)]
    got = queue.get(dead.id)
    assert got.status == "interrupted" and got.crashes == 1 and "is gone" in got.error_message
    assert main(["queue", "show", str(alive.id)]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "running"
    assert reap_dead_workers(queue) == []  # nothing counted twice


@pytest.fixture
def failing_job(queue, sandbox):
    return queue.add(GenerationRequest(prompt="a fox", model=str(sandbox / "no-such-model"), height=32, width=32,
                                       frames=17, steps=1))


def test_queue_run_exits_1_when_a_job_of_the_run_failed(queue, failing_job, capsys, tiny_model, sandbox):
    good = queue.add(GenerationRequest(prompt="a hare", model=str(tiny_model), height=32, width=32, frames=17,
                                       steps=1, output=str(sandbox / "hare.mp4")))
    code = main(["queue", "run"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert f"job {failing_job.id}: weights_missing" in out and f"job {good.id}: done" in out
    assert "(this run: 1)" in out
    assert queue.get(good.id).status == "done"


def test_queue_run_exits_0_when_nothing_failed(queue, failing_job, capsys):
    queue.cancel(failing_job.id)
    assert main(["queue", "run"]) == 0  # a cancelled job is the user's choice, not a failure
    assert "ran 0 job(s)" in capsys.readouterr().out


def test_queue_run_help_documents_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["queue", "run", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "1 at least one of them failed" in out and "4 another worker already runs this queue" in out
    assert "Ctrl-C or SIGTERM stops after the denoising step or decode tile in flight" in out
