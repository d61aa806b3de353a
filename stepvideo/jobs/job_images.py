"""A queued image-to-video job's own copy of its source image. Torch-free.

`queue add --image` copies the image into `<queue folder>/job-images/job-<id>/<original name>` and the
job's request names that copy, so the job never depends on the user's file: moving or deleting the
original after queueing changes nothing. The copy goes when the job is removed (the finished video's
sidecar keeps its own copy beside the video).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from stepvideo.errors import InvalidRequest


def job_image_dir(root: Path, job_id: int) -> Path:
    return Path(root) / f"job-{int(job_id)}"


def copy_into_job(root: Path, job_id: int, image: str | os.PathLike[str]) -> Path:
    """Copy `image` into the job's folder under its own name; returns the copy's path. A copy that is
    already this job's (a retried or re-added request) is kept as it is."""
    source = Path(image).expanduser().resolve()
    folder = job_image_dir(root, job_id)
    target = folder / source.name
    if source == target.resolve():
        return target
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{source.name}.tmp"
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    except OSError as exc:
        raise InvalidRequest(f"cannot copy {source} into the queue ({exc.strerror or exc}); "
                             "check that the image is readable and the disk has room") from None
    return target


def remove_job_images(root: Path, job_id: int) -> None:
    shutil.rmtree(job_image_dir(root, job_id), ignore_errors=True)
