"""The step ETA counts only the steps run in this attempt (a resumed job's ETA is not a few seconds)."""

from __future__ import annotations

import pytest

from stepvideo.engine.eta import AttemptClock, remaining_seconds


def test_remaining_seconds():
    assert remaining_seconds(30.0, 3, 7) == 70.0
    assert remaining_seconds(5.0, 0, 7) is None
    assert remaining_seconds(5.0, 1, 0) == 0.0


def test_attempt_clock_ignores_units_done_before_it_began():
    now = [100.0]
    clock = AttemptClock(lambda: now[0])
    assert clock.eta(5, 10) is None
    clock.begin(done_before=20)
    now[0] += 10
    assert clock.eta(21, 40) == 190.0  # one unit in 10 s, 19 left


def test_step_eta_after_a_resume_averages_only_this_attempts_steps():
    pytest.importorskip("torch")
    from stepvideo.engine import pipeline

    events: list[dict] = []
    now = [1000.0]
    on_step = pipeline._step_reporter(pipeline._Run(events.append), None, 40, clock=lambda: now[0])
    now[0] += 3.0  # loading the checkpoint and the model before the first step
    for step in range(21, 26):  # resumed at step 20 of 40; each step takes 10 s
        now[0] += 10.0
        on_step(step, 40, 10.0, lambda: None)
    etas = [e["eta_seconds"] for e in events if e["type"] == "step"]
    assert etas == [190.0, 180.0, 170.0, 160.0, 150.0]  # was 1 s, 2 s, 3 s… when resumed steps counted


def test_step_eta_of_a_fresh_run():
    pytest.importorskip("torch")
    from stepvideo.engine import pipeline

    events: list[dict] = []
    now = [0.0]
    on_step = pipeline._step_reporter(pipeline._Run(events.append), None, 4, clock=lambda: now[0])
    for step, seconds in zip(range(1, 5), (4.0, 2.0, 2.0, 2.0)):
        now[0] += seconds
        on_step(step, 4, seconds, lambda: None)
    assert [e["eta_seconds"] for e in events] == [12.0, 6.0, 2.7, 0.0]
