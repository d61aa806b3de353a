"""The worker process's protocol with a stand-in engine (tests/worker_engine_fake.py): event order,
memory events, stdin and database commands, the one-worker lock, SIGKILL recovery and resume."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from worker_process import ROOT, WorkerProcess

from stepvideo.api import EVENT_TYPES, GenerationRequest
from stepvideo.jobs.store import JobQueue
from stepvideo.jobs.worker import Worker

MEMORY_FIELDS = ("vram_allocated", "vram_reserved", "vram_peak", "vram_total", "rss", "ram_available")


def req(prompt: str = "a cat", steps: int = 4, seed: int = 1, **kw) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, height=32, width=32, frames=17, steps=steps, seed=seed, **kw)


@pytest.fixture
def queue(sandbox):
    with JobQueue() as q:
        yield q


def wait_for_file(path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def check_job_events(events: list[dict], job_id: int, n: int, end: str = "job_done") -> None:
    types = [e["type"] for e in events]
    assert types[0] == "job_started" and types[-1] == end, types
    steps = [e["i"] for e in events if e["type"] == "step"]
    assert steps == sorted(steps) and all(e["n"] == n for e in events if e["type"] == "step")
    assert all(e["v"] == 1 and e["type"] in EVENT_TYPES for e in events)


def test_drain_runs_jobs_in_order_with_protocol_events(queue, sandbox):
    a = queue.add(req("slow", steps=8))
    b = queue.add(req("quick", steps=2))
    worker = WorkerProcess(queue.path, "--checkpoint-every-steps", "3", env={"FAKE_STEP_SECONDS": "0.2"})
    assert worker.finish() == 0
    events = worker.events
    assert events[0]["type"] == "ready" and events[0]["recovered"] == []
    assert not [e for e in events if e["type"] == "NOT_JSON"]
    started = [e["job_id"] for e in events if e["type"] == "job_started"]
    assert started == [a.id, b.id]
    check_job_events(worker.of_job(a.id), a.id, 8)
    check_job_events(worker.of_job(b.id), b.id, 2)
    assert [e["i"] for e in worker.of_job(a.id) if e["type"] == "step"] == list(range(1, 9))
    # one EngineSession for both jobs
    sessions = [e["message"].split()[1] for e in events if e["type"] == "log" and e["message"].startswith("session")]
    assert len(sessions) == 2 and len(set(sessions)) == 1

    # memory: numbers, and at least once a second while job a ran (1.6 s)
    memory = [e for e in events if e["type"] == "memory"]
    assert all(isinstance(e[f], int) and e[f] >= 0 for e in memory for f in MEMORY_FIELDS)
    assert all(e["rss"] > 0 and e["ram_available"] > 0 for e in memory)
    t0 = next(e["time"] for e in events if e["type"] == "job_started" and e["job_id"] == a.id)
    t1 = next(e["time"] for e in events if e["type"] == "job_done" and e["job_id"] == a.id)
    during = [t0] + [e["time"] for e in memory if t0 <= e["time"] <= t1] + [t1]
    assert len(during) >= 4 and max(y - x for x, y in zip(during, during[1:])) <= 1.0

    for job in (a, b):
        got = queue.get(job.id)
        assert got.status == "done" and Path(got.outputs["video"]).is_file()
        assert got.step == got.steps == job.request["steps"]
        assert not queue.checkpoints(job.id).exists()
    assert (sandbox / "log" / "worker.log").read_text().count("done") >= 2


def test_sigkill_mid_job_then_resume_gives_the_same_result(queue, sandbox):
    one = queue.add(req("one", seed=3))
    two = queue.add(req("two [block]", steps=7, seed=5, output=str(sandbox / "two.bin")))
    three = queue.duplicate(two.id, prompt="three", output=str(sandbox / "three.bin"))  # the uninterrupted reference
    marker = sandbox / "blocked"
    env = {"FAKE_BLOCK_MARKER": str(marker)}
    worker = WorkerProcess(queue.path, "--checkpoint-every-steps", "3", env=env)
    worker.wait_for(lambda e: e["type"] == "job_started" and e["job_id"] == two.id)
    wait_for_file(marker)
    assert marker.read_text() == "3"
    worker.proc.send_signal(signal.SIGKILL)
    worker.kill()

    assert queue.get(one.id).status == "done"
    assert queue.get(two.id).status == "running"  # nobody has noticed yet (no desktop here)
    assert queue.get(two.id).checkpoint_step == 3
    assert queue.get(three.id).status == "queued"

    # the next worker finds the dead one's job and marks it interrupted before taking jobs
    again = WorkerProcess(queue.path, "--checkpoint-every-steps", "3", env=env)
    assert again.finish() == 0
    assert again.events[0]["type"] == "ready" and again.events[0]["recovered"] == [two.id]
    assert queue.get(two.id).attempts == 2 and queue.get(two.id).crashes == 1
    resumed = next(e for e in again.events if e["type"] == "job_started" and e["job_id"] == two.id)
    assert resumed["resume_from_step"] == 3
    assert [e["i"] for e in again.of_job(two.id) if e["type"] == "step"] == [4, 5, 6, 7]
    assert queue.get(two.id).status == queue.get(three.id).status == "done"
    assert (sandbox / "two.bin").read_bytes() == (sandbox / "three.bin").read_bytes()
    assert not any((queue.checkpoint_dir).glob("*.safetensors"))


def test_commands_pause_resume_cancel_and_sigterm(queue):
    job = queue.add(req("long", steps=40))
    other = queue.add(req("next", steps=40))
    worker = WorkerProcess(queue.path, "--serve", "--checkpoint-every-steps", "100",
                           env={"FAKE_STEP_SECONDS": "0.05"})
    worker.wait_for(lambda e: e["type"] == "step" and e["job_id"] == job.id)
    worker.send({"cmd": "pause"})
    paused = worker.wait_for(lambda e: e["type"] in ("job_paused", "job_failed") and e["job_id"] == job.id)
    assert paused["type"] == "job_paused" and paused["message"].startswith("paused at step")
    got = queue.get(job.id)
    assert got.status == "paused" and got.checkpoint_step == paused["step"] >= 1
    assert queue.checkpoints(job.id).exists()

    # the worker moved on to the next job; cancel it through the database, as the CLI does
    worker.wait_for(lambda e: e["type"] == "step" and e["job_id"] == other.id)
    queue.cancel(other.id)
    cancelled = worker.wait_for(lambda e: e["type"] == "job_failed" and e["job_id"] == other.id)
    assert cancelled["kind"] == "cancelled" and queue.get(other.id).status == "cancelled"

    worker.send({"cmd": "resume", "job_id": job.id})
    restarted = worker.wait_for(lambda e: e["type"] == "job_started" and e["job_id"] == job.id)
    assert restarted["resume_from_step"] == got.checkpoint_step
    worker.wait_for(lambda e: e["type"] == "step" and e["job_id"] == job.id)
    worker.send({"cmd": "bogus"})
    assert "unknown command" in worker.wait_for(lambda e: e["type"] == "log" and e.get("level") == "error")["message"]
    worker.proc.send_signal(signal.SIGTERM)  # shut down after the current step, with a checkpoint
    stopped = worker.wait_for(lambda e: e["type"] in ("job_interrupted", "job_failed") and e["job_id"] == job.id)
    assert stopped["type"] == "job_interrupted" and "shut down" in stopped["message"]
    assert worker.finish() == 0
    got = queue.get(job.id)
    assert got.status == "interrupted" and got.checkpoint_step == stopped["step"] > paused["step"]
    assert queue.checkpoints(job.id).exists() and not queue.checkpoints(other.id).exists()


def test_one_worker_per_queue_and_stdin_eof_stops_serve(queue):
    worker = WorkerProcess(queue.path, "--serve")
    worker.wait_for(lambda e: e["type"] == "ready")
    second = subprocess.run([sys.executable, "-m", "stepvideo.jobs.worker_entry", "--once", "--queue", str(queue.path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert second.returncode == 4 and second.stdout == ""
    assert f"another worker (pid {worker.proc.pid}) is already running" in second.stderr.splitlines()[-1]
    # serve mode picks up jobs added later
    job = queue.add(req("late", steps=2))
    worker.send({"cmd": "wake"})
    worker.wait_for(lambda e: e["type"] == "job_done" and e["job_id"] == job.id)
    worker.proc.stdin.close()  # the desktop went away
    assert worker.finish() == 0


# --- in-process: failures keep the worker alive ------------------------------------------------------

def test_failures_are_recorded_and_the_worker_goes_on(queue):
    import worker_engine_fake as fake

    class Broken:
        RunControl, EngineSession = fake.RunControl, fake.EngineSession

        @staticmethod
        def generate(request, on_event=None, should_cancel=None, *, control=None, session=None):
            if request.prompt == "boom":
                raise RuntimeError("kernel exploded\nlong traceback")
            return fake.generate(request, on_event, should_cancel, control=control, session=session)

    bad = queue.add(req("boom"))
    stale = queue.add(req("stale"))
    queue._conn.execute("UPDATE jobs SET request = json_set(request, '$.colour', 'red') WHERE id = ?", (stale.id,))
    good = queue.add(req("fine", steps=2))
    events: list[dict] = []
    assert Worker(queue, events.append, engine=Broken, memory_interval_s=0.05).run() == 3
    failed = {e["job_id"]: e for e in events if e["type"] == "job_failed"}
    assert failed[bad.id]["kind"] == "internal" and failed[bad.id]["message"] == "RuntimeError: kernel exploded"
    assert failed[stale.id]["kind"] == "invalid_request" and "colour" in failed[stale.id]["message"]
    assert queue.get(bad.id).status == queue.get(stale.id).status == "failed"
    assert queue.get(good.id).status == "done"


def test_cancel_in_process_between_steps(queue):
    import worker_engine_fake as fake

    job = queue.add(req("x", steps=6))
    events: list[dict] = []
    worker: Worker

    def emit(ev):
        events.append(ev)
        if ev["type"] == "step" and ev["i"] == 2:
            worker.handle_command({"cmd": "cancel", "job_id": job.id})

    worker = Worker(queue, emit, engine=fake, request_poll_interval_s=0)
    worker.run()
    assert [e["i"] for e in events if e["type"] == "step"] == [1, 2]
    assert queue.get(job.id).status == "cancelled"


def test_session_is_reused_per_model_and_profile_and_freed_on_change(queue):
    import worker_engine_fake as fake

    fake.SESSIONS.clear()
    queue.add(req("a", steps=1))
    queue.add(req("b", steps=1))
    queue.add(req("c", steps=1, profile="low-vram"))
    Worker(queue, lambda e: None, engine=fake).run()
    assert len(fake.SESSIONS) == 1
    session = fake.SESSIONS[0]
    assert session.jobs == 3
    assert session.drops == 2  # once when the profile changed, once when the worker stopped


def test_previews_follow_the_jobs_memory_profile(queue):
    import worker_engine_fake as fake

    from stepvideo.jobs.worker import previews_for
    from stepvideo.memory.profiles import PROFILES

    seen: dict[str, int] = {}

    class Recording:
        RunControl, EngineSession = fake.RunControl, fake.EngineSession

        @staticmethod
        def generate(request, on_event=None, should_cancel=None, *, control=None, session=None):
            seen[request.prompt] = control.preview_every_steps
            return fake.generate(request, on_event, should_cancel, control=control, session=session)

    names = ("auto", *PROFILES)
    for name in names:
        queue.add(req(name, steps=1, profile=name))
    Worker(queue, lambda e: None, engine=Recording, preview_every_steps=3).run()
    assert seen == {"auto": 3} | {name: 3 if PROFILES[name].previews else 0 for name in PROFILES}
    assert seen["low-ram"] == 0  # the lowest-memory profile never spends memory on previews
    assert previews_for(req(profile="resident"), 0) == previews_for(req(profile="auto"), 0) == 0


def test_protocol_doc_covers_every_event_and_command():
    import re

    text = (ROOT / "docs" / "PROTOCOL.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `(\w+)` +\|", text, flags=re.MULTILINE))  # first cell of each table row
    assert rows == {*EVENT_TYPES, "cancel", "pause", "resume", "shutdown", "wake"}
