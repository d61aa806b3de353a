"""Image-to-video end to end on the tiny TI2V model (CPU): the CLI with an image (ffprobe), every memory
profile, determinism per seed and image, bad input as one line, the queue's own image copy, a
SIGKILLed job resuming bit-identical, and importing a folder of NNN.png + NNN.txt pairs."""

from __future__ import annotations

import hashlib
import json
import signal
import time

import numpy as np
import pytest
from test_generate_cli import FFPROBE, frames_of, probe, stepvideo
from test_worker_e2e import frames_hash
from ti2v_support import animated_gif, gradient_image
from worker_process import WorkerProcess

from stepvideo.api import GenerationRequest
from stepvideo.cli import main
from stepvideo.engine import video_io
from stepvideo.engine.pipeline import generate
from stepvideo.engine.session import EngineSession
from stepvideo.jobs.store import JobQueue
from stepvideo.jobs.worker import Worker

SMALL = ["--size", "32x32", "--frames", "17", "--steps", "2"]


def ti2v_request(model, image, out, *, seed=3, steps=2, profile="auto", quantization=None, prompt="a kite rises"):
    return GenerationRequest(prompt=prompt, model=str(model), image=str(image), height=32, width=32, frames=17,
                             steps=steps, seed=seed, profile=profile, quantization=quantization, output=str(out))


# =========================================================================== CLI generate
@pytest.mark.parametrize("prompt", ["一只白鹭从湖面缓缓起飞", "A paper boat drifts down a rainy street"])
def test_generate_with_an_image_writes_the_video_and_the_source(tiny_ti2v_model, sandbox, prompt):
    image = gradient_image(sandbox / "boat.png", 64, 48)
    out = sandbox / "videos" / "clip.mp4"
    proc = stepvideo("generate", "--model", str(tiny_ti2v_model), "--image", str(image), "--motion", "10",
                     "--prompt", prompt, *SMALL, "--output", str(out), check=True)
    assert proc.stdout.strip() == str(out)
    frames = frames_of(out)
    assert frames.shape == (17, 32, 32, 3)
    if FFPROBE is not None:  # the Debian ffmpeg package; imageio-ffmpeg ships no ffprobe
        stream = probe(out)["streams"][0]
        assert (stream["width"], stream["height"], stream["r_frame_rate"]) == (32, 32, "25/1")
        assert int(stream["nb_read_frames"]) == 17
    meta = video_io.read_metadata(out)
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    assert meta["source_image"]["sha256"] == digest and meta["source_image"]["file_name"] == "boat.png"
    assert meta["source_image"]["motion"] == 10.0 and meta["request"]["prompt"] == prompt
    copy = out.parent / meta["source_image"]["copy"]
    assert copy.name == "clip.source.png" and copy.read_bytes() == image.read_bytes()
    assert meta["resolved"]["negative_prompt"].startswith("动画、模糊")
    # The mp4 carries the same, even without the sidecar.
    out.with_suffix(".json").unlink()
    assert video_io.read_metadata(out)["source_image"]["sha256"] == digest


# =========================================================================== profiles and determinism
@pytest.fixture(scope="module")
def profile_runs(tiny_ti2v_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ti2v-profiles")
    mp = pytest.MonkeyPatch()
    mp.setenv("STEPVIDEO_DATA_DIR", str(folder / "data"))
    image = gradient_image(folder / "a.png", 48, 64, seed=1)
    out = {}
    try:
        # Every profile once; quantization is covered for TI2V's extra layers by one qint8 run.
        for profile, q in [("resident", None), ("balanced", None), ("low-vram", None), ("low-ram", "qint8")]:
            result = generate(ti2v_request(tiny_ti2v_model, image, folder / f"{profile}-{q}.mp4", profile=profile,
                                           quantization=q), session=EngineSession("cpu", keep_loaded=False))
            out[(profile, q)] = (frames_of(result.video_path).astype(int), video_io.read_metadata(result.video_path))
    finally:
        mp.undo()
    return out


def test_every_memory_profile_makes_the_image_video(profile_runs):
    resident = profile_runs[("resident", None)][0]
    assert resident.shape == (17, 32, 32, 3)
    for (profile, q), (frames, meta) in profile_runs.items():
        assert meta["profile"]["name"] == profile and frames.shape == resident.shape
        assert np.abs(frames - resident).mean() < 8.0, (profile, q)
    # balanced and low-vram stream different numbers of blocks; the math is the same.
    assert np.array_equal(profile_runs[("balanced", None)][0], profile_runs[("low-vram", None)][0])


def test_same_seed_and_image_same_frames_other_image_other_frames(tiny_ti2v_model, sandbox):
    a_img, b_img = gradient_image(sandbox / "a.png", 48, 48, seed=1), gradient_image(sandbox / "b.png", 48, 48, seed=2)
    session = EngineSession("cpu", keep_loaded=True)
    runs = {name: frames_of(generate(ti2v_request(tiny_ti2v_model, img, sandbox / f"{name}.mp4"),
                                     session=session).video_path)
            for name, img in (("a1", a_img), ("a2", a_img), ("b", b_img))}
    assert np.array_equal(runs["a1"], runs["a2"])
    assert not np.array_equal(runs["a1"], runs["b"])


# =========================================================================== bad input
def _one_line(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


@pytest.mark.parametrize(
    "make, extra, needle",
    [
        (lambda d: d / "nope.png", [], "does not exist"),
        (lambda d: (d / "x.png").write_text("text") and d / "x.png", [], "not an image"),
        (lambda d: animated_gif(d / "a.gif"), [], "animated"),
        (lambda d: gradient_image(d / "s.png", 20, 20), ["--size", "544x992"], "too small"),
        (lambda d: gradient_image(d / "m.png", 64, 48), ["--motion", "80"], "from 0 to 50"),
        (lambda d: gradient_image(d / "m.png", 64, 48), ["--motion", "fast"], "from 0 to 50"),
    ],
)
def test_bad_image_input_is_one_line_exit_2(tiny_ti2v_model, tmp_path, capsys, make, extra, needle):
    line = _one_line(capsys, ["generate", "--model", str(tiny_ti2v_model), "--prompt", "x",
                              "--image", str(make(tmp_path)), *extra])
    assert needle in line


def test_image_with_a_t2v_model_and_ti2v_without_an_image_are_refused(tiny_model, tiny_ti2v_model, tmp_path, capsys):
    image = gradient_image(tmp_path / "a.png", 64, 48)
    line = _one_line(capsys, ["generate", "--model", str(tiny_model), "--prompt", "x", "--image", str(image)])
    assert "needs an image-to-video model" in line
    line = _one_line(capsys, ["queue", "add", "--model", str(tiny_ti2v_model), "--prompt", "x"])
    assert "image-to-video model; give --image" in line
    line = _one_line(capsys, ["generate", "--model", "stepfun-ai/stepvideo-t2v", "--prompt", "x", "--image", str(image)])
    assert "needs an image-to-video model" in line
    line = _one_line(capsys, ["generate", "--model", str(tiny_model), "--prompt", "x", "--motion", "5"])
    assert "only to image-to-video" in line


# =========================================================================== queue
def test_a_queued_job_owns_its_image_and_runs_after_the_original_is_deleted(tiny_ti2v_model, sandbox, capsys):
    original = gradient_image(sandbox / "mine.png", 64, 48)
    digest = hashlib.sha256(original.read_bytes()).hexdigest()
    assert main(["queue", "add", "--model", str(tiny_ti2v_model), "--prompt", "海浪拍打礁石", "--image", str(original),
                 *SMALL, "--json"]) == 0
    job = json.loads(capsys.readouterr().out)
    copy = job["request"]["image"]
    assert copy != str(original) and copy.endswith("/mine.png") and f"job-{job['id']}" in copy
    original.unlink()
    with JobQueue() as queue:
        worker = Worker(queue, lambda _e: None, engine=__import__("stepvideo.engine.pipeline").engine.pipeline,
                        request_poll_interval_s=0)
        assert worker.run() == 1
        done = queue.get(job["id"])
        assert done.status == "done", done.error_message
        meta = video_io.read_metadata(done.outputs["video"])
        assert meta["source_image"]["sha256"] == digest and meta["source_image"]["file_name"] == "mine.png"
        queue.remove(job["id"])
    assert not (sandbox / "data" / "job-images" / f"job-{job['id']}").exists()


def test_sigkill_mid_denoise_resumes_bit_identical(tiny_ti2v_model, sandbox):
    image = gradient_image(sandbox / "a.png", 48, 48)
    with JobQueue() as queue:
        blocked = queue.add(ti2v_request(tiny_ti2v_model, image, sandbox / "two.mp4", steps=4, prompt="x [block]"))
        reference = queue.add(ti2v_request(tiny_ti2v_model, image, sandbox / "ref.mp4", steps=4, prompt="x [block]"))
        image.unlink()  # the jobs use their own copies
        marker = sandbox / "blocked"
        env = {"FAKE_BLOCK_MARKER": str(marker)}
        args = ("--checkpoint-every-steps", "2")
        worker = WorkerProcess(queue.path, *args, engine="worker_engine_blocking", env=env)
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert time.monotonic() < deadline and worker.proc.poll() is None, worker.stderr()
            time.sleep(0.05)
        worker.proc.send_signal(signal.SIGKILL)
        worker.kill()
        assert queue.recover_if_no_worker() == [blocked.id]
        assert queue.get(blocked.id).checkpoint_step == 2
        again = WorkerProcess(queue.path, *args, engine="worker_engine_blocking", env=env)
        assert again.finish(timeout=180) == 0, again.stderr()
        started = next(e for e in again.events if e["type"] == "job_started" and e["job_id"] == blocked.id)
        assert started["resume_from_step"] == 2
        assert queue.get(blocked.id).status == queue.get(reference.id).status == "done"
    assert frames_hash(sandbox / "two.mp4") == frames_hash(sandbox / "ref.mp4")


def test_import_folder_queues_each_pair_with_the_size_of_its_orientation(tiny_ti2v_model, tmp_path, sandbox, capsys):
    eval_set = tmp_path / "Step-Video-TI2V-Eval" / "ti2v_eval_real"
    for sub, name, (w, h), prompt in (("H", "001", (320, 180), "湖面上的天鹅"), ("V", "002", (180, 320), "街头的舞者"),
                                      ("S", "003", (200, 200), "旋转的风车")):
        (eval_set / sub).mkdir(parents=True)
        gradient_image(eval_set / sub / f"{name}.png", w, h)
        (eval_set / sub / f"{name}.txt").write_text(prompt + "\n", encoding="utf-8")
    (eval_set / ".DS_Store").write_bytes(b"\0\1")
    assert main(["queue", "import-folder", str(eval_set.parent), "--model", str(tiny_ti2v_model), "--json"]) == 0
    jobs = json.loads(capsys.readouterr().out)
    got = [(j["request"]["prompt"], j["request"]["height"], j["request"]["width"], j["request"]["frames"]) for j in jobs]
    # In path order: H/001, S/003, V/002.
    assert got == [("湖面上的天鹅", 544, 992, 102), ("旋转的风车", 768, 768, 102), ("街头的舞者", 992, 544, 102)]
    assert all(f"job-{j['id']}" in j["request"]["image"] for j in jobs)
    (eval_set / "H" / "004.png").write_bytes((eval_set / "H" / "001.png").read_bytes())
    line = _one_line(capsys, ["queue", "import-folder", str(eval_set), "--model", str(tiny_ti2v_model)])
    assert "004.png has no prompt" in line
