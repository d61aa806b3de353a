"""Decode progress: the tiled executor reports every tile, the pipeline turns that into
`decode_progress` events with an ETA, they reach the worker's event stream, and a stop during the
decode acts within one unit and resumes at the decode."""

from __future__ import annotations

import time

import pytest

torch = pytest.importorskip("torch")

from test_tiling import LocalVAE  # noqa: E402  a VAE cheap enough to decode dozens of tiles

from stepvideo.api import EVENT_TYPES, GenerationRequest  # noqa: E402
from stepvideo.errors import Cancelled  # noqa: E402
from stepvideo.jobs.store import JobQueue  # noqa: E402
from stepvideo.jobs.worker import Worker  # noqa: E402
from stepvideo.memory.tiling import tiled_decode  # noqa: E402


def test_tiled_decode_reports_every_tile_and_stops_between_tiles():
    vae = LocalVAE()
    z = torch.randn(1, 6, 64, 3, 4)  # 2 chunks; 2-latent tiles overlapping by 1: 2 × 3 tiles
    seen = []
    tiled_decode(vae, z, tile=2, overlap=1, on_tile=lambda *unit: seen.append(unit))
    assert seen == [(c, 2, t, 6) for c in (1, 2) for t in range(1, 7)]
    untiled = []
    tiled_decode(vae, z, tile=8, overlap=2, on_tile=lambda *unit: untiled.append(unit))
    assert untiled == [(1, 2, 1, 1), (2, 2, 1, 1)]
    stopped = []
    with pytest.raises(Cancelled):
        tiled_decode(vae, z, tile=2, overlap=1, on_tile=lambda *unit: stopped.append(unit),
                     should_cancel=lambda: len(stopped) >= 4)
    assert len(stopped) == 4  # the fifth tile of chunk 1 never ran


def test_pipeline_decode_emits_decode_progress_with_an_eta():
    from stepvideo.engine import pipeline

    events = []
    run = pipeline._Run(events.append)
    job = pipeline._Job(None, None, None, None, run, lambda: False)
    vae = LocalVAE()
    z = torch.randn(1, 6, 64, 4, 6)
    pipeline._decode(vae, z, torch.device("cpu"), torch.float32, lambda: False, 2,
                     pipeline._decode_reporter(job, clock=lambda: float(len(events))),  # one second a unit
                     write=lambda _frames: None)
    progress = [e for e in events if e["type"] == "decode_progress"]
    assert "decode_progress" in EVENT_TYPES
    assert [e["done"] for e in progress] == list(range(31)) and {e["total"] for e in progress} == {30}
    first, second, last = progress[0], progress[1], progress[-1]
    assert (first["chunk"], first["tile"], first["chunks"], first["tiles"], first["eta_seconds"]) == (0, 0, 2, 15, None)
    assert (second["chunk"], second["tile"]) == (1, 1) and second["eta_seconds"] == 29.0  # 1 s a unit, 29 left
    assert (progress[16]["chunk"], progress[16]["tile"]) == (2, 1)
    assert (last["chunk"], last["tile"], last["eta_seconds"]) == (2, 15, 0.0)
    assert set(first) == {"v", "type", "time", "done", "total", "chunk", "chunks", "tile", "tiles", "eta_seconds"}


@pytest.fixture
def queue(sandbox):
    with JobQueue() as q:
        yield q


def test_decode_progress_reaches_the_worker_stream_and_a_pause_during_decode_resumes_there(queue, sandbox, tiny_model):
    job = queue.add(GenerationRequest(prompt="a red ball", model=str(tiny_model), height=32, width=32, frames=34,
                                      steps=2, seed=3, output=str(sandbox / "ball.mp4")))
    events: list[dict] = []

    def emit(ev: dict) -> None:
        events.append(ev)
        if ev["type"] == "decode_progress" and ev["done"] == 1 and not paused_once:
            paused_once.append(ev)
            worker.handle_command({"cmd": "pause"})

    paused_once: list[dict] = []
    worker = Worker(queue, emit, mode="drain", memory_interval_s=5)
    worker.run()
    progress = [e for e in events if e["type"] == "decode_progress"]
    assert [(e["done"], e["total"], e["chunk"], e["chunks"], e["tiles"]) for e in progress] == [
        (0, 2, 0, 2, 1), (1, 2, 1, 2, 1)]
    assert all(e["job_id"] == job.id for e in progress)
    ended = [e for e in events if e["type"] in ("job_done", "job_paused", "job_failed")]
    assert ended[-1]["type"] == "job_paused" and ended[-1]["step"] == 2, ended  # the last step's checkpoint
    assert "during the decode (chunk 1 of 2)" in ended[-1]["message"]
    assert queue.get(job.id).status == "paused" and not (sandbox / "ball.mp4").exists()

    queue.resume(job.id)
    events.clear()
    Worker(queue, events.append, mode="drain", memory_interval_s=5).run()
    started = next(e for e in events if e["type"] == "job_started")
    assert started["resume_from_step"] == 2
    assert not [e for e in events if e["type"] == "step"]  # straight to the decode
    assert [e["done"] for e in events if e["type"] == "decode_progress"] == [0, 1, 2]
    assert events[-1]["type"] == "job_done" and (sandbox / "ball.mp4").is_file()


def test_decode_tiles_extend_the_stop_supervisors_allowance(sandbox):
    """Each finished decode unit moves the job's step_at and seconds_per_step, so `queue cancel --wait`
    and the desktop wait for a slow tile as they wait for a step (supervisor.stop_deadline)."""
    from stepvideo.jobs.supervisor import stop_deadline

    queue = JobQueue(sandbox / "data" / "queue.sqlite3")
    job = queue.add(GenerationRequest(prompt="a slow decode", height=32, width=32, frames=17, steps=2))
    on_event = Worker(queue, lambda _e: None)._job_events(job.id)
    on_event({"type": "step", "i": 2, "n": 2, "seconds_per_step": 0.5, "eta_seconds": 0})
    after_step = queue.get(job.id)
    on_event({"type": "decode_progress", "done": 0, "total": 2, "chunk": 0, "chunks": 1, "tile": 0, "tiles": 2,
              "eta_seconds": None})
    time.sleep(0.3)
    on_event({"type": "decode_progress", "done": 1, "total": 2, "chunk": 1, "chunks": 1, "tile": 1, "tiles": 2,
              "eta_seconds": 0.3})
    after_tile = queue.get(job.id)
    assert after_tile.step_at > after_step.step_at
    assert 0.3 <= after_tile.seconds_per_step < 5  # the tile's own duration, not the last step's 0.5 s
    assert stop_deadline(after_tile.step_at, 30, after_tile.step_at, after_tile.seconds_per_step) == \
        after_tile.step_at + after_tile.seconds_per_step + 30
    assert after_tile.step == 2  # the denoise step count is left as it was
