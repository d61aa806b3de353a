"""The Queue page over 1,000 jobs with and without variation groups, printed as JSON.

- flat: 1,000 single jobs (what benchmarks/ui.py's open_queue_1000 measures);
- grouped: the same 1,000 jobs as 250 groups of 4 variations (a header row per group, expanded).
Each: the main window built and shown on the Queue page (open_window_s), a full reload of the table
(reload_s), and painting the visible table 20 times (paint_ms, mean per repaint). Target: open < 1 s.

Run: QT_QPA_PLATFORM=offscreen python benchmarks/queue_groups_ui.py [--out FILE]
Everything lives in a temporary folder; the user's queue and settings are not touched.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def isolate(root: Path, name: str) -> None:
    for var, sub in (("HOME", "home"), ("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"),
                     ("XDG_CACHE_HOME", "cache"), ("XDG_STATE_HOME", "state"), ("STEPVIDEO_DATA_DIR", f"data-{name}"),
                     ("STEPVIDEO_CONFIG_DIR", f"config-{name}")):
        (root / sub).mkdir(exist_ok=True)
        os.environ[var] = str(root / sub)
    os.environ["HF_HUB_OFFLINE"] = "1"


def measure(app, grouped: bool, n: int = 1000) -> dict:
    from stepvideo.api import GenerationRequest
    from stepvideo.jobs.store import JobQueue
    from stepvideo.jobs.variations import new_group_id
    from stepvideo_desktop.controller import Controller

    requests = [GenerationRequest(prompt=f"prompt number {i // 4}: a long description of a scene " * 2, seed=i)
                for i in range(n)]
    groups = [new_group_id() for _ in range(n // 4)]
    with JobQueue() as queue:
        queue.add_many(requests, groups=[groups[i // 4] for i in range(n)] if grouped else None)
    began = time.perf_counter()
    c = Controller(start_worker=False)
    c.window.resize(1280, 800)
    c.window.show()
    c.window.show_page("queue")
    app.processEvents()
    built = time.perf_counter() - began
    began = time.perf_counter()
    c.queue_model.set_jobs([])  # a full model reset, as on first open
    c.reload_queue()
    app.processEvents()
    reload_s = time.perf_counter() - began
    viewport = c.queue_view.table.viewport()
    began = time.perf_counter()
    for _ in range(20):
        viewport.repaint()
    paint_ms = (time.perf_counter() - began) / 20 * 1000
    rows = c.queue_view.groups.rowCount()
    c.shutdown()
    return {"jobs": n, "table_rows": rows, "open_window_s": round(built, 3), "reload_s": round(reload_s, 3),
            "paint_ms": round(paint_ms, 2), "target_open_s": 1.0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="stepvideo-groups-bench-") as tmp:
        isolate(Path(tmp), "flat")
        from stepvideo_desktop.app import make_application

        app = make_application([sys.argv[0]])
        results["flat"] = measure(app, grouped=False)
        isolate(Path(tmp), "grouped")
        results["grouped"] = measure(app, grouped=True)
    results["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                          "qpa": os.environ.get("QT_QPA_PLATFORM"), "date": time.strftime("%Y-%m-%d")}
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
