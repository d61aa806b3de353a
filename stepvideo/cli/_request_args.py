"""The request options shared by `generate`, `queue add` and `queue import`.

Values are parsed here, not by argparse types, so a malformed value raises InvalidRequest with one line
that names what is allowed (the same line the queue and the pipeline give).
"""

from __future__ import annotations

import argparse
import re
import secrets

from ..api import PROFILES, QUANTIZATIONS, GenerationRequest, validate
from ..errors import InvalidRequest
from ..presets import BASE_REPO, DEFAULT_FRAMES, DEFAULT_SEED, PRESETS, SIZES

_SIZE = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")


def add_request_arguments(parser: argparse.ArgumentParser, *, prompt: bool = True, output: bool = True) -> None:
    """Add --prompt (when `prompt`), --model … --profile, and --output (when `output`)."""
    if prompt:
        parser.add_argument("--prompt", "-p", required=True, help="what the video should show")
    parser.add_argument("--model", default=BASE_REPO, help=f"hub repo id or local model folder (default {BASE_REPO})")
    parser.add_argument("--revision", default=None, help="hub revision (branch, tag or commit) to pin")
    parser.add_argument("--negative", default=None, help="negative prompt (default: the official one)")
    suffix = parser.add_mutually_exclusive_group()
    suffix.add_argument("--suffix", default=None, help="text appended to the prompt (default: the official quality suffix)")
    suffix.add_argument("--no-suffix", action="store_true", help="append nothing to the prompt")
    parser.add_argument("--transformer-model", default=None,
                        help="where the DiT comes from (default: the turbo repo for --preset turbo, else --model)")
    parser.add_argument("--preset", default="standard", help=f"sampling preset: {', '.join(PRESETS)}")
    parser.add_argument("--steps", default=None, help="denoising steps (default: the preset's)")
    parser.add_argument("--cfg", default=None, help="classifier-free guidance scale (default: the preset's)")
    parser.add_argument("--shift", default=None, help="flow shift (default: the preset's)")
    parser.add_argument("--size", default=None,
                        help=f"HxW in pixels, multiples of 16, or one of {', '.join(SIZES)} (default 544x992)")
    parser.add_argument("--frames", default=None, help=f"frame count, a multiple of 17 (default {DEFAULT_FRAMES})")
    parser.add_argument("--seed", default=None, help=f"whole number, or 'random' (default {DEFAULT_SEED})")
    parser.add_argument("--profile", default="auto", help=f"memory profile: {', '.join(PROFILES)}")
    parser.add_argument("--quantization", default=None, help=f"weight quantization: {', '.join(QUANTIZATIONS)}")
    if output:
        parser.add_argument("--output", "-o", default=None, help="mp4 path (default: the videos folder)")


def request_from_args(args: argparse.Namespace, *, prompt: str | None = None) -> GenerationRequest:
    """Build and validate the request; `prompt` overrides args.prompt (used by import)."""
    fields: dict[str, object] = {
        "prompt": prompt if prompt is not None else getattr(args, "prompt", ""),
        "model": args.model,
        "revision": args.revision,
        "negative_prompt": args.negative,
        "positive_suffix": "" if getattr(args, "no_suffix", False) else getattr(args, "suffix", None),
        "transformer_model": getattr(args, "transformer_model", None),
        "preset": args.preset,
        "profile": args.profile,
        "quantization": args.quantization,
        "output": getattr(args, "output", None),
    }
    if args.steps is not None:
        fields["steps"] = _whole("--steps", args.steps, "a whole number from 1 to 200")
    if args.cfg is not None:
        fields["cfg"] = _number("--cfg", args.cfg, "a number ≥ 1")
    if args.shift is not None:
        fields["shift"] = _number("--shift", args.shift, "a number > 0")
    if args.size is not None:
        fields["height"], fields["width"] = parse_size(args.size)
    if args.frames is not None:
        fields["frames"] = _whole("--frames", args.frames, "a positive multiple of 17 (17, 34, …, 204)")
    if args.seed is not None:
        if str(args.seed).strip().lower() == "random":
            fields["seed"] = secrets.randbelow(2**63)
        else:
            fields["seed"] = _whole("--seed", args.seed, "a whole number from 0 to 2^63-1, or 'random'")
    return validate(GenerationRequest(**fields))  # type: ignore[arg-type]


def parse_size(text: str) -> tuple[int, int]:
    """'544x992' (height x width) or a named size -> (height, width)."""
    named = SIZES.get(str(text).strip().lower())
    if named is not None:
        return named
    match = _SIZE.match(str(text))
    if match is None:
        raise InvalidRequest(
            f"--size {text!r} is not allowed; write HEIGHTxWIDTH in pixels (e.g. 544x992) or one of {', '.join(SIZES)}"
        )
    return int(match.group(1)), int(match.group(2))


def _whole(option: str, text: str, allowed: str) -> int:
    try:
        return int(str(text).strip())
    except ValueError:
        raise InvalidRequest(f"{option} {text!r} is not allowed; it must be {allowed}") from None


def _number(option: str, text: str, allowed: str) -> float:
    try:
        value = float(str(text).strip())
    except ValueError:
        raise InvalidRequest(f"{option} {text!r} is not allowed; it must be {allowed}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise InvalidRequest(f"{option} {text!r} is not allowed; it must be {allowed}")
    return value
