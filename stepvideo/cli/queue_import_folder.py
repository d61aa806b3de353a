"""`stepvideo queue import-folder DIR`: one image-to-video job per NNN.png + NNN.txt pair (the layout of
the official Step-Video-TI2V-Eval set). Registered by cli/queue.py under `queue`."""

from __future__ import annotations

import argparse
import json
import sys

from ..jobs.folder_import import batch_name, folder_requests
from ..jobs.store import JobQueue
from ._request_args import add_request_arguments, request_from_args


def add_import_folder_verb(verbs) -> None:
    p = verbs.add_parser("import-folder", help="queue one image-to-video job per NNN.png + NNN.txt pair in a folder")
    p.add_argument("folder", help="folder (searched with its sub-folders) of NNN.png images and NNN.txt prompts")
    add_request_arguments(p, prompt=False, output=False, image=False)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_import_folder)


def _import_folder(args: argparse.Namespace) -> int:
    from ..jobs.folder_import import image_prompt_pairs

    first = image_prompt_pairs(args.folder)[0]
    # The shared settings, checked once with the first pair (model kind, motion, size …).
    settings = request_from_args(args, prompt=first.prompt, image=str(first.image))
    requests = folder_requests(args.folder, settings, fixed_size=args.size is not None)
    with (JobQueue(args.queue_db) if args.queue_db else JobQueue()) as queue:
        jobs = queue.add_many(requests, batch=batch_name(args.folder))
    if args.json:
        sys.stdout.write(json.dumps([j.to_dict() for j in jobs], ensure_ascii=False, indent=2) + "\n")
    else:
        print(f"queued {len(jobs)} image-to-video jobs ({jobs[0].id}–{jobs[-1].id}) from {args.folder}")
    return 0
