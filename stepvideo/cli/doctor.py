"""`stepvideo doctor [--json]`: check GPU, driver, torch, RAM, disk, ffmpeg, Qt and models, and
recommend a memory profile. Exit 0 when the app can run (even without a GPU), 1 when it cannot."""

from __future__ import annotations

import argparse
import json

from ..doctor import report as doctor


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("doctor", help="check this machine and recommend a memory profile")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    report = doctor.run_doctor()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(doctor.render_text(report))
    return report.exit_code
