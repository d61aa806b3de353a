"""Video-VAE v2: published layout (on meta), config validation, causality, chunking and blending."""

from __future__ import annotations

import pytest
import torch

from stepvideo.errors import Cancelled, ConfigError, InvalidRequest
from stepvideo.models.vae import VAEConfig, VideoVAE, blend_chunk_boundaries
from stepvideo.models.vae_blocks import AttnBlock, CausalConv


@pytest.fixture(scope="module")
def full_meta() -> VideoVAE:
    with torch.device("meta"):
        return VideoVAE()


@pytest.fixture(scope="module")
def tiny() -> VideoVAE:
    torch.manual_seed(0)
    return VideoVAE(VAEConfig.tiny()).eval()


# ---- published layout (facts §4.3) -------------------------------------------------------------


def test_full_size_key_count_and_parameter_counts(full_meta):
    sd = full_meta.state_dict()
    assert len(sd) == 262
    enc = sum(p.numel() for p in full_meta.encoder.parameters())
    dec = sum(p.numel() for p in full_meta.decoder.parameters())
    assert round(enc / 1e6, 1) == 109.9
    assert round(dec / 1e6, 1) == 388.9
    assert round((enc + dec) / 1e6, 1) == 498.8


def test_full_size_example_shapes_and_key_names(full_meta):
    sd = {k: tuple(v.shape) for k, v in full_meta.state_dict().items()}
    # z = 64 → patch width 4·64·8 = 2048; decoder top width 128·4 = 512 → unpatchify out 512·2³.
    assert sd["decoder.conv_unpatchify.conv.conv.weight"] == (4096, 2048, 3, 3, 3)
    assert sd["encoder.conv_out.conv.weight"] == (128, 2048, 3, 3, 3)
    assert sd["decoder.conv_in.conv.weight"] == (2048, 64, 3, 3, 3)
    # Stored without the inner `.conv`: 3 RGB outputs from the 128-wide last level.
    assert sd["decoder.conv_out.weight"] == (3, 128, 3, 3, 3)
    assert sd["decoder.conv_out.bias"] == (3,)
    assert "decoder.conv_out.conv.weight" not in sd
    # 2-D vs 3-D downsamplers, Upsample3D on levels 2/3, Upsample2D on level 1.
    assert sd["encoder.down.0.downsample.conv.weight"] == (128, 128, 3, 3)
    assert sd["encoder.down.1.downsample.conv.conv.weight"] == (256, 256, 3, 3, 3)
    assert sd["encoder.down.2.downsample.conv.conv.weight"] == (512, 512, 3, 3, 3)
    assert sd["decoder.up.1.upsample.conv.weight"] == (256, 256, 3, 3)
    assert sd["decoder.up.3.upsample.conv3d.conv1.conv.weight"] == (512, 512, 3, 3, 3)
    assert sd["decoder.up.2.upsample.conv3d.norm2.weight"] == (512,)
    assert sd["encoder.mid.attn_1.q.conv.weight"] == (512, 512, 1, 1, 1)
    assert sd["decoder.up.0.block.0.nin_shortcut.conv.weight"] == (128, 256, 1, 1, 1)
    # 2 ResBlocks per encoder level, 3 per decoder level.
    assert "encoder.down.3.block.1.conv2.conv.weight" in sd and "encoder.down.3.block.2.norm1.weight" not in sd
    assert "decoder.up.0.block.2.conv2.conv.weight" in sd and "decoder.up.0.block.3.norm1.weight" not in sd
    assert not any(k.startswith(("encoder.down.3.downsample", "decoder.up.0.upsample")) for k in sd)


# ---- config --------------------------------------------------------------------------------------


def test_config_defaults_and_from_dict():
    cfg = VAEConfig()
    assert (cfg.z_channels, cfg.encoder_ch, cfg.decoder_ch, cfg.frames_per_chunk) == (64, 32, 128, 17)
    assert VAEConfig.from_dict({"z_channels": 64, "decoder_ch_mult": [1, 2, 4, 4]}) == cfg
    assert VAEConfig.tiny().frames_per_chunk == 17 and VAEConfig.tiny().z_channels == 64


@pytest.mark.parametrize(
    "bad",
    [{"zz_channels": 64}, {"z_channels": 0}, {"norm_groups": 7}, {"temporal_up_layers": [1, 2]},
     {"decoder_ch_mult": [1, 2, 4]}, {"encoder_ch_mult": ["4", 8, 16, 16]}, {"norm_eps": -1.0}],
)
def test_config_rejects_unknown_keys_and_values(bad):
    with pytest.raises(ConfigError):
        VAEConfig.from_dict(bad)


# ---- shapes, encode -----------------------------------------------------------------------------


def test_decode_and_encode_shapes(tiny):
    z = torch.randn(1, 6, 64, 2, 3)
    out = tiny.decode(z)
    assert out.shape == (1, 34, 3, 32, 48)
    assert out.min() >= -1 and out.max() <= 1
    assert tiny.decode_chunk(z[:, :3]).shape == (1, 17, 3, 32, 48)
    video = torch.rand(1, 17, 3, 32, 48) * 2 - 1
    assert tiny.encode(video).shape == (1, 3, 64, 2, 3)


def test_encode_samples_with_clamped_logvar(tiny):
    video = torch.rand(1, 17, 3, 32, 32) * 2 - 1
    moments = tiny.encode_moments(video)
    assert moments.shape == (1, 3, 128, 2, 2)
    mean, logvar = moments[:, :, :64], moments[:, :, 64:]
    noise = torch.randn(mean.shape, generator=torch.Generator().manual_seed(7))
    expected = mean + torch.exp(0.5 * logvar.clamp(-30, 20)) * noise
    got = tiny.encode(video, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(got, expected)


def test_bad_inputs_raise_one_line_errors(tiny):
    with pytest.raises(InvalidRequest, match="multiple of 3"):
        tiny.decode(torch.randn(1, 4, 64, 2, 2))
    with pytest.raises(InvalidRequest, match="64"):
        tiny.decode(torch.randn(1, 3, 16, 2, 2))
    with pytest.raises(InvalidRequest, match="multiple of 17"):
        tiny.encode(torch.randn(1, 16, 3, 32, 32))
    with pytest.raises(InvalidRequest, match="multiples of 16"):
        tiny.encode(torch.randn(1, 17, 3, 30, 32))


def test_decode_reports_progress_and_cancels_between_chunks(tiny):
    z = torch.randn(1, 6, 64, 1, 1)
    seen = []
    tiny.decode(z, on_chunk=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 2), (2, 2)]
    with pytest.raises(Cancelled):
        tiny.decode(z, on_chunk=lambda d, t: seen.append((d, t)), should_cancel=lambda: len(seen) >= 3)
    assert len(seen) == 3  # stopped after the first chunk of the second call


# ---- causality ------------------------------------------------------------------------------------


def test_prefix_decode_matches_full_decode_up_to_the_blended_frame(tiny):
    torch.manual_seed(1)
    z = torch.randn(1, 9, 64, 2, 2)
    full = tiny.decode(z)
    prefix = tiny.decode(z[:, :6])
    # Frames 0..32 match exactly; frame 33 is the front of the 2|3 boundary, blended only in `full`.
    torch.testing.assert_close(prefix[:, :33], full[:, :33], rtol=0, atol=0)
    a = tiny.decode_chunk(z[:, 3:6]).float()
    b = tiny.decode_chunk(z[:, 6:9]).float()
    back = 0.6 * b[:, 0] + 0.4 * a[:, 16]
    front = 0.6 * a[:, 16] + 0.4 * back
    torch.testing.assert_close(full[:, 33], front.clamp(-1, 1))
    torch.testing.assert_close(full[:, 34], back.clamp(-1, 1))
    torch.testing.assert_close(prefix[:, 33], a[:, 16].clamp(-1, 1))


def test_decoder_is_causal_in_latent_time(tiny):
    torch.manual_seed(2)
    z = torch.randn(1, 3, 64, 2, 2)
    base = tiny.decode_chunk(z)
    changed = z.clone()
    changed[:, 2] += 1.0  # latent frame 2 first shows up in output frame 9 (5 → 20 frames, crop 3)
    out = tiny.decode_chunk(changed)
    torch.testing.assert_close(out[:, :9], base[:, :9], rtol=0, atol=0)
    assert (out[:, 9:] - base[:, 9:]).abs().max() > 1e-4


def test_causal_conv_and_attention_never_look_ahead():
    torch.manual_seed(3)
    conv, attn = CausalConv(8, 8, 3), AttnBlock(8, 4, 1e-5)
    x = torch.randn(1, 8, 6, 5, 5)
    later = x.clone()
    later[:, :, 4:] = torch.randn(1, 8, 2, 5, 5)
    with torch.no_grad():
        for module in (conv, attn):
            a, b = module(x), module(later)
            torch.testing.assert_close(a[:, :, :4], b[:, :, :4], rtol=0, atol=0)
            assert (a[:, :, 4:] - b[:, :, 4:]).abs().max() > 1e-4


# ---- chunk boundary blend -------------------------------------------------------------------------


def reference_blend(frames: torch.Tensor, chunk: int) -> torch.Tensor:
    out = frames.clone()
    for back in range(chunk, frames.shape[1], chunk):
        front = back - 1
        new_back = 0.6 * out[:, back] + 0.4 * out[:, front]
        out[:, back] = new_back
        out[:, front] = 0.6 * out[:, front] + 0.4 * new_back
    return out


@pytest.mark.parametrize("chunks", [1, 2, 4])
def test_blend_chunk_boundaries_matches_sequential_reference(chunks):
    frames = torch.randn(2, 17 * chunks, 3, 4, 5)
    original = frames.clone()
    got = blend_chunk_boundaries(frames)
    torch.testing.assert_close(got, reference_blend(original, 17))
    torch.testing.assert_close(frames, original, rtol=0, atol=0)  # pure unless inplace=True
    if chunks > 1:
        assert not torch.equal(got, original)
        # Sequential order: the front frame sees the UPDATED back frame (differs from a simultaneous update).
        simultaneous = 0.6 * original[:, 16] + 0.4 * original[:, 17]
        assert (got[:, 16] - simultaneous).abs().max() > 1e-3
    blend_chunk_boundaries(frames, inplace=True)
    torch.testing.assert_close(frames, got)


def test_meta_built_vae_loads_a_safetensors_file_and_decodes_the_same(tiny, tmp_path):
    from safetensors.torch import save_file

    from stepvideo.engine.weights import load_single

    path = tmp_path / "vae_v2.safetensors"
    save_file({k: v.contiguous() for k, v in tiny.state_dict().items()}, str(path))
    with torch.device("meta"):
        loaded = VideoVAE(VAEConfig.tiny())
    load_single(loaded, path)
    z = torch.randn(1, 3, 64, 2, 2)
    torch.testing.assert_close(loaded.decode(z), tiny.decode(z), rtol=0, atol=0)


def test_iter_decode_gives_the_whole_decode_piece_by_piece():
    """Pieces in order, each finished: together they are the chunks decoded one by one, blended at
    the boundaries and clamped over the whole video (the official post-processing)."""
    torch.manual_seed(0)
    vae = VideoVAE(VAEConfig.tiny()).eval()
    z = torch.randn(1, 9, vae.config.z_channels, 2, 3) * 3
    pieces = list(vae.iter_decode(z))
    with torch.no_grad():
        chunks = [vae.decode_chunk(c) for c in z.split(vae.config.latent_chunk, dim=1)]
    whole = blend_chunk_boundaries(torch.cat(chunks, dim=1), vae.config.frames_per_chunk).clamp(-1, 1)
    assert max(p.shape[1] for p in pieces) < vae.config.frames_per_chunk  # never more than one chunk at a time
    torch.testing.assert_close(torch.cat(pieces, dim=1), whole, rtol=0, atol=0)
    torch.testing.assert_close(vae.decode(z), whole, rtol=0, atol=0)
