"""Render docs/screenshots/queue-variations.png: the Queue page with a group of four variations.

Fills a throw-away queue (in a temporary data folder, never the user's) and runs the app's own
`--screenshot` mode on it:  python docs/screenshots/queue_variations.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def fill(queue_db: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from stepvideo.api import GenerationRequest
    from stepvideo.jobs.store import JobQueue
    from stepvideo.jobs.variations import add_variations

    with JobQueue(queue_db) as q:
        first = q.add(GenerationRequest(prompt="A red fox trots through fresh snow at dawn", seed=42, preset="turbo"))
        group = add_variations(q, GenerationRequest(prompt="An orange cat runs across a sunlit meadow, slow motion", seed=1000), 4)
        q.add(GenerationRequest(prompt="Waves breaking on black volcanic sand, aerial view", seed=7, frames=102))
        for job in (first, group[0]):
            q.claim_next(pid=os.getpid())
            q.mark_progress(job.id, step=50, steps=50)
            q.mark_done(job.id, {"video": f"/videos/stepvideo-{job.id}.mp4"})
        q.claim_next(pid=os.getpid())
        q.mark_progress(group[1].id, step=30, steps=50)
        q.mark_checkpoint(group[1].id, 30)
        q.mark_paused(group[1].id, "paused by the user")


def main() -> int:
    out = ROOT / "docs" / "screenshots" / "queue-variations.png"
    with tempfile.TemporaryDirectory(prefix="stepvideo-shot-") as tmp:
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=tmp, XDG_CONFIG_HOME=f"{tmp}/config",
                   XDG_DATA_HOME=f"{tmp}/data", XDG_STATE_HOME=f"{tmp}/state", XDG_CACHE_HOME=f"{tmp}/cache",
                   STEPVIDEO_DATA_DIR=f"{tmp}/data", STEPVIDEO_CONFIG_DIR=f"{tmp}/config",
                   STEPVIDEO_VIDEOS_DIR=f"{tmp}/videos", HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
        Path(env["STEPVIDEO_DATA_DIR"]).mkdir(parents=True)
        os.environ.update({k: env[k] for k in ("STEPVIDEO_DATA_DIR",)})
        fill(Path(env["STEPVIDEO_DATA_DIR"]) / "queue.sqlite3")
        return subprocess.run([sys.executable, "-m", "stepvideo_desktop", "--screenshot", str(out), "--page", "queue",
                               "--theme", "light"], env=env, cwd=ROOT).returncode


if __name__ == "__main__":
    raise SystemExit(main())
