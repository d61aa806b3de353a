"""Where a video goes: the user's `--output` made into one mp4 path, never over an existing file. Torch-free.

`--output` may name a file or a folder. The rules, applied where a request is made (the CLI) and again
where the video is written (the pipeline, for requests from elsewhere), so a queued job stores the path
it will really use:
- `~` is expanded and the path made absolute and normalised *before* any folder is created, so
  `a/../clip.mp4` never leaves an empty `a/` behind, and a relative path means the same to a worker
  started from another folder;
- an existing folder, or a path ending in `/`, is a folder: the video gets the usual automatic name in it;
- any other path that does not end in `.mp4` gets `.mp4` appended (`clip` → `clip.mp4`, `clip.mov` →
  `clip.mov.mp4`): the file is an mp4 whatever it is called, and this keeps its name honest;
- a name already taken (by a video or its sidecar) becomes `name-2.mp4`, `name-3.mp4`…
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

from stepvideo import paths

VIDEO_SUFFIX = ".mp4"


def normalise_output(text: str) -> str:
    """The absolute, normalised form of an `--output` value; a folder keeps a trailing separator."""
    expanded = os.path.expanduser(text)
    as_folder = expanded.endswith(os.sep) or os.path.isdir(expanded)
    absolute = os.path.abspath(expanded)  # also normalises: `..` and `.` are resolved lexically
    if as_folder:
        return absolute.rstrip(os.sep) + os.sep
    if not absolute.lower().endswith(VIDEO_SUFFIX):
        absolute += VIDEO_SUFFIX
    return absolute


def automatic_name(prompt: str, seed: int) -> str:
    slug = re.sub(r"[^\w]+", "-", prompt.strip(), flags=re.UNICODE).strip("-")[:40] or "video"
    return f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{slug}-s{seed}{VIDEO_SUFFIX}"


def wanted_output_path(output: str | None, prompt: str, seed: int) -> Path:
    """The path the request asks for: `output` by the rules above, or the videos folder."""
    if not output:
        return paths.videos_dir() / automatic_name(prompt, seed)
    normalised = normalise_output(output)
    if normalised.endswith(os.sep):
        return Path(normalised) / automatic_name(prompt, seed)
    return Path(normalised)


def free_output_path(wanted: Path) -> Path:
    """`wanted`, or `name-2.mp4`, `name-3.mp4`… when a video or sidecar of that name exists: we never
    overwrite anything the user has."""
    from stepvideo.engine import video_io  # numpy and imageio: not at CLI start-up

    candidate, n = wanted, 2
    while candidate.exists() or video_io.sidecar_path(candidate).exists():
        candidate = wanted.with_name(f"{wanted.stem}-{n}{wanted.suffix}")
        n += 1
    return candidate
