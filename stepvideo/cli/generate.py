"""`stepvideo generate`: one video from the command line, with progress, printing the mp4's path."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._gpu_arg import add_gpu_argument, apply_gpu_argument
from ._progress_text import describe_decode_progress
from ._request_args import add_request_arguments, request_from_args


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "generate", help="make one video", description="Make one video from a prompt; its path is printed on stdout.",
        epilog="exit status: 0 done; 1 the video could not be written (no space, folder gone) or another error; "
               "2 bad arguments or missing/mismatched weights; 3 the request does not fit in memory; "
               "130 interrupted (Ctrl-C)")
    add_request_arguments(parser)
    add_gpu_argument(parser)
    parser.add_argument("--json-events", action="store_true", help="print every progress event as a JSON line on stdout")
    parser.set_defaults(handler=run)


class ProgressPrinter:
    """Human progress on stderr: one line per stage, a live step counter on a terminal."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr  # looked up now: sys.stderr may have been replaced since import
        self.live = self.stream.isatty()

    def __call__(self, e: dict[str, Any]) -> None:
        kind = e["type"]
        if kind == "stage" and e["state"] == "started":
            label = e["name"].replace("_", " ") + (f" ({e['part']})" if e.get("part") else "")
            self.stream.write(f"{label}…\n")
        elif kind == "step":
            line = f"  step {e['i']}/{e['n']} · {e['seconds_per_step']:.2f} s/step · ETA {e['eta_seconds']:.0f} s"
            if self.live:
                self.stream.write("\r" + line + ("\n" if e["i"] == e["n"] else ""))
            elif e["i"] == e["n"] or e["i"] % 10 == 0:
                self.stream.write(line + "\n")
        elif kind == "decode_progress" and e["done"]:
            line = "  " + describe_decode_progress(e)
            last = e["done"] == e["total"]
            if self.live:
                self.stream.write("\r\033[K" + line + ("\n" if last else ""))
            elif last or e["tile"] == e["tiles"]:  # not a terminal: one line per chunk
                self.stream.write(line + "\n")
        elif kind == "log":
            self.stream.write(f"note: {e['message']}\n")
        self.stream.flush()


def print_json_event(e: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(e, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    request = request_from_args(args)
    apply_gpu_argument(args)  # before torch starts CUDA
    from ..engine.pipeline import generate  # imports torch: only once the arguments are known to be good

    result = generate(request, on_event=print_json_event if args.json_events else ProgressPrinter())
    if args.json_events:
        print_json_event({"v": 1, "type": "result", **result.to_dict()})
    else:
        print(result.video_path)
    return 0
