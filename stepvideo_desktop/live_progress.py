"""The running job's progress, folded from the worker's events: the one source of truth that the job
card, the queue table and the status bar all render, so they cannot disagree about the stage.

`advance(progress, event)` is a pure function (no widgets): stage events set the stage, `step` events
count denoising steps, `decode_progress` events count units of decode work (chunks × tiles) with their
own ETA. ETAs always come from the worker's events, which know about resumed steps; the app never
divides elapsed time by steps itself.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from stepvideo_desktop.views.widgets import human_duration

STAGE_WORDS = {"load": "Loading", "encode_text": "Encoding the prompt", "denoise": "Denoising",
               "decode": "Decoding video", "write": "Writing the mp4"}
COUNTED_STAGES = ("denoise", "decode")  # stages whose events say how far they are


@dataclass(frozen=True)
class LiveProgress:
    job_id: int
    stage: str | None = None  # the engine's stage name
    part: str | None = None  # which component a load stage loads
    step: int | None = None  # denoising steps done (kept through decode: the Step row keeps saying it)
    steps: int | None = None
    done: int | None = None  # units of decode work (chunks × tiles) done
    total: int | None = None
    eta_seconds: float | None = None  # the worker's estimate for the whole job; None until it has one
    seconds_per_step: float | None = None
    chunk: tuple[int, int] | None = None  # decode: (chunk, chunks)
    tile: tuple[int, int] | None = None  # decode: (tile, tiles)
    resumed_from: int | None = None  # the checkpoint step this run started from

    @property
    def fraction(self) -> float | None:
        """How far the current stage is, 0..1 (denoising, then decoding); None when it cannot say."""
        if self.stage in ("decode", "write"):
            return min(self.done / self.total, 1.0) if self.done is not None and self.total else 0.0
        if self.step is None or not self.steps:
            return None
        return min(self.step / self.steps, 1.0)

    def stage_text(self) -> str:
        if self.stage is None:
            return "Starting"
        words = STAGE_WORDS.get(self.stage, self.stage.replace("_", " ").capitalize())
        if self.stage == "load" and self.part:
            return f"{words} ({self.part})"
        if self.stage == "decode" and self.total:
            parts = [f"part {self.done}/{self.total}"]
            parts += [f"{name} {pair[0]}/{pair[1]}" for name, pair in (("chunk", self.chunk), ("tile", self.tile))
                      if pair and pair[1] > 1]  # "tile 1/1" says nothing
            return f"{words} · {' · '.join(parts)}"
        return words

    def counter_text(self) -> str:
        """The denoising step, `21 / 40`, with where a resume started."""
        if self.step is None or self.steps is None:
            return "—"
        text = f"{self.step} / {self.steps}"
        if self.resumed_from:
            text += f" (resumed from step {self.resumed_from})"
        return text

    def eta_text(self) -> str:
        if self.eta_seconds is None:
            return "estimating…" if self.stage in COUNTED_STAGES else "—"
        return human_duration(self.eta_seconds)

    def status_line(self) -> str:
        """The status bar's words for the same state the job card shows."""
        line = f"Job {self.job_id}: {self.stage_text()}"
        if self.stage == "denoise" and self.step is not None and self.steps:
            line += f" · step {self.step}/{self.steps}"
        if self.stage in COUNTED_STAGES:
            line += f" · ETA {self.eta_text()}"
        return line


def advance(progress: LiveProgress | None, ev: dict) -> LiveProgress | None:
    """The progress after one worker event (None when no job is running). Pure."""
    kind, job_id = ev.get("type"), ev.get("job_id")
    if kind == "job_started" and job_id is not None:
        return LiveProgress(job_id, resumed_from=ev.get("resumed_from") or None)
    if kind in ("job_done", "job_failed", "job_paused", "job_interrupted"):
        return None
    if progress is None or (job_id is not None and job_id != progress.job_id):
        return progress
    if kind == "stage" and ev.get("state") == "started":
        name = ev.get("name")
        changes: dict = {"stage": name, "part": ev.get("part"), "eta_seconds": None}
        if name == "denoise" and ev.get("steps"):
            changes.update(step=progress.resumed_from or 0, steps=ev["steps"])
        if name == "decode":
            changes.update(done=None, total=None, chunk=None, tile=None)
        return dataclasses.replace(progress, **changes)
    if kind == "step":
        start = ev.get("resumed_from", ev.get("start_step"))
        return dataclasses.replace(progress, stage="denoise", part=None, step=ev["i"], steps=ev["n"],
                                   eta_seconds=ev.get("eta_seconds"), seconds_per_step=ev.get("seconds_per_step"),
                                   resumed_from=start or progress.resumed_from)
    if kind == "decode_progress":
        return dataclasses.replace(progress, stage="decode", part=None, done=ev.get("done"), total=ev.get("total"),
                                   eta_seconds=ev.get("eta_seconds"), chunk=_pair(ev, "chunk", "chunks"),
                                   tile=_pair(ev, "tile", "tiles"))
    return progress


def _pair(ev: dict, index: str, count: str) -> tuple[int, int] | None:
    if ev.get(index) is None or not ev.get(count):
        return None
    return int(ev[index]), int(ev[count])
