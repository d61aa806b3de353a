"""`stepvideo make-tiny-model DIR [--turbo | --ti2v]`: a tiny random model in the exact hub layout (for tests and demos)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InvalidRequest


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "make-tiny-model", help="write a tiny random model in the hub layout",
        description="Write a complete, tiny, random-weight Step-Video-T2V repo (for tests and trying the app).",
    )
    parser.add_argument("directory", help="folder to write (created; must be empty if it exists)")
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--turbo", action="store_true", help="write only a transformer, like stepvideo-t2v-turbo")
    kind.add_argument("--ti2v", action="store_true", help="write an image-to-video model, like stepvideo-ti2v")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the weights")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    target = Path(args.directory)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InvalidRequest(f"{target} exists and is not an empty folder; give a new or empty folder")
    from ..testing.tiny_model import make_tiny_model

    print(make_tiny_model(target, turbo=args.turbo, ti2v=args.ti2v, seed=args.seed))
    return 0
