"""A cheap, honest preview of a running job: the predicted clean latent of the first latent frame,
projected from 64 channels to RGB by its own three principal components. It shows layout and motion
structure, not final colours; decoding through the VAE would need the VAE on the GPU mid-denoise.
"""

from __future__ import annotations

from pathlib import Path

import imageio_ffmpeg
import numpy as np
import torch

UPSCALE = 8


def latent_to_rgb(latent: torch.Tensor) -> np.ndarray:
    """(C, h, w) latent → (h·8, w·8, 3) uint8 via PCA over channels, normalised per component."""
    c, h, w = latent.shape
    x = latent.float().reshape(c, h * w).T  # pixels × channels
    x = x - x.mean(dim=0, keepdim=True)
    _, _, v = torch.linalg.svd(x, full_matrices=False)
    rgb = x @ v[:3].T  # pixels × 3
    lo = rgb.quantile(0.01, dim=0)
    hi = rgb.quantile(0.99, dim=0)
    rgb = ((rgb - lo) / (hi - lo).clamp_min(1e-6)).clamp(0, 1)
    image = (rgb.reshape(h, w, 3).numpy() * 255).astype(np.uint8)
    return image.repeat(UPSCALE, axis=0).repeat(UPSCALE, axis=1)


def write_png(image: np.ndarray, path: Path) -> Path:
    """One RGB frame to PNG through the same ffmpeg binary that writes the videos."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    h, w, _ = image.shape
    writer = imageio_ffmpeg.write_frames(
        str(tmp), (w, h), pix_fmt_in="rgb24", pix_fmt_out="rgb24", codec="png", macro_block_size=1,
        output_params=["-frames:v", "1", "-update", "1"],
    )
    writer.send(None)
    writer.send(np.ascontiguousarray(image))
    writer.close()
    tmp.replace(path)
    return path
