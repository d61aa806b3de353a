"""`--gpu N`, shared by `generate`, `queue run` and `plan`: checked against the GPUs present and applied
to this process's environment before anything starts CUDA (stepvideo/gpus.py says how)."""

from __future__ import annotations

import argparse

from ..gpus import parse_gpu, use_gpu


def add_gpu_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gpu", default=None, metavar="N",
                        help="run on this GPU (numbered as nvidia-smi shows them; default: the first)")


def apply_gpu_argument(args: argparse.Namespace) -> None:
    """Use the GPU the user named (or leave the default); one line and exit 2 when it is not present."""
    if getattr(args, "gpu", None) is not None:
        use_gpu(parse_gpu(args.gpu))
