"""The real pipeline, plus a test seam (selected with STEPVIDEO_WORKER_ENGINE; tests only): a job whose
prompt contains "[block]" stops at its first step event after a checkpoint exists, writes
FAKE_BLOCK_MARKER, and waits to be SIGKILLed."""

from __future__ import annotations

import os
import time
from pathlib import Path

from stepvideo.engine.pipeline import EngineSession, RunControl
from stepvideo.engine.pipeline import generate as _generate

__all__ = ["EngineSession", "RunControl", "generate"]


def generate(request, on_event=None, should_cancel=None, *, control=None, session=None):
    marker = os.environ.get("FAKE_BLOCK_MARKER")

    def events(ev):
        if on_event:
            on_event(ev)
        if (ev.get("type") == "step" and "[block]" in request.prompt and marker and not Path(marker).exists()
                and control is not None and control.checkpoints.exists()):
            Path(marker).write_text(str(ev["i"]))
            while True:
                time.sleep(0.05)

    return _generate(request, events, should_cancel, control=control, session=session)
