"""Test helpers for image-to-video: source images written as real PNG/GIF files through ffmpeg."""

from __future__ import annotations

import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from stepvideo.engine.preview import write_png


def gradient_image(path: Path, width: int, height: int, seed: int = 0) -> Path:
    """A PNG with structure (gradients + noise), different for every seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 // max(1, width - 1), y * 255 // max(1, height - 1),
                    rng.integers(0, 256, (height, width))], axis=-1).astype(np.uint8)
    return write_png(rgb, Path(path))


def animated_gif(path: Path, width: int = 64, height: int = 48) -> Path:
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error", "-f", "lavfi", "-i",
                    f"testsrc=size={width}x{height}:rate=5", "-frames:v", "3", str(path)], check=True)
    return Path(path)
