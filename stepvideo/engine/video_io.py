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
    """Write uint8 frames (N, H, W, 3) as H.264 yuv420p; the metadata JSON goes into the mp4's comment."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (N, H, W, 3), got {frames.dtype} {frames.shape}")
    with Mp4Writer(path, frames.shape[2], frames.shape[1], fps, quality) as writer:
        writer.send(frames)
        return writer.finish(metadata)


class Mp4Writer:
    """An mp4 written as its frames arrive, so a decoder can hand over each chunk and keep none.

    Frames go to ffmpeg (libx264, yuv420p) as they come; `finish(metadata)` then remuxes the stream
    with the metadata in the comment tag and +faststart (a copy, no re-encode: +faststart rewrites
    the file anyway), checks how many frames ffmpeg really wrote, and only then gives the file its
    final name, so a crash never leaves a half video that looks finished. Used as a context
    manager, anything not finished is deleted on the way out.
    """

    def __init__(self, path: Path, width: int, height: int, fps: int = FPS, quality: float = 8.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.size = (width, height)
        self.frames = 0
        self._stream = self.path.with_name(f".{self.path.stem}.partial-stream.mp4")
        self._final = self.path.with_name(f".{self.path.stem}.partial.mp4")
        self._writer = imageio_ffmpeg.write_frames(
            str(self._stream), (width, height), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
            quality=quality, macro_block_size=1,  # sizes are multiples of 16 already; never rescale silently
        )
        self._writer.send(None)
        self._open = True
        self._finished = False

    def send(self, frames: np.ndarray) -> None:
        """Append uint8 frames (n, H, W, 3)."""
        width, height = self.size
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[1:] != (height, width, 3):
            raise ValueError(f"frames must be uint8 (n, {height}, {width}, 3), got {frames.dtype} {frames.shape}")
        for frame in frames:
            self._writer.send(np.ascontiguousarray(frame))
        self.frames += len(frames)

    def finish(self, metadata: dict[str, Any]) -> Path:
        self._close_encoder()
        comment = json.dumps(metadata, ensure_ascii=False, separators=(",", ":"))
        title = str(metadata.get("request", {}).get("prompt", ""))[:200]
        proc = subprocess.run(
            [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error", "-i", str(self._stream), "-map", "0",
             "-c", "copy", "-metadata", f"title={title}", "-metadata", f"comment={comment}",
             "-metadata", "encoder=StepVideo Desktop", "-movflags", "+faststart+use_metadata_tags",
             str(self._final)],
            capture_output=True, text=True, timeout=600,
        )
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["ffmpeg failed"])[-1]
            raise OSError(errno.EIO, f"ffmpeg could not finish the video ({tail})")
        # imageio-ffmpeg does not check ffmpeg's exit status: a disk that fills while x264 flushes or
        # while +faststart rewrites the file leaves a short file behind. Count what was written.
        try:
            written, _seconds = imageio_ffmpeg.count_frames_and_secs(str(self._final))
        except RuntimeError:  # ffmpeg cannot even read it back
            written = 0
        if written != self.frames:
            raise OSError(errno.EIO, f"ffmpeg wrote {written} of {self.frames} frames (is the disk full?)")
        os.replace(self._final, self.path)
        self._stream.unlink(missing_ok=True)
        self._finished = True
        return self.path

    def abort(self) -> None:
        try:
            self._close_encoder()
        except Exception as exc:  # the error in flight matters more than this one
            log.debug("closing ffmpeg after an error: %s", exc)
        self._stream.unlink(missing_ok=True)  # never leave a half video behind
        self._final.unlink(missing_ok=True)

    def _close_encoder(self) -> None:
        if self._open:
            self._open = False
            self._writer.close()

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, *exc_info) -> None:
        if not self._finished:
            self.abort()


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

