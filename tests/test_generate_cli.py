"""End to end: make-tiny-model, then `stepvideo generate`, checked with ffprobe; bad input; seeds."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import imageio_ffmpeg
import numpy as np
import pytest

from stepvideo.engine import video_io

FFPROBE = shutil.which("ffprobe")
SMALL = ["--size", "64x96", "--frames", "34", "--steps", "2"]


def stepvideo(*args, check=False):
    proc = subprocess.run([sys.executable, "-m", "stepvideo", *args], capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stderr)
    return proc


def probe(path):
    out = subprocess.run(
        [FFPROBE, "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
         "stream=codec_name,pix_fmt,width,height,r_frame_rate,nb_read_frames:format_tags=comment",
         "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout)


def frames_of(path):
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = reader.__next__()
    w, h = meta["size"]
    return np.stack([np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader])


@pytest.mark.skipif(FFPROBE is None, reason="ffprobe (Debian ffmpeg) is not installed")
@pytest.mark.parametrize("prompt", ["一只橘猫在阳光下的草地上奔跑，慢动作", "A red fox jumps over a snowy log at dawn"])
def test_generate_writes_a_probeable_mp4_with_metadata(tiny_model, sandbox, prompt):
    out = sandbox / "videos" / "clip.mp4"
    proc = stepvideo("generate", "--model", str(tiny_model), "--prompt", prompt, "--seed", "7", *SMALL,
                     "--output", str(out), check=True)
    assert proc.stdout.strip() == str(out)
    info = probe(out)
    stream = info["streams"][0]
    assert stream["codec_name"] == "h264" and stream["pix_fmt"] == "yuv420p"
    assert (stream["width"], stream["height"]) == (96, 64)
    assert stream["r_frame_rate"] == "25/1"
    assert int(stream["nb_read_frames"]) == 34
    embedded = json.loads(info["format"]["tags"]["comment"])
    assert embedded["request"]["prompt"] == prompt and embedded["seed"] == 7
    assert embedded["model"]["path"] == str(tiny_model)
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["request"] == embedded["request"]
    assert set(sidecar["stage_seconds"]) == {"load", "encode_text", "denoise", "decode", "write"}
    assert video_io.read_metadata(out)["resolved"]["steps"] == 2


def test_same_seed_same_frames_different_seed_different_frames(tiny_model, sandbox):
    paths = {}
    for name, seed in (("a", "11"), ("b", "11"), ("c", "12")):
        paths[name] = sandbox / f"{name}.mp4"
        stepvideo("generate", "--model", str(tiny_model), "--prompt", "waves on a beach", "--seed", seed,
                  *SMALL, "--output", str(paths[name]), check=True)
    a, b, c = (frames_of(paths[k]) for k in "abc")
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_turbo_takes_its_transformer_from_the_turbo_repo(tiny_model, tiny_turbo_model, sandbox):
    out = sandbox / "turbo.mp4"
    stepvideo("generate", "--model", str(tiny_model), "--transformer-model", str(tiny_turbo_model),
              "--preset", "turbo", "--prompt", "a paper boat", *SMALL, "--output", str(out), check=True)
    meta = video_io.read_metadata(out)
    assert meta["resolved"] == {**meta["resolved"], "steps": 2, "cfg": 5.0, "shift": 17.0}
    assert meta["model"]["transformer_path"] == str(tiny_turbo_model)


@pytest.mark.parametrize(
    "args, allowed",
    [
        (["--prompt", "", *SMALL], "prompt is empty"),
        (["--prompt", "   ", *SMALL], "prompt is empty"),
        (["--prompt", "x", "--size", "100x96"], "multiple of 16"),
        (["--prompt", "x", "--size", "64x90"], "multiple of 16"),
        (["--prompt", "x", "--size", "big"], "HEIGHTxWIDTH"),
        (["--prompt", "x", "--frames", "20"], "multiple of 17"),
        (["--prompt", "x", "--frames", "0"], "multiple of 17"),
        (["--prompt", "x", "--steps", "0"], "1 to 200"),
        (["--prompt", "x", "--steps", "201"], "1 to 200"),
        (["--prompt", "x", "--steps", "2.5"], "1 to 200"),
        (["--prompt", "x", "--cfg", "0.5"], "≥ 1"),
        (["--prompt", "x", "--preset", "fast"], "standard, turbo"),
        (["--prompt", "x", "--profile", "huge"], "auto"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(tiny_model, args, allowed):
    proc = stepvideo("generate", "--model", str(tiny_model), *args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert allowed in lines[0]


def _copy(tiny_model, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(tiny_model, target)
    return target


def _one_error_line(proc):
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if not line.endswith("…")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    return lines[0]


def test_missing_file_is_named(tiny_model, tmp_path):
    model = _copy(tiny_model, tmp_path)
    (model / "vae" / "vae_v2.safetensors").unlink()
    line = _one_error_line(stepvideo("generate", "--model", str(model), "--prompt", "x", *SMALL))
    assert "vae_v2.safetensors" in line


def test_truncated_shard_is_reported(tiny_model, tmp_path):
    model = _copy(tiny_model, tmp_path)
    shard = model / "transformer" / "diffusion_pytorch_model-00002-of-00003.safetensors"
    shard.write_bytes(shard.read_bytes()[:-1000])
    line = _one_error_line(stepvideo("generate", "--model", str(model), "--prompt", "x", *SMALL))
    assert "truncated" in line and shard.name in line


def test_shape_mismatch_names_the_first_differing_keys(tiny_model, tmp_path):
    model = _copy(tiny_model, tmp_path)
    config_path = model / "transformer" / "config.json"
    config = json.loads(config_path.read_text())
    config["num_layers"] = 3  # the shards hold 2 blocks
    config_path.write_text(json.dumps(config))
    line = _one_error_line(stepvideo("generate", "--model", str(model), "--prompt", "x", *SMALL))
    assert "does not match" in line and "transformer_blocks.2." in line


def test_unwritable_output_fails_before_any_work(tiny_model):
    line = _one_error_line(stepvideo("generate", "--model", str(tiny_model), "--prompt", "x", *SMALL,
                                     "--output", "/proc/nope/x.mp4"))
    assert "output folder" in line


def test_an_existing_video_is_never_overwritten(tiny_model, sandbox):
    target = sandbox / "keep.mp4"
    target.write_bytes(b"the user's own video")
    proc = stepvideo("generate", "--model", str(tiny_model), "--prompt", "x", *SMALL, "--output", str(target), check=True)
    assert proc.stdout.strip() == str(sandbox / "keep-2.mp4")
    assert target.read_bytes() == b"the user's own video"


def test_revision_with_a_local_folder_is_refused(tiny_model):
    line = _one_error_line(stepvideo("generate", "--model", str(tiny_model), "--revision", "main", "--prompt", "x", *SMALL))
    assert "--revision" in line and "local folder" in line
