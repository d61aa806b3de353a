"""A stand-in engine for worker protocol tests (selected with STEPVIDEO_WORKER_ENGINE; tests only).

Deterministic "denoising" on a small tensor with the real CheckpointStore: stage and step events,
cancel and pause between steps, checkpoints every K steps, resume from the checkpoint. A prompt
containing "[block]" stops after the first checkpoint (once per FAKE_BLOCK_MARKER file) and waits to
be killed, so a test can SIGKILL the worker mid-job at a known point.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from stepvideo import paths
from stepvideo.api import GenerationResult, event
from stepvideo.errors import Cancelled, Paused

SESSIONS: list[EngineSession] = []


@dataclass
class RunControl:
    should_pause: Any = None
    checkpoints: Any = None
    checkpoint_every_steps: int = 5
    checkpoint_every_seconds: float = 60.0
    preview_every_steps: int = 0
    preview_dir: Path | None = None


class EngineSession:
    def __init__(self) -> None:
        SESSIONS.append(self)
        self.jobs = 0
        self.drops = 0

    def drop_all(self) -> None:
        self.drops += 1


def generate(request, on_event=None, should_cancel=None, *, control=None, session=None):
    emit = on_event or (lambda e: None)
    session.jobs += 1
    emit(event("log", level="info", message=f"session {id(session)} job {session.jobs}"))
    delay = float(os.environ.get("FAKE_STEP_SECONDS", "0.01"))
    n = request.effective_steps
    emit(event("stage", name="denoise", state="started", steps=n))
    start, x = 0, torch.randn(4, 8, generator=torch.Generator().manual_seed(request.seed))
    saved = control.checkpoints.load() if control and control.checkpoints else None
    if saved is not None:
        start, x = saved.step, saved.latents
    for i in range(start, n):
        if should_cancel and should_cancel():
            raise Cancelled(f"cancelled before step {i + 1}/{n}")
        if control and control.should_pause and control.should_pause():
            control.checkpoints.save(i, x, None, {"fake": True})
            raise Paused(f"paused at step {i}/{n}")
        time.sleep(delay)
        x = x * 0.9 + torch.sin(x * (i + 1))
        done = i + 1
        if control and control.checkpoints and done < n and done % control.checkpoint_every_steps == 0:
            control.checkpoints.save(done, x, None, {"fake": True})
            marker = os.environ.get("FAKE_BLOCK_MARKER")
            if "[block]" in request.prompt and marker and not Path(marker).exists():
                Path(marker).write_text(str(done))
                while True:  # wait for SIGKILL
                    time.sleep(0.05)
        emit(event("step", i=done, n=n, seconds_per_step=delay, eta_seconds=delay * (n - done)))
    emit(event("stage", name="denoise", state="finished"))
    out = Path(request.output) if request.output else paths.ensure(paths.videos_dir()) / f"fake-{time.time_ns()}.bin"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(x.numpy().tobytes())
    if control and control.checkpoints:
        control.checkpoints.clear()
    return GenerationResult(video_path=str(out), sidecar_path=str(out) + ".json", seconds=0.0, seed=request.seed,
                            frames=request.frames)
