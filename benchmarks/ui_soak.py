"""UI soak: the real main window, offscreen, for --seconds (default 600) while the real worker runs the tiny
model job after job and the memory chart updates once a second, printed as JSON:

- alive: the window process was still running at the end and exited cleanly (issue 10: PySide6 6.12.0 on
  Python 3.11 aborted it after ~3 minutes with "Fatal Python error: none_dealloc");
- rss start/end/max of the window process, sys.getrefcount(None) start/end/min in it (on Python < 3.12 a
  falling count means some C extension drops references to None: the road to that abort);
- jobs completed/failed, memory chart paints seen.

Run: nice python benchmarks/ui_soak.py [--seconds 600] [--out benchmarks/results/x.json]
The window runs in a child process (so a crash is reported, not suffered), in a temporary folder: the
user's queue, settings, videos and models are not touched. A benchmark, not a CI test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BEAT_S = 5  # a heartbeat line from the window process this often


def child(args: argparse.Namespace) -> int:
    """The window process: runs the app's own event loop and prints `SOAK {json}` heartbeats."""
    import itertools

    import psutil
    from PySide6 import __version__ as pyside_version
    from PySide6.QtCore import QEvent, QObject, QTimer, qVersion

    from stepvideo_desktop.app import make_application

    app = make_application([sys.argv[0]])
    from stepvideo.api import GenerationRequest
    from stepvideo_desktop.controller import Controller

    c = Controller(start_worker=True)
    c.store.update(active_model=args.model, previews=True, preview_every_steps=5)
    c.window.resize(1280, 800)
    c.window.show()
    c.window.show_page("queue")  # the busiest page: table, live chart, previews

    class PaintCounter(QObject):
        count = 0

        def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt API)
            if event.type() == QEvent.Type.Paint:
                self.count += 1
            return False

    chart = c.queue_view.detail.chart
    paints = PaintCounter()
    chart.installEventFilter(paints)
    me, began, seeds = psutil.Process(), time.monotonic(), itertools.count()

    def feed() -> None:  # one job waiting or running at all times
        counts = c.queue.counts()
        if counts["queued"] + counts["running"] == 0:
            request = GenerationRequest(prompt="a paper boat drifting down a rainy street", model=args.model,
                                        height=32, width=32, frames=17, steps=args.steps, seed=next(seeds))
            if c.add_job(request) is None:
                print(f"could not queue a job: {c.composer.error.text()}", file=sys.stderr, flush=True)
                app.exit(2)

    def beat(final: bool = False) -> None:
        counts = c.queue.counts()
        worker = c.engine.pid
        try:
            worker_rss = psutil.Process(worker).memory_info().rss if worker else None
        except psutil.Error:
            worker_rss = None
        line = {"t": round(time.monotonic() - began, 1), "final": final, "rss": me.memory_info().rss,
                "worker_rss": worker_rss, "none_refs": sys.getrefcount(None), "done": counts["done"],
                "failed": counts["failed"], "chart_paints": paints.count, "chart_points": len(chart.points),
                "pyside6": pyside_version, "qt": qVersion()}
        print("SOAK " + json.dumps(line), flush=True)

    beat()
    feeder = QTimer(interval=500)
    feeder.timeout.connect(feed)
    feeder.start()
    beats = QTimer(interval=BEAT_S * 1000)
    beats.timeout.connect(beat)
    beats.start()
    # exit, not quit: quit closes the window first, and closing while a job runs asks the user what to do.
    QTimer.singleShot(int(args.seconds * 1000), lambda: app.exit(0))
    code = app.exec()
    feeder.stop()
    beats.stop()
    beat(final=True)
    c.shutdown()
    return code


def mb(n: int | None) -> float | None:
    return round(n / 2**20, 1) if n else None


def summarise(args: argparse.Namespace, beats: list[dict], code: int, stderr_tail: list[str]) -> dict:
    first, last = (beats[0], beats[-1]) if beats else ({}, {})
    alive = code == 0 and bool(last.get("final"))
    result = {
        "benchmark": "ui_soak",
        "duration_s": args.seconds,
        "ran_s": last.get("t"),
        "alive": alive,
        "exit_code": code,
        "rss_start_mb": mb(first.get("rss")),
        "rss_end_mb": mb(last.get("rss")),
        "rss_max_mb": mb(max((b["rss"] for b in beats), default=0)),
        "worker_rss_end_mb": mb(last.get("worker_rss")),
        "none_refcount_start": first.get("none_refs"),
        "none_refcount_end": last.get("none_refs"),
        "none_refcount_min": min((b["none_refs"] for b in beats), default=None),
        "jobs_completed": last.get("done"),
        "jobs_failed": last.get("failed"),
        "chart_paints": last.get("chart_paints"),
        "chart_points_end": last.get("chart_points"),
        "heartbeats": len(beats),
        "job": {"height": 32, "width": 32, "frames": 17, "steps": args.steps, "model": "tiny random (make-tiny-model)"},
        "versions": {"pyside6": first.get("pyside6"), "qt": first.get("qt"), "python": platform.python_version()},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "qpa": os.environ.get("QT_QPA_PLATFORM"),
                    "date": time.strftime("%Y-%m-%d")},
    }
    if not alive:
        result["stderr_tail"] = stderr_tail
    return result


def run(args: argparse.Namespace) -> dict:
    from benchmarks.ui import isolate

    with tempfile.TemporaryDirectory(prefix="stepvideo-ui-soak-") as tmp:
        root = Path(tmp)
        isolate(root)
        os.environ.setdefault("OMP_NUM_THREADS", "1")  # the worker: one core is plenty for the tiny model
        model = root / "tiny"
        subprocess.run([sys.executable, "-m", "stepvideo", "make-tiny-model", str(model)], check=True,
                       stdout=subprocess.DEVNULL)
        err_path = root / "window.stderr"
        with open(err_path, "w") as err:
            proc = subprocess.Popen([sys.executable, __file__, "--child", "--model", str(model),
                                     "--seconds", str(args.seconds), "--steps", str(args.steps)],
                                    cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True)
            # A hung window (or its worker) is killed, with its whole process group, well after the end.
            watchdog = threading.Timer(args.seconds + 300, os.killpg, (proc.pid, signal.SIGKILL))
            watchdog.start()
            beats = [json.loads(line[5:]) for line in proc.stdout if line.startswith("SOAK ")]
            code = proc.wait()
            watchdog.cancel()
            try:  # a window that died leaves its worker running: stop it before its folder goes
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        stderr_tail = err_path.read_text(errors="replace").splitlines()[-15:]
    return summarise(args, beats, code, stderr_tail)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="how long the window runs (default 600)")
    parser.add_argument("--steps", type=int, default=10, help="denoising steps per tiny job")
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    result = run(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0 if result["alive"] else 1


if __name__ == "__main__":
    sys.exit(main())
