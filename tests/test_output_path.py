"""`--output` rules (engine/output_path.py) and the free-space check, through `stepvideo generate` and
`stepvideo queue add`: the video lands where the rules say, nothing is written anywhere else."""

from __future__ import annotations

import os
import shutil
from collections import namedtuple
from pathlib import Path

import pytest

from stepvideo.cli import main
from stepvideo.engine.output_path import normalise_output
from stepvideo.jobs.store import JobQueue
from stepvideo.memory.planner import checkpoint_file_bytes, video_file_bytes

SMALL = ["--size", "32x32", "--frames", "17", "--steps", "1"]


def generate(capsys, tiny_model, *argv: str) -> tuple[int, str, str]:
    code = main(["generate", "--model", str(tiny_model), "--prompt", "a red kite", *SMALL, *argv])
    out, err = capsys.readouterr()
    return code, out, err


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_normalise_output(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "clips").mkdir()
    assert normalise_output("clips") == f"{tmp_path}/clips/"  # an existing folder: write into it
    assert normalise_output("new/") == f"{tmp_path}/new/"  # a trailing slash: a folder to make
    assert normalise_output("clip") == f"{tmp_path}/clip.mp4"
    assert normalise_output("clip.MP4") == f"{tmp_path}/clip.MP4"
    assert normalise_output("clip.mov") == f"{tmp_path}/clip.mov.mp4"
    assert normalise_output("a/b/../../c/./clip.mp4") == f"{tmp_path}/c/clip.mp4"
    assert normalise_output("~/x.mp4") == os.path.expanduser("~/x.mp4")
    assert normalise_output(normalise_output("clip")) == normalise_output("clip")
    assert not (tmp_path / "new").exists() and not (tmp_path / "a").exists()


def test_generate_output_folder_dotdot_missing_suffix_and_taken_name(capsys, sandbox, tiny_model):
    place = sandbox / "place"
    (place / "clips").mkdir(parents=True)
    # an existing folder: the video goes into it, under the automatic name, and nothing lands beside it
    code, out, err = generate(capsys, tiny_model, "--output", str(place / "clips"))
    assert code == 0, err
    video = Path(out.strip())
    assert video.parent == place / "clips" and video.suffix == ".mp4" and video.is_file()
    assert tree(place) == sorted(["clips", f"clips/{video.name}", f"clips/{video.stem}.json"])
    assert "decode…\n  decode 1/1 · chunk 1/1 · ETA 0 s\n" in err  # the decode is no longer silent

    # `..` is resolved before any folder is made; `.mp4` is added to a name without it
    code, out, err = generate(capsys, tiny_model, "--output", str(place / "stray" / ".." / "clip"))
    assert code == 0, err
    assert out.strip() == str(place / "clip.mp4") and (place / "clip.mp4").is_file()
    assert not (place / "stray").exists()

    # the name is taken: the real path is printed, with a note saying so
    code, out, err = generate(capsys, tiny_model, "--output", str(place / "clip.mp4"))
    assert code == 0, err
    assert out.strip() == str(place / "clip-2.mp4") and (place / "clip-2.mp4").is_file()
    assert f"clip.mp4 already exists in {place}; writing {place / 'clip-2.mp4'} instead" in err


def test_generate_refuses_to_start_without_the_disk_space(capsys, sandbox, tiny_model, monkeypatch):
    Usage = namedtuple("Usage", "total used free")
    free = 1000
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: Usage(10**12, 10**12 - free, free))
    out_dir = sandbox / "out"
    code, out, err = generate(capsys, tiny_model, "--output", str(out_dir / "clip.mp4"))
    assert code == 1 and out == ""
    need = video_file_bytes(32, 32, 17)
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"not enough free disk space in {out_dir}: this video needs up to {need / 2**20:.1f} MiB" in err
    assert "0.0 MiB is free" in err and "stage" not in err
    assert not (out_dir / "clip.mp4").exists()


def test_disk_estimates_cover_the_standard_video():
    assert checkpoint_file_bytes(544, 992, 204) == 2 * 36 * 64 * 34 * 62 * 4 + (64 << 10)  # 19.4 MB, twice
    assert 200 * 10**6 < video_file_bytes(544, 992, 204) < 250 * 10**6  # 8 bits a pixel, twice


def test_queue_add_stores_the_path_the_worker_will_use(capsys, sandbox, monkeypatch):
    monkeypatch.chdir(sandbox)
    (sandbox / "clips").mkdir()
    for output in ("clips", "x/../clip", "later/"):
        assert main(["queue", "add", "--prompt", "a kite", "--output", output]) == 0
    capsys.readouterr()
    with JobQueue() as queue:
        stored = [job.request["output"] for job in queue.list()]
    assert stored == [f"{sandbox}/clips/", f"{sandbox}/clip.mp4", f"{sandbox}/later/"]
    assert not (sandbox / "x").exists() and not (sandbox / "later").exists()


@pytest.mark.parametrize("output", ["clips", "later/"])
def test_a_retry_keeps_a_folder_output(capsys, sandbox, output, monkeypatch):
    monkeypatch.chdir(sandbox)
    (sandbox / "clips").mkdir()
    (sandbox / "later").mkdir()
    main(["queue", "add", "--prompt", "a kite", "--output", output])
    capsys.readouterr()
    with JobQueue() as queue:
        job = queue.list()[0]
        queue.claim_next()
        queue.mark_failed(job.id, "internal", "boom")
        assert queue.retry(job.id).request["output"] == f"{sandbox}/{output.rstrip('/')}/"
