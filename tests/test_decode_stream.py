"""The finished video leaves the decoder chunk by chunk as uint8 and goes straight to the mp4 writer:
no device holds the whole video, and the frames are exactly those of the whole-video path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stepvideo.engine import video_io
from stepvideo.engine.pipeline import _decode, to_uint8_frames
from stepvideo.memory import planner
from stepvideo.models.vae import VAEConfig, VideoVAE


def reference_uint8(video: np.ndarray) -> np.ndarray:
    """The whole-video conversion the pipeline used before (official post-processing)."""
    scaled = (np.clip(video, -1.0, 1.0) + 1.0) * 127.5
    return np.clip(scaled, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_uint8_conversion_matches_the_official_arithmetic(dtype):
    piece = (torch.randn(5, 3, 16, 32, generator=torch.Generator().manual_seed(0)) * 1.5).to(dtype)
    want = reference_uint8(piece.float().numpy())
    assert np.array_equal(to_uint8_frames(piece.clone()), want)
    out = torch.empty(17, 16, 32, 3, dtype=torch.uint8)
    assert np.array_equal(to_uint8_frames(piece.clone(), out), want)


def test_decode_hands_over_pieces_never_the_whole_video():
    torch.manual_seed(0)
    vae = VideoVAE(VAEConfig.tiny()).eval()
    z = torch.randn(1, 6, vae.config.z_channels, 2, 3) * 2
    got: list[np.ndarray] = []
    # `write` must consume each piece before returning: the host buffer is reused for the next
    frames = _decode(vae, z, "cpu", torch.float32, lambda: False, None, write=lambda a: got.append(a.copy()))
    assert frames == 34 and sum(len(g) for g in got) == 34
    assert max(len(g) for g in got) <= vae.config.frames_per_chunk
    whole = reference_uint8(vae.decode(z)[0].float().numpy())
    assert np.array_equal(np.concatenate(got), whole)


def test_the_writer_takes_pieces_and_checks_the_total(tmp_path):
    rng = np.random.default_rng(1)
    with video_io.Mp4Writer(tmp_path / "v.mp4", 48, 32) as writer:
        for n in (16, 1, 16, 1):
            writer.send((rng.random((n, 32, 48, 3)) * 255).astype(np.uint8))
        path = writer.finish({"request": {"prompt": "pieces"}})
    assert video_io.read_metadata(path) == {"request": {"prompt": "pieces"}}
    assert not list(tmp_path.glob(".*partial*"))
    with pytest.raises(ValueError, match=r"uint8 \(n, 32, 48, 3\)"):
        with video_io.Mp4Writer(tmp_path / "w.mp4", 48, 32) as writer:
            writer.send(np.zeros((2, 32, 40, 3), np.uint8))
    assert not (tmp_path / "w.mp4").exists() and not list(tmp_path.glob(".*partial*"))


def test_the_planners_write_figure_is_one_chunk_whatever_the_length():
    one = planner.video_write_host_bytes(544, 992)
    assert one == 17 * 544 * 992 * 3 + planner.FFMPEG_ENCODER_BYTES < 1.5 * 2**30
    cpu_bf16 = planner.video_write_host_bytes(544, 992, 2)
    assert cpu_bf16 - one == 17 * 544 * 992 * 3 * (2 + 4)  # the bf16 chunk and its fp32 copy
