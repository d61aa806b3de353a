"""The mp4 writer with the real ffmpeg: metadata round trip, and a disk that fills mid-write."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from stepvideo.engine import video_io

ROOT = Path(__file__).resolve().parent.parent


def test_metadata_round_trips_through_the_mp4_alone(tmp_path):
    frames = (np.random.default_rng(0).random((17, 32, 48, 3)) * 255).astype(np.uint8)
    meta = {"request": {"prompt": "一只猫 = a cat; #1"}, "seed": 3}
    path = video_io.write_mp4(frames, tmp_path / "a.mp4", meta)
    assert video_io.read_metadata(path) == meta  # no sidecar: read from the mp4's comment tag


def test_a_disk_that_fills_mid_write_raises_and_leaves_no_video(tmp_path):
    """ffmpeg is killed by the file-size limit (as on a full disk) after the frames were handed over:
    write_mp4 must notice, raise OSError and leave neither the video nor its partial file."""
    code = f"""
import resource, signal, sys
import numpy as np
sys.path.insert(0, {str(ROOT)!r})
from stepvideo.engine import video_io
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))
frames = (np.random.default_rng(0).random((17, 256, 256, 3)) * 255).astype(np.uint8)
try:
    video_io.write_mp4(frames, {str(tmp_path / 'out.mp4')!r}, {{"request": {{"prompt": "x"}}}})
except OSError as exc:
    print("OSError", str(exc).splitlines()[0])
else:
    print("no error")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.startswith("OSError"), (proc.stdout, proc.stderr[-2000:])
    assert not (tmp_path / "out.mp4").exists()
    assert not list(tmp_path.glob(".*partial*"))
