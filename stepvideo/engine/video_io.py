"""Frames → H.264 mp4 through imageio-ffmpeg, with the request in the file and in a sidecar JSON.

Torch-free, so the desktop can read metadata back ("reuse settings") without the engine.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import numpy as np

from stepvideo.presets import FPS

log = logging.getLogger(__name__)
METADATA_KEY = "stepvideo"


def sidecar_path(video: Path) -> Path:
    return Path(video).with_suffix(".json")


def write_mp4(frames: np.ndarray, path: Path, metadata: dict[str, Any], fps: int = FPS, quality: float = 8.0) -> Path:
    """Write uint8 frames (N, H, W, 3) as H.264 yuv420p; the metadata JSON goes into the mp4's comment.

    The file appears under its final name only when complete (written to a temporary name first),
    so a crash never leaves a half video that looks finished.
    """
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (N, H, W, 3), got {frames.dtype} {frames.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial.mp4")
    n, height, width, _ = frames.shape
    comment = json.dumps(metadata, ensure_ascii=False, separators=(",", ":"))
    writer = imageio_ffmpeg.write_frames(
        str(tmp),
        (width, height),
        fps=fps,
        codec="libx264",
        pix_fmt_out="yuv420p",
        quality=quality,
        macro_block_size=1,  # sizes are multiples of 16 already; never rescale silently
        output_params=[
            "-metadata", f"title={metadata.get('request', {}).get('prompt', '')[:200]}",
            "-metadata", f"comment={comment}",
            "-metadata", "encoder=StepVideo Desktop",
            "-movflags", "+faststart+use_metadata_tags",
        ],
    )
    try:
        writer.send(None)
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
        writer.close()
        # imageio-ffmpeg does not check ffmpeg's exit status: a disk that fills while x264 flushes or
        # while +faststart rewrites the file leaves a short file behind. Count what was written.
        try:
            written, _seconds = imageio_ffmpeg.count_frames_and_secs(str(tmp))
        except RuntimeError:  # ffmpeg cannot even read it back
            written = 0
        if written != n:
            raise OSError(errno.EIO, f"ffmpeg wrote {written} of {n} frames (is the disk full?)")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # never leave a half video behind
        raise
    return path


def write_sidecar(video: Path, metadata: dict[str, Any]) -> Path:
    target = sidecar_path(video)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(json.dumps(metadata, ensure_ascii=False, indent=2))
    os.replace(tmp, target)
    return target


def source_image_copy_path(video: Path, image: Path) -> Path:
    """Where an image-to-video run keeps its source image: `<video>.source<ext>` beside the sidecar."""
    return Path(video).with_name(f"{Path(video).stem}.source{Path(image).suffix.lower()}")


def copy_source_image(video: Path, image: Path) -> Path:
    """Copy the source image beside the video (atomically: a crash never leaves half a copy)."""
    target = source_image_copy_path(video, image)
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(image, tmp)
    os.replace(tmp, target)
    return target


def read_metadata(video: Path) -> dict[str, Any] | None:
    """The metadata we wrote, from the sidecar if present, else from the mp4's comment tag."""
    video = Path(video)
    side = sidecar_path(video)
    if side.is_file():
        try:
            return json.loads(side.read_text())
        except json.JSONDecodeError:
            log.warning("ignoring unreadable sidecar %s", side)
    proc = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(video), "-f", "ffmetadata", "-"],
        capture_output=True, text=True, timeout=30,
    )
    if proc.returncode != 0:
        return None
    for line in proc.stdout.splitlines():
        if line.startswith("comment="):
            value = line[len("comment="):].replace("\\=", "=").replace("\\;", ";").replace("\\#", "#").replace("\\\\", "\\")
            try:
                data = json.loads(value)
            except json.JSONDecodeError:
                return None
            return data if isinstance(data, dict) and "request" in data else None
    return None


def to_uint8_frames(video: np.ndarray) -> np.ndarray:
    """(N, 3, H, W) floats in [-1, 1] → (N, H, W, 3) uint8, rounding like the official post-processing."""
    scaled = (np.clip(video, -1.0, 1.0) + 1.0) * 127.5
    return np.clip(scaled, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
