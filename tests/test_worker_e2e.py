"""End to end on the tiny model (CPU): the real pipeline behind the worker. A SIGKILLed job resumes
from its checkpoint and a paused job resumes, both to frames identical to an uninterrupted run."""

from __future__ import annotations

import hashlib
import signal
import time
from pathlib import Path

import imageio_ffmpeg
import pytest
from worker_process import WorkerProcess

from stepvideo.api import GenerationRequest
from stepvideo.jobs.store import JobQueue
from stepvideo.jobs.worker import Worker

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from stepvideo.testing.tiny_model import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "stepvideo-t2v")


@pytest.fixture
def queue(sandbox):
    with JobQueue() as q:
        yield q


def frames_hash(video: str | Path) -> str:
    """Hash of the decoded frames (what a viewer sees), not of the container bytes."""
    reader = imageio_ffmpeg.read_frames(str(video))
    next(reader)  # metadata
    digest = hashlib.sha256()
    count = 0
    for frame in reader:
        digest.update(frame)
        count += 1
    assert count == 17
    return digest.hexdigest()


def req(model: Path, prompt: str, out: Path, steps: int = 4, seed: int = 11) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, model=str(model), height=32, width=32, frames=17, steps=steps,
                             seed=seed, output=str(out))


def test_sigkill_mid_job_two_then_resume_is_bit_identical(queue, sandbox, tiny_model):
    one = queue.add(req(tiny_model, "a red ball", sandbox / "one.mp4", steps=2))
    two = queue.add(req(tiny_model, "a cat on a sofa [block]", sandbox / "two.mp4", steps=6))
    # job three: the same video as job two (the prompt marker aside, which the blocking seam reads),
    # never interrupted — the reference
    three = queue.add(req(tiny_model, "a cat on a sofa [block]", sandbox / "three.mp4", steps=6))
    marker = sandbox / "blocked"
    env = {"FAKE_BLOCK_MARKER": str(marker)}
    args = ("--checkpoint-every-steps", "2")
    worker = WorkerProcess(queue.path, *args, engine="worker_engine_blocking", env=env)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert time.monotonic() < deadline and worker.proc.poll() is None, worker.stderr()
        time.sleep(0.05)
    worker.proc.send_signal(signal.SIGKILL)
    worker.kill()

    assert queue.get(one.id).status == "done"
    assert queue.recover_if_no_worker() == [two.id]
    interrupted = queue.get(two.id)
    assert interrupted.status == "interrupted" and interrupted.checkpoint_step == 2
    assert not (sandbox / "two.mp4").exists()

    again = WorkerProcess(queue.path, *args, engine="worker_engine_blocking", env=env)
    assert again.finish(timeout=180) == 0, again.stderr()
    started = next(e for e in again.events if e["type"] == "job_started" and e["job_id"] == two.id)
    assert started["resume_from_step"] == 2
    assert [e["i"] for e in again.of_job(two.id) if e["type"] == "step"] == [3, 4, 5, 6]
    assert [e["i"] for e in again.of_job(three.id) if e["type"] == "step"] == [1, 2, 3, 4, 5, 6]
    for job in (one, two, three):
        assert queue.get(job.id).status == "done"
    assert frames_hash(sandbox / "two.mp4") == frames_hash(sandbox / "three.mp4")
    assert not list(queue.checkpoint_dir.glob("*.safetensors"))


def test_pause_resume_equals_never_paused_and_cancel(queue, sandbox, tiny_model):
    import stepvideo.engine.pipeline as engine

    paused = queue.add(req(tiny_model, "waves at dusk", sandbox / "paused.mp4", steps=5))
    plain = queue.add(req(tiny_model, "waves at dusk", sandbox / "plain.mp4", steps=5))
    cancelled = queue.add(req(tiny_model, "waves at dusk", sandbox / "cancelled.mp4", steps=5))
    events: list[dict] = []
    worker: Worker

    def emit(ev):
        events.append(ev)
        if ev["type"] == "step" and ev["i"] == 2 and ev["job_id"] in (paused.id, cancelled.id):
            worker.handle_command({"cmd": "pause" if ev["job_id"] == paused.id else "cancel"})

    worker = Worker(queue, emit, engine=engine, checkpoint_every_steps=100, preview_every_steps=2,
                    request_poll_interval_s=0)
    assert worker.run() == 3
    got = queue.get(paused.id)
    assert got.status == "paused" and got.checkpoint_step == 2
    assert queue.get(cancelled.id).status == "cancelled" and not queue.checkpoints(cancelled.id).exists()
    assert not (sandbox / "cancelled.mp4").exists()
    previews = [e for e in events if e["type"] == "preview" and e["job_id"] == plain.id]
    assert previews and all(Path(e["path"]).parent == queue.preview_dir(plain.id) for e in previews)
    assert all(Path(e["path"]).is_file() for e in previews)

    queue.resume(paused.id)
    events.clear()
    assert worker.run() == 1
    assert [e["i"] for e in events if e["type"] == "step"] == [3, 4, 5]
    assert queue.get(paused.id).status == "done"
    assert frames_hash(sandbox / "paused.mp4") == frames_hash(sandbox / "plain.mp4")
