"""Queue a folder of image + prompt pairs: the layout of the official Step-Video-TI2V-Eval set.

Each pair is `NNN.png` with `NNN.txt` (one UTF-8 prompt) beside it, in any sub-folder
(`ti2v_eval_real/H/001.png`, `…/V/001.txt`, …). Each video's size follows its image's orientation
unless the settings fix one. All or nothing: a lone image, a lone prompt or an unreadable file stops
the import before any job is queued, with one line naming the file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from stepvideo.api import GenerationRequest, validate
from stepvideo.errors import InvalidRequest
from stepvideo.source_image import read_image, size_for_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


@dataclass(frozen=True)
class ImagePrompt:
    image: Path
    prompt: str


def image_prompt_pairs(folder: str | Path) -> list[ImagePrompt]:
    """Every image with its same-named .txt, in path order; InvalidRequest for an unpaired file."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise InvalidRequest(f"{root} is not a folder; give a folder of NNN.png + NNN.txt pairs")
    images = {p.with_suffix(""): p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
              and not p.name.startswith(".")}
    texts = {p.with_suffix(""): p for p in root.rglob("*.txt") if p.is_file() and not p.name.startswith(".")}
    for stem in sorted(set(images) - set(texts)):
        raise InvalidRequest(f"{images[stem]} has no prompt: write it in {stem.name}.txt beside it")
    for stem in sorted(set(texts) - set(images)):
        raise InvalidRequest(f"{texts[stem]} has no image beside it (expected {stem.name}.png)")
    pairs = []
    for stem in sorted(images):
        pairs.append(ImagePrompt(images[stem], _read_prompt(texts[stem])))
    if not pairs:
        raise InvalidRequest(f"{root} holds no NNN.png + NNN.txt pairs")
    return pairs


def _read_prompt(path: Path) -> str:
    try:
        prompt = path.read_text(encoding="utf-8-sig").strip()
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"{path} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise InvalidRequest(f"cannot read {path}: {exc.strerror}") from None
    if not prompt:
        raise InvalidRequest(f"{path} is empty; write the prompt for its image")
    return prompt


def folder_requests(folder: str | Path, settings: GenerationRequest, *, fixed_size: bool) -> list[GenerationRequest]:
    """One validated request per pair: `settings` with the pair's prompt and image, and the size of the
    image's orientation unless `fixed_size`."""
    if settings.output is not None:
        raise InvalidRequest("an imported folder cannot share one --output file; leave it out")
    requests = []
    for pair in image_prompt_pairs(folder):
        image = read_image(pair.image)
        size = {} if fixed_size else dict(zip(("height", "width"), size_for_image(image.width, image.height)))
        requests.append(validate(settings.replace(prompt=pair.prompt, image=str(pair.image.resolve()), **size)))
    return requests


def batch_name(folder: str | Path) -> str:
    return f"{Path(folder).name}@{time.strftime('%Y-%m-%d %H:%M:%S')}"
