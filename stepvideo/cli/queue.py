"""`stepvideo queue …`: add, list, show, cancel, retry, pause, resume, remove, move, duplicate, import, run;
export and edit live in queue_batch.py."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ..display_text import for_display
from ..jobs.batch_files import import_file
from ..jobs.liveness import reap_dead_workers
from ..jobs.store import Job, JobQueue
from ..jobs.supervisor import DEFAULT_GRACE_S, check_grace, stop_job
from ..jobs.transitions import STOP_ACTIONS
from ._gpu_arg import add_gpu_argument, apply_gpu_argument
from ._progress_text import describe_decode_progress
from ._request_args import add_request_arguments, request_from_args
from .queue_batch import add_batch_verbs, add_variation_arguments, queue_variations
from .queue_import_folder import add_import_folder_verb


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("queue", help="the job queue shared with the desktop app")
    parser.add_argument("--queue", dest="queue_db", default=None, help="queue database (default: the app's)")
    verbs = parser.add_subparsers(dest="queue_verb", metavar="ACTION", parser_class=type(parser))
    verbs.required = True

    add = verbs.add_parser("add", help="queue one video")
    add_request_arguments(add)
    add_variation_arguments(add)
    add.add_argument("--json", action="store_true", help="print the job as JSON")
    add.set_defaults(handler=_add)

    imp = verbs.add_parser("import", help="queue a batch: a CSV or JSON Lines file with per-row settings, or a "
                                          "text file with one prompt per line; the options are the shared settings")
    imp.add_argument("file", help="FILE.csv (a header row names the columns), FILE.jsonl (one JSON object per line) "
                                  "or a UTF-8 text file, one prompt per line")
    add_request_arguments(imp, prompt=False, output=False)
    imp.add_argument("--json", action="store_true")
    imp.set_defaults(handler=_import)
    add_import_folder_verb(verbs)

    lst = verbs.add_parser("list", help="every job in queue order")
    lst.add_argument("--json", action="store_true", help="JSON with id, status, request, outputs, … of every job")
    lst.add_argument("--status", action="append", default=None, help="only jobs with this status (repeatable)")
    lst.set_defaults(handler=_list)

    show = verbs.add_parser("show", help="one job, as JSON")
    show.add_argument("job_id", type=int)
    show.set_defaults(handler=_show)

    for name, helptext in (("cancel", "cancel a job (a running one stops after its current step)"),
                           ("retry", "queue a failed, cancelled or interrupted job again"),
                           ("pause", "hold a job (a running one stops after its current step, keeping a checkpoint)"),
                           ("resume", "put a paused job back in line"),
                           ("remove", "delete a job that is not running (its videos stay)")):
        p = verbs.add_parser(name, help=helptext)
        p.add_argument("job_ids", type=int, nargs="+", metavar="JOB_ID")
        if name in STOP_ACTIONS:
            p.add_argument("--wait", action="store_true",
                           help="wait until a running job stopped; kill a worker that does not answer in time")
            p.add_argument("--grace", type=float, default=None, metavar="SECONDS",
                           help=f"with --wait (implied): how long past the current step to wait before killing "
                                f"the worker (default {DEFAULT_GRACE_S:g})")
        p.set_defaults(handler=_action, action=name)

    move = verbs.add_parser("move", help="move a job to a place in the queue (0 = first)")
    move.add_argument("job_id", type=int)
    move.add_argument("index", type=int)
    move.set_defaults(handler=_move)

    dup = verbs.add_parser("duplicate", help="queue a copy of a job (optionally with another seed)")
    dup.add_argument("job_id", type=int)
    dup.add_argument("--seed", type=int, default=None)
    dup.set_defaults(handler=_duplicate)

    run = verbs.add_parser(
        "run", help="run queued jobs in this terminal (until the queue is empty)",
        description="Run queued jobs in this terminal until the queue is empty. Ctrl-C or SIGTERM stops after "
                    "the denoising step or decode tile in flight, keeping a checkpoint (the job resumes next "
                    "time); a second Ctrl-C quits at once.",
        epilog=RUN_EXIT_CODES)
    from ..jobs.worker_entry import add_worker_arguments

    add_worker_arguments(run)
    add_gpu_argument(run)
    run.add_argument("--json-events", action="store_true", help="print protocol events (JSON lines) on stdout")
    run.set_defaults(handler=_run)

    add_batch_verbs(verbs, _open)


RUN_EXIT_CODES = ("exit status: 0 every job this run took finished (or was cancelled, paused or stopped by "
                  "Ctrl-C/SIGTERM); 1 at least one of them failed, or the queue database cannot be used; "
                  "2 bad arguments; 4 another worker already runs this queue; 130 a second Ctrl-C")
STOP_NOTICE = ("stopping: waiting for the current denoising step or decode tile to finish, then keeping a "
               "checkpoint (the job resumes next time); press Ctrl-C again to quit at once")


def _tell_stopping() -> None:
    """From a signal handler: os.write, because a buffered stream may be in the middle of a write."""
    try:
        os.write(2, (STOP_NOTICE + "\n").encode())
    except OSError:
        pass


def _open(args: argparse.Namespace) -> JobQueue:
    return JobQueue(args.queue_db) if args.queue_db else JobQueue()


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def _summary(job: Job) -> str:
    progress = ""
    if job.status == "running" and job.steps:
        progress = f" {job.step or 0}/{job.steps}"
    elif job.checkpoint_step and job.status in ("paused", "interrupted", "failed"):
        progress = f" (checkpoint at step {job.checkpoint_step})"
    shown = for_display(job.prompt, one_line=True)
    prompt = shown if len(shown) <= 60 else shown[:59] + "…"
    line = f"{job.id:>5}  {job.status:<11}{progress}  {prompt}"
    if job.outputs.get("video"):
        line += f"  → {job.outputs['video']}"
    elif job.error_message and job.status != "done":
        line += f"  ({job.error_kind}: {job.error_message})"
    return line


def _add(args: argparse.Namespace) -> int:
    request = request_from_args(args)
    if args.variations is not None or args.seed_step is not None:
        return queue_variations(args, request, _open, _print_json)
    with _open(args) as queue:
        job = queue.add(request)
    _print_json(job.to_dict()) if args.json else print(f"queued job {job.id}")
    return 0


def _import(args: argparse.Namespace) -> int:
    settings = request_from_args(args, prompt="(each line of the file)")
    with _open(args) as queue:
        jobs = import_file(queue, args.file, settings)
    if args.json:
        _print_json([j.to_dict() for j in jobs])
    else:
        print(f"queued {len(jobs)} jobs ({jobs[0].id}–{jobs[-1].id}) from {for_display(args.file, one_line=True)}")
    return 0


def _list(args: argparse.Namespace) -> int:
    with _open(args) as queue:
        reap_dead_workers(queue)  # a job whose worker died shows as interrupted, not running
        jobs = queue.list(args.status)
    if args.json:
        _print_json([j.to_dict() for j in jobs])
    elif not jobs:
        print("the queue is empty")
    else:
        for job in jobs:
            print(_summary(job))
    return 0


def _show(args: argparse.Namespace) -> int:
    with _open(args) as queue:
        reap_dead_workers(queue)
        _print_json(queue.get(args.job_id).to_dict())
    return 0


def _action(args: argparse.Namespace) -> int:
    wait = getattr(args, "wait", False) or getattr(args, "grace", None) is not None
    if wait:
        grace = check_grace(DEFAULT_GRACE_S if args.grace is None else args.grace)
    with _open(args) as queue:
        for job_id in args.job_ids:
            if wait:
                print(stop_job(queue, job_id, args.action, grace_s=grace).message, flush=True)
                continue
            result = getattr(queue, args.action)(job_id)
            if args.action == "remove":
                print(f"removed job {job_id}")
            elif result.requested:
                print(f"job {job_id}: {result.requested} requested; the worker stops it after the current step")
            else:
                print(f"job {job_id}: {result.status}")
    return 0


def _move(args: argparse.Namespace) -> int:
    with _open(args) as queue:
        queue.move(args.job_id, args.index)
        order = [j.id for j in queue.list()]
    print(f"job {args.job_id} is now at place {order.index(args.job_id)}")
    return 0


def _duplicate(args: argparse.Namespace) -> int:
    changes = {} if args.seed is None else {"seed": args.seed}
    with _open(args) as queue:
        job = queue.duplicate(args.job_id, **changes)
    print(f"queued job {job.id} (a copy of job {args.job_id})")
    return 0


def _human_event(ev: dict[str, Any]) -> None:
    """Progress lines for a person at a terminal (memory events are left out)."""
    kind, job = ev.get("type"), ev.get("job_id")
    if kind == "job_started":
        resume = f", resuming at step {ev['resume_from_step']}" if ev.get("resume_from_step") else ""
        prompt = for_display(str(ev['request'].get('prompt', '')), one_line=True)[:60]
        print(f"job {job}: started{resume}: {prompt}", flush=True)
    elif kind == "stage" and ev.get("state") == "started":
        print(f"job {job}: {ev.get('name')}{' (' + ev['part'] + ')' if ev.get('part') else ''}", flush=True)
    elif kind == "step":
        print(f"job {job}: step {ev.get('i')}/{ev.get('n')}  {ev.get('seconds_per_step', 0):.2f} s/step"
              f"  eta {ev.get('eta_seconds', 0):.0f} s", flush=True)
    elif kind == "decode_progress" and ev.get("done") and ev.get("tile") == ev.get("tiles"):
        print(f"job {job}: {describe_decode_progress(ev)}", flush=True)
    elif kind == "job_done":
        print(f"job {job}: done → {ev.get('video_path')}", flush=True)
    elif kind == "job_failed":
        print(f"job {job}: {ev.get('kind')}: {ev.get('message')}", flush=True)
    elif kind in ("job_paused", "job_interrupted"):
        print(f"job {job}: {kind[4:]} at step {ev.get('step')}: {ev.get('message')}", flush=True)
    elif kind == "log" and ev.get("level") in ("warning", "error"):
        print(f"{ev.get('level')}: {ev.get('message')}", flush=True)


def _run(args: argparse.Namespace) -> int:
    from ..jobs.worker_entry import (
        EventWriter,
        build_worker,
        install_signal_handlers,
        run_worker,
        setup_logging,
    )

    apply_gpu_argument(args)  # before the worker (and torch) start CUDA
    setup_logging(getattr(args, "verbose", False), stderr=False)  # main() already logs to stderr
    args.queue = args.queue or args.queue_db
    write = EventWriter(sys.stdout) if args.json_events else _human_event
    failed: list[int] = []  # jobs of this run that failed (a cancel is the user's choice, not a failure)

    def emit(ev: dict[str, Any]) -> None:
        if ev.get("type") == "job_failed" and ev.get("kind") != "cancelled":
            failed.append(ev["job_id"])
        write(ev)

    worker = build_worker(args, emit)
    restore_signals = install_signal_handlers(worker, on_stop=_tell_stopping)
    try:
        ran = run_worker(worker, sys.stdin if args.json_events else None)
        if not args.json_events:
            counts = worker.queue.counts()
            print(f"ran {ran} job(s); {counts['queued'] + counts['interrupted']} waiting, {counts['failed']} failed"
                  + (f" (this run: {len(failed)})" if failed else ""))
    finally:
        restore_signals()
        worker.queue.close()
    return 1 if failed else 0

