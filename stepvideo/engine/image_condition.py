"""The image half of Step-Video-TI2V: source image → VAE latent → the DiT's condition (ti2v-facts §1.3, §2).

The image is mapped to [−1, 1], resized to cover the video's size and center-cropped, and encoded by
the VAE as ONE frame (its causal encoder turns one frame into one latent frame). That latent fills
latent frame 0 of a condition tensor the shape of the noisy latents; every other frame is zero. The
DiT concatenates it after the noisy latent on channels (64 + 64 = 128 into `pos_embed.proj`).

Latent choice: the official server returns a posterior SAMPLE from an unseeded RNG, so its image
latent differs run to run. We use the posterior MEAN: deterministic, the same for every seed, and the
centre of the distribution the sample is drawn from.

CFG: the same condition and motion score go into every row (guidance is text-only). The rows are
built per call from the batch the loop passes, so cfg = 1 (one row) works, where the official
pipeline's unconditional `.repeat(2)` crashes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from stepvideo.source_image import cover_crop


def image_to_tensor(rgb: np.ndarray, height: int, width: int) -> torch.Tensor:
    """(h, w, 3) uint8 → (1, 3, height, width) fp32 in [−1, 1], resized to cover and center-cropped.

    Bilinear with antialiasing, as torchvision's tensor Resize the official code calls (≥ 0.17).
    """
    crop = cover_crop(rgb.shape[1], rgb.shape[0], width, height)
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255.0 * 2.0 - 1.0
    x = F.interpolate(x, size=(crop.resized_height, crop.resized_width), mode="bilinear",
                      align_corners=False, antialias=True)
    return x[:, :, crop.top:crop.top + height, crop.left:crop.left + width].contiguous()


@torch.inference_mode()
def encode_image(vae, image: torch.Tensor) -> torch.Tensor:
    """(1, 3, H, W) in [−1, 1] → the posterior mean latent (1, 1, z, H/16, W/16) in fp32."""
    return vae.encode_mean(image[:, None]).float()


def condition_latents(image_latent: torch.Tensor, latent_frames: int) -> torch.Tensor:
    """(B, 1, C, h, w) → (B, latent_frames, C, h, w): the image in frame 0, zeros after it."""
    if image_latent.ndim != 5 or image_latent.shape[1] != 1:
        raise ValueError(f"the image latent must be (B, 1, C, h, w), got {tuple(image_latent.shape)}")
    rest = image_latent.new_zeros(image_latent.shape[0], latent_frames - 1, *image_latent.shape[2:])
    return torch.cat([image_latent, rest], dim=1)


@dataclass
class ImageConditioned:
    """The DiT with the image condition and motion score bound: called like a text-to-video DiT
    (latents, t, llm_hidden, llm_mask, clip_hidden), so the denoising loop needs no TI2V branch."""

    dit: object  # a StepVideoDiT or a memory.placement.Placed around one
    condition: torch.Tensor  # (1, F, C, h, w)
    motion: float

    def __call__(self, latents, timestep, llm_hidden, llm_mask, clip_hidden):
        rows = latents.shape[0]
        condition = self.condition.to(device=latents.device, dtype=latents.dtype).expand(rows, -1, -1, -1, -1)
        # The score is a Python float cast to the compute dtype, as the official model does (bf16
        # rounds 7.3 to 7.3125; whole numbers are exact).
        motion = torch.full((rows,), self.motion, dtype=timestep.dtype, device=timestep.device)
        return self.dit(latents, timestep, llm_hidden, llm_mask, clip_hidden, condition=condition, motion=motion)
