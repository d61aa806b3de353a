"""`stepvideo queue` for batch work: `add --variations N [--seed-step K]`, `export` and `edit`.

Kept apart from queue.py (the single-job verbs); queue.register calls `add_batch_verbs`. This module has no
`register` of its own, so the CLI's verb discovery does not take it for a top-level verb.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from ..api import GenerationRequest
from ..errors import InvalidRequest
from ..jobs.batch_export import EXPORT_CHOICES, export_jobs
from ..jobs.variations import MAX_VARIATIONS, add_variations
from ..presets import PRESETS, SIZES
from ..request_fields import request_changes, whole_number

RESETTABLE = ("steps", "cfg", "shift")  # `--steps default`: back to the preset's value


def add_variation_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variations", default=None, metavar="N",
                        help=f"queue N jobs with seeds s, s+K, … (1 to {MAX_VARIATIONS}), shown as one group")
    parser.add_argument("--seed-step", default=None, metavar="K", help="with --variations: seed increment (default 1)")


def queue_variations(args: argparse.Namespace, request: GenerationRequest, open_queue: Callable,
                     print_json: Callable[[Any], None]) -> int:
    count = 1 if args.variations is None else whole_number("--variations", args.variations, "a whole number")
    step = 1 if args.seed_step is None else whole_number("--seed-step", args.seed_step, "a whole number")
    with open_queue(args) as queue:
        jobs = add_variations(queue, request, count, step)
    if args.json:
        print_json([j.to_dict() for j in jobs])
    elif len(jobs) == 1:
        print(f"queued job {jobs[0].id}")
    else:
        seeds = [j.request["seed"] for j in jobs]
        print(f"queued {len(jobs)} variations ({jobs[0].id}–{jobs[-1].id}, seeds {seeds[0]}…{seeds[-1]}, "
              f"step {step}) as group {jobs[0].group_id}")
    return 0


def add_batch_verbs(verbs: argparse._SubParsersAction, open_queue: Callable) -> None:
    export = verbs.add_parser("export", help="write jobs as JSON Lines that `queue import` reads back")
    export.add_argument("file", help="FILE.jsonl")
    export.add_argument("--status", default="waiting", choices=EXPORT_CHOICES,
                        help="waiting: queued, paused and interrupted jobs (default); all: every job")
    export.add_argument("--force", action="store_true", help="replace FILE if it exists")
    export.set_defaults(handler=lambda a: _export(a, open_queue))

    edit = verbs.add_parser("edit", help="change the prompt or settings of a waiting, paused, interrupted or failed job")
    edit.add_argument("job_id", type=int)
    edit.add_argument("--prompt", "-p", default=None)
    edit.add_argument("--negative", default=None, help="negative prompt")
    suffix = edit.add_mutually_exclusive_group()
    suffix.add_argument("--suffix", default=None, help="text appended to the prompt")
    suffix.add_argument("--no-suffix", action="store_true", help="append nothing to the prompt")
    edit.add_argument("--preset", default=None, help=f"sampling preset: {', '.join(PRESETS)}")
    for name in RESETTABLE:
        edit.add_argument(f"--{name}", default=None, help="a value, or 'default' for the preset's")
    edit.add_argument("--size", default=None, help=f"HxW in pixels, or one of {', '.join(SIZES)}")
    edit.add_argument("--frames", default=None)
    edit.add_argument("--seed", default=None, help="whole number, or 'random'")
    edit.add_argument("--model", default=None)
    edit.add_argument("--revision", default=None)
    edit.add_argument("--transformer-model", default=None)
    edit.add_argument("--profile", default=None)
    edit.add_argument("--quantization", default=None)
    edit.add_argument("--output", "-o", default=None, help="mp4 path")
    edit.add_argument("--discard-checkpoint", action="store_true",
                      help="agree that editing a job with a checkpoint throws the checkpoint away")
    edit.set_defaults(handler=lambda a: _edit(a, open_queue))


def edit_changes(args: argparse.Namespace) -> dict[str, Any]:
    """The options the user gave, as GenerationRequest fields (one line naming the option when one is bad)."""
    words = ("prompt", "negative", "suffix", "preset", "steps", "cfg", "shift", "size", "frames", "seed", "model",
             "revision", "transformer_model", "profile", "quantization", "output")
    row = {w: getattr(args, w) for w in words if getattr(args, w) is not None}
    if args.no_suffix:
        row["suffix"] = ""
    reset = {w: None for w in RESETTABLE if str(row.get(w, "")).strip().lower() == "default"}
    for word in reset:
        del row[word]
    try:
        return request_changes(row) | reset
    except InvalidRequest as exc:
        raise InvalidRequest(f"--{exc}") from None


def _edit(args: argparse.Namespace, open_queue: Callable) -> int:
    changes = edit_changes(args)
    with open_queue(args) as queue:
        job = queue.edit(args.job_id, changes, discard_checkpoint=args.discard_checkpoint)
    names = ", ".join(sorted(changes))
    tail = f"; it is {job.status}: `stepvideo queue retry {job.id}` runs it again" if job.status == "failed" else ""
    print(f"job {job.id}: updated {names}{tail}")
    return 0


def _export(args: argparse.Namespace, open_queue: Callable) -> int:
    with open_queue(args) as queue:
        count = export_jobs(queue, args.file, args.status, replace=args.force)
    print(f"exported {count} job(s) to {args.file}")
    return 0
