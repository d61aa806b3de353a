"""The source image of an image-to-video request: read, checked and hashed. Torch-free.

Decoding goes through the ffmpeg binary the app already ships (imageio-ffmpeg) rather than a new
library: ffmpeg reads PNG, JPEG, WebP, BMP, TIFF and GIF, and tells us when a file has more than one
frame. The file's bytes go in on stdin, so a name containing '%' is never read as an image-sequence
pattern, and the frame comes back as binary PPM (a plain "P6 W H 255" header, then RGB bytes).
The official pipeline opens the image with PIL and `.convert('RGB')`: alpha is dropped the same way
here; JPEG colour conversion may differ from PIL's by a rounding step.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from .errors import InvalidRequest
from .presets import SIZES

ALLOWED = "a PNG, JPEG, WebP, BMP or TIFF image"
MAX_FILE_BYTES = 200 << 20  # no still image a user means to animate is larger
MIN_SIDE = 16  # pixels: below this there is nothing to animate
MAX_UPSCALE = 4.0  # the cover resize may enlarge an image at most this much
SQUARE_TOLERANCE = 1.2  # aspect ratios within this of 1 count as square
_PPM_HEADER = re.compile(rb"P6\s+(\d+)\s+(\d+)\s+(\d+)\s")


@dataclass(frozen=True)
class SourceImage:
    path: Path
    rgb: np.ndarray  # (height, width, 3) uint8

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


def read_image(path: str | Path) -> SourceImage:
    """Decode the first and only frame of `path`; InvalidRequest (one line) for anything else."""
    path = Path(path).expanduser()
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise InvalidRequest(f"{path} is not a file; give {ALLOWED}")
        if size > MAX_FILE_BYTES:
            raise InvalidRequest(f"{path} is {size / 2**20:.0f} MiB; an image file may be at most "
                                 f"{MAX_FILE_BYTES >> 20} MiB")
        data = path.read_bytes()
    except FileNotFoundError:
        raise InvalidRequest(f"{path} does not exist; give {ALLOWED}") from None
    except OSError as exc:
        raise InvalidRequest(f"cannot read {path} ({exc.strerror or exc}); give a readable image file") from None
    frames = _decode_frames(data, 2)
    if not frames:
        raise InvalidRequest(f"{path} is not an image ffmpeg can read; give {ALLOWED}")
    if len(frames) > 1:
        raise InvalidRequest(f"{path} is an animated image (more than one frame); save the frame you want "
                             f"as {ALLOWED}")
    return SourceImage(path, frames[0])


def check_image(path: str | Path, height: int, width: int) -> SourceImage:
    """read_image, then refuse an image too small for a (height, width) video."""
    return check_image_size(read_image(path), height, width)


def check_image_size(image: SourceImage, height: int, width: int) -> SourceImage:
    if min(image.width, image.height) < MIN_SIDE:
        raise InvalidRequest(f"{image.path} is {image.width}x{image.height} pixels; an image needs at least "
                             f"{MIN_SIDE} pixels on each side")
    scale = cover_scale(image.width, image.height, width, height)
    if scale > MAX_UPSCALE:
        need_w, need_h = -(-width // int(MAX_UPSCALE)), -(-height // int(MAX_UPSCALE))
        raise InvalidRequest(
            f"{image.path} is {image.width}x{image.height} pixels (width x height), too small for a "
            f"{width}x{height} video (it would be enlarged {scale:.1f}x, at most {MAX_UPSCALE:g}x is allowed); "
            f"use an image that covers at least {need_w}x{need_h}"
        )
    return image


def size_for_image(src_width: int, src_height: int) -> tuple[int, int]:
    """The video size (height, width) that follows the image's orientation: landscape 544x992,
    portrait 992x544, and 768x768 for images within 20% of square (the TI2V eval set's H/V/S)."""
    aspect = src_width / src_height
    if aspect > SQUARE_TOLERANCE:
        return SIZES["landscape"]
    if aspect < 1 / SQUARE_TOLERANCE:
        return SIZES["portrait"]
    return SIZES["square"]


def cover_scale(src_width: int, src_height: int, width: int, height: int) -> float:
    """The factor that makes the image just cover width x height (the official resize rule): fit the
    width when the image is relatively taller than the target, else fit the height."""
    if src_width / src_height < width / height:
        return width / src_width
    return height / src_height


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _decode_frames(data: bytes, limit: int) -> list[np.ndarray]:
    """Up to `limit` RGB frames of an encoded image (ffmpeg probes the format from the bytes)."""
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-v", "error",
               "-i", "pipe:0", "-frames:v", str(limit), "-f", "image2pipe", "-c:v", "ppm", "-pix_fmt", "rgb24",
               "pipe:1"]
    try:
        done = subprocess.run(command, input=data, capture_output=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if done.returncode != 0:
        return []
    frames, out = [], done.stdout
    while out:
        header = _PPM_HEADER.match(out)
        if header is None:
            break
        w, h = int(header.group(1)), int(header.group(2))
        start, end = header.end(), header.end() + w * h * 3
        if header.group(3) != b"255" or end > len(out):
            break
        frames.append(np.frombuffer(out[start:end], dtype=np.uint8).reshape(h, w, 3).copy())
        out = out[end:]
    return frames


@dataclass(frozen=True)
class CoverCrop:
    """Resize the image to resized_width x resized_height, then keep the window at (top, left) of the
    video's size."""

    resized_width: int
    resized_height: int
    top: int
    left: int


def cover_crop(src_width: int, src_height: int, width: int, height: int) -> CoverCrop:
    """The official "resize to cover, then center-crop" geometry (ti2v-facts §2.1): sizes rounded,
    the crop offset floored (Δ//2), so an odd excess leaves the extra pixel at the bottom/right."""
    scale = cover_scale(src_width, src_height, width, height)
    # max(): a product like 991.9999 must not round below the size it has to cover.
    resized_w = max(width, round(src_width * scale))
    resized_h = max(height, round(src_height * scale))
    return CoverCrop(resized_w, resized_h, (resized_h - height) // 2, (resized_w - width) // 2)
