"""The request options shared by `generate`, `queue add` and `queue import`.

Values are parsed here, not by argparse types, so a malformed value raises InvalidRequest with one line
that names what is allowed (the same line the queue and the pipeline give).
"""

from __future__ import annotations

import argparse
import secrets
from pathlib import Path

from .. import request_fields
from ..api import PROFILES, QUANTIZATIONS, GenerationRequest, validate
from ..display_text import for_display
from ..engine.output_path import normalise_output
from ..errors import InvalidRequest
from ..presets import (
    BASE_REPO,
    DEFAULT_FRAMES,
    DEFAULT_MOTION,
    DEFAULT_SEED,
    MOTION_RANGE,
    PRESETS,
    SIZES,
    TI2V_DEFAULT_FRAMES,
    TI2V_REPO,
)
from ..request_fields import finite_number, whole_number
from ..request_text import MAX_PROMPT_CHARS
from ..source_image import check_image_size, read_image, size_for_image

OUTPUT_HELP = ("where the video goes: an mp4 path, or a folder (existing, or ending in /) that gets an automatic "
               "name. '.mp4' is appended to a name without it; a taken name gets -2, -3… (the path printed "
               "at the end is the real one). Default: the videos folder")



def add_request_arguments(parser: argparse.ArgumentParser, *, prompt: bool = True, output: bool = True,
                          image: bool = True) -> None:
    """Add --prompt (when `prompt`), --model … --profile, and --output (when `output`)."""
    if prompt:
        given = parser.add_mutually_exclusive_group(required=True)
        given.add_argument("--prompt", "-p", help=f"what the video should show (at most {MAX_PROMPT_CHARS:,} characters)")
        given.add_argument("--prompt-file", metavar="FILE", help="read the prompt from a UTF-8 text file (for long prompts)")
    parser.add_argument("--model", default=None,
                        help=f"hub repo id or local model folder (default {BASE_REPO}; with --image {TI2V_REPO})")
    parser.add_argument("--revision", default=None, help="hub revision (branch, tag or commit) to pin")
    negative = parser.add_mutually_exclusive_group()
    negative.add_argument("--negative", default=None, help="negative prompt (default: the official one)")
    negative.add_argument("--negative-file", metavar="FILE", default=None, help="read the negative prompt from a UTF-8 text file")
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
        parser.add_argument("--output", "-o", default=None, help=OUTPUT_HELP)
    add_image_arguments(parser, image=image)


def add_image_arguments(parser: argparse.ArgumentParser, *, image: bool = True) -> None:
    """--image (image-to-video with a TI2V model) and --motion."""
    if image:
        parser.add_argument("--image", default=None, metavar="PATH",
                            help="animate this image (PNG, JPEG, WebP…) with an image-to-video model; the size "
                                 f"then follows its orientation and --frames defaults to {TI2V_DEFAULT_FRAMES}")
    low, high = MOTION_RANGE
    parser.add_argument("--motion", default=None,
                        help=f"with --image: motion score {low:g}–{high:g} (default {DEFAULT_MOTION:g}; 2 calm, "
                             "5 general, 10 camera tracking, 20 intense)")


def request_from_args(args: argparse.Namespace, *, prompt: str | None = None,
                      image: str | None = None) -> GenerationRequest:
    """Build and validate the request; `prompt` overrides args.prompt and `image` args.image (used by
    import). An image is read and checked here, so a bad one is one line before anything runs."""
    if prompt is None:
        prompt_file = getattr(args, "prompt_file", None)
        prompt = read_text_file("--prompt-file", prompt_file) if prompt_file is not None else getattr(args, "prompt", "")
    negative_file = getattr(args, "negative_file", None)
    image = image if image is not None else getattr(args, "image", None)
    source = read_image(image) if image is not None else None
    fields: dict[str, object] = {
        "prompt": prompt,
        "model": args.model or (TI2V_REPO if source is not None else BASE_REPO),
        "revision": args.revision,
        "negative_prompt": read_text_file("--negative-file", negative_file) if negative_file is not None else args.negative,
        "positive_suffix": "" if getattr(args, "no_suffix", False) else getattr(args, "suffix", None),
        "transformer_model": getattr(args, "transformer_model", None),
        "preset": args.preset,
        "profile": args.profile,
        "quantization": args.quantization,
        "output": getattr(args, "output", None),
    }
    if args.steps is not None:
        fields["steps"] = whole_number("--steps", args.steps, "a whole number from 1 to 200")
    if args.cfg is not None:
        fields["cfg"] = finite_number("--cfg", args.cfg, "a number ≥ 1")
    if args.shift is not None:
        fields["shift"] = finite_number("--shift", args.shift, "a number > 0")
    if args.size is not None:
        fields["height"], fields["width"] = parse_size(args.size)
    if source is not None:
        fields["image"] = str(Path(source.path).resolve())  # absolute: a worker elsewhere finds it
        if args.size is None:
            fields["height"], fields["width"] = size_for_image(source.width, source.height)
        fields["frames"] = TI2V_DEFAULT_FRAMES
    if getattr(args, "motion", None) is not None:
        low, high = MOTION_RANGE
        fields["motion"] = finite_number("--motion", args.motion, f"a number from {low:g} to {high:g}")
    if args.frames is not None:
        fields["frames"] = whole_number("--frames", args.frames, "a positive multiple of 17 (17, 34, …, 204)")
    if args.seed is not None:
        if str(args.seed).strip().lower() == "random":
            fields["seed"] = secrets.randbelow(2**63)
        else:
            fields["seed"] = whole_number("--seed", args.seed, "a whole number from 0 to 2^63-1, or 'random'")
    request = validate(GenerationRequest(**fields))  # type: ignore[arg-type]
    if request.output:  # checked as text above; now the path it will really be (output_path.py)
        request = request.replace(output=normalise_output(request.output))
    check_local_model_mode(request)
    if source is not None:
        check_image_size(source, request.height, request.width)
    return request


def check_local_model_mode(request: GenerationRequest) -> None:
    """--image with a text-to-video model folder (or a TI2V folder without it) is refused now, not when
    the job runs; hub ids by name are checked in api.validate, others when the job starts."""
    from ..engine.model_kind import check_mode

    for name in (request.transformer_model, request.model):
        if name and (Path(name).expanduser() / "transformer" / "config.json").is_file():
            check_mode(request, Path(name).expanduser(), name)
            return


def read_text_file(option: str, file: str) -> str:
    """A prompt from a UTF-8 file, without surrounding whitespace; one line naming what is wrong."""
    path = Path(file)
    shown = for_display(str(path), one_line=True)
    limit = MAX_PROMPT_CHARS * 4  # UTF-8 takes at most 4 bytes a character
    try:
        if path.is_dir():
            raise InvalidRequest(f"{option} {shown} is a folder; give a UTF-8 text file")
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise InvalidRequest(f"{option} {shown} does not exist") from None
    except OSError as exc:
        raise InvalidRequest(f"{option}: cannot read {shown} ({exc.strerror or type(exc).__name__})") from None
    if len(data) > limit:
        raise InvalidRequest(f"{option} {shown} is too long; a prompt is at most {MAX_PROMPT_CHARS:,} characters")
    try:
        text = data.decode("utf-8-sig").strip()
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"{option} {shown} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    if not text:
        raise InvalidRequest(f"{option} {shown} is empty; write the prompt in it")
    return text


def parse_size(text: str) -> tuple[int, int]:
    """'544x992' (height x width) or a named size -> (height, width); the message names --size."""
    return request_fields.parse_size(text, "--size")
